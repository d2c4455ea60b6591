"""A registry's plain-HTTP route, stored once learned (issue 16).

With "Allow insecure connection", a client that does not know a registry's scheme
tries ``https://`` first. The scheme that answered is stored on the registry (by Test
connection or the first sync that got an answer), so later syncs, in any worker
process, go straight to it. Counted at the real registry: a relay in front of it counts
the TCP connections opened, and with one connection allowed a sync opens exactly one
unless it probes ``https://`` first.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from charts.models import SyncRun
from charts.sync import queue_sync
from charts.sync.run import run_registry_syncs
from registries import oci
from registries.connectivity import check_connection
from registries.models import Registry
from tests.chartkit import DelayingRelay
from tests.charts.helpers import oci_registry, push_versions, unique

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def repository(private_chart_registry) -> str:
    repository = unique("charts/route")
    push_versions(private_chart_registry, repository, repository.rsplit("/", 1)[1], ["1.0.0"])
    return repository


@pytest.fixture
def relay(private_chart_registry):
    with DelayingRelay("127.0.0.1", private_chart_registry.port, delay=0) as relay:
        yield relay


def sync_registry(registry: Registry) -> None:
    run_ids = [
        queue_sync(source, trigger=SyncRun.Trigger.MANUAL).pk
        for source in registry.chart_sources.all()
    ]
    results = run_registry_syncs(run_ids)
    assert {run.status for run in results.values()} == {SyncRun.Status.SUCCEEDED}, [
        run.error for run in results.values()
    ]


def a_new_worker_process() -> None:
    """What a process learned about routes is gone; only the database remembers."""
    oci._ROUTES.clear()


def test_the_first_sync_stores_plain_http_and_the_next_one_sends_no_https_attempt(
    private_chart_registry, repository, relay, settings
):
    settings.WHARF_CHART_SYNC_CONCURRENCY = 1  # one connection, unless https is probed
    registry = oci_registry(private_chart_registry, [repository], url=relay.host)
    assert not registry.plain_http

    sync_registry(registry)
    first = relay.accepted
    registry.refresh_from_db()
    a_new_worker_process()
    sync_registry(registry)

    assert first == 2  # the https:// attempt, then plain HTTP
    assert registry.plain_http
    assert relay.accepted - first == 1


def test_a_sync_that_learns_nothing_new_writes_nothing_on_the_registry(
    private_chart_registry, repository
):
    registry = oci_registry(private_chart_registry, [repository])
    sync_registry(registry)
    registry.refresh_from_db()
    assert registry.plain_http

    with CaptureQueriesContext(connection) as queries:
        sync_registry(Registry.objects.get(pk=registry.pk))

    table = Registry._meta.db_table
    assert not [q["sql"] for q in queries if q["sql"].startswith(f'UPDATE "{table}"')]


def test_test_connection_stores_plain_http_for_the_first_sync(
    private_chart_registry, repository, relay, settings
):
    settings.WHARF_CHART_SYNC_CONCURRENCY = 1
    registry = oci_registry(private_chart_registry, [repository], url=relay.host)

    assert check_connection(registry).ok
    a_new_worker_process()
    before = relay.accepted
    sync_registry(Registry.objects.get(pk=registry.pk))

    assert Registry.objects.get(pk=registry.pk).plain_http
    assert relay.accepted - before == 1


def test_an_unsaved_registry_keeps_what_test_connection_learned_until_it_is_saved(
    private_chart_registry,
):
    registry = Registry(
        name=unique("unsaved"),
        provider="other",
        url=private_chart_registry.host,
        auth_type="password",
        username=private_chart_registry.username,
        secret=private_chart_registry.password,
        tls_mode=Registry.Tls.INSECURE,
    )

    assert check_connection(registry).ok
    registry.save()

    assert Registry.objects.get(pk=registry.pk).plain_http


def test_a_registry_that_moved_to_tls_is_stored_as_tls_again(tls_chart_registry):
    registry = oci_registry(
        tls_chart_registry, [unique("charts/moved")], tls_mode=Registry.Tls.INSECURE
    )
    Registry.objects.filter(pk=registry.pk).update(plain_http=True)
    stored = Registry.objects.get(pk=registry.pk)
    assert stored.connection().plain_http

    result = check_connection(stored)

    assert result.ok, result.message
    assert result.message.startswith(f"Connected to https://{tls_chart_registry.host}")
    assert not Registry.objects.get(pk=registry.pk).plain_http


def test_a_new_url_drops_the_stored_plain_http(private_chart_registry):
    registry = oci_registry(private_chart_registry, [unique("charts/renamed")])
    Registry.objects.filter(pk=registry.pk).update(plain_http=True)
    stored = Registry.objects.get(pk=registry.pk)

    stored.url = "registry.elsewhere.test:5000"
    stored.save()

    assert not Registry.objects.get(pk=registry.pk).plain_http


def test_testing_an_unsaved_edit_stores_nothing_for_the_saved_route(private_chart_registry, relay):
    registry = oci_registry(private_chart_registry, [unique("charts/edit")], url="127.0.0.1:9")
    editing = Registry.objects.get(pk=registry.pk)
    editing.url = relay.host  # typed in the form, not saved

    assert check_connection(editing).ok

    assert editing.plain_http  # saved with the edit, if it is saved
    assert not Registry.objects.get(pk=registry.pk).plain_http
