""" "Test connection" for a Helm repository: fetch and read its index.yaml."""

from __future__ import annotations

from django.conf import settings

from charts.helmrepo import HelmRepoClient, HelmRepoError
from charts.models import HelmRepository
from charts.sync import SyncError, parse_index
from registries.connectivity import ConnectionCheck


def check_helm_repository(repository: HelmRepository) -> ConnectionCheck:
    """Fetch the (maybe unsaved) repository's index.yaml and parse it; never raises.

    Goes the repository's way (direct, proxy or SSH tunnel), as its syncs do.
    """
    endpoint = repository.endpoint()
    steps: list[str] = []
    try:
        with repository.noting_route(steps, endpoint.transport):
            with HelmRepoClient(endpoint) as client:
                response = client.fetch_index(
                    max_bytes=settings.WHARF_HELM_INDEX_MAX_BYTES,
                    deadline=settings.WHARF_HELM_INDEX_DEADLINE,
                )
            parsed = parse_index(response.body, endpoint)
    except (HelmRepoError, SyncError) as exc:
        return ConnectionCheck(False, str(exc), steps)
    if parsed.refused:
        steps.append(
            f"{len(parsed.refused)} entries would be skipped, as Helm skips them: "
            + " ".join(parsed.refused[:3])
        )
    charts = len({v.chart for v in parsed.versions})
    return ConnectionCheck(
        True,
        f"Read {endpoint.index_url}: {charts} charts, {len(parsed.versions)} versions.",
        steps,
    )
