"""Indexing a classic Helm repository from its ``index.yaml``.

A conditional GET (``If-None-Match`` / ``If-Modified-Since``), then a skip by the digest
of the content, then a parse with the libyaml C loader and one diff of the whole index
against the database, written in bulk.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml
from django.conf import settings

from charts.helmrepo import HelmEndpoint, HelmRepoClient
from charts.metadata import MetadataError, clean_text, normalise_metadata
from charts.models import ChartSource
from charts.sync.writer import SyncError, Tally, VersionData, apply_listing

if TYPE_CHECKING:
    from charts.sync.run import Progress

# A base loader: every scalar stays the text written (1.10 is "1.10", not 1.1; no dates,
# no !!binary, no .nan), and charts.metadata gives each field Helm's type. The C one is
# many times faster on a big index.yaml.
YamlLoader: type[yaml.BaseLoader] | type[yaml.CBaseLoader] = getattr(
    yaml, "CBaseLoader", yaml.BaseLoader
)


def sync_helm_source(source: ChartSource, progress: Progress) -> Tally:
    """Index a classic Helm repository from its ``index.yaml``."""
    endpoint = source.helm.endpoint()
    with HelmRepoClient(endpoint) as client:
        progress.track(client)
        response = client.fetch_index(
            etag=source.etag,
            last_modified=source.last_modified,
            max_bytes=settings.WHARF_HELM_INDEX_MAX_BYTES,
            deadline=settings.WHARF_HELM_INDEX_DEADLINE,
        )
    if response.not_modified:
        return Tally()
    digest = "sha256:" + hashlib.sha256(response.body).hexdigest()
    state = {"etag": response.etag, "last_modified": response.last_modified}
    if digest == source.content_digest:
        ChartSource.objects.filter(pk=source.pk).update(**state)
        return Tally()
    parsed = parse_index(response.body, endpoint)
    tally = apply_listing(source, parsed.versions, progress, keep=parsed.refused_keys)
    tally.warnings += parsed.refused
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


@dataclass
class ParsedIndex:
    """The versions of an ``index.yaml``, and the entries refused one by one (with why)."""

    versions: list[VersionData] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    # (chart, version) of refused entries that name one: what they held is left as it was.
    refused_keys: set[tuple[str, str]] = field(default_factory=set)

    def refuse(self, chart: str, version: str, why: str) -> None:
        label = f"{chart} {version}".strip() if version else chart
        self.refused.append(f"Skipped {label!r} from index.yaml: {why}.")
        if version:
            self.refused_keys.add((chart, version))


# An index may share values through anchors and aliases (PyYAML's safe_dump writes shared
# lists that way, and Helm reads them). Aliases are never copied in memory, but what is
# built from the document walks it expanded: refuse a document that expands to far more
# than it holds (an "alias bomb" of a few hundred bytes can stand for billions of values).
EXPANSION_FACTOR = 10
EXPANSION_SLACK = 100_000


def expanded_size_within(document: Any, limit_factor: int = EXPANSION_FACTOR) -> bool:
    """Whether ``document``, with every alias expanded, holds at most ``limit_factor``
    times its distinct values (plus some slack): counted once per distinct value."""
    sizes: dict[int, int] = {}
    distinct = 0

    def size(value: Any) -> int:
        nonlocal distinct
        key = id(value)
        if key in sizes:
            return sizes[key]
        distinct += 1
        sizes[key] = 1  # a cycle counts once (the base loader cannot build one anyway)
        children = value.values() if isinstance(value, dict) else value
        total = 1
        if isinstance(value, dict | list):
            for child in children:
                total += size(child)
        sizes[key] = total
        return total

    total = size(document)
    return total <= limit_factor * distinct + EXPANSION_SLACK


def _within_bound(document: Any) -> bool:
    try:
        return expanded_size_within(document)
    except RecursionError:  # nested deeper than Python walks: no index is
        return False


def load_index(body: bytes) -> dict[str, Any]:
    """The index document, every scalar kept as the text written; :class:`SyncError` if the
    file is no Helm index at all."""
    try:
        document = yaml.load(body, Loader=YamlLoader)  # noqa: S506 - builds only str/list/dict
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SyncError(f"index.yaml is not valid YAML{where}: {exc.problem}.") from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise SyncError(f"index.yaml is not valid YAML: {exc}.") from None
    if _MAYBE_ALIAS.search(body) and uses_aliases(body) and not _within_bound(document):
        raise SyncError(
            "index.yaml uses YAML aliases (*name) that expand to far more than the file "
            "holds; it is refused so that a crafted index cannot fill the worker's memory."
        )
    if not isinstance(document, dict) or not isinstance(document.get("entries"), dict):
        raise SyncError(
            "index.yaml has no “entries” mapping, so it is not a Helm repository index."
        )
    return document


def parse_index(body: bytes, endpoint: HelmEndpoint) -> ParsedIndex:
    """The versions in an ``index.yaml``. A malformed index raises :class:`SyncError`; an
    entry Helm would not load either is refused on its own, with its reason."""
    document = load_index(body)
    parsed = ParsedIndex()
    for name, items in document["entries"].items():
        chart = clean_text(str(name), 255)
        if not chart or "/" in chart or "\\" in chart or chart in (".", ".."):
            parsed.refuse(chart, "", "its name is not a plain chart name")
            continue
        if not isinstance(items, list):
            parsed.refuse(chart, "", "it is not a list of chart versions")
            continue
        for item in items:
            version = item.get("version") if isinstance(item, dict) else None
            version_text = clean_text(version, 255) if isinstance(version, str) else ""
            try:
                meta = normalise_metadata(item, chart=chart)
            except MetadataError as exc:
                parsed.refuse(chart, version_text, str(exc))
                continue
            parsed.versions.append(_version_of(chart, meta, endpoint))
    return parsed


def _version_of(chart: str, meta: dict[str, Any], endpoint: HelmEndpoint) -> VersionData:
    urls = meta.pop("urls", [])
    digest = meta.get("digest", "")
    if digest:
        fingerprint = f"{digest}|{meta.get('created', '')}"
    else:
        fingerprint = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()
    return VersionData(
        chart=chart,
        version=meta["version"],
        fingerprint=fingerprint[:100],
        metadata=meta,
        digest=digest,
        archive_url=endpoint.resolve(urls[0])[:1000] if urls else "",
    )
