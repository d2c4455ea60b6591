"""The chart page's dependencies and values.schema.json, and values.yaml compared between
two versions: all from what the background reads stored, never fetched by a page view."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from charts.compare import pretty_schema, values_diff
from charts.models import Chart, ChartSource, ChartVersion, HelmRepository
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db

TASK = "charts.tasks.read_chart_files"


def helm_source_at(name: str, url: str) -> ChartSource:
    repository = HelmRepository.objects.create(name=name, url=url)
    return ChartSource.objects.create(kind="helm", helm_repository=repository)


def chart_with(source, name: str, versions: dict[str, dict]) -> Chart:
    """A chart whose versions are read already: version -> ChartVersion fields."""
    chart = Chart.objects.create(source=source, name=name, latest_version=next(iter(versions)))
    for version, fields in versions.items():
        read = {"files_read_at": timezone.now(), **fields}
        ChartVersion.objects.create(chart=chart, version=version, fingerprint=version, **read)
    return chart


@pytest.fixture
def bitnami():
    return helm_source_at("bitnami", "https://charts.bitnami.example/bitnami")


# --- dependencies -----------------------------------------------------------------------


def test_dependencies_are_listed_and_linked_to_the_chart_from_their_repository(
    user_client, bitnami
):
    other = helm_source_at("mirror", "https://mirror.example/charts")
    redis = chart_with(bitnami, "redis", {"17.3.0": {}})
    chart_with(other, "redis", {"17.0.0": {}})
    app = chart_with(
        bitnami,
        "webapp",
        {
            "1.0.0": {
                "metadata": {
                    "dependencies": [
                        {"name": "redis", "version": "~17.3", "repository": bitnami.location + "/"},
                        {"name": "redis", "version": ">=17", "repository": "@somewhere",
                         "alias": "cache"},
                        {"name": "unknown", "version": "1.x", "repository": "https://x.example"},
                    ]
                }
            }
        },
    )  # fmt: skip
    response = user_client.get(reverse("charts:chart_detail", args=[app.pk]))
    deps = response.context["dependencies"]
    assert [(d.name, d.version, d.chart, d.from_repository) for d in deps] == [
        ("redis", "~17.3", redis, True),
        ("redis", ">=17", redis, False),  # the repository cannot be told: the same name
        ("unknown", "1.x", None, False),
    ]
    html = response.content.decode()
    assert reverse("charts:chart_detail", args=[redis.pk]) in html
    assert "https://charts.bitnami.example/bitnami/" in html and "~17.3" in html
    assert "Not in the Chart Store." in html


def test_an_oci_dependency_links_to_the_chart_in_that_registry_folder(user_client, bitnami):
    registry = RegistryFactory(url="registry.example:5000", chart_source=True)
    oci = ChartSource.objects.create(kind="oci", registry=registry, repository="charts/redis")
    in_registry = chart_with(oci, "redis", {"18.0.0": {}})
    chart_with(bitnami, "redis", {"17.3.0": {}})
    dependency = {
        "name": "redis",
        "version": "18",
        "repository": "oci://registry.example:5000/charts",
    }
    app = chart_with(bitnami, "app", {"1.0.0": {"metadata": {"dependencies": [dependency]}}})
    deps = user_client.get(reverse("charts:chart_detail", args=[app.pk])).context["dependencies"]
    assert (deps[0].chart, deps[0].from_repository) == (in_registry, True)


def test_dependency_links_take_a_fixed_number_of_queries(user_client, bitnami):
    for i in range(10):
        chart_with(bitnami, f"dep-{i}", {"1.0.0": {}})
    dependencies = [{"name": f"dep-{i}", "repository": bitnami.location} for i in range(10)]
    app = chart_with(bitnami, "app", {"1.0.0": {"metadata": {"dependencies": dependencies}}})
    url = reverse("charts:chart_detail", args=[app.pk])
    with CaptureQueriesContext(connection) as few:
        user_client.get(url)
    app.versions.update(metadata={"dependencies": dependencies[:1]})
    with CaptureQueriesContext(connection) as one:
        user_client.get(url)
    assert len(few.captured_queries) == len(one.captured_queries)


# --- values.schema.json -----------------------------------------------------------------


def test_the_values_schema_is_pretty_printed_and_escaped(user_client, bitnami):
    schema = '{"type":"object","description":"</code></pre><script>alert(1)</script>"}'
    chart = chart_with(bitnami, "app", {"1.0.0": {"values_schema": schema}})
    html = user_client.get(reverse("charts:chart_detail", args=[chart.pk])).content.decode()
    assert "values.schema.json</button>" in html
    assert "{\n  &quot;type&quot;: &quot;object&quot;," in html
    assert "<script>alert(1)" not in html
    assert "&lt;/code&gt;&lt;/pre&gt;&lt;script&gt;alert(1)" in html


def test_a_schema_that_is_not_json_is_shown_as_written_with_a_warning():
    shown = pretty_schema("{not json")
    assert shown is not None and (shown.text, shown.valid) == ("{not json", False)
    assert pretty_schema("") is None
    assert pretty_schema("\ufeff{}") is not None


def test_a_chart_without_a_schema_has_no_schema_tab(user_client, bitnami):
    chart = chart_with(bitnami, "app", {"1.0.0": {}})
    html = user_client.get(reverse("charts:chart_detail", args=[chart.pk])).content.decode()
    assert "values.schema.json" not in html


# --- values.yaml compared ---------------------------------------------------------------


OLD = "replicaCount: 1\nimage:\n  tag: 1.0\nservice:\n  port: 80\n"
NEW = "replicaCount: 1\nimage:\n  tag: 2.0\nservice:\n  port: 80\n  type: ClusterIP\n"


def test_a_diff_marks_added_and_removed_lines_in_both_layouts():
    diff = values_diff(OLD, NEW)
    assert (diff.added, diff.removed) == (2, 1)
    changed = [(line.kind, line.text) for line in diff.unified if line.kind != "context"]
    assert changed == [
        ("hunk", "@@ -1,5 +1,6 @@"),
        ("removed", "  tag: 1.0"),
        ("added", "  tag: 2.0"),
        ("added", "  type: ClusterIP"),
    ]
    rows = [(p.left and p.left.text, p.right and p.right.text) for p in diff.side_by_side]
    assert ("  tag: 1.0", "  tag: 2.0") in rows
    assert (None, "  type: ClusterIP") in rows
    assert values_diff(OLD, OLD).same


@pytest.fixture
def two_versions(bitnami):
    return chart_with(
        bitnami, "app", {"2.0.0": {"values_yaml": NEW}, "1.0.0": {"values_yaml": OLD}}
    )


def test_the_compare_page_shows_the_latest_against_the_version_before(user_client, two_versions):
    url = reverse("charts:chart_values_diff", args=[two_versions.pk])
    response = user_client.get(url)
    assert (response.context["old"].version, response.context["new"].version) == ("1.0.0", "2.0.0")
    html = response.content.decode()
    assert (
        '<td class="diff-removed"><span class="diff-sign" aria-label="removed">−</span>  tag: 1.0</td>'
        in html
    )
    assert (
        '<td class="diff-added"><span class="diff-sign" aria-label="added">+</span>  tag: 2.0</td>'
        in html
    )
    split = user_client.get(url, {"from": "1.0.0", "to": "2.0.0", "layout": "split"})
    assert 'class="diff diff-split"' in split.content.decode()


def test_bad_compare_parameters_fall_back_and_never_fail(user_client, two_versions):
    url = reverse("charts:chart_values_diff", args=[two_versions.pk])
    for params in ({"from": "9.9.9"}, {"to": "x" * 999}, {"layout": "<b>"}, {"from": "\x00"}):
        assert user_client.get(url, params).status_code == 200


def test_a_version_not_read_yet_is_said_and_read_only_when_asked_by_post(
    user_client, two_versions, broker, django_capture_on_commit_callbacks
):
    old = two_versions.versions.get(version="1.0.0")
    ChartVersion.objects.filter(pk=old.pk).update(files_read_at=None, values_yaml="")
    url = reverse("charts:chart_values_diff", args=[two_versions.pk])

    response = user_client.get(url)
    html = response.content.decode()
    assert "The values.yaml of 1.0.0 is not read yet" in html
    assert 'hx-trigger="every 2s"' in html and response.context["diff"] is None
    assert not broker.sent(TASK)

    with django_capture_on_commit_callbacks(execute=True):
        posted = user_client.post(url, {"version": "1.0.0", "from": "1.0.0", "to": "2.0.0"})
    assert posted.status_code == 302 and "from=1.0.0" in posted["Location"]
    assert broker.sent(TASK)
    assert ChartVersion.objects.get(pk=old.pk).files_requested_at is not None


def test_the_comparison_stops_polling_once_both_versions_are_read(user_client, two_versions):
    url = reverse("charts:chart_values_diff", args=[two_versions.pk])
    response = user_client.get(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 286
    assert '<nav class="navbar' not in response.content.decode()


def test_the_background_read_keeps_the_values_schema(helm_repo):
    from charts.files import read_pending_files
    from tests.chartkit import helm_index, make_chart_archive
    from tests.charts.helpers import helm_source, sync

    schema = b'{"type": "object"}'
    archive = make_chart_archive("app", "1.0.0", extra={"values.schema.json": schema})
    helm_repo.put("charts/app-1.0.0.tgz", archive)
    helm_repo.write_index(helm_index([{"name": "app", "version": "1.0.0", "archive": archive}]))
    sync(helm_source(helm_repo))
    read_pending_files()
    assert ChartVersion.objects.get(chart__name="app").values_schema == schema.decode()
