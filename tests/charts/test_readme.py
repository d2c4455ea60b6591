"""READMEs as Markdown: CommonMark and GitHub tables, sanitised, nothing loaded from outside."""

from __future__ import annotations

from charts.archive import read_chart_archive
from charts.readme import render_readme
from tests.chartkit import deterministic_tgz

BOM = "\ufeff"


def test_headings_lists_and_code_blocks_render_as_html():
    html = render_readme(
        "# Redis\n\n## Install\n\n- one\n- two\n\n1. first\n\n```yaml\nkey: <value>\n```\n"
    )
    assert "<h1>Redis</h1>" in html and "<h2>Install</h2>" in html
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in html
    assert "<ol>\n<li>first</li>\n</ol>" in html
    assert '<pre><code class="language-yaml">key: &lt;value&gt;\n</code></pre>' in html


def test_a_github_table_renders_as_a_table():
    html = render_readme("| Name | Default |\n|------|--------:|\n| `replicas` | 1 |\n")
    assert "<table>" in html and "<th>Name</th>" in html
    assert "<td><code>replicas</code></td>" in html
    assert "style=" not in html  # alignment would be an inline style, which the CSP refuses


def test_scripts_event_handlers_and_javascript_links_are_removed():
    html = render_readme(
        "<script>alert(1)</script>\n\n"
        '<p onclick="alert(2)">para</p>\n\n'
        '<img src="x" onerror="alert(3)">\n\n'
        "[click](javascript:alert(4)) "
        '<a href="JaVaScRiPt:alert(5)">raw</a>\n\n'
        '<iframe src="https://evil.example.com/"></iframe>'
        '<div style="background:url(https://evil.example.com/t.png)">styled</div>\n'
    )
    lowered = html.lower()
    for bad in ("<script", "alert(1)", "onclick", "onerror", 'href="javascript', "<iframe"):
        assert bad not in lowered, bad
    assert "style=" not in lowered
    assert "para" in html and "styled" in html
    assert "[click](javascript:alert(4))" in html  # left as text, not made a link
    assert '<a rel="noopener noreferrer nofollow">raw</a>' in html  # its href is gone


def test_an_image_becomes_a_link_to_its_url_and_nothing_is_loaded():
    html = render_readme(
        "![Architecture](https://cdn.example.org/arch.png)\n\n"
        '<img src="https://cdn.example.org/raw.png" alt="raw one">\n\n'
        "[![build status](https://ci.example.org/badge.svg)](https://ci.example.org/job)\n"
    )
    assert "<img" not in html
    assert (
        '<a href="https://cdn.example.org/arch.png" class="readme-image" '
        'rel="noopener noreferrer nofollow">Image: Architecture</a>'
    ) in html
    assert 'href="https://cdn.example.org/raw.png"' in html and "Image: raw one" in html
    # An image inside a link: the link stays, the image is its text (no link in a link).
    assert (
        '<a href="https://ci.example.org/job" rel="noopener noreferrer nofollow">'
        "Image: build status</a>"
    ) in html


def test_links_stay_links_that_do_not_send_a_referrer_or_rank():
    html = render_readme("See [the docs](https://docs.example.org/redis).\n")
    assert (
        '<a href="https://docs.example.org/redis" rel="noopener noreferrer nofollow">the docs</a>'
    ) in html


def test_a_byte_order_mark_does_not_stop_the_first_heading():
    assert render_readme(BOM + "# Title\n").startswith("<h1>Title</h1>")


def test_a_byte_order_mark_is_stripped_from_readme_values_and_chart_yaml():
    data = deterministic_tgz(
        {
            "demo/Chart.yaml": (BOM + "apiVersion: v2\nname: demo\nversion: 1.0.0\n").encode(),
            "demo/values.yaml": (BOM + "replicaCount: 1\n").encode(),
            "demo/README.md": (BOM + "# Demo\n").encode(),
        }
    )
    files = read_chart_archive(data)
    assert files.name == "demo"
    assert files.values_yaml == "replicaCount: 1\n"
    assert files.readme == "# Demo\n"
