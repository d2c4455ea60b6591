"""A stand-in for the Celery broker: tasks Wharf sends are recorded, and run when a test says.

Wharf hands background work to the broker with ``send_task`` by name (``config.runs``).
In tests nothing is sent: :class:`SentTasks` keeps each message, and :meth:`run_all`
runs the task *functions* one after another, as a worker would take them (a run that
hands on the next queued run sends it, and that one runs too). ``down`` makes every send
fail as a broker outage does; ``eager`` (browser tests only) runs each task as it is
sent.
"""

from __future__ import annotations

from collections import defaultdict

from django.utils.module_loading import autodiscover_modules
from kombu.exceptions import OperationalError


class SentTasks:
    def __init__(self) -> None:
        self.messages: list[tuple[str, tuple]] = []
        self.by_name: defaultdict[str, list] = defaultdict(list)
        self.etas: list[tuple[str, tuple, object]] = []  # (name, args, eta) of timed sends
        self.down = False
        # Browser tests only (a smoke test of the screens): run each task as it is sent, in
        # the thread that sends it, as a worker would right away.
        self.eager = False
        self._taken = 0

    def send_task(self, name: str, args=(), kwargs=None, **options):
        if self.down:
            raise OperationalError("[Errno 111] Connection refused (the test's broker is down)")
        args = tuple(args or ())
        self.messages.append((name, args))
        self.by_name[name].append(args[0] if len(args) == 1 else args)
        if options.get("eta") is not None:  # sent for later (a held-back run)
            self.etas.append((name, args, options["eta"]))
        if self.eager:
            self.run_all()

    def sent(self, name: str) -> list:
        """The first argument (a primary key) of every ``name`` task sent so far."""
        return self.by_name[name]

    def pending(self) -> list[tuple[str, tuple]]:
        return self.messages[self._taken :]

    def run_all(self, *, limit: int = 1000) -> int:
        """Run every message not run yet, in order, including those they send; how many."""
        from config.celery import app

        # Every app's tasks module, as a worker imports them. (Not through Celery's loader:
        # its Django fix-up runs django.setup() again, which resets logging under caplog.)
        autodiscover_modules("tasks")
        done = 0
        while self._taken < len(self.messages):
            if done >= limit:
                raise AssertionError(f"more than {limit} tasks: a task keeps sending itself?")
            name, args = self.messages[self._taken]
            self._taken += 1
            app.tasks[name].run(*args)
            done += 1
        return done
