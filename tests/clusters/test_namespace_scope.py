"""Which namespaces and ServiceAccounts a rule covers, reconciled against emulated clusters."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clusters import kube
from clusters.models import ClusterNamespace, PullSecretTarget, RegistryAccess
from clusters.pullsecrets import SERVICE_ACCOUNT_ANNOTATION, reconcile_cluster
from tests.clusters.factories import ClusterFactory, inject
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db

IN_SYNC = PullSecretTarget.Status.IN_SYNC
FAILED = PullSecretTarget.Status.FAILED


def writes(fake, kind: str = "secrets") -> int:
    calls = fake.calls(kind)
    return calls["create"] + calls["update"] + calls["patch"] + calls["delete"]


def secrets_in(fake) -> set[str]:
    return {ns for ns, name in fake.secrets() if name == "wharf-acme"}


def targets() -> set[str]:
    return set(PullSecretTarget.objects.values_list("namespace", flat=True))


def pull_secrets(fake, namespace: str, account: str = "default") -> list[str]:
    return [
        ref["name"] for ref in fake.service_account(namespace, account).get("imagePullSecrets", [])
    ]


@pytest.fixture
def fleet(start_fake_cluster):
    """A cluster with no environments and some labelled namespaces (and the system ones)."""
    fake = start_fake_cluster(namespaces=["kube-system", "kube-public", "kube-node-lease"])
    fake.add_namespace("web", labels={"team": "web", "env": "prod"})
    fake.add_namespace("api", labels={"team": "api", "env": "staging"})
    fake.add_namespace("legacy", labels={"team": "web", "legacy": "yes"})
    cluster = ClusterFactory(name="prod", api_url=fake.url, token=fake.token)
    return cluster, fake


def test_all_namespaces_rule_covers_every_namespace_but_the_system_ones(fleet):
    cluster, fake = fleet
    inject(RegistryFactory(name="acme"), namespaces="all")

    reconcile_cluster(cluster.pk)

    assert secrets_in(fake) == {"web", "api", "legacy"}
    assert targets() == {"web", "api", "legacy"}
    assert fake.calls("namespaces") == {"list": 1}


def test_all_namespaces_rule_leaves_out_the_namespaces_listed(fleet):
    cluster, fake = fleet
    inject(RegistryFactory(name="acme"), namespaces="all", excluded_namespaces="legacy, api")

    reconcile_cluster(cluster.pk)

    assert secrets_in(fake) == {"web", "kube-system", "kube-public", "kube-node-lease"}


@pytest.mark.parametrize(
    ("selector", "covered"),
    [
        ("team=web", {"web", "legacy"}),
        ("team==web,!legacy", {"web"}),
        ("team!=web", {"api", "kube-system", "kube-public", "kube-node-lease"}),
        ("env in (prod,staging)", {"web", "api"}),
        ("team,env notin (prod)", {"api", "legacy"}),
        ("legacy", {"legacy"}),
        ("kubernetes.io/metadata.name in (api,web)", {"api", "web"}),
    ],
)
def test_selector_rule_covers_the_namespaces_it_matches(fleet, selector, covered):
    cluster, fake = fleet
    inject(RegistryFactory(name="acme"), namespaces="selector", namespace_selector=selector)

    reconcile_cluster(cluster.pk)

    assert secrets_in(fake) == covered
    assert targets() == covered


def test_new_namespace_is_covered_by_the_next_reconcile_without_a_save(fleet):
    cluster, fake = fleet
    inject(RegistryFactory(name="acme"), namespaces="selector", namespace_selector="team")
    reconcile_cluster(cluster.pk)

    fake.add_namespace("billing", labels={"team": "billing"})
    reconcile_cluster(cluster.pk)

    assert "billing" in secrets_in(fake)
    assert PullSecretTarget.objects.get(namespace="billing").status == IN_SYNC
    assert pull_secrets(fake, "billing") == ["wharf-acme"]


def test_namespace_that_disappears_takes_its_status_rows_with_it(fleet):
    cluster, fake = fleet
    inject(RegistryFactory(name="acme"), namespaces="all")
    reconcile_cluster(cluster.pk)
    assert "api" in targets()

    fake.delete_namespace("api")
    reconcile_cluster(cluster.pk)

    assert targets() == {"web", "legacy"}
    assert not ClusterNamespace.objects.filter(name="api").exists()


def test_reconcile_stores_each_namespace_with_its_labels_and_the_time(fleet):
    cluster, _fake = fleet
    inject(RegistryFactory(name="acme"), namespaces="all")

    reconcile_cluster(cluster.pk)

    stored = dict(cluster.namespaces.values_list("name", "labels"))
    assert stored["web"] == {"kubernetes.io/metadata.name": "web", "team": "web", "env": "prod"}
    assert set(stored) == {"kube-system", "kube-public", "kube-node-lease", "web", "api", "legacy"}
    cluster.refresh_from_db()
    assert cluster.namespaces_listed_at is not None


def test_narrowed_selector_removes_wharfs_secret_and_service_account_entry_only(fleet):
    cluster, fake = fleet
    rule = inject(RegistryFactory(name="acme"), namespaces="selector", namespace_selector="team")
    reconcile_cluster(cluster.pk)
    # Someone else's entry on the same ServiceAccount, and someone else's secret.
    fake.objects[fake.service_account_key("legacy")].patch(
        {"imagePullSecrets": [{"name": "wharf-acme"}, {"name": "theirs"}]}
    )
    fake.put_secret("legacy", "theirs", {"type": "Opaque", "data": {"a": "Yg=="}})

    rule.namespace_selector = "team,!legacy"
    rule.full_clean()
    rule.save()
    reconcile_cluster(cluster.pk)

    assert secrets_in(fake) == {"web", "api"}
    assert fake.secret("legacy", "theirs") is not None
    assert pull_secrets(fake, "legacy") == ["theirs"]
    annotations = fake.service_account("legacy")["metadata"].get("annotations") or {}
    assert not annotations.get(SERVICE_ACCOUNT_ANNOTATION)
    assert targets() == {"web", "api"}


def test_namespace_relabelled_out_of_the_selector_is_cleaned(fleet):
    cluster, fake = fleet
    inject(RegistryFactory(name="acme"), namespaces="selector", namespace_selector="env=prod")
    reconcile_cluster(cluster.pk)
    assert secrets_in(fake) == {"web"}

    fake.label_namespace("web", {"env": "dev"})
    fake.label_namespace("api", {"env": "prod"})
    reconcile_cluster(cluster.pk)

    assert secrets_in(fake) == {"api"}
    assert pull_secrets(fake, "web") == []
    assert pull_secrets(fake, "api") == ["wharf-acme"]


def test_switching_from_all_namespaces_back_to_environments_cleans_the_rest(fleet):
    cluster, fake = fleet
    cluster.environments.create(name="prod-web", namespace="web")
    rule = inject(RegistryFactory(name="acme"), namespaces="all")
    reconcile_cluster(cluster.pk)
    assert secrets_in(fake) == {"web", "api", "legacy"}

    RegistryAccess.objects.filter(pk=rule.pk).update(namespaces="environments")
    reconcile_cluster(cluster.pk)

    assert secrets_in(fake) == {"web"}
    assert pull_secrets(fake, "api") == [] and pull_secrets(fake, "legacy") == []


def test_environment_namespace_missing_from_the_cluster_fails_without_a_write(fleet):
    cluster, fake = fleet
    cluster.environments.create(name="prod-gone", namespace="gone")
    inject(RegistryFactory(name="acme"))

    reconcile_cluster(cluster.pk)

    target = PullSecretTarget.objects.get()
    assert (target.namespace, target.status) == ("gone", FAILED)
    assert "Namespace gone does not exist in cluster prod" in target.error
    assert writes(fake) == 0


def test_refused_namespace_list_fails_the_selector_targets_and_keeps_their_secrets(fleet):
    cluster, fake = fleet
    cluster.environments.create(name="prod-web", namespace="web")
    inject(RegistryFactory(name="acme"), namespaces="selector", namespace_selector="team")
    inject(RegistryFactory(name="envonly"))
    reconcile_cluster(cluster.pk)
    fake.forbidden_lists = {"namespaces"}
    fake.reset_calls()

    reconcile_cluster(cluster.pk)

    statuses = dict(
        PullSecretTarget.objects.filter(registry__name="acme").values_list("namespace", "status")
    )
    assert statuses == {"web": FAILED, "api": FAILED, "legacy": FAILED}
    error = PullSecretTarget.objects.filter(registry__name="acme").first().error
    assert error.startswith("Could not list the namespaces: The token is not allowed to list")
    assert secrets_in(fake) == {"web", "api", "legacy"}  # nothing removed over a failed read
    assert PullSecretTarget.objects.get(registry__name="envonly").status == IN_SYNC
    assert set(cluster.namespaces.values_list("name", flat=True)) >= {"web", "api", "legacy"}
    assert writes(fake) == 0


# --- ServiceAccounts -----------------------------------------------------------------


@pytest.fixture
def accounts(start_fake_cluster):
    fake = start_fake_cluster()
    for namespace in ("web", "api"):
        fake.add_namespace(namespace, service_accounts=("builder", "runner"))
    cluster = ClusterFactory(name="prod", api_url=fake.url, token=fake.token)
    for namespace in ("web", "api"):
        cluster.environments.create(name=f"prod-{namespace}", namespace=namespace)
    return cluster, fake


def test_all_service_accounts_of_each_namespace_list_the_secret(accounts):
    cluster, fake = accounts
    inject(RegistryFactory(name="acme"), service_accounts="all")

    reconcile_cluster(cluster.pk)

    for namespace in ("web", "api"):
        for account in ("default", "builder", "runner"):
            assert pull_secrets(fake, namespace, account) == ["wharf-acme"]
    assert fake.calls("serviceaccounts")["list"] == 1  # one LIST for the cluster


def test_named_service_accounts_list_the_secret_and_no_others(accounts):
    cluster, fake = accounts
    inject(RegistryFactory(name="acme"), service_accounts="named", service_account_names="runner")

    reconcile_cluster(cluster.pk)

    assert pull_secrets(fake, "web", "runner") == ["wharf-acme"]
    assert pull_secrets(fake, "web", "default") == []
    assert pull_secrets(fake, "web", "builder") == []


def test_narrowing_service_accounts_removes_only_wharfs_entries(accounts):
    cluster, fake = accounts
    rule = inject(RegistryFactory(name="acme"), service_accounts="all")
    reconcile_cluster(cluster.pk)
    fake.objects[(fake.service_account_key("web")[0], "web", "builder")].patch(
        {"imagePullSecrets": [{"name": "wharf-acme"}, {"name": "theirs"}]}
    )

    RegistryAccess.objects.filter(pk=rule.pk).update(service_accounts="default")
    reconcile_cluster(cluster.pk)

    assert pull_secrets(fake, "web", "builder") == ["theirs"]
    assert pull_secrets(fake, "web", "runner") == []
    assert pull_secrets(fake, "web", "default") == ["wharf-acme"]


# --- an unchanged reconcile writes nothing -------------------------------------------

ROW_TABLES = (PullSecretTarget._meta.db_table, ClusterNamespace._meta.db_table)


def row_writes(queries) -> list[str]:
    """INSERT/UPDATE/DELETE statements on the status and namespace tables."""
    return [
        q["sql"]
        for q in queries
        if q["sql"].lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE")
        and any(table in q["sql"] for table in ROW_TABLES)
    ]


def test_unchanged_reconcile_writes_no_status_row_and_nothing_to_the_cluster(fleet):
    cluster, fake = fleet
    inject(RegistryFactory(name="acme"), namespaces="selector", namespace_selector="team")
    inject(RegistryFactory(name="other"), namespaces="all", service_accounts="all")
    reconcile_cluster(cluster.pk)
    fake.reset_calls()

    with CaptureQueriesContext(connection) as queries:
        reconcile_cluster(cluster.pk)

    assert row_writes(queries.captured_queries) == []
    assert fake.calls("namespaces") == {"list": 1}
    assert fake.calls("secrets") == {"list": 1}
    assert fake.calls("serviceaccounts") == {"list": 1}
    assert PullSecretTarget.objects.filter(status=IN_SYNC).count() == 3 + 3


def test_a_changed_target_alone_is_written(fleet):
    cluster, fake = fleet
    inject(RegistryFactory(name="acme"), namespaces="all")
    reconcile_cluster(cluster.pk)
    web_checked = PullSecretTarget.objects.get(namespace="web").last_checked
    # Someone else's secret takes Wharf's name in one namespace.
    fake.delete_secret("api", "wharf-acme")
    fake.put_secret("api", "wharf-acme", {"type": "Opaque", "data": {"a": "Yg=="}})

    with CaptureQueriesContext(connection) as queries:
        reconcile_cluster(cluster.pk)

    updates = row_writes(queries.captured_queries)
    assert len(updates) == 1  # one bulk UPDATE …
    failed = PullSecretTarget.objects.get(namespace="api")
    assert failed.status == FAILED and "was not created by Wharf" in failed.error
    assert PullSecretTarget.objects.filter(status=IN_SYNC).count() == 2
    assert PullSecretTarget.objects.get(namespace="web").last_checked == web_checked
    assert failed.last_checked > web_checked


# --- the client and the emulator agree on selectors ------------------------------------


def test_namespace_list_with_a_set_based_selector_is_filtered_by_the_emulator(fleet):
    _cluster, fake = fleet
    with kube.KubeClient(kube.Connection(fake.url, fake.token)) as api:
        found = api.namespaces("team in (web,api),!legacy")
    assert set(found) == {"web", "api"}
    assert found["api"]["env"] == "staging"


def test_malformed_selector_is_answered_400_by_the_emulator(fleet):
    _cluster, fake = fleet
    with (
        kube.KubeClient(kube.Connection(fake.url, fake.token)) as api,
        pytest.raises(kube.KubeError) as caught,
    ):
        api.namespaces("team in (web")
    assert caught.value.status == 400


def test_an_unchanged_target_shows_the_last_reconcile_as_its_check(fleet):
    cluster, _fake = fleet
    inject(RegistryFactory(name="acme"), namespaces="all")
    reconcile_cluster(cluster.pk)
    changed_at = PullSecretTarget.objects.get(namespace="web").last_checked

    reconcile_cluster(cluster.pk)

    target = PullSecretTarget.objects.select_related("cluster").get(namespace="web")
    assert target.last_checked == changed_at  # not rewritten …
    assert target.checked_at == target.cluster.last_reconciled_at > changed_at  # … but shown


def test_a_terminating_namespace_is_not_covered(fleet):
    cluster, fake = fleet
    inject(RegistryFactory(name="acme"), namespaces="all")
    fake.set_namespace_phase("api", "Terminating")

    reconcile_cluster(cluster.pk)

    assert secrets_in(fake) == {"web", "legacy"}


def test_refused_namespace_list_removes_nothing_even_with_no_namespace_stored(fleet):
    cluster, fake = fleet
    inject(RegistryFactory(name="acme"), namespaces="all")
    reconcile_cluster(cluster.pk)
    ClusterNamespace.objects.all().delete()  # as if nothing had been stored
    fake.forbidden_lists = {"namespaces"}

    reconcile_cluster(cluster.pk)

    assert secrets_in(fake) == {"web", "api", "legacy"}
