"""Logs, plain or JSON lines, of a whole flow hold no stored secret.

Everything a platform engineer does in a first hour runs here with every logger at DEBUG,
against the real registry and an emulated cluster: registries with secrets added through
the form (one Test connection failing on a wrong password), a chart pushed and synced from
a private registry, pull secrets reconciled into a cluster and a reconcile refused by an
API server that rejects its token. Then every line written, in both formats, is searched
for every secret value and its base64 forms (a dockerconfigjson carries ``user:password``
so).
"""

from __future__ import annotations

import base64
import io
import json
import logging

import pytest
from django.urls import reverse

from charts.models import ChartVersion, SyncRun
from clusters.models import ReconcileRun
from clusters.pullsecrets import request_reconcile
from config.logging import JsonFormatter, PlainFormatter
from tests.broker import SentTasks
from tests.chartkit import make_chart_archive
from tests.charts.helpers import sync
from tests.charts.pushkit import push_now, push_registry
from tests.clusters.factories import inject
from tests.factories import RegistryFactory, registry_form_data

pytestmark = [pytest.mark.django_db, pytest.mark.services]

TYPED_SECRET = "typed-in-the-form-9d2c-do-not-leak"
WRONG_PASSWORD = "wrong-password-51ab-do-not-leak"


@pytest.fixture
def written_logs():
    """Every record at DEBUG, formatted both ways as the console handler would."""
    plain, as_json = io.StringIO(), io.StringIO()
    handlers = []
    for stream, formatter in ((plain, PlainFormatter("%(levelname)s %(name)s: %(message)s")),
                              (as_json, JsonFormatter())):  # fmt: skip
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        handler.setLevel(logging.DEBUG)
        handlers.append(handler)
    root = logging.getLogger()
    old_level = root.level
    root.setLevel(logging.DEBUG)
    quiet = {}
    for name in ("urllib3", "botocore", "kubernetes", "charts", "clusters", "registries", "config"):
        logger = logging.getLogger(name)
        quiet[name] = logger.level
        logger.setLevel(logging.DEBUG)
    for handler in handlers:
        root.addHandler(handler)
    try:
        yield plain, as_json
    finally:
        for handler in handlers:
            root.removeHandler(handler)
        root.setLevel(old_level)
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)


def forms_of(secret: str, user: str = "") -> set[str]:
    forms = {secret, base64.b64encode(secret.encode()).decode()}
    if user:
        forms.add(base64.b64encode(f"{user}:{secret}".encode()).decode())
    return forms


def test_a_whole_flow_logs_no_secret_in_either_format(
    admin_client,
    private_registry,
    add_cluster,
    written_logs,
    broker: SentTasks,
    django_capture_on_commit_callbacks,
):
    plain, as_json = written_logs
    user, password = private_registry.username, private_registry.password

    # A registry added with a secret through the form, and a Test connection that fails.
    admin_client.post(
        reverse("registries:registry_add"),
        registry_form_data(name="typed", secret=TYPED_SECRET, save_unchecked="on"),
    )
    admin_client.post(
        reverse("registries:registry_add"),
        registry_form_data(url=private_registry.host, username=user, secret=WRONG_PASSWORD,
                           tls_mode="insecure", _action="test"),
        headers={"HX-Request": "true"},
    )  # fmt: skip

    # A chart pushed to the private registry, and synced from it into the store.
    registry = push_registry(private_registry, ["team/leaky"], name="private")
    push = push_now(registry, make_chart_archive("leaky", "1.0.0"), prefix="team")
    assert push.status == "succeeded", push.error
    run = sync(registry.chart_sources.get())
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    broker.run_all()  # the chart files read in the background
    assert ChartVersion.objects.filter(chart__name="leaky").exists()

    # Pull secrets into a cluster, and a cluster whose API server rejects the token.
    # (Saves queue reconciles once they commit: run those callbacks.)
    with django_capture_on_commit_callbacks(execute=True):
        cluster, fake = add_cluster("prod")
        inject(RegistryFactory(name="acme", url=private_registry.host, username=user,
                               secret=password, tls_mode="insecure"))  # fmt: skip
        rejected, _ = add_cluster("rejected")
        rejected.token = "a-token-the-api-server-rejects-do-not-leak"
        rejected.save()
        request_reconcile([cluster.pk, rejected.pk])
    broker.run_all()
    assert fake.secret("team-a", "wharf-acme") is not None
    assert ReconcileRun.objects.get(cluster=rejected).status == "failed"

    written = plain.getvalue() + as_json.getvalue()
    assert "leaky" in written and "reconcile" in written.lower()  # the flow was logged
    for line in as_json.getvalue().splitlines():
        json.loads(line)  # every line is one JSON object
    secrets = (
        forms_of(password, user)
        | forms_of(TYPED_SECRET)
        | forms_of(WRONG_PASSWORD, user)
        | forms_of(cluster.token)
        | forms_of(rejected.token)
    )
    for secret in secrets:
        assert secret not in written, f"a secret ({secret[:6]}…) reached the logs"


@pytest.mark.django_db(transaction=True)
def test_gunicorn_writes_json_lines_too(tmp_path):
    from tests.workers import Web, Workers, wait_for

    workers = Workers(tmp_path, redis_db=10)
    try:
        web = Web(workers, "json-web", processes=1, env={"LOG_FORMAT": "json"})
        assert web.session.get(web.url + "/healthz?token=in-a-query", timeout=10).ok
        wait_for(lambda: "/healthz" in workers.log("json-web"), what="the access log line")
    finally:
        workers.stop()
    lines = [line for line in workers.log("json-web").splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    loggers = {event["logger"] for event in events}
    assert {"gunicorn.error", "gunicorn.access"} <= loggers
    access = next(event for event in events if event["logger"] == "gunicorn.access")
    assert "GET /healthz" in access["message"] and "in-a-query" not in access["message"]
