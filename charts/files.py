"""values.yaml and README of one chart version: read from its archive once, then kept."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.utils import timezone

from charts.archive import ChartArchiveError, read_chart_archive
from charts.helmrepo import HelmRepoClient, HelmRepoError
from charts.models import ChartVersion
from registries import oci


def load_chart_files(version: ChartVersion) -> ChartVersion:
    """Fill ``values_yaml``/``readme`` on first view; a failure is kept as ``files_error``.

    The archive is read in memory with size limits and never extracted to disk. A
    failed read is tried again on the next view, not cached for good.
    """
    if version.files_read_at is not None:
        return version
    try:
        files = read_chart_archive(
            fetch_archive(version), max_archive_bytes=settings.WHARF_CHART_ARCHIVE_MAX_BYTES
        )
    except (ChartArchiveError, HelmRepoError, oci.RegistryError, ValueError) as exc:
        version.files_error = f"The chart archive could not be read: {exc}"
        ChartVersion.objects.filter(pk=version.pk).update(files_error=version.files_error)
        return version
    version.values_yaml = files.values_yaml or ""
    version.readme = files.readme or ""
    version.files_error = ""
    version.files_read_at = timezone.now()
    ChartVersion.objects.filter(pk=version.pk).update(
        values_yaml=version.values_yaml,
        readme=version.readme,
        files_error="",
        files_read_at=version.files_read_at,
    )
    return version


def fetch_archive(version: ChartVersion) -> bytes:
    source = version.chart.source
    limit = settings.WHARF_CHART_ARCHIVE_MAX_BYTES
    if source.is_oci:
        if not version.archive_digest:
            raise ValueError("the index holds no chart layer for this version.")
        with oci.RegistryClient(source.registry.connection()) as client:
            return client.get_blob(source.api_repository, version.archive_digest, max_bytes=limit)
    if not version.archive_url:
        raise ValueError("the repository index gives no download URL for this version.")
    with HelmRepoClient(source.helm_repository.endpoint()) as client:
        data = client.fetch_archive(version.archive_url, max_bytes=limit)
    expected = version.digest.removeprefix("sha256:").lower()
    if len(expected) == 64 and hashlib.sha256(data).hexdigest() != expected:
        raise ValueError("the archive does not match the digest in index.yaml.")
    return data
