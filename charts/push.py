"""Pushing packaged Helm charts to an OCI registry, as ``helm push`` does.

Plain functions shared by the "Push chart" page, its Celery task and the ``push_chart``
command:

- :func:`prepare_push` checks an upload before anything is stored or sent: the archive
  (through :mod:`charts.archive`), the optional provenance file and the repository
  prefix; each problem is a :class:`PushInputError` naming the field it belongs to;
- :func:`request_push` records a :class:`~charts.models.ChartPush` (queued, with the
  bytes) and its audit entry, and queues the task after commit;
- :func:`run_push` is what the task (and the command) run: claim the row, push, record
  the outcome, clear the bytes, and queue a sync of the chart source the push fed.

What is pushed is Helm's layout: a config blob (Chart.yaml metadata as JSON), the archive
as one layer, the provenance file as another, an OCI image manifest with Helm's
annotations; repository = prefix + chart name; tag = version with ``+`` written ``_``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from charts.archive import ChartArchiveError, ChartFiles, read_chart_archive
from charts.models import ChartPush, ChartSource, SyncRun
from config import audit
from config.models import AuditEntry
from registries import oci
from registries.aws import AwsError
from registries.forms import REPOSITORY_PATH
from registries.models import Registry
from registries.providers import split_url

log = logging.getLogger(__name__)

OCI_MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
HELM_CONFIG_MEDIA_TYPE = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART_CONTENT_MEDIA_TYPE = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
HELM_PROVENANCE_MEDIA_TYPE = "application/vnd.cncf.helm.chart.provenance.v1.prov"

PROVENANCE_MAX_BYTES = 2**20
MAX_TAG_LENGTH = 128  # the distribution spec's tag grammar allows 128 characters
# A worker that died mid-push leaves the row "running"; after this long another may retry.
PUSH_LEASE = timedelta(minutes=15)
# A push still queued this long after its upload never reached a worker.
LOST_PUSH_AFTER = timedelta(minutes=5)

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
_PGP_SIGNED = "-----BEGIN PGP SIGNED MESSAGE-----"
_PGP_SIGNATURE = "-----BEGIN PGP SIGNATURE-----"
_PGP_END = "-----END PGP SIGNATURE-----"
_SHA256 = re.compile(r"sha256:([0-9a-f]{64})")


class PushInputError(Exception):
    """An upload that cannot be pushed; ``field`` is the form field the message belongs to."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PushRefused(Exception):
    """The registry holds something that a push must not replace (the message says what)."""


@dataclass(frozen=True)
class PushUpload:
    """A checked upload: what will be pushed, and where under the registry URL."""

    chart: ChartFiles
    archive: bytes
    provenance: bytes
    repository: str  # prefix + chart name, relative to the registry URL
    tag: str

    @property
    def archive_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.archive).hexdigest()


@dataclass(frozen=True)
class PushOutcome:
    manifest_digest: str
    note: str


# --- checking an upload ----------------------------------------------------------------


def max_push_bytes() -> int:
    return settings.WHARF_CHART_PUSH_MAX_BYTES


def check_archive(data: bytes) -> ChartFiles:
    """The chart inside ``data``, or :class:`PushInputError` saying what is wrong with it."""
    try:
        return read_chart_archive(data, max_archive_bytes=max_push_bytes())
    except ChartArchiveError as exc:
        raise PushInputError(str(exc), field="archive") from None


def check_provenance(data: bytes, archive: bytes) -> None:
    """A provenance file must look like the one ``helm package --sign`` writes for ``archive``."""
    if len(data) > PROVENANCE_MAX_BYTES:
        raise PushInputError(
            f"The provenance file is {len(data):,} bytes, more than the "
            f"{PROVENANCE_MAX_BYTES:,} allowed.",
            field="provenance",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PushInputError(
            "The provenance file is not text; upload the .prov file `helm package --sign` wrote.",
            field="provenance",
        ) from None
    signed = text.lstrip().startswith(_PGP_SIGNED)
    if not signed or _PGP_SIGNATURE not in text or _PGP_END not in text:
        raise PushInputError(
            "The provenance file is not a PGP signed message (it should start with "
            f"“{_PGP_SIGNED}” and end with a signature block).",
            field="provenance",
        )
    signed_part = text.split(_PGP_SIGNATURE, 1)[0]
    listed = set(_SHA256.findall(signed_part))
    if listed and hashlib.sha256(archive).hexdigest() not in listed:
        raise PushInputError(
            "The provenance file was made for another archive: the sha256 it lists does not "
            "match the uploaded chart.",
            field="provenance",
        )


def check_prefix(prefix: str) -> str:
    """The repository prefix without surrounding slashes; lowercase path segments only."""
    prefix = (prefix or "").strip().strip("/")
    if prefix and not REPOSITORY_PATH.match(prefix):
        raise PushInputError(
            f"Not a repository path: {prefix}. Use lowercase letters, digits, ., _, - and / "
            "(for example “charts” or “team/charts”).",
            field="prefix",
        )
    return prefix


def prepare_push(archive: bytes, provenance: bytes | None, prefix: str) -> PushUpload:
    """Check everything about an upload; nothing is stored or sent here."""
    prefix = check_prefix(prefix)
    chart = check_archive(archive)
    if provenance:
        check_provenance(provenance, archive)
    return upload_for(chart, archive, provenance or b"", prefix)


def upload_for(chart: ChartFiles, archive: bytes, provenance: bytes, prefix: str) -> PushUpload:
    """Where a checked chart goes: the repository and tag, themselves checked."""
    repository = f"{prefix}/{chart.name}" if prefix else chart.name
    if len(repository) > 200:
        raise PushInputError(
            f"The repository {repository} is too long; use a shorter prefix.", field="prefix"
        )
    tag = oci_tag(chart.version)
    if len(tag) > MAX_TAG_LENGTH:
        raise PushInputError(
            f"The chart version {chart.version} is too long for an OCI tag "
            f"({MAX_TAG_LENGTH} characters at most).",
            field="archive",
        )
    return PushUpload(
        chart=chart, archive=archive, provenance=provenance, repository=repository, tag=tag
    )


def oci_tag(version: str) -> str:
    """OCI tags cannot hold ``+``; Helm writes build metadata with ``_`` instead."""
    return version.replace("+", "_")


def push_refusal(registry: Registry) -> str:
    """Why charts may not be pushed to ``registry``, or an empty string."""
    if not registry.push_helm:
        return (
            f"{registry.name} does not have “Push helm packages” ticked; edit the registry "
            "and tick it to push charts to it."
        )
    return ""


# --- the Helm OCI artifact -------------------------------------------------------------


# Go's json.Marshal (what Helm writes the config with) escapes these for HTML safety.
_GO_JSON_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_GO_JSON_ESCAPED = re.compile("[<>&\u2028\u2029]")


def helm_config(chart: dict) -> bytes:
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


def helm_annotations(chart: dict, created: datetime) -> dict[str, str]:
    """The manifest annotations ``helm push`` writes: title, version, created, and the rest."""
    annotations: dict[str, str] = {}

    def add(key: str, value) -> None:
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


def _descriptor(media_type: str, data: bytes) -> dict:
    return {
        "mediaType": media_type,
        "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }


def helm_manifest(chart: dict, config: bytes, archive: bytes, provenance: bytes, created) -> bytes:
    """The OCI image manifest of a chart: Helm's config, then the chart and provenance layers."""
    layers = [_descriptor(HELM_CHART_CONTENT_MEDIA_TYPE, archive)]
    if provenance:
        layers.append(_descriptor(HELM_PROVENANCE_MEDIA_TYPE, provenance))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "config": _descriptor(HELM_CONFIG_MEDIA_TYPE, config),
        "layers": layers,
        "annotations": helm_annotations(chart, created),
    }
    return json.dumps(manifest, separators=(",", ":")).encode()


def content_digests(manifest_body: dict) -> tuple[str, frozenset[str]]:
    """What a chart manifest holds: its config's media type and its layers' digests.

    The manifest digest itself changes with every push (the "created" annotation), so
    "the same chart again" is judged by content, not by the manifest. The config blob is
    left out: it is derived from the archive, and another client (``helm push``, an older
    Wharf) may encode the same metadata as other bytes.
    """
    config = manifest_body.get("config")
    layers = manifest_body.get("layers")
    config_type = config.get("mediaType", "") if isinstance(config, dict) else ""
    layer_digests = frozenset(
        layer.get("digest", "")
        for layer in (layers if isinstance(layers, list) else [])
        if isinstance(layer, dict)
    )
    return str(config_type), layer_digests


def push_chart_artifact(
    client: oci.RegistryClient,
    api_repository: str,
    tag: str,
    chart: dict,
    archive: bytes,
    provenance: bytes = b"",
    *,
    overwrite: bool = False,
    created: datetime | None = None,
) -> PushOutcome:
    """Push one chart as Helm does; refuse to replace different content unless ``overwrite``.

    Raises :class:`PushRefused` or :class:`registries.oci.RegistryError`.
    """
    config = helm_config(chart)
    manifest = helm_manifest(chart, config, archive, provenance, created or timezone.now())
    wanted = content_digests(json.loads(manifest))
    # Also the first, small request: it learns the registry's auth before any upload.
    existing = client.find_manifest(api_repository, tag)
    replacing = False
    if existing is not None:
        if content_digests(existing.body) == wanted:
            return PushOutcome(
                existing.digest, "Already in the registry with the same content; nothing pushed."
            )
        if not overwrite:
            raise PushRefused(
                f"The tag {api_repository}:{tag} already exists in the registry with different "
                f"content ({existing.digest}). Nothing was pushed; tick “Overwrite” (or pass "
                "--overwrite) to replace it."
            )
        replacing = True
    client.upload_blob(api_repository, config)
    client.upload_blob(api_repository, archive)
    if provenance:
        client.upload_blob(api_repository, provenance)
    digest = client.put_manifest(api_repository, tag, manifest, OCI_MANIFEST_MEDIA_TYPE)
    note = f"Replaced the earlier {tag}." if replacing else "Pushed."
    return PushOutcome(digest, note)


# --- recording and running a push ------------------------------------------------------


def api_repository(registry: Registry, repository: str) -> str:
    """The repository name in the registry API: the URL's path prefix, then ``repository``."""
    prefix = split_url(registry.url)[1].strip("/")
    return f"{prefix}/{repository}" if prefix else repository


def request_push(
    registry: Registry, user, upload: PushUpload, *, overwrite: bool, enqueue: bool = True
) -> ChartPush:
    """Record a queued push (with its bytes) and its audit entry; queue the task after commit."""
    refusal = push_refusal(registry)
    if refusal:
        raise PushInputError(refusal)
    authenticated = user is not None and user.is_authenticated
    with transaction.atomic():
        push = ChartPush.objects.create(
            registry=registry,
            user=user if authenticated else None,
            username=user.get_username() if authenticated else "",
            chart_name=upload.chart.name,
            version=upload.chart.version,
            repository=upload.repository,
            tag=upload.tag,
            overwrite=overwrite,
            archive_digest=upload.archive_digest,
            archive_size=len(upload.archive),
            has_provenance=bool(upload.provenance),
            archive=upload.archive,
            provenance=upload.provenance,
        )
        # Named fields only: a snapshot would put the archive's bytes in the log.
        audit.record(
            user,
            AuditEntry.Action.CREATE,
            push,
            {
                "registry": [None, registry.name],
                "repository": [None, upload.repository],
                "chart": [None, upload.chart.name],
                "version": [None, upload.chart.version],
                "archive_digest": [None, upload.archive_digest],
                "provenance": [None, bool(upload.provenance)],
                "overwrite": [None, overwrite],
            },
        )
        if enqueue:
            transaction.on_commit(lambda: send_push(push.pk))
    return push


def send_push(push_id: int) -> None:
    """Hand a recorded push to the broker. The upload has committed: a broker outage is
    logged, not a 500, and the push is sent again when its registry's pushes are listed."""
    from charts import tasks

    try:
        tasks.push_chart.delay(push_id)
    except Exception as exc:
        log.warning("Could not queue chart push %s: %s", push_id, exc)


def claim_push(push_id: int) -> bool:
    """Mark a queued push (or one whose worker died) running; False if another has it."""
    now = timezone.now()
    claimable = Q(status=ChartPush.Status.QUEUED) | Q(
        status=ChartPush.Status.RUNNING, started_at__lt=now - PUSH_LEASE
    )
    return bool(
        ChartPush.objects.filter(claimable, pk=push_id).update(
            status=ChartPush.Status.RUNNING, started_at=now, error=""
        )
    )


def fail_abandoned_pushes(registry: Registry) -> int:
    """Mark failed the pushes of ``registry`` still "running" long past their lease.

    Celery acknowledges the message of a worker that was killed (OOM, SIGKILL) even with
    late acks, so nothing would ever finish such a row; its bytes are dropped too.
    """
    # A push queued long ago never reached a worker (broker outage): send it again; a
    # second delivery of one that did is harmless (claim_push lets one worker have it).
    lost = ChartPush.objects.filter(
        registry=registry,
        status=ChartPush.Status.QUEUED,
        created_at__lt=timezone.now() - LOST_PUSH_AFTER,
    ).values_list("pk", flat=True)
    for push_id in lost:
        send_push(push_id)
    return ChartPush.objects.filter(
        registry=registry,
        status=ChartPush.Status.RUNNING,
        started_at__lt=timezone.now() - PUSH_LEASE,
    ).update(
        status=ChartPush.Status.FAILED,
        finished_at=timezone.now(),
        error="The worker stopped before this push finished; push the chart again.",
        archive=b"",
        provenance=b"",
    )


def run_push(push_id: int) -> ChartPush | None:
    """Push a recorded upload; the row ends succeeded or failed, never raises for the caller."""
    if not claim_push(push_id):
        return ChartPush.objects.filter(pk=push_id).first()
    push = ChartPush.objects.select_related("registry").get(pk=push_id)
    registry = push.registry
    error, outcome = "", None
    try:
        refusal = push_refusal(registry)
        if refusal:
            raise PushRefused(refusal)
        chart = read_chart_archive(bytes(push.archive), max_archive_bytes=max_push_bytes()).chart
        with oci.RegistryClient(registry.connection()) as client:
            outcome = push_chart_artifact(
                client,
                api_repository(registry, push.repository),
                push.tag,
                chart,
                bytes(push.archive),
                bytes(push.provenance),
                overwrite=push.overwrite,
            )
    except (oci.RegistryError, PushRefused, ChartArchiveError) as exc:
        error = str(exc)
    except AwsError as exc:  # an ECR registry's login is an AWS call first
        error = f"AWS did not issue an ECR token: {exc}"
    except Exception as exc:  # the worker must survive anything; the row says what happened
        log.exception("Push %s of %s failed unexpectedly", push.pk, push.repository)
        error = f"The push failed unexpectedly ({type(exc).__name__}); see the worker log."

    # The bytes are not kept: a failed push is retried by uploading again.
    fields = {"finished_at": timezone.now(), "archive": b"", "provenance": b""}
    if outcome is not None:
        fields.update(
            status=ChartPush.Status.SUCCEEDED,
            manifest_digest=outcome.manifest_digest,
            note=outcome.note,
        )
    else:
        fields.update(status=ChartPush.Status.FAILED, error=error)
    with transaction.atomic():
        ChartPush.objects.filter(pk=push.pk).update(**fields)
        if outcome is not None:
            queue_source_sync(registry, push.repository)
    push.refresh_from_db()
    return push


def queue_source_sync(registry: Registry, repository: str) -> SyncRun | None:
    """If the push fed one of the registry's chart sources, queue its sync (in a transaction)."""
    from charts.sync import queue_sync

    if not registry.chart_source or repository not in (registry.repositories or []):
        return None
    source = ChartSource.objects.filter(registry=registry, repository=repository).first()
    if source is None:
        return None
    return queue_sync(source, trigger=SyncRun.Trigger.PUSH)
