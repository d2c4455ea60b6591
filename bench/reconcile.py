"""Benchmark: pull-secret reconciliation of 20 clusters x 50 environment namespaces.

Runs standalone (``.venv/bin/python bench/reconcile.py``, or ``make bench``): Django on
a throw-away SQLite database in a temporary directory, 20 emulated Kubernetes API
servers (kmock, in-process, HTTP on loopback), one private registry injected into all
clusters. Prints the wall time and the API calls by verb of three reconciles of every
cluster, one after the other (as a single worker would):

1. the first reconcile (1,000 secrets to create);
2. an unchanged reconcile (goal: no writes, one secret LIST per cluster);
3. after a password change (goal: exactly 1,000 writes).

ServiceAccount calls (linking the secret into each namespace's ``default`` account)
are counted separately. "wharf cpu" is the CPU time of the reconciling thread (Wharf
and the Kubernetes client); the rest of the wall time is mostly the emulators, which
run in another thread of the same process.
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


def measure(label: str, clusters, fakes) -> dict:
    from clusters.pullsecrets import reconcile_cluster

    for fake in fakes:
        fake.reset_calls()
    started, cpu_started = time.perf_counter(), time.thread_time()
    results = [reconcile_cluster(cluster.pk) for cluster in clusters]
    elapsed = time.perf_counter() - started
    # CPU of this thread only: Wharf and the client, not the emulators' own thread.
    cpu = time.thread_time() - cpu_started
    secrets, accounts, outcomes = Counter(), Counter(), Counter()
    for fake in fakes:
        secrets.update(fake.calls("secrets"))
        accounts.update(fake.calls("serviceaccounts"))
    failed = 0
    for result in results:
        outcomes.update(result.secrets)
        failed += result.failed
    writes = secrets["create"] + secrets["update"] + secrets["delete"]
    return {
        "label": label,
        "seconds": elapsed,
        "cpu": cpu,
        "secrets": dict(sorted(secrets.items())),
        "writes": writes,
        "lists": secrets["list"],
        "service_accounts": dict(sorted(accounts.items())),
        "outcomes": dict(sorted(outcomes.items())),
        "failed": failed,
    }


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
        finally:
            loop.close()

    total = CLUSTERS * NAMESPACES
    print(f"{CLUSTERS} clusters × {NAMESPACES} namespaces = {total} pull secrets, one worker")
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
    print(f"targets in sync at the end: {in_sync}/{total}")
    ok = (
        runs[0]["writes"] == total
        and runs[1]["writes"] == 0
        and runs[1]["lists"] <= CLUSTERS
        and runs[2]["writes"] == total
        and in_sync == total
        and not any(run["failed"] for run in runs)
    )
    print("goals met: " + ("yes" if ok else "NO"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
