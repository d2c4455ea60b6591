"""The benchmark's emulators take two short cuts past kmock's dispatch
(``FakeCluster(fast=True)``, bench/reconcile.py): the same writes, refusals and reads,
through Wharf's own client, end the same with and without them."""

from __future__ import annotations

from clusters import kube
from tests.clusters.emulator import FakeCluster

TOKEN = "kube-token-do-not-leak"


def session_of(fake) -> list:
    """Every write and read Wharf makes in a reconcile, with its outcome."""
    outcomes: list = []

    def outcome(call, *args):
        try:
            result = call(*args)
        except kube.KubeError as exc:
            return ("refused", exc.status)
        return ("ok", result)

    labels = {"app.kubernetes.io/managed-by": "wharf"}
    with kube.KubeClient(kube.Connection(fake.url, TOKEN)) as api:
        outcomes.append(
            outcome(api.create_secret, "team-a", "pull", "Opaque", labels, {"k": "YQ=="})
        )
        outcomes.append(
            outcome(api.create_secret, "team-a", "pull", "Opaque", labels, {"k": "Yg=="})
        )
        outcomes.append(outcome(api.create_secret, "nowhere", "pull", "Opaque", labels, {}))
        current = api.read_secret("team-a", "pull")
        outcomes.append(outcome(api.replace_secret_content, current, labels, {"j": "Yw=="}))
        account = api.read_service_account("team-a", "default")
        outcomes.append(outcome(api.set_image_pull_secrets, account, ["pull"], {"a": "b"}))
        outcomes.append(outcome(api.set_image_pull_secrets, account, ["pull", "x"], {}))
        outcomes.append(outcome(api.delete_secret, "team-a", "missing"))
        outcomes.append(("listed", sorted(s.name for s in api.list_secrets(""))))
        secret = api.read_secret("team-a", "pull")
        outcomes.append(("secret", secret.data, secret.labels))
        account = api.read_service_account("team-a", "default")
        outcomes.append(("account", account.pull_secrets, account.annotations))
        outcomes.append(outcome(api.delete_secret, "team-a", "pull"))
        outcomes.append(("gone", api.read_secret("team-a", "pull")))
    return outcomes


def test_the_benchmarks_short_cuts_answer_as_kmock_does(start_fake_cluster, monkeypatch):
    plain = start_fake_cluster(token=TOKEN, namespaces=["team-a"])
    quick = start_fake_cluster(token=TOKEN, namespaces=["team-a"], fast=True)

    expected = session_of(plain)
    taken = []
    short_cut = FakeCluster._fast_write

    def counted(self, request):
        taken.append(short_cut(self, request))
        return taken[-1]

    monkeypatch.setattr(FakeCluster, "_fast_write", counted)

    assert session_of(quick) == expected
    assert any(payload is not None for payload in taken)  # the short cut answered writes
    assert quick.calls() == plain.calls()
    assert ("refused", 409) in expected and ("ok", None) in expected  # the session has both
