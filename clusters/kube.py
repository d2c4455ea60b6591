"""The ONLY code that talks to Kubernetes: the official client, one cluster at a time.

Framework-free (no Django): the caller passes a :class:`Connection`. Every call has
a timeout; every failure becomes one :class:`KubeError` whose message says what to
fix and never holds the token. Objects come back as small plain dataclasses, so the
rest of Wharf never handles the client's models.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import MaxRetryError, ResponseError

from clusters import selectors
from config import http

MERGE_PATCH = "application/merge-patch+json"
SECRET_VERBS = ("list", "get", "create", "patch", "delete")
# What a bearer token may hold: visible ASCII. Anything else (a line break pasted in the
# middle, a space) makes http.client refuse the header with a message quoting the token.
TOKEN_CHARS = re.compile(r"[\x21-\x7e]*")
BAD_TOKEN = (
    "the bearer token holds spaces, line breaks or other characters a token cannot have: "
    "paste it again"
)
# A 429 (Too Many Requests: the server did not act on the request) is sent again at most
# this many times, each after the server's Retry-After (or a short backoff) plus jitter.
THROTTLE_RETRIES = 4
# A Retry-After longer than this is not waited for: that call fails with the 429.
THROTTLE_MAX_WAIT = 60.0
THROTTLE_BACKOFF = 0.5  # seconds before the first retry of a 429 without Retry-After

T = TypeVar("T")
R = TypeVar("R")


def token_is_valid(token: str) -> bool:
    return TOKEN_CHARS.fullmatch(token or "") is not None


class KubeError(Exception):
    """A Kubernetes call failed; ``str(e)`` says what to do, ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def not_found(self) -> bool:
        return self.status == 404


@dataclass(frozen=True)
class Connection:
    """How to reach one cluster's API server."""

    host: str
    token: str = field(repr=False)
    ca_pem: str = ""
    skip_tls_verify: bool = False
    timeout: float = 10.0


@dataclass(frozen=True)
class SecretState:
    namespace: str
    name: str
    type: str
    labels: dict[str, str]
    data: dict[str, str] = field(repr=False)
    resource_version: str = ""


@dataclass(frozen=True)
class ServiceAccountState:
    namespace: str
    name: str
    pull_secrets: tuple[str, ...]
    annotations: dict[str, str]
    resource_version: str = ""


@dataclass(frozen=True)
class AccessCheck:
    version: str
    namespace: str
    allowed: dict[str, bool | None]  # verb on secrets -> allowed (None: the server did not say)
    patch_service_accounts: bool | None = None


# What a pull test does in a namespace (Test connection asks for each).
POD_TEST_RIGHTS = (
    ("create", "pods"),
    ("get", "pods"),
    ("list", "pods"),
    ("delete", "pods"),
    ("list", "events"),
)


@dataclass(frozen=True)
class ContainerState:
    name: str
    state: str  # "waiting", "running", "terminated", or "" (not reported yet)
    reason: str = ""
    message: str = ""
    exit_code: int | None = None
    image_id: str = ""  # set once the container was made from a pulled image


@dataclass(frozen=True)
class PodState:
    namespace: str
    name: str
    phase: str
    reason: str = ""
    message: str = ""
    containers: tuple[ContainerState, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EventState:
    type: str  # "Normal" or "Warning"
    reason: str
    message: str


def _pause(seconds: float) -> None:
    """Wait before a retry (one place, so that tests can watch the waits)."""
    time.sleep(seconds)


class _ThrottleRetry(urllib3.Retry):
    """urllib3's retry policy, taught the API server's 429 Too Many Requests.

    A 429 is retried whatever the method (the server did not act on the request) at
    most :data:`THROTTLE_RETRIES` times, each after its Retry-After (seconds or an HTTP
    date) or an exponential backoff, plus up to a quarter more of jitter so that many
    throttled calls do not come back together. A wait that would end past ``deadline``
    (or is longer than :data:`THROTTLE_MAX_WAIT`) is not started: the 429 is the answer.
    """

    def __init__(self, *args: Any, deadline: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deadline = deadline
        self.wait = 0.0

    def new(self, **kw: Any) -> _ThrottleRetry:
        return super().new(**{"deadline": self.deadline, **kw})

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        return status_code == 429 or super().is_retry(method, status_code, has_retry_after)

    def increment(self, method=None, url=None, response=None, error=None, _pool=None,
                  _stacktrace=None) -> _ThrottleRetry:  # fmt: skip
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        if response is not None and response.status == 429:
            wait = self._throttle_wait(response, len(retry.history))
            if wait is None:  # urlopen then answers with the 429 itself
                raise MaxRetryError(_pool, url, ResponseError("429 not retried"))
            retry.wait = wait
        return retry

    def _throttle_wait(self, response: Any, attempt: int) -> float | None:
        header = response.headers.get("Retry-After")
        try:
            asked = self.parse_retry_after(header) if header else None
        except urllib3.exceptions.InvalidHeader:
            asked = None
        wait = asked if asked is not None else THROTTLE_BACKOFF * 2 ** (attempt - 1)
        if wait > THROTTLE_MAX_WAIT:
            return None
        wait += random.uniform(0, 0.25 * wait + 0.05)  # noqa: S311 (jitter, not a secret)
        if self.deadline is not None and time.monotonic() + wait >= self.deadline:
            return None
        return wait

    def sleep(self, response: Any = None) -> None:
        if self.wait:
            _pause(self.wait)
        else:
            super().sleep(response)


class KubeClient:
    """An open API client for one cluster; use as a context manager (closes its pool).

    ``concurrency``: how many calls :meth:`each` has in flight at once (the connection
    pool holds as many). ``deadline`` (a :func:`time.monotonic` time): no call starts,
    and no retry waits, past it.
    """

    def __init__(
        self, connection: Connection, *, concurrency: int = 1, deadline: float | None = None
    ) -> None:
        self.connection = connection
        self.concurrency = max(1, concurrency)
        self.deadline = deadline
        self._pool: ThreadPoolExecutor | None = None
        config = client.Configuration(
            host=connection.host.rstrip("/"),
            api_key={"BearerToken": connection.token},
            api_key_prefix={"BearerToken": "Bearer"},
            verify_ssl=not connection.skip_tls_verify,
            ca_cert_data=connection.ca_pem or None,
            # One retry for a dropped keep-alive connection; none for a refused one; 429s
            # as the server asks, within the deadline.
            retries=_ThrottleRetry(
                total=None, connect=0, read=0, redirect=0, other=1,
                status=THROTTLE_RETRIES, raise_on_status=False, respect_retry_after_header=False,
                retry_after_max=10**9, deadline=deadline,
            ),
        )  # fmt: skip
        config.connection_pool_maxsize = self.concurrency
        self._api_client = client.ApiClient(config)
        # Connections config.http's watchdog can cut: each call ends by its deadline.
        pools = self._api_client.rest_client.pool_manager
        pools.pool_classes_by_scheme = http.watched_pool_classes()
        self.core = client.CoreV1Api(self._api_client)
        self._host = config.host
        self._authorization = f"Bearer {connection.token}"

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:  # calls not started yet are dropped (a time limit, say)
            self._pool.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(Exception):
            self._api_client.close()

    @property
    def _timeout(self) -> tuple[float, float]:
        """(connect, read) timeouts of the next call: the connection's, within the deadline."""
        timeout = self.connection.timeout
        if self.deadline is not None:
            timeout = max(0.1, min(timeout, self.deadline - time.monotonic()))
        return (min(timeout, 5.0), timeout)

    def submit(self, call: Callable[[], R]) -> Future[R]:
        """Start ``call()`` (calls to the cluster only) beside the caller's work; its
        ``result()`` is the answer, or raises what it raised. Without concurrency it runs
        now."""
        if self.concurrency == 1:
            future: Future[R] = Future()
            try:
                future.set_result(call())
            except KubeError as exc:
                future.set_exception(exc)
            return future
        return self._executor().submit(call)

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="wharf-kube")
        return self._pool

    def each(self, call: Callable[[T], R], items: Iterable[T]) -> list[R | KubeError]:
        """``call(item)`` for every item, up to ``concurrency`` at once.

        The results come back in the order of ``items``, a :class:`KubeError` in place of
        a call that raised one (any other error is raised here). ``call`` must only talk
        to the cluster: it runs in other threads.
        """
        items = list(items)
        if self.concurrency == 1 or len(items) < 2:
            return [_result_of(call, item) for item in items]
        futures = [self._executor().submit(_result_of, call, item) for item in items]
        try:
            return [future.result() for future in futures]
        finally:
            for future in futures:  # stopped while waiting (a time limit): start no more
                future.cancel()

    # --- errors -----------------------------------------------------------------

    @contextlib.contextmanager
    def _call(self, what: str) -> Iterator[None]:
        host = self.connection.host
        if not token_is_valid(self.connection.token):
            raise KubeError(f"Could not {what} on {host}: {BAD_TOKEN}.")
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise KubeError(f"Did not {what} on {host}: the run's time limit is reached.")
        try:
            with self._deadline():
                yield
        except ApiException as exc:
            raise _api_error(exc, what, host) from None
        except urllib3.exceptions.SSLError:
            raise KubeError(
                f"TLS verification of {host} failed while trying to {what}: paste the API "
                "server's CA certificate, or tick “Skip TLS verify”."
            ) from None
        except urllib3.exceptions.MaxRetryError as exc:
            if isinstance(exc.reason, urllib3.exceptions.SSLError):
                raise KubeError(
                    f"TLS verification of {host} failed while trying to {what}: paste the API "
                    "server's CA certificate, or tick “Skip TLS verify”."
                ) from None
            timed_out = isinstance(exc.reason, urllib3.exceptions.TimeoutError)
            if timed_out and not isinstance(exc.reason, urllib3.exceptions.NewConnectionError):
                raise KubeError(
                    f"The API server at {host} did not answer in time (within "
                    f"{self.connection.timeout:g}s) while trying to {what}."
                ) from None
            raise KubeError(
                f"Could not reach the API server at {host} to {what} "
                f"({type(exc.reason).__name__}). Check the URL and that Wharf's network reaches it."
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeError(
                f"The API server at {host} did not answer in time or dropped the connection "
                f"while trying to {what} ({type(exc).__name__})."
            ) from None
        except ValueError as exc:  # e.g. an unreadable CA certificate, or a bad answer
            raise KubeError(f"Could not {what} on {host}: {self._scrub(str(exc))}") from None

    @contextlib.contextmanager
    def _deadline(self) -> Iterator[None]:
        """The whole call (connect, headers, body) ends within the connection's timeout,
        however slowly the server drips: a read timeout alone restarts with every byte."""
        seconds = self.connection.timeout
        with http.deadline(seconds, "one Kubernetes call") as watch:
            try:
                yield
            except (urllib3.exceptions.HTTPError, OSError, ValueError):
                if watch.fired:
                    raise _deadline_passed(seconds) from None
                raise
            if watch.fired:  # an answer cut short, read as if complete
                raise _deadline_passed(seconds)

    def _scrub(self, text: str) -> str:
        """``text`` without the token, raw or as Python quotes it (never shown, never logged)."""
        token = self.connection.token
        for form in {token, repr(token)[1:-1]} - {""}:
            text = text.replace(form, "[token]")
        return text

    def _write(self, method: str, path: str, body: dict, content_type: str = "") -> None:
        """A write whose answer Wharf does not use, sent through the client's own REST layer
        (its connection pool, TLS settings, retries and bearer token) without the generated
        method's argument validation and model serialisation: for a small JSON body those
        cost as much CPU as the HTTP call itself (``bench/reconcile.py``). ``path`` is the
        API path with its parts quoted; a refusal raises ``ApiException`` as the generated
        methods do. Call it inside :meth:`_call`."""
        headers = {
            "Accept": "application/json",
            "Content-Type": content_type or "application/json",
            "User-Agent": self._api_client.user_agent,
            "Authorization": self._authorization,
        }
        response = self._api_client.call_api(
            method,
            self._host + path,
            header_params=headers,
            body=body,
            _request_timeout=self._timeout,
        )
        try:
            if not 200 <= response.status <= 299:
                response.read()
                raise ApiException.from_response(http_resp=response, body=None, data=None)
            response.response.read()
        finally:
            response.response.release_conn()

    # --- server -----------------------------------------------------------------

    def server_version(self) -> str:
        with self._call("read the server version"):
            info = client.VersionApi(self._api_client).get_code(_request_timeout=self._timeout)
        return info.git_version

    def check_secret_access(self, namespace: str) -> AccessCheck:
        """The server version, and whether the token may use secrets in ``namespace``
        (and patch its service accounts)."""
        return self.check_secret_access_in([namespace])[0]

    def check_secret_access_in(self, namespaces: list[str]) -> list[AccessCheck]:
        """The server version (asked once), and the token's rights in each of ``namespaces``."""
        version = self.server_version()
        return [
            AccessCheck(
                version=version,
                namespace=namespace,
                allowed={verb: self.may(verb, "secrets", namespace) for verb in SECRET_VERBS},
                patch_service_accounts=self.may("patch", "serviceaccounts", namespace),
            )
            for namespace in namespaces
        ]

    def may(self, verb: str, resource: str, namespace: str) -> bool | None:
        """A SelfSubjectAccessReview; None when the server gives no answer."""
        # The client takes plain dicts as bodies (its stubs name only its model classes).
        body: Any = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {"namespace": namespace, "verb": verb, "resource": resource}
            },
        }
        authz = client.AuthorizationV1Api(self._api_client)
        with self._call(f"ask whether the token may {verb} {resource}"):
            review = authz.create_self_subject_access_review(body, _request_timeout=self._timeout)
        status = review.status
        return None if status is None else bool(status.allowed)

    # --- secrets ----------------------------------------------------------------

    def list_secrets(self, label_selector: str) -> list[SecretState]:
        """Secrets in every namespace matching ``label_selector`` (Kubernetes selector
        syntax, :mod:`clusters.selectors`): one call."""
        with self._call("list secrets"):
            items = _listed_items(
                self.core.list_secret_for_all_namespaces(
                    label_selector=label_selector,
                    _request_timeout=self._timeout,
                    _preload_content=False,
                )
            )
        wanted = selectors.parse(label_selector)
        secrets = [_secret_from(item) for item in items]
        # Checked again here: Wharf must never act on a secret it did not label.
        return [s for s in secrets if wanted.matches(s.labels)]

    def namespaces_with_secret(self, name: str) -> set[str]:
        """Namespaces holding a secret called ``name``: one call for the whole cluster."""
        with self._call(f"look for secret {name}"):
            answer = self.core.list_secret_for_all_namespaces(
                field_selector=f"metadata.name={name}", _request_timeout=self._timeout
            )
        found = (_object_meta(item) for item in answer.items or [])
        return {meta.namespace or "" for meta in found if meta.name == name}

    def read_secret(self, namespace: str, name: str) -> SecretState | None:
        try:
            with self._call(f"read secret {name} in namespace {namespace}"):
                item = self.core.read_namespaced_secret(
                    name, namespace, _request_timeout=self._timeout
                )
        except KubeError as exc:
            if exc.not_found:
                return None
            raise
        return _secret_state(item)

    def create_secret(
        self, namespace: str, name: str, type_: str, labels: dict, data: dict
    ) -> None:
        body: Any = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "type": type_,
            "data": data,
        }
        with self._call(f"create secret {name} in namespace {namespace}"):
            self._write("POST", f"/api/v1/namespaces/{_part(namespace)}/secrets", body)

    def replace_secret_content(
        self, current: SecretState, labels: dict, data: dict, resource_version: str = ""
    ) -> None:
        """Make the secret's labels and data exactly these (a merge patch; stale keys removed).

        With ``resource_version`` the server refuses (409) if someone changed it since.
        """
        stale = {key: None for key in current.data if key not in data}
        metadata: dict = {"labels": labels}
        if resource_version:
            metadata["resourceVersion"] = resource_version
        body = {"metadata": metadata, "data": {**stale, **data}}
        what = f"update secret {current.name} in namespace {current.namespace}"
        path = f"/api/v1/namespaces/{_part(current.namespace)}/secrets/{_part(current.name)}"
        with self._call(what):
            self._write("PATCH", path, body, MERGE_PATCH)

    def delete_secret(self, namespace: str, name: str) -> None:
        """Delete a secret; one that is already gone is fine."""
        try:
            with self._call(f"delete secret {name} in namespace {namespace}"):
                _discard(
                    self.core.delete_namespaced_secret(
                        name, namespace, _request_timeout=self._timeout, _preload_content=False
                    )
                )
        except KubeError as exc:
            if not exc.not_found:
                raise

    # --- namespaces -------------------------------------------------------------

    def namespaces(self, label_selector: str = "") -> dict[str, dict[str, str]]:
        """Every namespace (matching ``label_selector``, if given) with its labels: one call.

        Namespaces being deleted (phase Terminating) are left out: nothing new goes there.
        """
        with self._call("list namespaces"):
            answer = self.core.list_namespace(
                label_selector=label_selector or None, _request_timeout=self._timeout
            )
        found = {}
        for item in answer.items or []:
            meta = _object_meta(item)
            phase = item.status.phase if item.status is not None else None
            if meta.name and phase != "Terminating":
                found[meta.name] = dict(meta.labels or {})
        return found

    # --- service accounts -------------------------------------------------------

    def service_accounts(self) -> list[ServiceAccountState]:
        """Every ServiceAccount of the cluster, all namespaces: one call."""
        with self._call("list service accounts"):
            items = _listed_items(
                self.core.list_service_account_for_all_namespaces(
                    _request_timeout=self._timeout, _preload_content=False
                )
            )
        accounts = (_service_account_from(item) for item in items)
        return [account for account in accounts if account.name and account.namespace]

    def read_service_account(self, namespace: str, name: str) -> ServiceAccountState | None:
        try:
            with self._call(f"read service account {name} in namespace {namespace}"):
                item = self.core.read_namespaced_service_account(
                    name, namespace, _request_timeout=self._timeout
                )
        except KubeError as exc:
            if exc.not_found:
                return None
            raise
        return _service_account_state(item)

    def set_image_pull_secrets(
        self, account: ServiceAccountState, names: list[str], annotations: dict[str, str | None]
    ) -> None:
        metadata: dict = {"annotations": annotations}
        if account.resource_version:
            metadata["resourceVersion"] = account.resource_version
        body = {"metadata": metadata, "imagePullSecrets": [{"name": n} for n in names]}
        what = f"update service account {account.name} in namespace {account.namespace}"
        namespace, name = _part(account.namespace), _part(account.name)
        with self._call(what):
            self._write(
                "PATCH", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}", body, MERGE_PATCH
            )

    # --- pods (pull tests) ----------------------------------------------------------

    def check_pod_access_in(self, namespaces: list[str]) -> dict[str, dict[str, bool | None]]:
        """Whether the token may do what a pull test does in each of ``namespaces``:
        ``"create pods"`` (and get, list, delete) and ``"list events"`` -> allowed."""
        return {
            namespace: {
                f"{verb} {resource}": self.may(verb, resource, namespace)
                for verb, resource in POD_TEST_RIGHTS
            }
            for namespace in namespaces
        }

    def create_pod(self, namespace: str, body: dict) -> None:
        """Create the Pod ``body`` (a manifest as a dict, its name in its metadata)."""
        name = body.get("metadata", {}).get("name", "")
        manifest: Any = body  # the client takes plain dicts (its stubs name only V1Pod)
        with self._call(f"create pod {name} in namespace {namespace}"):
            self.core.create_namespaced_pod(namespace, manifest, _request_timeout=self._timeout)

    def read_pod(self, namespace: str, name: str) -> PodState | None:
        """The Pod's phase and container states; None when it does not exist."""
        try:
            with self._call(f"read pod {name} in namespace {namespace}"):
                item = self.core.read_namespaced_pod(
                    name, namespace, _request_timeout=self._timeout
                )
        except KubeError as exc:
            if exc.not_found:
                return None
            raise
        return _pod_state(item)

    def list_pods(self, namespace: str, label_selector: str) -> list[PodState]:
        """Pods of ``namespace`` matching ``label_selector`` (checked again here)."""
        with self._call(f"list pods in namespace {namespace}"):
            answer = self.core.list_namespaced_pod(
                namespace, label_selector=label_selector, _request_timeout=self._timeout
            )
        wanted = selectors.parse(label_selector)
        pods = [_pod_state(item) for item in answer.items or []]
        return [p for p in pods if p.namespace == namespace and wanted.matches(p.labels)]

    def delete_pod(self, namespace: str, name: str) -> None:
        """Delete a Pod; one that is already gone is fine."""
        try:
            with self._call(f"delete pod {name} in namespace {namespace}"):
                self.core.delete_namespaced_pod(name, namespace, _request_timeout=self._timeout)
        except KubeError as exc:
            if not exc.not_found:
                raise

    def pod_events(self, namespace: str, name: str) -> list[EventState]:
        """The events about Pod ``name`` (one LIST, by field selector), oldest first."""
        with self._call(f"list the events of pod {name} in namespace {namespace}"):
            answer = self.core.list_namespaced_event(
                namespace,
                field_selector=f"involvedObject.name={name}",
                _request_timeout=self._timeout,
            )
        events = []
        for item in answer.items or []:
            about = item.involved_object
            if about is None or about.name != name or (about.kind or "Pod") != "Pod":
                continue  # checked again: another object's events say nothing of this pod
            kind, reason, message = item.type or "", item.reason or "", item.message or ""
            events.append(EventState(type=kind, reason=reason, message=message))
        return events


def _listed_items(response: Any) -> list[dict]:
    """The ``items`` of a LIST answer as plain JSON objects: the client's model objects
    for a whole cluster's secrets or ServiceAccounts cost more CPU than the call itself,
    and Wharf reads only a few fields of each."""
    try:
        body = json.loads(response.read())
    finally:
        response.release_conn()
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list | None):
        raise ValueError("the API server answered a list without a list of items")
    return [item for item in items or [] if isinstance(item, dict)]


def _metadata_of(item: dict) -> dict:
    meta = item.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _string_map(value: Any) -> dict[str, str]:
    return dict(value) if isinstance(value, dict) else {}


def _secret_from(item: dict) -> SecretState:
    """A listed secret's state, as :func:`_secret_state` reads it from a model object."""
    meta = _metadata_of(item)
    return SecretState(
        namespace=_text(meta.get("namespace")),
        name=_text(meta.get("name")),
        type=_text(item.get("type")) or "Opaque",
        labels=_string_map(meta.get("labels")),
        data=_string_map(item.get("data")),
        resource_version=_text(meta.get("resourceVersion")),
    )


def _service_account_from(item: dict) -> ServiceAccountState:
    """A listed ServiceAccount's state, as :func:`_service_account_state` reads it."""
    meta = _metadata_of(item)
    refs = item.get("imagePullSecrets")
    names = (
        [ref.get("name") for ref in refs or [] if isinstance(ref, dict)]
        if isinstance(refs, list)
        else []
    )
    return ServiceAccountState(
        namespace=_text(meta.get("namespace")),
        name=_text(meta.get("name")),
        pull_secrets=tuple(name for name in names if isinstance(name, str) and name),
        annotations=_string_map(meta.get("annotations")),
        resource_version=_text(meta.get("resourceVersion")),
    )


def _part(name: str) -> str:
    """One segment of an API path (a namespace or object name), quoted."""
    return quote(name, safe="")


def _discard(response: Any) -> None:
    """A write's answer, which Wharf does not use: read whole (so that its connection goes
    back to the pool) but not turned into the client's model objects, which costs more CPU
    than the call itself. A refusal (non-2xx) was raised as ``ApiException`` already."""
    try:
        response.read()
    finally:
        response.release_conn()


def _result_of(call: Callable[[T], R], item: T) -> R | KubeError:
    try:
        return call(item)
    except KubeError as exc:
        return exc


def _object_meta(item: Any) -> client.V1ObjectMeta:
    """An object's metadata; an object listed without any is treated as nameless."""
    return item.metadata or client.V1ObjectMeta()


def _service_account_state(item: Any) -> ServiceAccountState:
    meta = _object_meta(item)
    return ServiceAccountState(
        namespace=meta.namespace or "",
        name=meta.name or "",
        pull_secrets=tuple(ref.name for ref in item.image_pull_secrets or [] if ref.name),
        annotations=dict(meta.annotations or {}),
        resource_version=meta.resource_version or "",
    )


def _secret_state(item: Any) -> SecretState:
    meta = _object_meta(item)
    return SecretState(
        namespace=meta.namespace or "",
        name=meta.name or "",
        type=item.type or "Opaque",
        labels=dict(meta.labels or {}),
        data=dict(item.data or {}),
        resource_version=meta.resource_version or "",
    )


def _pod_state(item: Any) -> PodState:
    meta = _object_meta(item)
    status = item.status
    containers = []
    for c in (status.container_statuses if status else None) or []:
        state, reason, message, code = "", "", "", None
        if c.state is not None:
            for kind in ("terminated", "running", "waiting"):
                detail = getattr(c.state, kind)
                if detail is not None:
                    state = kind
                    reason = getattr(detail, "reason", None) or ""
                    message = getattr(detail, "message", None) or ""
                    code = getattr(detail, "exit_code", None)
                    break
        containers.append(
            ContainerState(c.name or "", state, reason, message, code, c.image_id or "")
        )
    return PodState(
        namespace=meta.namespace or "",
        name=meta.name or "",
        phase=(status.phase if status else None) or "",
        reason=(status.reason if status else None) or "",
        message=(status.message if status else None) or "",
        containers=tuple(containers),
        labels=dict(meta.labels or {}),
        annotations=dict(meta.annotations or {}),
    )


def _deadline_passed(seconds: float) -> urllib3.exceptions.MaxRetryError:
    """What a call cut by its deadline raises: a timeout, which ``_call`` words for the user."""
    message = f"the {seconds:g} s deadline passed"
    reason = urllib3.exceptions.ReadTimeoutError(None, "", message)  # type: ignore[arg-type]
    return urllib3.exceptions.MaxRetryError(None, "", reason)  # type: ignore[arg-type]


def _api_error(exc: ApiException, what: str, host: str) -> KubeError:
    status = exc.status
    if status == 401:
        message = (
            f"The API server at {host} rejected the bearer token (401 Unauthorized) while "
            f"trying to {what}: paste a valid service account token."
        )
    elif status == 403:
        message = (
            f"The token is not allowed to {what} (403 Forbidden): give its service account "
            "a role that may list, create, patch and delete secrets (and patch service accounts)."
        )
    elif status == 404:
        message = f"Not found while trying to {what} (404): does the namespace exist?"
    elif status == 409:
        message = f"Conflict while trying to {what} (409): it changed or already exists."
    elif status == 429:
        message = (
            f"The API server at {host} kept answering 429 Too Many Requests while trying to "
            f"{what}, also after Wharf waited as it asked (up to {THROTTLE_RETRIES} retries "
            "within the run's time limit): it is overloaded or limits this token's requests. "
            "The next reconcile tries again."
        )
    else:
        reason = (exc.reason or "").strip()
        message = f"The API server at {host} answered {status} {reason} while trying to {what}."
    return KubeError(message, status=status)
