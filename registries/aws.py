"""The one function that talks to AWS: an ECR authorization token for a registry.

Framework-free: the caller passes region, account, keys and endpoint. With empty
access keys, boto3's default credential chain is used (environment, shared
config, the EC2/ECS role), which is what "EC2 IAM Role" means in the form.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProxyConnectionError,
    ReadTimeoutError,
)

# Error codes meaning "these keys are not valid", as opposed to "not allowed".
_REJECTED_KEY_CODES = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "ExpiredTokenException",
    "ExpiredToken",
}
_DENIED_CODES = {"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"}


@dataclass(frozen=True)
class EcrToken:
    """Docker credentials for an ECR registry, valid until ``expires_at`` (12 hours on AWS)."""

    username: str
    password: str = field(repr=False)
    proxy_endpoint: str  # e.g. "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    expires_at: dt.datetime

    @property
    def host(self) -> str:
        """The registry API host, ``proxy_endpoint`` without its scheme."""
        return self.proxy_endpoint.split("://", 1)[-1].rstrip("/")


class AwsError(Exception):
    """Getting an ECR token failed; ``str(e)`` says what to fix and never holds a secret.

    ``unreachable`` tells "AWS (or the proxy to it) could not be reached" from a refusal.
    """

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def ecr_authorization_token(
    *,
    region: str,
    registry_id: str,
    access_key_id: str = "",
    secret_access_key: str = "",
    endpoint_url: str | None = None,
    timeout: float = 10.0,
    proxy_url: str = "",
    proxy_username: str = "",
    proxy_password: str = "",
) -> EcrToken:
    """Ask ECR (``GetAuthorizationToken``) for Docker credentials to registry ``registry_id``.

    Empty keys use the ambient credentials (EC2 instance role, environment).
    ``endpoint_url`` points at another ECR endpoint (a VPC endpoint, or moto in tests).
    ``proxy_url`` (with its credentials apart) sends the call through an HTTP proxy.
    """
    kwargs = {"registryIds": [registry_id]} if registry_id else {}
    response = _call_ecr(
        lambda client: client.get_authorization_token(**kwargs),
        what="token",
        region=region,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        endpoint_url=endpoint_url,
        timeout=timeout,
        proxy_url=proxy_url,
        proxy_username=proxy_username,
        proxy_password=proxy_password,
    )

    data = (response.get("authorizationData") or [None])[0]
    if not data:
        raise AwsError("ECR answered without authorization data.")
    try:
        decoded = base64.b64decode(data["authorizationToken"], validate=True).decode()
    except (KeyError, binascii.Error, UnicodeDecodeError):
        raise AwsError("ECR answered with an authorization token that is not base64.") from None
    username, sep, password = decoded.partition(":")
    if not sep or not password:
        raise AwsError("ECR answered with an authorization token that is not 'user:password'.")
    return EcrToken(
        username=username,
        password=password,
        proxy_endpoint=data.get("proxyEndpoint", ""),
        expires_at=data.get("expiresAt") or dt.datetime.now(dt.UTC),
    )


@dataclass(frozen=True)
class EcrImage:
    """One image of a repository as ``DescribeImages`` describes it."""

    digest: str
    tags: tuple[str, ...]
    artifact_media_type: str  # the config's media type, e.g. Helm's; "" when not given
    manifest_media_type: str


@dataclass(frozen=True)
class EcrRepository:
    name: str
    images: tuple[EcrImage, ...]


# DescribeImages answers at most 1000 images a page; a repository is read to this many.
MAX_ECR_IMAGES = 100_000
MAX_ECR_REPOSITORIES = 100_000


def ecr_repositories(
    *,
    registry_id: str,
    wanted: Callable[[str], bool] = lambda name: True,
    seconds: float | None = None,
    **access: Any,
) -> list[EcrRepository]:
    """Every repository of registry ``registry_id`` (``DescribeRepositories``), and for each
    one ``wanted(name)`` accepts, its images (``DescribeImages``), all pages read.

    ``access`` takes the keyword arguments of :func:`ecr_authorization_token` but
    ``registry_id``. A listing cut short raises :class:`AwsError`; none is returned in part.
    ``seconds`` bounds the whole listing, every page of it (AWS answering pages slowly, or
    empty pages with new tokens, forever): past it the listing fails whole.
    """
    ids = {"registryId": registry_id} if registry_id else {}
    ends = None if seconds is None else time.monotonic() + seconds

    def in_time() -> None:
        if ends is not None and time.monotonic() >= ends:
            raise AwsError(
                f"the ECR listing did not finish within {seconds:g} s (WHARF_OCI_CATALOG_DEADLINE)",
                unreachable=True,
            )

    def call(client: Any) -> list[EcrRepository]:
        names: list[str] = []
        for page in client.get_paginator("describe_repositories").paginate(**ids):
            in_time()
            names += [r["repositoryName"] for r in page.get("repositories", [])]
            if len(names) > MAX_ECR_REPOSITORIES:
                raise AwsError(f"ECR lists more than {MAX_ECR_REPOSITORIES:,} repositories.")
        repositories = []
        for name in dict.fromkeys(names):
            if not wanted(name):
                continue
            images: list[EcrImage] = []
            pages = client.get_paginator("describe_images").paginate(repositoryName=name, **ids)
            for page in pages:
                in_time()
                images += [_ecr_image(detail) for detail in page.get("imageDetails", [])]
                if len(images) > MAX_ECR_IMAGES:
                    raise AwsError(f"ECR lists more than {MAX_ECR_IMAGES:,} images in {name}.")
            repositories.append(EcrRepository(name, tuple(images)))
        return repositories

    return _call_ecr(
        call,
        what="repository listing",
        permission="ecr:DescribeRepositories and ecr:DescribeImages",
        **access,
    )


def _ecr_image(detail: dict) -> EcrImage:
    return EcrImage(
        digest=str(detail.get("imageDigest") or ""),
        tags=tuple(str(t) for t in detail.get("imageTags") or ()),
        artifact_media_type=str(detail.get("artifactMediaType") or ""),
        manifest_media_type=str(detail.get("imageManifestMediaType") or ""),
    )


def ecr_client(session: boto3.session.Session, config: Config, endpoint_url: str | None) -> Any:
    """An ECR client of ``session``; a test puts a botocore ``Stubber`` on what it returns."""
    return session.client("ecr", config=config, endpoint_url=endpoint_url)


def _call_ecr(
    call,
    *,
    what: str,
    region: str,
    access_key_id: str = "",
    secret_access_key: str = "",
    endpoint_url: str | None = None,
    timeout: float = 10.0,
    proxy_url: str = "",
    proxy_username: str = "",
    proxy_password: str = "",
    permission: str = "ecr:GetAuthorizationToken",
):
    """``call(client)`` with an ECR client built from these settings; every failure is an
    :class:`AwsError` (``what`` names the request in messages, ``permission`` the IAM
    action a refusal asks for)."""
    if bool(access_key_id) != bool(secret_access_key):
        raise AwsError("Enter both the AWS access key ID and the secret access key.")
    if not region:
        raise AwsError("The AWS region is missing: it is part of the ECR registry URL.")
    proxies = {}
    if proxy_url:
        with_credentials = _proxy_with_credentials(proxy_url, proxy_username, proxy_password)
        proxies = {"http": with_credentials, "https": with_credentials}
    config = Config(
        region_name=region,
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"mode": "standard", "max_attempts": 2},
        proxies=proxies or None,
    )
    # A session per call: boto3's default session is not safe to share between threads.
    session = boto3.session.Session(
        aws_access_key_id=access_key_id or None,
        aws_secret_access_key=secret_access_key or None,
        region_name=region,
    )
    ambient = not access_key_id
    try:
        client = ecr_client(session, config, endpoint_url or None)
        return call(client)
    except (NoCredentialsError, PartialCredentialsError):
        raise AwsError(
            "No AWS credentials were found for the dashboard. Use “User Auth” with an access "
            "key, or run Wharf where an IAM role (EC2 instance profile) provides them."
        ) from None
    except ClientError as exc:
        raise _client_error(exc, region=region, ambient=ambient, permission=permission) from None
    except ProxyConnectionError:
        # Its message holds the proxy URL, credentials included: never shown.
        raise AwsError(
            f"Could not reach the ECR API through the proxy {_proxy_address(proxy_url)}. Check "
            "the proxy URL and credentials, and that the proxy is running and can reach AWS.",
            unreachable=True,
        ) from None
    except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError) as exc:
        where = endpoint_url or f"the ECR endpoint of region {region}"
        raise AwsError(
            f"Could not reach {where} ({type(exc).__name__}). Check the region and that the "
            "dashboard's network can reach AWS.",
            unreachable=True,
        ) from None
    except BotoCoreError as exc:
        message = str(exc)
        if proxies:
            message = message.replace(proxies["https"], _proxy_address(proxy_url))
        raise AwsError(f"The ECR {what} request failed: {message}") from None
    except ValueError as exc:  # e.g. an invalid region name or endpoint URL
        raise AwsError(f"The ECR {what} request could not be made: {exc}") from None


def _proxy_address(proxy_url: str) -> str:
    return urlsplit(proxy_url).netloc.rsplit("@", 1)[-1] or proxy_url


def _proxy_with_credentials(proxy_url: str, username: str, password: str) -> str:
    if not (username or password):
        return proxy_url
    parts = urlsplit(proxy_url)
    userinfo = f"{quote(username, safe='')}:{quote(password, safe='')}"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{_proxy_address(proxy_url)}"))


def _client_error(
    exc: ClientError, *, region: str, ambient: bool, permission: str = "ecr:GetAuthorizationToken"
) -> AwsError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "Unknown"))
    message = str(error.get("Message", ""))
    if message.lstrip().startswith("<"):
        # An XML error body botocore did not parse for this JSON API (proxies, emulators).
        code = _xml_field("Code", message) or code
        message = _xml_field("Message", message)
    message = message.strip().rstrip(".")
    detail = f"{code}: {message}" if message else code
    who = "the ambient credentials (IAM role or environment)" if ambient else "the access key"
    if code in _REJECTED_KEY_CODES:
        return AwsError(f"AWS rejected {who}: {detail}. Check the access key ID and secret.")
    if code in _DENIED_CODES:
        return AwsError(
            f"AWS refused the request of {who}: {detail}. The IAM policy needs {permission}."
        )
    return AwsError(f"ECR in {region} answered {detail}.")


def _xml_field(name: str, document: str) -> str:
    match = re.search(rf"<{name}>([^<]{{0,300}})</{name}>", document)
    return match.group(1).strip() if match else ""
