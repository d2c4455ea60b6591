"""The OCI distribution protocol: how Wharf talks to a container/OCI registry.

:class:`RegistryClient` holds only the protocol: the ``/v2/`` ping, the authentication
dance (Basic, or Bearer tokens from the registry's token service, cached per scope),
tags, manifests, blobs, uploads, and what a process learns about a registry's route
(plain HTTP, Basic auth up front). The plumbing under it (TLS modes, CA files, proxy,
SSH tunnel, timeouts, bounded reads, error text) is ``config.http``'s, shared with the
Helm repository client; every failure is one :class:`RegistryError` whose message a
user can act on.

Framework-free on purpose: callers build a :class:`Connection` from their own models
and settings. Credentials and tokens never appear in reprs, logs or exception messages.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from config.http import (
    ALLOW_INSECURE_LABEL,
    SECURE_WITH_CA_LABEL,
    TLS_CA,
    TLS_INSECURE,
    TLS_LABELS,
    TLS_MODES,
    TLS_SECURE,
    Budget,
    DeadlineExceeded,
    HttpError,
    HttpSession,
    Transport,
    parse_retry_after,
    sentence,
    trust_store,
)
from config.ratelimit import RateLimitReading

__all__ = [
    "ALLOW_INSECURE_LABEL",
    "SECURE_WITH_CA_LABEL",
    "TLS_CA",
    "TLS_INSECURE",
    "TLS_MODES",
    "TLS_SECURE",
    "Connection",
    "Manifest",
    "PingResult",
    "RegistryClient",
    "RegistryError",
    "Transport",
    "ping",
]

USER_AGENT = "wharf-registry-client/1"
# A token is thrown away this long before the registry would reject it.
TOKEN_EXPIRY_MARGIN = 10.0
# The distribution token spec says a token without expires_in lives 60 seconds.
DEFAULT_TOKEN_LIFETIME = 60.0


@dataclass(frozen=True)
class Connection:
    """How to reach one registry's API. ``host`` is "host[:port]" (a path after it is ignored).

    ``transport`` says how (TLS, timeouts, proxy or SSH tunnel); the credentials are the
    registry's own, sent only to the registry and, over the rules of :meth:`RegistryClient.
    _fetch_token`, to its token service.
    """

    host: str
    username: str = ""  # empty = anonymous
    password: str = field(default="", repr=False)
    transport: Transport = field(default_factory=Transport)
    # Told what each answer says of the registry's rate limit (registries.budgets).
    on_rate_limit: Callable[[str, RateLimitReading], None] | None = field(
        default=None, repr=False, compare=False
    )
    # The caller's stored word that this registry answered plain HTTP before (with
    # "Allow insecure connection" only): the first request goes to http://, no https://
    # probe first. If that no longer holds, the client goes back to https:// by itself.
    plain_http: bool = False

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
    def tls(self) -> str:
        return self.transport.tls


class RegistryError(HttpError):
    """One error type for the registry world; ``str(e)`` is a message a user can act on.

    ``kind`` and ``cause`` take the constants of :class:`config.http.HttpError`
    (``RegistryError.AUTH``, ``RegistryError.PROXY_AUTH``…).
    """


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
OCI_INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
MAX_MANIFEST_BYTES = 4 * 2**20  # the distribution spec's own recommended limit
# A tag list is read page by page, but not forever (the defaults of the settings).
MAX_TAG_PAGES = 1000
MAX_TAGS = 100_000
# The repository catalog, likewise bounded; its token scope is the distribution spec's.
MAX_CATALOG_PAGES = 1000
MAX_CATALOG_REPOSITORIES = 100_000
CATALOG_DEADLINE = 300.0  # seconds for a whole listing, every page (the setting's default)
TAGS_DEADLINE = 300.0  # seconds for a whole tag list, every page (the setting's default)
CATALOG_SCOPE = "registry:catalog:*"
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
    return (conn.api_host, *conn.transport.route)


def _remember(conn: Connection, **learned: Any) -> None:
    with _ROUTES_LOCK:
        memory = _ROUTES.setdefault(_route_key(conn), _RouteMemory())
        for name, value in learned.items():
            setattr(memory, name, value)


def _forget(conn: Connection) -> None:
    with _ROUTES_LOCK:
        _ROUTES.pop(_route_key(conn), None)


class RegistryClient:
    """A session with one registry. Use as a context manager, or call :meth:`close`."""

    def __init__(self, conn: Connection, *, max_connections: int | None = None) -> None:
        self.conn = conn
        self.host = conn.api_host
        self.base_url = f"https://{self.host}"
        # Sessions, pools of 32 connections, TLS, CA files, proxy and tunnel: config.http.
        self._http = HttpSession(
            conn.transport,
            host=self.host,
            what="registry",
            user_agent=USER_AGENT,
            error_class=RegistryError,
            max_connections=max_connections,
            on_rate_limit=conn.on_rate_limit,
        )
        self.tunnel = self._http.tunnel
        self._auth_scheme = "none"  # the scheme the registry asked for, once known
        memory = _ROUTES.get(_route_key(conn))
        self._from_memory = memory is not None or conn.plain_http
        if conn.tls == TLS_INSECURE and (conn.plain_http or (memory and memory.plain_http)):
            self.base_url = f"http://{self.host}"
        if memory is not None and memory.auth_scheme == "basic":
            self._auth_scheme = "basic"  # send the credentials with the first request
        self._answered = False  # whether any request got an HTTP answer (the route holds)
        self._tokens: dict[str, tuple[str, float]] = {}  # scope -> (token, expires at)
        # The registry's last Bearer challenge: a token for a new scope is asked for up
        # front, without first taking a 401 for it. One fetch per scope at a time.
        self._bearer: _Challenge | None = None
        self._token_locks: dict[str, threading.Lock] = {}
        self._token_locks_lock = threading.Lock()

    @property
    def requests_made(self) -> int:
        """Every HTTP request so far, token requests included."""
        return self._http.requests_made

    @property
    def speaks_plain_http(self) -> bool | None:
        """Whether the registry answered over plain HTTP, once any request got an answer
        (None before): what a caller stores as :attr:`Connection.plain_http`."""
        if not self._answered:
            return None
        return self.base_url.startswith("http://")

    # --- lifecycle -------------------------------------------------------------

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()
        self._tokens.clear()

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
        if not authorization and scope is not None and self._bearer is not None:
            authorization = "Bearer " + self._token_for(self._bearer, scope)
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
            self._bearer = challenge
            self._tokens.pop(token_scope, None)  # refused: a cached token is no good
            authorization = "Bearer " + self._token_for(challenge, token_scope)

        _release(response)
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

    def list_tags(
        self,
        repository: str,
        *,
        page_size: int = 1000,
        max_pages: int = MAX_TAG_PAGES,
        max_tags: int = MAX_TAGS,
        deadline: float = TAGS_DEADLINE,
    ) -> list[str]:
        """Every tag of ``repository``, following the ``Link`` header page by page.

        A registry that links to a new page forever (or lists more tags than anyone
        keeps) is refused past ``max_pages`` pages or ``max_tags`` tags, or ``deadline``
        seconds for every page together, with a ``RegistryError`` naming the limit; one
        that links back to a page read already, likewise.
        """
        scope = f"repository:{repository}:pull"
        path: str | None = f"/v2/{repository}/tags/list?n={page_size}"
        tags: list[str] = []
        seen_pages: set[str] = set()
        total = Budget.start(
            deadline, f"the whole tag list of {repository} (WHARF_OCI_TAGS_DEADLINE)"
        )
        while path:
            if path in seen_pages:
                # Taken as the end, the tags after it would be "removed upstream".
                raise RegistryError(
                    f"{self.host} links the tag list of {repository} back to a page it sent "
                    f"already ({path[:100]}), so Wharf stopped reading it: the list is not whole.",
                    kind=RegistryError.CONTENT,
                    host=self.host,
                )
            if len(seen_pages) >= max_pages:
                raise RegistryError(
                    f"{self.host} links the tag list of {repository} to more than {max_pages:,} "
                    "pages, so Wharf stopped reading it (WHARF_OCI_TAGS_MAX_PAGES; a larger "
                    "WHARF_OCI_TAGS_PAGE_SIZE needs fewer pages).",
                    kind=RegistryError.CONTENT,
                    host=self.host,
                )
            left = total.expires_at - time.monotonic()
            if left <= 0:
                raise RegistryError(
                    f"{self.host} took longer than {deadline:g} s to list the tags of "
                    f"{repository} ({len(seen_pages):,} pages), so Wharf stopped reading them "
                    "(WHARF_OCI_TAGS_DEADLINE).",
                    kind=RegistryError.CONTENT,
                    host=self.host,
                )
            seen_pages.add(path)
            # Each page within the request deadline, and all of them within the total.
            one = self._http.transport.deadline
            budget = total if left < one else Budget.start(one)
            response = self.request("GET", path, scope=scope, budget=budget)
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
            if len(tags) > max_tags:
                raise RegistryError(
                    f"{self.host} lists more than {max_tags:,} tags for {repository}, so Wharf "
                    "stopped reading them (WHARF_OCI_TAGS_MAX).",
                    kind=RegistryError.CONTENT,
                    host=self.host,
                )
            path = self._next_page(response.headers.get("Link", ""))
        return list(dict.fromkeys(tags))

    def list_catalog(
        self,
        *,
        page_size: int = 1000,
        max_pages: int = MAX_CATALOG_PAGES,
        max_repositories: int = MAX_CATALOG_REPOSITORIES,
        deadline: float = CATALOG_DEADLINE,
    ) -> list[str]:
        """Every repository the registry lists to these credentials (``GET /v2/_catalog``).

        Pages follow the ``Link`` header (relative or absolute, resolved against the
        registry); a Bearer token is asked for with the scope ``registry:catalog:*``. A
        refusal is a ``RegistryError`` of kind ``auth`` (or ``not_found`` where the
        registry has no catalog); a listing cut short raises, never returns part of it:
        past ``deadline`` seconds in all, or when a page links back to one already read
        (what the pages after it hold is unknown). A ``Link`` to another host or scheme is
        followed on the registry itself: credentials go nowhere else.
        """
        path: str | None = f"/v2/_catalog?n={page_size}"
        names: list[str] = []
        seen_pages: set[str] = set()
        total = Budget.start(deadline, "the whole repository listing (WHARF_OCI_CATALOG_DEADLINE)")
        while path:
            if path in seen_pages:
                raise RegistryError(
                    f"{self.host} links its repository catalog back to a page it sent already "
                    f"({path[:100]}), so Wharf stopped reading it: the listing is not whole.",
                    kind=RegistryError.CONTENT,
                    host=self.host,
                )
            left = total.expires_at - time.monotonic()
            if left <= 0:
                raise RegistryError(
                    f"{self.host} took longer than {deadline:g} s to list its repositories "
                    f"({len(seen_pages):,} pages), so Wharf stopped reading its catalog "
                    "(WHARF_OCI_CATALOG_DEADLINE).",
                    kind=RegistryError.CONTENT,
                    host=self.host,
                )
            if len(seen_pages) >= max_pages:
                raise RegistryError(
                    f"{self.host} links its repository catalog to more than {max_pages:,} "
                    "pages, so Wharf stopped reading it.",
                    kind=RegistryError.CONTENT,
                    host=self.host,
                )
            seen_pages.add(path)
            # Each page within the request deadline, and all of them within the total.
            one = self._http.transport.deadline
            budget = total if left < one else Budget.start(one)
            response = self.request("GET", path, scope=CATALOG_SCOPE, budget=budget)
            with response:
                self._check_status(response, "the repository catalog")
                body = self._json(response, "the repository catalog", MAX_MANIFEST_BYTES)
            page = body.get("repositories") if isinstance(body, dict) else None
            if page is None:
                page = []
            if not isinstance(page, list) or not all(isinstance(n, str) for n in page):
                raise RegistryError(
                    f"{self.host} sent a repository catalog that is not a list of names.",
                    kind=RegistryError.CONTENT,
                    host=self.host,
                )
            names.extend(page)
            if len(names) > max_repositories:
                raise RegistryError(
                    f"{self.host} lists more than {max_repositories:,} repositories, so Wharf "
                    "stopped reading its catalog.",
                    kind=RegistryError.CONTENT,
                    host=self.host,
                )
            path = self._next_page(response.headers.get("Link", ""))
        return list(dict.fromkeys(names))

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
                f"{sentence(what)} was not found on {self.host} ({describe_response(response)}).",
                kind=RegistryError.NOT_FOUND,
                host=self.host,
            )
        if status == 403:
            raise self._auth_error(response, rejected=self.conn.has_credentials)
        if status in (429, 503):
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
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
        return self._http.read_limited(response, max_bytes, what)

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
        base_url = self.base_url  # another thread may learn plain HTTP meanwhile
        try:
            response = self._http.send(method, base_url + path, headers=headers, **kw)
        except requests.exceptions.RequestException as exc:
            if self._from_memory and self.base_url.startswith("http://"):
                # What an earlier client learned no longer holds (the registry moved to
                # TLS?): forget it and ask again the long way.
                _forget(self.conn)
                self._from_memory = False
                self.base_url = f"https://{self.host}"
                return self._send(method, path, headers, "", **kw)
            fallback = self._plain_http_fallback(exc, base_url)
            if fallback is None:
                raise self._http.error_for(exc) from None
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
            response = self._http.check_proxy_answer(response, self.host)
            self._answered = True
            return response
        # "Allow insecure connection" also means plain HTTP: if the same request over http://
        # gets an HTTP answer, the registry speaks plain HTTP; remember that for the session.
        try:
            response = self._http.send(method, fallback + path, verify=False, headers=headers, **kw)
        except requests.exceptions.RequestException as exc:
            # Plain HTTP answered, but badly (a redirect loop, too slowly…): that is the news,
            # not the TLS failure before it. If it did not answer at all, the TLS one is.
            connect_failure = isinstance(
                exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout
            )
            if connect_failure and not isinstance(exc, DeadlineExceeded):
                raise self._http.error_for(first_error) from None
            raise self._http.error_for(exc) from None
        self.base_url = fallback
        _remember(self.conn, plain_http=True)
        response = self._http.check_proxy_answer(response, self.host)
        self._answered = True
        return response

    def _plain_http_fallback(
        self, exc: requests.exceptions.RequestException, base_url: str
    ) -> str | None:
        if self.conn.tls != TLS_INSECURE or not base_url.startswith("https://"):
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

    def _token_for(self, challenge: _Challenge, scope: str) -> str:
        """A valid token for ``scope``: the cached one, or one fetched (once per scope)."""
        with self._token_locks_lock:
            lock = self._token_locks.setdefault(scope, threading.Lock())
        with lock:
            cached = self._tokens.get(scope)
            if cached and cached[1] > time.monotonic():
                return cached[0]
            return self._fetch_token(challenge, scope)

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
        verify = self._realm_verify(realm)
        params = {}
        if challenge.params.get("service"):
            params["service"] = challenge.params["service"]
        if scope:
            params["scope"] = scope
        auth = (self.conn.username, self.conn.password) if self.conn.has_credentials else None
        try:
            response = self._http.request(
                "GET",
                realm,
                host=realm_host,
                what="token service",
                verify=verify,
                params=params,
                auth=auth,
            )
        except RegistryError as exc:
            if exc.kind == RegistryError.TLS and self.conn.tls == TLS_INSECURE and verify:
                raise RegistryError(
                    f"The token service of {self.host} is on another host ({realm_host}) "
                    "whose TLS certificate could not be verified. Wharf sends the registry's "
                    "credentials to another host only over verified TLS, whatever the "
                    "registry's own TLS option.",
                    kind=RegistryError.TLS,
                    host=realm_host,
                ) from None
            raise
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

    def _realm_verify(self, realm: str) -> bool | str:
        """How to check the token service ``realm``, or a refusal to use it at all.

        The registry's TLS choice applies to its token service: a registry reached with
        "Allow only secure connection" or "Secure with CA certificate" may not send us to a
        plain-HTTP realm. And the credentials go to a realm on another host only over
        verified TLS (the trust store, with the private CA if one is given), even when
        "Allow insecure connection" is chosen for the registry itself.
        """
        parts = urlsplit(realm)
        realm_host = parts.netloc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RegistryError(
                f"{self.host} named a token service (realm) that is not an http(s) URL.",
                kind=RegistryError.PROTOCOL,
                host=self.host,
            )
        if parts.scheme == "http" and self.conn.tls != TLS_INSECURE:
            raise RegistryError(
                f"{self.host} sends clients to a plain-HTTP token service ({realm_host}), but "
                f"“{TLS_LABELS[self.conn.tls]}” is chosen for it: Wharf does not send logins or "
                "tokens in clear text. Make the registry's token realm https://, or choose "
                f"“{ALLOW_INSECURE_LABEL}”.",
                kind=RegistryError.TLS,
                host=self.host,
            )
        verify = self._http.verify_for(realm_host)
        own_host = (urlsplit(self.base_url).hostname or "").lower()
        if not self.conn.has_credentials or parts.hostname.lower() == own_host:
            return verify
        if parts.scheme == "http":
            raise RegistryError(
                f"The token service of {self.host} is on another host ({realm_host}) and "
                "speaks plain HTTP. Wharf sends the registry's credentials to another host "
                "only over verified TLS: make the registry's token realm https://.",
                kind=RegistryError.TLS,
                host=self.host,
            )
        return verify or trust_store()

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

    def list_referrers(self, repository: str, digest: str) -> list[dict] | None:
        """The descriptors of the manifests that refer to ``digest`` (their ``subject``),
        through the OCI 1.1 referrers API; None when the registry has none (it answers 404,
        which the distribution spec reserves for that: the caller falls back to the
        referrers tag schema)."""
        what = f"the referrers of {repository}@{digest[:19]}…"
        response = self.request(
            "GET",
            f"/v2/{repository}/referrers/{digest}",
            scope=f"repository:{repository}:pull",
            headers={"Accept": OCI_INDEX_MEDIA_TYPE},
            stream=True,
        )
        with response:
            if response.status_code == 404:
                return None
            self._check_status(response, what)
            raw = self._read_limited(response, MAX_MANIFEST_BYTES, what)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        manifests = body.get("manifests") if isinstance(body, dict) else None
        if not isinstance(manifests, list):
            raise RegistryError(
                f"{what} is not an image index.", kind=RegistryError.CONTENT, host=self.host
            )
        return [m for m in manifests if isinstance(m, dict)]

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


# A challenge's body is small; read it so that its connection goes back to the pool
# (closing an unread response closes its connection). A larger one is closed.
MAX_DRAINED_BYTES = 64 * 1024


def _release(response: requests.Response) -> None:
    with contextlib.suppress(requests.exceptions.RequestException, ValueError, OSError):
        length = int(response.headers.get("Content-Length", "-1"))
        if 0 <= length <= MAX_DRAINED_BYTES:
            response.content  # noqa: B018  # read, so close() hands the connection back
    response.close()


def _tls_port_answer(response: requests.Response) -> bool:
    """Whether a 400 is what a TLS port says to plain HTTP, not the registry's own 400.

    Go's servers say "Client sent an HTTP request to an HTTPS server", nginx "The plain
    HTTP request was sent to HTTPS port"; a registry rejecting a request answers in JSON.
    """
    if response.status_code != 400 or "json" in response.headers.get("Content-Type", ""):
        return False
    return "https" in response.text[:2000].lower()


def ping(conn: Connection) -> PingResult:
    """Check host, TLS and credentials of a registry: ``GET /v2/`` with its auth flow."""
    with RegistryClient(conn) as client:
        return client.ping()
