"""Syncs spend within their registry's rate-limit budget (registries/budgets.py,
charts/sync/budget.py).

Against the real distribution registry behind :class:`tests.servers.ratelimit.
RateLimitingFront`, which adds the rate-limit headers to each answer, spends one of its
budget per request and answers 429 when told to (or when nothing is left); what Wharf
sent is counted there.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from charts.models import ChartVersion, SyncRun
from charts.sync import queue_sync
from charts.sync.run import run_registry_batch, run_registry_syncs
from config.metrics import exposition
from registries import budgets
from registries.models import RateLimitBudget
from tests.charts.helpers import oci_registry, push_versions, source_of, sync, unique
from tests.servers.ratelimit import RateLimitingFront

pytestmark = pytest.mark.django_db(transaction=True)

VERSIONS = [f"1.{i}.0" for i in range(8)]  # a tag list, 8 manifests and 8 configs: 17 requests


@pytest.fixture
def charts(chart_registry) -> str:
    repository = unique("charts/limited")
    push_versions(chart_registry, repository, repository.rsplit("/", 1)[1], VERSIONS)
    return repository


def front_for(chart_registry, **kw) -> RateLimitingFront:
    return RateLimitingFront(chart_registry.host, **kw)


class _Through:
    """A registry row that reaches the chart registry through a front."""

    def __init__(self, front: RateLimitingFront, repositories: list[str]) -> None:
        self.host, self.username, self.password, self.tls = front.host, "", "", False
        self.registry = oci_registry(self, repositories, name=unique("budget"))


def registry_through(front: RateLimitingFront, repositories: list[str]):
    return _Through(front, repositories).registry


def indexed(source) -> int:
    return ChartVersion.objects.filter(chart__source=source).count()


def test_every_answer_keeps_the_registrys_budget_in_the_database(chart_registry, charts):
    with front_for(chart_registry, limit=100, window=21600) as front:
        registry = registry_through(front, [charts])
        run = sync(source_of(registry, charts))

    assert run.status == SyncRun.Status.SUCCEEDED
    budget = RateLimitBudget.objects.get(registry=registry)
    assert (budget.limit, budget.window_seconds) == (100, 21600)
    assert budget.remaining == 100 - front.counted()
    # Docker Hub names no reset: a rolling window is all back one window later at the latest.
    assert timedelta(hours=5, minutes=59) < budget.resets_at - timezone.now() <= timedelta(hours=6)


def test_the_budget_is_written_only_when_it_changes(chart_registry, charts, settings):
    settings.WHARF_CHART_SYNC_CONCURRENCY = 1
    with front_for(chart_registry, limit=100) as front:
        registry = registry_through(front, [charts])
        sync(source_of(registry, charts))
        first = RateLimitBudget.objects.get(registry=registry).updated_at
        budgets.note(registry.pk, reading_of(front))  # the same as the last answer said
    assert RateLimitBudget.objects.get(registry=registry).updated_at == first
    with front_for(chart_registry, limit=100) as front:
        front.remaining = 40
        budgets.note(registry.pk, reading_of(front))  # changed: written
    assert RateLimitBudget.objects.get(registry=registry).remaining == 40


def reading_of(front: RateLimitingFront):
    from config.ratelimit import read_rate_limit

    return read_rate_limit(front.headers(), 200)


def test_a_sync_stops_at_the_reserve_and_waits_for_the_window(chart_registry, charts, settings):
    settings.WHARF_CHART_SYNC_CONCURRENCY = 1  # one request at a time: the count is exact
    settings.WHARF_RATE_LIMIT_RESERVE_PERCENT = 10
    with front_for(chart_registry, limit=10, style="ietf", reset=45, window=60) as front:
        registry = registry_through(front, [charts])
        source = source_of(registry, charts)
        run = sync(source)

        # 10 allowed, 1 (10 %) kept: Wharf spent 9 of the 17 it needs and sent nothing more.
        assert front.counted() == 9
        assert front.refused == []
    assert run.status == SyncRun.Status.QUEUED  # held back, not failed
    assert run.error == ""
    assert "1 of 10 requests left per minute" in run.wait_reason
    assert "10% (1) are kept in reserve" in run.wait_reason
    assert timedelta(seconds=40) < run.not_before - timezone.now() <= timedelta(seconds=45)
    assert 0 < indexed(source) < len(VERSIONS)  # what was read is kept


def test_the_held_back_run_is_sent_again_for_its_time_and_then_finishes(
    chart_registry, charts, settings, broker
):
    settings.WHARF_CHART_SYNC_CONCURRENCY = 1
    with front_for(chart_registry, limit=10, style="structured", reset=45, window=60) as front:
        registry = registry_through(front, [charts])
        source = source_of(registry, charts)
        run = sync(source)
        assert [(args[0], eta) for _name, args, eta in broker.etas] == [(run.pk, run.not_before)]

        # Delivered early (a recovery, a redelivery): it does nothing and sends nothing.
        before = front.counted()
        run_registry_batch(run.pk)
        run.refresh_from_db()
        assert run.status == SyncRun.Status.QUEUED and front.counted() == before

        front.limit = 100  # the next window holds enough for the rest
        front.new_window()
        with time_machine.travel(run.not_before + timedelta(seconds=1)):
            run_registry_batch(run.pk)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED
    assert (run.not_before, run.wait_reason) == (None, "")
    assert indexed(source) == len(VERSIONS)


def test_other_registries_go_on_while_one_waits(chart_registry, charts, settings):
    settings.WHARF_CHART_SYNC_CONCURRENCY = 1
    with (
        front_for(chart_registry, limit=10, style="ietf", reset=300) as spent,
        front_for(chart_registry, limit=1000, style="ietf") as plenty,
    ):
        waiting = registry_through(spent, [charts])
        going = registry_through(plenty, [charts])
        held = sync(source_of(waiting, charts))
        assert held.status == SyncRun.Status.QUEUED

        again = queue_sync(source_of(waiting, charts), trigger=SyncRun.Trigger.MANUAL)
        other = queue_sync(source_of(going, charts), trigger=SyncRun.Trigger.MANUAL)
        spent_before = spent.counted()
        run_registry_batch(again.pk)
        run_registry_batch(other.pk)
        other.refresh_from_db()

        assert again.pk == held.pk  # "Sync now" joins the run that waits
        assert spent.counted() == spent_before  # the spent registry was not asked again
    assert other.status == SyncRun.Status.SUCCEEDED
    assert indexed(source_of(going, charts)) == len(VERSIONS)


def test_a_429_is_retried_after_its_retry_after_and_the_sync_goes_on(chart_registry, charts):
    with front_for(chart_registry) as front:
        registry = registry_through(front, [charts])
        front.refuse(2, "/tags/list", retry_after="0")
        run = sync(source_of(registry, charts))

        assert len(front.requests_for("/tags/list")) == 3  # two 429s, then the list
    assert run.status == SyncRun.Status.SUCCEEDED
    assert run.added == len(VERSIONS)


def test_429s_are_retried_at_most_three_times_then_the_run_waits(chart_registry, charts):
    with front_for(chart_registry) as front:
        registry = registry_through(front, [charts])
        front.refuse(10, "/tags/list", retry_after="0")
        run = sync(source_of(registry, charts))

        assert len(front.requests_for("/tags/list")) == 4  # the first try and three retries
    assert run.status == SyncRun.Status.QUEUED
    assert "rate limiting" in run.wait_reason
    assert RateLimitBudget.objects.get(registry=registry).throttled_until is not None


def test_a_long_retry_after_is_not_slept_through_the_run_waits_instead(chart_registry, charts):
    with front_for(chart_registry) as front:
        registry = registry_through(front, [charts])
        front.refuse(10, "/tags/list", retry_after="600")
        run = sync(source_of(registry, charts))

        assert len(front.requests_for("/tags/list")) == 1
    assert run.status == SyncRun.Status.QUEUED
    assert timedelta(seconds=590) < run.not_before - timezone.now() <= timedelta(seconds=600)


def test_after_a_429_the_remaining_repositories_of_the_registry_are_held_back(
    chart_registry, settings
):
    settings.WHARF_OCI_SYNC_REPOSITORIES = 1  # one after another, the first one refused
    repositories = [unique("charts/held") for _ in range(3)]
    for repository in repositories:
        push_versions(chart_registry, repository, repository.rsplit("/", 1)[1], ["1.0.0"])
    with front_for(chart_registry) as front:
        registry = registry_through(front, repositories)
        front.refuse(10, f"/{repositories[0]}/tags/list", retry_after="300")
        ids = [
            queue_sync(source_of(registry, r), trigger=SyncRun.Trigger.MANUAL).pk
            for r in repositories
        ]
        results = run_registry_syncs(ids)

        for repository in repositories[1:]:
            assert front.requests_for(repository) == []  # not asked at all
    for run in results.values():
        assert run.status == SyncRun.Status.QUEUED  # held back, none failed
        assert run.not_before > timezone.now() + timedelta(seconds=290)


def test_the_budget_is_a_metric(chart_registry, charts):
    with front_for(chart_registry, limit=100) as front:
        registry = registry_through(front, [charts])
        sync(source_of(registry, charts))
        left = 100 - front.counted()

    text = exposition().decode()
    assert f'wharf_registry_rate_limit_remaining{{registry="{registry.name}"}} {left}.0' in text
    assert f'wharf_registry_rate_limit_limit{{registry="{registry.name}"}} 100.0' in text


def test_the_recovery_does_not_send_a_held_back_run_before_its_time(
    chart_registry, charts, settings, broker
):
    from config.runs import recover_runs

    settings.WHARF_CHART_SYNC_CONCURRENCY = 1
    with front_for(chart_registry, limit=10, style="ietf", reset=3600) as front:
        run = sync(source_of(registry_through(front, [charts]), charts))
    sent = len(broker.sent(SyncRun.task_name))
    resend_after = timedelta(seconds=settings.WHARF_RUN_RESEND_AFTER_SECONDS)

    assert recover_runs(timezone.now() + resend_after * 2).resent == 0  # still before its time
    assert len(broker.sent(SyncRun.task_name)) == sent
    # Its message lost after all: sent again once its time (and the resend delay) is past.
    assert recover_runs(run.not_before + resend_after * 2).resent == 1


def test_chart_file_reads_wait_for_the_window_too(chart_registry, charts, settings):
    from charts import files

    settings.WHARF_CHART_SYNC_CONCURRENCY = 1
    with front_for(chart_registry, limit=10, style="ietf", reset=900) as front:
        run = sync(source_of(registry_through(front, [charts]), charts))
        spent = front.counted()
        files.read_pending_files()

        assert front.counted() == spent  # no archive asked for below the reserve
    versions = ChartVersion.objects.filter(chart__source_id=run.source_id)
    assert versions.exists()
    for version in versions:
        assert version.files_attempts == 0 and version.files_read_at is None
        assert abs(version.files_next_attempt_at - run.not_before) < timedelta(seconds=5)


def test_a_window_of_centuries_holds_a_sync_back_a_day_at_most(
    chart_registry, charts, settings, caplog
):
    settings.WHARF_CHART_SYNC_CONCURRENCY = 1
    with front_for(chart_registry, limit=10, window=10**11) as front:  # 3,000 years
        registry = registry_through(front, [charts])
        run = sync(source_of(registry, charts))

    assert run.status == SyncRun.Status.QUEUED  # held back at the reserve, not failed
    assert run.not_before - timezone.now() <= timedelta(days=1)
    budget = RateLimitBudget.objects.get(registry=registry)
    assert budget.remaining == 1 and budget.resets_at - timezone.now() <= timedelta(days=1)
    assert "Could not" not in caplog.text


def test_counts_beyond_any_column_are_kept_as_the_largest_one(chart_registry, charts, caplog):
    with front_for(chart_registry, limit=10**12, window=60) as front:
        registry = registry_through(front, [charts])
        run = sync(source_of(registry, charts))

    assert run.status == SyncRun.Status.SUCCEEDED
    budget = RateLimitBudget.objects.get(registry=registry)
    assert budget.limit == budget.remaining == 2**31 - 1
    assert "Could not" not in caplog.text
