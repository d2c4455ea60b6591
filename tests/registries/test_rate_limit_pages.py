"""A registry's rate-limit budget on the registry list, the registry page and the source page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from charts.models import ChartSource, SyncRun
from registries.models import RateLimitBudget
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db


def budget_for(registry, **fields) -> RateLimitBudget:
    now = timezone.now()
    values = {
        "limit": 100,
        "remaining": 76,
        "window_seconds": 21600,
        "resets_at": now + timedelta(hours=6),
        "updated_at": now - timedelta(minutes=3),
        **fields,
    }
    return RateLimitBudget.objects.create(registry=registry, **values)


def list_html(client) -> str:
    return client.get(reverse("registries:registry_list")).content.decode()


def edit_html(client, registry) -> str:
    return client.get(reverse("registries:registry_edit", args=[registry.pk])).content.decode()


def test_the_list_shows_what_each_registry_has_left_of_its_rate_limit(admin_client):
    budget_for(RegistryFactory(name="hub"))
    html = list_html(admin_client)
    assert "76 of 100 requests left per 6 hours" in html
    assert "Syncs wait" not in html


def test_a_registry_that_announced_no_rate_limit_says_so(admin_client):
    RegistryFactory(name="quiet")
    assert "Not announced" in list_html(admin_client)


def test_a_registry_down_to_its_reserve_shows_that_its_syncs_wait(admin_client, settings):
    settings.WHARF_RATE_LIMIT_RESERVE_PERCENT = 10
    budget_for(RegistryFactory(name="spent"), remaining=4)
    assert "Syncs wait until" in list_html(admin_client)


def test_a_registry_whose_window_has_reset_does_not_show_a_wait(admin_client):
    budget_for(
        RegistryFactory(name="reset"), remaining=0, resets_at=timezone.now() - timedelta(minutes=1)
    )
    assert "Syncs wait until" not in list_html(admin_client)


def test_a_429_shows_a_wait_until_its_retry_after(admin_client):
    until = timezone.now() + timedelta(minutes=2)
    budget_for(RegistryFactory(name="refused"), limit=None, remaining=None, throttled_until=until)
    html = list_html(admin_client)
    assert "Syncs wait until" in html and "429 Too Many Requests" in html


def test_the_list_reads_the_budgets_in_the_same_queries_however_many_registries(
    admin_client, django_assert_max_num_queries
):
    for _ in range(15):
        budget_for(RegistryFactory())
    with django_assert_max_num_queries(6):
        admin_client.get(reverse("registries:registry_list"))


def test_the_registry_page_shows_its_budget_and_why_its_syncs_wait(admin_client, settings):
    settings.WHARF_RATE_LIMIT_RESERVE_PERCENT = 10
    registry = RegistryFactory(name="hub")
    budget_for(registry, remaining=3)
    html = edit_html(admin_client, registry)
    assert 'id="rate-limit"' in html
    assert "3 of 100 requests left per 6 hours" in html
    assert "10% (10) are kept in reserve" in html
    assert "Syncs keep 10% of the limit in reserve" in html


def test_the_registry_page_without_a_budget_says_none_was_announced(admin_client):
    registry = RegistryFactory(name="quiet")
    assert "Not announced" in edit_html(admin_client, registry)


def held_run(registry) -> SyncRun:
    registry.chart_source, registry.repositories = True, ["charts/app"]
    registry.save()
    source = ChartSource.objects.get(registry=registry, repository="charts/app")
    run = SyncRun.objects.filter(source=source).first() or SyncRun.objects.create(source=source)
    run.not_before = timezone.now() + timedelta(minutes=30)
    run.wait_reason = "The registry's rate limit is spent down to its reserve: 2 of 100 left."
    run.save()
    ChartSource.objects.filter(pk=source.pk).update(last_run=run)
    assert SyncRun.objects.filter(source=source).count() == 1
    return run


def test_the_source_page_shows_a_held_back_run_with_its_time_and_reason(admin_client):
    run = held_run(RegistryFactory(name="hub", push_images=True))
    url = reverse("charts:chartsource_detail", args=[run.source_id])
    html = admin_client.get(url).content.decode()
    assert "for the registry&#x27;s rate limit" in html or "for the registry's rate limit" in html
    assert "2 of 100 left" in html
    assert timezone.localtime(run.not_before).strftime("%Y-%m-%d %H:%M") in html


def test_a_held_back_run_does_not_keep_the_runs_table_polling(admin_client):
    run = held_run(RegistryFactory(name="hub", push_images=True))
    url = reverse("charts:chartsource_runs", args=[run.source_id])
    response = admin_client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 286  # htmx stops polling


def test_the_registry_list_says_a_held_back_source_waits(admin_client):
    held_run(RegistryFactory(name="hub", push_images=True))
    assert "waits until" in list_html(admin_client)


def test_a_spent_budget_that_names_no_reset_waits_a_minute_from_when_it_was_seen(admin_client):
    seen = timezone.now() - timedelta(minutes=2)
    budget = budget_for(
        RegistryFactory(name="vague"), remaining=0, window_seconds=None, resets_at=None,
        updated_at=seen,
    )  # fmt: skip
    assert budget.wait is None  # a minute after it was seen has passed: ask again
    RateLimitBudget.objects.filter(pk=budget.pk).update(updated_at=timezone.now())
    budget.refresh_from_db()
    assert budget.wait is not None
