"""Celery tasks every kind of background run shares."""

from __future__ import annotations

import logging

from celery import shared_task

from config import runs

log = logging.getLogger(__name__)


@shared_task(name="config.tasks.recover_runs", ignore_result=True, soft_time_limit=120)
def recover_runs() -> dict[str, int]:
    """Beat: close runs whose worker died, send again the runs that never reached one."""
    recovered = runs.recover_runs()
    if recovered.closed or recovered.resent:
        log.info(
            "Recovered background runs: %d closed (worker gone), %d sent again",
            recovered.closed,
            recovered.resent,
        )
    return {"closed": recovered.closed, "resent": recovered.resent}
