"""Reading index.yaml with the fast parser: the same text as PyYAML's base loader read.

Wharf read indexes with PyYAML's base loader (every scalar the text written) before it
read them with fastyaml-rs, chart by chart. These tests hold the new reader to the old
one: on YAML 1.1-only forms, odd layouts and hostile documents, what comes out is what
the base loader gave, so a re-import after the change writes nothing.
"""

from __future__ import annotations

import pytest
import yaml
from django.db import connection

from charts.models import ChartSource, ChartVersion, SyncRun
from charts.sync import helm
from tests.chartkit import realistic_index, sha256_digest
from tests.charts.helpers import helm_source, sync

pytestmark = pytest.mark.django_db

# YAML 1.1-only forms and other plain scalars a YAML 1.2 parser types, in every field
# normalise_metadata reads; "nodigest" has no digest, so its fingerprint is its metadata.
YAML_11_FORMS = b"""apiVersion: v1
entries:
  typed:
  - name: typed
    version: 1.10
    appVersion: 010
    created: 2024-01-01T00:00:00Z
    deprecated: yes
    description: on
    digest: 0x1F
    home: ~
    icon: null
    kubeVersion:
    keywords: [true, False, 1e3, .inf, 0o17, y, n]
    maintainers:
    - {name: 1.0, email: ~, url: TRUE}
    annotations: {1: 2, true: no, licenses: Apache-2.0, empty: }
    dependencies:
    - {name: redis, version: 18, enabled: off, tags: [1, yes]}
    urls: [charts/typed-1.10.tgz]
  nodigest:
  - name: nodigest
    version: 2.0.0
    appVersion: 1.20
    created: 2024-06-01
    annotations: {a: 1.50, b: null, c: ~}
    sources: [5, 010]
  merged:
  - name: merged
    version: 1.0.0
    digest: abc
    annotations: {<<: {x: "1"}, y: "2"}
  plain:
  - name: plain
    version: 3.0.0
    digest: def
    created: "2024-01-01T00:00:00Z"
    description: "quoted: \\"text\\" \\u00e9"
generated: 2024-01-01T00:00:00Z
"""


def base_loader_entries(body: bytes) -> dict:
    return yaml.load(body, Loader=yaml.CBaseLoader)["entries"]


def read(body: bytes) -> dict:
    return dict(helm.read_entries(body))


def test_yaml_11_forms_are_read_as_the_text_written():
    entries = read(YAML_11_FORMS)

    assert entries == base_loader_entries(YAML_11_FORMS)
    typed = entries["typed"][0]
    assert (typed["version"], typed["appVersion"], typed["deprecated"]) == ("1.10", "010", "yes")
    assert typed["created"] == "2024-01-01T00:00:00Z"
    assert entries["merged"][0]["annotations"] == {"<<": {"x": "1"}, "y": "2"}  # no merge


def test_the_realistic_index_is_read_chart_by_chart_as_the_base_loader_read_it():
    body = realistic_index(30, 4)

    assert len(helm.split_entries(body) or []) == 30
    assert read(body) == base_loader_entries(body)


ODD_LAYOUTS = {
    "four-space indentation": b"entries:\n    a:\n        - {name: a, version: 1.0.0}\n"
    b"    b:\n        - name: b\n          version: 2.0.0\n",
    "indented list items": b"entries:\n  a:\n    - name: a\n      version: 1.0.0\n",
    "comments and blank lines between charts": b"# top\nentries:\n\n  # a chart\n  a:\n"
    b"  - {name: a, version: 1.0.0}\n\n# between\n  b:\n  - {name: b, version: 2.0.0}\n",
    "quoted and odd chart keys": b'entries:\n  "a: b":\n  - {name: x, version: 1.0.0}\n'
    b"  'it''s':\n  - {name: y, version: 1.0.0}\n  -dash:\n  - {name: z, version: 1.0.0}\n",
    "a quoted value whose next line sits at the chart indentation": b"entries:\n  a:\n"
    b'  - {name: a, version: 1.0.0, description: "one\n  b: two"}\n  c:\n  - {name: c, version: 1.0.0}\n',
    "a flow list across lines": b"entries:\n  a:\n  - name: a\n    version: 1.0.0\n"
    b"    keywords: [x,\n  y]\n",
    "flow style entries": b"entries: {a: [{name: a, version: 1.0.0}], b: []}\n",
    "entries first, keys after": b"entries:\n  a:\n  - {name: a, version: 1.0.0}\n"
    b"apiVersion: v1\ngenerated: x\n",
    "a chart listed twice (the last wins)": b"entries:\n  a:\n  - {name: a, version: 1.0.0}\n"
    b"  a:\n  - {name: a, version: 2.0.0}\n",
    "an anchor in one chart, its alias in another": b"entries:\n  a:\n"
    b"  - {name: a, version: 1.0.0, maintainers: &m [{name: Ann}]}\n"
    b"  b:\n  - {name: b, version: 1.0.0, maintainers: *m}\n",
    "a document start marker": b"---\napiVersion: v1\nentries:\n  a:\n  - {name: a, version: 1.0.0}\n",
    "CRLF line ends": b"apiVersion: v1\r\nentries:\r\n  a:\r\n  - {name: a, version: 1.0.0}\r\n",
}


@pytest.mark.parametrize("body", ODD_LAYOUTS.values(), ids=ODD_LAYOUTS.keys())
def test_odd_layouts_are_read_as_the_base_loader_read_them(body):
    assert read(body) == base_loader_entries(body)


def test_a_reimport_after_the_parser_change_writes_no_row(helm_repo, monkeypatch):
    charts = realistic_index(20, 3).split(b"entries:\n", 1)[1].rsplit(b"generated:", 1)[0]
    body = YAML_11_FORMS.replace(b"entries:\n", b"entries:\n" + charts)
    assert len(base_loader_entries(body)) == 24  # one valid document
    helm_repo.write_index(body)
    source = helm_source(helm_repo)
    with monkeypatch.context() as patch:  # the reader before: the base loader, whole
        patch.setattr(
            helm,
            "read_entries",
            lambda data: iter(helm.load_index_as_text(data)["entries"].items()),
        )
        first = sync(source)
    assert first.status == SyncRun.Status.SUCCEEDED, first.error
    assert first.added == 64
    stamps = dict(ChartVersion.objects.values_list("pk", "updated_at"))
    # Forget what was read, so that the same bytes are read again, now by the new reader.
    ChartSource.objects.filter(pk=source.pk).update(content_digest="", etag="", last_modified="")
    writes: list[str] = []

    def count_writes(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "COPY")):
            writes.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count_writes):
        again = sync(source)

    assert again.status == SyncRun.Status.SUCCEEDED, again.error
    assert (again.added, again.updated, again.removed) == (0, 0, 0)
    assert dict(ChartVersion.objects.values_list("pk", "updated_at")) == stamps
    chart_tables = ('"charts_chart"', '"charts_chartversion"')  # versions and charts alike
    assert [w for w in writes if any(table in w for table in chart_tables)] == []


def test_a_malformed_chart_part_way_fails_the_run_and_marks_nothing_removed(helm_repo):
    source = helm_source(helm_repo)
    good = b"apiVersion: v1\nentries:\n  a:\n  - {name: a, version: 1.0.0}\n"
    helm_repo.write_index(good + b"  z:\n  - {name: z, version: 1.0.0}\n")
    sync(source)
    broken = good + b"  b:\n  - {name: b, version: [unclosed\n"
    helm_repo.write_index(broken)

    run = sync(source)

    assert run.status == SyncRun.Status.FAILED
    assert "not valid YAML" in run.error and "line 7" in run.error  # the end of the file
    assert not ChartVersion.objects.filter(removed_upstream_at__isnull=False).exists()
    # The failed content is not remembered as done: the next run reads it again.
    assert ChartSource.objects.get(pk=source.pk).content_digest != sha256_digest(broken)


def test_an_index_nested_too_deep_is_refused_with_its_reason(helm_repo):
    deep = "[" * 100 + "]" * 100
    helm_repo.write_index(
        f"apiVersion: v1\nentries:\n  a:\n  - {{name: a, version: 1.0.0, keywords: {deep}}}\n".encode()
    )

    run = sync(helm_source(helm_repo))

    assert run.status == SyncRun.Status.FAILED
    assert f"more than {helm.MAX_DEPTH} levels deep" in run.error
    assert not ChartVersion.objects.exists()


def test_an_alias_bomb_inside_one_chart_is_refused(helm_repo):
    lines = ["apiVersion: v1", "entries:", "  bomb:", "  - name: bomb", "    version: 1.0.0"]
    lines.append("    l0: &l0 [x, x, x, x, x, x, x, x, x, x]")
    for n in range(1, 9):
        lines.append(f"    l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 10) + "]")
    helm_repo.write_index(("\n".join(lines) + "\n").encode())

    run = sync(helm_source(helm_repo))

    assert run.status == SyncRun.Status.FAILED
    assert "expand to far more than the file holds" in run.error
    assert not ChartVersion.objects.exists()
