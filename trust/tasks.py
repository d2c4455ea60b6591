"""Celery tasks for trust checks: thin wrappers around trust.check."""

from __future__ import annotations

from django.conf import settings

from config.runs import run_task
from trust import check


@run_task("trust.tasks.check_chart_trust", "WHARF_TRUST_TIME_LIMIT")
def check_chart_trust(version_id: int = 0) -> int:
    """Check the signatures of the chart versions due (after a sync, a change of keys, or
    from beat, which also retries sources that could not be read); within the time budget."""
    budget = max(settings.WHARF_TRUST_TIME_LIMIT - 60, 30)
    return check.check_pending(seconds=budget)
