"""A chart source's page: what it says about the source while its runs come and go."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from charts.models import SyncRun
from charts.sync import queue_sync, run_sync
from tests.chartkit import helm_index, make_chart_archive
from tests.charts.helpers import helm_source

pytestmark = pytest.mark.django_db


def chart_count_swap(html: str) -> str:
    """The text of the out-of-band element that replaces the page's chart count."""
    match = re.search(r'<span id="chart-count" hx-swap-oob="true">([^<]*)</span>', html)
    assert match, "the runs table carries no chart count"
    return match[1]


def test_the_chart_count_is_updated_by_the_runs_table_when_the_run_ends(admin_client, helm_repo):
    archive = make_chart_archive("redis", "1.0.0")
    helm_repo.put("charts/redis-1.0.0.tgz", archive)
    helm_repo.write_index(helm_index([{"name": "redis", "version": "1.0.0", "archive": archive}]))
    source = helm_source(helm_repo)
    page = admin_client.get(reverse("charts:chartsource_detail", args=[source.pk])).content
    assert '<span id="chart-count">0 charts in the store</span>' in page.decode()
    run = queue_sync(source, trigger=SyncRun.Trigger.MANUAL)
    url = reverse("charts:chartsource_runs", args=[source.pk])

    polled = admin_client.get(url, HTTP_HX_REQUEST="true")
    assert polled.status_code == 200
    assert chart_count_swap(polled.content.decode()) == "0 charts in the store"

    run_sync(run.pk)
    last = admin_client.get(url, HTTP_HX_REQUEST="true")
    assert last.status_code == 286  # polling stops with this answer, which still swaps
    assert chart_count_swap(last.content.decode()) == "1 chart in the store"


def test_the_full_page_has_one_chart_count_and_no_out_of_band_copy(admin_client, helm_repo):
    source = helm_source(helm_repo)
    queue_sync(source, trigger=SyncRun.Trigger.MANUAL)
    html = admin_client.get(reverse("charts:chartsource_detail", args=[source.pk])).content
    assert html.decode().count('id="chart-count"') == 1
