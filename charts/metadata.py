"""Chart metadata from hostile upstreams, made well-typed and JSON-safe before it is kept.

An ``index.yaml`` entry or an OCI config blob is someone else's data: ``sources: 5``
where Helm has a list, ``!!binary``, ``.nan``, ``1e400``, NUL characters, a version
written as the number ``1.10``. :func:`normalise_metadata` turns one entry into exactly
the fields Helm's ``chart.Metadata`` (plus the index's ``urls``, ``digest``, ``created``,
``removed``) has, each with Helm's type — strings where Helm has strings, lists of
strings where it has lists, a string-to-string map for annotations — and drops what Helm
does not know. Pages render only this normalised data.

The rules an entry must meet to be kept at all are Helm's own index loader's
(``ChartVersion.Validate``): a name that is a plain file name (no ``/``), a version
Helm's semver parser accepts, and a chart type of ``application`` or ``library``. The
name and version are kept exactly as written: the YAML is read without type
resolution (:data:`charts.sync.helm.YamlLoader` is a base loader), so ``1.10`` stays
``"1.10"``; a version that is not text (JSON ``1.1`` or ``true``) refuses the entry
rather than name a version that does not exist.

No Django here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from charts.semver import is_helm_version

# Helm's chart.Metadata fields, with the index's own, and their types.
TEXT_FIELDS = {
    "name": 255,
    "version": 255,
    "description": 5000,
    "home": 1000,
    "icon": 1000,
    "apiVersion": 32,
    "condition": 500,
    "tags": 500,
    "appVersion": 255,
    "kubeVersion": 255,
    "type": 32,
    "digest": 100,
    "created": 64,
}
TEXT_LIST_FIELDS = {"sources": 1000, "keywords": 100, "urls": 1000}
BOOL_FIELDS = ("deprecated", "removed")
MAX_LIST_ITEMS = 100
MAX_ANNOTATIONS = 100
_DEPENDENCY_TEXT = ("name", "version", "repository", "condition", "alias")
_MAINTAINER_TEXT = ("name", "email", "url")
# C0 controls other than tab and newline, DEL, and the surrogates JSON cannot carry.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")
# YAML 1.1 booleans, as Helm's YAML library (go-yaml v2) reads them.
_TRUE = {"true", "yes", "on", "y"}
_FALSE = {"false", "no", "off", "n", ""}


class MetadataError(ValueError):
    """An entry Helm would not load either; the message names the field."""


def clean_text(value: str, limit: int) -> str:
    """Text without NUL or other control characters, at most ``limit`` characters."""
    if not value.isprintable():  # the rare case: only then the (slower) substitution
        value = _UNPRINTABLE.sub("", value)
    return value if len(value) <= limit else value[:limit]


def _text(value: Any, limit: int) -> str | None:
    """A scalar as text; None for what is no text (a mapping, a list, NaN, infinity)."""
    if type(value) is str:  # nearly always: the index is read without type resolution
        return clean_text(value, limit)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)[:limit]
    if isinstance(value, float):
        return repr(value)[:limit] if math.isfinite(value) else None
    if isinstance(value, bytes):
        return None
    if isinstance(value, str):
        return clean_text(value, limit)
    return None


def _text_list(value: Any, limit: int) -> list[str]:
    items = value if isinstance(value, list) else [value]
    texts = (_text(item, limit) for item in items[:MAX_LIST_ITEMS] if item is not None)
    return [t for t in texts if t]


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() in _TRUE


def _records(value: Any, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    records = []
    for item in value[:MAX_LIST_ITEMS] if isinstance(value, list) else []:
        if not isinstance(item, Mapping):
            continue
        record = {}
        for field in fields:
            text = _text(item.get(field), 1000)
            if text:
                record[field] = text
        if record:
            records.append(record)
    return records


def _dependencies(value: Any) -> list[dict[str, Any]]:
    dependencies = _records(value, _DEPENDENCY_TEXT)
    raw = value if isinstance(value, list) else []
    originals = [item for item in raw[:MAX_LIST_ITEMS] if isinstance(item, Mapping)]
    for dependency, original in zip(dependencies, originals, strict=False):
        tags = _text_list(original.get("tags"), 255) if original.get("tags") else []
        if tags:
            dependency["tags"] = tags
        if "enabled" in original:
            dependency["enabled"] = _bool(original.get("enabled"))
    return dependencies


def _annotations(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    annotations = {}
    for key, item in list(value.items())[:MAX_ANNOTATIONS]:
        name, text = _text(key, 255), _text(item, 5000)
        if name and text is not None:
            annotations[name] = text
    return annotations


def normalise_metadata(raw: Mapping[str, Any], *, chart: str = "") -> dict[str, Any]:
    """Helm's fields of one chart version, typed and JSON-safe; :class:`MetadataError` when
    Helm's loader would refuse the entry. ``chart`` names it when ``name`` is missing."""
    if not isinstance(raw, Mapping):
        raise MetadataError("it is not a mapping of chart fields")
    meta: dict[str, Any] = {}
    for field, limit in TEXT_FIELDS.items():
        value = raw.get(field)
        if value is None:
            continue
        if field in ("name", "version") and not isinstance(value, str):
            # Written as a number or a boolean, its exact text is lost: 1.10 reads 1.1.
            raise MetadataError(
                f"its {field} {value!r} is not text: write it in quotes "
                f'(for example {field}: "{value}")'
            )
        text = _text(value, limit)
        if text:
            meta[field] = text
    for field, limit in TEXT_LIST_FIELDS.items():
        if raw.get(field) is not None:
            items = _text_list(raw.get(field), limit)
            if items:
                meta[field] = items
    for field in BOOL_FIELDS:
        if field in raw and _bool(raw.get(field)):
            meta[field] = True
    maintainers = _records(raw.get("maintainers"), _MAINTAINER_TEXT)
    if maintainers:
        meta["maintainers"] = maintainers
    dependencies = _dependencies(raw.get("dependencies"))
    if dependencies:
        meta["dependencies"] = dependencies
    annotations = _annotations(raw.get("annotations"))
    if annotations:
        meta["annotations"] = annotations
    meta.setdefault("name", clean_text(chart, 255))
    _check_as_helm_does(meta)
    return meta


def _check_as_helm_does(meta: dict[str, Any]) -> None:
    name, version = meta.get("name", ""), meta.get("version", "")
    if not name:
        raise MetadataError("it has no name")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise MetadataError(f"its name {name!r} is not a plain chart name")
    if not version:
        raise MetadataError("it has no version")
    if not is_helm_version(version):
        raise MetadataError(f"its version {version!r} is not a semantic version")
    if meta.get("type", "") not in ("", "application", "library"):
        raise MetadataError(f"its type {meta['type']!r} is neither application nor library")
