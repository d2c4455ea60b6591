"""Helpers for the push tests: a pushable registry, a pull with oras-py, a fake signature."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import requests

from charts.models import ChartPush
from charts.push import request_push, run_push
from charts.uploads import prepare_push
from tests.chartkit import _auth_backend
from tests.charts.helpers import oci_registry


def push_registry(server, repositories: list[str] | None = None, **fields):
    """A Registry row for a fixture server with "Push helm packages" ticked."""
    fields.setdefault("chart_source", bool(repositories))
    fields.setdefault("push_helm", True)
    return oci_registry(server, repositories or [], **fields)


def push_now(registry, archive: bytes, *, prov: bytes = b"", prefix: str = "", overwrite=False):
    """Check, record and run one push in this thread, as the page and the worker would."""
    upload = prepare_push(archive, prov, prefix)
    push = request_push(registry, None, upload, overwrite=overwrite, enqueue=False)
    return run_push(push.pk)


def pull_with_oras(server, repository: str, tag: str) -> tuple[dict, dict[str, bytes]]:
    """The manifest and every blob (by media type) of ``repository:tag``, read with oras-py."""
    import oras.provider

    verify = str(server.ca_path) if server.tls else True
    registry = oras.provider.Registry(
        hostname=server.host,
        insecure=not server.tls,
        tls_verify=verify,
        auth_backend=_auth_backend("https" if server.tls else "http", server.host, verify),
    )
    registry.session.trust_env = False
    if server.username:
        registry.auth.set_basic_auth(server.username, server.password)
    container = registry.get_container(f"{server.host}/{repository}:{tag}")
    manifest = registry.get_manifest(container)
    blobs = {}
    with tempfile.TemporaryDirectory(prefix="wharf-pull-") as tmp:
        descriptors = [manifest["config"], *manifest["layers"]]
        for n, descriptor in enumerate(descriptors):
            path = Path(tmp, str(n))
            registry.download_blob(container, descriptor["digest"], str(path))
            blobs[descriptor["mediaType"]] = path.read_bytes()
    return manifest, blobs


def tags_of(server, repository: str) -> list[str]:
    """The tags of ``repository`` ([] if it does not exist), read directly."""
    auth = (server.username, server.password) if server.username else None
    verify = str(server.ca_path) if server.tls else False
    with requests.Session() as session:
        session.trust_env = False
        answer = session.get(
            f"{server.url}/v2/{repository}/tags/list", auth=auth, verify=verify, timeout=10
        )
    if answer.status_code == 404:
        return []
    answer.raise_for_status()
    return answer.json().get("tags") or []


def fake_provenance(archive: bytes, filename: str) -> bytes:
    """A provenance file shaped like ``helm package --sign`` writes (the signature is fake)."""
    digest = hashlib.sha256(archive).hexdigest()
    return (
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n"
        "apiVersion: v2\nname: web\n\n...\nfiles:\n"
        f"  {filename}: sha256:{digest}\n"
        "-----BEGIN PGP SIGNATURE-----\n\nwsBcBAEBCgAQBQJmAAAACRB0ZXN0a2V5AAAAAA==\n=abcd\n"
        "-----END PGP SIGNATURE-----\n"
    ).encode()


def finished(push: ChartPush) -> ChartPush:
    push.refresh_from_db()
    return push
