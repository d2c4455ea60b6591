"""Desired state and secret content, without any cluster."""

import base64
import json

import pytest

from clusters import pullsecrets
from clusters.models import Cluster, RegistryAccess
from config.runs import Lease
from tests.clusters.factories import ClusterFactory, EnvironmentFactory, inject
from tests.factories import GCP_KEY, RegistryFactory

pytestmark = pytest.mark.django_db


def config_of(data: dict) -> dict:
    return json.loads(base64.b64decode(data[".dockerconfigjson"]))["auths"]


def test_docker_config_is_deterministic_and_carries_user_password_and_auth():
    login = pullsecrets.DockerLogin("registry.example.com", "robot", "pw")

    first = pullsecrets.docker_config_data(login)

    assert first == pullsecrets.docker_config_data(login)
    entry = config_of(first)["registry.example.com"]
    assert entry == {"username": "robot", "password": "pw", "auth": "cm9ib3Q6cHc="}


def test_docker_hub_secret_uses_the_index_server_key():
    rule = inject(RegistryFactory(provider="docker-hub", url="docker.io/team"))

    login = pullsecrets.registry_login(rule)

    assert login.server == "https://index.docker.io/v1/"


def test_gcp_secret_uses_the_json_key_user_and_the_key_as_password():
    registry = RegistryFactory(
        provider="gcp-ar",
        url="europe-west1-docker.pkg.dev/p/r",
        auth_type="json-key",
        secret=GCP_KEY,
    )

    login = pullsecrets.registry_login(inject(registry))

    assert (login.server, login.username, login.password) == (
        "europe-west1-docker.pkg.dev",
        "_json_key",
        GCP_KEY,
    )


def test_gcp_key_pasted_in_single_quotes_goes_into_the_secret_without_them():
    # The registry form accepts 'key' (as pasted for docker login -p); the kubelet sends the
    # password as is, so quotes in the pull secret make every pull fail.
    registry = RegistryFactory(
        provider="gcr", url="gcr.io/p", auth_type="json-key", secret=f"  '{GCP_KEY}'\n"
    )

    assert pullsecrets.registry_login(inject(registry)).password == GCP_KEY


def test_other_registries_use_their_host_with_port_as_the_server_key():
    rule = inject(RegistryFactory(url="registry.example.com:5000/team/apps"))

    assert pullsecrets.registry_login(rule).server == "registry.example.com:5000"


def test_secret_name_is_derived_from_the_registry_name():
    assert pullsecrets.secret_name(RegistryFactory(name="team-registry")) == "wharf-team-registry"


def test_desired_targets_cover_every_environment_namespace_of_selected_clusters():
    cluster = ClusterFactory()
    for namespace in ("b", "a"):
        EnvironmentFactory(cluster=cluster, namespace=namespace)
    managed = inject(RegistryFactory(name="acme"))
    inject(RegistryFactory(name="other"), credentials="secret", secret_name="regcred")

    targets = pullsecrets.desired_targets(cluster)

    assert [(t.namespace, t.secret_name, t.managed) for t in targets] == [
        ("a", "wharf-acme", True),
        ("b", "wharf-acme", True),
        ("a", "regcred", False),
        ("b", "regcred", False),
    ]
    assert all(t.link_service_account for t in targets)
    assert targets[0].registry_id == managed.registry_id


def test_inactive_cluster_wants_nothing():
    cluster = ClusterFactory(active=False)
    EnvironmentFactory(cluster=cluster)
    inject(RegistryFactory())

    assert pullsecrets.desired_targets(cluster) == []


def test_summary_counts_only_active_clusters():
    active, inactive = ClusterFactory(), ClusterFactory(active=False)
    rule = inject(RegistryFactory(), clusters=[active, inactive])

    assert rule.summary() == "Registry credential access is auto injected to 1 cluster"
    rule.mode = RegistryAccess.Mode.EXCLUDE
    assert rule.summary() == "Registry credential access is auto injected to 0 clusters"


def test_cluster_lease_is_taken_once_until_released():
    cluster = ClusterFactory()

    lease = Lease.acquire(Cluster, cluster.pk)

    assert lease is not None
    assert Lease.acquire(Cluster, cluster.pk) is None
    lease.release()
    assert Lease.acquire(Cluster, cluster.pk) is not None


def test_an_expired_cluster_lease_can_be_taken_over(time_machine):
    cluster = ClusterFactory()
    time_machine.move_to("2026-01-01 08:00Z", tick=False)
    first = Lease.acquire(Cluster, cluster.pk)

    time_machine.move_to("2026-01-01 08:16Z", tick=False)

    second = Lease.acquire(Cluster, cluster.pk)
    assert second is not None
    assert Cluster.objects.get(pk=cluster.pk).lease_owner == second.owner != first.owner


def test_saving_a_cluster_loaded_before_a_reconcile_began_keeps_that_runs_lease():
    # An edit form loads the cluster, a reconcile takes the lease, the form saves: the
    # save must not write the lease columns as loaded (free), or a second run starts.
    cluster = ClusterFactory()
    edited = Cluster.objects.get(pk=cluster.pk)
    running = Lease.acquire(Cluster, cluster.pk)

    edited.api_url = "https://new.example.com"
    edited.save()

    fresh = Cluster.objects.get(pk=cluster.pk)
    assert fresh.api_url == "https://new.example.com"
    assert fresh.lease_owner == running.owner
    assert Lease.acquire(Cluster, cluster.pk) is None


def test_saving_an_access_rule_loaded_before_a_token_renewal_keeps_the_new_token():
    # The Manage form saves the rule it loaded; a reconcile may have renewed the ECR token
    # since, and putting the old one back would make the next run renew it again.
    rule = inject(RegistryFactory())
    edited = RegistryAccess.objects.get(pk=rule.pk)
    RegistryAccess.objects.filter(pk=rule.pk).update(ecr_token='{"new": 1}')

    edited.add_to_default_service_account = False
    edited.save()

    fresh = RegistryAccess.objects.get(pk=rule.pk)
    assert fresh.ecr_token == '{"new": 1}'
    assert fresh.add_to_default_service_account is False
