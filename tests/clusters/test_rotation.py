"""Credential rotation: the previous credential rides beside the new one, then is pruned.

No kubelet runs here: each test reads the secret back through the official client
(clusters/kube.py) from the emulated cluster and checks its content at each step. Time
is driven with time_machine, never slept through.
"""

import base64
import datetime as dt
import json
import logging

import pytest
import time_machine
from django.db import connection
from django.urls import reverse

from clusters import kube
from clusters.models import PullSecretTarget, RegistryAccess
from clusters.pullsecrets import DockerLogin, docker_config_data, reconcile_cluster
from tests.clusters.factories import inject
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db

HOST = "registry.acme.test:5000"
START = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
IN_SYNC = PullSecretTarget.Status.IN_SYNC


def auths_in_cluster(cluster, namespace="team-a", name="wharf-acme") -> dict:
    """The secret's ``auths``, read back through the official client: key -> (user, password)."""
    with kube.KubeClient(cluster.connection()) as api:
        secret = api.read_secret(namespace, name)
    assert secret is not None and secret.type == "kubernetes.io/dockerconfigjson"
    auths = json.loads(base64.b64decode(secret.data[".dockerconfigjson"]))["auths"]
    for entry in auths.values():
        assert (
            base64.b64decode(entry["auth"]).decode() == f"{entry['username']}:{entry['password']}"
        )
    return {key: (entry["username"], entry["password"]) for key, entry in auths.items()}


@pytest.fixture
def acme(add_cluster, settings):
    settings.WHARF_PULL_SECRET_ROTATION_GRACE = 3600
    cluster, fake = add_cluster("prod", namespaces=["team-a"])
    registry = RegistryFactory(name="acme", url=HOST, username="robot", secret="old-password")
    inject(registry)
    return cluster, fake, registry


def change_password(registry, password: str) -> None:
    registry.secret = password
    registry.save()


def test_a_changed_password_rides_beside_the_previous_one_during_the_grace(acme):
    cluster, _fake, registry = acme
    with time_machine.travel(START, tick=False):
        reconcile_cluster(cluster.pk)
        assert auths_in_cluster(cluster) == {HOST: ("robot", "old-password")}

        change_password(registry, "new-password")
        reconcile_cluster(cluster.pk)

    # The new one under the key Wharf always writes; the previous one under the other
    # spelling of the same host, which the kubelet reads as the same registry.
    assert auths_in_cluster(cluster) == {
        HOST: ("robot", "new-password"),
        f"https://{HOST}": ("robot", "old-password"),
    }
    target = PullSecretTarget.objects.get()
    assert target.status == IN_SYNC
    assert target.rotating_until == START + HOUR


def test_a_reconcile_within_the_grace_writes_nothing_more(acme):
    cluster, fake, registry = acme
    with time_machine.travel(START, tick=False) as clock:
        reconcile_cluster(cluster.pk)
        change_password(registry, "new-password")
        reconcile_cluster(cluster.pk)
        clock.shift(HOUR - dt.timedelta(seconds=1))
        fake.reset_calls()
        reconcile_cluster(cluster.pk)

    assert fake.calls() == {"list": 1}
    assert set(auths_in_cluster(cluster)) == {HOST, f"https://{HOST}"}
    assert PullSecretTarget.objects.get().rotating_until == START + HOUR


def test_the_first_reconcile_after_the_grace_prunes_the_previous_credential(acme):
    cluster, fake, registry = acme
    with time_machine.travel(START, tick=False) as clock:
        reconcile_cluster(cluster.pk)
        change_password(registry, "new-password")
        reconcile_cluster(cluster.pk)
        clock.shift(HOUR)
        fake.reset_calls()
        reconcile_cluster(cluster.pk)

    assert fake.calls() == {"list": 1, "update": 1}
    assert auths_in_cluster(cluster) == {HOST: ("robot", "new-password")}
    target = PullSecretTarget.objects.get()
    assert target.status == IN_SYNC and target.rotating_until is None
    rule = RegistryAccess.objects.get()
    assert rule.previous_credential == "" and rule.credential_replaced_at is None


def test_two_changes_within_the_grace_keep_only_the_new_and_the_one_before(acme):
    cluster, _fake, registry = acme
    with time_machine.travel(START, tick=False) as clock:
        reconcile_cluster(cluster.pk)
        change_password(registry, "second-password")
        reconcile_cluster(cluster.pk)
        clock.shift(dt.timedelta(minutes=10))
        change_password(registry, "third-password")
        reconcile_cluster(cluster.pk)

    assert auths_in_cluster(cluster) == {
        HOST: ("robot", "third-password"),
        f"https://{HOST}": ("robot", "second-password"),
    }
    # The second change starts a full grace of its own.
    assert PullSecretTarget.objects.get().rotating_until == START + dt.timedelta(minutes=70)


def test_a_grace_of_zero_writes_only_the_new_credential(acme, settings):
    cluster, _fake, registry = acme
    settings.WHARF_PULL_SECRET_ROTATION_GRACE = 0
    with time_machine.travel(START, tick=False):
        reconcile_cluster(cluster.pk)
        change_password(registry, "new-password")
        reconcile_cluster(cluster.pk)

    assert auths_in_cluster(cluster) == {HOST: ("robot", "new-password")}
    assert PullSecretTarget.objects.get().rotating_until is None


def test_a_save_that_keeps_the_credential_starts_no_rotation(acme):
    cluster, fake, registry = acme
    reconcile_cluster(cluster.pk)
    registry.url = f"{HOST}/another-team"  # same server key, same user and password
    registry.save()
    fake.reset_calls()
    reconcile_cluster(cluster.pk)

    assert fake.calls() == {"list": 1}
    assert RegistryAccess.objects.get().previous_credential == ""
    assert PullSecretTarget.objects.get().rotating_until is None


def test_a_previous_credential_for_another_host_keeps_its_own_key(acme):
    cluster, _fake, registry = acme
    reconcile_cluster(cluster.pk)
    registry.url = "new-registry.acme.test"
    registry.secret = "new-password"
    registry.save()
    reconcile_cluster(cluster.pk)

    assert auths_in_cluster(cluster) == {
        "new-registry.acme.test": ("robot", "new-password"),
        HOST: ("robot", "old-password"),
    }


def test_docker_hub_keeps_its_index_key_for_the_new_credential():
    new = DockerLogin("https://index.docker.io/v1/", "team", "new-token")
    old = DockerLogin("https://index.docker.io/v1/", "team", "old-token")

    raw = base64.b64decode(docker_config_data(new, old)[".dockerconfigjson"])
    auths = json.loads(raw)["auths"]

    assert auths["https://index.docker.io/v1/"]["password"] == "new-token"
    assert auths["index.docker.io/v1/"]["password"] == "old-token"


def test_a_rule_saved_by_a_stale_form_keeps_the_rotation(acme):
    cluster, _fake, registry = acme
    reconcile_cluster(cluster.pk)
    stale = RegistryAccess.objects.get()
    change_password(registry, "new-password")
    stale.add_to_default_service_account = False
    stale.save()

    rule = RegistryAccess.objects.get()
    assert rule.credential_replaced_at is not None
    assert json.loads(rule.previous_credential)["password"] == "old-password"


def test_the_previous_credential_is_stored_encrypted_and_never_logged_or_shown(
    acme, admin_client, caplog
):
    cluster, _fake, registry = acme
    caplog.set_level(logging.DEBUG)
    reconcile_cluster(cluster.pk)
    change_password(registry, "new-password")
    reconcile_cluster(cluster.pk)

    with connection.cursor() as cursor:
        cursor.execute("SELECT previous_credential FROM clusters_registryaccess")
        (raw,) = cursor.fetchone()
    assert raw and "old-password" not in raw
    assert "old-password" not in caplog.text
    rule = RegistryAccess.objects.get()
    pages = [
        reverse("clusters:cluster_edit", args=[cluster.pk]),
        reverse("clusters:cluster_status", args=[cluster.pk]),
        reverse("clusters:registryaccess_edit", args=[registry.pk]),
        reverse("admin:clusters_registryaccess_change", args=[rule.pk]),
    ]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert "old-password" not in response.content.decode(), url


def test_the_status_table_says_rotating_until_pruned(acme, admin_client):
    cluster, _fake, registry = acme
    with time_machine.travel(START, tick=False) as clock:
        reconcile_cluster(cluster.pk)
        change_password(registry, "new-password")
        reconcile_cluster(cluster.pk)
        page = admin_client.get(reverse("clusters:cluster_edit", args=[cluster.pk]))
        clock.shift(HOUR)
        reconcile_cluster(cluster.pk)
        after = admin_client.get(reverse("clusters:cluster_edit", args=[cluster.pk]))

    html = page.content.decode()
    assert 'data-badge="rotating"' in html
    assert "previous credential beside the new one until 2026-03-02 09:00 UTC" in html
    assert 'data-badge="rotating"' not in after.content.decode()


def test_a_specified_pull_secret_is_left_alone_when_the_registry_credentials_change(
    add_cluster,
):
    cluster, fake = add_cluster("prod", namespaces=["team-a"])
    theirs = {
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(b'{"auths":{}}').decode()},
    }
    fake.put_secret("team-a", "team-pull", theirs)
    registry = RegistryFactory(name="acme", url=HOST, secret="old-password")
    inject(registry, credentials=RegistryAccess.Credentials.SECRET, secret_name="team-pull")
    reconcile_cluster(cluster.pk)
    fake.reset_calls()

    change_password(registry, "new-password")
    reconcile_cluster(cluster.pk)

    assert fake.secret("team-a", "team-pull")["data"] == theirs["data"]
    assert fake.secret("team-a", "wharf-acme") is None
    assert fake.calls()["update"] == fake.calls()["create"] == 0
    target = PullSecretTarget.objects.get()
    assert target.status == IN_SYNC and target.rotating_until is None
    assert RegistryAccess.objects.get().previous_credential == ""
