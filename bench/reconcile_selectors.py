"""Benchmark: pull-secret reconciliation of 20 clusters x 50 namespaces, two ways.

Runs standalone (``.venv/bin/python bench/reconcile_selectors.py``, or ``make bench``): Django on
a throw-away SQLite database in a temporary directory, 20 emulated Kubernetes API
servers (kmock, in-process, HTTP on loopback), one private registry injected into all
clusters. Prints the wall time and the API calls by verb of three reconciles of every
cluster, one after the other (as a single worker would):

1. the first reconcile (1,000 secrets to create);
2. an unchanged reconcile (goal: no writes, one secret LIST per cluster);
3. after a password change (goal: exactly 1,000 writes).

ServiceAccount calls (linking the secret into each namespace's ``default`` account)
are counted separately.

Then the same fleet size with a label-selector rule (no environments: each cluster's
50 labelled namespaces among 55, found by the namespace LIST) linking the secret into
every ServiceAccount (3 per namespace). For its unchanged reconcile it prints the API
calls per cluster by kind (goal: one LIST each of namespaces, secrets and
ServiceAccounts), the writes to the clusters and the database row writes of status
and namespace rows (goal: 0 and 0); run bookkeeping (the run row, the cluster's
last-reconciled time and health) is printed apart.

"wharf cpu" is the CPU time of the reconciling thread (Wharf and the Kubernetes
client); the rest of the wall time is mostly the emulators, which run in another thread
of the same process (kmock handles a write in tens of milliseconds at this size).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

CLUSTERS = 20
NAMESPACES = 50
SELECTOR = "tier in (web,api),env=prod,!legacy"
SERVICE_ACCOUNTS = ("default", "builder", "runner")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(workdir: Path) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "WHARF_VAR_DIR": str(workdir),
            "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
            "SECRET_KEY": "bench-only-secret-key",
            "WHARF_ENCRYPTION_KEYS": "xtUkkm4SDRdYFs4DZ9jmm9IK-7HEI3ZFoP3wjyowBpQ=",
            "LOG_LEVEL": "WARNING",
        }
    )
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def build_fleet(loop):
    from clusters.models import Cluster, Environment, RegistryAccess
    from registries.models import Registry

    fakes = []
    for index in range(CLUSTERS):
        fake = loop.start(token=f"bench-token-{index}")
        for n in range(NAMESPACES):
            fake.add_namespace(f"team-{n:02d}")
        fakes.append(fake)
    # bulk_create: no save signals, so nothing is reconciled before the measured runs.
    clusters = Cluster.objects.bulk_create(
        Cluster(name=f"cluster-{i:02d}", api_url=fake.url, token=fake.token)
        for i, fake in enumerate(fakes)
    )
    Environment.objects.bulk_create(
        Environment(name=f"c{i:02d}-team-{n:02d}", cluster=cluster, namespace=f"team-{n:02d}")
        for i, cluster in enumerate(clusters)
        for n in range(NAMESPACES)
    )
    registry = Registry.objects.create(
        name="acme",
        provider="other",
        url="registry.acme.test:5000",
        auth_type="password",
        username="robot",
        secret="first-password",
    )
    RegistryAccess.objects.create(registry=registry, mode="include", all_clusters=True)
    return clusters, fakes, registry


def build_selector_fleet(loop):
    """Namespaces found by a label selector (no environments), every ServiceAccount linked."""
    from clusters.models import Cluster, RegistryAccess
    from registries.models import Registry

    fakes = []
    for index in range(CLUSTERS):
        fake = loop.start(token=f"bench-selector-token-{index}")
        for n in range(NAMESPACES):
            labels = {"tier": ("web", "api")[n % 2], "env": "prod"}
            fake.add_namespace(
                f"team-{n:02d}", labels=labels, service_accounts=SERVICE_ACCOUNTS[1:]
            )
        for name in ("kube-system", "kube-public", "kube-node-lease"):
            fake.add_namespace(name)
        fake.add_namespace("old-web", labels={"tier": "web", "env": "prod", "legacy": "yes"})
        fake.add_namespace("sandbox", labels={"tier": "web", "env": "dev"})
        fakes.append(fake)
    clusters = Cluster.objects.bulk_create(
        Cluster(name=f"selector-{i:02d}", api_url=fake.url, token=fake.token)
        for i, fake in enumerate(fakes)
    )
    registry = Registry.objects.create(
        name="labelled",
        provider="other",
        url="registry.labelled.test:5000",
        auth_type="password",
        username="robot",
        secret="first-password",
    )
    RegistryAccess.objects.create(
        registry=registry,
        mode="include",
        all_clusters=True,
        namespaces=RegistryAccess.Namespaces.SELECTOR,
        namespace_selector=SELECTOR,
        service_accounts=RegistryAccess.ServiceAccounts.ALL,
    )
    return clusters, fakes, registry


def db_writes(queries) -> Counter:
    """INSERT/UPDATE/DELETE statements by table group: status rows, namespace rows, the rest."""
    from clusters.models import ClusterNamespace, PullSecretTarget

    tables = {
        PullSecretTarget._meta.db_table: "status rows",
        ClusterNamespace._meta.db_table: "namespace rows",
    }
    counts: Counter = Counter()
    for query in queries:
        sql = query["sql"].lstrip()
        if sql.split(" ", 1)[0].upper() not in ("INSERT", "UPDATE", "DELETE"):
            continue
        group = next((name for table, name in tables.items() if table in sql), "bookkeeping")
        counts[group] += 1
    return counts


def measure(label: str, clusters, fakes) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from clusters.pullsecrets import reconcile_cluster

    for fake in fakes:
        fake.reset_calls()
    started, cpu_started = time.perf_counter(), time.thread_time()
    with CaptureQueriesContext(connection) as queries:
        results = [reconcile_cluster(cluster.pk) for cluster in clusters]
    elapsed = time.perf_counter() - started
    # CPU of this thread only: Wharf and the client, not the emulators' own thread.
    cpu = time.thread_time() - cpu_started
    secrets, accounts, namespaces, outcomes = Counter(), Counter(), Counter(), Counter()
    for fake in fakes:
        secrets.update(fake.calls("secrets"))
        accounts.update(fake.calls("serviceaccounts"))
        namespaces.update(fake.calls("namespaces"))
    failed = 0
    for result in results:
        outcomes.update(result.secrets)
        failed += result.failed
    writes = secrets["create"] + secrets["update"] + secrets["delete"]
    account_writes = sum(n for verb, n in accounts.items() if verb != "list")
    return {
        "label": label,
        "seconds": elapsed,
        "cpu": cpu,
        "secrets": dict(sorted(secrets.items())),
        "writes": writes,
        "lists": secrets["list"],
        "service_accounts": dict(sorted(accounts.items())),
        "account_writes": account_writes,
        "namespaces": dict(sorted(namespaces.items())),
        "outcomes": dict(sorted(outcomes.items())),
        "failed": failed,
        "db": db_writes(queries.captured_queries),
    }


def print_runs(runs) -> None:
    print(
        f"{'run':<24}{'time':>8}{'wharf cpu':>11}  {'secret API calls':<30}{'writes':>7}"
        "  service account API calls"
    )
    for run in runs:
        calls = ", ".join(f"{verb} {n}" for verb, n in run["secrets"].items()) or "-"
        accounts = ", ".join(f"{verb} {n}" for verb, n in run["service_accounts"].items())
        print(
            f"{run['label']:<24}{run['seconds']:>7.2f}s{run['cpu']:>10.2f}s  {calls:<30}"
            f"{run['writes']:>7}  {accounts}"
        )


def print_unchanged(run) -> None:
    """Per cluster, by kind, and the writes (cluster and database) of an unchanged run."""
    per = {
        kind: {verb: n / CLUSTERS for verb, n in run[kind].items()}
        for kind in ("namespaces", "secrets", "service_accounts")
    }
    shown = "; ".join(
        f"{kind.replace('_', ' ')}: "
        + (", ".join(f"{verb} {n:g}" for verb, n in calls.items()) or "none")
        for kind, calls in per.items()
    )
    db = run["db"]
    print(f"  unchanged, API calls per cluster: {shown}")
    print(
        f"  unchanged, writes to the clusters: {run['writes'] + run['account_writes']}; "
        f"database row writes: status rows {db['status rows']}, namespace rows "
        f"{db['namespace rows']} (run bookkeeping: {db['bookkeeping']} statements, "
        f"{db['bookkeeping'] / CLUSTERS:g} per cluster)"
    )


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="wharf-bench-") as tmp:
        setup_django(Path(tmp))
        from clusters.models import PullSecretTarget
        from registries.models import Registry
        from tests.clusters.emulator import EmulatorLoop

        loop = EmulatorLoop()
        try:
            clusters, fakes, registry = build_fleet(loop)
            runs = [measure("first reconcile", clusters, fakes)]
            runs.append(measure("unchanged reconcile", clusters, fakes))
            # A password change (update(): no signal; the next reconcile picks it up).
            Registry.objects.filter(pk=registry.pk).update(secret="second-password")
            runs.append(measure("after password change", clusters, fakes))
            in_sync = PullSecretTarget.objects.filter(status="in-sync").count()

            clusters, fakes, registry = build_selector_fleet(loop)
            labelled = [measure("first reconcile", clusters, fakes)]
            labelled.append(measure("unchanged reconcile", clusters, fakes))
            labelled_in_sync = PullSecretTarget.objects.filter(
                status="in-sync", registry=registry
            ).count()
        finally:
            loop.close()

    total = CLUSTERS * NAMESPACES
    print(f"{CLUSTERS} clusters × {NAMESPACES} namespaces = {total} pull secrets, one worker")
    print_runs(runs)
    print_unchanged(runs[1])
    print(f"targets in sync at the end: {in_sync}/{total}")
    accounts = total * len(SERVICE_ACCOUNTS)
    print()
    print(
        f"{CLUSTERS} clusters × {NAMESPACES + 5} namespaces, label selector {SELECTOR!r} "
        f"({NAMESPACES} match), every ServiceAccount ({accounts} accounts)"
    )
    print_runs(labelled)
    print_unchanged(labelled[1])
    print(f"targets in sync at the end: {labelled_in_sync}/{total}")

    def unchanged_ok(run) -> bool:
        return (
            run["writes"] == 0
            and run["account_writes"] == 0
            and run["db"]["status rows"] == 0
            and run["db"]["namespace rows"] == 0
            and all(
                run[kind].get("list") == CLUSTERS and len(run[kind]) == 1
                for kind in ("namespaces", "secrets", "service_accounts")
            )
        )

    ok = (
        runs[0]["writes"] == total
        and unchanged_ok(runs[1])
        and runs[2]["writes"] == total
        and in_sync == total
        and labelled[0]["writes"] == total
        and labelled[0]["account_writes"] == accounts
        and unchanged_ok(labelled[1])
        and labelled_in_sync == total
        and not any(run["failed"] for run in runs + labelled)
    )
    print("goals met: " + ("yes" if ok else "NO"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
