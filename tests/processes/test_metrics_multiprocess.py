"""/metrics under gunicorn with several worker processes adds up what each one counted.

prometheus-client's multiprocess mode: every process writes its counters to files in
PROMETHEUS_MULTIPROC_DIR, and whichever worker answers /metrics reads them all.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import registry_form_data
from tests.hostile import Answer, RecordingServer
from tests.workers import Web, Workers

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

ATTEMPTS = 24


def pings(text: str, host: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "wharf_registry_requests_total" and sample.labels == {
                "registry": host,
                "kind": "ping",
            }:
                return sample.value
    return 0.0


def test_metrics_add_up_every_gunicorn_worker(tmp_path, django_user_model):
    django_user_model.objects.create_superuser("ops", password="ops-password-1")
    workers = Workers(tmp_path, redis_db=14)
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    # A registry that refuses every login: each Test connection is one counted /v2/ ping.
    refusing = Answer(401, b"{}", {"WWW-Authenticate": 'Basic realm="r"'})
    try:
        with RecordingServer({"/v2/": refusing}) as registry:
            web = Web(
                workers, "web", processes=3, env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
            )
            web.sign_in("ops", "ops-password-1")
            form = registry_form_data(url=registry.host, username="u", secret="wrong-secret",
                                      tls_mode="insecure", _action="test")  # fmt: skip
            for _ in range(ATTEMPTS):
                # A new connection each time, so gunicorn hands requests to different workers.
                web.session.close()
                answer = web.post(reverse("registries:registry_add"), data=form)
                assert answer.status_code in (200, 422), answer.text[:300]
            pinged = len([seen for seen in registry.seen if seen.path == "/v2/"])
            counted_by = {path.name.rsplit("_", 1)[-1] for path in metrics_dir.glob("counter_*.db")}
            text = web.session.get(web.url + "/metrics", timeout=10).text
    finally:
        workers.stop()

    assert pinged >= ATTEMPTS
    assert len(counted_by) >= 2, "one worker took every request: nothing was added up"
    # Every request counted, whichever worker made it: those the registry answered, and in
    # each worker its first, HTTPS attempt ("insecure" tries TLS first; this server speaks
    # only HTTP, so that one gets no answer and the worker remembers plain HTTP).
    assert pings(text, registry.host) == pinged + len(counted_by)
