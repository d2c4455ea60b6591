"""The one background-run mechanism (config/runs.py): leases, heartbeats, outcomes, recovery.

Exercised through a real kind of run (a chart sync of a Helm repository that is never
contacted: the work is the test's own function), so every assertion is about rows a
user sees.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.utils import timezone

from charts import tasks as chart_tasks
from charts.models import ChartPush, ChartSource, HelmRepository, SyncRun
from clusters import tasks as cluster_tasks
from config import runs
from config.runs import Lease, Outcome, RunStatus, execute, recover_runs
from tests.servers.base import wait_for

SYNC_TASK = "charts.tasks.sync_chart_source"


@pytest.fixture
def source(db) -> ChartSource:
    repository = HelmRepository.objects.create(
        name="never-contacted", url="https://charts.invalid/stable", active=False
    )
    return ChartSource.objects.create(kind=ChartSource.Kind.HELM, helm_repository=repository)


def queued(source: ChartSource) -> SyncRun:
    return SyncRun.objects.create(source=source, trigger=SyncRun.Trigger.MANUAL)


def succeed(context) -> Outcome:
    return Outcome(fields={"added": 3})


# --- leases -------------------------------------------------------------------------


def test_a_lease_is_held_by_one_owner_until_released(source):
    first = Lease.acquire(ChartSource, source.pk)

    assert first is not None
    assert Lease.acquire(ChartSource, source.pk) is None
    first.release()
    assert Lease.acquire(ChartSource, source.pk) is not None


def test_an_expired_lease_is_taken_over_and_the_old_owner_cannot_renew_it(source, time_machine):
    time_machine.move_to("2026-06-01 08:00Z", tick=False)
    dead = Lease.acquire(ChartSource, source.pk)
    time_machine.shift(timedelta(seconds=settings.WHARF_RUN_LEASE_SECONDS + 1))

    alive = Lease.acquire(ChartSource, source.pk)

    assert alive is not None
    assert dead.renew() is False
    assert alive.renew() is True


def test_a_stale_instance_saved_by_a_form_does_not_put_the_lease_back(source):
    loaded = ChartSource.objects.get(pk=source.pk)
    lease = Lease.acquire(ChartSource, source.pk)

    loaded.etag = '"abc"'
    loaded.save()

    fresh = ChartSource.objects.get(pk=source.pk)
    assert fresh.etag == '"abc"' and fresh.lease_owner == lease.owner


# --- executing ----------------------------------------------------------------------


def test_a_run_ends_with_its_outcome_and_gives_the_lease_back(source):
    run = queued(source)

    done = execute(SyncRun, run.pk, succeed)

    assert (done.status, done.added, done.error) == (RunStatus.SUCCEEDED, 3, "")
    assert done.started_at and done.finished_at and done.lease_owner == ""
    assert ChartSource.objects.get(pk=source.pk).lease_owner == ""


def test_a_finished_run_delivered_again_is_left_alone(source):
    run = execute(SyncRun, queued(source).pk, succeed)
    calls = []

    again = execute(SyncRun, run.pk, lambda context: calls.append(1) or Outcome())

    assert calls == [] and again.finished_at == run.finished_at


def test_a_run_whose_subject_is_held_waits_queued_and_is_handed_on(source, broker):
    lease = Lease.acquire(ChartSource, source.pk)  # another run of this source is working
    waiting = queued(source)

    assert execute(SyncRun, waiting.pk, succeed).status == RunStatus.QUEUED
    lease.release()
    other = queued(source)
    execute(SyncRun, other.pk, succeed)  # the next one to finish hands the waiting one on

    assert broker.sent(SYNC_TASK) == [waiting.pk]
    broker.run_all()  # the real task, as a worker runs it: here the source is inactive
    waiting.refresh_from_db()
    assert waiting.finished


def test_an_unexpected_error_fails_the_run_and_is_logged_with_its_traceback(source, caplog):
    def broken(context):
        raise KeyError("a bug")

    with caplog.at_level(logging.ERROR, logger="config.runs"):
        run = execute(SyncRun, queued(source).pk, broken)

    assert run.status == RunStatus.FAILED
    assert run.error == "The chart sync failed unexpectedly (KeyError); see the worker log."
    assert "Traceback" in caplog.text or caplog.records[0].exc_info


def test_an_expected_error_is_shown_in_its_own_words(source):
    def refuses(context):
        raise ValueError("The registry said no.")

    run = execute(SyncRun, queued(source).pk, refuses, expected=(ValueError,))

    assert (run.status, run.error) == (RunStatus.FAILED, "The registry said no.")


def test_a_run_over_its_time_limit_fails_saying_which_setting_bounds_it(source):
    def slow(context):
        raise SoftTimeLimitExceeded()  # what Celery raises in the task at the soft limit

    run = execute(SyncRun, queued(source).pk, slow)

    assert run.status == RunStatus.FAILED
    assert run.error == (
        f"Stopped after {settings.WHARF_SYNC_TIME_LIMIT} seconds, the time limit for a "
        "chart sync (WHARF_SYNC_TIME_LIMIT)."
    )


def test_every_task_has_the_time_limit_of_its_kind_of_work():
    limits = {
        chart_tasks.sync_chart_source: settings.WHARF_SYNC_TIME_LIMIT,
        chart_tasks.push_chart: settings.WHARF_PUSH_TIME_LIMIT,
        cluster_tasks.reconcile_cluster_pull_secrets: settings.WHARF_RECONCILE_TIME_LIMIT,
    }
    for task, limit in limits.items():
        assert task.soft_time_limit == limit, task.name
        assert task.time_limit > task.soft_time_limit, task.name
    for task in (chart_tasks.sync_due_sources, cluster_tasks.reconcile_all_pull_secrets):
        assert task.soft_time_limit, task.name


# --- the heartbeat (its own thread and database connection) ----------------------------


@pytest.fixture
def quick_leases(settings):
    settings.WHARF_RUN_HEARTBEAT_SECONDS = 0.1
    settings.WHARF_RUN_LEASE_SECONDS = 0.5


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_keeps_a_run_longer_than_its_lease_alive(quick_leases, source):
    run = queued(source)
    seen = {}

    def long_work(context):
        # Several lease lengths: without beats the lease would lapse long before the end.
        wait_for(lambda: context.heartbeat.beats >= 8, what="eight heartbeats")
        held = ChartSource.objects.get(pk=source.pk)
        seen["held"] = held.lease_held()
        seen["second"] = execute(SyncRun, queued(source).pk, succeed).status
        return Outcome()

    done = execute(SyncRun, run.pk, long_work)

    assert done.status == RunStatus.SUCCEEDED
    assert seen == {"held": True, "second": RunStatus.QUEUED}  # never two at once


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_writes_live_progress_on_the_run(quick_leases, source):
    run = queued(source)

    def counting(context):
        context.progress["http_requests"] = 41
        wait_for(
            lambda: SyncRun.objects.get(pk=run.pk).http_requests == 41,
            what="the request count on the run",
        )
        return Outcome(fields={"http_requests": 42})

    assert execute(SyncRun, run.pk, counting).http_requests == 42


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_lease_was_taken_over_stops_and_says_so(quick_leases, source):
    run = queued(source)

    def overtaken(context):
        ChartSource.objects.filter(pk=source.pk).update(lease_owner="another-worker")
        wait_for(lambda: context.heartbeat.lost, what="the heartbeat to notice")
        context.check()
        return Outcome()

    done = execute(SyncRun, run.pk, overtaken)

    assert done.status == RunStatus.FAILED
    assert done.error == "Another worker took this run over after its lease expired."
    # What is the other worker's stays the other worker's.
    assert ChartSource.objects.get(pk=source.pk).lease_owner == "another-worker"


# --- recovery -------------------------------------------------------------------------


def dead_run(source, *, minutes_ago: int = 10) -> SyncRun:
    expired = timezone.now() - timedelta(minutes=minutes_ago)
    run = SyncRun.objects.create(
        source=source,
        status=RunStatus.RUNNING,
        started_at=expired - timedelta(minutes=1),
        lease_owner="killed-worker",
        lease_expires_at=expired,
    )
    ChartSource.objects.filter(pk=source.pk).update(
        lease_owner="killed-worker", lease_expires_at=expired
    )
    return run


def test_recovery_closes_a_run_whose_worker_died_and_frees_its_subject(source):
    run = dead_run(source)

    assert recover_runs().closed == 1

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.finished_at
    assert run.error.startswith("The worker stopped before this run finished (no heartbeat since")
    assert ChartSource.objects.get(pk=source.pk).lease_owner == ""


def test_recovery_then_sends_the_run_that_waited_behind_the_dead_one(source, broker):
    dead_run(source)
    waiting = queued(source)
    SyncRun.objects.filter(pk=waiting.pk).update(queued_at=timezone.now() - timedelta(hours=1))

    recovered = recover_runs()

    assert (recovered.closed, recovered.resent) == (1, 1)
    assert broker.sent(SYNC_TASK) == [waiting.pk]


def test_recovery_leaves_a_live_run_alone(source):
    run = SyncRun.objects.create(
        source=source,
        status=RunStatus.RUNNING,
        lease_owner="alive",
        lease_expires_at=timezone.now() + timedelta(seconds=30),
    )

    assert recover_runs().closed == 0
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING


def test_recovery_sends_a_lost_run_once_per_period_not_every_tick(source, broker, time_machine):
    time_machine.move_to("2026-06-01 08:00Z", tick=False)
    lost = queued(source)
    time_machine.shift(timedelta(seconds=settings.WHARF_RUN_RESEND_AFTER_SECONDS + 1))

    recover_runs()
    recover_runs()  # the next tick, a minute later in real life
    assert broker.sent(SYNC_TASK) == [lost.pk]

    time_machine.shift(timedelta(seconds=settings.WHARF_RUN_RESEND_AFTER_SECONDS + 1))
    recover_runs()
    assert broker.sent(SYNC_TASK) == [lost.pk, lost.pk]


def test_recovery_sends_one_run_per_subject_and_none_behind_a_live_one(source, broker):
    old = timezone.now() - timedelta(hours=1)
    first, second = queued(source), queued(source)
    SyncRun.objects.filter(pk__in=[first.pk, second.pk]).update(queued_at=old)

    recover_runs()
    assert broker.sent(SYNC_TASK) == [first.pk]

    broker.sent(SYNC_TASK).clear()
    SyncRun.objects.filter(pk=first.pk).update(sent_at=None)
    Lease.acquire(ChartSource, source.pk)  # a live run holds the source
    recover_runs()
    assert broker.sent(SYNC_TASK) == []


def test_a_push_whose_worker_died_loses_its_uploaded_bytes(db):
    from tests.factories import RegistryFactory

    push = ChartPush.objects.create(
        registry=RegistryFactory(push_helm=True),
        chart_name="web", version="1.0.0", repository="web", tag="1.0.0",
        archive_digest="sha256:" + "0" * 64, archive_size=3, archive=b"tgz", provenance=b"p",
        status=RunStatus.RUNNING, lease_owner="gone",
        lease_expires_at=timezone.now() - timedelta(minutes=5),
    )  # fmt: skip

    recover_runs()

    push.refresh_from_db()
    assert push.status == RunStatus.FAILED and "push the chart again" in push.error
    assert bytes(push.archive) == b"" and bytes(push.provenance) == b""


def test_a_broker_outage_is_logged_and_the_run_stays_queued(source, broker, caplog):
    broker.down = True
    run = queued(source)

    runs.send_run_by_name(SYNC_TASK, run.pk)

    assert "Could not queue charts.tasks.sync_chart_source" in caplog.text
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and run.sent_at is not None
