"""A tag overwritten in the registry shows its new content after one scheduled sync.

The registry's tag list says nothing of digests, so every sync of an OCI source asks for
the digest of each known chart tag (a ``HEAD``, no body, no blob) and re-reads the tags
whose digest changed; their values.yaml and README are read again in the background.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from charts import files
from charts.models import ChartSource, ChartVersion, SyncRun
from charts.sync import run_sync
from charts.tasks import sync_due_sources
from tests.chartkit import make_chart_archive
from tests.charts.helpers import oci_registry, push_versions, source_of, sync, unique
from tests.charts.pushkit import push_now, push_registry

pytestmark = pytest.mark.django_db(transaction=True)


def scheduled_sync(source: ChartSource, queued_syncs: list[int]) -> SyncRun:
    """What beat does every interval (not a deep sync: the last one was just now)."""
    ChartSource.objects.filter(pk=source.pk).update(last_deep_sync_at=timezone.now())
    before = len(queued_syncs)
    assert sync_due_sources() >= 1
    (run_id,) = queued_syncs[before:]
    run_sync(run_id)
    run = SyncRun.objects.get(pk=run_id)
    assert (run.trigger, run.deep) == (SyncRun.Trigger.SCHEDULE, False)
    return run


def read_files_of(source: ChartSource, version: str) -> ChartVersion:
    files.read_pending_files()
    return ChartVersion.objects.get(chart__source=source, version=version)


def test_a_tag_overwritten_outside_wharf_is_picked_up_by_the_next_scheduled_sync(
    chart_registry, queued_syncs
):
    repo = unique("charts/moving")
    push_versions(
        chart_registry, repo, "moving", ["1.0.0"],
        description="first", values="replicaCount: 1\n", readme="# First\n",
    )  # fmt: skip
    source = source_of(oci_registry(chart_registry, [repo]), repo)
    sync(source)
    assert read_files_of(source, "1.0.0").values_yaml == "replicaCount: 1\n"
    new_digest = push_versions(
        chart_registry, repo, "moving", ["1.0.0"],
        description="second", values="replicaCount: 3\n", readme="# Second\n",
    )["1.0.0"]  # fmt: skip

    run = scheduled_sync(source, queued_syncs)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert (run.added, run.updated) == (0, 1)
    version = ChartVersion.objects.get(chart__source=source, version="1.0.0")
    assert (version.digest, version.description) == (new_digest, "second")
    assert version.values_yaml == ""  # the old files are not shown as the new tag's
    version = read_files_of(source, "1.0.0")
    assert (version.values_yaml, version.readme) == ("replicaCount: 3\n", "# Second\n")


def test_an_unchanged_tag_costs_one_head_per_sync_and_no_blob(chart_registry, queued_syncs):
    repo = unique("charts/still")
    push_versions(chart_registry, repo, "still", ["1.0.0", "1.1.0"])
    source = source_of(oci_registry(chart_registry, [repo]), repo)
    sync(source)
    log_before = len(chart_registry.log_path.read_text().splitlines())

    run = scheduled_sync(source, queued_syncs)

    assert (run.added, run.updated, run.removed) == (0, 0, 0)
    lines = chart_registry.log_path.read_text().splitlines()[log_before:]
    assert sum('"HEAD /v2/' in line and "/manifests/" in line for line in lines) == 2
    assert not any('"GET /v2/' in line and "/blobs/" in line for line in lines)
    assert not any('"GET /v2/' in line and "/manifests/" in line for line in lines)


def test_push_with_overwrite_into_a_chart_source_shows_the_new_content(
    chart_registry, queued_syncs
):
    repo = unique("pushed")
    registry = push_registry(chart_registry, [repo])
    source = source_of(registry, repo)
    first = make_chart_archive(repo, "1.0.0", description="first", values="a: 1\n")
    assert push_now(registry, first).status == "succeeded"
    run_sync(queued_syncs[-1])
    assert read_files_of(source, "1.0.0").values_yaml == "a: 1\n"
    second = make_chart_archive(repo, "1.0.0", description="second", values="a: 2\n")

    push = push_now(registry, second, overwrite=True)
    run = run_sync(queued_syncs[-1])

    assert push.status == "succeeded", push.error
    assert (run.trigger, run.added, run.updated) == (SyncRun.Trigger.PUSH, 0, 1)
    version = read_files_of(source, "1.0.0")
    assert (version.digest, version.description) == (push.manifest_digest, "second")
    assert version.values_yaml == "a: 2\n"
