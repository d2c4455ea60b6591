"""ECR pull secrets: a token from moto (server mode), renewed when under 6 of its 12 hours remain."""

import base64
import dataclasses
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


@pytest.fixture
def new_token_each_time(monkeypatch):
    """AWS issues a different token on every call (moto repeats one): each gets a suffix."""
    issued = []
    original = Registry.ecr_token

    def fresh(self):
        token = original(self)
        issued.append(f"{token.password}-{len(issued) + 1}")
        return dataclasses.replace(token, password=issued[-1])

    monkeypatch.setattr(Registry, "ecr_token", fresh)
    return issued


def test_a_renewed_ecr_token_rides_beside_the_old_one_until_the_grace_ends(
    add_cluster, ecr_registry, new_token_each_time, settings
):
    settings.WHARF_PULL_SECRET_ROTATION_GRACE = 3600
    cluster, fake = add_cluster("prod")
    inject(ecr_registry)
    renewed_at = START + dt.timedelta(hours=6, minutes=1)

    with time_machine.travel(START, tick=False) as clock:
        reconcile_cluster(cluster.pk)
        clock.shift(renewed_at - START)
        reconcile_cluster(cluster.pk)
        during = auth_of(fake)
        clock.shift(dt.timedelta(hours=1))
        reconcile_cluster(cluster.pk)
        after = auth_of(fake)

    first, second = new_token_each_time
    assert {k: v["password"] for k, v in during.items()} == {HOST: second, f"https://{HOST}": first}
    assert {k: v["password"] for k, v in after.items()} == {HOST: second}
    assert PullSecretTarget.objects.get().rotating_until is None


def test_an_ecr_rotation_ends_when_the_old_token_expires_if_that_comes_first(
    add_cluster, ecr_registry, new_token_each_time, settings
):
    settings.WHARF_PULL_SECRET_ROTATION_GRACE = 8 * 3600  # longer than the old token lives
    cluster, _fake = add_cluster("prod")
    inject(ecr_registry)

    with time_machine.travel(START, tick=False) as clock:
        reconcile_cluster(cluster.pk)
        clock.shift(dt.timedelta(hours=6, minutes=1))
        reconcile_cluster(cluster.pk)

    assert PullSecretTarget.objects.get().rotating_until == START + dt.timedelta(hours=12)


def test_a_new_access_key_keeps_the_old_ecr_token_beside_the_new_one(
    add_cluster, ecr_registry, new_token_each_time
):
    cluster, fake = add_cluster("prod")
    inject(ecr_registry)
    with time_machine.travel(START, tick=False):
        reconcile_cluster(cluster.pk)
        ecr_registry.secret = "another-secret-access-key"
        ecr_registry.save()
        reconcile_cluster(cluster.pk)

    first, second = new_token_each_time
    auths = {k: v["password"] for k, v in auth_of(fake).items()}
    assert auths == {HOST: second, f"https://{HOST}": first}
