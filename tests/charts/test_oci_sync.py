"""Indexing Helm charts from an OCI registry: the real distribution registry on loopback."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.db import connection

from charts import sync as chart_sync
from charts.models import Chart, ChartSource, ChartVersion, SyncRun
from charts.sync import oci as oci_sync
from config.runs import Lease
from registries import oci
from tests.chartkit import (
    chart_config,
    chart_manifest,
    make_chart_archive,
    push_chart_with_oras,
    sha256_digest,
)
from tests.charts.helpers import oci_registry, push_versions, pusher_for, source_of, sync, unique

pytestmark = pytest.mark.django_db(transaction=True)


def versions_of(source) -> dict[str, ChartVersion]:
    return {v.version: v for v in ChartVersion.objects.filter(chart__source=source)}


def blob_requests(server) -> int:
    """Blob reads in the registry's access log."""
    return sum(
        '"GET /v2/' in line and "/blobs/" in line
        for line in server.log_path.read_text().splitlines()
    )


def test_first_sync_indexes_charts_pushed_with_oras_and_skips_a_container_image(
    private_chart_registry,
):
    repo = unique("charts/web")
    archive = make_chart_archive(
        "web", "1.2.0", description="A web server", keywords=["http", "nginx"]
    )
    push_chart_with_oras(
        private_chart_registry.host, repo, "1.2.0", archive,
        username=private_chart_registry.username, password=private_chart_registry.password,
    )  # fmt: skip
    push_versions(private_chart_registry, repo, "web", ["1.3.0-rc.1", "1.1.0+build.7"])
    pusher_for(private_chart_registry).push_image(repo, "latest")
    source = source_of(oci_registry(private_chart_registry, [repo]), repo)

    run = sync(source)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert (run.added, run.updated, run.removed) == (3, 0, 0)
    versions = versions_of(source)
    assert set(versions) == {"1.2.0", "1.3.0-rc.1", "1.1.0+build.7"}
    assert versions["1.1.0+build.7"].tag == "1.1.0_build.7"
    assert versions["1.3.0-rc.1"].prerelease is True
    assert versions["1.2.0"].description == "A web server"
    assert versions["1.2.0"].archive_digest == sha256_digest(archive)
    chart = Chart.objects.get(source=source, name="web")
    assert chart.latest_version == "1.2.0"  # the highest release, not the pre-release
    assert chart.keywords == "http nginx"
    assert source.__class__.objects.get(pk=source.pk).ignored_tags.keys() == {"latest"}


# "Allow insecure connection" tries https:// first, then plain HTTP, once per sync.
PLAIN_HTTP_PROBE = 1


def test_each_new_version_costs_a_manifest_and_a_config_blob_and_no_archive(tls_chart_registry):
    repo = unique("charts/api")
    push_versions(tls_chart_registry, repo, "api", ["1.0.0", "1.1.0", "2.0.0"])
    source = source_of(oci_registry(tls_chart_registry, [repo]), repo)
    blobs_before = blob_requests(tls_chart_registry)

    run = sync(source)

    assert run.added == 3
    # The tag list (after one Basic-auth challenge), then per version: manifest + config.
    assert run.http_requests == 2 + 2 * 3
    assert blob_requests(tls_chart_registry) - blobs_before == 3  # configs only, no archive
    assert all(v.files_read_at is None for v in versions_of(source).values())


def test_resync_of_unchanged_repository_reads_the_tag_list_and_a_head_per_tag(
    tls_chart_registry,
):
    repo = unique("charts/db")
    push_versions(tls_chart_registry, repo, "db", ["1.0.0", "1.0.1"])
    source = source_of(oci_registry(tls_chart_registry, [repo]), repo)
    sync(source)
    before = {v.version: v.updated_at for v in versions_of(source).values()}
    blobs_before = blob_requests(tls_chart_registry)

    run = sync(source)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert (run.added, run.updated, run.removed) == (0, 0, 0)
    # The tag list (plus the Basic-auth challenge), then one HEAD per known tag.
    assert run.http_requests <= 2 + 2
    assert blob_requests(tls_chart_registry) == blobs_before
    assert {v.version: v.updated_at for v in versions_of(source).values()} == before


def test_a_repository_with_more_than_100_tags_is_indexed_whole(chart_registry):
    repo = unique("charts/many")
    versions = [f"0.{i}.0" for i in range(120)]
    push_versions(chart_registry, repo, "many", versions)
    source = source_of(oci_registry(chart_registry, [repo]), repo)

    run = sync(source)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert run.added == 120
    assert Chart.objects.get(source=source).latest_version == "0.119.0"


class PagingTagList(BaseHTTPRequestHandler):
    """Tag lists in pages of ``n`` with a ``Link`` header, as registries that paginate do.

    distribution 2.8 (Debian's docker-registry) answers every tag in one page and ignores
    ``n``, so this small server stands in for the registries that do paginate.
    """

    tags = [f"1.{i}.0" for i in range(230)]
    seen: list[str] = []

    def do_GET(self):
        url = urlsplit(self.path)
        PagingTagList.seen.append(self.path)
        if url.path == "/v2/":
            return self._answer(200, {})
        query = parse_qs(url.query)
        n = int(query.get("n", ["100"])[0])
        last = query.get("last", [""])[0]
        start = self.tags.index(last) + 1 if last else 0
        page = self.tags[start : start + n]
        headers = {}
        if start + n < len(self.tags):
            headers["Link"] = f'<{url.path}?n={n}&last={page[-1]}>; rel="next"'
        self._answer(200, {"name": "paged", "tags": page}, headers)

    def _answer(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_the_tag_list_is_followed_page_by_page_through_link_headers():
    server = ThreadingHTTPServer(("127.0.0.1", 0), PagingTagList)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    PagingTagList.seen = []
    try:
        host = f"127.0.0.1:{server.server_address[1]}"
        conn = oci.Connection(host=host, transport=oci.Transport(tls=oci.TLS_INSECURE, timeout=5))
        with oci.RegistryClient(conn) as client:
            tags = client.list_tags("paged", page_size=100)
    finally:
        server.shutdown()
        server.server_close()

    assert tags == PagingTagList.tags
    assert PagingTagList.seen == [
        "/v2/paged/tags/list?n=100",
        "/v2/paged/tags/list?n=100&last=1.99.0",
        "/v2/paged/tags/list?n=100&last=1.199.0",
    ]


def test_a_tag_deleted_upstream_is_marked_removed_and_hidden(chart_registry):
    repo = unique("charts/gone")
    digests = push_versions(chart_registry, repo, "gone", ["1.0.0", "2.0.0"])
    source = source_of(oci_registry(chart_registry, [repo]), repo)
    sync(source)
    requests.delete(
        f"{chart_registry.url}/v2/{repo}/manifests/{digests['2.0.0']}", timeout=10
    ).raise_for_status()

    run = sync(source)

    assert run.removed == 1
    removed = versions_of(source)["2.0.0"]
    assert removed.removed_upstream_at is not None  # kept, not dropped
    assert Chart.objects.get(source=source).latest_version == "1.0.0"


def test_a_plain_resync_finds_an_overwritten_tag(chart_registry):
    repo = unique("charts/moving")
    push_versions(chart_registry, repo, "moving", ["1.0.0"], description="first")
    source = source_of(oci_registry(chart_registry, [repo]), repo)
    sync(source)
    new_digest = push_versions(chart_registry, repo, "moving", ["1.0.0"], description="second")[
        "1.0.0"
    ]

    run = sync(source)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert run.updated == 1
    version = versions_of(source)["1.0.0"]
    assert (version.digest, version.description) == (new_digest, "second")


def test_a_broken_chart_is_reported_and_the_others_are_indexed(chart_registry):
    repo = unique("charts/mixed")
    push_versions(chart_registry, repo, "mixed", ["1.0.0"])
    pusher = pusher_for(chart_registry)
    archive = make_chart_archive("mixed", "1.1.0")
    bad_config = b"this is not json"
    pusher.push_blob(repo, bad_config)
    pusher.push_blob(repo, archive)
    manifest = json.loads(chart_manifest(chart_config(archive), archive))
    manifest["config"]["digest"] = sha256_digest(bad_config)
    manifest["config"]["size"] = len(bad_config)
    pusher.push_raw_manifest(repo, "1.1.0", json.dumps(manifest).encode())
    source = source_of(oci_registry(chart_registry, [repo]), repo)

    run = sync(source)

    assert run.status == SyncRun.Status.FAILED
    assert "1.1.0: the Helm config blob is not a JSON object" in run.error
    assert set(versions_of(source)) == {"1.0.0"}
    assert run.added == 1


def test_a_corrupt_chart_archive_fails_the_run_and_keeps_the_earlier_index(chart_registry):
    repo = unique("charts/corrupt")
    push_versions(chart_registry, repo, "corrupt", ["1.0.0"])
    source = source_of(oci_registry(chart_registry, [repo]), repo)
    sync(source)
    pusher = pusher_for(chart_registry)
    empty_config = b"{}"  # as some tools push: the archive is then the only metadata
    corrupt = b"\x1f\x8b\x08\x00" + b"not really gzip" * 10
    pusher.push_blob(repo, empty_config)
    pusher.push_blob(repo, corrupt)
    manifest = json.loads(
        chart_manifest(empty_config, corrupt, {"name": "corrupt", "version": "2.0.0"})
    )
    pusher.push_raw_manifest(repo, "2.0.0", json.dumps(manifest).encode())

    run = sync(source)

    assert run.status == SyncRun.Status.FAILED
    assert run.error.startswith("2.0.0:")
    assert set(versions_of(source)) == {"1.0.0"}
    assert versions_of(source)["1.0.0"].removed_upstream_at is None


def test_wrong_credentials_fail_the_run_with_the_registrys_answer(private_chart_registry):
    repo = unique("charts/locked")
    push_versions(private_chart_registry, repo, "locked", ["1.0.0"])
    source = source_of(oci_registry(private_chart_registry, [repo], secret="wrong-password"), repo)

    run = sync(source)

    assert run.status == SyncRun.Status.FAILED
    assert "rejected" in run.error.lower() or "password" in run.error.lower()
    assert "wrong-password" not in run.error


def test_registry_stopped_in_the_middle_of_a_sync_leaves_a_failed_run_and_the_index(
    registry_factory, monkeypatch
):
    server = registry_factory()
    repo = unique("charts/flaky")
    push_versions(server, repo, "flaky", ["1.0.0"])
    source = source_of(oci_registry(server, [repo]), repo)
    assert sync(source).status == SyncRun.Status.SUCCEEDED
    push_versions(server, repo, "flaky", [f"1.{i}.0" for i in range(1, 30)])

    real_read_tag = oci_sync.read_tag
    calls = []

    def read_then_stop(client, repository, tag):
        calls.append(tag)
        if len(calls) == 3:
            server.stop()
        return real_read_tag(client, repository, tag)

    monkeypatch.setattr(oci_sync, "read_tag", read_then_stop)
    try:
        run = sync(source)
    finally:
        server.start()

    assert run.status == SyncRun.Status.FAILED
    assert "reach" in run.error.lower() or "refused" in run.error.lower(), run.error
    assert versions_of(source)["1.0.0"].removed_upstream_at is None
    # What was read before the registry went away is kept, and the run says how much.
    assert run.added == len(versions_of(source)) - 1
    assert Chart.objects.get(source=source).latest_version != ""
    assert ChartSource.objects.get(pk=source.pk).lease_owner == ""  # the lease was released


def test_a_sync_asked_for_while_another_runs_waits_and_is_sent_when_that_one_ends(
    chart_registry, queued_syncs
):
    repo = unique("charts/locked-out")
    push_versions(chart_registry, repo, "locked", ["1.0.0"])
    source = source_of(oci_registry(chart_registry, [repo]), repo)
    SyncRun.objects.all().delete()
    lease = Lease.acquire(ChartSource, source.pk)  # a sync is running
    try:
        waiting = sync(source)
    finally:
        lease.release()

    assert waiting.status == SyncRun.Status.QUEUED
    assert waiting.http_requests == 0
    assert not ChartVersion.objects.filter(chart__source=source).exists()

    # The next sync to finish hands the waiting run to a worker again.
    queued_syncs.clear()
    other = SyncRun.objects.create(source=source)
    chart_sync.run_sync(other.pk)
    assert queued_syncs == [waiting.pk]
    chart_sync.run_sync(waiting.pk)
    waiting.refresh_from_db()
    assert waiting.status == SyncRun.Status.SUCCEEDED


@pytest.mark.skipif(
    connection.vendor == "sqlite", reason="SQLite's in-memory test database is one connection"
)
def test_two_syncs_started_at_once_run_one_at_a_time(chart_registry, queued_syncs):
    repo = unique("charts/race")
    push_versions(chart_registry, repo, "race", [f"1.{i}.0" for i in range(10)])
    source = source_of(oci_registry(chart_registry, [repo]), repo)
    SyncRun.objects.filter(source=source).delete()  # the set-up's first run
    runs = [SyncRun.objects.create(source=source) for _ in range(2)]
    barrier = threading.Barrier(2)
    errors = []

    def worker(run_id):
        try:
            barrier.wait(timeout=10)
            chart_sync.run_sync(run_id)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(run.pk,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors
    statuses = sorted(
        SyncRun.objects.filter(pk__in=[r.pk for r in runs]).values_list("status", flat=True)
    )
    # Either the second found the lock taken (it waits, queued, and the first handed it
    # to a worker again when it ended), or it ran after the first had finished and found
    # nothing new; never two writers at once.
    assert statuses in (["queued", "succeeded"], ["succeeded", "succeeded"])
    if statuses[0] == "queued":
        assert set(queued_syncs) & {r.pk for r in runs}
    assert sorted(
        SyncRun.objects.filter(pk__in=[r.pk for r in runs]).values_list("added", flat=True)
    ) == [0, 10]


def test_removing_a_repository_from_the_list_removes_its_charts(chart_registry):
    keep, drop = unique("charts/keep"), unique("charts/drop")
    push_versions(chart_registry, keep, "keep", ["1.0.0"])
    push_versions(chart_registry, drop, "drop", ["1.0.0"])
    registry = oci_registry(chart_registry, [keep, drop])
    sync(source_of(registry, keep))
    sync(source_of(registry, drop))

    registry.repositories = [keep]
    registry.save()

    assert set(Chart.objects.values_list("name", flat=True)) == {"keep"}
    registry.chart_source = False
    registry.repositories = []
    registry.save()
    assert not Chart.objects.exists()
    assert not ChartSource.objects.exists()


def test_deleting_the_registry_removes_its_charts(chart_registry):
    repo = unique("charts/bye")
    push_versions(chart_registry, repo, "bye", ["1.0.0"])
    registry = oci_registry(chart_registry, [repo])
    sync(source_of(registry, repo))

    registry.delete()

    assert not Chart.objects.exists()


def test_later_runs_reuse_what_the_first_learned_about_a_plain_http_basic_auth_registry(
    private_chart_registry,
):
    repo = unique("charts/learned")
    push_versions(private_chart_registry, repo, "learned", ["1.0.0"])
    source = source_of(oci_registry(private_chart_registry, [repo]), repo)
    first = sync(source)

    again = sync(source)

    # First run: an https:// probe, a 401, then the tag list, manifest and config.
    assert first.http_requests == PLAIN_HTTP_PROBE + 1 + 1 + 2
    # Next run, in a new client: plain HTTP and Basic credentials from the first request
    # (the tag list, and the HEAD that re-checks the one known tag).
    assert again.http_requests == 1 + 1
    assert again.status == SyncRun.Status.SUCCEEDED


def test_a_registry_remembered_as_plain_http_that_moved_to_tls_is_asked_again(tls_chart_registry):
    conn = oci.Connection(
        host=tls_chart_registry.host,
        username=tls_chart_registry.username,
        password=tls_chart_registry.password,
        transport=oci.Transport(tls=oci.TLS_INSECURE),
    )
    oci._remember(conn, plain_http=True)

    result = oci.ping(conn)

    assert result.base_url == f"https://{tls_chart_registry.host}"
    assert (
        oci._route_key(conn) not in oci._ROUTES or not oci._ROUTES[oci._route_key(conn)].plain_http
    )
