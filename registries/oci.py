"""The one place that talks to a container/OCI registry over HTTP.

Everything registry-shaped goes through :class:`RegistryClient`: the TLS mode
(system trust store, a private CA, or not verified with a plain-HTTP fallback),
the ``/v2/`` authentication dance (Basic, or Bearer tokens from the registry's
token service, cached per scope), timeouts, and turning every failure into one
:class:`RegistryError` whose message a user can act on.

Framework-free on purpose: callers build a :class:`Connection` from their own
models and settings. Credentials and tokens never appear in reprs, logs or
exception messages.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import os
import re
import ssl
import tempfile
import threading
import time
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import certifi
import requests
import requests.adapters
import urllib3.connection
import urllib3.connectionpool
from urllib3.exceptions import InsecureRequestWarning, LocationParseError

from registries.tunnel import SshTarget, SshTunnel, TunnelError

TLS_SECURE = "secure"  # verify with the system/certifi trust store
TLS_CA = "ca"  # verify against the given CA certificate PEM only
TLS_INSECURE = "insecure"  # TLS not verified; if the server speaks plain HTTP, fall back to http://
TLS_MODES = (TLS_SECURE, TLS_CA, TLS_INSECURE)

# What the dashboard's form calls the TLS choices, so messages point at the right control.
SECURE_WITH_CA_LABEL = "Secure with CA certificate"
ALLOW_INSECURE_LABEL = "Allow insecure connection"

USER_AGENT = "wharf-registry-client/1"
# A token is thrown away this long before the registry would reject it.
TOKEN_EXPIRY_MARGIN = 10.0
# The distribution token spec says a token without expires_in lives 60 seconds.
DEFAULT_TOKEN_LIFETIME = 60.0


@dataclass(frozen=True)
class Connection:
    """How to reach one registry's API. ``host`` is "host[:port]" (a path after it is ignored)."""

    host: str
    username: str = ""  # empty = anonymous
    password: str = field(default="", repr=False)
    tls: str = TLS_SECURE
    ca_pem: str = field(default="", repr=False)
    timeout: float = 10.0
    # "http://proxy:port" for the "via Proxy" connection method (credentials go in the two
    # fields below, never in the URL); empty = direct.
    proxy_url: str = field(default="", repr=False)
    proxy_username: str = ""
    proxy_password: str = field(default="", repr=False)
    # The "via SSH Tunnel" connection method: every registry connection is a channel of it.
    ssh: SshTarget | None = None

    def __post_init__(self) -> None:
        if self.tls not in TLS_MODES:
            raise ValueError(f"Unknown TLS mode {self.tls!r}; expected one of {TLS_MODES}.")
        if self.proxy_url and self.ssh is not None:
            raise ValueError("A connection goes through a proxy or an SSH tunnel, not both.")

    @property
    def api_host(self) -> str:
        """The "host[:port]" part, without a scheme or repository path someone left on it."""
        host = self.host.strip()
        if "://" in host:
            host = host.split("://", 1)[1]
        return host.split("/", 1)[0]

    @property
    def has_credentials(self) -> bool:
        return bool(self.username or self.password)

    @property
    def proxy_address(self) -> str:
        """The proxy's "host:port", for messages (never with credentials)."""
        parts = urlsplit(self.proxy_url)
        return parts.netloc.rsplit("@", 1)[-1] or self.proxy_url

    def proxy_url_with_credentials(self) -> str:
        """The proxy URL requests wants (``Proxy-Authorization`` comes from its user part).

        Built only here, for the session; never stored, shown or logged.
        """
        if not self.proxy_url or not (self.proxy_username or self.proxy_password):
            return self.proxy_url
        parts = urlsplit(self.proxy_url)
        userinfo = f"{quote(self.proxy_username, safe='')}:{quote(self.proxy_password, safe='')}"
        return urlunsplit(parts._replace(netloc=f"{userinfo}@{self.proxy_address}"))


class RegistryError(Exception):
    """One error type for the registry world; ``str(e)`` is a message a user can act on."""

    UNREACHABLE = "unreachable"
    TLS = "tls"
    AUTH = "auth"
    PROTOCOL = "protocol"

    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    CONTENT = "content"  # the registry sent something that is not what it claims to be

    # ``cause``: which hop of the connection method failed. ``kind`` stays one of the broad
    # kinds above (unreachable, auth), which is what callers decide on (e.g. stop a sync).
    PROXY_REFUSED = "proxy_refused"  # the proxy could not be reached, or refused the connection
    PROXY_AUTH = "proxy_auth"  # the proxy wants other credentials (HTTP 407)
    PROXY_UPSTREAM = "proxy_upstream"  # the proxy could not or would not reach the registry
    SSH_UNREACHABLE = TunnelError.SSH_UNREACHABLE
    SSH_AUTH = TunnelError.SSH_AUTH
    HOST_KEY = TunnelError.HOST_KEY
    TUNNEL_FORWARD = TunnelError.FORWARD  # the registry is unreachable from the tunnel's end
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
        return f"RegistryError({str(self)!r}, kind={self.kind!r})"


@dataclass
class PingResult:
    base_url: str  # e.g. "https://127.0.0.1:5000", or "http://…" after the insecure fallback
    auth_scheme: str  # "none", "basic" or "bearer"
    api_version: str  # the Docker-Distribution-API-Version header, or ""


@dataclass(frozen=True)
class Manifest:
    digest: str  # sha256:… of the bytes the registry sent
    media_type: str
    body: dict
    size: int


MANIFEST_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)
MAX_MANIFEST_BYTES = 4 * 2**20  # the distribution spec's own recommended limit
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


@dataclass
class _Challenge:
    scheme: str  # lower case: "basic", "bearer", …
    params: dict[str, str]


_CHALLENGE_PARAM = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')


def parse_challenge(header: str) -> _Challenge | None:
    """Parse a ``WWW-Authenticate`` header such as ``Bearer realm="…",service="…"``."""
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params = {
        name.lower(): (quoted if quoted else bare).replace('\\"', '"')
        for name, quoted, bare in _CHALLENGE_PARAM.findall(rest)
    }
    return _Challenge(scheme.lower(), params)


def error_message(response: requests.Response, limit: int = 300) -> str:
    """The registry's own words about a failed response, for quoting to the user.

    Understands the OCI error body (``{"errors": [{"code", "message"}]}``) and the
    shapes token services use (``details``, ``error_description``, ``message``).
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    messages: list[str] = []
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list):
            for error in errors:
                if isinstance(error, dict):
                    text = error.get("message") or error.get("code")
                    if isinstance(text, str) and text:
                        messages.append(text)
        if not messages:
            for key in ("details", "detail", "error_description", "message", "error"):
                value = body.get(key)
                if isinstance(value, str) and value:
                    messages.append(value)
                    break
    elif body is None and "html" not in response.headers.get("Content-Type", ""):
        text = " ".join(response.text.split())
        if text:
            messages.append(text)
    message = "; ".join(dict.fromkeys(m.strip().rstrip(".") for m in messages))
    if len(message) > limit:
        message = message[: limit - 1] + "…"
    return message or _status_line(response)


def describe_response(response: requests.Response) -> str:
    """``HTTP 404 Not Found (repository name not known to registry)``, for error messages."""
    status = _status_line(response)
    message = error_message(response)
    return status if message == status else f"{status} ({message})"


def _status_line(response: requests.Response) -> str:
    return f"HTTP {response.status_code} {response.reason or ''}".strip()


@dataclass
class _RouteMemory:
    """What earlier clients learned about one registry route, kept for the process.

    Each sync run opens a new client; without this, every run would probe ``https://``
    on a plain-HTTP registry and take a 401 before sending Basic credentials again.
    """

    plain_http: bool = False
    auth_scheme: str = "none"


_ROUTES: dict[tuple, _RouteMemory] = {}
_ROUTES_LOCK = threading.Lock()


def _route_key(conn: Connection) -> tuple:
    ssh = (conn.ssh.host, conn.ssh.port) if conn.ssh is not None else None
    return (conn.api_host, conn.tls, conn.proxy_url, ssh)


def _remember(conn: Connection, **learned: Any) -> None:
    with _ROUTES_LOCK:
        memory = _ROUTES.setdefault(_route_key(conn), _RouteMemory())
        for name, value in learned.items():
            setattr(memory, name, value)


def _forget(conn: Connection) -> None:
    with _ROUTES_LOCK:
        _ROUTES.pop(_route_key(conn), None)


@functools.cache
def _insecure_ssl_context() -> ssl.SSLContext:
    """One unverifying TLS context for "Allow insecure connection", built once.

    With ``verify=False`` urllib3 would build a context and load the system trust store
    for every new connection (tens of ms each) only to ignore it.
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class RegistryClient:
    """A session with one registry. Use as a context manager, or call :meth:`close`."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.host = conn.api_host
        self.base_url = f"https://{self.host}"
        self._session = requests.Session()
        # Direct means direct: no proxy or .netrc credentials picked up from the environment.
        self._session.trust_env = False
        self._session.headers["User-Agent"] = USER_AGENT
        self.tunnel: SshTunnel | None = None
        if conn.ssh is not None:
            try:
                self.tunnel = SshTunnel(conn.ssh, timeout=conn.timeout)
            except TunnelError as exc:
                self._session.close()
                raise _tunnel_error(exc, self.host) from None
            # A client dropped without close() must not leave an SSH connection open.
            weakref.finalize(self, self.tunnel.close)
        # Sync reads many manifests and blobs at once from a few threads.
        adapter = (
            _TunnelAdapter(self.tunnel, pool_connections=4, pool_maxsize=32)
            if self.tunnel is not None
            else requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=32)
        )
        if conn.tls == TLS_INSECURE:
            adapter.poolmanager.connection_pool_kw["ssl_context"] = _insecure_ssl_context()
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self.requests_made = 0  # every HTTP request, token requests included
        if conn.proxy_url:
            # HTTPS goes through CONNECT (TLS end to end with the registry), plain HTTP as
            # absolute-URI requests; both with Proxy-Authorization when credentials are given.
            proxy = conn.proxy_url_with_credentials()
            self._session.proxies = {"http": proxy, "https": proxy}
        self._auth_scheme = "none"  # the scheme the registry asked for, once known
        memory = _ROUTES.get(_route_key(conn))
        self._from_memory = memory is not None
        if memory is not None:
            if memory.plain_http and conn.tls == TLS_INSECURE:
                self.base_url = f"http://{self.host}"
            if memory.auth_scheme == "basic":
                self._auth_scheme = "basic"  # send the credentials with the first request
        self._tokens: dict[str, tuple[str, float]] = {}  # scope -> (token, expires at)
        self._temp_files: list[str] = []
        self._finalizer = weakref.finalize(self, _remove_files, self._temp_files)
        self._realm_verify_cache: Any = None
        try:
            self._verify = self._registry_verify()
        except RegistryError:
            self.close()
            raise

    # --- lifecycle -------------------------------------------------------------

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()
        if self.tunnel is not None:
            self.tunnel.close()
        self._tokens.clear()
        self._finalizer()

    def __repr__(self) -> str:
        return f"<RegistryClient {self.base_url} user={self.conn.username!r}>"

    # --- public API ------------------------------------------------------------

    def ping(self) -> PingResult:
        """``GET /v2/`` with the registry's auth flow: are host, TLS and credentials right?"""
        response = self.request("GET", "/v2/")
        if response.status_code == 403:
            raise self._auth_error(response, rejected=self.conn.has_credentials)
        if response.status_code != 200:
            raise RegistryError(
                f"{self.host} answered GET /v2/ with {describe_response(response)}, so it does not "
                "look like a container registry API. Check the registry URL (the registry host, "
                "not a web page).",
                kind=RegistryError.PROTOCOL,
                host=self.host,
            )
        return PingResult(
            base_url=self.base_url,
            auth_scheme=self._auth_scheme,
            api_version=response.headers.get("Docker-Distribution-API-Version", ""),
        )

    def request(
        self, method: str, path: str, *, scope: str | None = None, **kw: Any
    ) -> requests.Response:
        """Send ``method path`` (e.g. ``GET /v2/<repo>/tags/list``), authenticating as needed.

        A 401 challenge is answered once: Basic with the credentials, Bearer with a token
        for ``scope`` (or the scope the challenge names) from the registry's token service.
        A second 401/403 raises ``RegistryError(kind="auth")``; other statuses are returned
        for the caller to judge. A streamed request body cannot be re-sent after a
        challenge, so :meth:`ping` (or a small GET) first.
        """
        headers = dict(kw.pop("headers", None) or {})
        authorization = self._cached_authorization(scope)
        response = self._send(method, path, headers, authorization, **kw)
        if response.status_code != 401:
            return response

        challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        if challenge is None or challenge.scheme not in ("basic", "bearer"):
            raise RegistryError(
                f"{self.host} asked for authentication the dashboard does not speak "
                f"({response.headers.get('WWW-Authenticate') or 'no WWW-Authenticate header'}).",
                kind=RegistryError.PROTOCOL,
                host=self.host,
            )
        self._auth_scheme = challenge.scheme
        _remember(self.conn, auth_scheme=challenge.scheme)
        if challenge.scheme == "basic":
            if not self.conn.has_credentials:
                raise self._auth_error(response, rejected=False)
            authorization = self._basic_authorization()
        else:
            token_scope = scope if scope is not None else challenge.params.get("scope", "")
            authorization = "Bearer " + self._fetch_token(challenge, token_scope)

        response.close()
        response = self._send(method, path, headers, authorization, **kw)
        if response.status_code in (401, 403):
            raise self._auth_error(response, rejected=self.conn.has_credentials)
        return response

    def get_json(self, path: str, *, scope: str | None = None, **kw: Any) -> Any:
        """GET a JSON document; any status but 200 becomes a ``RegistryError``."""
        response = self.request("GET", path, scope=scope, **kw)
        if response.status_code != 200:
            raise RegistryError(
                f"{self.host} answered GET {path} with {describe_response(response)}.",
                kind=RegistryError.PROTOCOL,
                host=self.host,
            )
        try:
            return response.json()
        except ValueError:
            raise RegistryError(
                f"{self.host} answered GET {path} with something that is not JSON.",
                kind=RegistryError.PROTOCOL,
                host=self.host,
            ) from None

    # --- reading repositories ---------------------------------------------------

    def list_tags(self, repository: str, *, page_size: int = 1000) -> list[str]:
        """Every tag of ``repository``, following the ``Link`` header page by page."""
        scope = f"repository:{repository}:pull"
        path: str | None = f"/v2/{repository}/tags/list?n={page_size}"
        tags: list[str] = []
        seen_pages: set[str] = set()
        while path:
            if path in seen_pages:  # a registry that links a page to itself would loop
                break
            seen_pages.add(path)
            response = self.request("GET", path, scope=scope)
            with response:
                self._check_status(response, f"the tag list of {repository}")
                body = self._json(response, f"the tag list of {repository}", MAX_MANIFEST_BYTES)
            page = body.get("tags") if isinstance(body, dict) else None
            if page is None:
                page = []
            if not isinstance(page, list) or not all(isinstance(t, str) for t in page):
                raise RegistryError(
                    f"{self.host} sent a tag list for {repository} that is not a list of names.",
                    kind=RegistryError.CONTENT,
                    host=self.host,
                )
            tags.extend(page)
            path = self._next_page(response.headers.get("Link", ""))
        return list(dict.fromkeys(tags))

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """The manifest for a tag or digest, checked against its digest."""
        response = self.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            scope=f"repository:{repository}:pull",
            headers={"Accept": MANIFEST_ACCEPT},
            stream=True,
        )
        what = f"the manifest of {repository}:{reference}"
        with response:
            self._check_status(response, what)
            raw = self._read_limited(response, MAX_MANIFEST_BYTES, what)
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        claimed = response.headers.get("Docker-Content-Digest", "")
        if reference.startswith("sha256:") and reference != digest:
            raise RegistryError(
                f"{what} does not match its digest.", kind=RegistryError.CONTENT, host=self.host
            )
        if claimed.startswith("sha256:") and claimed != digest:
            raise RegistryError(
                f"{what} does not match the digest the registry announced ({claimed}).",
                kind=RegistryError.CONTENT,
                host=self.host,
            )
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise RegistryError(
                f"{what} is not a JSON object.", kind=RegistryError.CONTENT, host=self.host
            )
        media_type = body.get("mediaType") or response.headers.get("Content-Type", "")
        return Manifest(digest=digest, media_type=str(media_type), body=body, size=len(raw))

    def manifest_digest(self, repository: str, reference: str) -> str:
        """``HEAD`` a manifest: its digest, without reading it (for a deep resync)."""
        response = self.request(
            "HEAD",
            f"/v2/{repository}/manifests/{reference}",
            scope=f"repository:{repository}:pull",
            headers={"Accept": MANIFEST_ACCEPT},
        )
        with response:
            self._check_status(response, f"the manifest of {repository}:{reference}")
        return response.headers.get("Docker-Content-Digest", "")

    def get_blob(self, repository: str, digest: str, *, max_bytes: int) -> bytes:
        """A blob, at most ``max_bytes``, checked against its sha256 digest."""
        what = f"blob {digest[:19]}… of {repository}"
        if not digest.startswith("sha256:"):
            raise RegistryError(
                f"{what} has an unsupported digest algorithm.",
                kind=RegistryError.CONTENT,
                host=self.host,
            )
        response = self.request(
            "GET",
            f"/v2/{repository}/blobs/{digest}",
            scope=f"repository:{repository}:pull",
            stream=True,
        )
        with response:
            self._check_status(response, what)
            data = self._read_limited(response, max_bytes, what)
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise RegistryError(
                f"{what} does not match its digest.", kind=RegistryError.CONTENT, host=self.host
            )
        return data

    def _check_status(self, response: requests.Response, what: str) -> None:
        status = response.status_code
        if status == 200:
            return
        if status == 404:
            raise RegistryError(
                f"{self.host} has no {what} ({describe_response(response)}).",
                kind=RegistryError.NOT_FOUND,
                host=self.host,
            )
        if status == 403:
            raise self._auth_error(response, rejected=self.conn.has_credentials)
        if status in (429, 503):
            retry_after = _retry_after(response.headers.get("Retry-After"))
            hint = f"; it asked to retry after {retry_after:g} s" if retry_after is not None else ""
            raise RegistryError(
                f"{self.host} is rate limiting ({_status_line(response)}){hint}.",
                kind=RegistryError.RATE_LIMITED,
                host=self.host,
                retry_after=retry_after,
            )
        raise RegistryError(
            f"{self.host} answered {describe_response(response)} for {what}.",
            kind=RegistryError.PROTOCOL,
            host=self.host,
        )

    def _read_limited(self, response: requests.Response, max_bytes: int, what: str) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise RegistryError(
                f"{what} is {int(declared):,} bytes, over the limit of {max_bytes:,}.",
                kind=RegistryError.CONTENT,
                host=self.host,
            )
        chunks, size = [], 0
        try:
            for chunk in response.iter_content(256 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise RegistryError(
                        f"{what} is over the limit of {max_bytes:,} bytes.",
                        kind=RegistryError.CONTENT,
                        host=self.host,
                    )
                chunks.append(chunk)
        except requests.exceptions.RequestException as exc:
            raise self._network_error(exc) from None
        return b"".join(chunks)

    def _json(self, response: requests.Response, what: str, max_bytes: int) -> Any:
        raw = self._read_limited(response, max_bytes, what)
        try:
            return json.loads(raw)
        except ValueError:
            raise RegistryError(
                f"{what} is not JSON.", kind=RegistryError.CONTENT, host=self.host
            ) from None

    def _next_page(self, link: str) -> str | None:
        match = _LINK_NEXT.search(link)
        if not match:
            return None
        target = urlsplit(urljoin(self.base_url + "/", match.group(1)))
        return target.path + (f"?{target.query}" if target.query else "")

    # --- sending ---------------------------------------------------------------

    def _send(
        self, method: str, path: str, headers: dict[str, str], authorization: str, **kw: Any
    ) -> requests.Response:
        if authorization:
            headers = {**headers, "Authorization": authorization}
        kw.setdefault("timeout", (self.conn.timeout, self.conn.timeout))
        try:
            response = self._http(method, self.base_url + path, self._verify, headers=headers, **kw)
        except requests.exceptions.RequestException as exc:
            if self._from_memory and self.base_url.startswith("http://"):
                # What an earlier client learned no longer holds (the registry moved to
                # TLS?): forget it and ask again the long way.
                _forget(self.conn)
                self._from_memory = False
                self.base_url = f"https://{self.host}"
                return self._send(method, path, headers, "", **kw)
            fallback = self._plain_http_fallback(exc)
            if fallback is None:
                raise self._network_error(exc) from None
            first_error = exc
        else:
            if (
                self._from_memory
                and self.base_url.startswith("http://")
                and _tls_port_answer(response)
            ):
                # A TLS port answers plain HTTP with 400: the registry moved to TLS.
                response.close()
                _forget(self.conn)
                self._from_memory = False
                self.base_url = f"https://{self.host}"
                return self._send(method, path, headers, "", **kw)
            return self._check_proxy_answer(response, self.host)
        # "Allow insecure connection" also means plain HTTP: if the same request over http://
        # gets an HTTP answer, the registry speaks plain HTTP; remember that for the session.
        try:
            response = self._http(method, fallback + path, False, headers=headers, **kw)
        except requests.exceptions.RequestException:
            raise self._network_error(first_error) from None
        self.base_url = fallback
        _remember(self.conn, plain_http=True)
        return self._check_proxy_answer(response, self.host)

    def _http(self, method: str, url: str, verify: Any, **kw: Any) -> requests.Response:
        self.requests_made += 1
        try:
            if verify is False:
                # Only this session's unverified requests are silenced, not the process's.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", InsecureRequestWarning)
                    return self._session.request(method, url, verify=False, **kw)
            return self._session.request(method, url, verify=verify, **kw)
        except TunnelError as exc:
            # Raised from inside urllib3 when the tunnel cannot give it a socket.
            raise _tunnel_error(exc, urlsplit(url).netloc) from None
        except (LocationParseError, UnicodeError):
            # A host name with an empty or over-long label; urllib3's message may quote the
            # proxy URL, credentials included, so it is not repeated.
            where = f" or the proxy {self.conn.proxy_address}" if self.conn.proxy_url else ""
            raise RegistryError(
                f"{self.host}{where} is not a valid host name. Check the registry URL"
                f"{' and the proxy URL' if where else ''}.",
                kind=RegistryError.UNREACHABLE,
                host=self.host,
            ) from None

    def _check_proxy_answer(self, response: requests.Response, host: str) -> requests.Response:
        """A plain-HTTP request through a proxy gets the proxy's own refusals as responses."""
        if not self.conn.proxy_url:
            return response
        # Some proxies (tinyproxy) say 401 with Proxy-Authenticate instead of 407.
        proxy_login = response.status_code == 401 and "Proxy-Authenticate" in response.headers
        if response.status_code != 407 and not proxy_login:
            return response
        response.close()
        raise self._proxy_auth_error(host)

    def _proxy_auth_error(self, host: str) -> RegistryError:
        if self.conn.proxy_username or self.conn.proxy_password:
            advice = "rejected the proxy username and password. Check them"
        else:
            advice = "requires a login. Enter the proxy username and password"
        return RegistryError(
            f"The proxy {self.conn.proxy_address} {advice} (HTTP 407 Proxy Authentication "
            "Required).",
            kind=RegistryError.AUTH,
            host=host,
            cause=RegistryError.PROXY_AUTH,
        )

    def _plain_http_fallback(self, exc: requests.exceptions.RequestException) -> str | None:
        if self.conn.tls != TLS_INSECURE or not self.base_url.startswith("https://"):
            return None
        if isinstance(exc, requests.exceptions.SSLError):
            return "http://" + self.host
        # No port given and nothing listens on 443: the registry may be on port 80.
        has_port = re.search(r":\d+$", self.host) is not None
        if (
            not has_port
            and isinstance(exc, requests.exceptions.ConnectionError)
            and not isinstance(exc, requests.exceptions.Timeout)
            and "refused" in str(exc).lower()
        ):
            return "http://" + self.host
        return None

    # --- authentication --------------------------------------------------------

    def _basic_authorization(self) -> str:
        pair = f"{self.conn.username}:{self.conn.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def _cached_authorization(self, scope: str | None) -> str:
        if self._auth_scheme == "basic" and self.conn.has_credentials:
            return self._basic_authorization()
        if self._auth_scheme == "bearer":
            cached = self._tokens.get(scope or "")
            if cached and cached[1] > time.monotonic():
                return "Bearer " + cached[0]
        return ""

    def _fetch_token(self, challenge: _Challenge, scope: str) -> str:
        realm = challenge.params.get("realm", "")
        if not realm:
            raise RegistryError(
                f"{self.host} asked for a Bearer token but named no token service (realm).",
                kind=RegistryError.PROTOCOL,
                host=self.host,
            )
        realm = urljoin(self.base_url + "/", realm)
        realm_host = urlsplit(realm).netloc
        params = {}
        if challenge.params.get("service"):
            params["service"] = challenge.params["service"]
        if scope:
            params["scope"] = scope
        auth = (self.conn.username, self.conn.password) if self.conn.has_credentials else None
        try:
            response = self._http(
                "GET",
                realm,
                self._realm_verify(realm_host),
                params=params,
                auth=auth,
                timeout=(self.conn.timeout, self.conn.timeout),
            )
        except requests.exceptions.RequestException as exc:
            raise self._network_error(exc, host=realm_host, what="token service") from None
        self._check_proxy_answer(response, realm_host)
        if response.status_code in (401, 403):
            if self.conn.has_credentials:
                message = (
                    f"The token service of {self.host} ({realm_host}) rejected the username or "
                    f"password: {error_message(response)}."
                )
            else:
                message = (
                    f"The token service of {self.host} ({realm_host}) refused anonymous access "
                    f"({error_message(response)}). Enter a username and password."
                )
            raise RegistryError(message, kind=RegistryError.AUTH, host=self.host)
        if response.status_code != 200:
            raise RegistryError(
                f"The token service of {self.host} ({realm_host}) answered "
                f"{describe_response(response)}.",
                kind=RegistryError.PROTOCOL,
                host=self.host,
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryError(
                f"The token service of {self.host} ({realm_host}) answered without a token.",
                kind=RegistryError.PROTOCOL,
                host=self.host,
            )
        try:
            lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        except (TypeError, ValueError):
            lifetime = DEFAULT_TOKEN_LIFETIME
        expires = time.monotonic() + max(lifetime - TOKEN_EXPIRY_MARGIN, 1.0)
        self._tokens[scope] = (token, expires)
        return token

    def _auth_error(self, response: requests.Response, *, rejected: bool) -> RegistryError:
        reason = error_message(response)
        if not rejected:
            message = (
                f"{self.host} requires credentials ({reason}). "
                "Make it a private registry and enter a username and password."
            )
        elif response.status_code == 403:
            message = (
                f"{self.host} accepted the login but denied access: {reason}. "
                "Check the account's permissions on the registry."
            )
        else:
            message = (
                f"{self.host} rejected the credentials: {reason}. "
                "Check the username and password (or token)."
            )
        return RegistryError(message, kind=RegistryError.AUTH, host=self.host)

    # --- TLS -------------------------------------------------------------------

    def _registry_verify(self) -> Any:
        if self.conn.tls == TLS_INSECURE:
            return False
        if self.conn.tls == TLS_CA:
            if not self.conn.ca_pem.strip():
                raise RegistryError(
                    f"{SECURE_WITH_CA_LABEL} is chosen for {self.host} but no CA certificate "
                    "was given.",
                    kind=RegistryError.TLS,
                    host=self.host,
                )
            return self._private_file(self.conn.ca_pem)
        # The system trust store when the operator points us at one, else certifi's.
        return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or True

    def _realm_verify(self, realm_host: str) -> Any:
        # A token service on another host (Docker Hub, cloud registries) usually has a public
        # certificate, so it is checked against the private CA *and* the public roots.
        if self.conn.tls != TLS_CA or realm_host == self.host:
            return self._verify
        if self._realm_verify_cache is None:
            with open(certifi.where(), encoding="utf-8") as public_roots:
                bundle = self.conn.ca_pem.strip() + "\n" + public_roots.read()
            self._realm_verify_cache = self._private_file(bundle)
        return self._realm_verify_cache

    def _private_file(self, content: str) -> str:
        fd, path = tempfile.mkstemp(prefix="wharf-ca-", suffix=".pem")  # mode 0600
        self._temp_files.append(path)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        return path

    # --- errors ----------------------------------------------------------------

    def _network_error(
        self,
        exc: requests.exceptions.RequestException,
        *,
        host: str = "",
        what: str = "registry",
    ) -> RegistryError:
        host = host or self.host
        detail = str(exc)
        lowered = detail.lower()
        if isinstance(exc, requests.exceptions.SSLError):
            if "certificate_verify_failed" in lowered or "certificate verify failed" in lowered:
                reason = _verify_failure_reason(lowered)
                if self.conn.tls == TLS_CA:
                    advice = (
                        "Check that the CA certificate given is the one that issued the "
                        f"registry's certificate, or choose “{ALLOW_INSECURE_LABEL}”."
                    )
                else:
                    advice = (
                        f"If it uses a private CA, choose “{SECURE_WITH_CA_LABEL}” and paste the "
                        f"CA certificate, or choose “{ALLOW_INSECURE_LABEL}”."
                    )
                return RegistryError(
                    f"The TLS certificate of {host} could not be verified ({reason}). {advice}",
                    kind=RegistryError.TLS,
                    host=host,
                )
            if self.conn.tls == TLS_CA and _is_unusable_ca_file(lowered):
                return RegistryError(
                    f"The CA certificate given for {host} could not be loaded. Paste the PEM "
                    "block, including the BEGIN/END CERTIFICATE lines.",
                    kind=RegistryError.TLS,
                    host=host,
                )
            return RegistryError(
                f"The TLS handshake with {host} failed. If the {what} serves plain HTTP, choose "
                f"“{ALLOW_INSECURE_LABEL}”.",
                kind=RegistryError.TLS,
                host=host,
            )
        if isinstance(exc, requests.exceptions.Timeout):
            return RegistryError(
                f"The {what} at {host} did not answer within {self.conn.timeout:g} seconds. "
                "Check the URL, the firewall, or the connection method (proxy or SSH tunnel).",
                kind=RegistryError.UNREACHABLE,
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
            return RegistryError(
                f"Could not reach the {what} at {host}: {reason}. Check the URL and port, and "
                "that the dashboard's network can reach it.",
                kind=RegistryError.UNREACHABLE,
                host=host,
            )
        return RegistryError(
            f"The request to the {what} at {host} failed ({type(exc).__name__}).",
            kind=RegistryError.PROTOCOL,
            host=host,
        )

    # --- pushing (blobs and manifests) -------------------------------------------
    # Monolithic uploads as the distribution spec describes them: POST to open an upload
    # session, then one PUT of all the bytes with ``?digest=``. Every request of a push
    # uses the same ``pull,push`` scope, so a Bearer token (or the Basic scheme) is learned
    # by the first small request and the big PUT is sent once, already authenticated.

    def blob_exists(self, repository: str, digest: str) -> bool:
        """``HEAD`` a blob: is it already in ``repository``? (Then it need not be uploaded.)"""
        response = self.request(
            "HEAD", f"/v2/{repository}/blobs/{digest}", scope=self._push_scope(repository)
        )
        with response:
            if response.status_code == 404:
                return False
            self._check_push_status(response, f"blob {digest[:19]}… of {repository}")
        return True

    def upload_blob(self, repository: str, data: bytes) -> str:
        """Upload ``data`` as a blob of ``repository`` unless it is there; return its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if self.blob_exists(repository, digest):
            return digest
        scope = self._push_scope(repository)
        what = f"the upload of blob {digest[:19]}… to {repository}"
        response = self.request("POST", f"/v2/{repository}/blobs/uploads/", scope=scope)
        with response:
            self._check_push_status(response, what)
            location = response.headers.get("Location", "")
        if not location:
            raise RegistryError(
                f"{self.host} started {what} but sent no Location to upload to.",
                kind=RegistryError.PROTOCOL,
                host=self.host,
            )
        target = urlsplit(urljoin(self.base_url + "/", location))
        query = f"{target.query}&" if target.query else ""
        response = self.request(
            "PUT",
            f"{target.path}?{query}digest={digest}",
            scope=scope,
            data=data,  # bytes, not a stream: it can be sent again after a 401 challenge
            headers={"Content-Type": "application/octet-stream"},
        )
        with response:
            self._check_push_status(response, what)
        return digest

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        """``PUT`` a manifest under a tag; return its digest (the registry's, else computed)."""
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        response = self.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            scope=self._push_scope(repository),
            data=body,
            headers={"Content-Type": media_type},
        )
        with response:
            self._check_push_status(response, f"the manifest {repository}:{reference}")
        claimed = response.headers.get("Docker-Content-Digest", "")
        if claimed.startswith("sha256:") and claimed != digest:
            raise RegistryError(
                f"{self.host} stored the manifest {repository}:{reference} under another "
                f"digest ({claimed}) than the one sent ({digest}).",
                kind=RegistryError.CONTENT,
                host=self.host,
            )
        return digest

    def find_manifest(self, repository: str, reference: str) -> Manifest | None:
        """The manifest of a tag, or None if there is no such tag (or repository) yet."""
        try:
            return self.get_manifest(repository, reference)
        except RegistryError as exc:
            if exc.kind == RegistryError.NOT_FOUND:
                return None
            raise

    @staticmethod
    def _push_scope(repository: str) -> str:
        return f"repository:{repository}:pull,push"

    def _check_push_status(self, response: requests.Response, what: str) -> None:
        """Any 2xx is success for a write; the rest is explained as for a read."""
        if 200 <= response.status_code < 300:
            return
        if response.status_code == 401:  # still unauthorised after the challenge was answered
            raise self._auth_error(response, rejected=self.conn.has_credentials)
        self._check_status(response, what)

    def _proxy_error(self, lowered: str, host: str, what: str) -> RegistryError:
        proxy = self.conn.proxy_address
        if re.search(r"tunnel connection failed: 40[17]\b", lowered):
            return self._proxy_auth_error(host)
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
                    f"could not connect to it (HTTP {code}): check the registry URL and that the "
                    "proxy can reach the registry"
                )
            return RegistryError(
                f"The proxy {proxy} {reason}, for the {what} at {host}.",
                kind=RegistryError.UNREACHABLE,
                host=host,
                cause=RegistryError.PROXY_UPSTREAM,
            )
        if "refused" in lowered:
            reason = "the connection was refused"
        elif "resolve" in lowered or "name or service not known" in lowered:
            reason = "its host name could not be resolved"
        elif "timed out" in lowered:
            reason = f"it did not answer within {self.conn.timeout:g} seconds"
        else:
            reason = "the connection failed"
        return RegistryError(
            f"The proxy {proxy} refused or could not take the connection to the {what} at "
            f"{host}: {reason}. Check the proxy URL and that the proxy is running.",
            kind=RegistryError.UNREACHABLE,
            host=host,
            cause=RegistryError.PROXY_REFUSED,
        )


# --- SSH tunnel transport -----------------------------------------------------------
#
# urllib3 keeps doing everything it does on a direct connection (pooling, TLS with SNI
# and certificate checks against the registry's real host name, Host headers); only the
# socket under each connection comes from the tunnel instead of a TCP connect.


def _tunnel_pool_classes(tunnel: SshTunnel) -> dict[str, type]:
    def new_conn(connection: urllib3.connection.HTTPConnection) -> Any:
        sock = tunnel.open_socket(connection._dns_host, connection.port)
        if isinstance(connection.timeout, int | float):
            sock.settimeout(connection.timeout)
        return sock

    class TunnelHTTPConnection(urllib3.connection.HTTPConnection):
        def _new_conn(self):
            return new_conn(self)

    class TunnelHTTPSConnection(urllib3.connection.HTTPSConnection):
        def _new_conn(self):
            return new_conn(self)

    class TunnelHTTPPool(urllib3.connectionpool.HTTPConnectionPool):
        ConnectionCls = TunnelHTTPConnection

    class TunnelHTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
        ConnectionCls = TunnelHTTPSConnection

    return {"http": TunnelHTTPPool, "https": TunnelHTTPSPool}


class _TunnelAdapter(requests.adapters.HTTPAdapter):
    """An adapter whose connections are channels of one SSH tunnel."""

    def __init__(self, tunnel: SshTunnel, **kw: Any) -> None:
        self._tunnel = tunnel
        super().__init__(**kw)

    def init_poolmanager(self, *args: Any, **kw: Any) -> None:
        super().init_poolmanager(*args, **kw)
        self.poolmanager.pool_classes_by_scheme = _tunnel_pool_classes(self._tunnel)


def _tunnel_error(exc: TunnelError, host: str) -> RegistryError:
    kind = (
        RegistryError.UNREACHABLE
        if exc.cause in (TunnelError.SSH_UNREACHABLE, TunnelError.FORWARD)
        else RegistryError.AUTH
    )
    return RegistryError(str(exc), kind=kind, host=host, cause=exc.cause)


def _tls_port_answer(response: requests.Response) -> bool:
    """Whether a 400 is what a TLS port says to plain HTTP, not the registry's own 400.

    Go's servers say "Client sent an HTTP request to an HTTPS server", nginx "The plain
    HTTP request was sent to HTTPS port"; a registry rejecting a request answers in JSON.
    """
    if response.status_code != 400 or "json" in response.headers.get("Content-Type", ""):
        return False
    return "https" in response.text[:2000].lower()


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


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return 60.0  # an HTTP date: wait a minute rather than parse it


def _remove_files(paths: list[str]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    paths.clear()


def ping(conn: Connection) -> PingResult:
    """Check host, TLS and credentials of a registry: ``GET /v2/`` with its auth flow."""
    with RegistryClient(conn) as client:
        return client.ping()
