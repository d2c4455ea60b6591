"""Background runs: one mechanism for chart syncs, chart pushes and pull-secret reconciles.

A run is a row the user can see. It is created (queued) before its task, and sent to
the broker by primary key once the transaction that made it commits
(:func:`enqueue_on_commit`, through ``send_task`` by name, so domain code never imports
its own tasks module). A worker then :func:`execute`s it:

- one run of a subject at a time: the worker takes a lease on the run's subject (a
  chart source, a cluster; or the run itself when it has none) with one conditional
  UPDATE, which holds across processes on SQLite and PostgreSQL. A run that finds the
  lease taken stays queued; the run holding it hands the next queued run on when it ends;
- a heartbeat thread renews the leases while the work runs, so a lease bounds how long a
  dead owner blocks others, not how long the work may take. When a renewal finds the
  lease taken over, the work is told to stop (:meth:`Heartbeat.check`);
- the work returns an :class:`Outcome` (or raises); the run ends succeeded or failed,
  with its error in words a user can act on, never "running" forever;
- :func:`recover_runs` (a beat task) closes runs whose lease expired with their owner
  gone and sends again the queued runs that never reached a worker.

Each kind of work also has a time limit (Celery's ``soft_time_limit``/``time_limit``,
a setting each): the soft limit ends the run as failed with a message saying so.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypeVar

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connections, models, transaction
from django.db.models import Q
from django.utils import timezone

from config import badges, metrics

log = logging.getLogger(__name__)


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED)
LEASE_FIELDS = ("lease_owner", "lease_expires_at")


def lease_duration() -> timedelta:
    return timedelta(seconds=settings.WHARF_RUN_LEASE_SECONDS)


def heartbeat_interval() -> float:
    return float(settings.WHARF_RUN_HEARTBEAT_SECONDS)


class Leased(models.Model):
    """A row one worker at a time may hold: a lease, not a flag, so a dead owner lets go."""

    lease_owner = models.CharField(max_length=64, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The lease is written only by the conditional UPDATEs below: a form or admin save
        # of an instance loaded earlier must not put back the lease as it was then (free),
        # which would let a second worker start beside the one holding it.
        if not self._state.adding and kwargs.get("update_fields") is None and not args:
            kwargs["update_fields"] = [
                f.name
                for f in self._meta.concrete_fields
                if not f.primary_key and f.name not in self.lease_protected_fields()
            ]
        super().save(*args, **kwargs)

    @classmethod
    def lease_protected_fields(cls) -> tuple[str, ...]:
        """Fields a plain ``save()`` of an existing row leaves alone (the lease's own)."""
        return LEASE_FIELDS

    def lease_held(self, now: datetime | None = None) -> bool:
        """Whether a live owner holds this row (as this instance last read it)."""
        expires = self.lease_expires_at
        return bool(self.lease_owner) and expires is not None and expires > (now or timezone.now())


@dataclass
class Lease:
    """A lease on one :class:`Leased` row, held by ``owner``."""

    model: type[Leased]
    pk: int
    owner: str
    took_over: bool = False

    @classmethod
    def acquire(cls, model: type[Leased], pk: int, *, owner: str = "") -> Lease | None:
        """Take the row's lease if it is free or expired; ``None`` if a live owner holds it.

        ``took_over`` on the lease says it had expired under another owner (a dead one).
        """
        owner = owner or uuid.uuid4().hex
        now = timezone.now()
        rows = model._default_manager.filter(pk=pk)
        lease = {"lease_owner": owner, "lease_expires_at": now + lease_duration()}
        if rows.filter(lease_expires_at__isnull=True).update(**lease):
            return cls(model, pk, owner)
        if rows.filter(lease_expires_at__lt=now).update(**lease):
            return cls(model, pk, owner, took_over=True)
        return None

    def renew(self) -> bool:
        """Extend the lease; False when it is no longer ours (expired and taken over)."""
        return bool(
            self.model._default_manager.filter(pk=self.pk, lease_owner=self.owner).update(
                lease_expires_at=timezone.now() + lease_duration()
            )
        )

    def release(self) -> None:
        self.model._default_manager.filter(pk=self.pk, lease_owner=self.owner).update(
            lease_owner="", lease_expires_at=None
        )


class LeaseLost(Exception):
    """Another worker took over this run's lease: this one must stop writing."""


class Heartbeat:
    """Renews leases from a thread of its own while the work runs.

    The thread uses its own database connection and closes it when it stops. A beat
    that cannot reach the database is logged and tried again at the next interval; a
    lease found taken over marks the heartbeat lost, and :meth:`check` then raises.
    ``on_beat`` (for example: write the run's progress counters) runs after each beat.
    """

    def __init__(
        self,
        leases: Iterable[Lease],
        *,
        interval: float | None = None,
        on_beat: Callable[[], None] | None = None,
    ) -> None:
        self.leases = list(leases)
        self.interval = heartbeat_interval() if interval is None else interval
        self.on_beat = on_beat
        self.beats = 0
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wharf-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def check(self) -> None:
        """Raise :class:`LeaseLost` if another worker took the lease over."""
        if self._lost.is_set():
            raise LeaseLost("Another worker took this run over after its lease expired.")

    def beat(self) -> None:
        """Renew every lease once (the thread calls this every ``interval`` seconds)."""
        for lease in self.leases:
            if not lease.renew():
                self._lost.set()
        self.beats += 1
        if self.on_beat is not None and not self._lost.is_set():
            self.on_beat()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    self.beat()
                except DatabaseError as exc:
                    log.warning("A heartbeat could not reach the database: %s", exc)
        finally:
            # Only this thread's connections: each thread has its own.
            connections.close_all()


# --- the run model ----------------------------------------------------------------------

RunT = TypeVar("RunT", bound="Run")


class Run(Leased):
    """What every kind of background run records; a concrete model adds its own results.

    A subclass names its Celery task (``task_name``), its kind (the key of its time
    limit, for messages), and the field of its leased subject (``subject_field``; empty
    when the run is its own subject, as a push is).
    """

    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    queued_at = models.DateTimeField(default=timezone.now)
    # When the run was last handed to the broker: the recovery sends it again if it has
    # not started long after that (a lost message, a broker outage).
    sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    task_name: ClassVar[str]
    kind: ClassVar[str]
    time_limit_setting: ClassVar[str]
    subject_field: ClassVar[str] = ""
    # Whether the kind's runs can be held back: queued with ``not_before`` and
    # ``wait_reason`` (fields of the concrete model), not started before that time.
    holds_back: ClassVar[bool] = False
    # What a run's failure says when its worker stopped (killed, out of memory).
    dead_message: ClassVar[str] = (
        "The worker stopped before this run finished (no heartbeat since {last}); "
        "a later run starts afresh."
    )

    Status = RunStatus
    FINISHED = FINISHED

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.kind} {self.pk} {self.status}"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def duration(self) -> timedelta | None:
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def stale(self) -> bool:
        """Running, but its heartbeat stopped: its worker is probably gone."""
        return self.status == RunStatus.RUNNING and not self.lease_held()

    @property
    def last_heartbeat(self) -> datetime | None:
        """When the worker last renewed this run's lease (its start if it never did)."""
        if self.lease_expires_at:
            return self.lease_expires_at - lease_duration()
        return self.started_at

    # --- the subject ------------------------------------------------------------------

    @classmethod
    def subject_model(cls) -> type[Leased]:
        if not cls.subject_field:
            return cls
        return cls._meta.get_field(cls.subject_field).related_model  # type: ignore[return-value]

    @property
    def subject_id(self) -> int:
        return getattr(self, f"{self.subject_field}_id") if self.subject_field else self.pk

    @classmethod
    def of_subject(cls: type[RunT], subject_id: int) -> models.QuerySet[RunT]:
        if not cls.subject_field:
            return cls._default_manager.filter(pk=subject_id)
        return cls._default_manager.filter(**{f"{cls.subject_field}_id": subject_id})

    def waiting(self: RunT) -> RunT | None:
        """The next queued run of the same subject (not this one), oldest first."""
        if not self.subject_field:
            return None
        return (
            type(self)
            .of_subject(self.subject_id)
            .filter(status=RunStatus.QUEUED)
            .exclude(pk=self.pk)
            .order_by("queued_at", "pk")
            .first()
        )

    @classmethod
    def time_limit(cls) -> int:
        return int(getattr(settings, cls.time_limit_setting))

    @classmethod
    def dead_fields(cls) -> dict[str, Any]:
        """Fields to clear on a run whose worker died (e.g. a push's uploaded bytes)."""
        return {}


badges.declare(
    Run,
    "status",
    {
        RunStatus.QUEUED: "secondary",
        RunStatus.RUNNING: "primary",
        RunStatus.SUCCEEDED: "success",
        RunStatus.FAILED: "danger",
    },
)


def run_models() -> list[type[Run]]:
    """Every concrete kind of run."""
    return [m for m in apps.get_models() if issubclass(m, Run)]


# --- tasks ------------------------------------------------------------------------------

# The soft limit ends the run as failed, with a message; the hard one, this much later, kills
# a worker process still stuck past it.
HARD_LIMIT_MARGIN = 30


def run_task(name: str, time_limit_setting: str) -> Callable[[Callable[..., Any]], Any]:
    """The Celery task of one kind of background work: named, late-acknowledged, and bounded
    by that kind's time limit (a setting), as every Wharf task is."""
    limit = int(getattr(settings, time_limit_setting))
    return shared_task(
        name=name,
        acks_late=True,
        ignore_result=True,
        soft_time_limit=limit,
        time_limit=limit + HARD_LIMIT_MARGIN,
    )


# --- queueing ---------------------------------------------------------------------------


def send(task_name: str, pk: int, *, eta: datetime | None = None) -> bool:
    """Hand a queued run to the broker; a broker outage is logged, not raised.

    Called after the run's row committed: the user's save stands, and :func:`recover_runs`
    sends the run again once the broker is back. With ``eta``, a worker runs it then.
    """
    from config.celery import app

    try:
        if eta is not None:
            app.send_task(task_name, args=[pk], eta=eta)
        else:
            app.send_task(task_name, args=[pk])
    except Exception as exc:
        log.warning("Could not queue %s(%s): %s", task_name, pk, exc)
        return False
    return True


def enqueue_on_commit(task_name: str, pk: int) -> None:
    """Send ``task_name(pk)`` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: send_run_by_name(task_name, pk))


def send_run_by_name(task_name: str, pk: int) -> None:
    """Send a run's task, noting when on its row (the recovery's clock for lost messages)."""
    model = next((m for m in run_models() if m.task_name == task_name), None)
    if model is not None:
        model._default_manager.filter(pk=pk).update(sent_at=timezone.now())
    send(task_name, pk)


def queue_run(model: type[RunT], *, join: bool = True, **fields: Any) -> RunT:
    """A queued run of ``model`` (the one already waiting for the same subject, if
    ``join``), sent to a worker after the transaction commits."""
    if join and model.subject_field:
        subject = fields[model.subject_field]
        subject_id = subject if isinstance(subject, int) else subject.pk
        waiting = (
            model.of_subject(subject_id)
            .filter(status=RunStatus.QUEUED)
            .order_by("queued_at", "pk")
            .first()
        )
        if waiting is not None:
            return waiting
    # Sent once this commits: noted now, which saves writing it again then.
    run = model._default_manager.create(sent_at=timezone.now(), **fields)
    transaction.on_commit(lambda: send(model.task_name, run.pk))
    return run


# --- executing --------------------------------------------------------------------------


@dataclass
class Outcome:
    """How a run ended: its status, its error text, and the kind's own result fields."""

    status: str = RunStatus.SUCCEEDED
    error: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    # With status QUEUED (a kind that ``holds_back``): the run waits, queued, until then,
    # and is sent to the broker again for that time.
    not_before: datetime | None = None

    @property
    def held_back(self) -> bool:
        return self.status == RunStatus.QUEUED


class RunFailed(Exception):
    """The work cannot go on; ``str()`` is shown on the run, ``fields`` are kept (counts)."""

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.fields = fields


@dataclass
class RunContext:
    """What the work gets: its run, the heartbeat, and where to put live progress."""

    run: Run
    heartbeat: Heartbeat
    # Written on the run at every heartbeat (e.g. counters of a long sync).
    progress: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        self.heartbeat.check()


Work = Callable[[RunContext], Outcome]


def execute(
    model: type[RunT],
    run_id: int,
    work: Work,
    *,
    expected: tuple[type[BaseException], ...] = (),
) -> RunT | None:
    """Run the queued run ``run_id`` of ``model`` with ``work``; safe to call twice.

    A finished or missing run is left alone; a run whose subject another live run holds
    stays queued (that run hands it on when it ends). ``expected`` errors end the run
    with their own message; anything else is logged with its traceback and ends the run
    with a short note, so the worker survives and nothing stays "running".
    """
    run = model._default_manager.filter(pk=run_id).first()
    if run is None or run.status != RunStatus.QUEUED:
        return run
    not_before = getattr(run, "not_before", None) if model.holds_back else None
    if not_before is not None and not_before > timezone.now():
        return run  # held back: its own message, sent for that time, starts it
    owner = uuid.uuid4().hex
    subject_lease = None
    if model.subject_field:
        subject_lease = Lease.acquire(model.subject_model(), run.subject_id, owner=owner)
        if subject_lease is None:
            return run  # waits: the holder sends it when it ends, or recovery does
    now = timezone.now()
    running = {
        "status": RunStatus.RUNNING,
        "started_at": now,
        "lease_owner": owner,
        "lease_expires_at": now + lease_duration(),
    }
    if model.holds_back:
        running.update(not_before=None, wait_reason="")
    started = model._default_manager.filter(pk=run.pk, status=RunStatus.QUEUED).update(**running)
    if not started:  # another worker took this very run a moment ago
        if subject_lease is not None:
            subject_lease.release()
        return model._default_manager.filter(pk=run_id).first()
    for name, value in running.items():
        setattr(run, name, value)
    finished = False
    try:
        if subject_lease is not None and subject_lease.took_over:
            _close_dead_runs(model, run)
        leases = [Lease(model, run.pk, owner)]
        if subject_lease is not None:
            leases.append(subject_lease)
        context = RunContext(run=run, heartbeat=Heartbeat(leases))
        context.heartbeat.on_beat = lambda: _write_progress(model, run.pk, owner, context.progress)
        with context.heartbeat:
            outcome = _outcome_of(model, run, work, context, expected)
        finished = _finish(model, run, owner, outcome, context.progress)
        if finished and outcome.held_back:
            log.info("%s %s held back until %s: %s", model.kind, run.pk, outcome.not_before,
                     outcome.fields.get("wait_reason", ""))  # fmt: skip
            send(model.task_name, run.pk, eta=outcome.not_before)
        elif finished:
            _log_outcome(model, run, outcome)
    finally:
        if subject_lease is not None:
            subject_lease.release()
            waiting = run.waiting()
            if waiting is not None:
                send_run_by_name(model.task_name, waiting.pk)
    # What _finish wrote is what the row holds now, unless another worker took it over.
    return run if finished else model._default_manager.filter(pk=run_id).first()


def _log_outcome(model: type[Run], run: Run, outcome: Outcome) -> None:
    """One line per finished run, for the operator (JSON logs make its fields fields): what
    ran, on what, how it ended and how long it took; a failure is a warning with the
    message the run shows (never a secret: users read it)."""
    subject = getattr(run, model.subject_field, None) if model.subject_field else None
    seconds = (timezone.now() - run.started_at).total_seconds() if run.started_at else 0.0
    fields = {
        "run_kind": model.kind,
        "run_id": run.pk,
        "subject": str(subject) if subject is not None else "",
        "outcome": outcome.status,
        "duration_seconds": round(seconds, 3),
    }
    metrics.run_finished(model.kind, subject, outcome.status, seconds)
    about = f" of {subject}" if subject is not None else ""
    if outcome.status == RunStatus.FAILED:
        log.warning("%s %s%s failed after %.1f s: %s", model.kind, run.pk, about, seconds,
                    outcome.error, extra=fields)  # fmt: skip
    else:
        log.info("%s %s%s %s in %.1f s", model.kind, run.pk, about, outcome.status, seconds,
                 extra=fields)  # fmt: skip


def _outcome_of(
    model: type[Run],
    run: Run,
    work: Work,
    context: RunContext,
    expected: tuple[type[BaseException], ...],
) -> Outcome:
    try:
        return work(context)
    except RunFailed as exc:
        return Outcome(RunStatus.FAILED, str(exc), exc.fields)
    except SoftTimeLimitExceeded:
        limit = model.time_limit()
        return Outcome(
            RunStatus.FAILED,
            f"Stopped after {limit} seconds, the time limit for a {model.kind} "
            f"({model.time_limit_setting}).",
        )
    except LeaseLost as exc:
        return Outcome(RunStatus.FAILED, str(exc))
    except expected as exc:
        return Outcome(RunStatus.FAILED, str(exc))
    except Exception as exc:  # the worker must survive anything; the run says what happened
        log.exception("%s %s failed unexpectedly", model.kind, run.pk)
        return Outcome(
            RunStatus.FAILED,
            f"The {model.kind} failed unexpectedly ({type(exc).__name__}); see the worker log.",
        )


def _finish(
    model: type[Run], run: Run, owner: str, outcome: Outcome, progress: dict[str, Any]
) -> bool:
    """Write the outcome on the run (and on ``run``); False if the run is no longer ours.

    A held-back outcome leaves the run queued until ``outcome.not_before`` (sent again then).
    """
    fields = {
        **progress,
        **outcome.fields,
        "status": outcome.status,
        "error": outcome.error,
        "finished_at": timezone.now(),
        "lease_owner": "",
        "lease_expires_at": None,
    }
    if outcome.held_back:
        if not model.holds_back:
            raise ValueError(f"A {model.kind} cannot be held back.")
        # Sent for that time: the recovery counts a lost message from then.
        fields.update(finished_at=None, not_before=outcome.not_before, sent_at=outcome.not_before)
    if not model._default_manager.filter(pk=run.pk, lease_owner=owner).update(**fields):
        log.warning("%s %s finished after another worker took it over", model.kind, run.pk)
        return False
    for name, value in fields.items():
        setattr(run, name, value)
    return True


def _write_progress(model: type[Run], pk: int, owner: str, progress: dict[str, Any]) -> None:
    if progress:
        model._default_manager.filter(pk=pk, lease_owner=owner).update(**dict(progress))


def _dead_message(model: type[Run], run: Run) -> str:
    last = run.last_heartbeat
    when = timezone.localtime(last).strftime("%Y-%m-%d %H:%M:%S %Z") if last else "its start"
    return model.dead_message.format(last=when)


def _close_dead_runs(model: type[Run], run: Run) -> None:
    """Runs of the same subject still "running" while we hold its lease lost their worker."""
    dead = model.of_subject(run.subject_id).filter(status=RunStatus.RUNNING).exclude(pk=run.pk)
    for other in dead:
        model._default_manager.filter(pk=other.pk, status=RunStatus.RUNNING).update(
            status=RunStatus.FAILED,
            finished_at=timezone.now(),
            error=_dead_message(model, other),
            lease_owner="",
            lease_expires_at=None,
            **model.dead_fields(),
        )


# --- recovery ---------------------------------------------------------------------------


@dataclass
class Recovered:
    closed: int = 0
    resent: int = 0


def recover_runs(now: datetime | None = None) -> Recovered:
    """Close runs whose worker is gone; send again queued runs that never reached one.

    A running run whose lease expired lost its owner (a live one renews it every few
    seconds): it is marked failed with a message that says so, its subject's lease is
    freed and the subject's next queued run is sent. A queued run not started long after
    it was sent, whose subject nobody live holds, is sent again (a lost message or a
    broker outage); a second delivery of a run that did arrive is harmless.
    """
    now = now or timezone.now()
    recovered = Recovered()
    resend_before = now - timedelta(seconds=settings.WHARF_RUN_RESEND_AFTER_SECONDS)
    for model in run_models():
        for run in model._default_manager.filter(
            status=RunStatus.RUNNING, lease_expires_at__lt=now
        ):
            closed = model._default_manager.filter(
                pk=run.pk, status=RunStatus.RUNNING, lease_owner=run.lease_owner
            ).update(
                status=RunStatus.FAILED,
                finished_at=now,
                error=_dead_message(model, run),
                lease_owner="",
                lease_expires_at=None,
                **model.dead_fields(),
            )
            if not closed:
                continue
            recovered.closed += 1
            if model.subject_field:
                Lease(model.subject_model(), run.subject_id, run.lease_owner).release()
        stale = model._default_manager.filter(status=RunStatus.QUEUED).filter(
            Q(sent_at__lt=resend_before) | Q(sent_at__isnull=True, queued_at__lt=resend_before)
        )
        if model.holds_back:  # a held-back run's message is due at its time, not lost
            stale = stale.exclude(**{"not_before__gt": now})
        if model.subject_field:
            busy = (
                model.subject_model()
                ._default_manager.filter(lease_expires_at__gte=now)
                .values("pk")
            )
            stale = stale.exclude(**{f"{model.subject_field}__in": busy})
        sent_subjects: set[int] = set()
        for run in stale.order_by("queued_at", "pk"):
            if model.subject_field and run.subject_id in sent_subjects:
                continue  # one per subject: the others wait behind it
            sent_subjects.add(run.subject_id)
            send_run_by_name(model.task_name, run.pk)
            recovered.resent += 1
    return recovered
