"""Targets whose credential runs out before Wharf would renew it: warned about and counted.

The rule (clusters/pullsecrets.py::expiry_warning): expires before now + 2 reconcile
intervals with no renewal due. ECR tokens are renewed at the first reconcile once fewer
than 6 of their 12 hours remain; a credential Wharf cannot renew is never due.
"""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from clusters.models import PullSecretTarget
from clusters.pullsecrets import expiry_warning
from tests.clusters.factories import ClusterFactory
from tests.config.test_metrics import scrape, value
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
INTERVAL = dt.timedelta(minutes=30)
MINUTE = dt.timedelta(minutes=1)


def target(provider="ecr", *, expires_in, status="in-sync", checked_ago=MINUTE, cluster=None):
    registry = RegistryFactory.build(name=f"r-{provider}", provider=provider)
    return PullSecretTarget(
        cluster=cluster,
        registry=registry,
        namespace="team-a",
        secret_name="wharf-r",
        status=status,
        last_checked=NOW - checked_ago if checked_ago is not None else None,
        expires_at=NOW + expires_in,
    )


def warning(t, interval=INTERVAL) -> str:
    return expiry_warning(t, NOW, interval)


def test_a_credential_expiring_after_two_intervals_is_not_warned_about():
    assert warning(target("other", expires_in=2 * INTERVAL)) == ""


def test_a_fixed_expiry_credential_within_two_intervals_is_warned_about():
    text = warning(target("other", expires_in=45 * MINUTE))

    assert "expires at 2026-03-02 12:45 UTC (in 45 minutes)" in text
    assert "Wharf cannot renew it" in text


def test_a_healthy_ecr_token_the_next_reconcile_renews_is_not_warned_about():
    assert warning(target(expires_in=45 * MINUTE)) == ""


def test_an_ecr_token_whose_renewal_failed_is_warned_about():
    text = warning(target(expires_in=45 * MINUTE, status="failed"))

    assert "could not renew it" in text


def test_an_ecr_token_no_reconcile_reached_lately_is_warned_about():
    text = warning(target(expires_in=45 * MINUTE, checked_ago=2 * INTERVAL + MINUTE))

    assert "check that Celery beat" in text


def test_an_ecr_token_expiring_before_the_next_reconcile_is_warned_about():
    assert "before the next scheduled reconcile" in warning(target(expires_in=20 * MINUTE))


def test_with_an_interval_over_six_hours_a_token_outside_the_renewal_window_is_warned_about():
    # Next reconcile in 7 h finds 1 h left (renewed); in 8 h it finds the token expired.
    seven = dt.timedelta(hours=7)
    assert warning(target(expires_in=dt.timedelta(hours=8)), seven) == ""
    eight = dt.timedelta(hours=8)
    assert "keep WHARF_RECONCILE_INTERVAL" in warning(
        target(expires_in=dt.timedelta(hours=15), checked_ago=MINUTE), eight
    )


def test_the_status_table_and_the_metric_show_expiring_targets(admin_client, client, settings):
    settings.WHARF_RECONCILE_INTERVAL = 30
    cluster = ClusterFactory(name="prod")
    ClusterFactory(name="calm")
    registry = RegistryFactory(name="fixed")
    now = timezone.now()
    for namespace, expires in (("a", now + 40 * MINUTE), ("b", now + dt.timedelta(days=3))):
        PullSecretTarget.objects.create(
            cluster=cluster, namespace=namespace, registry=registry, secret_name="wharf-fixed",
            status="in-sync", last_checked=now, expires_at=expires,
        )  # fmt: skip

    html = admin_client.get(reverse("clusters:cluster_edit", args=[cluster.pk])).content.decode()
    samples = scrape(client)

    assert html.count('data-badge="expiring"') == 1
    assert "Wharf cannot renew it: put a new password or token on registry fixed" in html
    assert value(samples, "wharf_pull_secret_targets_expiring", cluster="prod") == 1
