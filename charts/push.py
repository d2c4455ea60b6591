"""Pushing packaged Helm charts to an OCI registry, as ``helm push`` does.

Plain functions shared by the "Push chart" page, its Celery task and the ``push_chart``
command (an upload is checked first by :mod:`charts.uploads`):

- :func:`request_push` records a :class:`~charts.models.ChartPush` (queued, with the
  bytes) and its audit entry, and queues the task after commit;
- :func:`run_push` is what the task (and the command) run: claim the row, push, record
  the outcome, clear the bytes, and queue a sync of the chart source the push fed;
- :func:`push_chart_artifact` writes Helm's layout (:mod:`charts.helmoci`) through a
  registry client.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from charts import helmoci
from charts.archive import ChartArchiveError, read_chart_archive
from charts.models import ChartPush, ChartSource, SyncRun
from charts.uploads import PushInputError, PushUpload, max_push_bytes
from config import audit, runs
from config.models import AuditEntry
from registries import oci
from registries.models import Registry
from registries.providers import split_url

log = logging.getLogger(__name__)


class PushRefused(Exception):
    """The registry holds something that a push must not replace (the message says what)."""


@dataclass(frozen=True)
class PushOutcome:
    manifest_digest: str
    note: str


def push_refusal(registry: Registry) -> str:
    """Why charts may not be pushed to ``registry``, or an empty string."""
    if not registry.push_helm:
        return (
            f"{registry.name} does not have “Push helm packages” ticked; edit the registry "
            "and tick it to push charts to it."
        )
    # A row saved before the model had this rule may still have the box ticked.
    refusal = registry.provider_spec.charts_refusal()
    return f"{registry.name}: {refusal}" if refusal else ""


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
    config = helmoci.helm_config(chart)
    manifest = helmoci.helm_manifest(
        chart, config, archive, provenance, created=created or timezone.now()
    )
    wanted = helmoci.content_digests(json.loads(manifest))
    # Also the first, small request: it learns the registry's auth before any upload.
    existing = client.find_manifest(api_repository, tag)
    replacing = False
    if existing is not None:
        if helmoci.content_digests(existing.body) == wanted:
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
    digest = client.put_manifest(api_repository, tag, manifest, helmoci.OCI_MANIFEST_MEDIA_TYPE)
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
            runs.enqueue_on_commit(ChartPush.task_name, push.pk)
    return push


def run_push(push_id: int) -> ChartPush | None:
    """Push a recorded upload; the row ends succeeded or failed, never raises for the caller."""
    return runs.execute(
        ChartPush, push_id, _push, expected=(oci.RegistryError, PushRefused, ChartArchiveError)
    )


def _push(context: runs.RunContext) -> runs.Outcome:
    push = ChartPush.objects.select_related("registry").get(pk=context.run.pk)
    registry = push.registry
    # The bytes are not kept, whatever the outcome: a failed push is retried by uploading.
    cleared = {"archive": b"", "provenance": b""}
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
        raise runs.RunFailed(str(exc), **cleared) from None
    except Exception:
        ChartPush.objects.filter(pk=push.pk).update(**cleared)
        raise
    with transaction.atomic():
        queue_source_sync(registry, push.repository)
    return runs.Outcome(
        fields={"manifest_digest": outcome.manifest_digest, "note": outcome.note, **cleared}
    )


def queue_source_sync(registry: Registry, repository: str) -> SyncRun | None:
    """If the push fed one of the registry's chart sources, queue its sync (in a transaction)."""
    from charts.sync import queue_sync

    if not registry.chart_source or repository not in (registry.repositories or []):
        return None
    source = ChartSource.objects.filter(registry=registry, repository=repository).first()
    if source is None:
        return None
    return queue_sync(source, trigger=SyncRun.Trigger.PUSH)
