"""Indexing a classic Helm repository from its ``index.yaml``.

A conditional GET (``If-None-Match`` / ``If-Modified-Since``), then a skip by the digest
of the content, then a read chart by chart streamed into one diff of the whole index
against the database, written in bulk.

Reading: fastyaml-rs (a Rust YAML 1.2 parser) reads a 20 MB index 10-15x faster than
PyYAML's C loader. An index as Helm writes it (``entries:`` then one block per chart) is
read one chart at a time, so the whole document never sits in memory at once; any other
layout is read whole. Wharf keeps every scalar as the text written (``1.10`` is
``"1.10"``, ``yes`` is ``"yes"``, a date is its text: what PyYAML's base loader gave
before), and a YAML 1.2 parser types some plain scalars (numbers, ``true``, ``null``,
``~``) and applies ``<<`` merge keys. So a chart whose values are not all text, or that
holds ``<<``, is read again, alone, with PyYAML's base loader: its exact text is kept and
nothing is re-updated because the parser changed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import fast_yaml
import yaml
from django.conf import settings

from charts.helmrepo import HelmEndpoint, HelmRepoClient
from charts.metadata import MetadataError, clean_text, normalise_metadata
from charts.models import ChartSource
from charts.sync.writer import SyncError, Tally, VersionData, apply_listing

if TYPE_CHECKING:
    from charts.sync.run import Progress

# A base loader: every scalar stays the text written (1.10 is "1.10", not 1.1; no dates,
# no !!binary, no .nan), and charts.metadata gives each field Helm's type. Used for the
# charts the fast parser cannot give as text (see the module's docstring).
YamlLoader: type[yaml.BaseLoader] | type[yaml.CBaseLoader] = getattr(
    yaml, "CBaseLoader", yaml.BaseLoader
)

# Nesting a document may have: a Helm index needs 7 (entries, chart, versions, version,
# dependencies, dependency, tags); deeper is refused before it costs anything.
MAX_DEPTH = 64


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
    parsed = ParsedIndex()
    # Streamed: each chart is read, checked and handed to the writer in turn.
    tally = apply_listing(
        source, parsed.read(response.body, endpoint), progress, keep=parsed.refused_keys
    )
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

    def read(self, body: bytes, endpoint: HelmEndpoint) -> Iterator[VersionData]:
        """The versions of ``body``, chart by chart, refusing entries on the way. A
        malformed index raises :class:`SyncError` (possibly after some charts: nothing
        is marked removed then, and the content is read again next time)."""
        for name, items in read_entries(body):
            chart = clean_text(str(name), 255)
            if not chart or "/" in chart or "\\" in chart or chart in (".", ".."):
                self.refuse(chart, "", "its name is not a plain chart name")
                continue
            if not isinstance(items, list):
                self.refuse(chart, "", "it is not a list of chart versions")
                continue
            for item in items:
                version = item.get("version") if isinstance(item, dict) else None
                version_text = clean_text(version, 255) if isinstance(version, str) else ""
                try:
                    meta = normalise_metadata(item, chart=chart)
                except MetadataError as exc:
                    self.refuse(chart, version_text, str(exc))
                    continue
                yield _version_of(chart, meta, endpoint)


# An index may share values through anchors and aliases (PyYAML's safe_dump writes shared
# lists that way, and Helm reads them). Refuse a document that expands to far more than it
# holds (an "alias bomb" of a few hundred bytes can stand for billions of values): the fast
# parser within a budget of bytes, the base loader by counting values.
EXPANSION_FACTOR = 10
EXPANSION_SLACK = 100_000
ALIAS_BUDGET_MIN, ALIAS_BUDGET_MAX = 2**20, 64 * 2**20
_ALIAS_BOMB = (
    "index.yaml uses YAML aliases (*name) that expand to far more than the file "
    "holds; it is refused so that a crafted index cannot fill the worker's memory."
)
_TOO_DEEP = (
    f"index.yaml nests values more than {MAX_DEPTH} levels deep; a Helm index needs "
    "fewer than 10, so it is refused."
)


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


def all_text(value: Any) -> bool:
    """Whether every key and scalar in ``value`` is a string (as the base loader gives)."""
    pending = [value]  # a loop, not recursion: it runs over every value of the index
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is dict:
            for key, child in item.items():
                if type(key) is not str:
                    return False
                if type(child) is not str:
                    pending.append(child)
        elif kind is list:
            pending.extend(child for child in item if type(child) is not str)
        elif kind is not str:
            return False
    return True


def _fast_load(text: bytes) -> Any:
    """``text`` read by the fast parser; ``ValueError`` with its message when it cannot."""
    budget = min(ALIAS_BUDGET_MAX, max(ALIAS_BUDGET_MIN, EXPANSION_FACTOR * len(text)))
    return fast_yaml.safe_load(text, max_depth=MAX_DEPTH, max_alias_bytes=budget)


def _over_a_limit(exc: ValueError) -> SyncError | None:
    """The error for a document the fast parser refused on a limit (aliases, depth);
    None when it refused it for its syntax (the base loader then has the last word)."""
    message = str(exc)
    if "resource limit" not in message:
        return None
    if "alias" in message:
        return SyncError(_ALIAS_BOMB)
    return SyncError(_TOO_DEEP)


def _entries_of(document: Any) -> dict[Any, Any]:
    if not isinstance(document, dict) or not isinstance(document.get("entries"), dict):
        raise SyncError(
            "index.yaml has no “entries” mapping, so it is not a Helm repository index."
        )
    return document["entries"]


def load_index(body: bytes) -> dict[str, Any]:
    """The whole index document, every scalar kept as the text written; :class:`SyncError`
    if the file is no Helm index at all."""
    try:
        document = _fast_load(body)
    except ValueError as exc:
        # Beyond a limit: refused. Otherwise the base loader decides, with its own message
        # (it also reads what the fast parser refuses, such as keys 1 and true together).
        refused = _over_a_limit(exc)
        if refused is not None:
            raise refused from None
        return load_index_as_text(body)
    entries = _entries_of(document)
    if b"<<" in body or not all_text(entries):
        return load_index_as_text(body)
    return document


def load_index_as_text(body: bytes) -> dict[str, Any]:
    """The whole document read by PyYAML's base loader (every scalar its text)."""
    try:
        document = yaml.load(body, Loader=YamlLoader)  # noqa: S506 - builds only str/list/dict
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SyncError(f"index.yaml is not valid YAML{where}: {exc.problem}.") from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise SyncError(f"index.yaml is not valid YAML: {exc}.") from None
    if _MAYBE_ALIAS.search(body) and uses_aliases(body) and not _within_bound(document):
        raise SyncError(_ALIAS_BOMB)
    _entries_of(document)
    return document


# --- chart by chart ------------------------------------------------------------------------

# Patterns start at a newline: Python's re then skips ahead to candidates quickly (a
# pattern starting with ^ is tried at every byte of a 20 MB index).
_ENTRIES_LINE = re.compile(rb"\nentries:[ ]*(?:#[^\n]*)?\n")
_TOP_LEVEL_LINE = re.compile(rb"\n[^\s#]")
_FIRST_CONTENT = re.compile(rb"\n( +)[^ \n#]")


class _NotByChart(Exception):
    """The index cannot be read chart by chart; it is read whole instead."""


def split_entries(body: bytes) -> list[tuple[int, int]] | None:
    """Byte ranges of the charts under ``entries:`` in an index laid out as Helm writes it
    (one key line per chart, all at one indentation); None for any other layout.

    A cut is only where a whole-document parser also starts a new key of ``entries`` (a
    line at that indentation); a cut inside a quoted or flow value leaves a chart that does
    not parse alone, and the document is then read whole.
    """
    text = b"\n" + body  # so that the first line starts after a newline too
    heads = list(_ENTRIES_LINE.finditer(text))
    if len(heads) != 1:
        return None
    start = heads[0].end() - 1  # the newline that ends the "entries:" line
    after = _TOP_LEVEL_LINE.search(text, start)
    end = after.start() if after else len(text)
    first = _FIRST_CONTENT.search(text, start, end)
    if first is None:
        return None
    indent = len(first.group(1))
    if indent > 1 and re.compile(rb"\n {1,%d}[^ \n#]" % (indent - 1)).search(text, start, end):
        return None
    key_line = re.compile(rb"\n {%d}(?:[^ \n#-]|-[^ \n])[^\n]*" % indent)
    found = list(key_line.finditer(text, start, end))
    if not found or found[0].start() != first.start():
        return None  # "entries:" holds a list, or something else comes first
    if len({m.group() for m in found}) != len(found):
        return None  # a chart listed twice: read whole, as a mapping (the last one wins)
    keys = [m.start() for m in found]  # in text: the newline before; in body: the line
    return list(zip(keys, [*keys[1:], end - 1], strict=True))


def _skeleton_ok(body: bytes, ranges: list[tuple[int, int]]) -> bool:
    """Whether the document around the charts is a valid mapping (checked before any chart
    is handed on)."""
    rest = body[: ranges[0][0]] + body[ranges[-1][1] :]
    try:
        document = _fast_load(rest)
    except ValueError:
        return False
    return isinstance(document, dict) and "entries" in document


def _read_chart(text: bytes) -> tuple[Any, Any]:
    try:
        value = _fast_load(text)
    except ValueError as exc:
        if _over_a_limit(exc) is not None:
            raise _NotByChart from None  # refused by the read of the whole document
        value = None  # the base loader decides
    if value is not None and (type(value) is not dict or len(value) != 1):
        raise _NotByChart
    if value is None or b"<<" in text or not all_text(value):
        try:
            value = yaml.load(text, Loader=YamlLoader)  # noqa: S506 - builds only str/list/dict
        except (yaml.YAMLError, ValueError, RecursionError):
            raise _NotByChart from None
        if not isinstance(value, dict) or len(value) != 1:
            raise _NotByChart
        if _MAYBE_ALIAS.search(text) and uses_aliases(text) and not _within_bound(value):
            raise _NotByChart  # refused by the read of the whole document
    return next(iter(value.items()))


def read_entries(body: bytes) -> Iterator[tuple[Any, Any]]:
    """(name, versions) of each chart in the index, every scalar the text written.

    Chart by chart where the layout allows; a chart that cannot be read alone (an alias to
    another chart's anchor, a cut that was not one) sends the rest to a read of the whole
    document, which also decides whether the index is valid YAML at all.
    """
    ranges = split_entries(body)
    done = 0
    if ranges is not None and _skeleton_ok(body, ranges):
        try:
            for start, end in ranges:
                pair = _read_chart(body[start:end])
                yield pair
                done += 1
            return
        except _NotByChart:
            pass
    for index, pair in enumerate(load_index(body)["entries"].items()):
        if index >= done:
            yield pair


def parse_index(body: bytes, endpoint: HelmEndpoint) -> ParsedIndex:
    """The versions in an ``index.yaml``. A malformed index raises :class:`SyncError`; an
    entry Helm would not load either is refused on its own, with its reason."""
    parsed = ParsedIndex()
    parsed.versions = list(parsed.read(body, endpoint))
    return parsed


# A plain relative path (no scheme, query, dot segment or escape), as Helm writes archive
# URLs: joined to the repository URL by concatenation, which is what urljoin gives for it
# (urljoin costs more than the rest of an entry's reading).
_PLAIN_PATH = re.compile(
    r"[A-Za-z0-9_][A-Za-z0-9_~+-]*(?:\.[A-Za-z0-9_~+-]+)*(?:/[A-Za-z0-9_~+-]+(?:\.[A-Za-z0-9_~+-]+)*)*"
)


def _archive_url(endpoint: HelmEndpoint, url: str) -> str:
    if _PLAIN_PATH.fullmatch(url) and urlsplit(endpoint.url).scheme in ("http", "https"):
        return endpoint.url.rstrip("/") + "/" + url
    return endpoint.resolve(url)


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
        archive_url=_archive_url(endpoint, urls[0])[:1000] if urls else "",
    )
