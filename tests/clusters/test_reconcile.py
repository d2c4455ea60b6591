"""Reconciling pull secrets through the official client against emulated clusters."""

import base64
import json

import pytest
from django.core.exceptions import ValidationError

from clusters.models import Cluster, PullSecretTarget, ReconcileRun, RegistryAccess
from clusters.pullsecrets import (
    MANAGED_BY,
    SERVICE_ACCOUNT_ANNOTATION,
    reconcile_cluster,
    run_reconcile,
)
from config.runs import Lease
from tests.clusters.factories import inject
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db

IN_SYNC = PullSecretTarget.Status.IN_SYNC


def docker_config(secret: dict) -> dict:
    return json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))


def writes(fake) -> int:
    calls = fake.calls()
    return calls["create"] + calls["update"] + calls["delete"]


def test_first_reconcile_writes_one_labelled_dockerconfigjson_secret_per_namespace(add_cluster):
    cluster, fake = add_cluster("prod", namespaces=["team-a", "team-b"])
    registry = RegistryFactory(name="acme", url="registry.acme.test:5000/team", username="robot")
    inject(registry)

    reconcile_cluster(cluster.pk)

    for namespace in ("team-a", "team-b"):
        secret = fake.secret(namespace, "wharf-acme")
        assert secret["type"] == "kubernetes.io/dockerconfigjson"
        assert secret["metadata"]["labels"][MANAGED_BY] == "wharf"
        assert secret["metadata"]["labels"]["wharf.dev/registry"] == "acme"
        auth = docker_config(secret)["auths"]["registry.acme.test:5000"]
        assert auth["username"] == "robot" and auth["password"] == registry.secret
        assert base64.b64decode(auth["auth"]).decode() == f"robot:{registry.secret}"
    assert fake.calls() == {"list": 1, "create": 2}
    statuses = PullSecretTarget.objects.values_list("namespace", "status", "last_checked")
    assert {(ns, status) for ns, status, _ in statuses} == {
        ("team-a", IN_SYNC),
        ("team-b", IN_SYNC),
    }
    assert all(checked for _, _, checked in statuses)


def test_secret_name_is_added_to_each_default_service_account(add_cluster):
    cluster, fake = add_cluster("prod", namespaces=["team-a"])
    inject(RegistryFactory(name="acme"))

    reconcile_cluster(cluster.pk)

    account = fake.service_account("team-a")
    assert account["imagePullSecrets"] == [{"name": "wharf-acme"}]
    assert account["metadata"]["annotations"][SERVICE_ACCOUNT_ANNOTATION] == "wharf-acme"


def test_unchanged_reconcile_lists_once_and_writes_nothing(add_cluster):
    cluster, fake = add_cluster("prod", namespaces=["team-a", "team-b"])
    inject(RegistryFactory(name="acme"))
    reconcile_cluster(cluster.pk)
    fake.reset_calls()

    reconcile_cluster(cluster.pk)

    assert fake.calls() == {"list": 1}
    assert fake.calls("serviceaccounts") == {"list": 1}


def test_changed_password_replaces_every_target(add_cluster):
    cluster, fake = add_cluster("prod", namespaces=["team-a", "team-b", "team-c"])
    registry = RegistryFactory(name="acme")
    inject(registry)
    reconcile_cluster(cluster.pk)
    fake.reset_calls()

    registry.secret = "a-brand-new-password"
    registry.save()
    reconcile_cluster(cluster.pk)

    assert fake.calls() == {"list": 1, "update": 3}
    for namespace in ("team-a", "team-b", "team-c"):
        auth = docker_config(fake.secret(namespace, "wharf-acme"))["auths"]
        # The new password under the key Wharf always writes (the old one rides beside it
        # for the rotation grace: tests/clusters/test_rotation.py).
        assert auth[registry.url]["password"] == "a-brand-new-password"


def test_secret_deleted_by_hand_is_recreated(add_cluster):
    cluster, fake = add_cluster("prod", namespaces=["team-a", "team-b"])
    inject(RegistryFactory(name="acme"))
    reconcile_cluster(cluster.pk)
    fake.delete_secret("team-b", "wharf-acme")
    fake.reset_calls()

    reconcile_cluster(cluster.pk)

    assert fake.secret("team-b", "wharf-acme") is not None
    assert fake.calls() == {"list": 1, "create": 1}


def test_secret_edited_by_hand_is_healed(add_cluster):
    cluster, fake = add_cluster("prod", namespaces=["team-a"])
    inject(RegistryFactory(name="acme"))
    reconcile_cluster(cluster.pk)
    good = fake.secret("team-a", "wharf-acme")["data"]
    fake.objects[fake.secret_key("team-a", "wharf-acme")].patch(
        {"data": {".dockerconfigjson": "e30=", "extra": "eA=="}}
    )

    reconcile_cluster(cluster.pk)

    assert fake.secret("team-a", "wharf-acme")["data"] == good


def test_foreign_secrets_without_the_wharf_label_are_never_touched(add_cluster):
    cluster, fake = add_cluster("prod", namespaces=["team-a"])
    foreign = {"type": "Opaque", "data": {"k": "dg=="}, "metadata": {"labels": {"team": "a"}}}
    fake.put_secret("team-a", "wharf-old-registry", foreign)
    inject(RegistryFactory(name="acme"))

    reconcile_cluster(cluster.pk)
    reconcile_cluster(cluster.pk)

    assert fake.secret("team-a", "wharf-old-registry")["data"] == {"k": "dg=="}
    assert fake.calls()["delete"] == 0


def test_a_secret_of_another_tool_called_wharf_is_never_deleted(add_cluster):
    # app.kubernetes.io/managed-by=wharf is a well-known label any tool named so may set;
    # Wharf's own secrets also carry its wharf.dev/registry label.
    cluster, fake = add_cluster("prod", namespaces=["team-a"])
    other = {"type": "Opaque", "data": {"k": "dg=="}, "metadata": {"labels": {MANAGED_BY: "wharf"}}}
    fake.put_secret("team-a", "ci-runner-token", other)
    inject(RegistryFactory(name="acme"))

    reconcile_cluster(cluster.pk)
    cluster.delete()

    assert fake.secret("team-a", "ci-runner-token")["data"] == {"k": "dg=="}


def test_foreign_secret_with_the_wanted_name_fails_the_target_and_stays(add_cluster):
    cluster, fake = add_cluster("prod", namespaces=["team-a"])
    fake.put_secret("team-a", "wharf-acme", {"type": "Opaque", "data": {"k": "dg=="}})
    inject(RegistryFactory(name="acme"))

    reconcile_cluster(cluster.pk)

    target = PullSecretTarget.objects.get()
    assert target.status == PullSecretTarget.Status.FAILED
    assert "was not created by Wharf" in target.error
    assert fake.secret("team-a", "wharf-acme")["data"] == {"k": "dg=="}


def test_conflict_on_create_after_a_stale_list_is_retried_on_a_fresh_read(add_cluster):
    cluster, fake = add_cluster("prod", namespaces=["team-a"])
    inject(RegistryFactory(name="acme"))
    reconcile_cluster(cluster.pk)
    fake.objects[fake.secret_key("team-a", "wharf-acme")].patch(
        {"data": {".dockerconfigjson": "e30="}}
    )
    fake.stale_secret_lists = 1  # the list misses the secret: create answers 409
    fake.reset_calls()

    reconcile_cluster(cluster.pk)

    assert fake.calls() == {"list": 1, "create": 1, "fetch": 1, "update": 1}
    assert fake.secret("team-a", "wharf-acme")["data"][".dockerconfigjson"] != "e30="
    assert PullSecretTarget.objects.get().status == IN_SYNC


def test_conflict_on_update_is_retried_after_a_fresh_read(add_cluster):
    cluster, fake = add_cluster("prod", namespaces=["team-a"])
    registry = RegistryFactory(name="acme")
    inject(registry)
    reconcile_cluster(cluster.pk)
    registry.secret = "rotated-password"
    registry.save()
    fake.conflicting_patches = 1
    fake.reset_calls()

    reconcile_cluster(cluster.pk)

    assert fake.calls() == {"list": 1, "update": 2, "fetch": 1}
    assert PullSecretTarget.objects.get().status == IN_SYNC


def test_a_secret_replaced_by_someone_elses_before_a_conflict_retry_is_left_alone(add_cluster):
    cluster, fake = add_cluster("prod", namespaces=["team-a"])
    registry = RegistryFactory(name="acme")
    inject(registry)
    reconcile_cluster(cluster.pk)
    registry.secret = "rotated-password"
    registry.save()

    def someone_takes_the_name():
        fake.delete_secret("team-a", "wharf-acme")
        fake.put_secret("team-a", "wharf-acme", {"type": "Opaque", "data": {"k": "dg=="}})

    fake.conflicting_patches, fake.on_conflict = 1, someone_takes_the_name

    reconcile_cluster(cluster.pk)

    secret = fake.secret("team-a", "wharf-acme")
    assert secret["data"] == {"k": "dg=="}
    assert MANAGED_BY not in (secret["metadata"].get("labels") or {})
    target = PullSecretTarget.objects.get()
    assert target.status == PullSecretTarget.Status.FAILED
    assert "was not created by Wharf" in target.error


def test_unreachable_cluster_fails_its_targets_and_the_others_still_sync(add_cluster):
    down, _down_fake = add_cluster("down", namespaces=["team-a"])
    up, up_fake = add_cluster("up", namespaces=["team-a"])
    inject(RegistryFactory(name="acme"))
    down.api_url = "http://127.0.0.1:9"  # nothing listens on the discard port
    down.save()

    reconcile_cluster(down.pk)
    reconcile_cluster(up.pk)

    failed = PullSecretTarget.objects.get(cluster=down)
    assert failed.status == PullSecretTarget.Status.FAILED
    assert "Could not reach the API server" in failed.error
    assert PullSecretTarget.objects.get(cluster=up).status == IN_SYNC
    assert up_fake.secret("team-a", "wharf-acme") is not None


def test_rejected_token_fails_the_targets_with_an_actionable_message(add_cluster):
    cluster, _fake = add_cluster("prod", namespaces=["team-a"])
    inject(RegistryFactory(name="acme"))
    cluster.token = "not-the-right-token"
    cluster.save()

    reconcile_cluster(cluster.pk)

    target = PullSecretTarget.objects.get()
    assert target.status == PullSecretTarget.Status.FAILED
    assert "rejected the bearer token" in target.error
    assert "not-the-right-token" not in target.error


def test_include_rule_injects_only_into_the_chosen_clusters(add_cluster):
    chosen, chosen_fake = add_cluster("chosen")
    other, other_fake = add_cluster("other")
    inject(RegistryFactory(name="acme"), clusters=[chosen])

    reconcile_cluster(chosen.pk)
    reconcile_cluster(other.pk)

    assert chosen_fake.secret("team-a", "wharf-acme") is not None
    assert other_fake.secret("team-a", "wharf-acme") is None


def test_exclude_rule_injects_everywhere_but_the_excluded_clusters(add_cluster):
    left_out, left_out_fake = add_cluster("left-out")
    other, other_fake = add_cluster("other")
    inject(RegistryFactory(name="acme"), clusters=[left_out], mode=RegistryAccess.Mode.EXCLUDE)

    reconcile_cluster(left_out.pk)
    reconcile_cluster(other.pk)

    assert left_out_fake.secret("team-a", "wharf-acme") is None
    assert other_fake.secret("team-a", "wharf-acme") is not None


def test_registry_without_an_access_rule_injects_nowhere(add_cluster):
    cluster, fake = add_cluster("prod")
    RegistryFactory(name="acme")

    reconcile_cluster(cluster.pk)

    assert fake.secrets() == {}
    assert not PullSecretTarget.objects.exists()


def test_public_registry_injects_nothing_even_with_a_rule(add_cluster):
    cluster, fake = add_cluster("prod")
    inject(RegistryFactory(name="pub", registry_type="public", username="", secret=""))

    reconcile_cluster(cluster.pk)

    assert fake.secrets() == {}


def test_excluding_a_cluster_later_removes_its_secret_and_status(add_cluster):
    cluster, fake = add_cluster("prod")
    rule = inject(RegistryFactory(name="acme"))
    reconcile_cluster(cluster.pk)
    rule.mode, rule.all_clusters = RegistryAccess.Mode.EXCLUDE, False
    rule.save()
    rule.clusters.set([cluster])

    reconcile_cluster(cluster.pk)

    assert fake.secret("team-a", "wharf-acme") is None
    assert (
        "imagePullSecrets" not in fake.service_account("team-a")
        or not fake.service_account("team-a")["imagePullSecrets"]
    )
    assert not PullSecretTarget.objects.exists()


def test_specified_secret_is_only_checked_and_reported_missing_where_absent(add_cluster):
    cluster, fake = add_cluster("prod", namespaces=["has-it", "lacks-it"])
    fake.put_secret("has-it", "regcred", {"type": "kubernetes.io/dockerconfigjson", "data": {}})
    inject(
        RegistryFactory(name="acme"),
        credentials=RegistryAccess.Credentials.SECRET,
        secret_name="regcred",
    )
    fake.reset_calls()

    reconcile_cluster(cluster.pk)

    statuses = dict(PullSecretTarget.objects.values_list("namespace", "status"))
    assert statuses == {"has-it": IN_SYNC, "lacks-it": PullSecretTarget.Status.MISSING}
    missing = PullSecretTarget.objects.get(namespace="lacks-it")
    assert "regcred does not exist in namespace lacks-it" in missing.error
    assert fake.calls()["create"] == 0
    assert fake.service_account("has-it")["imagePullSecrets"] == [{"name": "regcred"}]


def test_someone_elses_image_pull_secrets_entries_stay_on_the_service_account(add_cluster):
    cluster, fake = add_cluster("prod")
    fake.objects[fake.service_account_key("team-a")].patch({"imagePullSecrets": [{"name": "mine"}]})
    rule = inject(RegistryFactory(name="acme"))
    reconcile_cluster(cluster.pk)
    assert fake.service_account("team-a")["imagePullSecrets"] == [
        {"name": "mine"},
        {"name": "wharf-acme"},
    ]
    rule.delete()

    reconcile_cluster(cluster.pk)

    assert fake.service_account("team-a")["imagePullSecrets"] == [{"name": "mine"}]


def test_deleting_a_registry_removes_its_secrets_and_status_rows(add_cluster):
    cluster, fake = add_cluster("prod", namespaces=["team-a", "team-b"])
    registry = RegistryFactory(name="acme")
    inject(registry)
    reconcile_cluster(cluster.pk)

    registry.delete()
    reconcile_cluster(cluster.pk)

    assert fake.secrets() == {}
    assert not PullSecretTarget.objects.exists()


def test_deleting_a_cluster_removes_its_secrets_where_reachable(add_cluster):
    cluster, fake = add_cluster("prod", namespaces=["team-a", "team-b"])
    inject(RegistryFactory(name="acme"))
    reconcile_cluster(cluster.pk)

    cluster.delete()

    assert fake.secrets() == {}
    assert fake.service_account("team-a")["imagePullSecrets"] == []
    assert not PullSecretTarget.objects.exists()


def test_deleting_a_cluster_removes_what_it_can_when_one_namespace_refuses(add_cluster):
    cluster, fake = add_cluster("prod", namespaces=["team-a", "team-b"])
    inject(RegistryFactory(name="acme"))
    reconcile_cluster(cluster.pk)
    fake.forbidden_secret_deletes = {"team-a"}

    cluster.delete()

    assert set(fake.secrets()) == {("team-a", "wharf-acme")}
    assert fake.service_account("team-b")["imagePullSecrets"] == []
    assert not PullSecretTarget.objects.exists()


def test_deleting_an_unreachable_cluster_still_deletes_it_and_its_rows(add_cluster):
    cluster, _fake = add_cluster("prod")
    inject(RegistryFactory(name="acme"))
    reconcile_cluster(cluster.pk)
    cluster.api_url = "http://127.0.0.1:9"
    cluster.save()

    cluster.delete()

    assert not PullSecretTarget.objects.exists()


def test_inactive_cluster_is_not_contacted(add_cluster):
    cluster, fake = add_cluster("prod")
    inject(RegistryFactory(name="acme"))
    reconcile_cluster(cluster.pk)
    cluster.active = False
    cluster.save()
    fake.reset_calls()

    reconcile_cluster(cluster.pk)

    assert fake.calls() == {} and fake.calls("serviceaccounts") == {}
    assert fake.secret("team-a", "wharf-acme") is not None  # left as it is
    assert not PullSecretTarget.objects.exists()


def test_reconcile_of_a_cluster_held_by_another_run_is_left_to_that_run(add_cluster):
    cluster, fake = add_cluster("prod")
    inject(RegistryFactory(name="acme"))
    lease = Lease.acquire(Cluster, cluster.pk)  # another reconcile runs

    assert reconcile_cluster(cluster.pk) is None
    assert fake.calls() == {}
    lease.release()
    waiting = ReconcileRun.objects.get()
    assert waiting.status == ReconcileRun.Status.QUEUED  # it runs when the other ends

    run_reconcile(waiting.pk)

    waiting.refresh_from_db()
    assert waiting.status == ReconcileRun.Status.SUCCEEDED
    assert waiting.secrets_created == 1
    assert fake.secret("team-a", "wharf-acme") is not None


def test_reconcile_of_a_deleted_cluster_does_nothing():
    assert reconcile_cluster(987654) is None


def test_environment_moved_to_another_namespace_takes_the_secret_along(add_cluster):
    cluster, fake = add_cluster("prod", namespaces=["old-ns"])
    fake.add_namespace("new-ns")
    inject(RegistryFactory(name="acme"))
    reconcile_cluster(cluster.pk)
    environment = cluster.environments.get()

    environment.namespace = "new-ns"
    environment.save()
    reconcile_cluster(cluster.pk)

    assert set(fake.secrets()) == {("new-ns", "wharf-acme")}
    assert list(PullSecretTarget.objects.values_list("namespace", flat=True)) == ["new-ns"]
    assert fake.service_account("old-ns")["imagePullSecrets"] == []


def test_an_unexpected_error_fails_the_targets_instead_of_leaving_them_pending(
    add_cluster, monkeypatch
):
    cluster, _fake = add_cluster("prod")
    inject(RegistryFactory(name="acme"))
    reconcile_cluster(cluster.pk)

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("clusters.pullsecrets.docker_config_data", broken)
    reconcile_cluster(cluster.pk)

    target = PullSecretTarget.objects.get()
    assert target.status == PullSecretTarget.Status.FAILED
    assert "failed unexpectedly (RuntimeError)" in target.error
    cluster.refresh_from_db()
    assert cluster.lease_owner == ""  # the lease was given back
    run = ReconcileRun.objects.latest("queued_at")
    assert run.status == ReconcileRun.Status.FAILED
    assert "failed unexpectedly (RuntimeError)" in run.error


def test_a_reconcile_asked_for_during_a_run_waits_and_runs_when_that_one_ends(
    add_cluster, monkeypatch, broker
):
    from clusters import pullsecrets

    cluster, _fake = add_cluster("prod")
    runs = []
    real = pullsecrets._reconcile

    def reconcile_while_someone_saves(c):
        runs.append(c.pk)
        if len(runs) == 1:  # another worker asks meanwhile: it must not run in parallel
            assert reconcile_cluster(c.pk) is None
        return real(c)

    monkeypatch.setattr(pullsecrets, "_reconcile", reconcile_while_someone_saves)

    reconcile_cluster(cluster.pk)
    assert runs == [cluster.pk]
    waiting = ReconcileRun.objects.get(status=ReconcileRun.Status.QUEUED)
    assert broker.sent("clusters.tasks.reconcile_cluster_pull_secrets") == [waiting.pk]

    broker.run_all()  # a worker takes the run that was handed on

    assert runs == [cluster.pk, cluster.pk]
    cluster.refresh_from_db()
    assert cluster.lease_owner == "" and cluster.lease_expires_at is None
    assert set(ReconcileRun.objects.values_list("status", flat=True)) == {"succeeded"}


def test_switching_to_a_specified_secret_removes_wharfs_own_and_links_the_named_one(add_cluster):
    cluster, fake = add_cluster("prod")
    fake.put_secret("team-a", "regcred", {"type": "kubernetes.io/dockerconfigjson", "data": {}})
    rule = inject(RegistryFactory(name="acme"))
    reconcile_cluster(cluster.pk)
    rule.credentials, rule.secret_name = RegistryAccess.Credentials.SECRET, "regcred"
    rule.save()

    reconcile_cluster(cluster.pk)

    assert fake.secret("team-a", "wharf-acme") is None
    assert fake.secret("team-a", "regcred") is not None
    assert fake.service_account("team-a")["imagePullSecrets"] == [{"name": "regcred"}]
    target = PullSecretTarget.objects.get()
    assert (target.secret_name, target.status) == ("regcred", IN_SYNC)


def test_a_specified_secret_that_wharf_once_wrote_is_kept_not_deleted(add_cluster):
    # "Specify image pull secret" naming the secret Wharf wrote before: it is referenced
    # now, so it must stay (it was deleted while its target said "in sync").
    cluster, fake = add_cluster("prod")
    rule = inject(RegistryFactory(name="acme"))
    reconcile_cluster(cluster.pk)
    rule.credentials, rule.secret_name = RegistryAccess.Credentials.SECRET, "wharf-acme"
    rule.save()

    reconcile_cluster(cluster.pk)

    assert fake.secret("team-a", "wharf-acme") is not None
    assert fake.service_account("team-a")["imagePullSecrets"] == [{"name": "wharf-acme"}]
    assert PullSecretTarget.objects.get().status == IN_SYNC


def test_a_secret_that_could_not_be_updated_stays_on_the_service_account(add_cluster):
    # The old secret is still there (and maybe still valid): a failed update must not
    # also take it off the default service account, or new pods lose it.
    cluster, fake = add_cluster("prod", namespaces=["team-a"])
    registry = RegistryFactory(name="acme")
    inject(registry)
    reconcile_cluster(cluster.pk)
    registry.secret = "a-brand-new-password"
    registry.save()
    fake.conflicting_patches = 2  # the update and its retry both meet a 409

    reconcile_cluster(cluster.pk)

    assert PullSecretTarget.objects.get().status == PullSecretTarget.Status.FAILED
    assert fake.service_account("team-a")["imagePullSecrets"] == [{"name": "wharf-acme"}]


def test_a_cluster_is_not_deleted_while_its_reconcile_runs(add_cluster, admin_client):
    from django.urls import reverse

    cluster, fake = add_cluster("busy", namespaces=["team-a"])
    inject(RegistryFactory(name="acme"))
    reconcile_cluster(cluster.pk)
    lease = Lease.acquire(Cluster, cluster.pk)  # a reconcile is running
    try:
        page = admin_client.post(reverse("clusters:cluster_delete", args=[cluster.pk]))
        with pytest.raises(ValidationError):
            Cluster.objects.get(pk=cluster.pk).delete()
    finally:
        lease.release()

    assert page.status_code == 409
    assert "A reconcile of busy is running now" in page.content.decode()
    assert Cluster.objects.filter(pk=cluster.pk).exists()
    assert fake.secrets()  # nothing was removed either

    Cluster.objects.get(pk=cluster.pk).delete()  # once it has finished
    assert fake.secrets() == {}
