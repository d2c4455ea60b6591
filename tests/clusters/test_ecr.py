"""ECR pull secrets: a token from moto (server mode), renewed when under 6 of its 12 hours remain."""

import base64
import datetime as dt
import json

import pytest
import time_machine

from clusters.models import PullSecretTarget, RegistryAccess
from clusters.pullsecrets import reconcile_cluster
from registries.models import Registry
from tests.clusters.factories import inject
from tests.factories import RegistryFactory

pytestmark = [pytest.mark.django_db, pytest.mark.services]

ACCOUNT = "123456789012"
HOST = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com"
START = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def ecr_registry(moto_server, settings):
    settings.WHARF_AWS_ENDPOINT_URL = moto_server
    return RegistryFactory(
        name="ecr",
        provider="ecr",
        url=HOST,
        auth_type="access-key",
        username="AKIAWHARFECRTEST",
        secret="ecr-secret-access-key-do-not-leak",
    )


@pytest.fixture
def token_requests(monkeypatch):
    """How many times Wharf asked AWS for an ECR token."""
    calls = []
    original = Registry.ecr_token

    def counting(self):
        calls.append(self.name)
        return original(self)

    monkeypatch.setattr(Registry, "ecr_token", counting)
    return calls


def auth_of(fake) -> dict:
    secret = fake.secret("team-a", "wharf-ecr")
    return json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))["auths"]


def test_ecr_secret_holds_user_aws_and_the_token_for_the_proxy_endpoint_host(
    add_cluster, ecr_registry
):
    cluster, fake = add_cluster("prod")
    inject(ecr_registry)

    with time_machine.travel(START, tick=False):
        reconcile_cluster(cluster.pk)

    auth = auth_of(fake)[HOST]
    assert auth["username"] == "AWS"
    assert auth["password"] == f"{ACCOUNT}-auth-token"
    assert base64.b64decode(auth["auth"]).decode() == f"AWS:{ACCOUNT}-auth-token"
    target = PullSecretTarget.objects.get()
    assert target.expires_at == START + dt.timedelta(hours=12)


def test_ecr_token_is_kept_while_more_than_six_hours_remain(
    add_cluster, ecr_registry, token_requests
):
    cluster, fake = add_cluster("prod")
    inject(ecr_registry)

    with time_machine.travel(START, tick=False) as clock:
        reconcile_cluster(cluster.pk)
        clock.shift(dt.timedelta(hours=5, minutes=59))
        fake.reset_calls()
        reconcile_cluster(cluster.pk)

    assert token_requests == ["ecr"]
    assert fake.calls() == {"list": 1}  # no rewrite with an unchanged token


def test_ecr_token_is_renewed_when_less_than_six_hours_remain(
    add_cluster, ecr_registry, token_requests
):
    cluster, _fake = add_cluster("prod")
    inject(ecr_registry)

    with time_machine.travel(START, tick=False) as clock:
        reconcile_cluster(cluster.pk)
        clock.shift(dt.timedelta(hours=6, minutes=1))
        reconcile_cluster(cluster.pk)
        renewed_at = START + dt.timedelta(hours=6, minutes=1)

    assert token_requests == ["ecr", "ecr"]
    assert PullSecretTarget.objects.get().expires_at == renewed_at + dt.timedelta(hours=12)
    rule = RegistryAccess.objects.get()
    assert rule.ecr_token_expires_at == renewed_at + dt.timedelta(hours=12)


def test_one_token_serves_every_cluster(add_cluster, ecr_registry, token_requests):
    first, _ = add_cluster("first")
    second, _ = add_cluster("second")
    inject(ecr_registry)

    with time_machine.travel(START, tick=False):
        reconcile_cluster(first.pk)
        reconcile_cluster(second.pk)

    assert token_requests == ["ecr"]


def test_aws_refusing_the_token_fails_the_targets_and_writes_nothing(
    add_cluster, ecr_registry, moto_checks_credentials
):
    cluster, fake = add_cluster("prod")
    inject(ecr_registry)

    reconcile_cluster(cluster.pk)

    target = PullSecretTarget.objects.get()
    assert target.status == PullSecretTarget.Status.FAILED
    assert target.error.startswith("AWS did not issue an ECR token")
    assert "ecr-secret-access-key-do-not-leak" not in target.error
    assert fake.secrets() == {}
