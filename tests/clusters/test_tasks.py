"""The Celery side: thin tasks, the beat schedule, and saves that queue a reconcile."""

import pytest
from django.conf import settings

from clusters import tasks
from clusters.models import PullSecretTarget, ReconcileRun
from tests.clusters.factories import ClusterFactory, EnvironmentFactory, inject
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db


def forget_queued_runs() -> None:
    """Drop the runs the set-up's saves queued (their commit never came, so nothing was
    sent): what the test does next must queue its own."""
    ReconcileRun.objects.filter(status=ReconcileRun.Status.QUEUED).delete()


@pytest.fixture
def queued(queued_reconciles):
    return queued_reconciles


def test_beat_runs_the_scheduled_reconcile_every_interval():
    entry = settings.CELERY_BEAT_SCHEDULE["reconcile-pull-secrets"]
    assert entry["task"] == "clusters.tasks.reconcile_all_pull_secrets"
    assert entry["schedule"] == settings.WHARF_RECONCILE_INTERVAL * 60
    assert settings.WHARF_RECONCILE_INTERVAL == 30
    assert entry["options"]["expires"] < entry["schedule"]


def test_scheduled_run_queues_one_reconcile_per_active_cluster(
    queued, django_capture_on_commit_callbacks
):
    first, second = ClusterFactory(), ClusterFactory()
    ClusterFactory(active=False)
    ReconcileRun.objects.all().delete()  # what the saves above queued

    with django_capture_on_commit_callbacks(execute=True):
        tasks.reconcile_all_pull_secrets()

    assert sorted(queued) == sorted([first.pk, second.pk])
    assert set(ReconcileRun.objects.values_list("trigger", flat=True)) == {"schedule"}


def test_reconcile_task_runs_the_reconcile(add_cluster):
    cluster, fake = add_cluster("prod")
    inject(RegistryFactory(name="acme"))

    run = ReconcileRun.objects.create(cluster=cluster)

    tasks.reconcile_cluster_pull_secrets(run.pk)

    assert fake.secret("team-a", "wharf-acme") is not None
    run.refresh_from_db()
    assert (run.status, run.secrets_created) == ("succeeded", 1)


def test_reconcile_task_for_a_deleted_cluster_returns_quietly():
    tasks.reconcile_cluster_pull_secrets(424242)


def test_registry_save_queues_its_clusters_after_commit(queued, django_capture_on_commit_callbacks):
    cluster = ClusterFactory()
    EnvironmentFactory(cluster=cluster)
    registry = RegistryFactory()
    inject(registry, clusters=[cluster])

    forget_queued_runs()

    with django_capture_on_commit_callbacks(execute=True):
        registry.secret = "a-new-password"
        registry.save()

    assert queued == [cluster.pk]
    assert PullSecretTarget.objects.get().status == "pending"


def test_registry_save_that_leaves_its_pull_secret_alone_queues_nothing(
    queued, django_capture_on_commit_callbacks
):
    cluster = ClusterFactory()
    EnvironmentFactory(cluster=cluster)
    registry = RegistryFactory()
    inject(registry, clusters=[cluster])
    type(registry.access).objects.filter(pk=registry.access.pk).update(ecr_token='{"a": 1}')

    with django_capture_on_commit_callbacks(execute=True):
        registry.push_helm = not registry.push_helm
        registry.chart_source = not registry.chart_source
        registry.save()

    assert queued == []
    registry.access.refresh_from_db()
    assert registry.access.ecr_token == '{"a": 1}'


def test_environment_moved_to_another_cluster_queues_both(
    queued, django_capture_on_commit_callbacks
):
    old, new = ClusterFactory(), ClusterFactory()
    environment = EnvironmentFactory(cluster=old)

    forget_queued_runs()

    with django_capture_on_commit_callbacks(execute=True):
        environment.cluster = new
        environment.save()

    assert sorted(queued) == sorted([old.pk, new.pk])


def test_renaming_an_environment_queues_nothing(queued, django_capture_on_commit_callbacks):
    environment = EnvironmentFactory()

    with django_capture_on_commit_callbacks(execute=True):
        environment.name = "renamed"
        environment.save()

    assert queued == []


def test_environment_moved_to_another_namespace_queues_its_cluster(
    queued, django_capture_on_commit_callbacks
):
    environment = EnvironmentFactory()

    forget_queued_runs()

    with django_capture_on_commit_callbacks(execute=True):
        environment.namespace = "elsewhere"
        environment.save()

    assert queued == [environment.cluster_id]


def test_saving_an_unchanged_cluster_queues_nothing(queued, django_capture_on_commit_callbacks):
    cluster = ClusterFactory()

    with django_capture_on_commit_callbacks(execute=True):
        cluster.save()

    assert queued == []


def test_a_new_token_on_a_cluster_queues_its_reconcile(queued, django_capture_on_commit_callbacks):
    cluster = ClusterFactory()

    forget_queued_runs()

    with django_capture_on_commit_callbacks(execute=True):
        cluster.token = "a-new-token"
        cluster.save()

    assert queued == [cluster.pk]


def test_registry_delete_queues_the_clusters_that_held_its_secret(
    queued, django_capture_on_commit_callbacks
):
    cluster = ClusterFactory()
    registry = RegistryFactory()
    PullSecretTarget.objects.create(
        cluster=cluster, namespace="a", registry=registry, secret_name="x"
    )

    forget_queued_runs()

    with django_capture_on_commit_callbacks(execute=True):
        registry.delete()

    assert queued == [cluster.pk]
    assert not PullSecretTarget.objects.exists()


def test_ecr_token_is_dropped_when_the_registry_is_saved():
    rule = inject(RegistryFactory())
    type(rule).objects.filter(pk=rule.pk).update(ecr_token='{"a": 1}')

    rule.registry.username = "another-key-id"
    rule.registry.save()

    rule.refresh_from_db()
    assert rule.ecr_token == "" and rule.ecr_token_expires_at is None


def test_deleting_an_access_rule_queues_the_clusters_holding_its_secret(
    queued, django_capture_on_commit_callbacks
):
    # The admin can delete a rule: its secrets must not wait for the scheduled run.
    cluster = ClusterFactory()
    EnvironmentFactory(cluster=cluster)
    rule = inject(RegistryFactory(), clusters=[cluster])
    with django_capture_on_commit_callbacks(execute=True):
        rule.registry.secret = "changed"
        rule.registry.save()
    queued.clear()
    forget_queued_runs()

    with django_capture_on_commit_callbacks(execute=True):
        rule.delete()

    assert queued == [cluster.pk]
    assert PullSecretTarget.objects.get().status == "pending"
