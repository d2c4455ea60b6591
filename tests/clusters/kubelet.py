"""A kubelet for the emulator, which runs no containers: it plays a node for test Pods.

``fake.kubelet = Kubelet([scheduled(), pulling(), running()])``: each time Wharf reads a
Pod (GET), the node takes that Pod one step further first: the Pod's status (phase and
container state) and the events a real kubelet writes at that point land in the
emulator's object store, where Wharf's reads and event LISTs find them. The steps are
what a kubelet reports for each outcome (an image that pulls, a registry that refuses,
a name that does not parse, a Pod no node takes), with the messages containerd gives.

Deletes can be made to fail (``failing_deletes``), as an RBAC gap or an API outage would.
The harness writes through the object store, not the API: its writes are not Wharf's
calls, so ``fake.api_calls()`` holds only what Wharf asked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.clusters.emulator import EVENTS, PODS, _status

Event = tuple[str, str, str]  # (type, reason, message)


@dataclass
class Step:
    """What the node does to a Pod at one point: its new status and the events it writes."""

    status: Callable[[dict], dict] | None = None  # the Pod -> its status
    events: Callable[[dict], list[Event]] = lambda pod: []


def _image(pod: dict) -> str:
    return pod["spec"]["containers"][0]["image"]


def _container(pod: dict, state: dict, *, image_id: str = "") -> dict:
    container = pod["spec"]["containers"][0]
    return {
        "name": container["name"],
        "image": container["image"],
        "imageID": image_id,
        "ready": "running" in state,
        "restartCount": 0,
        "started": "running" in state,
        "state": state,
    }


def _pending(pod: dict, state: dict) -> dict:
    return {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [_container(pod, state)],
    }


def scheduled() -> Step:
    """Bound to a node; the container is being created (the image not yet asked for)."""
    return Step(
        lambda pod: _pending(pod, {"waiting": {"reason": "ContainerCreating"}}),
        lambda pod: [
            ("Normal", "Scheduled", f"Successfully assigned {_where(pod)} to node-1"),
        ],
    )


def pulling() -> Step:
    return Step(events=lambda pod: [("Normal", "Pulling", f'Pulling image "{_image(pod)}"')])


def running() -> Step:
    def status(pod: dict) -> dict:
        state = {"running": {"startedAt": "2026-12-02T12:00:05Z"}}
        digest = "sha256:" + "ab" * 32
        return {
            "phase": "Running",
            "containerStatuses": [_container(pod, state, image_id=f"{_image(pod)}@{digest}")],
        }

    return Step(
        status,
        lambda pod: [
            ("Normal", "Pulled", f'Successfully pulled image "{_image(pod)}" in 1.2s'),
            ("Normal", "Created", "Created container pull-test"),
            ("Normal", "Started", "Started container pull-test"),
        ],
    )


def exited(code: int) -> Step:
    """The container ran and ended (0: Completed, else Error): the Pod succeeded or failed."""
    reason = "Completed" if code == 0 else "Error"

    def status(pod: dict) -> dict:
        state = {"terminated": {"exitCode": code, "reason": reason}}
        return {
            "phase": "Succeeded" if code == 0 else "Failed",
            "containerStatuses": [_container(pod, state, image_id="sha256:" + "cd" * 32)],
        }

    return Step(status)


def root_refused() -> Step:
    """Pulled, then not started: the image runs as root and the Pod says runAsNonRoot."""
    message = "container has runAsNonRoot and image will run as root (pod: x, container: y)"
    return Step(
        lambda pod: _pending(
            pod, {"waiting": {"reason": "CreateContainerConfigError", "message": message}}
        ),
        lambda pod: [
            ("Normal", "Pulled", f'Successfully pulled image "{_image(pod)}" in 0.8s'),
            ("Warning", "Failed", f"Error: {message}"),
        ],
    )


UNAUTHORIZED = (
    'failed to pull and unpack image "{image}": failed to resolve reference "{image}": '
    "failed to authorize: failed to fetch anonymous token: unexpected status from GET "
    "request: 401 Unauthorized"
)


def pull_failed(reason: str = "ErrImagePull", detail: str = UNAUTHORIZED) -> Step:
    """The registry refused: ``ErrImagePull`` first, ``ImagePullBackOff`` once backing off."""

    def events(pod: dict) -> list[Event]:
        # A kubelet backs off only after a failed pull: by then both are in the events.
        image = _image(pod)
        failed: list[Event] = [
            (
                "Warning",
                "Failed",
                f'Failed to pull image "{image}": rpc error: code = Unknown desc = '
                + detail.format(image=image),
            ),
            ("Warning", "Failed", "Error: ErrImagePull"),
        ]
        if reason == "ImagePullBackOff":
            return [
                *failed,
                ("Normal", "BackOff", f'Back-off pulling image "{image}"'),
                ("Warning", "Failed", "Error: ImagePullBackOff"),
            ]
        return failed

    def status(pod: dict) -> dict:
        message = (
            f'Back-off pulling image "{_image(pod)}"'
            if reason == "ImagePullBackOff"
            else "rpc error: code = Unknown desc = " + detail.format(image=_image(pod))
        )
        return _pending(pod, {"waiting": {"reason": reason, "message": message}})

    return Step(status, events)


def invalid_name() -> Step:
    def message(pod: dict) -> str:
        image = _image(pod)
        return (
            f'Failed to apply default image tag "{image}": couldn\'t parse image name '
            f'"{image}": invalid reference format'
        )

    return Step(
        lambda pod: _pending(
            pod, {"waiting": {"reason": "InvalidImageName", "message": message(pod)}}
        ),
        lambda pod: [
            ("Warning", "InspectFailed", message(pod)),
            ("Warning", "Failed", "Error: InvalidImageName"),
        ],
    )


def unschedulable() -> Step:
    """No node takes the Pod: it stays Pending with no container status, ever."""
    return Step(
        lambda pod: {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
        },
        lambda pod: [
            (
                "Warning",
                "FailedScheduling",
                "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are "
                "available: 3 No preemption victims found for incoming pod.",
            )
        ],
    )


def deadline_exceeded() -> Step:
    """The Pod's activeDeadlineSeconds passed before its image came: the kubelet ends it."""
    return Step(
        lambda pod: {
            "phase": "Failed",
            "reason": "DeadlineExceeded",
            "message": "Pod was active on the node longer than the specified deadline",
            "containerStatuses": [
                _container(
                    pod, {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown"}}
                )
            ],
        },
        lambda pod: [
            (
                "Normal",
                "DeadlineExceeded",
                "Pod was active on the node longer than the specified deadline",
            ),
            (
                "Warning",
                "Failed",
                f'Failed to pull image "{_image(pod)}": context canceled',
            ),
        ],
    )


def _where(pod: dict) -> str:
    meta = pod["metadata"]
    return f"{meta['namespace']}/{meta['name']}"


@dataclass
class Kubelet:
    """The node of one emulated cluster: every Pod goes through ``steps``, one per read."""

    steps: list[Step]
    failing_deletes: int = 0  # the next N Pod deletes answer 500
    refuse_creates: bool = False  # Pod creates answer 403 (the token may not)
    reads: dict[tuple[str, str], int] = field(default_factory=dict)
    _event_count: int = 0

    def before(self, fake: Any, request: Any) -> Any:
        """Called by the emulator before it serves ``request``; an answer replaces its own."""
        if request.resource != PODS:
            return None
        if request.method.value == "POST" and self.refuse_creates:
            return _status(403, "Forbidden", 'pods is forbidden: cannot create resource "pods"')
        if request.name is None:
            return None
        key = (PODS, request.namespace, request.name)
        if request.method.value == "DELETE" and self.failing_deletes:
            self.failing_deletes -= 1
            return _status(500, "InternalError", "etcdserver: request timed out")
        if request.method.value == "GET" and key in fake.objects and not fake.objects[key].deleted:
            done = self.reads.get((request.namespace, request.name), 0)
            self.reads[(request.namespace, request.name)] = done + 1
            if done < len(self.steps):
                self._apply(fake, key, self.steps[done])
        return None

    def _apply(self, fake: Any, key: tuple, step: Step) -> None:
        pod = fake.objects[key].raw
        if step.status is not None:
            fake.objects[key].patch({"status": step.status(pod)})
        namespace, name = key[1], key[2]
        for type_, reason, message in step.events(pod):
            self._event_count += 1
            event_name = f"{name}.{self._event_count:08x}"
            fake.objects[EVENTS, namespace, event_name] = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": event_name, "namespace": namespace},
                "involvedObject": {"kind": "Pod", "name": name, "namespace": namespace},
                "type": type_,
                "reason": reason,
                "message": message,
                "count": 1,
                "source": {"component": "kubelet", "host": "node-1"},
            }

    def pods(self, fake: Any) -> dict[tuple[str, str], dict]:
        """The test Pods that exist now: (namespace, name) -> object."""
        return {
            (ns, name): obj.raw
            for (res, ns, name), obj in fake.objects.items()
            if res == PODS and not obj.deleted
        }


class FakeClock:
    """What Wharf's polling waits with: ``sleep`` moves this clock on, at once."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
