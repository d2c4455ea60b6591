"""Cluster, environment and credential access screens through the test client."""

import pytest
from django.urls import reverse

from clusters.models import Cluster, Environment, PullSecretTarget, ReconcileRun, RegistryAccess
from config.models import AuditEntry
from tests.clusters.factories import ClusterFactory, EnvironmentFactory, inject
from tests.crud import CrudScreen
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db

TOKEN = "typed-cluster-token-do-not-leak"


def cluster_data(**overrides) -> dict:
    data = {
        "name": "prod",
        "api_url": "https://kube.example.com:6443",
        "token": TOKEN,
        "active": "on",
        "_action": "save",
        "save_without_checking": "on",  # nothing serves kube.example.com
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


# --- clusters ------------------------------------------------------------------


def test_add_cluster_saves_it_encrypted_and_audits_without_the_token(admin_client):
    response = admin_client.post(reverse("clusters:cluster_add"), cluster_data())

    assert response.status_code == 302
    cluster = Cluster.objects.get(name="prod")
    assert cluster.token == TOKEN
    entry = AuditEntry.objects.get(action="create", object_repr="prod")
    assert entry.changes["token"] == ["changed"]
    assert TOKEN not in str(entry.changes)


def test_cluster_url_with_a_password_in_it_is_refused(admin_client):
    # The client never sends it; the URL is shown on the list and in every error.
    data = cluster_data(api_url="https://admin:url-password-do-not-leak@kube.example.com")
    html = admin_client.post(reverse("clusters:cluster_add"), data).content.decode()

    assert "takes no user name or password" in html
    assert not Cluster.objects.exists()


def test_cluster_needs_a_token(admin_client):
    html = admin_client.post(
        reverse("clusters:cluster_add"), cluster_data(token="")
    ).content.decode()

    assert "Enter the bearer token" in html
    assert not Cluster.objects.exists()


def test_cluster_token_with_a_line_break_inside_is_refused_beside_the_field(admin_client):
    data = cluster_data(token="first-half-do-not-leak\nsecond-half")
    html = admin_client.post(reverse("clusters:cluster_add"), data).content.decode()

    assert "paste it again" in html
    assert "first-half-do-not-leak" not in html
    assert not Cluster.objects.exists()


def test_ca_certificate_must_be_pem(admin_client):
    html = admin_client.post(
        reverse("clusters:cluster_add"), cluster_data(ca_certificate="not a certificate")
    ).content.decode()

    assert "This is not a PEM certificate" in html


def test_ca_certificate_and_skip_tls_verify_exclude_each_other(admin_client, ca):
    data = cluster_data(ca_certificate=ca.cert_pem, skip_tls_verify="on")
    html = admin_client.post(reverse("clusters:cluster_add"), data).content.decode()

    assert "not both" in html


def test_edit_with_a_blank_token_keeps_the_stored_one(admin_client):
    cluster = ClusterFactory(name="prod", token="stored-token-do-not-leak")
    data = cluster_data(name=None, token="", api_url="https://new.example.com")

    response = admin_client.post(reverse("clusters:cluster_edit", args=[cluster.pk]), data)

    assert response.status_code == 302
    cluster.refresh_from_db()
    assert cluster.token == "stored-token-do-not-leak"
    assert cluster.api_url == "https://new.example.com"


def test_cluster_list_shows_clusters_with_environment_counts(admin_client):
    cluster = ClusterFactory(name="prod")
    EnvironmentFactory(cluster=cluster)
    EnvironmentFactory(cluster=cluster)

    html = admin_client.get(reverse("clusters:cluster_list")).content.decode()

    assert 'data-cluster="prod"' in html
    assert "<td>2</td>" in html


def test_cluster_list_counts_targets_by_status_once_each(admin_client):
    cluster = ClusterFactory(name="prod")
    registry = RegistryFactory()
    statuses = (("a", "in-sync"), ("b", "in-sync"), ("c", "failed"))
    for namespace, _status in statuses:
        EnvironmentFactory(cluster=cluster, namespace=namespace)
    for namespace, status in statuses:
        PullSecretTarget.objects.create(
            cluster=cluster, namespace=namespace, registry=registry, secret_name="x", status=status
        )

    html = admin_client.get(reverse("clusters:cluster_list")).content.decode()

    assert "2 in sync" in html and "1 failed" in html


def test_cluster_list_runs_a_fixed_number_of_queries(admin_client, django_assert_max_num_queries):
    for _ in range(10):
        EnvironmentFactory()
    with django_assert_max_num_queries(5):
        admin_client.get(reverse("clusters:cluster_list"))


def test_test_connection_reports_version_and_secret_rights(admin_client, start_fake_cluster):
    fake = start_fake_cluster(namespaces=["team-a"])
    data = cluster_data(api_url=fake.url, token=fake.token, _action="test")

    response = admin_client.post(
        reverse("clusters:cluster_add"), data, headers={"HX-Request": "true"}
    )

    html = response.content.decode()
    assert "Connection OK." in html
    assert "v1.26.4+k3s1" in html
    assert "may list and write secrets in namespace default" in html
    assert not Cluster.objects.exists()


def test_test_connection_names_the_verbs_the_token_lacks(admin_client, start_fake_cluster):
    fake = start_fake_cluster(secret_access={"create": False, "delete": False})
    data = cluster_data(api_url=fake.url, token=fake.token, _action="test")

    html = admin_client.post(reverse("clusters:cluster_add"), data).content.decode()

    assert "Connection failed." in html
    assert "may not create, delete secrets" in html


def test_test_connection_warns_when_service_accounts_cannot_be_patched(
    admin_client, start_fake_cluster
):
    fake = start_fake_cluster(secret_access={"patch serviceaccounts": False})
    data = cluster_data(api_url=fake.url, token=fake.token, _action="test")

    html = admin_client.post(reverse("clusters:cluster_add"), data).content.decode()

    assert "Connection OK." in html
    assert "may not patch service accounts" in html


def test_test_connection_degrades_when_the_server_does_not_answer_access_reviews(
    admin_client, start_fake_cluster
):
    fake = start_fake_cluster(secret_access=None)
    data = cluster_data(api_url=fake.url, token=fake.token, _action="test")

    html = admin_client.post(reverse("clusters:cluster_add"), data).content.decode()

    assert "Connection OK." in html
    assert "did not say whether the token may use secrets" in html


def test_test_connection_with_a_wrong_token_says_so_without_echoing_it(
    admin_client, start_fake_cluster
):
    fake = start_fake_cluster()
    data = cluster_data(api_url=fake.url, token=TOKEN, _action="test")

    html = admin_client.post(reverse("clusters:cluster_add"), data).content.decode()

    assert "rejected the bearer token" in html
    assert TOKEN not in html


def test_cluster_delete_page_names_the_namespaces_holding_pull_secrets(admin_client):
    cluster = ClusterFactory(name="prod", api_url="http://127.0.0.1:9")
    registry = RegistryFactory(name="acme")
    PullSecretTarget.objects.create(
        cluster=cluster, namespace="team-a", registry=registry, secret_name="wharf-acme"
    )

    html = admin_client.get(reverse("clusters:cluster_delete", args=[cluster.pk])).content.decode()

    assert "team-a" in html and "Wharf removes 1 pull secret it wrote" in html


def test_saving_a_cluster_marks_its_targets_pending_and_queues_a_reconcile(
    admin_client, django_capture_on_commit_callbacks, queued_reconciles
):
    queued = queued_reconciles
    cluster = ClusterFactory(name="prod")
    EnvironmentFactory(cluster=cluster, namespace="team-a")
    inject(RegistryFactory(name="acme"))
    ReconcileRun.objects.all().delete()  # the set-up's (never committed, never sent)

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("clusters:cluster_edit", args=[cluster.pk]), cluster_data(name=None, token="")
        )

    assert queued == [cluster.pk]
    assert PullSecretTarget.objects.get().status == PullSecretTarget.Status.PENDING


# --- environments ------------------------------------------------------------------


def test_add_environment_under_a_cluster(admin_client):
    cluster = ClusterFactory(name="prod")
    data = {"name": "prod-web", "cluster": cluster.pk, "namespace": "web", "_action": "save"}

    response = admin_client.post(reverse("clusters:environment_add"), data)

    assert response.status_code == 302
    assert (
        response["Location"]
        == reverse("clusters:cluster_edit", args=[cluster.pk]) + "#environments"
    )
    assert Environment.objects.get().namespace == "web"
    cluster_page = admin_client.get(
        reverse("clusters:cluster_edit", args=[cluster.pk])
    ).content.decode()
    assert 'data-environment="prod-web"' in cluster_page


def test_add_environment_form_preselects_the_cluster_from_the_link(admin_client):
    cluster = ClusterFactory(name="prod")
    html = admin_client.get(
        reverse("clusters:environment_add") + f"?cluster={cluster.pk}"
    ).content.decode()
    assert f'<option value="{cluster.pk}" selected>' in html


def test_one_environment_per_cluster_namespace(admin_client):
    env = EnvironmentFactory(namespace="web")
    data = {"name": "again", "cluster": env.cluster_id, "namespace": "web", "_action": "save"}

    response = admin_client.post(reverse("clusters:environment_add"), data)

    assert response.status_code == 200
    assert Environment.objects.count() == 1


def test_environment_delete_shows_the_secrets_that_go(admin_client):
    env = EnvironmentFactory(namespace="web")
    PullSecretTarget.objects.create(
        cluster=env.cluster, namespace="web", registry=RegistryFactory(), secret_name="x"
    )

    html = admin_client.get(reverse("clusters:environment_delete", args=[env.pk])).content.decode()

    assert "Wharf removes 1 pull secret it wrote (cluster " in html and ": web)" in html


# --- registry credential access ("Manage") ---------------------------------------------


def access_data(**overrides) -> dict:
    data = {
        "mode": "include",
        "credentials": "registry",
        "add_to_default_service_account": "on",
        "namespaces": "environments",
        "excluded_namespaces": "kube-system, kube-public, kube-node-lease",
        "service_accounts": "default",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_new_registry_is_not_injected_anywhere_and_offers_manage(admin_client):
    registry = RegistryFactory(name="acme")
    ClusterFactory()

    html = admin_client.get(reverse("registries:registry_list")).content.decode()

    assert "Not injected into any cluster" in html
    assert reverse("clusters:registryaccess_edit", args=[registry.pk]) in html
    assert not RegistryAccess.objects.exists()


def test_public_registry_offers_no_manage(admin_client):
    registry = RegistryFactory(registry_type="public", username="", secret="")

    html = admin_client.get(reverse("registries:registry_list")).content.decode()

    assert reverse("clusters:registryaccess_edit", args=[registry.pk]) not in html
    response = admin_client.get(reverse("clusters:registryaccess_edit", args=[registry.pk]))
    assert response.status_code == 404


def test_manage_saves_an_include_rule_and_the_list_shows_the_summary(admin_client):
    registry = RegistryFactory(name="acme")
    first, second, _third = ClusterFactory(), ClusterFactory(), ClusterFactory()
    data = access_data(clusters=[first.pk, second.pk])

    response = admin_client.post(reverse("clusters:registryaccess_edit", args=[registry.pk]), data)

    assert response.status_code == 302
    rule = RegistryAccess.objects.get()
    assert set(rule.clusters.all()) == {first, second}
    html = admin_client.get(reverse("registries:registry_list")).content.decode()
    assert "Registry credential access is auto injected to 2 clusters" in html
    entry = AuditEntry.objects.get(object_type="registry credential access")
    assert sorted(entry.changes["clusters"][1]) == sorted([first.name, second.name])


def test_exclude_rule_summary_counts_every_other_cluster(admin_client):
    registry = RegistryFactory(name="acme")
    left_out = ClusterFactory()
    ClusterFactory(), ClusterFactory()
    data = access_data(mode="exclude", clusters=[left_out.pk])

    admin_client.post(reverse("clusters:registryaccess_edit", args=[registry.pk]), data)

    html = admin_client.get(reverse("registries:registry_list")).content.decode()
    assert "Registry credential access is auto injected to 2 clusters" in html


def test_all_clusters_rule_summary(admin_client):
    registry = RegistryFactory(name="acme")
    admin_client.post(
        reverse("clusters:registryaccess_edit", args=[registry.pk]), access_data(all_clusters="on")
    )
    html = admin_client.get(reverse("registries:registry_list")).content.decode()
    assert "auto injected to all clusters" in html


def test_include_rule_needs_clusters_or_all(admin_client):
    registry = RegistryFactory()
    html = admin_client.post(
        reverse("clusters:registryaccess_edit", args=[registry.pk]), access_data()
    ).content.decode()
    assert "Pick the clusters to inject credentials into" in html
    assert not RegistryAccess.objects.exists()


def test_a_cluster_id_no_database_can_hold_is_refused_not_a_500(admin_client):
    # SQLite raises OverflowError for the IN (...) query Django builds from the choices.
    registry = RegistryFactory()
    ClusterFactory()
    data = access_data(clusters=["9" * 30])

    response = admin_client.post(reverse("clusters:registryaccess_edit", args=[registry.pk]), data)

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not RegistryAccess.objects.exists()


def test_specified_secret_needs_its_name(admin_client):
    registry = RegistryFactory()
    data = access_data(all_clusters="on", credentials="secret", secret_name="")
    html = admin_client.post(
        reverse("clusters:registryaccess_edit", args=[registry.pk]), data
    ).content.decode()
    assert "Enter the name of the image pull secret" in html


def test_registry_list_with_rules_runs_a_fixed_number_of_queries(
    admin_client, django_assert_max_num_queries
):
    clusters = [ClusterFactory() for _ in range(3)]
    for _ in range(10):
        inject(RegistryFactory(), clusters=clusters[:2])
    with django_assert_max_num_queries(8):
        admin_client.get(reverse("registries:registry_list"))


def test_saving_access_queues_a_reconcile_of_the_selected_clusters(
    admin_client, django_capture_on_commit_callbacks, queued_reconciles
):
    queued = queued_reconciles
    registry = RegistryFactory(name="acme")
    chosen, other = ClusterFactory(), ClusterFactory()
    EnvironmentFactory(cluster=chosen, namespace="team-a")
    ReconcileRun.objects.all().delete()  # the set-up's (never committed, never sent)

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            reverse("clusters:registryaccess_edit", args=[registry.pk]),
            access_data(clusters=[chosen.pk]),
        )

    assert queued == [chosen.pk]
    target = PullSecretTarget.objects.get()
    assert (target.cluster, target.namespace, target.status) == (chosen, "team-a", "pending")
    assert other.targets.count() == 0


# --- live status -------------------------------------------------------------------


def test_status_partial_polls_while_targets_are_pending(admin_client):
    target = PullSecretTarget.objects.create(
        cluster=ClusterFactory(), namespace="a", registry=RegistryFactory(), secret_name="x"
    )
    url = reverse("clusters:registryaccess_status", args=[target.registry_id])

    response = admin_client.get(url, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert 'hx-trigger="every 2s"' in response.content.decode()


def test_status_partial_stops_polling_with_286_when_nothing_is_pending(admin_client):
    target = PullSecretTarget.objects.create(
        cluster=ClusterFactory(),
        namespace="a",
        registry=RegistryFactory(),
        secret_name="x",
        status=PullSecretTarget.Status.IN_SYNC,
    )

    for url in (
        reverse("clusters:registryaccess_status", args=[target.registry_id]),
        reverse("clusters:cluster_status", args=[target.cluster_id]),
    ):
        response = admin_client.get(url, headers={"HX-Request": "true"})
        assert response.status_code == 286
        assert "In sync" in response.content.decode()
        assert "hx-trigger" not in response.content.decode()


def test_registry_delete_page_names_clusters_and_namespaces_holding_its_secret(admin_client):
    registry = RegistryFactory(name="acme", is_default=True)
    cluster = ClusterFactory(name="prod")
    for namespace in ("team-a", "team-b"):
        PullSecretTarget.objects.create(
            cluster=cluster, namespace=namespace, registry=registry, secret_name="wharf-acme"
        )

    html = admin_client.get(
        reverse("registries:registry_delete", args=[registry.pk])
    ).content.decode()

    assert "cluster prod: team-a, team-b" in html


def test_reconcile_now_marks_the_cluster_pending(admin_client):
    cluster = ClusterFactory()
    EnvironmentFactory(cluster=cluster)
    inject(RegistryFactory())

    response = admin_client.post(reverse("clusters:cluster_reconcile", args=[cluster.pk]))

    assert response.status_code == 302
    assert PullSecretTarget.objects.get().status == PullSecretTarget.Status.PENDING


def test_a_broker_outage_after_a_save_is_logged_not_a_500(
    admin_client, broker, django_capture_on_commit_callbacks
):
    # The save has committed when the task is queued: the recovery sends it again later.
    broker.down = True
    cluster = ClusterFactory()

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("clusters:cluster_reconcile", args=[cluster.pk]))

    assert response.status_code == 302


def test_reconcile_now_while_a_reconcile_runs_says_it_waits(admin_client):
    from datetime import timedelta

    from django.utils import timezone

    cluster = ClusterFactory(name="busy")
    ReconcileRun.objects.create(
        cluster=cluster, status=ReconcileRun.Status.RUNNING, started_at=timezone.now(),
        lease_owner="alive", lease_expires_at=timezone.now() + timedelta(seconds=60),
    )  # fmt: skip

    page = admin_client.post(reverse("clusters:cluster_reconcile", args=[cluster.pk]), follow=True)

    assert "A reconcile of busy is running" in page.content.decode()
    assert ReconcileRun.objects.filter(cluster=cluster, status="queued").count() == 1


def test_reconcile_now_behind_a_dead_reconcile_says_wharf_takes_over(admin_client):
    from datetime import timedelta

    from django.utils import timezone

    cluster = ClusterFactory(name="stuck")
    ReconcileRun.objects.create(
        cluster=cluster, status=ReconcileRun.Status.RUNNING,
        started_at=timezone.now() - timedelta(hours=1),
        lease_owner="killed", lease_expires_at=timezone.now() - timedelta(minutes=50),
    )  # fmt: skip

    page = admin_client.post(reverse("clusters:cluster_reconcile", args=[cluster.pk]), follow=True)

    assert "stopped answering" in page.content.decode()


class TestClusterScreen(CrudScreen):
    model = Cluster
    namespace = "clusters"
    add_data = cluster_data()
    added_name = "prod"
    edit_field = "api_url"
    edit_value = "https://127.0.0.1:10"
    bad_field = "api_url"
    bad_value = "ftp://kube.example.com"
    bad_message = "Enter the API server URL with its scheme"

    def make(self):
        # Nothing listens there: a delete's clean-up of its pull secrets fails at once.
        return ClusterFactory(name="prod", api_url="https://127.0.0.1:9")

    def edit_data(self, obj):
        return cluster_data(name=obj.name, api_url=obj.api_url, token="")


class TestEnvironmentScreen(CrudScreen):
    model = Environment
    namespace = "clusters"
    added_name = "prod-web"
    edit_field = "namespace"
    edit_value = "web-2"
    bad_field = "namespace"
    bad_value = "Team_A"
    bad_message = "Kubernetes namespace name"

    @property
    def add_data(self):
        cluster = Cluster.objects.first() or ClusterFactory(name="prod")
        return {"name": "prod-web", "cluster": cluster.pk, "namespace": "web", "_action": "save"}

    def make(self):
        return EnvironmentFactory(name="prod-web", cluster__api_url="https://127.0.0.1:9")

    def edit_data(self, obj):
        return {"name": obj.name, "cluster": obj.cluster_id, "namespace": obj.namespace}

    def success_url(self, obj):
        # An environment is saved back on its cluster's page, where it is listed.
        return reverse("clusters:cluster_edit", args=[obj.cluster_id]) + "#environments"


def test_recent_reconciles_poll_while_one_is_queued_and_stop_with_286_once_done(admin_client):
    cluster = ClusterFactory(name="prod")
    ReconcileRun.objects.create(cluster=cluster, trigger=ReconcileRun.Trigger.MANUAL)
    url = reverse("clusters:reconcilerun_list", args=[cluster.pk])

    page = admin_client.get(reverse("clusters:cluster_edit", args=[cluster.pk])).content.decode()
    polled = admin_client.get(url, headers={"HX-Request": "true"})
    ReconcileRun.objects.filter(cluster=cluster).update(status=ReconcileRun.Status.SUCCEEDED)
    done = admin_client.get(url, headers={"HX-Request": "true"})

    assert f'hx-get="{url}" hx-trigger="every 2s"' in page and "Reconcile now" in page
    assert polled.status_code == 200 and "Queued" in polled.content.decode()
    assert done.status_code == 286
    assert "Succeeded" in done.content.decode() and "hx-trigger" not in done.content.decode()
