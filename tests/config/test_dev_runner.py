"""`make run`'s runner (scripts/run-all.sh) stops all of its processes on SIGTERM or Ctrl-C.

The runner is started for real, in a session of its own, on the embedded defaults (SQLite
and the filesystem broker under a temporary folder): the web server, a Celery worker and
beat. Then the whole process group gets the signal a terminal's Ctrl-C or a supervisor
sends, and no process of that session may be left after 10 seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.servers.base import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
STOP_WITHIN = 10.0


def session_processes(sid: int) -> list[str]:
    """The command lines of every live process in session ``sid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            state, session = fields[0], int(fields[3])
            if session == sid and state != "Z":
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return found


@pytest.fixture
def debug():
    """DEBUG for the runner: "1" is make run (runserver); "0" is production (gunicorn)."""
    return "1"


@pytest.fixture
def runner(tmp_path, debug):
    port = free_port()
    env = {
        **os.environ,
        "DEBUG": debug,
        "SECRET_KEY": "runner-test-secret-key",
        "WHARF_ENCRYPTION_KEYS": "Vr4Yt2cGQx0QJX0f1zQ8m4aV3pZ5b9Gm9m4X3q7yT0c=",
        # A plain-HTTP test: secure-only cookies would never come back.
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "WHARF_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'wharf.sqlite3'}",
        "PORT": str(port),
        "PYTHON": sys.executable,
        "LOG_LEVEL": "INFO",
    }
    env.pop("REDIS_URL", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    log = (tmp_path / "runner.log").open("wb")
    process = subprocess.Popen(
        ["./scripts/run-all.sh"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    sid = process.pid
    try:
        yield process, sid, port, tmp_path / "runner.log"
    finally:
        if session_processes(sid):
            os.killpg(sid, signal.SIGKILL)  # never leave the machine with leftovers
        process.wait(timeout=10)
        log.close()


def started(port: int, log_path: Path) -> bool:
    try:
        requests.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=2).raise_for_status()
    except requests.RequestException:
        return False
    log = log_path.read_text(errors="replace")
    return "ready." in log and "beat: Starting" in log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_dev_runner_stops_every_process_it_started(runner, sig):
    _process, sid, port, log_path = runner
    wait_for(lambda: started(port, log_path), what="web, worker and beat to start", timeout=60)
    assert len(session_processes(sid)) >= 4  # the runner, web, worker (+ pool), beat
    metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert metrics.status_code == 200 and "wharf_runs_queued" in metrics.text
    assert (log_path.parent / "var" / "metrics").is_dir()  # shared by web and worker

    os.killpg(sid, sig)

    deadline = time.monotonic() + STOP_WITHIN
    while session_processes(sid) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = session_processes(sid)
    assert left == [], f"still running {STOP_WITHIN:g} s after {sig.name}: {left}"


@pytest.mark.parametrize("debug", ["0"])
def test_the_runner_without_debug_serves_with_gunicorn_and_stops_every_process(runner):
    _process, sid, port, log_path = runner
    wait_for(lambda: started(port, log_path), what="web, worker and beat to start", timeout=60)
    response = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    assert response.headers["Server"] == "gunicorn"

    os.killpg(sid, signal.SIGTERM)

    deadline = time.monotonic() + STOP_WITHIN
    while session_processes(sid) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = session_processes(sid)
    assert left == [], f"still running {STOP_WITHIN:g} s after SIGTERM: {left}"
