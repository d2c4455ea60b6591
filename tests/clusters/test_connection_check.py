"""Saving a cluster checks its connection first (as registries do), the check covers every
environment namespace, and the cluster list shows the last known health without asking."""

from __future__ import annotations

import pytest
from django.urls import reverse

from clusters.connectivity import check_connection
from clusters.models import Cluster
from clusters.pullsecrets import reconcile_cluster
from tests.clusters.factories import ClusterFactory, EnvironmentFactory

pytestmark = pytest.mark.django_db


def cluster_data(**overrides) -> dict:
    data = {"name": "prod", "token": "", "active": "on", "_action": "save"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_a_cluster_whose_token_is_rejected_is_not_saved(admin_client, start_fake_cluster):
    fake = start_fake_cluster()
    data = cluster_data(api_url=fake.url, token="wrong-token-do-not-leak")

    response = admin_client.post(reverse("clusters:cluster_add"), data)

    html = response.content.decode()
    assert "Nothing was saved: the connection check failed." in html
    assert "rejected the bearer token (401 Unauthorized)" in html
    assert "wrong-token-do-not-leak" not in html
    assert not Cluster.objects.exists()


def test_a_cluster_whose_token_may_not_write_secrets_is_not_saved(admin_client, start_fake_cluster):
    fake = start_fake_cluster(secret_access={"create": False})
    data = cluster_data(api_url=fake.url, token=fake.token)

    html = admin_client.post(reverse("clusters:cluster_add"), data).content.decode()

    assert "Nothing was saved" in html and "may not create secrets" in html
    assert not Cluster.objects.exists()


def test_save_without_checking_saves_an_unreachable_cluster(admin_client):
    data = cluster_data(api_url="https://127.0.0.1:9", token="t", save_without_checking="on")

    response = admin_client.post(reverse("clusters:cluster_add"), data)

    assert response.status_code == 302
    assert Cluster.objects.get().health == Cluster.Health.UNKNOWN


def test_a_cluster_that_passes_the_check_is_saved_healthy(admin_client, start_fake_cluster):
    fake = start_fake_cluster()

    response = admin_client.post(
        reverse("clusters:cluster_add"), cluster_data(api_url=fake.url, token=fake.token)
    )

    assert response.status_code == 302
    cluster = Cluster.objects.get()
    assert cluster.health == Cluster.Health.OK
    assert cluster.health_checked_at is not None


def test_an_edit_that_keeps_the_connection_is_not_checked_again(admin_client):
    cluster = ClusterFactory(name="prod", api_url="https://127.0.0.1:9")

    response = admin_client.post(
        reverse("clusters:cluster_edit", args=[cluster.pk]),
        cluster_data(name=None, api_url=cluster.api_url, active=None),
    )

    assert response.status_code == 302
    cluster.refresh_from_db()
    assert not cluster.active


def test_test_connection_checks_secret_access_in_every_environment_namespace(add_cluster):
    cluster, fake = add_cluster("prod", namespaces=["team-a", "team-b"])
    fake.denied_namespaces = {"team-b"}

    result = check_connection(cluster)

    assert not result.ok
    assert "namespace team-b" in result.message
    assert "team-a" not in result.message


def test_test_connection_says_when_the_token_may_not_list_namespaces(add_cluster):
    cluster, fake = add_cluster("prod", namespaces=["team-a"])

    assert not any("list namespaces" in step for step in check_connection(cluster).steps)
    fake.secret_access = {"list namespaces": False}
    result = check_connection(cluster)

    assert result.ok  # environment namespaces work without it
    assert any("may not list namespaces" in step for step in result.steps)


def test_test_connection_names_every_namespace_it_checked(add_cluster):
    cluster, _fake = add_cluster("prod", namespaces=["team-a", "team-b"])

    result = check_connection(cluster)

    assert result.ok
    assert "namespaces team-a, team-b" in result.message


def test_test_connection_of_a_saved_cluster_stores_its_health(admin_client, add_cluster):
    cluster, fake = add_cluster("prod")
    fake.token = "rotated-token"  # the API server now rejects the stored one
    data = cluster_data(name=None, api_url=cluster.api_url, _action="test")

    admin_client.post(reverse("clusters:cluster_edit", args=[cluster.pk]), data)

    cluster.refresh_from_db()
    assert cluster.health == Cluster.Health.FAILED
    assert "401 Unauthorized" in cluster.health_message


def test_test_connection_of_unsaved_changes_stores_nothing(admin_client, add_cluster):
    cluster, _fake = add_cluster("prod")
    data = cluster_data(name=None, api_url=cluster.api_url, token="typed-wrong", _action="test")

    admin_client.post(reverse("clusters:cluster_edit", args=[cluster.pk]), data)

    cluster.refresh_from_db()
    assert cluster.health == Cluster.Health.UNKNOWN


def test_a_reconcile_stores_the_clusters_health(add_cluster):
    cluster, fake = add_cluster("prod")
    fake.token = "rotated-token"

    reconcile_cluster(cluster.pk)

    cluster.refresh_from_db()
    assert cluster.health == Cluster.Health.FAILED
    assert "rejected the bearer token" in cluster.health_message

    fake.token = cluster.token
    reconcile_cluster(cluster.pk)
    cluster.refresh_from_db()
    assert cluster.health == Cluster.Health.OK


def test_the_cluster_list_shows_the_last_known_health_without_asking_the_cluster(
    admin_client, add_cluster
):
    cluster, fake = add_cluster("prod")
    Cluster.objects.filter(pk=cluster.pk).update(
        health=Cluster.Health.FAILED, health_message="The API server rejected the token."
    )
    ClusterFactory(name="new")
    EnvironmentFactory(cluster=cluster, namespace="team-z")
    fake.reset_calls()

    html = admin_client.get(reverse("clusters:cluster_list")).content.decode()

    assert "Failing" in html and "The API server rejected the token." in html
    assert "Not checked yet" in html
    assert not fake.seen()
