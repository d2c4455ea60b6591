"""The one outbound HTTP layer: how Wharf reaches a server, whatever protocol it speaks.

Protocol modules sit on top of this one and keep only their protocol:
``registries.oci`` (the OCI distribution API) and ``charts.helmrepo`` (Helm
repositories). Everything else is here, once:

- the TLS modes and the labels the screens give them;
- :class:`Transport`: how to reach a server (TLS mode and CA, timeouts, a total
  deadline per request, a proxy or an SSH tunnel);
- total deadlines (:class:`Budget`): a watchdog thread shuts a request's socket down when
  its time is up, so a server that drips its status line, headers or body a byte at a
  time cannot hold a worker past the deadline (an idle-read timeout never fires then);
- :class:`HttpSession`: a ``requests`` session built from a transport (adapter and
  connection pools, trust store, private CA files, proxy, tunnel), counting its
  requests and turning every failure into one :class:`HttpError` with a ``kind``, a
  ``cause`` and a message a user can act on;
- bounded reads (:meth:`HttpSession.read_limited`) and ``Retry-After`` parsing.

Framework-free: no Django; callers build a :class:`Transport` from their own models
and settings. Secrets (passwords, keys, proxy credentials) never appear in reprs,
logs or error messages, and no message quotes a URL with credentials in it.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import heapq
import itertools
import logging
import os
import re
import socket
import ssl
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import certifi
import requests
import requests.adapters
import urllib3.connection
import urllib3.connectionpool
from urllib3.exceptions import InsecureRequestWarning, LocationParseError

from config import metrics, ratelimit
from config.tunnel import SshTarget, SshTunnel, TunnelError

log = logging.getLogger(__name__)

# --- TLS modes --------------------------------------------------------------------------

TLS_SECURE = "secure"  # verify against the trust store (see trust_store())
TLS_CA = "ca"  # verify against the given CA certificate PEM only
TLS_INSECURE = "insecure"  # TLS not verified; a server that speaks plain HTTP is fine too
TLS_MODES = (TLS_SECURE, TLS_CA, TLS_INSECURE)

# What the screens call the TLS choices; messages name them so they point at the control.
SECURE_ONLY_LABEL = "Allow only secure connection"
SECURE_WITH_CA_LABEL = "Secure with CA certificate"
ALLOW_INSECURE_LABEL = "Allow insecure connection"
TLS_LABELS = {
    TLS_SECURE: SECURE_ONLY_LABEL,
    TLS_CA: SECURE_WITH_CA_LABEL,
    TLS_INSECURE: ALLOW_INSECURE_LABEL,
}
# The choices a model field offers (registries and Helm repositories alike).
TLS_CHOICES: list[tuple[str, str]] = [(mode, TLS_LABELS[mode]) for mode in TLS_MODES]

DEFAULT_TIMEOUT = 10.0  # seconds to connect, and of silence while reading
DEFAULT_DEADLINE = 60.0  # seconds for one whole request: connect, headers and body
CHUNK = 256 * 1024
POOL_MAXSIZE = 32  # a sync reads many manifests and blobs at once from a few threads


class RequestTally:
    """Counts the requests sent while it is :func:`counting` (one run's share of a session)."""

    def __init__(self) -> None:
        self.requests_made = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.requests_made += 1


_current_tally: contextvars.ContextVar[RequestTally | None] = contextvars.ContextVar(
    "wharf_request_tally", default=None
)


@contextlib.contextmanager
def counting(tally: RequestTally):
    """Requests sent in this context (by any session) are also counted on ``tally``."""
    token = _current_tally.set(tally)
    try:
        yield tally
    finally:
        _current_tally.reset(token)


@dataclass(frozen=True)
class Transport:
    """How to reach a server: TLS, timeouts, and the connection method (direct, proxy, SSH).

    ``proxy_url`` is "http(s)://host:port" for the "via Proxy" method, its credentials
    apart in the two fields after it (never in the URL); empty means no proxy. ``ssh``
    is the "via SSH Tunnel" method: every connection is then a channel of the tunnel.
    """

    tls: str = TLS_SECURE
    ca_pem: str = field(default="", repr=False)
    timeout: float = DEFAULT_TIMEOUT
    deadline: float = DEFAULT_DEADLINE
    proxy_url: str = field(default="", repr=False)
    proxy_username: str = field(default="", repr=False)
    proxy_password: str = field(default="", repr=False)
    ssh: SshTarget | None = None

    def __post_init__(self) -> None:
        if self.tls not in TLS_MODES:
            raise ValueError(f"Unknown TLS mode {self.tls!r}; expected one of {TLS_MODES}.")
        if self.proxy_url and self.ssh is not None:
            raise ValueError("A connection goes through a proxy or an SSH tunnel, not both.")

    @property
    def proxy_address(self) -> str:
        """The proxy's "host:port", for messages (never with credentials)."""
        parts = urlsplit(self.proxy_url)
        return parts.netloc.rsplit("@", 1)[-1] or self.proxy_url

    @property
    def has_proxy_credentials(self) -> bool:
        return bool(self.proxy_username or self.proxy_password)

    def proxy_url_with_credentials(self) -> str:
        """The proxy URL requests wants (``Proxy-Authorization`` comes from its user part).

        Built only here, for the session; never stored, shown or logged.
        """
        if not self.proxy_url or not self.has_proxy_credentials:
            return self.proxy_url
        parts = urlsplit(self.proxy_url)
        userinfo = f"{quote(self.proxy_username, safe='')}:{quote(self.proxy_password, safe='')}"
        return urlunsplit(parts._replace(netloc=f"{userinfo}@{self.proxy_address}"))

    @property
    def route(self) -> tuple:
        """What tells two ways of reaching a server apart (for per-process route memory)."""
        ssh = (self.ssh.host, self.ssh.port) if self.ssh is not None else None
        return (self.tls, self.proxy_url, ssh)


# --- errors ---------------------------------------------------------------------------


class HttpError(Exception):
    """One error type for every outbound call; ``str(e)`` is a message a user can act on.

    Protocol modules raise subclasses (``RegistryError``, ``HelmRepoError``), so callers
    catch their own world's type; ``kind`` says what went wrong, broadly, and ``cause``
    which hop of the connection method failed.
    """

    UNREACHABLE = "unreachable"
    TLS = "tls"
    AUTH = "auth"
    PROTOCOL = "protocol"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    CONTENT = "content"  # the server sent something that is not what it claims to be

    # ``cause``: which hop of the connection method failed. ``kind`` stays one of the broad
    # kinds above (unreachable, auth), which is what callers decide on (e.g. stop a sync).
    PROXY_REFUSED = "proxy_refused"  # the proxy could not be reached, or refused the connection
    PROXY_AUTH = "proxy_auth"  # the proxy wants other credentials (HTTP 407)
    PROXY_UPSTREAM = "proxy_upstream"  # the proxy could not or would not reach the server
    SSH_UNREACHABLE = TunnelError.SSH_UNREACHABLE
    SSH_AUTH = TunnelError.SSH_AUTH
    HOST_KEY = TunnelError.HOST_KEY
    TUNNEL_FORWARD = TunnelError.FORWARD  # the server is unreachable from the tunnel's end
    TUNNEL_SETTINGS = TunnelError.SETTINGS

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        host: str = "",
        retry_after: float | None = None,
        cause: str = "",
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.host = host
        self.retry_after = retry_after
        self.cause = cause

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r}, kind={self.kind!r})"


# --- total deadlines ---------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """The total time of one operation: one request, or one download across its redirects.

    ``what`` names the operation in messages ("one request", "one index download").
    """

    seconds: float
    expires_at: float  # time.monotonic() when it is over
    what: str = "one request"

    @classmethod
    def start(cls, seconds: float, what: str = "one request") -> Budget:
        return cls(seconds, time.monotonic() + seconds, what)


class DeadlineExceeded(requests.exceptions.Timeout):
    """A request's :class:`Budget` ran out (the watchdog shut its connection down)."""

    def __init__(self, budget: Budget) -> None:
        super().__init__(f"the deadline of {budget.seconds:g} s for {budget.what} passed")
        self.budget = budget


class _Watch:
    """One request under the watchdog: the connections and sockets it used, shut at expiry."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.fired = False
        self.done = False
        self.connections: list[Any] = []
        self.sockets: list[Any] = []

    def fire(self) -> None:
        if self.done:
            return
        self.fired = True
        for connection in list(self.connections):
            # A connection handed on to a later request (pooled) belongs to that one now.
            if getattr(connection, "_wharf_watch", None) is self:
                _shutdown(getattr(connection, "sock", None))
        for sock in list(self.sockets):
            _shutdown(sock)


def _shutdown(sock: Any) -> None:
    """Shut a socket down so that a read blocked on it in another thread returns at once.

    The plain socket call, also on a TLS socket: ``SSLSocket.shutdown`` would drop the TLS
    state under a thread still reading through it.
    """
    if sock is None:
        return
    if not isinstance(sock, socket.socket):  # urllib3's TLS-in-TLS wrapper
        sock = getattr(sock, "socket", None)
        if not isinstance(sock, socket.socket):
            return
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


# The request this thread is sending, for the connection classes below to register with.
_current_watch: contextvars.ContextVar[_Watch | None] = contextvars.ContextVar(
    "wharf_http_watch", default=None
)


class _Watchdog:
    """One thread per process that fires watches when their budget runs out."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._heap: list[tuple[float, int, _Watch]] = []
        self._wake = threading.Condition()
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, budget: Budget) -> _Watch:
        watch = _Watch(budget)
        with self._wake:
            heapq.heappush(self._heap, (budget.expires_at, next(self._order), watch))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="wharf-http-deadlines", daemon=True
                )
                self._thread.start()
            # Woken only when this budget ends before the one it sleeps towards: requests
            # with equal budgets (nearly all) cost the watchdog no wake-up, and no CPU.
            if self._heap[0][2] is watch:
                self._wake.notify()
        return watch

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait()
                    continue
                left = self._heap[0][0] - time.monotonic()
                if left > 0:
                    self._wake.wait(left)
                    continue
                watch = heapq.heappop(self._heap)[2]
            watch.fire()


_WATCHDOG = _Watchdog()
# A forked worker (Celery prefork) has no watchdog thread: it starts its own when needed.
os.register_at_fork(after_in_child=_WATCHDOG._reset)


@contextlib.contextmanager
def deadline(seconds: float, what: str = "one request") -> Iterator[_Watch]:
    """Everything this thread sends through :func:`watched_pool_classes` pools in the block
    ends within ``seconds``: past it, the watchdog shuts their sockets down (the watch
    yielded says ``fired``). For clients on urllib3 itself, such as the Kubernetes client."""
    watch = _WATCHDOG.watch(Budget.start(seconds, what))
    token = _current_watch.set(watch)
    try:
        yield watch
    finally:
        watch.done = True
        _current_watch.reset(token)


def watched_pool_classes() -> dict[str, type]:
    """urllib3 pool classes (``PoolManager.pool_classes_by_scheme``) whose connections a
    :func:`deadline` cuts."""
    return _pool_classes(None)


# --- small helpers ----------------------------------------------------------------------

# Retry-After parsing lives with the rest of the rate-limit headers (config/ratelimit.py).
MAX_RETRY_AFTER = ratelimit.MAX_RETRY_AFTER
parse_retry_after = ratelimit.parse_retry_after


DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECT_STATUSES = (301, 302, 303, 307, 308)


def origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of a URL, lower case, the scheme's default port filled in.

    Two URLs are the same origin only when all three are equal (the rule credentials go by).
    A port that is not a number gives ``None``, which equals nothing that has one.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port


def trust_store() -> str:
    """The CA bundle that "Allow only secure connection" verifies against.

    Operators of private networks add their own roots to the system bundle and point
    ``REQUESTS_CA_BUNDLE`` or ``SSL_CERT_FILE`` at it, as for every requests or OpenSSL
    tool; the sessions here ignore the environment (``trust_env=False`` keeps proxies and
    .netrc out), so the two variables are honoured here, once, for every server. Without
    them, certifi's public roots: the same on every host, whatever the OS image ships.
    """
    environ = os.environ
    return environ.get("REQUESTS_CA_BUNDLE") or environ.get("SSL_CERT_FILE") or certifi.where()


def sentence(text: str) -> str:
    """``text`` with its first letter in upper case, to start a message with it."""
    return text[:1].upper() + text[1:]


@functools.cache
def insecure_ssl_context() -> ssl.SSLContext:
    """One unverifying TLS context for "Allow insecure connection", built once.

    With ``verify=False`` urllib3 would build a context and load the system trust store
    for every new connection (tens of ms each) only to ignore it.
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _remove_files(paths: list[str]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    paths.clear()


# --- the session ----------------------------------------------------------------------------


class HttpSession:
    """A ``requests`` session for one server, built from its :class:`Transport`.

    ``host`` ("host[:port]") and ``what`` ("registry", "Helm repository") name the server
    in messages; errors are raised as ``error_class``. Use as a context manager, or call
    :meth:`close` (which also closes the SSH tunnel and removes CA files).
    """

    def __init__(
        self,
        transport: Transport,
        *,
        host: str,
        what: str,
        user_agent: str,
        error_class: type[HttpError] = HttpError,
        max_connections: int | None = None,
        on_rate_limit: Callable[[str, ratelimit.RateLimitReading], None] | None = None,
    ) -> None:
        self.transport = transport
        # Told what each answer says of the rate limit: (host of the request, reading).
        self.on_rate_limit = on_rate_limit
        self.host = host
        self.what = what
        self.error_class = error_class
        self.requests_made = 0  # every HTTP request, token requests and redirects' first hop
        self._count_lock = threading.Lock()  # one session may serve many threads
        self._temp_files: list[str] = []
        self._finalizer = weakref.finalize(self, _remove_files, self._temp_files)
        self._other_host_verify: bool | str | None = None
        self._session = requests.Session()
        # Direct means direct: no proxy or .netrc credentials picked up from the environment.
        self._session.trust_env = False
        self._session.headers["User-Agent"] = user_agent
        self.tunnel: SshTunnel | None = None
        if transport.ssh is not None:
            try:
                self.tunnel = SshTunnel(transport.ssh, timeout=transport.timeout, what=what)
            except TunnelError as exc:
                self._session.close()
                raise self.tunnel_error(exc, host) from None
            # A session dropped without close() must not leave an SSH connection open.
            weakref.finalize(self, self.tunnel.close)
        # ``max_connections`` bounds the connections per host: a request waits for a free
        # one rather than opening more (a sync shares one session across its repositories).
        adapter = _Adapter(
            self.tunnel,
            pool_connections=4,
            pool_maxsize=max_connections or POOL_MAXSIZE,
            pool_block=bool(max_connections),
        )
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        if transport.proxy_url:
            # HTTPS goes through CONNECT (TLS end to end with the server), plain HTTP as
            # absolute-URI requests; both with Proxy-Authorization when credentials are given.
            proxy = transport.proxy_url_with_credentials()
            self._session.proxies = {"http": proxy, "https": proxy}
        try:
            self.verify = self._own_verify()
        except HttpError:
            self.close()
            raise

    def __enter__(self) -> HttpSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<HttpSession {self.what} {self.host}>"

    def close(self) -> None:
        self._session.close()
        if self.tunnel is not None:
            self.tunnel.close()
        self._finalizer()

    # --- TLS ---------------------------------------------------------------------------

    def _own_verify(self) -> bool | str:
        tls = self.transport.tls
        if tls == TLS_INSECURE:
            return False
        if tls == TLS_CA:
            if not self.transport.ca_pem.strip():
                raise self.error_class(
                    f"{SECURE_WITH_CA_LABEL} is chosen for {self.host} but no CA certificate "
                    "was given.",
                    kind=HttpError.TLS,
                    host=self.host,
                )
            return self._private_file(self.transport.ca_pem)
        return trust_store()

    def verify_for(self, host: str) -> bool | str:
        """How to verify ``host``: as the server itself, or (another host) also public roots.

        A service on another host (a registry's token service, a CDN) usually has a public
        certificate, so with a private CA it is checked against the CA *and* the public roots.
        """
        if self.transport.tls != TLS_CA or host == self.host:
            return self.verify
        if self._other_host_verify is None:
            with open(trust_store(), encoding="utf-8") as public_roots:
                bundle = self.transport.ca_pem.strip() + "\n" + public_roots.read()
            self._other_host_verify = self._private_file(bundle)
        return self._other_host_verify

    def _private_file(self, content: str) -> str:
        fd, path = tempfile.mkstemp(prefix="wharf-ca-", suffix=".pem")  # mode 0600
        self._temp_files.append(path)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        return path

    # --- sending -----------------------------------------------------------------------

    def send(
        self,
        method: str,
        url: str,
        *,
        verify: bool | str | None = None,
        budget: Budget | None = None,
        **kw: Any,
    ) -> requests.Response:
        """One request; ``requests`` exceptions are raised as they are (see :meth:`request`).

        It ends by ``budget`` (default: the transport's deadline from now), headers and
        body included: a streamed body read with :meth:`read_limited` is still under it.
        Past it, :class:`DeadlineExceeded` is raised. The tunnel's own failures and host
        names that are not valid are raised as ``error_class`` already: there is nothing a
        caller could retry differently.

        Every answer's rate-limit headers go to ``on_rate_limit``. An answer that says
        "too many requests" (429, or 503 with ``Retry-After``) is asked again after its
        ``Retry-After`` (or a doubling backoff) plus jitter, at most three times, and only
        while that still fits in ``budget``; otherwise it is returned as it is.
        """
        verify = self.verify if verify is None else verify
        timeout = self.transport.timeout
        kw.setdefault("timeout", (timeout, timeout))
        budget = budget or Budget.start(self.transport.deadline)
        attempt = 0
        while True:
            response = self._send_once(method, url, verify, budget, **kw)
            reading = ratelimit.read_rate_limit(response.headers, response.status_code)
            if reading is None:
                return response
            self._observe(url, reading)
            attempt += 1
            wait = ratelimit.retry_wait(reading, attempt)
            if not _resendable(kw) or not ratelimit.worth_retrying(
                reading, attempt, wait, budget.expires_at
            ):
                return response
            _discard(response)
            time.sleep(wait)

    def _observe(self, url: str, reading: ratelimit.RateLimitReading) -> None:
        if self.on_rate_limit is None:
            return
        try:
            self.on_rate_limit(urlsplit(url).netloc or self.host, reading)
        except Exception:  # what we note about a budget never breaks the request itself
            log.warning("Could not note the rate limit of %s", self.host, exc_info=True)

    def _send_once(
        self, method: str, url: str, verify: bool | str, budget: Budget, **kw: Any
    ) -> requests.Response:
        with self._count_lock:
            self.requests_made += 1
        tally = _current_tally.get()
        if tally is not None:
            tally.add()
        watch = _WATCHDOG.watch(budget)
        token = _current_watch.set(watch)
        try:
            response = self._send(method, url, verify, **kw)
        except requests.exceptions.RequestException:
            watch.done = True
            metrics.request_done(self.host, url, None, None)
            if watch.fired:
                raise DeadlineExceeded(budget) from None
            raise
        except BaseException:
            watch.done = True
            metrics.request_done(self.host, url, None, None)
            raise
        finally:
            _current_watch.reset(token)
        status = response.status_code
        metrics.request_done(
            self.host,
            url,
            status,
            parse_retry_after(response.headers.get("Retry-After"))
            if status in (429, 503)
            else None,
        )
        if kw.get("stream"):
            response._wharf_watch = watch  # type: ignore[attr-defined]  # read_limited ends it
        else:
            watch.done = True
            if watch.fired:  # a body read until the connection closed, cut by the watchdog
                response.close()
                raise DeadlineExceeded(budget)
        return response

    def _send(self, method: str, url: str, verify: bool | str, **kw: Any) -> requests.Response:
        try:
            # Plain http:// straight to the server has no certificate to warn about: no
            # process-wide filter to set and reset for each of its requests.
            plain = url.startswith("http://") and not self.transport.proxy_url
            if verify is False and not plain:
                # Only this session's unverified requests are silenced, not the process's.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", InsecureRequestWarning)
                    return self._request(method, url, verify=False, **kw)
            return self._request(method, url, verify=verify, **kw)
        except TunnelError as exc:
            # Raised from inside urllib3 when the tunnel cannot give it a socket.
            raise self.tunnel_error(exc, urlsplit(url).netloc) from None
        except (LocationParseError, UnicodeError):
            # A host name with an empty or over-long label; urllib3's message may quote the
            # proxy URL, credentials included, so it is not repeated.
            host = urlsplit(url).netloc or self.host
            proxy = self.transport.proxy_url
            where = f" or the proxy {self.transport.proxy_address}" if proxy else ""
            raise self.error_class(
                f"{host}{where} is not a valid host name. Check the {self.what} URL"
                f"{' and the proxy URL' if where else ''}.",
                kind=HttpError.UNREACHABLE,
                host=host,
            ) from None

    # What _request sends itself; anything else goes through Session.request.
    _FAST_KWARGS = frozenset(
        {"headers", "params", "data", "auth", "stream", "timeout", "allow_redirects"}
    )

    def _request(self, method: str, url: str, *, verify: bool | str, **kw: Any) -> Any:
        """``Session.request`` without its per-request merging of session settings, which
        costs about as much CPU as the rest of a request: this session's settings never
        change (no params, auth, hooks or environment; its headers and proxies are fixed),
        so the request is prepared with them directly. ``Session.send`` still does the rest
        (cookies, redirects, hooks, the adapter)."""
        if not self._FAST_KWARGS.issuperset(kw):
            return self._session.request(method, url, verify=verify, **kw)
        session = self._session
        headers = requests.structures.CaseInsensitiveDict(session.headers)
        headers.update(kw.get("headers") or {})
        prepared = requests.PreparedRequest()
        prepared.prepare(
            method=method.upper(),
            url=url,
            headers=headers,
            data=kw.get("data") or {},
            # None, not {}, when there are none: requests then skips encoding them (two
            # runtime Protocol isinstance checks, a few per cent of a request's CPU).
            params=kw.get("params") or None,
            auth=kw.get("auth"),
            cookies=session.cookies,
        )
        return session.send(
            prepared,
            stream=kw.get("stream", False),
            verify=verify,
            proxies=session.proxies,
            cert=None,
            timeout=kw.get("timeout"),
            allow_redirects=kw.get("allow_redirects", True),
        )

    def request(
        self,
        method: str,
        url: str,
        *,
        host: str = "",
        what: str = "",
        **kw: Any,
    ) -> requests.Response:
        """:meth:`send`, with every failure (and a proxy's refusal) raised as ``error_class``."""
        host = host or urlsplit(url).netloc or self.host
        try:
            response = self.send(method, url, **kw)
        except requests.exceptions.RequestException as exc:
            raise self.error_for(exc, host=host, what=what) from None
        return self.check_proxy_answer(response, host)

    def check_proxy_answer(self, response: requests.Response, host: str) -> requests.Response:
        """A plain-HTTP request through a proxy gets the proxy's own refusals as responses."""
        if not self.transport.proxy_url:
            return response
        # Some proxies say 401 instead of 407: with Proxy-Authenticate, or (tinyproxy, for
        # credentials it rejects) with its own WWW-Authenticate, told apart from the server's
        # 401 by the proxy's name in Server (a proxied answer keeps the server's own).
        proxy_login = response.status_code == 401 and (
            "Proxy-Authenticate" in response.headers
            or response.headers.get("Server", "").lower().startswith("tinyproxy")
        )
        if response.status_code != 407 and not proxy_login:
            return response
        response.close()
        raise self.proxy_auth_error(host)

    # --- reading -----------------------------------------------------------------------

    def read_limited(
        self, response: requests.Response, max_bytes: int, what: str, *, host: str = ""
    ) -> bytes:
        """The body of a streamed response, refused past ``max_bytes`` (declared or counted)."""
        host = host or self.host
        watch: _Watch | None = getattr(response, "_wharf_watch", None)
        try:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise self.error_class(
                    f"{sentence(what)} is {int(declared):,} bytes, more than the limit of "
                    f"{max_bytes:,}.",
                    kind=HttpError.CONTENT,
                    host=host,
                )
            chunks, size = [], 0
            try:
                for chunk in response.iter_content(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise self.error_class(
                            f"{sentence(what)} is larger than the limit of {max_bytes:,} bytes.",
                            kind=HttpError.CONTENT,
                            host=host,
                        )
                    chunks.append(chunk)
            except requests.exceptions.RequestException as exc:
                cut = watch is not None and watch.fired
                failure = DeadlineExceeded(watch.budget) if cut and watch else exc
                raise self.error_for(failure, host=host) from None
            if watch is not None and watch.fired:
                # A body read until the connection closed looks complete when cut: it is not.
                raise self.error_for(DeadlineExceeded(watch.budget), host=host)
            return b"".join(chunks)
        finally:
            if watch is not None:
                watch.done = True

    # --- errors ------------------------------------------------------------------------

    def tunnel_error(self, exc: TunnelError, host: str) -> HttpError:
        kind = (
            HttpError.UNREACHABLE
            if exc.cause in (TunnelError.SSH_UNREACHABLE, TunnelError.FORWARD)
            else HttpError.AUTH
        )
        return self.error_class(str(exc), kind=kind, host=host, cause=exc.cause)

    def error_for(
        self, exc: requests.exceptions.RequestException, *, host: str = "", what: str = ""
    ) -> HttpError:
        """A ``requests`` failure as ``error_class``, with a message that says what to do."""
        host = host or self.host
        what = what or self.what
        tls = self.transport.tls
        detail = str(exc)
        lowered = detail.lower()
        error = self.error_class
        if isinstance(exc, requests.exceptions.SSLError):
            if "certificate_verify_failed" in lowered or "certificate verify failed" in lowered:
                reason = _verify_failure_reason(lowered)
                if tls == TLS_CA:
                    advice = (
                        "Check that the CA certificate given is the one that issued the "
                        f"{what}'s certificate, or choose “{ALLOW_INSECURE_LABEL}”."
                    )
                else:
                    advice = (
                        f"If it uses a private CA, choose “{SECURE_WITH_CA_LABEL}” and paste the "
                        f"CA certificate, or choose “{ALLOW_INSECURE_LABEL}”."
                    )
                return error(
                    f"The TLS certificate of {host} could not be verified ({reason}). {advice}",
                    kind=HttpError.TLS,
                    host=host,
                )
            if tls == TLS_CA and _is_unusable_ca_file(lowered):
                return error(
                    f"The CA certificate given for {host} could not be loaded. Paste the PEM "
                    "block, including the BEGIN/END CERTIFICATE lines.",
                    kind=HttpError.TLS,
                    host=host,
                )
            if tls == TLS_INSECURE:  # plain HTTP was tried too (or the route is TLS only)
                advice = f"check the URL and port of the {what}"
            else:
                advice = f"if the {what} serves plain HTTP, choose “{ALLOW_INSECURE_LABEL}”"
            return error(
                f"The TLS handshake with {host} failed; {advice}.",
                kind=HttpError.TLS,
                host=host,
            )
        if isinstance(exc, requests.exceptions.TooManyRedirects):
            return error(
                f"The {what} at {host} sent the request round a redirect loop (more than "
                f"{self._session.max_redirects} redirects). Check the URL; a server or proxy "
                "that redirects to itself needs fixing there.",
                kind=HttpError.PROTOCOL,
                host=host,
            )
        if isinstance(exc, DeadlineExceeded):
            budget = exc.budget
            return error(
                f"The {what} at {host} did not finish answering within {budget.seconds:g} "
                f"seconds, the limit for {budget.what}, so Wharf gave up on it. Check the "
                "server and the connection method (proxy or SSH tunnel); the limit is a setting.",
                kind=HttpError.UNREACHABLE,
                host=host,
            )
        if isinstance(exc, requests.exceptions.Timeout):
            return error(
                f"The {what} at {host} did not answer within {self.transport.timeout:g} seconds. "
                "Check the URL, the firewall, or the connection method (proxy or SSH tunnel).",
                kind=HttpError.UNREACHABLE,
                host=host,
            )
        if isinstance(exc, requests.exceptions.ProxyError):
            return self._proxy_error(lowered, host, what)
        if isinstance(exc, requests.exceptions.ConnectionError):
            if "resolve" in lowered or "name or service not known" in lowered:
                reason = "the host name could not be resolved"
            elif "refused" in lowered:
                reason = "the connection was refused"
            elif "reset" in lowered or "aborted" in lowered:
                reason = "the connection was closed"
            else:
                reason = "the connection failed"
            return error(
                f"Could not reach the {what} at {host}: {reason}. Check the URL and port, and "
                "that the dashboard's network can reach it.",
                kind=HttpError.UNREACHABLE,
                host=host,
            )
        if isinstance(exc, requests.exceptions.ChunkedEncodingError):
            return error(
                f"The {what} at {host} broke off its answer part-way. Try again; if it keeps "
                "happening, check the server and the connection method (proxy or SSH tunnel).",
                kind=HttpError.UNREACHABLE,
                host=host,
            )
        return error(
            f"The request to the {what} at {host} failed ({type(exc).__name__}).",
            kind=HttpError.PROTOCOL,
            host=host,
        )

    def proxy_auth_error(self, host: str) -> HttpError:
        if self.transport.has_proxy_credentials:
            advice = "rejected the proxy username and password. Check them"
        else:
            advice = "requires a login. Enter the proxy username and password"
        return self.error_class(
            f"The proxy {self.transport.proxy_address} {advice} (HTTP 407 Proxy Authentication "
            "Required).",
            kind=HttpError.AUTH,
            host=host,
            cause=HttpError.PROXY_AUTH,
        )

    def _proxy_error(self, lowered: str, host: str, what: str) -> HttpError:
        proxy = self.transport.proxy_address
        if re.search(r"tunnel connection failed: 40[17]\b", lowered):
            return self.proxy_auth_error(host)
        status = re.search(r"tunnel connection failed: (\d{3})", lowered)
        if status:
            # The proxy answered CONNECT, but not with 200: it would not or could not go on.
            code = status.group(1)
            if code in ("403", "405"):
                reason = (
                    f"refused to connect to it (HTTP {code}): ask the proxy's administrator to "
                    "allow CONNECT to this host and port"
                )
            else:
                reason = (
                    f"could not connect to it (HTTP {code}): check the {what} URL and that the "
                    f"proxy can reach the {what}"
                )
            return self.error_class(
                f"The proxy {proxy} {reason}, for the {what} at {host}.",
                kind=HttpError.UNREACHABLE,
                host=host,
                cause=HttpError.PROXY_UPSTREAM,
            )
        if "refused" in lowered:
            reason = "the connection was refused"
        elif "resolve" in lowered or "name or service not known" in lowered:
            reason = "its host name could not be resolved"
        elif "timed out" in lowered:
            reason = f"it did not answer within {self.transport.timeout:g} seconds"
        else:
            reason = "the connection failed"
        return self.error_class(
            f"The proxy {proxy} refused or could not take the connection to the {what} at "
            f"{host}: {reason}. Check the proxy URL and that the proxy is running.",
            kind=HttpError.UNREACHABLE,
            host=host,
            cause=HttpError.PROXY_REFUSED,
        )


def _resendable(kw: dict[str, Any]) -> bool:
    """Whether a request can be sent again as it was: not with a body read from a stream."""
    data = kw.get("data")
    return not (hasattr(data, "read") or kw.get("files"))


def _discard(response: requests.Response) -> None:
    """Let a refused answer go: a small body read (its connection goes back to the pool)."""
    watch: _Watch | None = getattr(response, "_wharf_watch", None)
    with contextlib.suppress(requests.exceptions.RequestException, ValueError, OSError):
        length = int(response.headers.get("Content-Length", "-1"))
        if 0 <= length <= 64 * 1024:
            response.content  # noqa: B018  # read, so close() hands the connection back
    response.close()
    if watch is not None:
        watch.done = True


def _verify_failure_reason(lowered: str) -> str:
    if "self-signed" in lowered or "self signed" in lowered:
        return "self-signed certificate"
    if "unable to get local issuer" in lowered:
        return "issued by an unknown certificate authority"
    if "hostname mismatch" in lowered or "doesn't match" in lowered:
        return "the certificate is for another host name"
    if "expired" in lowered:
        return "the certificate has expired"
    return "certificate verify failed"


def _is_unusable_ca_file(lowered: str) -> bool:
    return "no certificate or crl found" in lowered or "pem lib" in lowered


# --- connections: direct, via a proxy, or channels of an SSH tunnel ---------------------------
#
# urllib3 keeps doing everything it does on a direct connection (pooling, TLS with SNI and
# certificate checks against the server's real host name, Host headers); over a tunnel only
# the socket under each connection comes from the tunnel instead of a TCP connect.


def _under_watch(connection: Any) -> None:
    """Put ``connection`` under the watch of the request this thread is sending."""
    watch = _current_watch.get()
    if watch is None:
        return
    if watch.fired:
        raise OSError("the request's deadline has passed")  # urllib3 wraps it, send() tells
    connection._wharf_watch = watch
    watch.connections.append(connection)


def _pool_classes(tunnel: SshTunnel | None) -> dict[str, type]:
    def new_socket(connection: urllib3.connection.HTTPConnection, default: Callable) -> Any:
        if tunnel is None:
            sock = default()
        else:
            sock = tunnel.open_socket(connection._dns_host, connection.port)
            if isinstance(connection.timeout, int | float):
                sock.settimeout(connection.timeout)
        watch = _current_watch.get()
        if watch is not None:
            # Until TLS wraps it, the connection's socket is this one (a TLS handshake
            # that drips is cut too).
            watch.sockets.append(sock)
            if watch.fired:
                _shutdown(sock)
        return sock

    class WharfHTTPConnection(urllib3.connection.HTTPConnection):
        def _new_conn(self) -> Any:
            return new_socket(self, super()._new_conn)

        def connect(self) -> None:
            _under_watch(self)
            super().connect()

        def request(self, *args: Any, **kwargs: Any) -> None:
            _under_watch(self)  # a pooled connection serves a new request, under its watch
            super().request(*args, **kwargs)

    class WharfHTTPSConnection(urllib3.connection.HTTPSConnection):
        def _new_conn(self) -> Any:
            return new_socket(self, super()._new_conn)

        def connect(self) -> None:
            _under_watch(self)
            super().connect()

        def request(self, *args: Any, **kwargs: Any) -> None:
            _under_watch(self)
            super().request(*args, **kwargs)

    class WharfHTTPPool(urllib3.connectionpool.HTTPConnectionPool):
        ConnectionCls = WharfHTTPConnection

    class WharfHTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
        ConnectionCls = WharfHTTPSConnection

    return {"http": WharfHTTPPool, "https": WharfHTTPSPool}


class _Adapter(requests.adapters.HTTPAdapter):
    """An adapter whose connections are Wharf's (maybe channels of a tunnel)."""

    def __init__(self, tunnel: SshTunnel | None, **kw: Any) -> None:
        self._pool_classes = _pool_classes(tunnel)
        super().__init__(**kw)

    def init_poolmanager(self, *args: Any, **kw: Any) -> None:
        super().init_poolmanager(*args, **kw)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = self._pool_classes
        return manager

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> Any:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        if verify is False:
            # Only unverified requests get the shared unverifying context (urllib3 sets the
            # verify mode on the context it is given, so a verified pool must not share it).
            pool_kwargs["ssl_context"] = insecure_ssl_context()
        return host_params, pool_kwargs
