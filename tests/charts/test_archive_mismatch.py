"""A tag whose archive's Chart.yaml names another chart or version than its config: warned.

The sync indexes a version from the tag's config (no archive download); the archive is
read later, in the background, for values.yaml and the README. When its own Chart.yaml
disagrees, the version keeps a warning: on the chart page, on its store card, on the run.
"""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from charts import files
from charts.models import Chart, ChartVersion, SyncRun
from tests.chartkit import chart_config, chart_manifest, chart_yaml_of, make_chart_archive
from tests.charts.helpers import oci_registry, pusher_for, source_of, sync, unique

pytestmark = pytest.mark.django_db(transaction=True)


def push_mismatched(server, repo: str) -> None:
    """Tag 0.4.0_build.7: the config says 0.4.0+build.7, the archive's Chart.yaml 0.3.0."""
    archive = make_chart_archive("web", "0.3.0", values="old: true\n")
    meta = {**chart_yaml_of(archive), "version": "0.4.0+build.7", "description": "New web"}
    config = chart_config(meta)
    pusher = pusher_for(server)
    try:
        pusher.push_blob(repo, config)
        pusher.push_blob(repo, archive)
        manifest = chart_manifest(config, archive, meta)
        pusher.push_raw_manifest(repo, "0.4.0_build.7", manifest)
    finally:
        pusher.close()
    assert json.loads(manifest)["config"]["mediaType"].startswith("application/vnd.cncf.helm")


def test_an_archive_whose_chart_yaml_says_another_version_is_warned_everywhere(
    chart_registry, admin_client
):
    repo = unique("charts/web")
    push_mismatched(chart_registry, repo)
    source = source_of(oci_registry(chart_registry, [repo]), repo)
    run = sync(source)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error

    files.read_pending_files()

    version = ChartVersion.objects.get(chart__source=source)
    assert version.version == "0.4.0+build.7"
    assert "0.3.0" in version.content_warning and "0.4.0+build.7" in version.content_warning
    chart = Chart.objects.get(source=source)
    page = admin_client.get(
        reverse("charts:chart_detail", args=[chart.pk]), {"version": "0.4.0+build.7"}
    ).content.decode()
    assert version.content_warning in page.replace("&#x27;", "'")
    store = admin_client.get(reverse("charts:chart_list"), {"q": "web"}).content.decode()
    assert "content-warning" in store
    run.refresh_from_db()
    assert "0.3.0" in run.warnings


def test_an_archive_that_agrees_with_its_config_has_no_warning(chart_registry):
    repo = unique("charts/fine")
    pusher = pusher_for(chart_registry)
    pusher.push_chart(repo, "1.0.0", make_chart_archive("fine", "1.0.0"))
    pusher.close()
    source = source_of(oci_registry(chart_registry, [repo]), repo)
    sync(source)

    files.read_pending_files()

    version = ChartVersion.objects.get(chart__source=source)
    assert version.files_read_at is not None
    assert version.content_warning == ""
