"""The only code that talks to a classic Helm repository over HTTP(S).

A conditional GET of ``index.yaml`` and bounded downloads of chart archives, with the
repository's TLS choice and credentials, a timeout on every call, and one error type
whose message a user can act on. No Django imports.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
from urllib3.exceptions import InsecureRequestWarning

from registries.oci import TLS_CA, TLS_INSECURE

USER_AGENT = "wharf-helm-client/1"
CHUNK = 256 * 1024


class HelmRepoError(Exception):
    """Fetching from a Helm repository failed; ``retry_after`` is set when it asked us to wait."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class HelmEndpoint:
    url: str  # the repository URL, without index.yaml
    username: str = ""
    password: str = ""
    tls: str = "secure"
    ca_pem: str = ""
    timeout: float = 10.0

    def __repr__(self) -> str:
        return f"HelmEndpoint(url={self.url!r}, username={self.username!r})"

    @property
    def index_url(self) -> str:
        return self.url.rstrip("/") + "/index.yaml"

    def resolve(self, chart_url: str) -> str:
        """A chart URL from the index, made absolute against the repository URL."""
        return urljoin(self.url.rstrip("/") + "/", chart_url)


@dataclass(frozen=True)
class IndexResponse:
    not_modified: bool
    body: bytes = b""
    etag: str = ""
    last_modified: str = ""


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the delta form; an HTTP date counts as one minute)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return 60.0


class HelmRepoClient:
    """A session with one Helm repository; use as a context manager."""

    def __init__(self, endpoint: HelmEndpoint) -> None:
        self.endpoint = endpoint
        self.requests_made = 0
        self._session = requests.Session()
        self._session.trust_env = False
        self._session.headers["User-Agent"] = USER_AGENT
        self._ca_file = ""
        if endpoint.tls == TLS_INSECURE:
            self._verify: bool | str = False
        elif endpoint.tls == TLS_CA:
            if not endpoint.ca_pem.strip():
                raise HelmRepoError("“Secure with CA certificate” is chosen but no CA was given.")
            fd, self._ca_file = tempfile.mkstemp(prefix="wharf-ca-", suffix=".pem")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(endpoint.ca_pem)
            self._verify = self._ca_file
        else:
            self._verify = os.environ.get("REQUESTS_CA_BUNDLE") or True

    def __enter__(self) -> HelmRepoClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()
        if self._ca_file:
            os.unlink(self._ca_file)
            self._ca_file = ""

    def fetch_index(
        self, *, etag: str = "", last_modified: str = "", max_bytes: int
    ) -> IndexResponse:
        """GET ``index.yaml``, conditionally; a 304 comes back as ``not_modified``."""
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        response = self._get(self.endpoint.index_url, headers=headers)
        with response:
            if response.status_code == 304:
                return IndexResponse(not_modified=True, etag=etag, last_modified=last_modified)
            self._raise_for_status(response, "index.yaml")
            body = self._read_limited(response, max_bytes, "index.yaml")
            return IndexResponse(
                not_modified=False,
                body=body,
                etag=response.headers.get("ETag", ""),
                last_modified=response.headers.get("Last-Modified", ""),
            )

    def fetch_archive(self, url: str, *, max_bytes: int) -> bytes:
        """Download a chart archive; credentials go only to the repository's own host."""
        same_host = urlsplit(url).netloc == urlsplit(self.endpoint.url).netloc
        response = self._get(url, send_credentials=same_host)
        with response:
            self._raise_for_status(response, url.rsplit("/", 1)[-1])
            return self._read_limited(response, max_bytes, "the chart archive")

    # --- internals -----------------------------------------------------------------

    def _get(self, url: str, *, headers=None, send_credentials: bool = True) -> requests.Response:
        auth = None
        if send_credentials and self.endpoint.username:
            auth = (self.endpoint.username, self.endpoint.password)
        timeout = (self.endpoint.timeout, self.endpoint.timeout)
        self.requests_made += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", InsecureRequestWarning)
                return self._session.get(
                    url,
                    headers=headers or {},
                    auth=auth,
                    timeout=timeout,
                    verify=self._verify,
                    stream=True,
                )
        except requests.exceptions.SSLError as exc:
            raise HelmRepoError(
                f"TLS to {urlsplit(url).netloc} failed: the certificate is not trusted "
                f"with the chosen TLS option ({short(exc)})."
            ) from None
        except requests.exceptions.Timeout:
            raise HelmRepoError(
                f"{urlsplit(url).netloc} did not answer within {self.endpoint.timeout:g} s."
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise HelmRepoError(f"Cannot reach {urlsplit(url).netloc}: {short(exc)}") from None
        except requests.exceptions.RequestException as exc:
            raise HelmRepoError(f"Request to {url} failed: {short(exc)}") from None

    def _raise_for_status(self, response: requests.Response, what: str) -> None:
        status = response.status_code
        if status == 200:
            return
        host = urlsplit(response.url).netloc
        if status in (401, 403):
            if self.endpoint.username:
                raise HelmRepoError(
                    f"{host} refused the username and password (HTTP {status}) for {what}."
                )
            raise HelmRepoError(
                f"{host} needs credentials for {what} (HTTP {status}): make the repository "
                "private and give a username and password."
            )
        if status == 404:
            raise HelmRepoError(
                f"{host} has no {what} at {response.url} (HTTP 404): check the repository URL."
            )
        if status in (429, 503):
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            hint = f" and asked to retry after {wait:g} s" if wait is not None else ""
            raise HelmRepoError(f"{host} is rate limiting (HTTP {status}){hint}.", retry_after=wait)
        raise HelmRepoError(f"{host} answered HTTP {status} {response.reason} for {what}.")

    @staticmethod
    def _read_limited(response: requests.Response, max_bytes: int, what: str) -> bytes:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise HelmRepoError(
                f"{what} is {int(declared):,} bytes, more than the limit of {max_bytes:,}."
            )
        chunks, size = [], 0
        try:
            for chunk in response.iter_content(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise HelmRepoError(f"{what} is larger than the limit of {max_bytes:,} bytes.")
                chunks.append(chunk)
        except requests.exceptions.RequestException as exc:
            raise HelmRepoError(f"Reading {what} failed part-way: {short(exc)}") from None
        return b"".join(chunks)


def short(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
