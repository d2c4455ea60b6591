"""Status badges, declared once (config/badges.py) and shown by {% badge %}."""

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.template import Context, Template
from django.utils import timezone

from charts.models import ChartPush, SyncRun
from clusters.models import PullSecretTarget, ReconcileRun
from config import badges


def render_badge(obj) -> str:
    return Template("{% load wharf %}{% badge obj %}").render(Context({"obj": obj}))


def running(model):
    """A running run whose worker holds its lease (renewed by its heartbeat)."""
    return model(status="running", lease_owner="alive", lease_expires_at=timezone.now() + LEASE)


LEASE = timedelta(seconds=60)


def test_every_run_kind_shares_the_run_colours_with_its_own_words():
    assert badges.badge_of(running(SyncRun)) == badges.Badge("Syncing", "primary")
    assert badges.badge_of(running(ChartPush)) == badges.Badge("Pushing", "primary")
    assert badges.badge_of(running(ReconcileRun)) == badges.Badge("Running", "primary")
    assert badges.badge_of(ReconcileRun(status="failed")) == badges.Badge("Failed", "danger")


def test_a_target_badge_says_its_status_in_its_colour():
    html = render_badge(PullSecretTarget(status=PullSecretTarget.Status.MISSING))
    assert 'class="badge text-bg-warning"' in html and ">Missing<" in html


def test_a_running_run_without_a_heartbeat_says_its_worker_seems_gone():
    last = timezone.now() - timedelta(minutes=5)
    run = ReconcileRun(
        status="running", lease_owner="gone", lease_expires_at=last + timedelta(seconds=90)
    )
    html = render_badge(run)
    assert ">No heartbeat<" in html and "text-bg-warning" in html
    assert f"No heartbeat since {timezone.localtime(last):%H:%M:%S}" in html
    assert "its worker seems gone" in html


def test_a_running_run_with_a_live_lease_is_just_running():
    assert "No heartbeat" not in render_badge(running(ReconcileRun))


def test_a_status_without_a_colour_stops_start_up():
    with pytest.raises(ImproperlyConfigured, match="needs one of"):
        badges.declare(PullSecretTarget, "status", {"pending": "info"})
