"""The production web server: gunicorn with config/gunicorn.py; runserver only with DEBUG=1.

gunicorn is started for real, as the image's ``web`` entry point starts it, on the embedded
defaults (SQLite and the filesystem broker under a temporary folder).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.servers.base import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
STOP_WITHIN = 10.0


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "web-server-test-secret-key",
        "WHARF_ENCRYPTION_KEYS": "Vr4Yt2cGQx0QJX0f1zQ8m4aV3pZ5b9Gm9m4X3q7yT0c=",
        "WHARF_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'wharf.sqlite3'}",
        **extra,
    }
    for name in ("REDIS_URL", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    return env


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if (
                entry.name.isdigit()
                and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid
            ):
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def test_runserver_refuses_to_start_with_debug_off(tmp_path):
    port = free_port()
    result = subprocess.run(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT, env=production_env(tmp_path), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "runserver is Django's development server and only runs with DEBUG=1" in result.stderr
    assert "gunicorn -c config/gunicorn.py" in result.stderr
    assert not listening(port)


@pytest.fixture
def gunicorn(tmp_path):
    port = free_port()
    env = production_env(tmp_path, WHARF_BIND=f"127.0.0.1:{port}", WHARF_WEB_WORKERS="2")
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until(lambda: listening(port), what="gunicorn", timeout=30)
        yield process, port, log_path
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_gunicorn_serves_wharf_with_the_configured_workers(gunicorn):
    process, port, _log = gunicorn
    response = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
    assert response.status_code == 200
    assert response.headers["Server"] == "gunicorn"
    wait_until(lambda: len(children(process.pid)) == 2, what="two workers", timeout=30)


def test_the_access_log_has_the_path_but_never_the_query_string(gunicorn):
    _process, port, log_path = gunicorn
    requests.get(
        f"http://127.0.0.1:{port}/healthz?token=query-s3cret",
        headers={"Referer": "http://example.test/?token=referer-s3cret"},
        timeout=10,
    )
    wait_until(
        lambda: '"GET /healthz HTTP/1.1" 200' in log_path.read_text(), what="the access line"
    )
    log = log_path.read_text()
    assert "query-s3cret" not in log
    assert "referer-s3cret" not in log


def test_gunicorn_and_its_workers_stop_within_ten_seconds_of_sigterm(gunicorn):
    process, port, _log = gunicorn
    requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
    workers = children(process.pid)

    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=STOP_WITHIN)

    assert time.monotonic() - started < STOP_WITHIN
    assert process.returncode == 0
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
