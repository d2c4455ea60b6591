"""``/metrics``: Prometheus's text format, what Wharf counts and what its database holds.

Counters live for the whole test process, so each test reads the figures before and after
what it does and checks the difference.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from charts.models import ChartSource, SyncRun
from clusters.models import PullSecretTarget, ReconcileRun
from tests.chartkit import make_chart_archive
from tests.charts.helpers import helm_source, sync
from tests.charts.pushkit import push_now, push_registry
from tests.clusters.factories import ClusterFactory, inject
from tests.factories import RegistryFactory, registry_form_data
from tests.hostile import Answer, RecordingServer

pytestmark = pytest.mark.django_db


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    response = client.get(reverse("metrics"), headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_are_for_anyone_unless_a_token_is_set(client, settings):
    assert client.get(reverse("metrics")).status_code == 200
    settings.WHARF_METRICS_TOKEN = "scrape-token-1"
    refused = client.get(reverse("metrics"))
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"].startswith("Bearer")
    assert b"wharf_" not in refused.content
    wrong = client.get(reverse("metrics"), headers={"Authorization": "Bearer scrape-token-2"})
    assert wrong.status_code == 401
    scrape(client, Authorization="Bearer scrape-token-1")


def test_names_follow_prometheus_conventions(client):
    names = {name for name, _ in scrape(client)}
    text = client.get(reverse("metrics")).content.decode()
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("wharf_"):
            continue
        if family.type == "counter":
            assert f"{family.name}_total" in names or not family.samples, family.name
        if "seconds" in family.name:
            assert family.name.endswith(("_seconds", "_seconds_total")), family.name


@pytest.mark.services
def test_a_sync_and_a_push_are_counted_with_their_requests(client, private_registry):
    before = scrape(client)
    registry = push_registry(private_registry, ["team/counted"], name="counted")
    push = push_now(registry, make_chart_archive("counted", "1.0.0"), prefix="team")
    assert push.status == "succeeded", push.error
    source = registry.chart_sources.get()
    run = sync(source)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    after = scrape(client)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    host = private_registry.host
    assert grew("wharf_chart_sync_runs_total", source=str(source), outcome="succeeded") == 1
    assert grew("wharf_chart_sync_duration_seconds_count", source=str(source)) == 1
    assert grew("wharf_chart_pushes_total", outcome="succeeded") == 1
    assert grew("wharf_runs_total", kind="chart sync", outcome="succeeded") == 1
    assert grew("wharf_registry_requests_total", registry=host, kind="tags") >= 1
    assert grew("wharf_registry_requests_total", registry=host, kind="manifest") >= 2
    assert grew("wharf_registry_requests_total", registry=host, kind="upload") >= 1
    assert value(after, "wharf_chart_versions", source=str(source)) == 1


@pytest.mark.services
def test_a_refused_login_counts_as_a_request_error(admin_client, private_registry):
    before = scrape(admin_client)
    admin_client.post(
        reverse("registries:registry_add"),
        registry_form_data(url=private_registry.host, username="wharf", secret="wrong",
                           tls_mode="insecure", _action="test"),
        headers={"HX-Request": "true"},
    )  # fmt: skip
    after = scrape(admin_client)
    labels = {"registry": private_registry.host, "kind": "ping"}
    errors = value(after, "wharf_registry_request_errors_total", **labels) - value(
        before, "wharf_registry_request_errors_total", **labels
    )
    assert errors >= 1


def test_a_rate_limit_is_counted_with_the_wait_it_asked_for(client):
    limited = Answer(429, b"slow down", {"Retry-After": "120"})
    with RecordingServer({"/charts/index.yaml": limited}) as server:
        before = scrape(client)
        source = helm_source(type("S", (), {"url": server.url("/charts")})())
        run = sync(source)
        after = scrape(client)
    assert run.status == SyncRun.Status.FAILED
    host = server.host
    assert (
        value(after, "wharf_registry_rate_limited_total", registry=host)
        - value(before, "wharf_registry_rate_limited_total", registry=host)
        == 1
    )
    assert (
        value(after, "wharf_registry_rate_limit_wait_seconds_total", registry=host)
        - value(before, "wharf_registry_rate_limit_wait_seconds_total", registry=host)
        == 120
    )


def test_state_gauges_come_from_the_database(client, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    cluster = ClusterFactory(name="prod")
    registry = RegistryFactory(name="ecr-team")
    rule = inject(registry)
    rule.__class__.objects.filter(pk=rule.pk).update(
        ecr_token_expires_at=timezone.now() + timedelta(hours=5)
    )
    for namespace, status in (("a", "in-sync"), ("b", "in-sync"), ("c", "failed")):
        PullSecretTarget.objects.create(
            cluster=cluster, namespace=namespace, registry=registry, secret_name="s",
            status=status,
        )  # fmt: skip
    ReconcileRun.objects.all().delete()
    ReconcileRun.objects.create(cluster=cluster, queued_at=timezone.now() - timedelta(minutes=3))
    ChartSource.objects.all().delete()

    samples = scrape(client)

    assert value(samples, "wharf_pull_secret_targets", cluster="prod", status="in-sync") == 2
    assert value(samples, "wharf_pull_secret_targets", cluster="prod", status="failed") == 1
    assert value(samples, "wharf_ecr_token_expiry_seconds", registry="ecr-team") == 5 * 3600
    assert value(samples, "wharf_runs_queued", kind="pull-secret reconcile") == 1
    assert value(samples, "wharf_run_queue_age_seconds", kind="pull-secret reconcile") == 180
    assert value(samples, "wharf_run_queue_age_seconds", kind="chart sync") == 0


def test_metrics_never_show_a_secret(client):
    RegistryFactory(name="leaky", secret="metrics-secret-do-not-leak")
    assert b"metrics-secret-do-not-leak" not in client.get(reverse("metrics")).content
