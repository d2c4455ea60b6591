"""Chart syncs spend within their registry's rate-limit budget (``registries.budgets``).

A sync of a registry's repositories asks :class:`BudgetGuard` before each request: once
the registry is down to its reserve (or a 429 asked to wait), the request is not sent and
the run is held back instead of failed (:func:`held_back`): it stays queued with
``not_before`` and ``wait_reason``, and is sent to the broker again for that time. The
other registries' syncs are not concerned: each has its own budget.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from charts.sync.writer import SyncError
from config import runs
from registries import budgets, oci

# A 429 that said nothing of how long: the run waits this long.
DEFAULT_WAIT = timedelta(seconds=budgets.DEFAULT_THROTTLE)


class BudgetGuard:
    """Raises a rate-limit ``RegistryError`` while the registry's budget says to wait."""

    def __init__(self, registry_id: int, host: str) -> None:
        self.registry_id = registry_id
        self.host = host
        budgets.current(registry_id, reload=True)  # what other workers' answers said

    def check(self) -> None:
        wait = budgets.wait_needed(budgets.current(self.registry_id))
        if wait is not None:
            raise oci.RegistryError(
                wait.reason,
                kind=oci.RegistryError.RATE_LIMITED,
                host=self.host,
                retry_after=max(wait.seconds, 1.0),
            )


def rate_limit_of(exc: Exception) -> oci.RegistryError | None:
    """The registry's rate limit that stopped a sync, if that is what stopped it."""
    cause = exc.__cause__ if isinstance(exc, SyncError) else exc
    if isinstance(cause, oci.RegistryError) and cause.kind == cause.RATE_LIMITED:
        return cause
    return None


def held_back(exc: oci.RegistryError, fields: dict[str, Any]) -> runs.Outcome:
    """The outcome of a run the registry's rate limit stopped: queued again for later."""
    wait = timedelta(seconds=exc.retry_after) if exc.retry_after else DEFAULT_WAIT
    not_before = timezone.now() + wait
    done = fields.get("added", 0) + fields.get("updated", 0)
    reason = str(exc)
    if done:
        reason += f" {done} versions were indexed before it stopped; the rest waits."
    return runs.Outcome(
        runs.RunStatus.QUEUED,
        "",
        {**fields, "not_before": not_before, "wait_reason": reason},
        not_before=not_before,
    )
