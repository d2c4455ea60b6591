"""Benchmark of chart indexing and the Chart Store (issue 3), against real local servers.

What it measures, and the goals it checks (it prints "goal met"/"goal missed" beside each;
a missed goal is a finding, not an error, so the exit status stays 0):

1. OCI: R repositories x V chart versions pushed once into Debian's ``docker-registry``
   (token auth: the tests' token service in its own process, plain HTTP), then synced as
   the worker does:
   the registry's queued runs together (``run_registry_syncs``: one session, several
   repositories at once):
   a. on plain loopback: first sync (time, HTTP requests, requests per new version, blob
      GETs read from the registry's access log: configs only, never an archive), an
      unchanged resync (one tag-list request per repository page plus auth, a HEAD per
      known tag to catch overwritten tags, no blob read) and a deep resync (the same,
      plus the tags that are not charts);
   b. through a relay (its own process, counting the TCP connections) that adds
      ``--delay-ms`` to every request: a first sync of fresh sources against the floor
      N x RTT / C + repositories x 1 sequential RTT (goal <= 1.5x), its connections
      (goal <= C) and Wharf's CPU per request (the registry's and relay's apart), and
      an unchanged resync, against a naive baseline measured in the same run
      through the same relay with the same client (one chart at a time, each pulled
      whole: tag list, manifest, config blob, archive blob), sampled on a few repositories
      and scaled when the full size would take too long. Goal: sync >= 5x faster.
2. Helm: nginx serving a realistic ``index.yaml`` of C charts x Vh versions: the parse
   alone by the parser Wharf reads indexes with (fastyaml-rs), the first import through
   the sync (their ratio, for information), and an unchanged resync (goal: HTTP 304, under 100 ms,
   no write to the chart tables). ``bench/helm_import.py`` compares the import with Helm's.
3. Chart Store: moved to ``bench/chart_store.py`` (both databases, 5k and 50k charts);
   ``fill_store`` below still fills a store for ``bench/web_server.py``.

Run it from the repository root:

    .venv/bin/python bench/chart_sync.py            # full size (~3-4 minutes on 2 CPUs)
    .venv/bin/python bench/chart_sync.py --quick    # a smoke run (~30 s)

``make bench`` runs it too. The database is a throw-away SQLite file in a temporary
folder, unless ``BENCH_DATABASE_URL`` is set. Servers, relay and the temporary folder are
cleaned up at the end, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORKDIR = Path(tempfile.mkdtemp(prefix="wharf-bench-charts-"))
atexit.register(shutil.rmtree, WORKDIR, ignore_errors=True)  # also if set-up fails early

# Django is configured before anything imports it.
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings_test"
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL") or (
    f"sqlite:///{WORKDIR / 'bench.sqlite3'}"
)
os.environ["WHARF_VAR_DIR"] = str(WORKDIR)

import django  # noqa: E402

django.setup()

import fast_yaml  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from charts.models import Chart, ChartSource, ChartVersion, HelmRepository, SyncRun  # noqa: E402
from charts.sources import sync_helm_repository_source  # noqa: E402
from charts.sync import queue_sync, run_sync  # noqa: E402
from charts.sync.run import run_registry_syncs  # noqa: E402
from registries import oci  # noqa: E402
from registries.connectivity import check_connection  # noqa: E402
from registries.models import Registry  # noqa: E402
from tests.chartkit import (  # noqa: E402
    NginxHelmRepo,
    OciPusher,
    make_chart_archive,
    nginx_executable,
    populate_registry,
    realistic_index,
    sha256_digest,
)
from tests.servers.base import free_port, wait_until  # noqa: E402
from tests.servers.registry import RegistryServer  # noqa: E402

REGISTRY_USER, REGISTRY_PASSWORD = "bench", "bench-Passw0rd"
CHART_PREFIX = "charts"
# Every count the bench takes from the registry is in its access log, written at any level;
# "warn" drops the per-request "response completed" line "info" adds (its formatting is
# registry CPU on the cores Wharf runs on). Errors (401 challenges, 404s) are still logged.
REGISTRY_LOG_LEVEL = "warn"
# The registry is the bench's peer on the cores Wharf runs on, not what it measures: with
# Go's default GC (GOGC=100) its small heap is collected over and over, about a third of
# its CPU per request (measured: 2.6 against 1.8 ms per manifest GET, same requests, same
# run). Collected only past 256 MiB instead; a registry of its own machine costs Wharf none.
REGISTRY_ENV = {"GOGC": "off", "GOMEMLIMIT": "256MiB"}
LABEL_WIDTH = 58
ACCESS_LINE = re.compile(r'"([A-Z]+) (/v2/\S*) HTTP/[\d.]+" (\d{3}) ')
WRITE_SQL = re.compile(r'^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?', re.IGNORECASE)


class BenchError(Exception):
    """The benchmark cannot measure what it should (a sync failed, a server is missing)."""


# --- printing --------------------------------------------------------------------------


def heading(title: str) -> None:
    print(f"\n{title}\n{'-' * len(title)}", flush=True)


def row(label: str, value: str, goal: bool | None = None, note: str = "") -> None:
    """One aligned line; ``goal`` True/False adds "goal met"/"goal missed"."""
    verdict = "" if goal is None else ("goal met" if goal else "goal missed")
    tail = "  ".join(part for part in (verdict, note) if part)
    print(f"  {label:<{LABEL_WIDTH}} {value:>14}  {tail}".rstrip(), flush=True)


def seconds(value: float) -> str:
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


@contextlib.contextmanager
def timer() -> Iterator[list[float]]:
    """``with timer() as t: ...`` then ``t[0]`` is the elapsed seconds."""
    elapsed: list[float] = []
    start = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed.append(time.perf_counter() - start)


# --- servers ---------------------------------------------------------------------------


TOKEN_CHILD = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests.servers.tls import CertificateAuthority
from tests.servers.tokens import TokenServer
ca = CertificateAuthority("Wharf bench CA")
tokens = TokenServer(
    signing=ca.issue("wharf-bench-token-signer", hosts=(), rsa_key=True),
    issuer="wharf-bench-token-issuer",
    service="wharf-bench-registry",
    users={sys.argv[3]: sys.argv[4]},
)
ca.write(Path(sys.argv[2]))
tokens.start()
print(tokens.realm, tokens.issuer, tokens.service, flush=True)
for line in sys.stdin:
    print(len(tokens.requests), flush=True)
tokens.stop()
"""


class ChildProcess:
    """A helper server run as ``python -c CODE ROOT ARGS…`` in its own process (its CPU is
    neither Wharf's nor the registry's): it prints one line when it is up, answers one line
    per line sent to it, and stops when its stdin closes."""

    def __init__(self, code: str, *args: object) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", code, str(ROOT), *map(str, args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pid = self._process.pid
        self.ready_line = self._read_line()

    def _read_line(self) -> str:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise BenchError(f"a helper process ended early (status {self._process.poll()})")
        return line.strip()

    def ask(self, line: str) -> str:
        assert self._process.stdin is not None
        self._process.stdin.write(line + "\n")
        self._process.stdin.flush()
        return self._read_line()

    def stop(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


class TokenProcess(ChildProcess):
    """The tests' distribution-style token service in its own process (its RSA signing is
    neither Wharf's CPU nor the registry's): Basic credentials in, a JWT out."""

    def __init__(self, workdir: Path, username: str, password: str) -> None:
        super().__init__(TOKEN_CHILD, workdir, username, password)
        self.realm, self.issuer, self.service = self.ready_line.split()
        self.ca_path = workdir / "ca.crt"

    def token(self, scopes: list[str]) -> str:
        """A token for ``scopes``, asked for as any client does (the pusher's, say)."""
        import requests

        with requests.Session() as session:
            session.trust_env = False
            answer = session.get(
                self.realm,
                params={"service": self.service, "scope": scopes},
                auth=(REGISTRY_USER, REGISTRY_PASSWORD),
                timeout=30,
            )
        answer.raise_for_status()
        return answer.json()["token"]

    def requests_served(self) -> int:
        """Token requests answered so far (they never reach the registry's log)."""
        return int(self.ask("count"))


def start_registry(stack: contextlib.ExitStack) -> tuple[RegistryServer, TokenProcess]:
    """Debian's ``docker-registry`` with token auth on a free loopback port, and its token
    service. The registry verifies each request's JWT (a signature check, no bcrypt); the
    password is checked once per token, by the token service, as Docker Hub, GHCR and
    Harbor do."""
    executable = shutil.which("docker-registry")
    if not executable:
        raise BenchError("docker-registry is needed (apt install docker-registry)")
    workdir = WORKDIR / "registry"
    workdir.mkdir()
    tokens = TokenProcess(workdir, REGISTRY_USER, REGISTRY_PASSWORD)
    stack.callback(tokens.stop)
    auth = {
        "token": {
            "realm": tokens.realm,
            "service": tokens.service,
            "issuer": tokens.issuer,
            "rootcertbundle": str(tokens.ca_path),
        }
    }
    last_error: Exception | None = None
    for _attempt in range(3):  # another process may take the free port first
        server = RegistryServer(
            executable=executable,
            workdir=workdir,
            port=free_port(),
            tls=None,  # plain HTTP; RegistryServer only needs a CA path for its probe
            ca_path=tokens.ca_path,
            auth_config=auth,
            username=REGISTRY_USER,
            password=REGISTRY_PASSWORD,
            log_level=REGISTRY_LOG_LEVEL,
            env=REGISTRY_ENV,
        )
        try:
            server.start()
        except RuntimeError as exc:
            last_error = exc
            continue
        stack.callback(server.stop)
        return server, tokens
    raise BenchError(f"could not start docker-registry: {last_error}")


class AccessLog:
    """Requests in the registry's access log, from a remembered offset on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size

    def requests(self) -> list[tuple[str, str, str]]:
        """(method, path, status) of each request since :meth:`mark`, once the log settles."""
        size = -1
        while size != self.path.stat().st_size:  # the registry logs after answering
            size = self.path.stat().st_size
            time.sleep(0.2)
        with self.path.open("rb") as log:
            log.seek(self.offset)
            text = log.read().decode(errors="replace")
        return [m.groups() for m in ACCESS_LINE.finditer(text)]

    def blob_gets(self) -> list[str]:
        """Digests of the blobs read (GET) since :meth:`mark`."""
        return [
            path.rsplit("/", 1)[1]
            for method, path, _status in self.requests()
            if method == "GET" and "/blobs/sha256:" in path
        ]


RELAY_CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from tests.chartkit import DelayingRelay
relay = DelayingRelay("127.0.0.1", int(sys.argv[2]), delay=float(sys.argv[3]))
relay.start()
print(relay.port, flush=True)
for line in sys.stdin:
    print(relay.accepted, flush=True)
relay.stop()
"""


class RelayProcess(ChildProcess):
    """A :class:`DelayingRelay` in its own process: its CPU is neither Wharf's nor the
    registry's, and it counts the TCP connections Wharf opens to the registry."""

    def __init__(self, target_port: int, delay: float) -> None:
        super().__init__(RELAY_CHILD, target_port, delay)
        self.port = int(self.ready_line)
        self.host = f"127.0.0.1:{self.port}"

    def accepted(self) -> int:
        return int(self.ask("count"))


# --- database set-up ---------------------------------------------------------------------


def oci_chart_registry(name: str, host: str, repositories: list[str]) -> Registry:
    """A private (password; token auth) registry row marked as a chart source; saving makes
    the sources. Saved as the form saves it: its connection check first, which stores that
    the registry speaks plain HTTP (so no sync probes https:// first)."""
    registry = Registry(
        name=name,
        provider="other",
        registry_type=Registry.Type.PRIVATE,
        url=host,
        auth_type="password",
        username=REGISTRY_USER,
        secret=REGISTRY_PASSWORD,
        tls_mode=Registry.Tls.INSECURE,
        push_images=False,
        chart_source=True,
        repositories=repositories,
    )
    check = check_connection(registry)
    if not check.ok:
        raise BenchError(f"the connection check of {name} failed: {check.message}")
    registry.save()
    return registry


def sources_of(registry: Registry) -> list[ChartSource]:
    return list(registry.chart_sources.order_by("repository"))


@dataclass
class SyncTotals:
    seconds: float = 0.0
    http_requests: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    runs: int = 0
    cpu: float = 0.0  # this process (the sync and its threads)
    registry_cpu: float = 0.0  # the docker-registry process
    connections: int = 0  # TCP connections opened to the relay (0 without one)

    def cpu_note(self) -> str:
        return f"CPU: wharf {self.cpu:.1f} s, registry {self.registry_cpu:.1f} s"

    @property
    def cpu_per_request(self) -> float:
        return self.cpu / self.http_requests if self.http_requests else 0.0


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc; 0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sync_once(source: ChartSource, *, deep: bool = False) -> SyncRun:
    """Queue and run one sync in this thread, as the worker does; a failed run is an error."""
    run = run_sync(queue_sync(source, trigger=SyncRun.Trigger.MANUAL, deep=deep).pk)
    if run is None or run.status != SyncRun.Status.SUCCEEDED:
        error = run.error if run else "the run vanished"
        raise BenchError(f"sync of {source} ended {getattr(run, 'status', '?')}: {error}")
    return run


def sync_all(
    sources: list[ChartSource],
    server: RegistryServer,
    *,
    deep: bool = False,
    relay: RelayProcess | None = None,
) -> SyncTotals:
    """Sync the registry's sources as the worker does: queued together, run together
    (``run_registry_syncs``: one session, several repositories at once), adding up the runs."""
    totals = SyncTotals()
    pid = server._process.pid if server._process else 0  # RegistryServer keeps it private
    run_ids = [
        queue_sync(source, trigger=SyncRun.Trigger.MANUAL, deep=deep).pk for source in sources
    ]
    accepted = relay.accepted() if relay else 0
    start, cpu, registry_cpu = time.perf_counter(), time.process_time(), process_cpu(pid)
    results = run_registry_syncs(run_ids)
    totals.seconds = time.perf_counter() - start
    totals.cpu = time.process_time() - cpu
    totals.registry_cpu = process_cpu(pid) - registry_cpu
    totals.connections = relay.accepted() - accepted if relay else 0
    for source, run_id in zip(sources, run_ids, strict=True):
        run = results.get(run_id)
        if run is None or run.status != SyncRun.Status.SUCCEEDED:
            error = run.error if run else "the run did not start"
            raise BenchError(f"sync of {source} ended {getattr(run, 'status', '?')}: {error}")
        totals.http_requests += run.http_requests
        totals.added += run.added
        totals.updated += run.updated
        totals.removed += run.removed
        totals.runs += 1
    return totals


# --- 1. OCI ------------------------------------------------------------------------------


def archive_digests(repositories: int, versions: int) -> set[str]:
    """Digests of every chart archive pushed (the archives are byte-for-byte reproducible)."""
    return {
        sha256_digest(make_chart_archive(f"chart-{i}", f"1.{j}.0"))
        for i in range(repositories)
        for j in range(versions)
    }


def tag_list_requests(requests: list[tuple[str, str, str]]) -> Counter[str]:
    """Tag-list requests by status: "200" are pages read, "401" are auth challenges."""
    return Counter(status for method, path, status in requests if "/tags/list" in path)


def bench_oci_loopback(
    server: RegistryServer,
    log: AccessLog,
    repos: list[str],
    versions: int,
    archives: set[str],
    tokens: TokenProcess,
) -> None:
    heading(f"1a. OCI on plain loopback: {len(repos)} repositories x {versions} versions")
    registry = oci_chart_registry("bench-loopback", server.host, repos)
    sources = sources_of(registry)
    total_versions = len(repos) * versions

    log.mark()
    tokens_before = tokens.requests_served()
    first = sync_all(sources, server)
    first_tokens = tokens.requests_served() - tokens_before
    first_blobs = log.blob_gets()
    first_log = log.requests()
    if first.added != total_versions:
        raise BenchError(f"first sync indexed {first.added} versions, not {total_versions}")
    log.mark()
    tokens_before = tokens.requests_served()
    again = sync_all(sources, server)
    again_tokens = tokens.requests_served() - tokens_before
    again_log = log.requests()
    log.mark()
    deep = sync_all(sources, server, deep=True)
    deep_log = log.requests()

    # What an unchanged resync costs per repository is the fixed cost of any run; the rest
    # of a first sync is what the new versions cost.
    # The very first client of a process also pays, once per route, a 401 (later clients
    # remember it), and, had no connection check stored the scheme, an https:// probe (it
    # never reaches the plain-HTTP registry's log): counted from the registry's own log
    # and the token service's count, so that a real per-version regression cannot hide in
    # this figure.
    # (The resync's HEAD of each known tag is no cost of a first sync, which knows none.)
    fixed = again.http_requests - sum(1 for method, _p, _s in again_log if method == "HEAD")
    unlogged = first.http_requests - len(first_log) - first_tokens
    challenges = sum(1 for _m, _p, status in first_log if status == "401")
    one_time = max(0, unlogged + challenges - sum(1 for _m, _p, st in again_log if st == "401"))
    per_version = (first.http_requests - fixed - one_time) / first.added
    archive_reads = sum(1 for digest in first_blobs if digest in archives)
    row("first sync: time", seconds(first.seconds), note=first.cpu_note())
    row(
        "first sync: versions indexed",
        f"{first.added:,}",
        note=f"{first.added / first.seconds:,.0f} versions/s",
    )
    row("first sync: HTTP requests (sum of run.http_requests)", f"{first.http_requests:,}")
    row(
        "first sync: requests per new version (all / added)",
        f"{first.http_requests / first.added:.2f}",
    )
    row(
        "first sync: per new version, less a run's fixed cost",
        f"{per_version:.2f}",
        goal=per_version <= 2.0,
        note=f"goal 2 (manifest + config blob); {one_time} one-time requests of the first client",
    )
    row("first sync: blob GETs in the registry log", f"{len(first_blobs):,}")
    row("first sync: chart archive blob GETs", f"{archive_reads:,}", goal=archive_reads == 0)

    lists = tag_list_requests(again_log)
    again_blobs = [p for m, p, _ in again_log if m == "GET" and "/blobs/" in p]
    per_repo = again.http_requests / len(repos)
    row("unchanged resync: time", seconds(again.seconds), note=again.cpu_note())
    row("unchanged resync: HTTP requests (client count)", f"{again.http_requests:,}")
    row(
        "unchanged resync: tag-list pages read per repository",
        f"{lists['200'] / len(repos):.2f}",
        goal=lists["200"] <= len(repos),
        note="registry log; distribution 2.8 sends one page",
    )
    row(
        "unchanged resync: auth challenges (401) per repository", f"{lists['401'] / len(repos):.2f}"
    )
    again_heads = sum(1 for method, _path, _status in again_log if method == "HEAD")
    row(
        "unchanged resync: HEAD requests per known tag",
        f"{again_heads / total_versions:.2f}",
        goal=again_heads <= total_versions,
        note="each known tag's digest re-checked, so an overwritten tag is seen",
    )
    row(
        "unchanged resync: all requests per repository",
        f"{per_repo:.2f}",
        goal=per_repo <= 2.0 + versions,
        note=f"goal 1 page + auth + {versions} HEADs; registry log",
    )
    row("unchanged resync: blob GETs", f"{len(again_blobs):,}", goal=not again_blobs)
    row("unchanged resync: added/updated/removed", f"{again.added}/{again.updated}/{again.removed}")

    heads = sum(1 for method, _path, _status in deep_log if method == "HEAD")
    row("deep resync: time", seconds(deep.seconds), note=deep.cpu_note())
    row("deep resync: HTTP requests", f"{deep.http_requests:,}")
    row(
        "deep resync: HEAD requests per known tag",
        f"{heads / total_versions:.2f}",
        note=f"+ {(deep.http_requests - heads) / len(repos):.2f} other requests per repository",
    )
    row("deep resync: added/updated/removed", f"{deep.added}/{deep.updated}/{deep.removed}")
    row(
        "unchanged resync: token requests per repository",
        f"{again_tokens / len(repos):.2f}",
        note="a new session asks for each repository's scope once",
    )
    unlogged = again.http_requests - len(again_log) - again_tokens
    if unlogged:  # a client that did not remember the route probed https:// first
        print(
            f"  note: {unlogged} requests of the resync ({unlogged / len(repos):.2f} per "
            "repository) never reached the\n  registry's log: with TLS 'insecure' a client "
            "that does not know the route\n  tries HTTPS against this plain-HTTP registry "
            "before falling back to HTTP.",
            flush=True,
        )


def naive_baseline(registry: Registry, repos: list[str], log: AccessLog) -> tuple[float, int, int]:
    """One chart at a time, each pulled whole; returns (seconds, requests, blob GETs)."""
    log.mark()
    start = time.perf_counter()
    with oci.RegistryClient(registry.connection()) as client:
        for repository in repos:
            for tag in client.list_tags(repository):
                manifest = client.get_manifest(repository, tag)
                client.get_blob(repository, manifest.body["config"]["digest"], max_bytes=2**20)
                for layer in manifest.body["layers"]:
                    client.get_blob(repository, layer["digest"], max_bytes=20 * 2**20)
        requests = client.requests_made
    elapsed = time.perf_counter() - start
    return elapsed, requests, len(log.blob_gets())


def bench_oci_delayed(
    server: RegistryServer,
    log: AccessLog,
    repos: list[str],
    versions: int,
    delay_ms: float,
    sample: int,
    stack: contextlib.ExitStack,
    tokens: TokenProcess,
) -> None:
    heading(f"1b. OCI with {delay_ms:g} ms added per request (DelayingRelay, own process)")
    relay = RelayProcess(server.port, delay=delay_ms / 1000)
    stack.callback(relay.stop)
    registry = oci_chart_registry("bench-delayed", relay.host, repos)
    sources = sources_of(registry)
    concurrency = settings.WHARF_CHART_SYNC_CONCURRENCY
    rtt = delay_ms / 1000

    relay_cpu, token_cpu = process_cpu(relay.pid), process_cpu(tokens.pid)
    first = sync_all(sources, server, relay=relay)
    relay_cpu = process_cpu(relay.pid) - relay_cpu
    token_cpu = process_cpu(tokens.pid) - token_cpu
    again = sync_all(sources, server, relay=relay)
    # The floor, as issue 16 defines it: every request's round trip shared by C
    # connections, plus, per repository, the round trips that must be sequential: the
    # tag list (no manifest of a repository can be asked for before it).
    sequential = 1
    bandwidth_floor = first.http_requests * rtt / concurrency
    floor = bandwidth_floor + len(repos) * sequential * rtt
    ratio = first.seconds / floor
    row("first sync: time", seconds(first.seconds), note=first.cpu_note())
    row("first sync: HTTP requests (N)", f"{first.http_requests:,}")
    row("first sync: versions indexed", f"{first.added:,}")
    row(
        "floor: N x RTT / C + repositories x 1 sequential RTT",
        seconds(floor),
        note=f"{first.http_requests:,} x {delay_ms:g} ms / {concurrency} + "
        f"{len(repos)} x {delay_ms:g} ms",
    )
    row(
        "first sync / floor",
        f"{ratio:.2f}x",
        goal=ratio <= 1.5,
        note=f"goal <= 1.5x; N x RTT / C alone: {seconds(bandwidth_floor)}, "
        f"{first.seconds / bandwidth_floor:.2f}x",
    )
    row(
        "first sync: TCP connections opened to the registry",
        f"{first.connections}",
        goal=first.connections <= concurrency,
        note=f"goal <= C = {concurrency} (counted at the relay)",
    )
    row(
        "first sync: Wharf CPU per request",
        f"{first.cpu_per_request * 1000:.2f} ms",
        note=f"registry {first.registry_cpu / first.http_requests * 1000:.2f} ms, "
        f"relay {relay_cpu / first.http_requests * 1000:.2f} ms, "
        f"token service {token_cpu:.2f} s in all (own processes)",
    )
    row("unchanged resync: time", seconds(again.seconds), note=again.cpu_note())
    row("unchanged resync: HTTP requests", f"{again.http_requests:,}")
    row(
        "unchanged resync: TCP connections / Wharf CPU per request",
        f"{again.connections} / {again.cpu_per_request * 1000:.2f} ms",
    )

    sampled = repos[: min(sample, len(repos))] if sample > 0 else repos
    naive_seconds, naive_requests, naive_blobs = naive_baseline(registry, sampled, log)
    scale = len(repos) / len(sampled)
    estimated = naive_seconds * scale
    label = (
        "naive baseline: time (whole run)"
        if scale == 1
        else f"naive baseline: {len(sampled)} of {len(repos)} repositories, measured"
    )
    row(label, seconds(naive_seconds))
    row(
        "naive baseline: HTTP requests / blob GETs (measured)",
        f"{naive_requests:,} / {naive_blobs:,}",
    )
    if scale != 1:
        row(f"naive baseline: scaled x{scale:g} to the full size", seconds(estimated))
    speedup = estimated / first.seconds
    row(
        "speed-up of the first sync over the naive baseline",
        f"{speedup:.1f}x",
        goal=speedup >= 5,
        note="goal >= 5x" + (" (baseline sampled and scaled)" if scale != 1 else ""),
    )


# --- 2. Helm -----------------------------------------------------------------------------


class WriteCounter:
    """An ``execute_wrapper`` that counts INSERT/UPDATE/DELETE statements per table."""

    def __init__(self) -> None:
        self.tables: Counter[str] = Counter()

    def __call__(self, execute: Callable, sql: str, params: Any, many: bool, context: Any):
        match = WRITE_SQL.match(sql)
        if match:
            self.tables[match.group(1).lower()] += 1
        return execute(sql, params, many, context)

    def count(self, *tables: str) -> int:
        return sum(self.tables[t] for t in tables)


CHART_TABLES = ("charts_chart", "charts_chartversion")
BOOKKEEPING_TABLES = ("charts_syncrun", "charts_chartsource")


def bench_helm(charts: int, versions: int, stack: contextlib.ExitStack) -> None:
    heading(f"2. Helm index: {charts:,} charts x {versions} versions (nginx)")
    nginx_path = nginx_executable()
    if nginx_path is None:
        raise BenchError("nginx is needed (apt-get install nginx-light)")
    workdir = WORKDIR / "nginx"
    workdir.mkdir()
    repo = NginxHelmRepo.start_on_free_port(workdir, executable=nginx_path)
    stack.callback(repo.stop)
    body = realistic_index(charts, versions)
    repo.write_index(body)

    parses = []
    for _ in range(2):
        with timer() as elapsed:
            fast_yaml.safe_load(body)
        parses.append(elapsed[0])
    parse = min(parses)

    helm_repo = HelmRepository.objects.create(
        name="bench-helm", url=repo.url, tls_mode=Registry.Tls.INSECURE
    )
    source = sync_helm_repository_source(helm_repo, changed=True)
    writes = WriteCounter()
    with connection.execute_wrapper(writes), timer() as elapsed:
        first = sync_once(source)
    first_seconds = elapsed[0]
    if first.added != charts * versions:
        raise BenchError(f"the import added {first.added} versions, not {charts * versions}")
    ratio = first_seconds / parse

    queue_sync(source, trigger=SyncRun.Trigger.MANUAL)  # queued before the timed part
    lines_before = len(repo.access_log_lines())
    writes_again = WriteCounter()
    run_id = source.runs.filter(status=SyncRun.Status.QUEUED).values_list("pk", flat=True)[0]
    with connection.execute_wrapper(writes_again), timer() as elapsed:
        again = run_sync(run_id)
    resync_seconds = elapsed[0]
    if again is None or again.status != SyncRun.Status.SUCCEEDED:
        raise BenchError(f"the unchanged Helm resync failed: {getattr(again, 'error', '')}")
    wait_until(lambda: len(repo.access_log_lines()) > lines_before, what="nginx access log")
    status = repo.access_log_lines()[-1].split()[2]
    chart_writes = writes_again.count(*CHART_TABLES)
    bookkeeping = writes_again.count(*BOOKKEEPING_TABLES)
    other = sum(writes_again.tables.values()) - chart_writes - bookkeeping

    row("index.yaml size", f"{len(body) / 2**20:.1f} MB")
    row("fastyaml-rs parse alone (best of 2)", seconds(parse))
    row("first import through the sync", seconds(first_seconds))
    row(
        "first import / parse",
        f"{ratio:.2f}x",
        note="for information; the import's goal is against Helm's (bench/helm_import.py)",
    )
    row(
        "first import: write statements (chart tables / bookkeeping)",
        f"{writes.count(*CHART_TABLES):,} / {writes.count(*BOOKKEEPING_TABLES):,}",
        note="on PostgreSQL new versions go by COPY, not counted here",
    )
    row("first import: HTTP requests", f"{first.http_requests}")
    row(
        "unchanged resync: time (run_sync)",
        seconds(resync_seconds),
        goal=resync_seconds < 0.1,
        note="goal < 100 ms",
    )
    row("unchanged resync: status nginx logged", status, goal=status == "304")
    row(
        "unchanged resync: writes on charts_chart/_chartversion",
        f"{chart_writes}",
        goal=chart_writes == 0,
    )
    row(
        "unchanged resync: run bookkeeping writes (syncrun/source)",
        f"{bookkeeping}",
        note=", ".join(f"{t} {n}" for t, n in sorted(writes_again.tables.items())),
    )
    if other:
        row("unchanged resync: writes on other tables", f"{other}")


# --- 3. Chart Store ----------------------------------------------------------------------


def fill_store(charts: int, versions: int) -> None:
    """A Helm source with ``charts`` x ``versions`` rows, files already read (no network)."""
    helm_repo = HelmRepository.objects.create(
        name="bench-store", url="http://127.0.0.1:9/", tls_mode=Registry.Tls.INSECURE
    )
    source = sync_helm_repository_source(helm_repo, changed=True)
    words = ["database", "cache", "proxy", "gateway", "metrics", "logging", "storage", "mesh"]
    Chart.objects.bulk_create(
        [
            Chart(
                source=source,
                name=f"{words[i % len(words)]}-chart-{i:05d}",
                latest_version=f"1.{versions - 1}.0",
                app_version=f"{i % 7}.{i % 5}.0",
                description=f"A Helm chart for {words[i % len(words)]} number {i}",
                icon=f"https://charts.example/{i}/icon.svg",
                keywords=f"{words[i % len(words)]} {words[(i + 3) % len(words)]}",
                version_count=versions,
            )
            for i in range(charts)
        ],
        batch_size=1000,
    )
    now = timezone.now()
    chart_ids = list(source.charts.values_list("id", "name"))
    batch: list[ChartVersion] = []
    for chart_id, name in chart_ids:
        for j in range(versions):
            version = f"1.{j}.0"
            batch.append(
                ChartVersion(
                    chart_id=chart_id,
                    version=version,
                    app_version="1.0.0",
                    description=f"A Helm chart for {name}",
                    metadata={"name": name, "version": version, "apiVersion": "v2"},
                    fingerprint=f"{chart_id}-{version}",
                    archive_url=f"http://127.0.0.1:9/charts/{name}-{version}.tgz",
                    files_read_at=now,
                    values_yaml="replicaCount: 1\nimage:\n  repository: nginx\n",
                    readme=f"# {name}\n\nA chart.\n",
                )
            )
        if len(batch) >= 5000:
            ChartVersion.objects.bulk_create(batch, batch_size=1000)
            batch = []
    ChartVersion.objects.bulk_create(batch, batch_size=1000)


# --- main --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=100, help="OCI repositories")
    parser.add_argument("--versions", type=int, default=30, help="chart versions per repository")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="added per request")
    parser.add_argument("--naive-sample", type=int, default=10, help="repositories (0 = all)")
    parser.add_argument("--helm-charts", type=int, default=1000)
    parser.add_argument("--helm-versions", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--oci-only", action="store_true", help="only part 1 (OCI)")
    args = parser.parse_args(argv)
    if args.quick:
        args.repos, args.versions = 10, 5
        args.helm_charts, args.helm_versions = 100, 5
        args.naive_sample = 0
    return args


def run(args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
    call_command("migrate", verbosity=0)
    # Saving a registry or Helm repository sends a sync to the broker on commit. Record it
    # instead (as the tests do), and run each sync explicitly as the worker does.
    from config.celery import app
    from tests.broker import SentTasks

    app.send_task = SentTasks().send_task
    stack.callback(vars(app).pop, "send_task", None)

    print("Chart indexing benchmark (issue 3)")
    row("machine", f"{os.cpu_count()} CPUs", note=f"Python {sys.version.split()[0]}")
    row("database", connection.vendor, note=settings.DATABASES["default"]["NAME"])
    row(
        "sync concurrency (WHARF_CHART_SYNC_CONCURRENCY)",
        f"{settings.WHARF_CHART_SYNC_CONCURRENCY}",
    )
    row("OCI size", f"{args.repos} x {args.versions}", note="token auth, plain HTTP")
    row("Helm size", f"{args.helm_charts} x {args.helm_versions}")

    server, tokens = start_registry(stack)
    log = AccessLog(server.log_path)
    scopes = [f"repository:{CHART_PREFIX}/chart-{i}:pull,push" for i in range(args.repos)]
    pusher = OciPusher(server.url, verify=False, token=tokens.token(scopes))
    with timer() as elapsed:
        pushed = populate_registry(pusher, args.repos, args.versions, prefix=CHART_PREFIX)
    row("push the charts into the registry (set-up)", seconds(elapsed[0]))
    repos = sorted(pushed)
    archives = archive_digests(args.repos, args.versions)

    bench_oci_loopback(server, log, repos, args.versions, archives, tokens)
    bench_oci_delayed(
        server, log, repos, args.versions, args.delay_ms, args.naive_sample, stack, tokens
    )
    if args.oci_only:
        return
    bench_helm(args.helm_charts, args.helm_versions, stack)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM cleans up like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.perf_counter()
    try:
        with contextlib.ExitStack() as stack:
            stack.callback(shutil.rmtree, WORKDIR, ignore_errors=True)
            run(args, stack)
    except BenchError as exc:
        print(f"\nbenchmark error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    print(f"\ndone in {seconds(time.perf_counter() - started)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
