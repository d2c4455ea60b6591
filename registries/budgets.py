"""Rate-limit budgets per registry: noted from every answer, kept, and asked before spending.

Every answer from a registry passes its rate-limit headers (``config.ratelimit``) to the
:func:`recorder` its :class:`~registries.oci.Connection` carries. The latest budget of
each registry is held in this process (:data:`_BOOK`) and in the database
(:class:`~registries.models.RateLimitBudget`, so every worker and the web see it), written
only when it changed. Threads of a sync's request pool only note it in memory
(:func:`defer_writes`): the run's own thread writes it (:func:`flush`), so pool threads
never open database connections of their own.

:func:`wait_needed` says whether work on a registry should wait, and until when: while a
429's ``Retry-After`` lasts, or once no more than ``WHARF_RATE_LIMIT_RESERVE_PERCENT`` of
its limit is left, until its window resets.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from config.ratelimit import MAX_RETRY_AFTER, RateLimitReading

log = logging.getLogger(__name__)

# A 429 that says nothing of how long: this long, then a request may try again.
DEFAULT_THROTTLE = 60.0
# A reset that moved less than this is not worth a write by itself.
RESET_TOLERANCE = timedelta(seconds=60)


@dataclass(frozen=True)
class BudgetState:
    """A registry's budget as last seen (any field None: the registry did not say)."""

    limit: int | None = None
    remaining: int | None = None
    window_seconds: int | None = None
    resets_at: datetime | None = None
    throttled_until: datetime | None = None
    updated_at: datetime | None = None

    def after(self, reading: RateLimitReading, now: datetime) -> BudgetState:
        """This budget updated by what one answer said."""
        state = self
        if reading.has_budget:
            window = reading.window if reading.window is not None else self.window_seconds
            if reading.reset_after is not None:
                resets_at: datetime | None = now + timedelta(seconds=reading.reset_after)
            elif window:
                # No reset given (Docker Hub): a rolling window is all back by then at the
                # latest. A window of years is a day: no sync waits longer than a 429 would.
                resets_at = now + timedelta(seconds=min(window, MAX_RETRY_AFTER))
            else:
                resets_at = None
            state = replace(
                state,
                limit=reading.limit if reading.limit is not None else self.limit,
                remaining=reading.remaining,
                window_seconds=int(window) if window else None,
                resets_at=resets_at,
            )
        if reading.throttled:
            wait = reading.retry_after
            if wait is None:
                wait = reading.reset_after if reading.reset_after is not None else DEFAULT_THROTTLE
            state = replace(state, throttled_until=now + timedelta(seconds=wait))
        return replace(state, updated_at=now)

    def same_as(self, other: BudgetState | None) -> bool:
        """Whether writing this over ``other`` would tell a reader nothing new."""
        if other is None:
            return False
        if (self.limit, self.remaining, self.window_seconds) != (
            other.limit, other.remaining, other.window_seconds,
        ):  # fmt: skip
            return False
        return _close(self.resets_at, other.resets_at) and _close(
            self.throttled_until, other.throttled_until
        )


def _close(a: datetime | None, b: datetime | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) < RESET_TOLERANCE


@dataclass
class _Entry:
    state: BudgetState
    written: BudgetState | None  # what the database holds, as far as this process knows


_BOOK: dict[int, _Entry] = {}
_LOCK = threading.Lock()
_thread = threading.local()


def defer_writes() -> None:
    """Make this thread only note budgets in memory (a pool's ``initializer``)."""
    _thread.deferred = True


def recorder(registry_id: int | None, api_host: str) -> Callable[[str, RateLimitReading], None]:
    """What a connection to the registry ``registry_id`` calls with each answer's reading.

    Only the registry's own answers count: its token service (maybe another host) keeps
    limits of its own. A registry not saved yet (a Test connection of a new form) has none.
    """
    host = api_host.lower()

    def note_answer(answer_host: str, reading: RateLimitReading) -> None:
        if registry_id is not None and answer_host.lower() == host:
            note(registry_id, reading)

    return note_answer


def note(registry_id: int, reading: RateLimitReading, *, now: datetime | None = None) -> None:
    """Take in one answer's reading; write it at once unless this thread defers writes."""
    now = now or timezone.now()
    with _LOCK:
        entry = _BOOK.get(registry_id)
        if entry is None:
            entry = _BOOK[registry_id] = _Entry(BudgetState(), None)
        entry.state = entry.state.after(reading, now)
    if not getattr(_thread, "deferred", False):
        flush(registry_id)


def flush(registry_id: int | None = None) -> int:
    """Write the budgets that changed since they were last written (one registry's, or
    every one's); how many were written. A database failure is logged, never raised."""
    with _LOCK:
        due = [
            (pk, entry.state)
            for pk, entry in _BOOK.items()
            if (registry_id is None or pk == registry_id) and not entry.state.same_as(entry.written)
        ]
    written = 0
    for pk, state in due:
        if _write(pk, state):
            written += 1
            with _LOCK:
                _BOOK[pk].written = state
    return written


def _write(registry_id: int, state: BudgetState) -> bool:
    from registries.models import RateLimitBudget

    fields = {
        "limit": state.limit,
        "remaining": state.remaining,
        "window_seconds": state.window_seconds,
        "resets_at": state.resets_at,
        "throttled_until": state.throttled_until,
        "updated_at": state.updated_at or timezone.now(),
    }
    rows = RateLimitBudget.objects.filter(registry_id=registry_id)
    try:
        with transaction.atomic():
            if not rows.update(**fields):
                try:
                    with transaction.atomic():
                        RateLimitBudget.objects.create(registry_id=registry_id, **fields)
                except IntegrityError:  # another process made it a moment ago
                    rows.update(**fields)
    except DatabaseError as exc:  # e.g. the registry was deleted meanwhile
        log.warning("Could not keep the rate-limit budget of registry %s: %s", registry_id, exc)
        return False
    return True


def current(registry_id: int, *, reload: bool = False) -> BudgetState:
    """The registry's budget: this process's, or the database's when that one is newer
    (another worker's answers) or ``reload`` is asked for."""
    with _LOCK:
        entry = _BOOK.get(registry_id)
    if entry is not None and not reload:
        return entry.state
    from registries.models import RateLimitBudget

    row = RateLimitBudget.objects.filter(registry_id=registry_id).first()
    if row is None:
        if entry is not None:
            return entry.state
        with _LOCK:  # known to be empty: not read again by every check
            entry = _BOOK.setdefault(registry_id, _Entry(BudgetState(), BudgetState()))
        return entry.state
    stored = BudgetState(
        limit=row.limit,
        remaining=row.remaining,
        window_seconds=row.window_seconds,
        resets_at=row.resets_at,
        throttled_until=row.throttled_until,
        updated_at=row.updated_at,
    )
    with _LOCK:
        entry = _BOOK.get(registry_id)
        mine = entry.state if entry is not None else None
        if mine is None or (mine.updated_at or row.updated_at) <= row.updated_at:
            _BOOK[registry_id] = _Entry(stored, stored)
            return stored
        return mine


def forget() -> None:
    """Drop what this process holds (tests start afresh)."""
    with _LOCK:
        _BOOK.clear()


def reserve_of(limit: int | None) -> int:
    """How many requests of ``limit`` a sync leaves unspent."""
    if not limit:
        return 0
    return math.ceil(limit * settings.WHARF_RATE_LIMIT_RESERVE_PERCENT / 100)


@dataclass(frozen=True)
class Wait:
    """Work on a registry waits until ``until``; ``reason`` says why, for the run's page."""

    until: datetime
    reason: str

    @property
    def seconds(self) -> float:
        return max(0.0, (self.until - timezone.now()).total_seconds())


def wait_needed(state: BudgetState, *, now: datetime | None = None) -> Wait | None:
    """Whether work on a registry with this budget should wait, and until when."""
    now = now or timezone.now()
    if state.throttled_until is not None and state.throttled_until > now:
        return Wait(
            state.throttled_until,
            "The registry answered 429 Too Many Requests and asked Wharf to wait until "
            f"{_when(state.throttled_until)}.",
        )
    if state.remaining is None:
        return None
    reserve = reserve_of(state.limit)
    if state.remaining > reserve:
        return None
    until = state.resets_at
    if until is None:  # no reset, no window: a minute after the registry said so
        until = (state.updated_at or now) + timedelta(seconds=DEFAULT_THROTTLE)
    if until <= now:
        return None  # the window this count belongs to is over
    of = f" of {state.limit}" if state.limit else ""
    window = f" per {describe_window(state.window_seconds)}" if state.window_seconds else ""
    kept = (
        f"; {settings.WHARF_RATE_LIMIT_RESERVE_PERCENT}% ({reserve}) are kept in reserve"
        if reserve
        else ""
    )
    return Wait(
        until,
        f"The registry's rate limit is spent down to its reserve: {state.remaining}{of} "
        f"requests left{window}{kept}. Its syncs wait until {_when(until)}, when its "
        "window resets.",
    )


def wait_for_registry(registry_id: int) -> Wait | None:
    """Whether work on the registry should wait now, by its budget as the database has it
    (so other workers' answers count)."""
    return wait_needed(current(registry_id, reload=True))


def _when(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z")


def describe_window(seconds: int) -> str:
    """A window of ``seconds`` in words, after "per": 21600 is "6 hours", 60 "minute"."""
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return "hour" if hours == 1 else f"{hours} hours"
    if seconds % 60 == 0:
        minutes = seconds // 60
        return "minute" if minutes == 1 else f"{minutes} minutes"
    return f"{seconds} s"
