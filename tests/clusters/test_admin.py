"""The Django admin obeys the rules of clusters, environments and access rules (their
models' clean())."""

import pytest

from clusters.models import Cluster, Environment, RegistryAccess
from tests.adminkit import admin_errors, admin_url, change_data
from tests.clusters.factories import ClusterFactory, EnvironmentFactory
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db

STORED = "stored-cluster-token-do-not-leak"


# --- clusters ---------------------------------------------------------------------------


def test_admin_add_of_a_cluster_is_refused_for_want_of_a_token(admin_client):
    data = {"name": "prod", "api_url": "https://kube.example.com:6443", "active": "on"}
    errors = admin_errors(admin_client.post(admin_url(Cluster), data))
    assert (
        "Bearer token: Enter the bearer token Wharf uses for this cluster." in errors["__all__"][0]
    )
    assert not Cluster.objects.exists()


@pytest.fixture
def cluster():
    return ClusterFactory(name="prod", api_url="https://kube.example.com:6443", token=STORED)


@pytest.mark.parametrize(
    ("field", "overrides", "message"),
    [
        ("api_url", {"api_url": "kube.example.com"}, "Enter the API server URL with its scheme"),
        ("api_url", {"api_url": "https://admin:pw@kube.example.com"}, "takes no user name or password"),
        ("api_url", {"api_url": "https://kube.example.com/?x=1"}, "takes no query or fragment"),
        ("ca_certificate", {"ca_certificate": "not a certificate"}, "This is not a PEM certificate"),
        ("skip_tls_verify", {"ca_certificate": "CA", "skip_tls_verify": "on"}, "not both"),
        ("ca_certificate", {"ca_certificate": "CA", "api_url": "http://kube.example.com"}, "needs an https:// API server URL"),
    ],
)  # fmt: skip
def test_admin_change_that_breaks_a_rule_is_refused_and_changes_nothing(
    admin_client, cluster, ca, field, overrides, message
):
    if overrides.get("ca_certificate") == "CA":
        overrides["ca_certificate"] = ca.cert_pem
    data = change_data(admin_client, Cluster, cluster.pk, **overrides)
    errors = admin_errors(admin_client.post(admin_url(Cluster, cluster.pk), data))
    assert message in " ".join(errors.get(field, [])), errors
    cluster.refresh_from_db()
    assert (cluster.api_url, cluster.ca_certificate) == ("https://kube.example.com:6443", "")


def test_admin_change_of_a_cluster_counts_its_stored_token(admin_client, cluster, ca):
    data = change_data(
        admin_client, Cluster, cluster.pk,
        api_url=" https://kube.example.com:6443/ ", ca_certificate=ca.cert_pem,
    )  # fmt: skip
    assert admin_client.post(admin_url(Cluster, cluster.pk), data).status_code == 302
    cluster.refresh_from_db()
    assert (cluster.api_url, cluster.token) == ("https://kube.example.com:6443", STORED)
    assert cluster.ca_certificate == ca.cert_pem.strip() + "\n"


# --- environments -----------------------------------------------------------------------


def test_admin_refuses_an_environment_whose_namespace_is_no_dns_label(admin_client, cluster):
    data = {"name": "bad-ns", "cluster": cluster.pk, "namespace": "Team_A"}
    errors = admin_errors(admin_client.post(admin_url(Environment), data))
    assert "Kubernetes namespace name" in errors["namespace"][0]
    assert not Environment.objects.exists()


def test_admin_refuses_a_second_environment_for_one_cluster_namespace(admin_client):
    env = EnvironmentFactory(namespace="web")
    data = {"name": "again", "cluster": env.cluster_id, "namespace": "web"}
    assert admin_errors(admin_client.post(admin_url(Environment), data))["__all__"]
    assert Environment.objects.count() == 1


# --- registry credential access ----------------------------------------------------------


def access_data(registry, **overrides) -> dict:
    data = {
        "registry": registry.pk,
        "mode": "include",
        "credentials": "registry",
        "add_to_default_service_account": "on",
        "namespaces": "environments",
        "excluded_namespaces": "kube-system, kube-public, kube-node-lease",
        "service_accounts": "default",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.parametrize(
    ("field", "overrides", "message"),
    [
        ("clusters", {}, "Pick the clusters to inject credentials into"),
        ("secret_name", {"all_clusters": "on", "credentials": "secret"}, "Enter the name of the image pull secret"),
        ("namespace_selector", {"all_clusters": "on", "namespaces": "selector", "namespace_selector": "team in (a"}, "This label selector does not parse"),
        ("excluded_namespaces", {"all_clusters": "on", "namespaces": "all", "excluded_namespaces": "kube-system, Bad_NS"}, "“Bad_NS” is not a namespace name"),
        ("service_account_names", {"all_clusters": "on", "service_accounts": "named"}, "Enter the names of the ServiceAccounts"),
    ],
)  # fmt: skip
def test_admin_add_of_an_access_rule_that_breaks_a_rule_is_refused(
    admin_client, field, overrides, message
):
    data = access_data(RegistryFactory(), **overrides)
    errors = admin_errors(admin_client.post(admin_url(RegistryAccess), data))
    assert message in " ".join(errors.get(field, [])), errors
    assert not RegistryAccess.objects.exists()


def test_admin_add_of_an_access_rule_with_chosen_clusters_is_saved(admin_client, cluster):
    data = access_data(RegistryFactory(), clusters=[cluster.pk])
    assert admin_client.post(admin_url(RegistryAccess), data).status_code == 302
    assert list(RegistryAccess.objects.get().clusters.all()) == [cluster]


def test_admin_normalises_an_access_rule_as_the_model_says(admin_client):
    # Exclude mode clears "all clusters"; registry credentials clear a typed secret name.
    data = access_data(RegistryFactory(), mode="exclude", all_clusters="on", secret_name="regcred")
    assert admin_client.post(admin_url(RegistryAccess), data).status_code == 302
    rule = RegistryAccess.objects.get()
    assert (rule.all_clusters, rule.secret_name) == (False, "")


def test_admin_change_that_drops_every_cluster_of_an_include_rule_is_refused(admin_client, cluster):
    rule = RegistryAccess.objects.create(registry=RegistryFactory(), mode="include")
    rule.clusters.set([cluster])
    data = change_data(admin_client, RegistryAccess, rule.pk, clusters=None)
    errors = admin_errors(admin_client.post(admin_url(RegistryAccess, rule.pk), data))
    assert "Pick the clusters" in errors["clusters"][0]
    assert list(rule.clusters.all()) == [cluster]
