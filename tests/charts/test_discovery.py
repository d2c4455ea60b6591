""" "All repositories the registry holds": each listing indexes what holds charts, against
real distribution registries (each test its own, so its catalog is the test's alone)."""

from __future__ import annotations

import shutil

import boto3
import pytest
from django.core.exceptions import ValidationError

from charts.discovery import chart_absence, queue_discovery, queue_due_discoveries, run_discovery
from charts.models import Chart, ChartSource, Discovery, DiscoveryRun, SkippedRepository, SyncRun
from charts.sync import run_sync
from registries import oci
from registries.listing import list_repositories
from registries.models import Registry
from registries.providers import LISTING_REFUSED
from tests.charts.helpers import oci_registry, push_versions, pusher_for
from tests.factories import RegistryFactory

pytestmark = [pytest.mark.django_db, pytest.mark.services]

HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"


@pytest.fixture
def registry_server(registry_factory):
    server = registry_factory()
    push_versions(server, "charts/redis", "redis", ["1.0.0", "1.1.0"])
    push_versions(server, "charts/nginx", "nginx", ["2.0.0"])
    pusher = pusher_for(server)
    pusher.push_image("apps/web", "latest")
    pusher.push_image("apps/web", "1.0.0")
    pusher.close()
    return server


def discover(registry: Registry) -> DiscoveryRun:
    run = queue_discovery(registry, trigger=SyncRun.Trigger.MANUAL)
    run_discovery(run.pk)
    run.refresh_from_db()
    return run


def sync_queued(registry: Registry) -> None:
    for run in SyncRun.objects.filter(source__registry=registry, status=SyncRun.Status.QUEUED):
        run_sync(run.pk)


def all_of(server, **fields) -> Registry:
    return oci_registry(server, [], repository_scope=Registry.Scope.ALL, **fields)


def test_a_listing_indexes_the_repositories_that_hold_charts_and_skips_the_others(
    registry_server,
):
    registry = all_of(registry_server)
    run = discover(registry)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert run.method == "catalog"
    assert (run.discovered, run.indexed, run.added, run.skipped) == (3, 2, 2, 1)
    assert run.skipped_repositories == [
        {"repository": "apps/web", "reason": "its one version tag is not a Helm chart"}
    ]
    sources = ChartSource.objects.filter(registry=registry)
    assert sorted(sources.values_list("repository", flat=True)) == ["charts/nginx", "charts/redis"]
    assert all(s.discovered for s in sources)
    sync_queued(registry)
    assert sorted(Chart.objects.in_store().values_list("name", "latest_version")) == [
        ("nginx", "2.0.0"),
        ("redis", "1.1.0"),
    ]


def test_a_catalog_of_several_pages_is_listed_whole_before_anything_is_indexed(
    registry_server, settings
):
    settings.WHARF_OCI_CATALOG_PAGE_SIZE = 1
    run = discover(all_of(registry_server))

    assert (run.discovered, run.indexed, run.skipped) == (3, 2, 1)


def test_a_repository_without_charts_is_looked_at_again_only_when_its_tags_change(
    registry_server,
):
    registry = all_of(registry_server)
    first = discover(registry)
    remembered = SkippedRepository.objects.get(repository="apps/web")

    again = discover(registry)
    assert again.skipped == 1
    assert SkippedRepository.objects.get(repository="apps/web").checked_at == remembered.checked_at
    # The catalog and one tag list; no manifest is read again.
    assert again.http_requests < first.http_requests

    push_versions(registry_server, "apps/web", "web", ["3.0.0"])  # a chart lands there
    third = discover(registry)
    assert third.added == 1
    assert ChartSource.objects.filter(registry=registry, repository="apps/web").exists()
    assert not SkippedRepository.objects.filter(repository="apps/web").exists()


def test_a_vanished_repository_has_its_charts_marked_removed_upstream(registry_server):
    registry = all_of(registry_server)
    discover(registry)
    sync_queued(registry)
    shutil.rmtree(registry_server.data_dir / "docker/registry/v2/repositories/charts/nginx")

    run = discover(registry)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert run.vanished == 1
    source = ChartSource.objects.get(registry=registry, repository="charts/nginx")
    assert source.vanished_at is not None
    assert not ChartSource.objects.active().filter(pk=source.pk).exists()
    assert source.charts.get().versions.get().removed_upstream_at is not None
    assert list(Chart.objects.in_store().values_list("name", flat=True)) == ["redis"]


def test_a_failed_listing_marks_nothing(registry_server):
    registry = all_of(registry_server)
    discover(registry)
    sync_queued(registry)
    registry_server.stop()
    try:
        run = discover(registry)
    finally:
        registry_server.start()

    assert run.status == SyncRun.Status.FAILED
    assert run.error
    assert not ChartSource.objects.filter(registry=registry, vanished_at__isnull=False).exists()
    assert Chart.objects.in_store().count() == 2


def test_a_refused_listing_fails_the_run_with_the_plain_message_and_marks_nothing(
    registry_factory, ca, tmp_path_factory
):
    from tests.servers.tokens import start_token_registry

    server = start_token_registry(registry_factory, ca, tmp_path_factory.mktemp("tokens"))
    tokens = server.token_server
    try:
        pusher = pusher_for(server)
        pusher.auth = None
        pusher.token = tokens.issue(server.username, ["repository:charts/redis:pull,push"])
        pusher.push_chart("charts/redis", "1.0.0", _archive("redis", "1.0.0"))
        pusher.close()
        registry = all_of(server)
        assert discover(registry).indexed == 1
        tokens.withheld_types = {"registry"}
        run = discover(registry)
    finally:
        tokens.stop()

    assert run.status == SyncRun.Status.FAILED
    assert run.error.startswith(LISTING_REFUSED)
    assert not ChartSource.objects.filter(registry=registry, vanished_at__isnull=False).exists()


def _archive(name: str, version: str) -> bytes:
    from tests.chartkit import make_chart_archive

    return make_chart_archive(name, version)


def test_path_prefixes_limit_the_listing_and_a_narrower_prefix_drops_sources_outside(
    registry_server,
):
    registry = all_of(registry_server)
    discover(registry)
    registry.repository_prefixes = ["charts/redis"]
    registry.full_clean()
    registry.save()  # the signal drops charts/nginx and queues a listing

    assert list(registry.chart_sources.values_list("repository", flat=True)) == ["charts/redis"]
    run = DiscoveryRun.objects.filter(status=SyncRun.Status.QUEUED).get()
    run_discovery(run.pk)
    run.refresh_from_db()
    assert (run.discovered, run.indexed, run.skipped) == (1, 1, 0)


def test_the_schedule_lists_every_all_repositories_registry_once(registry_server):
    registry = all_of(registry_server)  # its save queued a listing already
    RegistryFactory(chart_source=True, repositories=["x/y"])  # a hand-written list: not listed

    assert queue_due_discoveries(registry.updated_at) == 0
    DiscoveryRun.objects.update(status=SyncRun.Status.SUCCEEDED)
    from django.utils import timezone

    assert queue_due_discoveries(timezone.now()) == 1
    assert Discovery.objects.get().registry == registry


# --- the rules, wherever a registry is saved -------------------------------------------


@pytest.mark.parametrize("provider,url", [("docker-hub", "docker.io"), ("gcp-ar", "")])
def test_a_provider_that_never_lists_cannot_be_indexed_for_all_repositories(provider, url):
    registry = Registry(
        name="never-lists",
        provider=provider,
        registry_type="public",
        url=url or "europe-docker.pkg.dev",
        chart_source=True,
        repository_scope=Registry.Scope.ALL,
    )
    with pytest.raises(ValidationError) as caught:
        registry.full_clean()

    assert caught.value.message_dict["repository_scope"] == [LISTING_REFUSED]


def test_all_repositories_needs_no_list_keeps_the_hand_written_one_and_checks_prefixes():
    registry = Registry(
        name="lists-all",
        provider="other",
        registry_type="public",
        url="registry.example.com",
        chart_source=True,
        repository_scope=Registry.Scope.ALL,
        repositories=["kept/by-hand"],
        repository_prefixes=[" charts/ ", "charts"],
    )
    registry.full_clean()
    assert registry.repositories == ["kept/by-hand"]
    assert registry.repository_prefixes == ["charts"]

    registry.repository_prefixes = ["Not A Path"]
    with pytest.raises(ValidationError) as caught:
        registry.full_clean()
    assert "repository_prefixes" in caught.value.message_dict


# --- ECR: with and without artifactMediaType -------------------------------------------


def test_ecr_listing_without_artifact_media_type_reads_manifests_from_the_registry_api(
    moto_server, settings, registry_server
):
    """moto lists the repositories but gives no artifactMediaType and serves no registry
    API: the manifests are read from a distribution registry holding the same names."""
    settings.WHARF_AWS_ENDPOINT_URL = moto_server
    ecr = boto3.client("ecr", region_name="eu-west-1", endpoint_url=moto_server)
    for name in ("charts/redis", "apps/web"):
        ecr.create_repository(repositoryName=name)
        ecr.put_image(
            repositoryName=name,
            imageManifest='{"schemaVersion": 2}',
            imageTag="1.0.0",
            imageManifestMediaType="application/vnd.oci.image.manifest.v1+json",
        )
    try:
        registry = Registry(
            name="ecr",
            provider="ecr",
            url="123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            auth_type="access-key",
            username="AKIAWHARFDISCOVERY",
            secret="not-a-real-secret",
            chart_source=True,
            repository_scope=Registry.Scope.ALL,
        )
        listing = list_repositories(registry)
    finally:
        for name in ("charts/redis", "apps/web"):
            ecr.delete_repository(repositoryName=name, force=True)

    conn = oci.Connection(host=registry_server.host, transport=oci.Transport(tls="insecure"))
    with oci.RegistryClient(conn) as client:
        verdicts = {
            r.name: chart_absence(client, r.name, r.tags, r.media_types)
            for r in listing.repositories
        }
    assert verdicts == {
        "charts/redis": "",
        "apps/web": "its one version tag is not a Helm chart",
    }


class NoRegistry:
    """A client that must not be asked: the media types decide."""

    def find_manifest(self, *args):
        raise AssertionError("a manifest was read")


def test_ecr_artifact_media_type_tells_charts_apart_without_reading_a_manifest():
    client = NoRegistry()
    helm = chart_absence(client, "charts/redis", ("1.0.0",), {"1.0.0": HELM_CONFIG})  # type: ignore[arg-type]
    image = chart_absence(
        client,  # type: ignore[arg-type]
        "apps/web",
        ("1.0.0", "latest"),
        {"1.0.0": "application/vnd.oci.image.config.v1+json", "latest": "x"},
    )

    assert helm == ""
    assert image == "none of its 2 tags is a Helm chart (artifactMediaType)"


# --- a hostile catalog (tests/servers/catalog.py) ------------------------------------


class _At:
    """What oci_registry needs of a server, for a HostileCatalog."""

    def __init__(self, server, username: str = "", password: str = "") -> None:
        self.host, self.username, self.password, self.tls = server.host, username, password, False


def hostile_registry(server, **fields) -> Registry:
    return all_of(_At(server, "lister", "catalog-Secret-9"), **fields)


def test_a_catalog_page_linking_back_to_an_earlier_one_fails_and_marks_nothing():
    from tests.servers.catalog import HostileCatalog, page

    with HostileCatalog(
        [
            page(["charts/a"], link='</v2/_catalog?page=1>; rel="next"'),
            page(["charts/b"], link='</v2/_catalog?page=0>; rel="next"'),  # a loop
        ]
    ) as server:
        registry = hostile_registry(server)
        later = ChartSource.objects.create(
            registry=registry, repository="charts/z", kind=ChartSource.Kind.OCI, discovered=True
        )
        run = discover(registry)

    assert run.status == SyncRun.Status.FAILED
    assert "links its repository catalog back to a page" in run.error
    later.refresh_from_db()
    assert later.vanished_at is None  # charts/z may be on the page never read


def test_a_link_to_another_host_or_scheme_never_takes_the_credentials_there():
    from tests.servers.catalog import HostileCatalog, page

    with HostileCatalog() as elsewhere:
        link = f'<https://{elsewhere.host}/v2/_catalog?page=1>; rel="next"'
        pages = [page(["charts/a"], link=link), page(["charts/b"])]
        with HostileCatalog(pages, basic=True) as server:
            run = discover(hostile_registry(server))
            asked = [path for path, auth in server.seen if auth.startswith("Basic ")]

    # Followed on the registry itself, over its own scheme (plain HTTP here): the host and
    # scheme a Link names get nothing, least of all the credentials.
    assert elsewhere.seen == []
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert "/v2/_catalog?page=1" in asked
    assert run.discovered == 2


@pytest.mark.parametrize(
    "bad",
    ["../../etc/passwd", "charts/../admin", "Charts/Upper", "a" * 300, "a//b", "x?y=1", "", 7],
)
def test_a_name_that_is_not_an_oci_repository_name_is_skipped_with_the_reason(bad):
    from tests.servers.catalog import HostileCatalog, page

    with HostileCatalog([page(["charts/ok", bad])]) as server:
        registry = hostile_registry(server)
        run = discover(registry)

    if not isinstance(bad, str):  # not a list of names at all: the listing fails
        assert run.status == SyncRun.Status.FAILED
        assert "not a list of names" in run.error
        return
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    reasons = {s["repository"]: s["reason"] for s in run.skipped_repositories}
    assert reasons.get("charts/ok") == "it has no tags"
    assert any("not a valid repository name" in r for r in reasons.values()) or bad == ""
    assert all(len(name) <= 255 for name in reasons)
    assert not ChartSource.objects.filter(registry=registry).exclude(repository="charts/ok")


@pytest.mark.parametrize(
    "body",
    [b"<html>not json</html>", b'{"repositories": "charts/a"}', b"[1, 2]", b" " * (5 * 2**20)],
)
def test_a_catalog_that_is_not_a_list_of_names_fails_the_listing_plainly(body):
    from tests.servers.catalog import HostileCatalog

    with HostileCatalog([{"body": body}]) as server:
        registry = hostile_registry(server)
        source = ChartSource.objects.create(
            registry=registry, repository="charts/kept", kind=ChartSource.Kind.OCI, discovered=True
        )
        run = discover(registry)

    assert run.status == SyncRun.Status.FAILED
    assert "catalog" in run.error
    source.refresh_from_db()
    assert source.vanished_at is None


def test_a_listing_that_outlasts_its_total_deadline_fails_and_marks_nothing(settings):
    from tests.servers.catalog import HostileCatalog, page

    settings.WHARF_OCI_CATALOG_DEADLINE = 1.0
    # Each page links to a new one, slowly: only the total deadline ends it.
    pages = [page([f"charts/p{i}"], f'</v2/_catalog?page={i + 1}>; rel="next"', 0.3)
             for i in range(50)]  # fmt: skip
    with HostileCatalog(pages) as server:
        registry = hostile_registry(server)
        run = discover(registry)
        asked = len([p for p, _ in server.seen if "_catalog" in p])

    assert run.status == SyncRun.Status.FAILED
    assert "WHARF_OCI_CATALOG_DEADLINE" in run.error
    assert asked < 50
