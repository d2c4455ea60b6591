"""Helm's layout of a chart in an OCI registry: media types, the config blob, tags.

One module for what ``helm push`` writes and ``helm pull`` reads, so that pushing
(:mod:`charts.push`), indexing (:mod:`charts.sync`) and the test kit agree by
construction:

- a config blob holding Chart.yaml's metadata as JSON, encoded as Go's encoder does;
- the chart archive as one layer, the provenance file as another;
- an OCI image manifest with Helm's ``org.opencontainers.image.*`` annotations;
- the tag is the version with ``+`` written ``_`` (OCI tags cannot hold ``+``).

No Django and no network here: plain data in, bytes out.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

OCI_MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
HELM_CONFIG_MEDIA_TYPE = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART_CONTENT_MEDIA_TYPE = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
HELM_PROVENANCE_MEDIA_TYPE = "application/vnd.cncf.helm.chart.provenance.v1.prov"
# What a chart layer may be called: Helm's, and what Helm 3.0 to 3.7's experimental OCI
# support pushed.
HELM_CHART_MEDIA_TYPES = (HELM_CHART_CONTENT_MEDIA_TYPE, "application/tar+gzip")

# chart.Metadata in Helm's Go struct order: Helm marshals exactly these, empty ones left out.
HELM_METADATA_FIELDS = (
    "name",
    "home",
    "sources",
    "version",
    "description",
    "keywords",
    "maintainers",
    "icon",
    "apiVersion",
    "condition",
    "tags",
    "appVersion",
    "deprecated",
    "annotations",
    "kubeVersion",
    "dependencies",
    "type",
)
# Chart annotations may not override what the chart's own fields say.
_IMMUTABLE_ANNOTATIONS = (
    "org.opencontainers.image.title",
    "org.opencontainers.image.version",
)

# Go's json.Marshal (what Helm writes the config with) escapes these for HTML safety.
_GO_JSON_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_GO_JSON_ESCAPED = re.compile("[<>&\u2028\u2029]")


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``, the form OCI digests take."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tag_of_version(version: str) -> str:
    """The OCI tag of a chart version: ``+`` is not allowed in tags, Helm writes ``_``."""
    return version.replace("+", "_")


def version_of_tag(tag: str) -> str:
    """The chart version a Helm tag stands for (``_`` back to ``+``)."""
    return tag.replace("_", "+")


def helm_config(chart: Mapping[str, Any]) -> bytes:
    """The config blob: Chart.yaml metadata as compact JSON, the fields Helm writes.

    Encoded as Go's ``json.Marshal`` does: UTF-8 rather than escapes for non-ASCII, ``<>&``
    escaped, map keys (the annotations) sorted.
    """
    ordered = {key: chart[key] for key in HELM_METADATA_FIELDS if chart.get(key)}
    if "appVersion" in ordered:  # YAML may have read 1.10 as a number; Helm keeps a string
        ordered["appVersion"] = str(ordered["appVersion"])
    if isinstance(ordered.get("annotations"), dict):
        ordered["annotations"] = dict(
            sorted(ordered["annotations"].items(), key=lambda kv: str(kv[0]))
        )
    text = json.dumps(ordered, separators=(",", ":"), default=str, ensure_ascii=False)
    return _GO_JSON_ESCAPED.sub(lambda m: _GO_JSON_ESCAPES[m.group()], text).encode()


def helm_annotations(chart: Mapping[str, Any], created: datetime) -> dict[str, str]:
    """The manifest annotations ``helm push`` writes: title, version, created, and the rest."""
    annotations: dict[str, str] = {}

    def add(key: str, value: object) -> None:
        if isinstance(value, str) and value.strip():
            annotations[key] = value

    add("org.opencontainers.image.description", chart.get("description"))
    add("org.opencontainers.image.title", chart.get("name"))
    add("org.opencontainers.image.version", chart.get("version"))
    add("org.opencontainers.image.url", chart.get("home"))
    add("org.opencontainers.image.created", created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    sources = chart.get("sources")
    if isinstance(sources, list) and sources:
        add("org.opencontainers.image.source", sources[0])
    maintainers = chart.get("maintainers")
    if isinstance(maintainers, list):
        authors = []
        for person in maintainers:
            if not isinstance(person, dict):
                continue
            name, email = str(person.get("name") or ""), str(person.get("email") or "")
            authors.append(f"{name} ({email})" if name and email else name or email)
        add("org.opencontainers.image.authors", ", ".join(a for a in authors if a))
    extra = chart.get("annotations")
    if isinstance(extra, dict):
        for key, value in extra.items():
            if str(key) not in _IMMUTABLE_ANNOTATIONS and value is not None:
                annotations[str(key)] = str(value)
    return annotations


def descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    """An OCI content descriptor of ``data``."""
    return {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}


def helm_manifest(
    chart: Mapping[str, Any],
    config: bytes,
    archive: bytes,
    provenance: bytes = b"",
    *,
    created: datetime,
) -> bytes:
    """The OCI image manifest of a chart: Helm's config, then the chart and provenance layers."""
    layers = [descriptor(HELM_CHART_CONTENT_MEDIA_TYPE, archive)]
    if provenance:
        layers.append(descriptor(HELM_PROVENANCE_MEDIA_TYPE, provenance))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "config": descriptor(HELM_CONFIG_MEDIA_TYPE, config),
        "layers": layers,
        "annotations": helm_annotations(chart, created),
    }
    return json.dumps(manifest, separators=(",", ":")).encode()


def is_helm_chart(manifest: Mapping[str, Any]) -> bool:
    """Whether a manifest is a Helm chart (Helm's config media type), not an image."""
    config = manifest.get("config")
    return isinstance(config, dict) and config.get("mediaType") == HELM_CONFIG_MEDIA_TYPE


def chart_layer(manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    """The descriptor of a chart manifest's archive layer, if it has one."""
    layers = manifest.get("layers")
    for layer in layers if isinstance(layers, list) else []:
        if isinstance(layer, dict) and layer.get("mediaType") in HELM_CHART_MEDIA_TYPES:
            return layer
    return None


def content_digests(manifest: Mapping[str, Any]) -> tuple[str, frozenset[str]]:
    """What a chart manifest holds: its config's media type and its layers' digests.

    The manifest digest itself changes with every push (the "created" annotation), so
    "the same chart again" is judged by content, not by the manifest. The config blob is
    left out: it is derived from the archive, and another client (``helm push``, an older
    Wharf) may encode the same metadata as other bytes.
    """
    config = manifest.get("config")
    layers = manifest.get("layers")
    config_type = config.get("mediaType", "") if isinstance(config, dict) else ""
    layer_digests = frozenset(
        layer.get("digest", "")
        for layer in (layers if isinstance(layers, list) else [])
        if isinstance(layer, dict)
    )
    return str(config_type), layer_digests
