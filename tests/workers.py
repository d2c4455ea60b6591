"""Real Celery workers on the real broker (Redis), sharing the test's PostgreSQL database.

For the tests of what only shows with several processes: queues per kind of work, runs
spread over several workers. A test marked ``django_db(transaction=True)`` commits its
rows, so worker processes see them; what Wharf sends is recorded by the ``broker``
fixture as everywhere, and :meth:`Workers.deliver` hands those messages to Redis with
Wharf's own routes, where the workers take them.

Needs PostgreSQL (an SQLite test database lives in the test's memory) and Redis on
127.0.0.1:6379: without them the test skips, and fails under WHARF_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from celery import Celery
from django.conf import settings
from django.db import connection

from tests.servers import base
from tests.servers.base import service_unavailable, wait_until

ROOT = Path(__file__).resolve().parents[1]
REDIS = "redis://127.0.0.1:6379/{db}"


def wait_for(check, *, what: str, timeout: float = 120.0):
    """:func:`tests.servers.base.wait_for`, with room for processes on a loaded machine."""
    return base.wait_for(check, what=what, timeout=timeout)


def database_url() -> str:
    """The URL of the test database itself, as worker processes must use it."""
    params = connection.settings_dict
    if connection.vendor != "postgresql":
        service_unavailable("several worker processes need PostgreSQL (DATABASE_URL)")
    user = params.get("USER") or "postgres"
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    host = params.get("HOST") or "127.0.0.1"
    port = params.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{params['NAME']}"


class Workers:
    def __init__(self, tmp_path: Path, redis_db: int) -> None:
        import redis

        self.broker_url = REDIS.format(db=redis_db)
        self.redis = redis.Redis.from_url(self.broker_url)
        try:
            self.redis.ping()
        except redis.exceptions.ConnectionError:
            service_unavailable("Redis is not reachable on 127.0.0.1:6379")
        self.redis.flushdb()
        self.tmp_path = tmp_path
        self.processes: dict[str, subprocess.Popen] = {}
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("WHARF_")},
            "DJANGO_SETTINGS_MODULE": "config.settings_test",
            "DATABASE_URL": database_url(),
            "REDIS_URL": self.broker_url,
            "WHARF_VAR_DIR": str(tmp_path / "var"),
            "LOG_LEVEL": "INFO",
        }
        # The sending side: Wharf's routes and queues, the real broker.
        self.producer = Celery("wharf-test-producer", broker=self.broker_url)
        self.producer.conf.update(
            task_routes=settings.CELERY_TASK_ROUTES,
            task_queues=settings.CELERY_TASK_QUEUES,
            task_default_queue=settings.CELERY_TASK_DEFAULT_QUEUE,
            task_serializer="json",
        )

    def start(self, name: str, *queues: str, env: dict | None = None) -> subprocess.Popen:
        """A worker of one process taking ``queues`` (all of them when none are given)."""
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency=1",
                   f"--hostname={name}@%h", "--loglevel=INFO", "--without-gossip",
                   "--without-mingle"]  # fmt: skip
        if queues:
            command.append("--queues=" + ",".join(queues))
        log = (self.tmp_path / f"{name}.log").open("wb")
        process = subprocess.Popen(
            command, cwd=ROOT, env={**self.env, **(env or {})}, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.processes[name] = process
        wait_until(
            lambda: b"ready." in self.log(name).encode() or process.poll() is not None,
            what=f"worker {name} to start",
            timeout=60,
        )
        assert process.poll() is None, self.log(name)
        return process

    def log(self, name: str) -> str:
        path = self.tmp_path / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def deliver(self, broker) -> int:
        """Send every message Wharf queued (recorded by ``broker``) to the real broker."""
        pending = broker.pending()
        for task_name, args in pending:
            self.producer.send_task(task_name, args=list(args))
        broker._taken += len(pending)
        return len(pending)

    def kill(self, name: str) -> None:
        """SIGKILL a worker and its pool processes: a machine lost mid-run."""
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        for name in list(self.processes):
            self.kill(name)
        self.redis.flushdb()
        self.producer.close()


class Web:
    """A web server of Wharf (gunicorn, as in production) on a free port, sharing the test database and broker,
    and a signed-in ``requests`` session for it (``post()`` sends the CSRF token)."""

    def __init__(self, workers: Workers, name: str, *, processes: int = 2, env=None) -> None:
        """gunicorn with Wharf's production settings file and ``processes`` workers."""
        import requests

        from tests.servers.base import free_port

        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        log = (workers.tmp_path / f"{name}.log").open("wb")
        env = {**workers.env, "SESSION_COOKIE_SECURE": "0", "CSRF_COOKIE_SECURE": "0",
               "WHARF_BIND": f"127.0.0.1:{self.port}", "WHARF_WEB_WORKERS": str(processes),
               **(env or {})}  # fmt: skip
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        workers.processes[name] = self.process
        self.session = requests.Session()
        self.session.trust_env = False

        def answers() -> bool:
            try:
                return self.session.get(self.url + "/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(answers, what=f"web {name} to serve", timeout=60)

    def sign_in(self, username: str, password: str) -> None:
        self.session.get(self.url + "/accounts/login/", timeout=10)
        response = self.session.post(
            self.url + "/accounts/login/",
            data={"username": username, "password": password,
                  "csrfmiddlewaretoken": self.session.cookies["csrftoken"]},
            timeout=10, allow_redirects=False,
        )  # fmt: skip
        assert response.status_code == 302, response.text[:500]

    def post(self, path: str, data=None, files=None):
        return self.session.post(
            self.url + path, data=data or {}, files=files, timeout=30, allow_redirects=False,
            headers={"X-CSRFToken": self.session.cookies["csrftoken"], "Referer": self.url},
        )  # fmt: skip
