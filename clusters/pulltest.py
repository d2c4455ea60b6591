"""In-cluster pull tests: proof, from inside a namespace, that its pull secret pulls an image.

A test of a target (cluster, namespace, registry) creates a short-lived Pod there whose only
``imagePullSecrets`` entry is the target's secret (with one entry, the ServiceAccount
admission plugin adds none of the ServiceAccount's own), naming an image of that registry
the user chose (:class:`~clusters.models.PullTestImage`). Wharf then reads the Pod until
its container says how the pull went, and deletes it:

- pulled: the container runs, has ended (succeeded or failed after starting), or waits for
  a reason that comes after the pull (its config, e.g. ``runAsNonRoot`` refusing a root
  image: the Pod runs nothing of the image then);
- not pulled: it waits with ``ErrImagePull``, ``ImagePullBackOff`` or ``InvalidImageName``;
  the Pod's last warning event says why (the registry's own answer);
- timed out: none of these within ``WHARF_PULL_TEST_TIMEOUT`` (say, no node schedules it).

Every test Pod carries Wharf's labels and a "delete after" annotation, and its result row
notes it before it is created; a Pod that could not be deleted (or whose worker died) is
removed by the cluster's next reconcile (:func:`remove_leftover_pods`). A whole cluster is
tested at once: every Pod is created first, then they are read together, so the test takes
one timeout, not one per target.

All Kubernetes access goes through ``clusters.kube``; runs use ``config.runs``.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.template.defaultfilters import pluralize
from django.utils import timezone

from clusters import kube
from clusters.models import (
    Cluster,
    PullSecretTarget,
    PullTestImage,
    PullTestResult,
    PullTestRun,
)
from config import audit, runs

log = logging.getLogger(__name__)

# The labels of every test Pod: managed-by=wharf (as on Wharf's pull secrets) and its own.
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "wharf"
PULL_TEST_LABEL = "wharf.dev/pull-test"
TEST_POD_SELECTOR = f"{MANAGED_BY}={MANAGER},{PULL_TEST_LABEL}"
DELETE_AFTER = "wharf.dev/delete-after"
POD_NAME_PREFIX = "wharf-pull-test-"
CONTAINER_NAME = "pull-test"

# Waiting reasons of a container whose image was not pulled.
PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName")
# Waiting reasons the kubelet gives only once the image is there (config, then start).
AFTER_PULL = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError",
              "CrashLoopBackOff")  # fmt: skip

NODE_CREDENTIALS_NOTE = (
    "A pull that succeeds proves the image can be pulled in that namespace, not that Wharf's "
    "secret was used: a node's own credentials (a kubelet credential provider, as on EKS, "
    "GKE or AKS, or a docker config on the node) can make it succeed without the secret."
)

Result = PullTestResult.Result

# What the polling waits with; tests put a clock of their own here.
clock: Callable[[], float] = time.monotonic
sleep: Callable[[float], None] = time.sleep


def pod_name() -> str:
    """A generated name (Wharf's own, so a Pod whose create timed out can still be deleted)."""
    return POD_NAME_PREFIX + secrets.token_hex(4)


def pod_manifest(
    namespace: str, name: str, image: str, secret_name: str, registry_name: str,
    delete_after: dt.datetime,
) -> dict:  # fmt: skip
    """The manifest of one test Pod: only ``secret_name`` to pull with, nothing to mount,
    never restarted, ended by the kubelet after the timeout, and as little as a namespace
    enforcing the "restricted" Pod Security Standard asks for."""
    timeout = settings.WHARF_PULL_TEST_TIMEOUT
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {MANAGED_BY: MANAGER, PULL_TEST_LABEL: registry_name},
            "annotations": {DELETE_AFTER: delete_after.isoformat()},
        },
        "spec": {
            "imagePullSecrets": [{"name": secret_name}],
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "restartPolicy": "Never",
            "activeDeadlineSeconds": timeout,
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": CONTAINER_NAME,
                    "image": image,
                    "imagePullPolicy": "Always",
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "readOnlyRootFilesystem": True,
                    },
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "16Mi"},
                        "limits": {"cpu": "100m", "memory": "64Mi"},
                    },
                }
            ],
        },
    }


# --- asking for a test ----------------------------------------------------------------


def remember_image(registry, image: str, user=None) -> PullTestImage:
    """Keep ``image`` as ``registry``'s test image (validated: ValidationError if it is not
    an image on that registry's host), in the audit log when it changes."""
    kept = PullTestImage.objects.filter(registry=registry).first() or PullTestImage(
        registry=registry
    )
    before = None if kept.pk is None else audit.snapshot(kept)
    kept.image = image
    kept.full_clean()
    if before is None or kept.image != before.get("image"):
        kept.save()
        audit.record_save(user, kept, before)
    return kept


def request_pull_test(cluster: Cluster, target: PullSecretTarget | None = None) -> PullTestRun:
    """Queue a pull test of ``target`` (of every target of ``cluster`` when None) and mark
    the targets it covers "testing"; one already waiting or running for them is reused."""
    unfinished = PullTestRun.objects.filter(cluster=cluster, target=target).exclude(
        status__in=runs.FINISHED
    )
    run = unfinished.first()
    if run is not None:
        return run
    run = runs.queue_run(PullTestRun, cluster=cluster, target=target)
    covered = [target] if target is not None else list(cluster.targets.all())
    existing = set(
        PullTestResult.objects.filter(target__in=covered).values_list("target_id", flat=True)
    )
    PullTestResult.objects.bulk_create(
        [PullTestResult(target=t, run=run) for t in covered if t.pk not in existing],
        ignore_conflicts=True,
    )
    PullTestResult.objects.filter(target__in=covered).update(run=run, result=Result.TESTING)
    return run


def attach_results(targets: list[PullSecretTarget]) -> bool:
    """Give each target its ``pull_test_result`` (or None) and ``pull_test_image`` (its
    registry's, or ""), in two queries; whether any of them is being tested now."""
    ids = [t.pk for t in targets]
    results = {
        r.target_id: r
        for r in PullTestResult.objects.filter(target_id__in=ids).select_related("run")
    }
    images = dict(
        PullTestImage.objects.filter(registry_id__in={t.registry_id for t in targets}).values_list(
            "registry_id", "image"
        )
    )
    for t in targets:  # for the status table only: not fields of the model
        setattr(t, "pull_test_result", results.get(t.pk))  # noqa: B010
        setattr(t, "pull_test_image", images.get(t.registry_id, ""))  # noqa: B010
    return any(r.testing for r in results.values())


# --- running a test -------------------------------------------------------------------


def run_pull_test(run_id: int) -> PullTestRun | None:
    """Do the queued pull test ``run_id`` (what the task runs); safe to call twice."""
    return runs.execute(PullTestRun, run_id, _pull_test_run)


@dataclass
class _Probe:
    """One test Pod, from its creation to its deletion."""

    target: PullSecretTarget
    image: str
    name: str
    delete_after: dt.datetime
    deadline: float = 0.0
    created: bool = False
    result: str = ""
    reason: str = ""
    message: str = ""


def _pull_test_run(context: runs.RunContext) -> runs.Outcome:
    run = context.run
    assert isinstance(run, PullTestRun)
    cluster = Cluster.objects.get(pk=run.cluster_id)
    targets = list(cluster.targets.select_related("registry"))
    if run.target_id is not None:
        targets = [t for t in targets if t.pk == run.target_id]
    # A target added since the test was asked for is tested too; one a newer test took
    # over (its result row names that test) is that test's.
    for target in targets:
        PullTestResult.objects.get_or_create(target=target, defaults={"run": run})
    mine = set(PullTestResult.objects.filter(run=run).values_list("target_id", flat=True))
    targets = [t for t in targets if t.pk in mine]
    images = dict(
        PullTestImage.objects.filter(registry_id__in={t.registry_id for t in targets}).values_list(
            "registry_id", "image"
        )
    )
    probes: list[_Probe] = []
    timeout = settings.WHARF_PULL_TEST_TIMEOUT
    for target in targets:
        image = images.get(target.registry_id)
        if not image:
            _record(target, run, Result.ERROR, message=(
                f"No test image named for {target.registry.name}: type one on this row (an "
                "image of that registry) and press “Test pull”."
            ))  # fmt: skip
            continue
        # A margin past the Pod's own deadline: the kubelet has ended it by then.
        delete_after = timezone.now() + dt.timedelta(seconds=timeout + 60)
        probes.append(_Probe(target, image, pod_name(), delete_after))
    try:
        with kube.KubeClient(cluster.connection()) as api:
            for probe in probes:
                _create(api, probe, run)
                context.check()
            _wait(api, [p for p in probes if p.created], context)
            for probe in probes:
                _finish(api, probe, run)
    finally:
        # Stopped early (time limit, lost lease): what is still "testing" says so; a Pod
        # left behind is the next reconcile's to remove.
        PullTestResult.objects.filter(run=run, result=Result.TESTING).update(
            result=Result.ERROR,
            message="The test stopped before this Pod's result was known; test again.",
            tested_at=timezone.now(),
        )
    pulled = sum(p.result == Result.PULLED for p in probes)
    failed = PullTestResult.objects.filter(run=run).exclude(result=Result.PULLED).count()
    fields = {"pulled": pulled, "not_pulled": failed}
    if failed:
        return runs.Outcome(
            runs.RunStatus.FAILED,
            f"{failed} of {len(targets)} pull test{pluralize(len(targets))} did not pull; the "
            "status table says why.",
            fields,
        )
    return runs.Outcome(fields=fields)


def _record(target: PullSecretTarget, run: PullTestRun, result: str, **fields) -> None:
    PullTestResult.objects.filter(target=target, run=run).update(
        result=result, tested_at=timezone.now(), **fields
    )


def _create(api: kube.KubeClient, probe: _Probe, run: PullTestRun) -> None:
    target = probe.target
    # Noted before the create: a Pod whose create timed out (or whose worker died) may exist.
    # An earlier Pod not yet removed keeps its (earlier) time, so the reconcile still looks.
    PullTestResult.objects.filter(target=target, run=run).update(
        image=probe.image, pod_name=probe.name, reason="", message="",
        pod_delete_after=Coalesce("pod_delete_after", Value(probe.delete_after)),
    )  # fmt: skip
    body = pod_manifest(
        target.namespace, probe.name, probe.image, target.secret_name,
        target.registry.name, probe.delete_after,
    )  # fmt: skip
    try:
        api.create_pod(target.namespace, body)
    except kube.KubeError as exc:
        probe.result, probe.message = Result.ERROR, _create_failure(exc, target.namespace)
        if exc.status is not None:  # the server answered: no Pod was made
            _forget_pod(probe, run)
        return
    probe.created = True
    probe.deadline = clock() + settings.WHARF_PULL_TEST_TIMEOUT


def _forget_pod(probe: _Probe, run: PullTestRun) -> None:
    """This probe's Pod is gone (or was never made): nothing left to remove, unless an
    earlier Pod of the same target still is."""
    PullTestResult.objects.filter(
        target=probe.target, run=run, pod_delete_after=probe.delete_after
    ).update(pod_delete_after=None)


def _create_failure(exc: kube.KubeError, namespace: str) -> str:
    if exc.status == 403:
        return (
            f"The token may not create pods in namespace {namespace} (403 Forbidden): a pull "
            "test needs create, get, list and delete on pods and list on events there (see "
            "“Pull tests” in the README). An admission policy refusing the Pod answers so too."
        )
    return f"The test Pod was not created: {exc}"


def _wait(api: kube.KubeClient, probes: list[_Probe], context: runs.RunContext) -> None:
    """Read every undecided Pod each ``WHARF_PULL_TEST_POLL_SECONDS`` until all are decided
    or past their deadline."""
    interval = settings.WHARF_PULL_TEST_POLL_SECONDS
    waiting = list(probes)
    while waiting:
        for probe in list(waiting):
            try:
                pod = api.read_pod(probe.target.namespace, probe.name)
            except kube.KubeError as exc:
                probe.result, probe.message = Result.ERROR, f"The test Pod could not be read: {exc}"
                waiting.remove(probe)
                continue
            if _decide(api, probe, pod):
                waiting.remove(probe)
            elif clock() >= probe.deadline:
                _time_out(api, probe)
                waiting.remove(probe)
        if not waiting:
            return
        context.check()
        left = min(p.deadline for p in waiting) - clock()
        sleep(max(0.0, min(interval, left)))


def _decide(api: kube.KubeClient, probe: _Probe, pod: kube.PodState | None) -> bool:
    """Whether ``pod`` says how the pull went (``probe`` then holds the result)."""
    if pod is None:
        probe.result = Result.ERROR
        probe.message = "The test Pod disappeared before its image was pulled (deleted?)."
        return True
    container = next((c for c in pod.containers if c.name == CONTAINER_NAME), None)
    if container is None:
        return False  # not scheduled or not reported yet
    if container.state == "terminated" and not container.image_id:
        # Ended without an image: killed before its pull (the Pod's activeDeadlineSeconds).
        if pod.phase == "Failed":
            _time_out(api, probe)
            return True
        return False
    if container.state in ("running", "terminated"):
        probe.result, probe.reason = Result.PULLED, container.reason or container.state.title()
        if container.state == "terminated":
            probe.message = (
                f"The image was pulled; its container then ended ({container.reason or 'exit'} "
                f"{'' if container.exit_code is None else container.exit_code})."
            ).replace(" )", ")")
        else:
            probe.message = "The image was pulled; its container started."
        return True
    if container.reason in AFTER_PULL:
        probe.result, probe.reason = Result.PULLED, container.reason
        probe.message = (
            f"The image was pulled; its container did not start ({container.reason}: "
            f"{container.message or 'no detail'})."
        )
        return True
    if container.reason in PULL_FAILURES:
        probe.result, probe.reason = Result.NOT_PULLED, container.reason
        probe.message = _last_warning(api, probe) or container.message or container.reason
        return True
    return False


def _time_out(api: kube.KubeClient, probe: _Probe) -> None:
    probe.result = Result.TIMED_OUT
    timeout = settings.WHARF_PULL_TEST_TIMEOUT
    why = _last_warning(api, probe)
    probe.message = f"The image was not pulled within {timeout} s" + (
        f"; the Pod's last warning: {why}" if why else " (no warning event: is a node free?)."
    )


def _last_warning(api: kube.KubeClient, probe: _Probe) -> str:
    """The message of the Pod's last warning event ("" if none, or if events are not
    readable: the result stands without it)."""
    try:
        events = api.pod_events(probe.target.namespace, probe.name)
    except kube.KubeError as exc:
        log.info("Could not read the events of test pod %s: %s", probe.name, exc)
        return ""
    warnings = [e for e in events if e.type == "Warning"]
    # The kubelet follows the registry's answer with a bare "Error: ErrImagePull": the
    # answer is the one that says why.
    telling = [e for e in warnings if not e.message.startswith("Error: ")] or warnings
    if not telling:
        return ""
    last = telling[-1]  # "Failed" says nothing its message does not: only others are named
    return last.message if last.reason == "Failed" else f"{last.reason}: {last.message}"


def _finish(api: kube.KubeClient, probe: _Probe, run: PullTestRun) -> None:
    """Delete the Pod (also after a timeout) and record the result; a failed delete is
    recorded beside it, and the Pod left for the next reconcile."""
    fields = {"reason": probe.reason, "message": probe.message}
    if probe.created:
        try:
            api.delete_pod(probe.target.namespace, probe.name)
            _forget_pod(probe, run)
        except kube.KubeError as exc:
            fields["message"] = (
                f"{probe.message} The test Pod {probe.name} could not be deleted ({exc}); the "
                "next reconcile of this cluster removes it."
            ).strip()
    _record(probe.target, run, probe.result or Result.ERROR, **fields)


# --- leftovers (the reconcile's hook) -------------------------------------------------------


def remove_leftover_pods(api: kube.KubeClient, cluster: Cluster) -> int:
    """Delete Wharf's test Pods past their "delete after" in the namespaces where a test
    left one (its result row says so); nothing is asked of the cluster when none did.

    Never raises: a Pod that cannot go now is tried again at the next reconcile.
    """
    now = timezone.now()
    leftovers = PullTestResult.objects.filter(
        target__cluster=cluster, pod_delete_after__lt=now
    ).select_related("target")
    by_namespace: dict[str, list[PullTestResult]] = {}
    for row in leftovers:
        by_namespace.setdefault(row.target.namespace, []).append(row)
    removed = 0
    for namespace, rows in sorted(by_namespace.items()):
        try:
            pods = api.list_pods(namespace, TEST_POD_SELECTOR)
        except kube.KubeError as exc:
            log.warning("Could not list the test pods of %s/%s: %s", cluster, namespace, exc)
            continue
        gone = True
        for pod in pods:
            if not pod.name.startswith(POD_NAME_PREFIX) or not _past(pod, now):
                continue
            try:
                api.delete_pod(namespace, pod.name)
                removed += 1
            except kube.KubeError as exc:
                gone = False
                log.warning("Could not delete test pod %s/%s: %s", namespace, pod.name, exc)
        if gone:
            with transaction.atomic():
                PullTestResult.objects.filter(pk__in=[r.pk for r in rows]).update(
                    pod_delete_after=None
                )
    return removed


def _past(pod: kube.PodState, now: dt.datetime) -> bool:
    """Whether the Pod's "delete after" has passed (one without a readable one is not ours
    to judge: it is left alone)."""
    try:
        after = dt.datetime.fromisoformat(pod.annotations.get(DELETE_AFTER, ""))
    except ValueError:
        return False
    if after.tzinfo is None:
        return False
    return after < now
