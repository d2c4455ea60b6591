"""Writes within one cluster run concurrently (up to the per-cluster limit), and the API
server's 429 Too Many Requests with Retry-After is honoured: against emulated clusters."""

import base64
import datetime as dt
import email.utils
import logging
import time

import pytest

from clusters import kube
from clusters.models import PullSecretTarget, ReconcileRun
from clusters.pullsecrets import reconcile_cluster
from registries.models import Registry
from tests.clusters.factories import inject
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db

IN_SYNC = PullSecretTarget.Status.IN_SYNC
FAILED = PullSecretTarget.Status.FAILED
TOKEN = "kube-token-do-not-leak"
NAMESPACES = [f"team-{n:02d}" for n in range(12)]


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """The waits clusters.kube takes before retrying (really waited)."""
    taken: list[float] = []

    def pause(seconds: float) -> None:
        taken.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr(kube, "_pause", pause)
    return taken


def statuses() -> dict[str, str]:
    return dict(PullSecretTarget.objects.values_list("namespace", "status"))


def test_writes_within_a_cluster_are_in_flight_together(add_cluster, settings, caplog):
    settings.WHARF_RECONCILE_CLUSTER_CONCURRENCY = 4
    # Each write is held open until four are in flight together: only concurrent writes
    # get past it before its timeout.
    cluster, fake = add_cluster("prod", namespaces=NAMESPACES, hold_writes_until=4)
    inject(RegistryFactory(name="acme"))

    with caplog.at_level(logging.WARNING, logger="urllib3"):
        result = reconcile_cluster(cluster.pk)

    assert fake.peak_in_flight == 4
    assert result.secrets == {"created": 12} and result.failed == 0
    assert statuses() == dict.fromkeys(NAMESPACES, IN_SYNC)
    assert all(fake.secret(ns, "wharf-acme") for ns in NAMESPACES)
    # The connection pool holds as many connections as calls in flight: none thrown away.
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


def test_writes_in_flight_never_exceed_the_cluster_limit(add_cluster, settings):
    settings.WHARF_RECONCILE_CLUSTER_CONCURRENCY = 3
    # Writes wait for a fourth one in flight, which must never come (1 s, then released).
    cluster, fake = add_cluster(
        "prod", namespaces=NAMESPACES, hold_writes_until=4, hold_timeout=1.0
    )
    inject(RegistryFactory(name="acme"))

    result = reconcile_cluster(cluster.pk)

    assert fake.peak_in_flight == 3
    assert result.secrets == {"created": 12}
    assert fake.calls("serviceaccounts")["update"] == 12
    assert statuses() == dict.fromkeys(NAMESPACES, IN_SYNC)


def test_concurrent_reconcile_records_each_targets_own_outcome(add_cluster, settings):
    settings.WHARF_RECONCILE_CLUSTER_CONCURRENCY = 8
    cluster, fake = add_cluster("prod", namespaces=NAMESPACES, hold_writes_until=8)
    registry = RegistryFactory(name="acme")
    inject(registry)
    reconcile_cluster(cluster.pk)
    # Someone else's secret where Wharf's should be, a namespace refusing deletes, and a
    # password change for the rest.
    fake.delete_secret("team-03", "wharf-acme")
    fake.put_secret("team-03", "wharf-acme", {"type": "Opaque", "data": {}})
    fake.put_secret(
        "team-07", "wharf-old", {"metadata": {"labels": {"app.kubernetes.io/managed-by": "wharf",
                                                          "wharf.dev/registry": "old"}}},
    )  # fmt: skip
    fake.forbidden_secret_deletes = {"team-07"}
    Registry.objects.filter(pk=registry.pk).update(secret="second-password")
    fake.reset_calls()

    result = reconcile_cluster(cluster.pk)

    assert result.secrets == {"updated": 11}
    assert result.failed == 2  # team-03's foreign secret; team-07's undeletable one
    rows = {r.namespace: r for r in PullSecretTarget.objects.all()}
    assert {ns for ns, r in rows.items() if r.status == FAILED} == {"team-03"}
    assert "not created by Wharf" in rows["team-03"].error
    assert fake.secret("team-07", "wharf-old") is not None
    # team-03: a create, its 409, a fresh read finding the foreign secret.
    assert fake.calls() == {"list": 1, "create": 1, "fetch": 1, "update": 11, "delete": 1}
    for namespace in set(NAMESPACES) - {"team-03"}:
        data = fake.secret(namespace, "wharf-acme")["data"][".dockerconfigjson"]
        assert b"second-password" in base64.b64decode(data)


def test_a_429_is_retried_after_the_seconds_its_retry_after_asks(start_fake_cluster, waits):
    fake = start_fake_cluster(token=TOKEN, namespaces=["team-a"], throttled_writes=2)

    with kube.KubeClient(kube.Connection(fake.url, TOKEN)) as api:
        api.create_secret("team-a", "s", "Opaque", {}, {"k": "dg=="})

    assert fake.secret("team-a", "s")["data"] == {"k": "dg=="}
    assert fake.calls() == {"create": 3}
    # Each wait is the asked second plus at most a quarter more of jitter...
    assert len(waits) == 2 and all(1.0 <= w <= 1.3 for w in waits)
    # ...and the server saw each retry at least that second after its 429.
    retried = [at for *_, at in fake.writes_at[1:]]
    assert all(
        later - before >= 1.0 for before, later in zip(fake.throttled_at, retried, strict=False)
    )


def test_a_retry_after_given_as_an_http_date_is_waited_until(start_fake_cluster, waits):
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    fake = start_fake_cluster(
        token=TOKEN, throttled_writes=1, retry_after=email.utils.format_datetime(when, True)
    )

    with kube.KubeClient(kube.Connection(fake.url, TOKEN)) as api:
        api.create_secret("team-a", "s", "Opaque", {}, {})

    # The date has whole seconds: between one and two seconds away when the 429 came.
    assert len(waits) == 1 and 0.5 < waits[0] <= 2.6
    assert time.time() >= when.replace(microsecond=0).timestamp()
    assert fake.calls() == {"create": 2}


def test_a_429_without_retry_after_backs_off_and_is_retried(start_fake_cluster, waits):
    fake = start_fake_cluster(token=TOKEN, throttled_writes=2, retry_after=None)

    with kube.KubeClient(kube.Connection(fake.url, TOKEN)) as api:
        api.create_secret("team-a", "s", "Opaque", {}, {})

    assert fake.calls() == {"create": 3}
    assert len(waits) == 2 and 0.5 <= waits[0] <= 0.7 and 1.0 <= waits[1] <= 1.3


def test_a_server_that_keeps_answering_429_fails_the_call_after_bounded_retries(
    start_fake_cluster, waits
):
    fake = start_fake_cluster(token=TOKEN, throttled_namespaces={"team-a"}, retry_after="0")

    with (
        kube.KubeClient(kube.Connection(fake.url, TOKEN)) as api,
        pytest.raises(kube.KubeError) as caught,
    ):
        api.create_secret("team-a", "s", "Opaque", {}, {})

    assert caught.value.status == 429
    assert "429 Too Many Requests" in str(caught.value) and TOKEN not in str(caught.value)
    assert fake.calls() == {"create": 1 + kube.THROTTLE_RETRIES}
    assert len(waits) == kube.THROTTLE_RETRIES


def test_a_retry_after_past_the_deadline_is_not_waited_for(start_fake_cluster, waits):
    fake = start_fake_cluster(token=TOKEN, throttled_writes=1, retry_after="30")
    deadline = time.monotonic() + 10

    with (
        kube.KubeClient(kube.Connection(fake.url, TOKEN), deadline=deadline) as api,
        pytest.raises(kube.KubeError) as caught,
    ):
        api.create_secret("team-a", "s", "Opaque", {}, {})

    assert caught.value.status == 429
    assert waits == [] and fake.calls() == {"create": 1}


def test_no_call_starts_once_the_deadline_has_passed(start_fake_cluster):
    fake = start_fake_cluster(token=TOKEN)

    api = kube.KubeClient(kube.Connection(fake.url, TOKEN), deadline=time.monotonic())
    with api, pytest.raises(kube.KubeError, match="time limit"):
        api.list_secrets("a=b")

    assert fake.calls() == {}


def test_a_throttled_namespace_fails_only_its_target_not_the_run(add_cluster, waits):
    cluster, fake = add_cluster(
        "prod", namespaces=["team-a", "team-b", "team-c"], throttled_namespaces={"team-b"},
        retry_after="0",
    )  # fmt: skip
    inject(RegistryFactory(name="acme"))

    result = reconcile_cluster(cluster.pk)

    assert result.error == "" and result.failed == 1
    rows = {r.namespace: r for r in PullSecretTarget.objects.all()}
    assert {ns: r.status for ns, r in rows.items()} == {
        "team-a": IN_SYNC, "team-b": FAILED, "team-c": IN_SYNC,
    }  # fmt: skip
    assert "429 Too Many Requests" in rows["team-b"].error
    assert fake.secret("team-a", "wharf-acme") and fake.secret("team-c", "wharf-acme")
    run = ReconcileRun.objects.get()
    assert run.error == "1 target failed; the status table says why."
    cluster.refresh_from_db()
    assert cluster.health == cluster.Health.OK  # it answered: not marked unreachable


def test_a_reconcile_waits_for_no_retry_after_beyond_its_time_limit(add_cluster, settings, waits):
    settings.WHARF_RECONCILE_TIME_LIMIT = 20
    cluster, _ = add_cluster(
        "prod", namespaces=["team-a", "team-b"], throttled_namespaces={"team-a"},
        retry_after="30",
    )  # fmt: skip
    inject(RegistryFactory(name="acme"))

    reconcile_cluster(cluster.pk)

    assert waits == []
    assert statuses() == {"team-a": FAILED, "team-b": IN_SYNC}
