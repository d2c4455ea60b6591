"""Schemathesis runs the OpenAPI schema against the live API: generated requests for every
operation (``WHARF_SCHEMATHESIS_EXAMPLES`` each, 50 by default), sent by an admin's token to
a real server (live_server). No answer is a server error, each answer that is a success
matches the schema, and no answer holds a stored secret."""

from __future__ import annotations

import os

import pytest
import requests
from hypothesis import HealthCheck, given, settings

from api.models import issue_token
from charts.models import Chart, ChartSource, ChartVersion, HelmRepository
from clusters.models import PullSecretTarget
from config.roles import ADMIN
from tests.clusters.factories import EnvironmentFactory, inject
from tests.factories import RegistryFactory

schemathesis = pytest.importorskip("schemathesis")

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = int(os.environ.get("WHARF_SCHEMATHESIS_EXAMPLES", "50"))
SECRETS = {
    "registry": "registry-Secret-not-in-answers",
    "proxy": "proxy-Passw0rd-not-in-answers",
    "helm": "helm-Passw0rd-not-in-answers",
    "cluster": "cluster-Token-not-in-answers",
}


@pytest.fixture
def stored_objects():
    registry = RegistryFactory(
        name="team", is_default=True, push_helm=True, secret=SECRETS["registry"],
        connection_method="proxy", proxy_url="http://127.0.0.1:9", proxy_password=SECRETS["proxy"],
    )  # fmt: skip
    repository = HelmRepository.objects.create(
        name="stable", url="http://127.0.0.1:9/", access="private", username="u",
        password=SECRETS["helm"], tls_mode="insecure",
    )  # fmt: skip
    source = ChartSource.objects.create(kind="helm", helm_repository=repository)
    chart = Chart.objects.create(source=source, name="web", latest_version="1.0.0")
    ChartVersion.objects.create(chart=chart, version="1.0.0", fingerprint="1", values_yaml="a: 1")
    environment = EnvironmentFactory(
        name="web", cluster__name="kind", cluster__token=SECRETS["cluster"]
    )
    inject(registry, clusters=[environment.cluster])
    PullSecretTarget.objects.create(
        cluster=environment.cluster, namespace=environment.namespace, registry=registry
    )


def examples_of(operation, base_url: str, headers: dict, session):
    """A Hypothesis test of one operation: generated requests, each answer checked."""
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    @given(case=operation.as_strategy())
    def run(case):
        response = case.call(base_url=base_url, headers=headers, session=session, timeout=30)
        leaked = [name for name, value in SECRETS.items() if value in response.text]
        assert not leaked, f"{operation.label} answered the {leaked} secret"
        checks = [not_a_server_error]
        if response.status_code < 300:
            checks.append(response_schema_conformance)
        case.validate_response(response, checks=checks)

    return run


def operations(schema):
    for result in schema.get_all_operations():
        yield result.ok()


def test_the_live_api_keeps_to_its_schema_and_never_answers_a_secret(
    live_server, stored_objects, django_user_model, broker, monkeypatch
):
    from config import roles

    user = django_user_model.objects.create_user("schema-admin")
    monkeypatch.setattr(roles, "role_of", lambda u: ADMIN if u.pk == user.pk else None)
    _, token = issue_token(user, "schemathesis")
    headers = {"Authorization": f"Bearer {token}"}
    session = requests.Session()
    session.trust_env = False
    document = session.get(
        f"{live_server.url}/api/v1/schema/?format=json", headers=headers, timeout=30
    )
    document.raise_for_status()
    schema = schemathesis.openapi.from_dict(document.json())

    tried: list[str] = []
    problems: list[str] = []
    for operation in operations(schema):
        tried.append(operation.label)

        run = examples_of(operation, live_server.url, headers, session)
        try:
            run()
        except (
            Exception,
            BaseExceptionGroup,
        ) as exc:  # every operation is tried; the failures are listed together
            problems.append(f"{operation.label}: {str(exc)[:2000]}")

    session.close()  # the live server's thread lets go of its database connection
    assert len(tried) > 30
    assert problems == [], "\n\n".join(problems)
