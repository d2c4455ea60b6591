"""Kubernetes API servers for tests and the benchmark: kmock's emulator over HTTP on loopback.

kmock 0.8's ``KubernetesEmulator`` keeps objects in memory and answers the official
client. :class:`FakeCluster` adds what a real API server does and Wharf relies on:
bearer-token checks (401), label selectors on lists (the full syntax, parsed by Wharf's
own :mod:`clusters.selectors`; a malformed one answers 400 as the API server does), field
selectors, and SelfSubjectAccessReview answers; for the concurrency of writes, an added
latency, a count of requests in flight and a gate that holds writes open together; and 429
Too Many Requests with Retry-After. kmock's own reactions can answer 429, but its emulator
stores a write even when a reaction answers it (a retried create would then find it and
answer 409), so the 429s here are answered before kmock sees the request.
With ``fast=True`` (the benchmark's emulators only: they share Wharf's cores), two short
cuts past kmock's dispatch keep its answers and cost less CPU: a write goes straight to kmock's own reaction for it while
no test has added reactions (:meth:`FakeCluster._fast_write`), and the object a request
names is looked up by its key before kmock's scan of every object.
:class:`EmulatorLoop` runs any number of them on one
asyncio loop in a background thread, so synchronous code (Django, the client) can
call them. Every request is recorded: :meth:`FakeCluster.calls` counts them by verb.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
import threading
import time
from collections import Counter
from typing import Any

import aiohttp.web
import attrs
from aiohttp.test_utils import RawTestServer
from kmock import KubernetesEmulator, Server, resource
from kmock._internal import apps, enums, rendering

from clusters import selectors

# aiohttp logs every request at INFO; tests and the benchmark want quiet.
logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

SECRETS = resource("v1", "secrets")
SERVICE_ACCOUNTS = resource("v1", "serviceaccounts")
NAMESPACES = resource("v1", "namespaces")
PODS = resource("v1", "pods")
EVENTS = resource("v1", "events")
ACCESS_REVIEW_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


def _status(code: int, reason: str, message: str) -> aiohttp.web.Response:
    body = {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }
    return aiohttp.web.json_response(body, status=code)


def _field(obj: dict, path: str):
    """``obj``'s value at a field selector's dotted path (``involvedObject.name``)."""
    for key in path.split("."):
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


@attrs.define(kw_only=True)
class FakeCluster(KubernetesEmulator):
    """One emulated cluster: ``token`` is the only bearer token it accepts."""

    token: str = "cluster-token"
    # SelfSubjectAccessReview answers: "verb" (on secrets) or "verb resource" -> allowed;
    # anything not listed is allowed; None answers without a status.
    secret_access: dict[str, bool] | None = attrs.field(factory=dict)
    # Namespaces where every access review answers "not allowed" (RBAC bound per namespace).
    denied_namespaces: set[str] = attrs.field(factory=set)
    # The next N secret lists answer with no items (a stale read, to provoke a 409).
    stale_secret_lists: int = 0
    # The next N secret patches answer 409 Conflict (someone else changed it meanwhile).
    conflicting_patches: int = 0
    # Called when a conflicting patch is answered: what "someone else" did meanwhile.
    on_conflict: Any = None
    # Namespaces where deleting a secret answers 403 Forbidden (RBAC, say).
    forbidden_secret_deletes: set[str] = attrs.field(factory=set)
    # Plays the node for Pods (tests/clusters/kubelet.py): sees each request first.
    kubelet: Any = None
    # Resources (plural names) whose LIST answers 403 Forbidden (no RBAC to list them).
    forbidden_lists: set[str] = attrs.field(factory=set)
    # Seconds added before every answer (a far API server, for the benchmark).
    latency: float = 0.0
    # Writes (POST, PATCH, PUT, DELETE) wait until this many requests are in flight
    # together, or hold_timeout seconds pass; after that nothing is held any more.
    hold_writes_until: int = 0
    hold_timeout: float = 10.0
    # The next N writes answer 429 Too Many Requests; writes in these namespaces always do.
    throttled_writes: int = 0
    throttled_namespaces: set[str] = attrs.field(factory=set)
    # The Retry-After of those 429s (seconds or an HTTP date); None: no such header.
    retry_after: str | None = "1"
    # What was seen: requests in flight now and at most; when each 429 was answered and
    # when each write arrived ((method, namespace, name, time.monotonic())).
    in_flight: int = 0
    peak_in_flight: int = 0
    throttled_at: list = attrs.field(factory=list)
    writes_at: list = attrs.field(factory=list)
    _held: asyncio.Event | None = None
    # The one history of requests (read through seen()): kmock's own is cut to the request
    # it answers, because its dispatch filters that whole history for every request
    # (quadratic).
    _seen: list = attrs.field(factory=list)
    server: Server | None = None
    # LISTs of namespaces served (kmock cannot parse that path: served here, counted here).
    namespace_lists: int = 0
    # The benchmark's short cuts past kmock's dispatch and lookup (bench/reconcile.py turns
    # them on; the tests run kmock's own, so what they check is kmock's answer).
    fast: bool = False
    # kmock's own reactions (see _fast_write) and its reaction for each kind of write.
    _builtin_payloads: tuple = ()
    _write_payloads: dict = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        # Known resources answer an empty list before any object of theirs exists.
        known = ((SECRETS, "Secret"), (SERVICE_ACCOUNTS, "ServiceAccount"), (PODS, "Pod"),
                 (EVENTS, "Event"))  # fmt: skip
        for res, kind in known:
            self.resources[res] = {"kind": kind, "namespaced": True}
        self.resources[NAMESPACES] = {"kind": "Namespace", "namespaced": False}
        self._builtin_payloads = tuple(self._payloads)
        for payload in self._payloads:
            wanted = getattr(getattr(payload._source, "criteria", None), "action", None)
            if wanted in _WRITES:
                self._write_payloads[wanted] = payload

    def _KubernetesEmulator__get_obj(self, request, strict: bool) -> Any:
        """kmock's lookup of the one object a request names, by its key first: kmock's own
        compares the request with every object stored (0.15 ms for 150 objects)."""
        if self.fast and strict and request.resource is not None and request.name is not None:
            with contextlib.suppress(TypeError):
                key = (request.resource, request.namespace, request.name)
                found = self._objects._objects.get(key)
                if found is not None:
                    return found
        return super()._KubernetesEmulator__get_obj(request, strict)

    def _fast_write(self, request) -> Any:
        """kmock's reaction that answers this write, found without its dispatch, or None.

        kmock tries its reactions in order, each by filtering the request history (about
        0.1 ms each): 12 of them for a PATCH. Its own reactions before the write's are
        GETs or other actions, so while no test has added a reaction (``_payloads`` is
        still kmock's own), the write's reaction is the first that matches: the same answer.
        """
        if not self.fast or request.method == "GET" or request.action not in self._write_payloads:
            return None
        payloads = self._payloads
        if len(payloads) != len(self._builtin_payloads) or any(
            mine is not builtin
            for mine, builtin in zip(payloads, self._builtin_payloads, strict=True)
        ):
            return None
        payload = self._write_payloads[request.action]
        if payload._disabled.is_set() or request not in payload._source:
            return None
        return payload

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        # kmock 0.8 fails to parse /api/v1/namespaces (as it fails POST there): LIST it here.
        if raw_request.method == "GET" and raw_request.path.rstrip("/") == "/api/v1/namespaces":
            return self._list_namespaces(raw_request)
        return await super().__call__(raw_request)

    def _list_namespaces(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.Response:
        if raw_request.headers.get("Authorization") != f"Bearer {self.token}":
            return _status(401, "Unauthorized", "Unauthorized")
        self.namespace_lists += 1
        if "namespaces" in self.forbidden_lists:
            return _status(403, "Forbidden", "namespaces is forbidden")
        try:
            wanted = selectors.parse(raw_request.query.get("labelSelector", ""))
        except selectors.SelectorError as exc:
            return _status(400, "BadRequest", f"unable to parse requirement: {exc}")
        items = [
            obj.raw
            for (res, _ns, _name), obj in list(self.objects.items())
            if res == NAMESPACES and not obj.deleted
        ]
        items = [i for i in items if wanted.matches(i.get("metadata", {}).get("labels"))]
        body = {"apiVersion": "v1", "kind": "NamespaceList", "metadata": {}, "items": items}
        return aiohttp.web.json_response(body)

    async def _handle(self, request) -> aiohttp.web.StreamResponse:
        self._seen.append(request)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            write = request.method in ("POST", "PATCH", "PUT", "DELETE")
            if write and request.resource is not None:
                self.writes_at.append(
                    (request.method, request.namespace, request.name, time.monotonic())
                )
            if write and self.hold_writes_until:
                await self._hold()
            if write and request.resource is not None and self._throttles(request):
                self.throttled_at.append(time.monotonic())
                response = _status(
                    429, "TooManyRequests", "Too many requests, please try again later."
                )
                if self.retry_after is not None:
                    response.headers["Retry-After"] = self.retry_after
                return response
            self._requests[:] = [request]
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _hold(self) -> None:
        if self._held is None:
            self._held = asyncio.Event()
        if self.in_flight >= self.hold_writes_until:
            self._held.set()
        try:
            await asyncio.wait_for(self._held.wait(), self.hold_timeout)
        except TimeoutError:
            self._held.set()

    def _throttles(self, request) -> bool:
        if request.namespace in self.throttled_namespaces:
            return True
        if self.throttled_writes:
            self.throttled_writes -= 1
            return True
        return False

    async def _answer(self, request) -> aiohttp.web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _status(401, "Unauthorized", "Unauthorized")
        if request.method == "GET" and request.url.path == "/version/":
            # The official client asks for /version/; kmock serves /version only.
            return aiohttp.web.json_response(await self._serve_server_version(request))
        if request.method == "POST" and request.url.path == ACCESS_REVIEW_PATH:
            return self._access_review(request.data or {})
        if self.kubelet is not None and (answer := self.kubelet.before(self, request)):
            return answer
        if (
            request.method == "DELETE"
            and request.resource == SECRETS
            and request.namespace in self.forbidden_secret_deletes
        ):
            return _status(403, "Forbidden", "secrets is forbidden")
        if (
            request.method == "GET"
            and request.resource is not None
            and request.resource.plural in self.forbidden_lists
            and request.name is None
        ):
            return _status(403, "Forbidden", f"{request.resource.plural} is forbidden")
        if request.method == "PATCH" and request.resource == SECRETS and self.conflicting_patches:
            self.conflicting_patches -= 1
            if self.on_conflict is not None:
                self.on_conflict()
            return _status(409, "Conflict", "the object has been modified; please retry")
        return await super()._handle(request)

    def _access_review(self, review: dict) -> aiohttp.web.Response:
        if self.secret_access is None:
            return aiohttp.web.json_response(review, status=201)
        attributes = review.get("spec", {}).get("resourceAttributes", {})
        verb, resource = attributes.get("verb", ""), attributes.get("resource", "")
        # Keys: "create" (on secrets) or "patch serviceaccounts".
        key = verb if resource == "secrets" else f"{verb} {resource}"
        allowed = self.secret_access.get(key, True)
        if attributes.get("namespace") in self.denied_namespaces:
            allowed = False
        return aiohttp.web.json_response({**review, "status": {"allowed": allowed}}, status=201)

    async def _serve_list(self, request) -> Any:
        answer = await super()._serve_list(request)
        if request.resource == SECRETS and self.stale_secret_lists:
            self.stale_secret_lists -= 1
            return {**answer, "items": []}
        items = answer["items"]
        labels = request.params.get("labelSelector", "")
        if labels:
            try:
                wanted = selectors.parse(labels)
            except selectors.SelectorError as exc:
                return _status(400, "BadRequest", f"unable to parse requirement: {exc}")
            items = [i for i in items if wanted.matches(i.get("metadata", {}).get("labels"))]
        fields = request.params.get("fieldSelector", "")
        for part in filter(None, fields.split(",")):
            key, _, value = part.partition("=")
            items = [i for i in items if _field(i, key.strip()) == value]
        return {**answer, "items": items}

    # --- for tests: seeding and looking -------------------------------------------

    @property
    def url(self) -> str:  # type: ignore[override]
        assert self.server is not None
        return str(self.server.url).rstrip("/")

    def add_namespace(
        self,
        name: str,
        *,
        service_account: bool = True,
        labels: dict[str, str] | None = None,
        service_accounts: tuple[str, ...] = (),
    ) -> None:
        """Seed a namespace (kmock refuses POST /api/v1/namespaces), with its ``default``
        ServiceAccount unless told otherwise, and any other ``service_accounts``."""
        # Every namespace carries this label on a real server (since Kubernetes 1.21).
        all_labels = {"kubernetes.io/metadata.name": name, **(labels or {})}
        self.objects[NAMESPACES, None, name] = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": all_labels},
            "status": {"phase": "Active"},
        }
        for account in (("default",) if service_account else ()) + tuple(service_accounts):
            self.add_service_account(name, account)

    def add_service_account(self, namespace: str, name: str) -> None:
        self.objects[SERVICE_ACCOUNTS, namespace, name] = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace},
        }

    def label_namespace(self, name: str, labels: dict[str, str]) -> None:
        """Replace a namespace's own labels (its kubernetes.io/metadata.name stays)."""
        obj = self.objects[NAMESPACES, None, name]
        all_labels = {"kubernetes.io/metadata.name": name, **labels}
        obj.patch({"metadata": {"labels": None}})
        obj.patch({"metadata": {"labels": all_labels}})

    def set_namespace_phase(self, name: str, phase: str) -> None:
        self.objects[NAMESPACES, None, name].patch({"status": {"phase": phase}})

    def delete_namespace(self, name: str) -> None:
        """A namespace gone, with everything in it (as the namespace controller would)."""
        for (res, ns, obj_name), obj in list(self.objects.items()):
            if (ns == name or (res == NAMESPACES and obj_name == name)) and not obj.deleted:
                obj.delete()

    def put_secret(self, namespace: str, name: str, obj: dict) -> None:
        body = {"apiVersion": "v1", "kind": "Secret", **obj}
        body["metadata"] = {**obj.get("metadata", {}), "name": name, "namespace": namespace}
        key = (SECRETS, namespace, name)
        if key in self.objects:
            self.objects[key].create(body) if self.objects[key].deleted else self.objects[
                key
            ].patch(body)
        else:
            self.objects[key] = body

    def secrets(self) -> dict[tuple[str, str], dict]:
        """Live secrets: (namespace, name) -> object."""
        return {
            (ns, name): obj.raw
            for (res, ns, name), obj in self.objects.items()
            if res == SECRETS and not obj.deleted
        }

    def secret(self, namespace: str, name: str) -> dict | None:
        return self.secrets().get((namespace, name))

    def secret_key(self, namespace: str, name: str) -> tuple:
        return (SECRETS, namespace, name)

    def service_account_key(self, namespace: str) -> tuple:
        return (SERVICE_ACCOUNTS, namespace, "default")

    def delete_secret(self, namespace: str, name: str) -> None:
        self.objects[SECRETS, namespace, name].delete()

    def service_account(self, namespace: str, name: str = "default") -> dict:
        return self.objects[SERVICE_ACCOUNTS, namespace, name].raw

    def calls(self, kind: str = "secrets") -> Counter:
        """Requests so far for ``kind`` (a plural resource name) by verb: list, get, create…"""
        counts: Counter = Counter()
        if kind == "namespaces" and self.namespace_lists:
            counts["list"] = self.namespace_lists
        for request in self.seen():
            if request.resource is None or request.resource.plural != kind:
                continue
            counts[str(request.action.value).lower() if request.action else request.method] += 1
        return counts

    def reset_calls(self) -> None:
        self._seen.clear()
        self._requests.clear()
        self.namespace_lists = 0

    def api_calls(self) -> list[str]:
        """Every request so far, in order, as "METHOD /path?query" (the query decoded)."""
        calls = []
        for request in self.seen():
            query = "&".join(f"{k}={v}" for k, v in request.params.items())
            calls.append(f"{request.method.value} {request.url.path}{'?' + query if query else ''}")
        return calls

    def seen(self) -> list:
        """Every request so far, in order (kmock's parsed requests): a copy, safe to read
        while the emulator's loop serves more."""
        return list(self._seen)

    def requests_seen(self) -> int:
        return len(self._seen)


_WRITES = (enums.action.CREATE, enums.action.UPDATE, enums.action.DELETE)
_kmock_dispatch = apps.RawHandler._handle


async def _dispatch(self, request) -> aiohttp.web.StreamResponse:
    """kmock's dispatch, with a short cut for FakeCluster's writes (the benchmark's
    emulators spent a third of their CPU finding the reaction to a PATCH)."""
    payload = self._fast_write(request) if isinstance(self, FakeCluster) else None
    if payload is None:
        return await _kmock_dispatch(self, request)
    try:
        return await payload(request)
    except rendering.ReactionMismatchError:  # as kmock does: disabled, then the others
        payload._disabled.set()
        return await _kmock_dispatch(self, request)


apps.RawHandler._handle = _dispatch


class _TlsTestServer(RawTestServer):
    """aiohttp's test server, serving HTTPS with the given SSL context."""

    def __init__(self, handler, *, ssl_context: ssl.SSLContext, **kwargs) -> None:
        super().__init__(handler, **kwargs)
        self._ssl_context = ssl_context

    async def start_server(self, loop=None, **kwargs) -> None:
        await super().start_server(loop=loop, ssl=self._ssl_context, **kwargs)


class EmulatorLoop:
    """An asyncio loop in a daemon thread serving :class:`FakeCluster` s on loopback ports."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.running: list[FakeCluster] = []

    def _run(self, coro, timeout: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self, *, ssl_context: ssl.SSLContext | None = None, **options) -> FakeCluster:
        """A new emulated cluster; with ``ssl_context`` it serves HTTPS."""
        server_options = {}
        if ssl_context is not None:
            server_options["server_cls"] = functools.partial(
                _TlsTestServer, ssl_context=ssl_context
            )

        async def start() -> FakeCluster:
            cluster = FakeCluster(**options)
            await cluster.__aenter__()
            cluster.server = Server(cluster, **server_options)
            await cluster.server.__aenter__()
            return cluster

        cluster = self._run(start())
        self.running.append(cluster)
        return cluster

    def stop(self, cluster: FakeCluster) -> None:
        async def stop() -> None:
            await cluster.server.__aexit__(None, None, None)
            await cluster.__aexit__(None, None, None)

        # By identity: kmock's emulators compare by value, which recurses between two.
        if any(running is cluster for running in self.running):
            self.running = [running for running in self.running if running is not cluster]
            self._run(stop())

    def close(self) -> None:
        for cluster in list(reversed(self.running)):
            self.stop(cluster)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
