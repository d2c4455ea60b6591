"""In-cluster pull tests against emulated clusters, a harness kubelet playing the node.

The emulator runs no containers: ``tests/clusters/kubelet.py`` writes each test Pod's
status and events as a kubelet would, one step each time Wharf reads the Pod, and Wharf's
polling waits on a fake clock. Each test asserts the exact calls Wharf made.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
import time_machine
from django.utils import timezone

from clusters import pulltest
from clusters.models import PullSecretTarget, PullTestImage, PullTestResult, PullTestRun
from clusters.pullsecrets import reconcile_cluster
from clusters.pulltest import request_pull_test, run_pull_test
from tests.clusters.emulator import PODS as POD_RESOURCE
from tests.clusters.factories import inject
from tests.clusters.kubelet import (
    FakeClock,
    Kubelet,
    deadline_exceeded,
    exited,
    invalid_name,
    pull_failed,
    pulling,
    root_refused,
    running,
    scheduled,
    unschedulable,
)
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db

Result = PullTestResult.Result
IMAGE = "registry.acme.test:5000/team/app:1.0"
PODS = "/api/v1/namespaces/team-a/pods"
TEST_POD_LIST = f"GET {PODS}?labelSelector=app.kubernetes.io/managed-by=wharf,wharf.dev/pull-test"


@pytest.fixture
def clock(monkeypatch, settings) -> FakeClock:
    """Wharf's polling on a clock of the test's: 10 s to pull, a read every 2 s."""
    fake_clock = FakeClock()
    monkeypatch.setattr(pulltest, "clock", fake_clock)
    monkeypatch.setattr(pulltest, "sleep", fake_clock.sleep)
    settings.WHARF_PULL_TEST_TIMEOUT = 10
    settings.WHARF_PULL_TEST_POLL_SECONDS = 2
    return fake_clock


@pytest.fixture
def served(add_cluster, clock):
    """A cluster whose namespace team-a holds Wharf's secret of registry acme (reconciled),
    acme's test image named, and the calls so far forgotten."""
    cluster, fake = add_cluster("prod", namespaces=["team-a"])
    registry = RegistryFactory(name="acme", url="registry.acme.test:5000/team", username="robot")
    inject(registry)
    reconcile_cluster(cluster.pk)
    PullTestImage.objects.create(registry=registry, image=IMAGE)
    fake.reset_calls()
    target = PullSecretTarget.objects.get(cluster=cluster)
    return SimpleNamespace(cluster=cluster, fake=fake, registry=registry, target=target)


def pull_test_of(served, *steps, **kubelet_options) -> tuple[PullTestRun, PullTestResult]:
    served.fake.kubelet = Kubelet(list(steps), **kubelet_options)
    run = run_pull_test(request_pull_test(served.cluster, served.target).pk)
    return run, PullTestResult.objects.get(target=served.target)


def created_pods(fake) -> list[dict]:
    return [r.data for r in fake.seen() if r.method.value == "POST" and r.url.path == PODS]


# --- a pull that works ------------------------------------------------------------------


def test_a_pull_that_works_is_recorded_as_pulled_and_its_pod_deleted(served, clock):
    run, result = pull_test_of(served, scheduled(), pulling(), running())

    pod = f"{PODS}/{result.pod_name}"
    assert served.fake.api_calls() == [
        f"POST {PODS}",
        f"GET {pod}",  # ContainerCreating
        f"GET {pod}",  # still creating: pulling
        f"GET {pod}",  # running: pulled
        f"DELETE {pod}",
    ]
    assert result.result == Result.PULLED and result.reason == "Running"
    assert result.message == "The image was pulled; its container started."
    assert result.image == IMAGE and result.tested_at is not None
    assert result.pod_delete_after is None  # nothing left for the reconcile
    assert served.fake.kubelet.pods(served.fake) == {}
    assert clock.slept == [2, 2]
    assert (run.status, run.pulled, run.not_pulled) == ("succeeded", 1, 0)


def test_the_test_pod_pulls_with_only_wharfs_secret_and_mounts_nothing(served):
    _, result = pull_test_of(served, running())

    [pod] = created_pods(served.fake)
    spec = pod["spec"]
    assert spec["imagePullSecrets"] == [{"name": "wharf-acme"}]
    assert spec["automountServiceAccountToken"] is False
    assert spec["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] == 10
    [container] = spec["containers"]
    assert container["image"] == IMAGE and container["imagePullPolicy"] == "Always"
    assert spec["securityContext"]["runAsNonRoot"] is True
    meta = pod["metadata"]
    assert meta["name"] == result.pod_name and meta["name"].startswith("wharf-pull-test-")
    assert meta["namespace"] == "team-a"
    assert meta["labels"] == {
        "app.kubernetes.io/managed-by": "wharf",
        "wharf.dev/pull-test": "acme",
    }
    delete_after = dt.datetime.fromisoformat(meta["annotations"]["wharf.dev/delete-after"])
    assert delete_after > timezone.now() + dt.timedelta(seconds=10)


def test_each_test_pod_gets_a_new_name(served):
    _, first = pull_test_of(served, running())
    _, second = pull_test_of(served, running())

    assert first.pod_name != second.pod_name


@pytest.mark.parametrize(
    ("step", "reason", "message"),
    [
        (exited(0), "Completed", "its container then ended (Completed 0)"),
        (exited(1), "Error", "its container then ended (Error 1)"),
        (root_refused(), "CreateContainerConfigError", "container has runAsNonRoot"),
    ],
    ids=["succeeded", "failed-after-start", "refused-to-run-as-root"],
)
def test_a_container_that_got_its_image_counts_as_pulled_however_it_ended(
    served, step, reason, message
):
    _, result = pull_test_of(served, scheduled(), step)

    pod = f"{PODS}/{result.pod_name}"
    assert served.fake.api_calls() == [f"POST {PODS}", f"GET {pod}", f"GET {pod}", f"DELETE {pod}"]
    assert (result.result, result.reason) == (Result.PULLED, reason)
    assert message in result.message


# --- pulls that fail --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "reason", "message"),
    [
        (
            [scheduled(), pulling(), pull_failed("ErrImagePull")],
            "ErrImagePull",
            f'Failed to pull image "{IMAGE}": rpc error: code = Unknown desc = '
            f'failed to pull and unpack image "{IMAGE}"',
        ),
        (
            [scheduled(), pull_failed("ImagePullBackOff")],
            "ImagePullBackOff",
            f'Failed to pull image "{IMAGE}"',
        ),
        (
            [invalid_name()],
            "InvalidImageName",
            f'InspectFailed: Failed to apply default image tag "{IMAGE}"',
        ),
    ],
    ids=["ErrImagePull", "ImagePullBackOff", "InvalidImageName"],
)
def test_a_pull_that_fails_is_recorded_with_the_reason_and_the_kubelets_message(
    served, steps, reason, message
):
    run, result = pull_test_of(served, *steps)

    pod = f"{PODS}/{result.pod_name}"
    reads = [f"GET {pod}"] * len(steps)
    assert served.fake.api_calls() == [
        f"POST {PODS}",
        *reads,
        f"GET /api/v1/namespaces/team-a/events?fieldSelector=involvedObject.name={result.pod_name}",
        f"DELETE {pod}",
    ]
    assert (result.result, result.reason) == (Result.NOT_PULLED, reason)
    assert result.message.startswith(message)
    if reason != "InvalidImageName":
        assert "401 Unauthorized" in result.message  # the registry's own answer
    assert served.fake.kubelet.pods(served.fake) == {}
    assert run.status == "failed" and "did not pull" in run.error


def test_a_pod_no_node_takes_times_out_and_is_deleted(served, clock):
    _, result = pull_test_of(served, unschedulable())

    pod = f"{PODS}/{result.pod_name}"
    # Read at 0, 2, 4, 6, 8 and 10 s: at 10 s the 10 s are up.
    assert served.fake.api_calls() == [
        f"POST {PODS}",
        *[f"GET {pod}"] * 6,
        f"GET /api/v1/namespaces/team-a/events?fieldSelector=involvedObject.name={result.pod_name}",
        f"DELETE {pod}",
    ]
    assert clock.slept == [2, 2, 2, 2, 2]
    assert result.result == Result.TIMED_OUT
    assert result.message.startswith("The image was not pulled within 10 s")
    assert "FailedScheduling: 0/3 nodes are available: 3 Insufficient memory." in result.message
    assert served.fake.kubelet.pods(served.fake) == {}
    assert result.pod_delete_after is None


def test_a_pod_the_kubelet_ended_before_its_image_came_timed_out(served):
    _, result = pull_test_of(served, scheduled(), deadline_exceeded())

    pod = f"{PODS}/{result.pod_name}"
    assert served.fake.api_calls() == [
        f"POST {PODS}",
        f"GET {pod}",
        f"GET {pod}",
        f"GET /api/v1/namespaces/team-a/events?fieldSelector=involvedObject.name={result.pod_name}",
        f"DELETE {pod}",
    ]
    assert result.result == Result.TIMED_OUT  # an ended container without an image pulled nothing
    assert "context canceled" in result.message


# --- leftovers --------------------------------------------------------------------------


def test_a_failed_delete_is_recorded_and_the_next_reconcile_removes_the_pod(served):
    _, result = pull_test_of(served, running(), failing_deletes=1)

    pod = f"{PODS}/{result.pod_name}"
    assert served.fake.api_calls() == [f"POST {PODS}", f"GET {pod}", f"DELETE {pod}"]
    assert result.result == Result.PULLED
    assert f"The test Pod {result.pod_name} could not be deleted" in result.message
    assert "the next reconcile of this cluster removes it" in result.message
    assert list(served.fake.kubelet.pods(served.fake)) == [("team-a", result.pod_name)]
    assert result.pod_delete_after is not None

    # Before its "delete after", a reconcile leaves it (a test may still be reading it).
    served.fake.reset_calls()
    reconcile_cluster(served.cluster.pk)
    assert [c for c in served.fake.api_calls() if "/pods" in c] == []

    with time_machine.travel(result.pod_delete_after + dt.timedelta(seconds=1), tick=False):
        served.fake.reset_calls()
        reconcile_cluster(served.cluster.pk)
        assert [c for c in served.fake.api_calls() if "/pods" in c] == [
            TEST_POD_LIST,
            f"DELETE {pod}",
        ]
        assert served.fake.kubelet.pods(served.fake) == {}
        result.refresh_from_db()
        assert result.pod_delete_after is None

        served.fake.reset_calls()
        reconcile_cluster(served.cluster.pk)
        assert [c for c in served.fake.api_calls() if "/pods" in c] == []


def test_a_reconcile_after_tests_that_cleaned_up_asks_nothing_about_pods(served):
    pull_test_of(served, running())
    served.fake.reset_calls()

    with time_machine.travel(timezone.now() + dt.timedelta(hours=1), tick=False):
        reconcile_cluster(served.cluster.pk)

    assert [c for c in served.fake.api_calls() if "/pods" in c or "/events" in c] == []


def test_the_reconcile_leaves_pods_that_are_not_wharfs_test_pods(served):
    _, result = pull_test_of(served, running(), failing_deletes=1)
    served.fake.objects[POD_RESOURCE, "team-a", "app-7d9f"] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app-7d9f", "namespace": "team-a", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": IMAGE}]},
    }

    with time_machine.travel(result.pod_delete_after + dt.timedelta(seconds=1), tick=False):
        reconcile_cluster(served.cluster.pk)

    assert list(served.fake.kubelet.pods(served.fake)) == [("team-a", "app-7d9f")]


# --- what a test cannot do ---------------------------------------------------------------


def test_a_refused_pod_create_says_which_rights_the_token_needs(served):
    _, result = pull_test_of(served, running(), refuse_creates=True)

    assert served.fake.api_calls() == [f"POST {PODS}"]  # nothing made, nothing to delete
    assert result.result == Result.ERROR
    assert result.message.startswith(
        "The token may not create pods in namespace team-a (403 Forbidden): a pull test needs "
        "create, get, list and delete on pods and list on events there"
    )
    assert result.pod_delete_after is None


def test_a_registry_without_a_test_image_is_not_tested(served):
    PullTestImage.objects.all().delete()

    _, result = pull_test_of(served, running())

    assert served.fake.api_calls() == []
    assert result.result == Result.ERROR
    assert result.message.startswith("No test image named for acme")


# --- a whole cluster ----------------------------------------------------------------------


def test_a_whole_cluster_creates_every_pod_before_waiting_for_any(add_cluster, clock):
    cluster, fake = add_cluster("prod", namespaces=["team-a", "team-b"])
    acme = RegistryFactory(name="acme", url="registry.acme.test:5000/team")
    other = RegistryFactory(name="other", url="other.test")
    inject(acme)
    inject(other)
    reconcile_cluster(cluster.pk)
    PullTestImage.objects.create(registry=acme, image=IMAGE)
    fake.reset_calls()
    fake.kubelet = Kubelet([scheduled(), running()])

    run = run_pull_test(request_pull_test(cluster).pk)

    results = {
        (r.target.namespace, r.target.registry.name): r
        for r in PullTestResult.objects.select_related("target__registry")
    }
    a, b = results["team-a", "acme"].pod_name, results["team-b", "acme"].pod_name
    assert fake.api_calls() == [
        "POST /api/v1/namespaces/team-a/pods",
        "POST /api/v1/namespaces/team-b/pods",
        f"GET /api/v1/namespaces/team-a/pods/{a}",
        f"GET /api/v1/namespaces/team-b/pods/{b}",
        f"GET /api/v1/namespaces/team-a/pods/{a}",
        f"GET /api/v1/namespaces/team-b/pods/{b}",
        f"DELETE /api/v1/namespaces/team-a/pods/{a}",
        f"DELETE /api/v1/namespaces/team-b/pods/{b}",
    ]
    assert clock.slept == [2]  # one wait for both
    assert {k: r.result for k, r in results.items()} == {
        ("team-a", "acme"): Result.PULLED,
        ("team-b", "acme"): Result.PULLED,
        ("team-a", "other"): Result.ERROR,
        ("team-b", "other"): Result.ERROR,
    }
    assert (run.status, run.pulled, run.not_pulled) == ("failed", 2, 2)


def test_asking_again_while_a_test_waits_joins_it(served):
    first = request_pull_test(served.cluster, served.target)
    again = request_pull_test(served.cluster, served.target)

    assert again.pk == first.pk
    assert PullTestRun.objects.count() == 1
    assert PullTestResult.objects.get(target=served.target).testing


def test_a_target_a_newer_test_took_over_is_left_to_that_test(add_cluster, clock):
    cluster, fake = add_cluster("prod", namespaces=["team-a", "team-b"])
    registry = RegistryFactory(name="acme", url="registry.acme.test:5000/team")
    inject(registry)
    reconcile_cluster(cluster.pk)
    PullTestImage.objects.create(registry=registry, image=IMAGE)
    whole = request_pull_test(cluster)
    team_b = PullSecretTarget.objects.get(namespace="team-b")
    newer = request_pull_test(cluster, team_b)
    fake.reset_calls()
    fake.kubelet = Kubelet([running()])

    run_pull_test(whole.pk)

    assert [c for c in fake.api_calls() if c.startswith("POST")] == [f"POST {PODS}"]  # team-a
    assert PullTestResult.objects.get(target=team_b).run_id == newer.pk
    assert PullTestResult.objects.get(target=team_b).result == Result.TESTING
