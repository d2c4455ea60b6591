"""Benchmark of the Chart Store at catalogue scale (issue 16), on SQLite and on PostgreSQL.

For each database the same store is built at two sizes, 5,000 charts and 50,000 charts
(10 versions each: 50,000 and 500,000 versions), one database each, and each page's
server time (Django's test client, signed in; median of 15, taken in 5 rounds that
alternate between the two sizes, so load from elsewhere on the machine weighs on both
alike) is printed with its 50k/5k ratio, measured in the same run. Goal: ratio <= 1.3
for every page on both databases (and, for information, about 25 ms or less at 50k on
PostgreSQL). The pages:

- store page 1;
- a broad search (a word in about 1 chart in 20: ~250 matches at 5k, ~2,500 at 50k);
- a search for one chart's exact name, and one with a typo in it (PostgreSQL finds typos);
- a deep page: the page link (keyset cursor) 90% of the way through the store;
- a chart page (10 versions).

Then, on PostgreSQL at 50k, requests per second for the store page and the broad search
on gunicorn (``config/gunicorn.py``, ``DEBUG=0``) with 8 signed-in connections (``wrk``
when installed, else Python threads; see ``bench/web_server.py``).

    .venv/bin/python bench/chart_store.py            # full size (~3-4 minutes on 2 CPUs)
    .venv/bin/python bench/chart_store.py --quick    # 500 / 5,000 charts, a smoke run

SQLite is two throw-away files. PostgreSQL is two throw-away databases,
``<name>_5000`` and ``<name>_50000``, made and dropped on the server of
``BENCH_DATABASE_URL`` when set (``<name>`` its database name), else on the local server
(postgres@127.0.0.1:5432, ``wharf_bench_store_…``); without PostgreSQL that part says so
and is skipped. The rows are written with COPY (PostgreSQL) or executemany (SQLite).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL_PG = "postgres://postgres@127.0.0.1:5432"
PG_DB_NAME = "wharf_bench_store"
PASSWORD = "bench-password-1"
LABEL_WIDTH = 40
RATIO_GOAL = 1.3
PG_GOAL_SECONDS = 0.025
VERSIONS = 10
SOURCES = 4
WORDS = (  # noqa: SIM905 - a paragraph reads better than 40 quoted words
    "database cache proxy gateway metrics logging storage mesh queue search stream auth "
    "backup dns ingress monitor tracing vault registry secrets operator scheduler broker "
    "analytics notebook wiki forum chat mail ldap ci runner builder scanner firewall vpn "
    "ftp media video audio"
).split()


# --- the child: one database, both sizes ----------------------------------------------------


def child(database_urls: list[str], sizes: list[int], out: Path) -> None:
    """Fill one database per size, then time the pages on each in turn, interleaved (the
    machine is shared: load that comes and goes weighs on both sizes alike)."""
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings_test"
    os.environ["DATABASE_URL"] = database_urls[0]
    os.environ.setdefault("WHARF_VAR_DIR", str(out.parent))
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    names = [_database_name(url) for url in database_urls]
    stores = {}
    for name, size in zip(names, sizes, strict=True):
        use_database(name)
        started = time.perf_counter()
        stores[size] = prepare_store(size)
        stores[size]["fill"] = time.perf_counter() - started
    results: dict = {"vendor": connection.vendor, "sizes": {}}
    timings: dict[int, dict[str, list[float]]] = {size: {} for size in sizes}
    for label in stores[sizes[0]]["pages"]:
        for _round in range(ROUNDS):
            for name, size in zip(names, sizes, strict=True):
                use_database(name)
                client, url = stores[size]["client"], stores[size]["pages"][label]
                check_page(client, url, label, stores[size]["target"])  # warm-up
                for _ in range(TIMED_PER_ROUND):
                    began = time.perf_counter()
                    client.get(url)
                    timings[size].setdefault(label, []).append(time.perf_counter() - began)
    for size in sizes:
        store = stores[size]
        results["sizes"][str(size)] = {
            "timings": {k: statistics.median(v) for k, v in timings[size].items()},
            "versions": store["versions"],
            "fill": store["fill"],
            "urls": {"store": store["pages"]["store page 1"],
                     "search": store["pages"]["search (broad word)"]},
            "database": database_urls[sizes.index(size)],
        }  # fmt: skip
    out.write_text(json.dumps(results))


ROUNDS = 5
TIMED_PER_ROUND = 3


def _database_name(url: str) -> str:
    return url.removeprefix("sqlite:///") if url.startswith("sqlite:") else url.rsplit("/", 1)[1]


def use_database(name: str) -> None:
    from django.db import connection

    if connection.settings_dict["NAME"] != name:
        connection.close()
        connection.settings_dict["NAME"] = name


def check_page(client, url: str, label: str, target: str) -> None:
    answer = client.get(url)
    assert answer.status_code == 200, (url, answer.status_code)
    if label.startswith("search (exact"):
        first = re.search(r'data-chart="([^"]*)"', answer.content.decode())
        assert first and first.group(1) == target, (first, target)


def prepare_store(size: int) -> dict:
    """Migrate and fill the current database with ``size`` charts; the pages to time."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import PBKDF2PasswordHasher
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from charts.models import Chart, ChartVersion, HelmRepository
    from charts.search import encode_cursor
    from charts.sources import sync_helm_repository_source
    from config.celery import app
    from registries.models import Registry
    from tests.broker import SentTasks

    call_command("migrate", verbosity=0)
    app.send_task = SentTasks().send_task  # saving a repository queues a sync: record it
    Registry.objects.all().delete()
    HelmRepository.objects.all().delete()
    get_user_model().objects.filter(username="bench-viewer").delete()
    hasher = PBKDF2PasswordHasher()  # as production hashes (for gunicorn's sign-in later)
    user = get_user_model().objects.create(
        username="bench-viewer", password=hasher.encode(PASSWORD, hasher.salt())
    )
    sources = [
        sync_helm_repository_source(
            HelmRepository.objects.create(
                name=f"bench-{n}", url=f"http://127.0.0.1:9/{n}", tls_mode=Registry.Tls.INSECURE
            ),
            changed=True,
        )
        for n in range(SOURCES)
    ]
    fill(connection, [s.pk for s in sources], 0, size)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # what autovacuum does after a big import
            cursor.execute("ANALYZE charts_chart")
            cursor.execute("ANALYZE charts_chartversion")
    client = Client()
    client.force_login(user)
    store = reverse("charts:chart_list")
    # The same chart at both sizes where a page names one.
    target = Chart.objects.get(name=chart_name(204))  # "metrics-…-00204"
    deep = Chart.objects.order_by("name", "id").values_list("name", "id")[int(size * 0.9)]
    typo = target.name.replace("metrics", "metrcs", 1)
    pages = {
        "store page 1": store,
        "search (broad word)": f"{store}?q=database",
        "search (exact name)": f"{store}?q={target.name}",
        "search (name with a typo)": f"{store}?q={typo}",
        "deep page (90% in)": f"{store}?cursor={encode_cursor('list', deep)}",
        f"chart page ({VERSIONS} versions)": reverse("charts:chart_detail", args=[target.pk]),
    }
    versions = ChartVersion.objects.count()
    connection.close()  # the client's session lives in this database: keep them paired
    return {"client": client, "pages": pages, "target": target.name, "versions": versions}


def chart_name(i: int) -> str:
    return f"{WORDS[i % len(WORDS)]}-{WORDS[(i // len(WORDS)) % len(WORDS)]}-{i:05d}"


def fill(connection, source_ids: list[int], start: int, stop: int) -> None:
    """Charts ``start``..``stop`` with VERSIONS versions each, written in bulk."""
    from django.utils import timezone

    from charts.models import Chart

    now = timezone.now()
    charts = []
    for i in range(start, stop):
        w1, w2 = WORDS[i % len(WORDS)], WORDS[(i * 7 + 3) % len(WORDS)]
        charts.append(
            Chart(
                source_id=source_ids[i % len(source_ids)],
                name=chart_name(i),
                latest_version=f"1.{VERSIONS - 1}.0",
                app_version=f"{i % 7}.{i % 5}.0",
                description=f"A Helm chart for {w1} with {w2} support, number {i}",
                keywords=f"{w1} {w2}",
                version_count=VERSIONS,
            )
        )
    Chart.objects.bulk_create(charts, batch_size=2000)
    ids = list(
        Chart.objects.filter(name__in=[c.name for c in charts[:1]]).values_list("id", flat=True)
    )
    # Read before the COPY starts: the connection serves one statement at a time.
    rows = list(Chart.objects.filter(id__gte=ids[0]).values_list("id", "name"))
    columns = (
        "chart_id, version, prerelease, app_version, description, icon, keywords, metadata, "
        "fingerprint, digest, tag, archive_url, archive_digest, created, indexed_at, "
        "updated_at, files_read_at, values_yaml, readme, values_schema, files_error, "
        "content_warning, files_attempts"
    )

    def version_rows():
        for chart_id, name in rows:
            for j in range(VERSIONS):
                version = f"1.{j}.0"
                metadata = json.dumps({"name": name, "version": version, "apiVersion": "v2"})
                yield (
                    chart_id, version, False, "1.0.0", f"A Helm chart for {name}", "", "",
                    metadata, f"{chart_id}-{version}", "", "",
                    f"http://127.0.0.1:9/charts/{name}-{version}.tgz", "",
                    f"2024-01-{j + 1:02d}T00:00:00Z", now, now, now,
                    "replicaCount: 1\n", f"# {name}\n", "", "", "", 0,
                )  # fmt: skip

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            raw = cursor.cursor  # psycopg's own: COPY
            with raw.copy(f"COPY charts_chartversion ({columns}) FROM STDIN") as copy:
                for row in version_rows():
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(columns.split(",")))
            sql = f"INSERT INTO charts_chartversion ({columns}) VALUES ({marks})"
            batch: list[tuple] = []
            for row in version_rows():
                batch.append(row)
                if len(batch) >= 20000:
                    cursor.executemany(sql, batch)
                    batch = []
            if batch:
                cursor.executemany(sql, batch)


# --- the parent: both databases, the table, gunicorn --------------------------------------


def row(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<{LABEL_WIDTH}} {value:>28}  {note}".rstrip())


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def run_child(database_urls: list[str], sizes: list[int], workdir: Path) -> dict | None:
    out = workdir / f"result-{len(list(workdir.iterdir()))}.json"
    command = [sys.executable, __file__, "--child", ",".join(database_urls),
               "--sizes", ",".join(map(str, sizes)), "--out", str(out)]  # fmt: skip
    env = {**os.environ, "WHARF_VAR_DIR": str(workdir)}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1800)  # fmt: skip
    if done.returncode != 0:
        print(f"  failed:\n{done.stderr[-3000:]}")
        return None
    return json.loads(out.read_text())


def report(result: dict, sizes: list[int]) -> bool:
    small, large = (result["sizes"][str(s)] for s in sizes)
    for size in sizes:
        entry = result["sizes"][str(size)]
        row(f"{size:,} charts / {entry['versions']:,} versions", f"filled in {entry['fill']:.0f} s")
    met = True
    a, b = (f"{size // 1000}k" if size >= 1000 else str(size) for size in sizes)
    print(f"  {'page':<{LABEL_WIDTH}} {a:>9} {b:>9} {b + '/' + a:>8}")
    for label, first in small["timings"].items():
        second = large["timings"][label]
        ratio = second / first
        ok = ratio <= RATIO_GOAL
        met &= ok
        note = "goal met" if ok else "goal missed"
        if result["vendor"] == "postgresql":
            note += f"; {'<=' if second <= PG_GOAL_SECONDS else '>'} 25 ms at {b}"
        print(f"  {label:<{LABEL_WIDTH}} {ms(first):>9} {ms(second):>9} {ratio:>7.2f}x  {note}")
    return met


def postgres_urls(sizes: list[int]) -> list[str]:
    """Throw-away databases, one per size, on the PostgreSQL server of
    ``BENCH_DATABASE_URL`` (its database name + ``_<size>``) or the local one; [] if none."""
    import psycopg

    given = os.environ.get("BENCH_DATABASE_URL", "")
    server, base = given.rsplit("/", 1) if given.startswith("postgres") else (LOCAL_PG, "")
    names = [f"{base or PG_DB_NAME}_{size}" for size in sizes]
    try:
        with psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=3) as conn:
            for name in names:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                conn.execute(f"CREATE DATABASE {name}")
    except psycopg.OperationalError as exc:
        print(f"  PostgreSQL skipped: not reachable at {server} ({exc})")
        return []
    return [f"{server}/{name}" for name in names]


def drop_databases(urls: list[str]) -> None:
    import psycopg

    for url in urls:
        server, name = url.rsplit("/", 1)
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=3) as conn,
        ):
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def serve(database_url: str, urls: dict, workdir: Path, seconds: float) -> None:
    """Requests/s on gunicorn at the largest size, for the store page and the search."""
    sys.path.insert(0, str(ROOT / "bench"))
    import web_server

    env = web_server.server_env(workdir)
    env["DATABASE_URL"] = database_url
    port = web_server.free_port()
    metrics_dir = workdir / "metrics"
    metrics_dir.mkdir(exist_ok=True)
    server = web_server.Server(
        "gunicorn",
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi"],
        {**env, "PORT": str(port), "WHARF_BIND": f"127.0.0.1:{port}",
         "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
        port,
    )  # fmt: skip
    try:
        measure = web_server.load_wrk if shutil.which("wrk") else web_server.load
        client = "wrk, 1 thread" if shutil.which("wrk") else "Python threads"
        pages = (("store page 1", urls["store"]), ("search ?q=database", urls["search"]))
        for label, path in pages:
            rps, p50, p99, errors = measure(server, path, seconds)
            note = f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, errors {errors}"
            row(f"gunicorn, {label}: requests/s", f"{rps:.1f}",
                f"{note}; {web_server.CLIENTS} connections ({client})")  # fmt: skip
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 and 5,000 charts")
    parser.add_argument("--seconds", type=float, default=6.0, help="gunicorn load per page")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child.split(","), [int(s) for s in args.sizes.split(",")], Path(args.out))
        return 0
    sizes = [500, 5000] if args.quick else [5000, 50000]
    seconds = 2.0 if args.quick else args.seconds
    workdir = Path(tempfile.mkdtemp(prefix="wharf-bench-store-"))
    started = time.perf_counter()
    met = True
    try:
        print("Chart Store benchmark (issue 16)")
        row("machine", f"{os.cpu_count()} CPUs", f"Python {sys.version.split()[0]}")
        row("sizes", " / ".join(f"{s:,}" for s in sizes), f"charts x {VERSIONS} versions")
        print("\nSQLite (the embedded default)")
        sqlite = [f"sqlite:///{workdir / f'store-{size}.sqlite3'}" for size in sizes]
        result = run_child(sqlite, sizes, workdir)
        met &= bool(result) and report(result, sizes)  # type: ignore[arg-type]
        print("\nPostgreSQL")
        urls = postgres_urls(sizes)
        if urls:
            try:
                result = run_child(urls, sizes, workdir)
                met &= bool(result) and report(result, sizes)  # type: ignore[arg-type]
                if result:
                    largest = result["sizes"][str(sizes[-1])]
                    print(f"\nServing at {sizes[-1]:,} charts (PostgreSQL)")
                    serve(largest["database"], largest["urls"], workdir, seconds)
            finally:
                drop_databases(urls)
        verdict = "goal met" if met else "goal missed"
        print(f"\n  every page, larger/smaller size <= {RATIO_GOAL}: {verdict}")
        print(f"done in {time.perf_counter() - started:.0f} s")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
