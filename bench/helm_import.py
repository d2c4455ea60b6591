"""Benchmark: Wharf's import of a big Helm index against Helm's own load of the same index.

nginx serves a realistic ``index.yaml`` (C charts x V versions, ~23 MB at the default
1,000 x 20). Each side runs in a process of its own, so that its peak RSS is its own:

- Helm: ``helm_python.registry.repo_index(url)`` (helm-python-sdk, Helm v4's Go SDK):
  it downloads and loads the index as ``helm repo update`` does;
- Wharf: a first import of the same URL through ``charts.sync.run_sync``, as the worker
  does it, on SQLite and on PostgreSQL (``BENCH_DATABASE_URL``, else the local server
  when it answers; the schema is migrated in a process before, not counted).

Each is run twice, alternating; the best time and the lowest peak RSS of each are
compared as ratios measured in this run. Goals (issue 16): Wharf's import time <= 0.75x
Helm's, Wharf's peak RSS <= 0.35x Helm's. A missed goal is a finding, not an error.

    .venv/bin/python bench/helm_import.py            # 1,000 charts x 20 versions
    .venv/bin/python bench/helm_import.py --quick    # 100 x 5, a smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LABEL_WIDTH = 52
TIME_GOAL, RSS_GOAL = 0.75, 0.35
LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432/wharf_bench_helm"


def row(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<{LABEL_WIDTH}} {value:>12}  {note}".rstrip(), flush=True)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- the measured processes ----------------------------------------------------------------


def child_helm(url: str) -> dict:
    from helm_python import registry

    start = time.perf_counter()
    index = registry.repo_index(url)
    seconds = time.perf_counter() - start
    versions = sum(len(items) for items in index["entries"].values())
    return {"seconds": seconds, "versions": versions, "rss": peak_rss_mib()}


def _django(database_url: str, var_dir: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings_test"
    os.environ["DATABASE_URL"] = database_url
    os.environ["WHARF_VAR_DIR"] = var_dir
    import django

    django.setup()


def child_migrate(database_url: str, var_dir: str) -> dict:
    _django(database_url, var_dir)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return {}


def child_wharf(url: str, database_url: str, var_dir: str) -> dict:
    _django(database_url, var_dir)
    from charts.models import HelmRepository, SyncRun
    from charts.sources import sync_helm_repository_source
    from charts.sync import queue_sync, run_sync
    from config.celery import app
    from registries.models import Registry
    from tests.broker import SentTasks

    app.send_task = SentTasks().send_task  # runs are run here, not sent to a broker
    HelmRepository.objects.filter(name="bench-helm-import").delete()  # an earlier run's
    repository = HelmRepository.objects.create(
        name="bench-helm-import", url=url, tls_mode=Registry.Tls.INSECURE
    )
    source = sync_helm_repository_source(repository, changed=True)
    run_id = queue_sync(source, trigger=SyncRun.Trigger.MANUAL).pk
    start = time.perf_counter()
    run = run_sync(run_id)
    seconds = time.perf_counter() - start
    if run is None or run.status != SyncRun.Status.SUCCEEDED:
        raise SystemExit(f"the import failed: {getattr(run, 'error', 'no run')}")
    result = {"seconds": seconds, "versions": run.added, "rss": peak_rss_mib()}
    HelmRepository.objects.filter(pk=repository.pk).delete()
    return result


def in_child(*argv: str) -> dict:
    """Run this file with ``--child ...`` in a new process; its JSON answer."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", *argv], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed:\n{done.stdout}{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the databases -------------------------------------------------------------------------


def postgres_url() -> str | None:
    """BENCH_DATABASE_URL, else the local server's bench database when it answers."""
    if os.environ.get("BENCH_DATABASE_URL"):
        return os.environ["BENCH_DATABASE_URL"]
    try:
        import psycopg
    except ImportError:
        return None
    try:
        with psycopg.connect(
            "postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=2, autocommit=True
        ) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = 'wharf_bench_helm'"
            ).fetchone()
            if not exists:
                conn.execute("CREATE DATABASE wharf_bench_helm")
    except psycopg.Error:
        return None
    return LOCAL_POSTGRES


# --- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--charts", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        child = {"helm": child_helm, "wharf": child_wharf, "migrate": child_migrate}[kind]
        print(json.dumps(child(*rest)))
        return 0
    if args.quick:
        args.charts, args.versions, args.rounds = 100, 5, 1

    from tests.chartkit import NginxHelmRepo, nginx_executable, realistic_index

    nginx = nginx_executable()
    if nginx is None:
        print("benchmark error: nginx is needed (apt-get install nginx-light)", file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="wharf-bench-helm-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        repo = NginxHelmRepo.start_on_free_port(workdir / "nginx", executable=nginx)
        stack.callback(repo.stop)
        body = realistic_index(args.charts, args.versions)
        repo.write_index(body)
        expected = args.charts * args.versions

        databases = {"sqlite": f"sqlite:///{workdir / 'bench.sqlite3'}"}
        pg = postgres_url()
        if pg:
            databases["postgresql"] = pg
        for url in databases.values():
            in_child("migrate", url, str(workdir))

        print("Helm index import: Wharf against Helm's own load (issue 16)")
        row("index", f"{len(body) / 2**20:.1f} MB", f"{args.charts:,} charts x {args.versions}")
        row("machine", f"{os.cpu_count()} CPUs", f"Python {sys.version.split()[0]}")
        if not pg:
            row("postgresql", "skipped", "no BENCH_DATABASE_URL and no local server")
        helm: list[dict] = []
        wharf: dict[str, list[dict]] = {name: [] for name in databases}
        for _round in range(args.rounds):
            helm.append(in_child("helm", repo.url))
            for name, url in databases.items():
                wharf[name].append(in_child("wharf", repo.url, url, str(workdir)))
        for result in [*helm, *(r for runs in wharf.values() for r in runs)]:
            if result["versions"] != expected:
                print(f"benchmark error: {result['versions']} versions read", file=sys.stderr)
                return 1

        helm_time = min(r["seconds"] for r in helm)
        helm_rss = min(r["rss"] for r in helm)
        print(f"\n  best of {args.rounds}, each in its own process")
        row("Helm repo_index(url): time", f"{helm_time:.2f} s")
        row("Helm repo_index(url): peak RSS", f"{helm_rss:.0f} MiB")
        for name, runs in wharf.items():
            seconds = min(r["seconds"] for r in runs)
            rss = min(r["rss"] for r in runs)
            time_ratio, rss_ratio = seconds / helm_time, rss / helm_rss
            row(f"Wharf first import ({name}): time", f"{seconds:.2f} s")
            row(f"Wharf first import ({name}): peak RSS", f"{rss:.0f} MiB")
            row(
                f"  time / Helm's ({name})",
                f"{time_ratio:.2f}x",
                f"goal <= {TIME_GOAL}x: {'met' if time_ratio <= TIME_GOAL else 'missed'}",
            )
            row(
                f"  peak RSS / Helm's ({name})",
                f"{rss_ratio:.2f}x",
                f"goal <= {RSS_GOAL}x: {'met' if rss_ratio <= RSS_GOAL else 'missed'}",
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
