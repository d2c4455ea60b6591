"""Benchmark of the production web server (issue 15) against Django's runserver.

On PostgreSQL with a Chart Store of 5,000 charts x 10 versions (50,000 versions), the same
pages are loaded by the same client, in the same run, from:

- gunicorn with ``config/gunicorn.py`` (several worker processes), ``DEBUG=0``;
- ``manage.py runserver`` (one process, a thread per request; it only runs with DEBUG=1).

For the store page, a search and a chart page it prints requests per second and p50/p99
latency with 8 signed-in connections at once (Debian's ``wrk`` when installed, else Python
threads), and the ratio gunicorn / runserver; then the
latency of ``/readyz`` on gunicorn, and the size of the ``wharf`` image when one is built
(``make image``). The client shares this machine's CPUs with the server: read the ratios,
not the absolute figures.

    .venv/bin/python bench/web_server.py            # full size (~2 minutes on 2 CPUs)
    .venv/bin/python bench/web_server.py --quick    # a smoke run

Needs PostgreSQL on 127.0.0.1:5432 (``BENCH_PG_URL`` to change it): a throw-away database
``wharf_bench_web`` is made and dropped. Without PostgreSQL it says so and exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "wharf_bench_web"
CLIENTS = 8
PASSWORD = "bench-password-1"
LABEL_WIDTH = 44


def row(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<{LABEL_WIDTH}} {value:>22}  {note}".rstrip())


def make_database() -> bool:
    import psycopg

    try:
        with psycopg.connect(f"{PG}/postgres", autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {DB_NAME}")
    except psycopg.OperationalError as exc:
        print(f"skipped: PostgreSQL is not reachable at {PG} ({exc})")
        return False
    return True


def drop_database() -> None:
    import psycopg

    with (
        contextlib.suppress(psycopg.Error),
        psycopg.connect(f"{PG}/postgres", autocommit=True, connect_timeout=3) as conn,
    ):
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


def fill(workdir: Path, charts: int, versions: int) -> dict[str, str]:
    """Migrate and fill the database in a child process (the bench's own stays Django-free)."""
    script = f"""
import sys; sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / "bench")!r}]
import chart_sync  # sets Django up on BENCH_DATABASE_URL
from django.core.management import call_command
from django.contrib.auth import get_user_model
from config.celery import app
from tests.broker import SentTasks
from charts.models import Chart
call_command("migrate", verbosity=0)
app.send_task = SentTasks().send_task
chart_sync.fill_store({charts}, {versions})
from django.contrib.auth.hashers import PBKDF2PasswordHasher
# Hashed as production settings hash (the test settings' fast hasher is not there).
hasher = PBKDF2PasswordHasher()
get_user_model().objects.create(username="bench-viewer",
                                password=hasher.encode({PASSWORD!r}, hasher.salt()))
print(Chart.objects.order_by("name").first().pk)
"""
    env = {**os.environ, "BENCH_DATABASE_URL": f"{PG}/{DB_NAME}"}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=1800)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"filling the database failed:\n{done.stderr[-3000:]}")
    return {"chart": done.stdout.strip().splitlines()[-1]}


def server_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WHARF_", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=f"{PG}/{DB_NAME}",
        SECRET_KEY="bench-secret-key-" + "x" * 40,
        WHARF_ENCRYPTION_KEYS="xtUkkm4SDRdYFs4DZ9jmm9IK-7HEI3ZFoP3wjyowBpQ=",
        WHARF_VAR_DIR=str(workdir / "var"),
        ALLOWED_HOSTS="127.0.0.1",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        LOG_LEVEL="WARNING",
        DEBUG="0",
    )
    env.pop("REDIS_URL", None)
    return env


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, name: str, command: list[str], env: dict[str, str], port: int) -> None:
        import requests

        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}"
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.log.seek(0)
                raise SystemExit(f"{name} did not start:\n{self.log.read().decode()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()


def signed_in(url: str):
    import requests

    session = requests.Session()
    session.trust_env = False
    session.get(url + "/accounts/login/", timeout=30)
    answer = session.post(
        url + "/accounts/login/",
        data={"username": "bench-viewer", "password": PASSWORD,
              "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        timeout=30, allow_redirects=False,
    )  # fmt: skip
    if answer.status_code != 302:
        raise SystemExit(f"sign-in failed on {url}: {answer.status_code}")
    return session


def load(server: Server, path: str, seconds: float) -> tuple[float, float, float, int]:
    """(requests per second, p50, p99 in seconds, errors) with CLIENTS clients for ``seconds``."""
    sessions = [signed_in(server.url) for _ in range(CLIENTS)]
    for session in sessions[:2]:  # warm-up: templates, connections
        session.get(server.url + path, timeout=60)
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(session) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                ok = session.get(server.url + path, timeout=60).status_code == 200
            except Exception:
                ok = False
            took = time.perf_counter() - started
            with lock:
                latencies.append(took)
                errors += not ok

    threads = [threading.Thread(target=client, args=(s,)) for s in sessions]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / elapsed, statistics.median(latencies), p99, errors


def _wrk_seconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def load_wrk(server: Server, path: str, seconds: float) -> tuple[float, float, float, int]:
    """The same figures from Debian's ``wrk`` (C, one thread, CLIENTS connections): a client
    that costs the machine far less CPU than Python's, so more is left for the server."""
    session = signed_in(server.url)
    cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    done = subprocess.run(
        ["wrk", "-t1", f"-c{CLIENTS}", f"-d{max(1, round(seconds))}s", "--latency",
         "-H", f"Cookie: {cookie}", server.url + path],
        capture_output=True, text=True, timeout=seconds + 60,
    )  # fmt: skip
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _wrk_seconds(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _wrk_seconds(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    return rps, p50, p99, errors


def image_size() -> str:
    podman = shutil.which("podman")
    if not podman:
        return "no podman here"
    done = subprocess.run([podman, "image", "inspect", "wharf", "--format", "{{.Size}}"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    if done.returncode != 0 or not done.stdout.strip().isdigit():
        return "not built (make image)"
    return f"{int(done.stdout) / 2**20:.0f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--charts", type=int, default=5000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=8.0, help="load per page and server")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.charts, args.seconds = 500, 2.0
    if not make_database():
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="wharf-bench-web-"))
    servers: list[Server] = []
    try:
        print("Production web server benchmark (issue 15)")
        client = "wrk, 1 thread" if shutil.which("wrk") else "Python threads (no wrk here)"
        row("machine", f"{os.cpu_count()} CPUs", f"{CLIENTS} clients at once: {client}")
        started = time.perf_counter()
        ids = fill(workdir, args.charts, args.versions)
        row("store size", f"{args.charts:,} x {args.versions}",
            f"filled in {time.perf_counter() - started:.0f} s, PostgreSQL")  # fmt: skip
        env = server_env(workdir)
        metrics_dir = workdir / "metrics"
        metrics_dir.mkdir()
        gunicorn_port, runserver_port = free_port(), free_port()
        gunicorn = Server(
            "gunicorn",
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi"],
            {**env, "PORT": str(gunicorn_port), "WHARF_BIND": f"127.0.0.1:{gunicorn_port}",
             "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
            gunicorn_port,
        )  # fmt: skip
        servers.append(gunicorn)
        runserver = Server(
            "runserver",
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{runserver_port}",
             "--noreload", "--skip-checks"],
            {**env, "DEBUG": "1"},
            runserver_port,
        )  # fmt: skip
        servers.append(runserver)
        workers = subprocess.run(
            ["pgrep", "-c", "-g", str(gunicorn.process.pid)], capture_output=True, text=True
        ).stdout.strip()
        row("gunicorn processes (arbiter + workers)", workers or "?")

        pages = [
            ("store page 1", "/charts/"),
            ("store search ?q=database", "/charts/?q=database"),
            (f"chart page ({args.versions} versions)", f"/charts/{ids['chart']}/"),
        ]
        for label, path in pages:
            print(f"\n{label}  ({path})")
            results = {}
            for server in (gunicorn, runserver):
                measure = load_wrk if shutil.which("wrk") else load
                rps, p50, p99, errors = measure(server, path, args.seconds)
                results[server.name] = (rps, p99)
                note = f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, errors {errors}"
                row(f"{server.name}: requests/s", f"{rps:.1f}", note)
            ratio = results["gunicorn"][0] / results["runserver"][0]
            p99_ratio = results["runserver"][1] / results["gunicorn"][1]
            row("gunicorn / runserver throughput", f"{ratio:.2f}x",
                f"runserver's p99 is {p99_ratio:.2f}x gunicorn's")  # fmt: skip

        import requests

        times = []
        for _ in range(200):
            began = time.perf_counter()
            requests.get(gunicorn.url + "/readyz", timeout=10)
            times.append(time.perf_counter() - began)
        times.sort()
        print()
        note = f"p99 {times[197] * 1000:.1f} ms (database, migrations, filesystem broker)"
        row("/readyz on gunicorn (200 in a row)", f"p50 {statistics.median(times) * 1000:.1f} ms",
            note)  # fmt: skip
        row("image size (podman image inspect wharf)", image_size())
    finally:
        for server in servers:
            server.stop()
        drop_database()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
