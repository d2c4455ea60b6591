"""The Helm repository protocol: ``index.yaml`` and chart archives over HTTP(S).

A conditional GET of ``index.yaml`` and bounded downloads of chart archives, with the
repository's credentials, which go only where Helm sends them: to the repository's own
scheme, host and port (so never over plain HTTP unless the repository is plain HTTP),
also when a redirect is followed (this module follows them itself, hop by hop). Chart
archives named by an index are fetched only over http(s), from the repository's own
host or one the admin listed for it, at every hop. The plumbing (TLS modes, CA files,
proxy, SSH tunnel, timeouts, bounded reads, error text) is ``config.http``'s, shared
with the registry client; every failure is one :class:`HelmRepoError` whose message a
user can act on. No Django imports.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import requests

from config.http import (
    REDIRECT_STATUSES,
    Budget,
    HttpError,
    HttpSession,
    Transport,
    origin,
    parse_retry_after,
)

USER_AGENT = "wharf-helm-client/1"
MAX_REDIRECTS = 5  # hops followed for one download
# What the repository form calls the list of extra archive hosts, for messages.
ARCHIVE_HOSTS_LABEL = "Also allow chart downloads from these hosts"
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def parse_host(entry: str) -> tuple[str, int | None]:
    """``host`` or ``host:port`` (``[v6]:port``) as (lower-case host, port or None).

    Raises ``ValueError`` with a message for the user on anything else (a scheme, a
    path, credentials, a bad name or port).
    """
    text = entry.strip().lower()
    if not text or "://" in text or any(c in text for c in "/?#@ \t"):
        raise ValueError(f"“{entry.strip()}” is not a host: write host or host:port, nothing else.")
    parts = urlsplit("//" + text)
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"“{entry.strip()}” has a port that is not 1–65535.") from None
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.rstrip(".").split(".")
        if not host or len(host) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
            raise ValueError(f"“{entry.strip()}” is not a valid host name.") from None
    if port == 0:
        raise ValueError(f"“{entry.strip()}” has a port that is not 1–65535.")
    return host, port


def _host_rules(entries: tuple[str, ...]) -> list[tuple[str, int | None]]:
    rules = []
    for entry in entries:
        try:
            rules.append(parse_host(entry))
        except ValueError:
            continue  # validated when saved; one bad line never opens anything
    return rules


def _display_host(url: str) -> str:
    """``host[:port]`` of a URL, never its credentials."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    try:
        return f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return host


class HelmRepoError(HttpError):
    """Fetching from a Helm repository failed; ``retry_after`` is set when it asked us to wait."""


@dataclass(frozen=True)
class HelmEndpoint:
    """How to reach one Helm repository: its URL, credentials, and transport."""

    url: str  # the repository URL, without index.yaml
    username: str = ""
    password: str = field(default="", repr=False)
    transport: Transport = field(default_factory=Transport)
    # Hosts ("host" or "host:port") chart archives may come from besides the repository's.
    archive_hosts: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"HelmEndpoint(url={self.url!r}, username={self.username!r})"

    @property
    def host(self) -> str:
        """The repository's "host[:port]", for messages."""
        return urlsplit(self.url).netloc

    @property
    def index_url(self) -> str:
        return self.url.rstrip("/") + "/index.yaml"

    def resolve(self, chart_url: str) -> str:
        """A chart URL from the index, made absolute against the repository URL."""
        return urljoin(self.url.rstrip("/") + "/", chart_url)

    def allows_archive_from(self, url: str) -> bool:
        """Whether a chart archive may be fetched from ``url`` (also a redirect's target).

        Only http(s), and only the repository's own host or a listed one: ``host`` means
        that host on the default ports (80, 443), ``host:port`` that port alone.
        """
        scheme, host, port = origin(url)
        if scheme not in ("http", "https") or not host:
            return False
        own = urlsplit(self.url)
        try:
            own_rule = ((own.hostname or "").lower(), own.port)
        except ValueError:
            own_rule = ((own.hostname or "").lower(), None)
        for rule_host, rule_port in [own_rule, *_host_rules(self.archive_hosts)]:
            if host != rule_host:
                continue
            if (port in (80, 443)) if rule_port is None else port == rule_port:
                return True
        return False

    def credentials_for(self, url: str) -> tuple[str, str] | None:
        """The Basic credentials to send to ``url``: only to the repository's own origin.

        As Helm does: scheme, host and port must all equal the repository URL's, so a
        ``http://`` URL of an ``https://`` repository (or another port) gets none.
        """
        if not self.username or origin(url) != origin(self.url):
            return None
        return (self.username, self.password)


@dataclass(frozen=True)
class IndexResponse:
    not_modified: bool
    body: bytes = b""
    etag: str = ""
    last_modified: str = ""


class HelmRepoClient:
    """A session with one Helm repository; use as a context manager."""

    def __init__(self, endpoint: HelmEndpoint) -> None:
        self.endpoint = endpoint
        self._http = HttpSession(
            endpoint.transport,
            host=endpoint.host,
            what="Helm repository",
            user_agent=USER_AGENT,
            error_class=HelmRepoError,
        )
        self.tunnel = self._http.tunnel

    @property
    def requests_made(self) -> int:
        return self._http.requests_made

    def __enter__(self) -> HelmRepoClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def fetch_index(
        self,
        *,
        etag: str = "",
        last_modified: str = "",
        max_bytes: int,
        deadline: float | None = None,
    ) -> IndexResponse:
        """GET ``index.yaml``, conditionally; a 304 comes back as ``not_modified``.

        The whole download (redirects and body) ends by ``deadline`` seconds (default: the
        transport's request deadline); a big index needs more than one request's time.
        """
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        budget = Budget.start(deadline or self.endpoint.transport.deadline, "one index download")
        response = self._get(self.endpoint.index_url, headers=headers, budget=budget)
        with response:
            if response.status_code == 304:
                return IndexResponse(not_modified=True, etag=etag, last_modified=last_modified)
            self._raise_for_status(response, "index.yaml")
            body = self._http.read_limited(response, max_bytes, "index.yaml")
            return IndexResponse(
                not_modified=False,
                body=body,
                etag=response.headers.get("ETag", ""),
                last_modified=response.headers.get("Last-Modified", ""),
            )

    def fetch_archive(self, url: str, *, max_bytes: int) -> bytes:
        """Download a chart archive (within the transport's deadline, redirects included);
        credentials go only to the repository's own origin."""
        budget = Budget.start(self.endpoint.transport.deadline, "one chart archive download")
        response = self._get(url, budget=budget, check=self._check_archive_url)
        with response:
            self._raise_for_status(response, url.rsplit("/", 1)[-1])
            return self._http.read_limited(response, max_bytes, "the chart archive")

    # --- internals -----------------------------------------------------------------

    def _check_archive_url(self, url: str, redirected_by: str) -> None:
        """Refuse a chart archive URL (or a redirect's target) the repository does not allow."""
        if self.endpoint.allows_archive_from(url):
            return
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise HelmRepoError(
                f"The chart archive URL is a {scheme or 'relative'}: URL; Wharf downloads chart "
                "archives only over http:// or https://.",
                kind=HelmRepoError.CONTENT,
                host=self.endpoint.host,
            )
        host = _display_host(url)
        where = (
            f"{redirected_by} redirected the chart archive download to {host}"
            if redirected_by
            else f"The chart archive is on {host}"
        )
        raise HelmRepoError(
            f"{where}, which is not the repository's host ({_display_host(self.endpoint.url)}). "
            f"To allow downloads from it, add {host} to “{ARCHIVE_HOSTS_LABEL}” on the "
            "repository.",
            kind=HelmRepoError.CONTENT,
            host=host,
        )

    def _get(
        self,
        url: str,
        *,
        budget: Budget,
        headers: dict[str, str] | None = None,
        check: Callable[[str, str], None] | None = None,
    ) -> requests.Response:
        """GET ``url``, following redirects hop by hop with the credential rule at each
        (and ``check(url, redirected_by)`` before each hop is sent)."""
        redirected_by = ""
        for _hop in range(MAX_REDIRECTS + 1):
            if check is not None:
                check(url, redirected_by)
            response = self._http.request(
                "GET",
                url,
                budget=budget,
                headers=headers or {},
                auth=self.endpoint.credentials_for(url),
                stream=True,
                verify=self._verify(url),
                allow_redirects=False,
            )
            location = response.headers.get("Location", "")
            if response.status_code not in REDIRECT_STATUSES or not location:
                return response
            response.close()
            redirected_by = _display_host(url)
            url = urljoin(url, location)
        raise HelmRepoError(
            f"{urlsplit(url).netloc} redirected the request more than {MAX_REDIRECTS} times "
            "(a redirect loop?). Check the repository URL.",
            kind=HelmRepoError.PROTOCOL,
            host=urlsplit(url).netloc,
        )

    def _verify(self, url: str) -> bool | str:
        return self._http.verify_for(urlsplit(url).netloc)

    def _raise_for_status(self, response: requests.Response, what: str) -> None:
        status = response.status_code
        if status == 200:
            return
        host = urlsplit(response.url).netloc
        if status in (401, 403):
            if self.endpoint.username:
                raise HelmRepoError(
                    f"{host} refused the username and password (HTTP {status}) for {what}.",
                    kind=HelmRepoError.AUTH,
                    host=host,
                )
            raise HelmRepoError(
                f"{host} needs credentials for {what} (HTTP {status}): make the repository "
                "private and give a username and password.",
                kind=HelmRepoError.AUTH,
                host=host,
            )
        if status == 404:
            raise HelmRepoError(
                f"{host} has no {what} at {response.url} (HTTP 404): check the repository URL.",
                kind=HelmRepoError.NOT_FOUND,
                host=host,
            )
        if status in (429, 503):
            wait = parse_retry_after(response.headers.get("Retry-After"))
            hint = f" and asked to retry after {wait:g} s" if wait is not None else ""
            raise HelmRepoError(
                f"{host} is rate limiting (HTTP {status}){hint}.",
                kind=HelmRepoError.RATE_LIMITED,
                host=host,
                retry_after=wait,
            )
        raise HelmRepoError(
            f"{host} answered HTTP {status} {response.reason} for {what}.",
            kind=HelmRepoError.PROTOCOL,
            host=host,
        )
