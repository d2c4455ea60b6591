"""Tags an OCI source skips as "not a Helm chart" are named on the run, bounded."""

from __future__ import annotations

import pytest
from django.urls import reverse

from charts.models import SyncRun
from tests.charts.helpers import oci_registry, push_versions, pusher_for, source_of, sync, unique

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_run_names_the_tags_it_skipped_as_not_helm_charts(chart_registry, admin_client):
    repo = unique("charts/mixed")
    push_versions(chart_registry, repo, "mixed", ["1.0.0"])
    pusher = pusher_for(chart_registry)
    pusher.push_image(repo, "latest")
    pusher.push_image(repo, "nightly")
    pusher.close()
    source = source_of(oci_registry(chart_registry, [repo]), repo)

    first, again = sync(source), sync(source)

    for run in (first, again):  # named when found, and again while they are skipped
        assert run.status == SyncRun.Status.SUCCEEDED, run.error
        assert (run.skipped_tags, run.skipped_count) == (["latest", "nightly"], 2)
    page = admin_client.get(reverse("charts:chartsource_detail", args=[source.pk]))
    text = page.content.decode()
    assert "2 tags skipped" in text and "nightly" in text


def test_the_skipped_tags_kept_on_a_run_are_bounded(chart_registry, settings):
    from charts.sync import run as sync_run

    repo = unique("charts/images")
    pusher = pusher_for(chart_registry)
    for n in range(sync_run.MAX_SKIPPED_TAGS_KEPT + 3):
        pusher.push_image(repo, f"build-{n:03d}")
    pusher.close()
    source = source_of(oci_registry(chart_registry, [repo]), repo)

    run = sync(source)

    assert run.skipped_count == sync_run.MAX_SKIPPED_TAGS_KEPT + 3
    assert len(run.skipped_tags) == sync_run.MAX_SKIPPED_TAGS_KEPT
    assert run.skipped_tags[0] == "build-000"
