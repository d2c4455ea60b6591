"""Indexing a classic Helm repository from its ``index.yaml``.

A conditional GET (``If-None-Match`` / ``If-Modified-Since``), then a skip by the digest
of the content, then a parse with the libyaml C loader and one diff of the whole index
against the database, written in bulk.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING

import yaml
from django.conf import settings

from charts.helmrepo import HelmEndpoint, HelmRepoClient
from charts.models import ChartSource
from charts.sync.writer import SyncError, Tally, VersionData, apply_listing, text

if TYPE_CHECKING:
    from charts.sync.run import Progress

try:  # the C loader is many times faster on a big index.yaml
    YamlLoader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    YamlLoader = yaml.SafeLoader


def sync_helm_source(source: ChartSource, progress: Progress) -> Tally:
    """Index a classic Helm repository from its ``index.yaml``."""
    endpoint = source.helm_repository.endpoint()
    with HelmRepoClient(endpoint) as client:
        try:
            response = client.fetch_index(
                etag=source.etag,
                last_modified=source.last_modified,
                max_bytes=settings.WHARF_HELM_INDEX_MAX_BYTES,
                deadline=settings.WHARF_HELM_INDEX_DEADLINE,
            )
        finally:
            progress.http_requests = client.requests_made
    if response.not_modified:
        return Tally()
    digest = "sha256:" + hashlib.sha256(response.body).hexdigest()
    state = {"etag": response.etag, "last_modified": response.last_modified}
    if digest == source.content_digest:
        ChartSource.objects.filter(pk=source.pk).update(**state)
        return Tally()
    entries = parse_index(response.body, endpoint)
    tally = apply_listing(source, entries, progress)
    if not tally.errors:
        # Only a complete import may let the next run skip this content.
        ChartSource.objects.filter(pk=source.pk).update(content_digest=digest, **state)
    return tally


# Cheap first look: an alias is "*name" after a space, "-", "[", "{", "," or ":". Text such
# as "*bold*" in a description also matches; the event scan below then decides.
_MAYBE_ALIAS = re.compile(rb"[\s\[{,:-]\*[^\s*]")


def uses_aliases(body: bytes) -> bool:
    """Whether the YAML holds an alias, found by the parser's events (nothing is expanded)."""
    return any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(body, Loader=YamlLoader))


def parse_index(body: bytes, endpoint: HelmEndpoint) -> list[VersionData]:
    """The versions in an ``index.yaml``; a malformed index raises :class:`SyncError`."""
    try:
        if _MAYBE_ALIAS.search(body) and uses_aliases(body):
            raise SyncError(
                "index.yaml uses YAML aliases (*name), which Helm never writes; it is refused "
                "so that a crafted index cannot expand to fill the worker's memory."
            )
        document = yaml.load(body, Loader=YamlLoader)  # noqa: S506 - a safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SyncError(f"index.yaml is not valid YAML{where}: {exc.problem}.") from None
    except (yaml.YAMLError, ValueError) as exc:
        raise SyncError(f"index.yaml is not valid YAML: {exc}.") from None
    if not isinstance(document, dict) or not isinstance(document.get("entries"), dict):
        raise SyncError(
            "index.yaml has no “entries” mapping, so it is not a Helm repository index."
        )
    versions: list[VersionData] = []
    for name, items in document["entries"].items():
        if not isinstance(name, str) or not isinstance(items, list):
            raise SyncError(f"index.yaml entry {name!r} is not a list of chart versions.")
        for item in items:
            if not isinstance(item, dict):
                raise SyncError(f"index.yaml entry {name!r} holds something that is not a version.")
            version = item.get("version")
            if not isinstance(version, str | int | float) or not str(version):
                raise SyncError(
                    f"index.yaml entry {name!r} has a version without a version number."
                )
            version = str(version)
            urls = item.get("urls") or []
            url = urls[0] if isinstance(urls, list) and urls and isinstance(urls[0], str) else ""
            digest = text(item.get("digest"), 100)
            created = item.get("created")
            meta = dict(item)
            meta.pop("urls", None)
            if created is not None and not isinstance(created, str):
                meta["created"] = (
                    created.isoformat() if hasattr(created, "isoformat") else str(created)
                )
            if digest:
                fingerprint = f"{digest}|{meta.get('created', '')}"
            else:
                fingerprint = hashlib.sha256(
                    json.dumps(meta, sort_keys=True, default=str).encode()
                ).hexdigest()
            versions.append(
                VersionData(
                    chart=name[:255],
                    version=version[:255],
                    fingerprint=fingerprint[:100],
                    metadata=meta,
                    digest=digest,
                    archive_url=endpoint.resolve(url)[:1000] if url else "",
                )
            )
    return versions
