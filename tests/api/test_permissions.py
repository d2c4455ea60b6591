"""Every API endpoint, found by walking api/urls.py, for anonymous, each role's token and
each role's browser session, with each method it answers.

What each endpoint needs comes from its view's declaration (``read_role``, ``write_role``,
``action_roles``, see api/permissions.py); the table below says, independently, what the
roles mean, so a view that declares the wrong role fails here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver
from rest_framework.test import APIClient

import api.urls
from api.permissions import required_role
from charts.models import Chart, ChartPush, ChartSource, ChartVersion, HelmRepository
from clusters.models import PullSecretTarget
from config.roles import ADMIN, OPERATOR, VIEWER
from tests.api.conftest import bearer
from tests.clusters.factories import EnvironmentFactory, inject
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db

RANK = {None: 0, VIEWER: 1, OPERATOR: 2, ADMIN: 3}
WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
# A token's own last use is the one write a request by a refused user may make.
OWN_BOOKKEEPING = re.compile(r'"api_apitoken"|"axes_')


@dataclass(frozen=True)
class Endpoint:
    route: str
    name: str
    method: str
    action: str
    view: type

    def __str__(self) -> str:
        return f"{self.method.upper()}-{self.name}"


def walk(patterns, prefix="/api/v1/"):
    for pattern in patterns:
        route = prefix + str(pattern.pattern).lstrip("^").rstrip("$")
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, route)
            continue
        assert isinstance(pattern, URLPattern)
        callback = pattern.callback
        view = getattr(callback, "cls", None) or callback.view_class
        actions = getattr(callback, "actions", None) or {"get": "get"}
        for method, action in actions.items():
            yield Endpoint(route, pattern.name, method, action, view)


ENDPOINTS = list(walk(api.urls.urlpatterns))

# What each role may do, said once: the Chart Store and the schema for viewers; reading the
# configurations and starting work for operators; writing configurations for admins.
VIEWER_READS = {"chart", "chartversion", "schema", "docs"}
OPERATOR_ACTIONS = {"push", "sync", "reconcile"}


def expected_role(endpoint: Endpoint) -> str:
    kind = endpoint.name.split("-")[0]
    if endpoint.method == "get":
        return VIEWER if kind in VIEWER_READS else OPERATOR
    return OPERATOR if endpoint.action in OPERATOR_ACTIONS else ADMIN


@pytest.fixture
def objects():
    registry = RegistryFactory(name="team", is_default=True, push_helm=True)
    repository = HelmRepository.objects.create(name="stable", url="http://127.0.0.1:9/stable")
    source = ChartSource.objects.create(kind="helm", helm_repository=repository)
    chart = Chart.objects.create(source=source, name="web", latest_version="1.0.0")
    ChartVersion.objects.create(chart=chart, version="1.0.0", fingerprint="1")
    environment = EnvironmentFactory(name="web", cluster__name="kind")
    inject(registry, clusters=[environment.cluster])
    target = PullSecretTarget.objects.create(
        cluster=environment.cluster, namespace=environment.namespace, registry=registry
    )
    push = ChartPush.objects.create(
        registry=registry, chart_name="web", version="1.0.0", archive_size=1, status="succeeded"
    )
    return {
        "registry": registry.name,
        "registry_name": registry.name,
        "helmrepository": repository.name,
        "cluster": environment.cluster.name,
        "environment": environment.name,
        "chartsource": source.pk,
        "chart": chart.pk,
        "chart_pk": chart.pk,
        "version": "1.0.0",
        "chartpush": push.pk,
        "pullsecrettarget": target.pk,
    }


def url_of(endpoint: Endpoint, objects) -> str:
    kind = endpoint.name.split("-")[0]

    def value(match):
        arg = match.group(1) or match.group(2)
        return str(objects[arg] if arg in objects and arg not in ("name", "pk") else objects[kind])

    return re.sub(r"\(\?P<(\w+)>[^)]*\)|<(?:\w+:)?(\w+)>", value, endpoint.route)


def send(client, endpoint: Endpoint, url: str):
    with CaptureQueriesContext(connection) as queries:
        response = getattr(client, endpoint.method)(url, {}, format="json")
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if WRITES.match(q["sql"]) and not OWN_BOOKKEEPING.search(q["sql"])
    ]
    return response, writes


ALL = [pytest.param(e, id=str(e)) for e in ENDPOINTS]
ROLES = [VIEWER, OPERATOR, ADMIN]


def test_the_walk_finds_every_resource():
    names = {e.name.split("-")[0] for e in ENDPOINTS}
    assert {
        "registry",
        "helmrepository",
        "chartsource",
        "chart",
        "chartversion",
        "chartpush",
    } <= names
    assert {
        "cluster",
        "environment",
        "registryaccess",
        "pullsecrettarget",
        "schema",
        "docs",
    } <= names


@pytest.mark.parametrize("endpoint", ALL)
def test_each_endpoint_declares_the_role_the_roles_mean(endpoint):
    class Request:
        method = endpoint.method.upper()

    view = endpoint.view()
    view.action = endpoint.action
    assert required_role(Request, view) == expected_role(endpoint)


@pytest.mark.parametrize("endpoint", ALL)
def test_anonymous_gets_401_and_changes_nothing(objects, broker, endpoint):
    response, writes = send(APIClient(), endpoint, url_of(endpoint, objects))

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert writes == [] and broker.messages == []


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", ALL)
def test_a_token_may_do_what_its_role_allows_and_nothing_more(
    objects, tokens, broker, endpoint, role
):
    response, writes = send(bearer(tokens[role]), endpoint, url_of(endpoint, objects))

    if RANK[role] < RANK[expected_role(endpoint)]:
        assert response.status_code == 403, response.content[:300]
        assert response.json()["detail"]
        assert writes == [] and broker.messages == []
    else:
        # Allowed: a page, a refused input (400; 415 for JSON sent to the multipart push),
        # a rule (409) — never 401/403 or a 500.
        assert response.status_code in {200, 201, 202, 204, 400, 409, 415}, response.content[:300]
        if endpoint.method == "get":
            assert writes == []


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", [e for e in ALL if e.values[0].method == "get"])
def test_a_signed_in_browser_reads_what_its_role_allows(client, users, objects, endpoint, role):
    client.force_login(users[role])
    allowed = RANK[role] >= RANK[expected_role(endpoint)]

    response = client.get(url_of(endpoint, objects))

    assert response.status_code == (200 if allowed else 403)


def test_a_browser_write_without_the_csrf_token_is_refused(users, objects):
    strict = APIClient(enforce_csrf_checks=True)
    strict.force_login(users[ADMIN])

    response = strict.post(
        f"/api/v1/chart-sources/{objects['chartsource']}/sync/", {}, format="json"
    )

    assert response.status_code == 403
