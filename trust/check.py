"""Trust checks of chart versions: is a version signed, and did a configured key sign it?

Done in the background only (the ``check_chart_trust`` task), never in a page view:

- after a sync indexed new or changed versions (the sync's ``versions_indexed`` signal);
  an unchanged version keeps its verdict, as the sync leaves its row alone;
- when a signing key is added, changed or removed: only the versions whose signature names
  that key (OpenPGP: the key ids; cosign signatures name no key, so every version with a
  cosign signature) are judged again, from the signature material kept from the first
  check (``trust_evidence``), without reading the source again.

What is read, per source:

- OCI: the chart's manifest (its Helm provenance layer, and the chart layer's digest, which
  is the archive's SHA-256), then cosign signatures: the OCI 1.1 referrers API, else the
  referrers tag schema (tag ``sha256-<hex>``), and the classic ``sha256-<hex>.sig`` tag;
- Helm repository: ``<archive URL>.prov`` beside the archive, and the archive itself for
  its SHA-256.

A source that cannot be read leaves the version unchecked, with the reason, and it is
tried again later (:data:`RETRY_AFTER`).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.db.models import BooleanField, Case, F, Q, QuerySet, Value, When
from django.utils import timezone

from charts import helmoci
from charts.helmrepo import HelmRepoClient, HelmRepoError
from charts.models import ChartSource, ChartVersion, TrustStatus
from charts.sync.writer import refresh_charts
from config import runs
from registries import oci
from trust import cosign, provenance
from trust.models import SigningKey

log = logging.getLogger(__name__)

TASK = "trust.tasks.check_chart_trust"
RETRY_AFTER = timedelta(hours=1)
# How long one worker holds a version it checks (longer than its downloads' deadlines).
CLAIM = timedelta(minutes=10)
EVIDENCE_VERSION = 1
READ_ERRORS = (oci.RegistryError, HelmRepoError, ValueError)
# Referrers of one manifest read at most (each costs a manifest and a payload): a registry
# listing thousands cannot make one check endless.
MAX_REFERRERS = 50
# cosign signatures read for one version, whatever the registry offers: each costs a blob
# read, a place in the kept evidence and a verification per key.
MAX_SIGNATURES = 20


def queue_checks() -> None:
    """Wake a worker to check what is pending (after a sync, after a change of keys)."""
    runs.enqueue_on_commit(TASK, 0)


def pending_versions(now=None) -> QuerySet[ChartVersion]:
    """Versions due for a check: never checked (or changed since), or keys changed; the
    latest version of each chart first, then the newest."""
    now = now or timezone.now()
    due = ChartVersion.objects.filter(
        trust_checked_at__isnull=True, removed_upstream_at__isnull=True
    ).filter(Q(trust_retry_at__isnull=True) | Q(trust_retry_at__lte=now))
    latest = Case(
        When(version=F("chart__latest_version"), then=Value(True)),
        default=Value(False),
        output_field=BooleanField(),
    )
    return due.annotate(is_latest=latest).order_by("-is_latest", "-indexed_at", "-pk")


# --- the keys ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    openpgp: tuple[provenance.ConfiguredKey, ...] = ()
    cosign: tuple[tuple[str, str], ...] = ()  # (name, PEM)


def configured_keys() -> Keys:
    openpgp, cosign_keys = [], []
    for key in SigningKey.objects.all():
        if key.kind == SigningKey.Kind.OPENPGP:
            openpgp.append(
                provenance.ConfiguredKey(
                    key.name, key.fingerprint, tuple(key.key_ids or ()), key.public_key
                )
            )
        else:
            cosign_keys.append((key.name, key.public_key))
    return Keys(tuple(openpgp), tuple(cosign_keys))


SIGNATURE_TAG = re.compile(r"sha256-[0-9a-f]{64}(\.sig)?")


def notice_signature_tags(source: ChartSource) -> int:
    """After a sync of an OCI source: versions whose signature tags changed since their
    check (cosign signs after the push: a ``sha256-<hex>.sig`` tag appears, or is
    rewritten with one more signature) are read again; returns how many.

    The sync already read those tags (they are not charts: it keeps them with their
    digests, ``ChartSource.ignored_tags``), so this costs no request.
    """
    if not source.is_oci:
        return 0
    tags = {t: d for t, d in (source.ignored_tags or {}).items() if SIGNATURE_TAG.fullmatch(t)}
    rows = ChartVersion.objects.filter(
        chart__source=source, removed_upstream_at__isnull=True, trust_checked_at__isnull=False
    ).values_list("pk", "digest", "trust_evidence__signature_tags")
    stale = []
    for pk, digest, kept in rows:
        base = (digest or "").replace(":", "-")
        now = {t: d for t in (base, f"{base}.sig") if (d := tags.get(t))}
        if now != (kept or {}):
            stale.append(pk)
    for start in range(0, len(stale), 500):
        ChartVersion.objects.filter(pk__in=stale[start : start + 500]).update(
            trust_checked_at=None, trust_retry_at=None, trust_evidence={}
        )
    return len(stale)


def recheck_for_key(*, kind: str, key_ids: list[str], name: str) -> int:
    """A key was added, changed or removed: mark for a new check the versions it concerns
    (their kept evidence is judged again); returns how many."""
    if kind == SigningKey.Kind.OPENPGP:
        concerned = Q(trust_signer__in=[k.upper() for k in key_ids if k])
    else:
        concerned = Q(trust_method__contains="cosign")
    concerned |= Q(trust_key=name) & ~Q(trust_key="")
    count = (
        ChartVersion.objects.filter(concerned)
        .exclude(trust_checked_at__isnull=True)
        .update(trust_checked_at=None, trust_retry_at=None)
    )
    if count:
        queue_checks()
    return count


# --- reading what a source holds ----------------------------------------------------------


@dataclass
class Evidence:
    """The signature material of one version, kept as JSON on the version."""

    fingerprint: str = ""
    provenance: bytes | None = None
    archive_sha256: str = ""
    file_name: str = ""
    manifest_digest: str = ""
    cosign: list[cosign.CosignSignature] = field(default_factory=list)
    bundles: int = 0
    found_via: list[str] = field(default_factory=list)
    # The signature tags read (``sha256-<hex>``, ``sha256-<hex>.sig``) and their manifest
    # digests: a sync that sees them change (a signature added) has the version read again.
    signature_tags: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {
            "v": EVIDENCE_VERSION,
            "fingerprint": self.fingerprint,
            "provenance": base64.b64encode(self.provenance).decode()
            if self.provenance is not None
            else None,
            "archive_sha256": self.archive_sha256,
            "file_name": self.file_name,
            "manifest_digest": self.manifest_digest,
            "cosign": [s.as_evidence() for s in self.cosign],
            "bundles": self.bundles,
            "found_via": self.found_via,
            "signature_tags": self.signature_tags,
        }

    @classmethod
    def from_json(cls, data: dict) -> Evidence:
        prov = data.get("provenance")
        return cls(
            fingerprint=str(data.get("fingerprint") or ""),
            provenance=base64.b64decode(prov) if isinstance(prov, str) else None,
            archive_sha256=str(data.get("archive_sha256") or ""),
            file_name=str(data.get("file_name") or ""),
            manifest_digest=str(data.get("manifest_digest") or ""),
            cosign=[cosign.CosignSignature.from_evidence(s) for s in data.get("cosign") or []],
            bundles=int(data.get("bundles") or 0),
            found_via=list(data.get("found_via") or []),
            signature_tags=dict(data.get("signature_tags") or {}),
        )


def read_evidence(version: ChartVersion) -> Evidence:
    source = version.chart.source
    if source.is_oci:
        with oci.RegistryClient(source.oci_registry.connection()) as client:
            return read_oci_evidence(client, source.api_repository, version)
    return read_helm_evidence(version)


def read_oci_evidence(
    client: oci.RegistryClient, repository: str, version: ChartVersion
) -> Evidence:
    evidence = Evidence(fingerprint=version.fingerprint, manifest_digest=version.digest)
    manifest = client.get_manifest(repository, version.digest or version.tag)
    evidence.manifest_digest = manifest.digest
    layers = [la for la in manifest.body.get("layers") or [] if isinstance(la, dict)]
    chart_layer = helmoci.chart_layer(manifest.body)
    if chart_layer is not None:
        evidence.archive_sha256 = str(chart_layer.get("digest") or "").removeprefix("sha256:")
    evidence.file_name = f"{version.chart.name}-{version.version}.tgz"
    prov_layer = next(
        (la for la in layers if la.get("mediaType") == helmoci.HELM_PROVENANCE_MEDIA_TYPE), None
    )
    if prov_layer is not None and isinstance(prov_layer.get("digest"), str):
        evidence.provenance = client.get_blob(
            repository, prov_layer["digest"], max_bytes=provenance.MAX_PROVENANCE_BYTES
        )
        evidence.found_via.append("provenance layer")
    read_cosign_signatures(client, repository, manifest.digest, evidence)
    return evidence


def read_cosign_signatures(
    client: oci.RegistryClient, repository: str, digest: str, evidence: Evidence
) -> None:
    """cosign signatures of ``digest``: the referrers API, else the referrers tag schema,
    then the classic ``.sig`` tag."""
    tag_base = digest.replace(":", "-")
    referrers = client.list_referrers(repository, digest)
    if referrers is not None:
        evidence.found_via.append("referrers API")
    else:
        index = client.find_manifest(repository, tag_base)
        if index is not None:
            evidence.found_via.append(f"referrers tag {tag_base}")
            evidence.signature_tags[tag_base] = index.digest
            referrers = [m for m in index.body.get("manifests") or [] if isinstance(m, dict)]
    for descriptor in (referrers or [])[:MAX_REFERRERS]:
        if len(evidence.cosign) >= MAX_SIGNATURES:
            break
        artifact_type = str(descriptor.get("artifactType") or "")
        if artifact_type.startswith(cosign.SIGSTORE_BUNDLE_PREFIX):
            evidence.bundles += 1
        elif artifact_type in (cosign.SIGNATURE_ARTIFACT_TYPE, "") and isinstance(
            descriptor.get("digest"), str
        ):
            referrer = client.get_manifest(repository, descriptor["digest"])
            _signatures_of(client, repository, referrer, evidence)
    sig_manifest = client.find_manifest(repository, f"{tag_base}.sig")
    if sig_manifest is not None:
        evidence.found_via.append(f"tag {tag_base}.sig")
        evidence.signature_tags[f"{tag_base}.sig"] = sig_manifest.digest
        _signatures_of(client, repository, sig_manifest, evidence)


def _signatures_of(
    client: oci.RegistryClient, repository: str, manifest: oci.Manifest, evidence: Evidence
) -> None:
    for layer in manifest.body.get("layers") or []:
        if len(evidence.cosign) >= MAX_SIGNATURES:
            return
        if not isinstance(layer, dict):
            continue
        if layer.get("mediaType") != cosign.SIMPLE_SIGNING_MEDIA_TYPE:
            continue
        annotations = layer.get("annotations") or {}
        signature = (
            annotations.get(cosign.SIGNATURE_ANNOTATION) if isinstance(annotations, dict) else None
        )
        if not isinstance(signature, str) or not isinstance(layer.get("digest"), str):
            continue
        payload = client.get_blob(repository, layer["digest"], max_bytes=cosign.MAX_PAYLOAD_BYTES)
        found = cosign.CosignSignature(payload, signature)
        if found not in evidence.cosign:
            evidence.cosign.append(found)


def read_helm_evidence(version: ChartVersion) -> Evidence:
    evidence = Evidence(fingerprint=version.fingerprint)
    if not version.archive_url:
        return evidence
    path = urlsplit(version.archive_url).path
    evidence.file_name = unquote(path.rsplit("/", 1)[-1])
    with HelmRepoClient(version.chart.source.helm.endpoint()) as client:
        try:
            evidence.provenance = client.fetch_archive(
                version.archive_url + ".prov", max_bytes=provenance.MAX_PROVENANCE_BYTES
            )
        except HelmRepoError as exc:
            if exc.kind != HelmRepoError.NOT_FOUND:
                raise
            return evidence  # no provenance beside the archive: unsigned
        evidence.found_via.append("provenance file")
        archive = client.fetch_archive(
            version.archive_url, max_bytes=settings.WHARF_CHART_ARCHIVE_MAX_BYTES
        )
    evidence.archive_sha256 = hashlib.sha256(archive).hexdigest()
    return evidence


# --- judging ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    status: str
    detail: str
    method: str = ""
    signer: str = ""
    key_name: str = ""


def judge(evidence: Evidence, keys: Keys) -> Verdict:
    """One verdict from every signature a version has.

    A failed signature wins (a tampered provenance, a signature moved from another
    manifest: something is wrong even if another signature is fine), then a verified one,
    then signed-but-not-verified; no signature at all is unsigned.
    """
    verdicts: list[tuple[str, str, str, str, str]] = []  # status, detail, method, signer, key
    methods = []
    if evidence.provenance is not None:
        methods.append("provenance")
        p = provenance.judge(
            evidence.provenance,
            archive_sha256=evidence.archive_sha256,
            file_name=evidence.file_name,
            keys=keys.openpgp,
        )
        verdicts.append((p.status, p.detail, "provenance", p.signer, p.key_name))
    if evidence.cosign:
        methods.append("cosign")
        c = cosign.judge(evidence.cosign, evidence.manifest_digest, keys.cosign)
        verdicts.append((c.status, c.detail, "cosign", "", c.key_name))
    if evidence.bundles:
        if "cosign" not in methods:
            methods.append("cosign")
        count = evidence.bundles
        verdicts.append(
            (
                TrustStatus.SIGNED_UNVERIFIED,
                f"{count} Sigstore bundle{'s' if count != 1 else ''} (cosign v3's signature "
                "format) attached; Wharf does not verify Sigstore bundles (they need "
                "Fulcio certificates and Rekor's transparency log), only cosign signatures "
                "made with a key.",
                "cosign",
                "",
                "",
            )
        )
    if not verdicts:
        return Verdict(TrustStatus.UNSIGNED, "No Helm provenance and no cosign signature found.")
    method = "+".join(methods)
    signer = next((v[3] for v in verdicts if v[3]), "")
    for wanted in (TrustStatus.FAILED, TrustStatus.VERIFIED, TrustStatus.SIGNED_UNVERIFIED):
        chosen = [v for v in verdicts if v[0] == wanted]
        if chosen:
            detail = " ".join(v[1] for v in chosen)
            return Verdict(wanted, detail, method, signer, chosen[0][4])
    return Verdict(TrustStatus.FAILED, "No verdict.", method, signer)


# --- doing it -----------------------------------------------------------------------------


def check_version(
    version: ChartVersion, keys: Keys | None = None, *, refresh: bool = True
) -> Verdict | None:
    """Check one version and write its verdict; None if its source could not be read (then
    it is tried again after :data:`RETRY_AFTER`). With ``refresh``, its chart's store
    fields follow at once (:func:`check_pending` does that once per batch instead)."""
    keys = keys if keys is not None else configured_keys()
    kept = version.trust_evidence or {}
    if kept.get("v") == EVIDENCE_VERSION and kept.get("fingerprint") == version.fingerprint:
        evidence = Evidence.from_json(kept)
    else:
        try:
            evidence = read_evidence(version)
        except READ_ERRORS as exc:
            ChartVersion.objects.filter(pk=version.pk).update(
                trust_detail=f"The signatures could not be read: {exc}",
                trust_retry_at=timezone.now() + RETRY_AFTER,
            )
            return None
    verdict = judge(evidence, keys)
    ChartVersion.objects.filter(pk=version.pk, fingerprint=version.fingerprint).update(
        trust_status=verdict.status,
        trust_detail=verdict.detail,
        trust_method=verdict.method,
        trust_signer=verdict.signer,
        trust_key=verdict.key_name,
        trust_evidence=evidence.as_json(),
        trust_checked_at=timezone.now(),
        trust_retry_at=None,
    )
    if refresh and moves_chart(version, verdict):
        refresh_charts([version.chart_id])
    return verdict


def moves_chart(version: ChartVersion, verdict: Verdict) -> bool:
    """Whether a verdict changes what the store shows of the chart: the status of its
    latest version (the card), or, for a source showing only verified versions, which
    version is the latest."""
    chart = version.chart
    if version.version == chart.latest_version:
        return True
    verified = TrustStatus.VERIFIED
    return chart.source.verified_only and verified in (verdict.status, version.trust_status)


def claim(version_id: int, now=None) -> bool:
    """Take a due version for this worker (one conditional UPDATE, on SQLite and PostgreSQL
    alike): ``trust_retry_at`` then holds it for :data:`CLAIM`, so other workers pass it
    by, and a dead worker's claim lapses by itself."""
    now = now or timezone.now()
    free = Q(trust_retry_at__isnull=True) | Q(trust_retry_at__lte=now)
    return bool(
        ChartVersion.objects.filter(free, pk=version_id, trust_checked_at__isnull=True).update(
            trust_retry_at=now + CLAIM
        )
    )


def check_pending(*, limit: int = 500, seconds: float = 240.0) -> int:
    """Check due versions, best first, until none is left, ``limit`` are checked, or
    ``seconds`` have passed; returns how many were tried. Two workers doing this at once
    share the work: each version is claimed by one (:func:`claim`)."""
    started = time.monotonic()
    keys = configured_keys()
    tried = 0
    seen: set[int] = set()
    charts: set[int] = set()  # whose store fields follow, once per batch
    while tried < limit and time.monotonic() - started < seconds:
        version = (
            pending_versions()
            .exclude(pk__in=seen)
            .select_related("chart__source__registry", "chart__source__helm_repository")
            .first()
        )
        if version is None:
            break
        seen.add(version.pk)
        if not claim(version.pk):
            continue  # another worker took it between the two queries
        tried += 1
        verdict = check_version(version, keys, refresh=False)
        if verdict is not None and moves_chart(version, verdict):
            charts.add(version.chart_id)
        if len(charts) >= 100:
            refresh_charts(charts)
            charts.clear()
    refresh_charts(charts)
    return tried
