"""Listing a registry's repositories (registries.listing), against real servers.

The distribution registry answers ``GET /v2/_catalog`` open, behind htpasswd, and behind
a token service that grants or withholds ``registry:catalog:*``; moto answers ECR's
``DescribeRepositories`` and ``DescribeImages`` (without ``artifactMediaType``, which it
does not model), and a botocore Stubber answers them in AWS's documented shape, with it.
"""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
from botocore.stub import Stubber

from config.http import TLS_INSECURE, Transport
from registries import aws, oci
from registries.connectivity import check_connection
from registries.listing import METHOD_CATALOG, METHOD_ECR, list_repositories, wanted_name
from registries.models import Registry
from registries.providers import LISTING_REFUSED
from tests.chartkit import OciPusher
from tests.servers.tokens import start_token_registry

pytestmark = pytest.mark.services

ACCOUNT = "123456789012"
REGION = "eu-west-1"
ECR_URL = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
REPOSITORIES = ["apps/api", "apps/web", "charts/ingress", "charts/redis", "tools/shell"]


def fill(server, names=REPOSITORIES, token: str = "") -> None:
    pusher = OciPusher(server.url, server.username, server.password, token=token)
    if token:
        pusher.auth = None
    for name in names:
        pusher.push_image(name, "1.0.0")
    pusher.close()


def registry_for(server, **fields) -> Registry:
    values = {
        "name": "listed",
        "provider": "other",
        "url": server.host,
        "auth_type": "password",
        "username": server.username,
        "secret": server.password,
        "tls_mode": TLS_INSECURE,
        "chart_source": True,
        "repository_scope": Registry.Scope.ALL,
    }
    values.update(fields)
    return Registry(**values)


@pytest.fixture(scope="module")
def open_registry(registry_factory):
    server = registry_factory()
    fill(server)
    return server


@pytest.fixture(scope="module")
def htpasswd_registry(registry_factory):
    server = registry_factory(auth=("lister", "list-Passw0rd"))
    fill(server)
    return server


@pytest.fixture(scope="module")
def catalog_token_registry(registry_factory, ca, tmp_path_factory):
    server = start_token_registry(registry_factory, ca, tmp_path_factory.mktemp("tokens"))
    tokens = server.token_server
    token = tokens.issue(server.username, [f"repository:{n}:pull,push" for n in REPOSITORIES])
    fill(server, token=token)
    yield server
    tokens.stop()


def names(listing) -> list[str]:
    return [r.name for r in listing.repositories]


def test_an_open_registry_lists_every_repository_through_the_catalog(open_registry):
    listing = list_repositories(registry_for(open_registry, registry_type="public"))

    assert listing.listed, listing.refusal
    assert listing.method == METHOD_CATALOG
    assert sorted(names(listing)) == REPOSITORIES
    assert listing.seen == 5


def test_a_catalog_longer_than_one_page_is_read_to_its_end_through_link(open_registry):
    conn = oci.Connection(host=open_registry.host, transport=Transport(tls=TLS_INSECURE))
    with oci.RegistryClient(conn) as client:
        client.ping()
        before = client.requests_made
        listed = client.list_catalog(page_size=2)
        pages = client.requests_made - before

    assert sorted(listed) == REPOSITORIES
    assert pages == 3  # 2 + 2 + 1, each next page named by the Link header


def test_a_next_page_link_is_resolved_whether_relative_or_absolute():
    conn = oci.Connection(host="registry.example.com:5000")
    with oci.RegistryClient(conn) as client:
        relative = client._next_page('</v2/_catalog?last=b&n=2>; rel="next"')
        absolute = client._next_page(
            '<https://registry.example.com:5000/v2/_catalog?last=b&n=2>; rel="next"'
        )
        bare = client._next_page('<_catalog?last=c&n=2>; rel="next"')

    assert relative == absolute == "/v2/_catalog?last=b&n=2"
    assert bare == "/_catalog?last=c&n=2"  # resolved against the registry's root, as urljoin does


def test_path_prefixes_keep_only_the_repositories_under_them(open_registry):
    registry = registry_for(
        open_registry, registry_type="public", repository_prefixes=["charts", "tools/shell"]
    )
    listing = list_repositories(registry)

    assert sorted(names(listing)) == ["charts/ingress", "charts/redis", "tools/shell"]
    assert listing.seen == 5


def test_a_registry_url_with_a_path_lists_the_repositories_under_it_relative_to_it():
    assert wanted_name("team/charts/redis", "team", []) == "charts/redis"
    assert wanted_name("other/redis", "team", []) is None
    assert wanted_name("team/charts/redis", "team", ["charts"]) == "charts/redis"
    assert wanted_name("team/chartsx/redis", "team", ["charts"]) is None


def test_htpasswd_credentials_list_the_catalog(htpasswd_registry):
    listing = list_repositories(registry_for(htpasswd_registry))

    assert listing.listed, listing.refusal
    assert sorted(names(listing)) == REPOSITORIES


def test_htpasswd_without_credentials_is_a_refusal_that_asks_for_the_list_by_hand(
    htpasswd_registry,
):
    listing = list_repositories(registry_for(htpasswd_registry, registry_type="public"))

    assert not listing.listed
    assert listing.refusal.startswith(LISTING_REFUSED)
    assert listing.repositories == []


def test_a_token_with_the_catalog_scope_lists_the_repositories(catalog_token_registry):
    tokens = catalog_token_registry.token_server
    tokens.requests.clear()
    listing = list_repositories(registry_for(catalog_token_registry))

    assert sorted(names(listing)) == REPOSITORIES
    assert ["registry:catalog:*"] in [r["scope"] for r in tokens.requests]


def test_a_token_without_the_catalog_right_is_a_refusal(catalog_token_registry):
    tokens = catalog_token_registry.token_server
    tokens.withheld_types = {"registry"}
    try:
        listing = list_repositories(registry_for(catalog_token_registry))
    finally:
        tokens.withheld_types = set()

    assert not listing.listed
    assert listing.refusal.startswith(LISTING_REFUSED)
    assert catalog_token_registry.password not in listing.refusal


def test_an_empty_catalog_is_a_refusal(registry_factory):
    listing = list_repositories(registry_for(registry_factory(), registry_type="public"))

    assert not listing.listed
    assert "catalog is empty" in listing.refusal


@pytest.mark.parametrize("provider,url", [("docker-hub", "docker.io"), ("gcp-ar", "")])
def test_providers_that_never_list_refuse_without_asking(provider, url):
    registry = Registry(name="x", provider=provider, url=url or "europe-docker.pkg.dev")
    listing = list_repositories(registry)

    assert listing.refusal == LISTING_REFUSED
    assert listing.method == ""


@pytest.mark.django_db
def test_test_connection_says_listing_works_by_which_method_and_how_many(open_registry):
    result = check_connection(registry_for(open_registry, registry_type="public"))

    assert result.ok, result.message
    assert any(
        "Listing the repositories works, through the distribution API (GET /v2/_catalog): "
        "it lists 5 repositories." in step
        for step in result.steps
    ), result.steps


@pytest.mark.django_db
def test_test_connection_says_plainly_when_the_registry_does_not_list(catalog_token_registry):
    tokens = catalog_token_registry.token_server
    tokens.withheld_types = {"registry"}
    try:
        result = check_connection(registry_for(catalog_token_registry))
    finally:
        tokens.withheld_types = set()

    assert result.ok, result.message  # the login works; only the listing does not
    assert any(step.startswith(LISTING_REFUSED) for step in result.steps), result.steps


# --- ECR -------------------------------------------------------------------------------


def image_manifest(config_media_type: str) -> str:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": config_media_type, "digest": "sha256:" + "1" * 64, "size": 2},
            "layers": [],
        }
    )


def ecr_registry(**fields) -> Registry:
    values = {
        "name": "ecr",
        "provider": "ecr",
        "url": ECR_URL,
        "auth_type": "access-key",
        "username": "AKIAWHARFLISTINGTEST",
        "secret": "listing-secret-not-real",
        "chart_source": True,
        "repository_scope": Registry.Scope.ALL,
    }
    values.update(fields)
    return Registry(**values)


@pytest.fixture
def moto_ecr(moto_server, settings):
    settings.WHARF_AWS_ENDPOINT_URL = moto_server
    client = boto3.client("ecr", region_name=REGION, endpoint_url=moto_server)
    made = []
    for name, config in (
        ("discovery/charts/redis", HELM_CONFIG),
        ("discovery/images/shell", "application/vnd.oci.image.config.v1+json"),
    ):
        client.create_repository(repositoryName=name)
        made.append(name)
        client.put_image(
            repositoryName=name,
            imageManifest=image_manifest(config),
            imageTag="1.0.0",
            imageManifestMediaType="application/vnd.oci.image.manifest.v1+json",
        )
    yield client
    for name in made:
        client.delete_repository(repositoryName=name, force=True)


def test_ecr_lists_repositories_and_their_tags_through_the_aws_api(moto_ecr):
    listing = list_repositories(ecr_registry(repository_prefixes=["discovery"]))

    assert listing.listed, listing.refusal
    assert listing.method == METHOD_ECR
    by_name = {r.name: r for r in listing.repositories}
    assert sorted(by_name) == ["discovery/charts/redis", "discovery/images/shell"]
    assert by_name["discovery/charts/redis"].tags == ("1.0.0",)
    # moto does not model artifactMediaType: the charts side reads manifests instead.
    assert by_name["discovery/charts/redis"].media_types == {"1.0.0": ""}


def test_ecr_repositories_outside_the_prefixes_are_not_described(moto_ecr, monkeypatch):
    described = []
    real = aws.ecr_client

    def recording(*args):
        client = real(*args)
        client.meta.events.register(
            "provide-client-params.ecr.DescribeImages",
            lambda params, **kw: described.append(params["repositoryName"]),
        )
        return client

    monkeypatch.setattr(aws, "ecr_client", recording)
    listing = list_repositories(ecr_registry(repository_prefixes=["discovery/images"]))

    assert names(listing) == ["discovery/images/shell"]
    assert described == ["discovery/images/shell"]


def test_ecr_artifact_media_type_in_the_documented_response_shape_tells_charts_apart(
    monkeypatch,
):
    """AWS's DescribeImages names each image's artifactMediaType (the config's media type);
    the Stubber checks the answers below against botocore's model of the ECR API."""
    stubs = []
    real = aws.ecr_client

    def stubbed(*args):
        client = real(*args)
        stubber = Stubber(client)
        stubber.add_response(
            "describe_repositories",
            {
                "repositories": [
                    {"repositoryName": "charts/redis", "registryId": ACCOUNT},
                    {"repositoryName": "images/shell", "registryId": ACCOUNT},
                ]
            },
            {"registryId": ACCOUNT},
        )
        for name, media_type, tags in (
            ("charts/redis", HELM_CONFIG, ["18.1.0", "18.2.0"]),
            ("images/shell", "application/vnd.oci.image.config.v1+json", ["latest"]),
        ):
            stubber.add_response(
                "describe_images",
                {
                    "imageDetails": [
                        {
                            "registryId": ACCOUNT,
                            "repositoryName": name,
                            "imageDigest": "sha256:" + "a" * 64,
                            "imageTags": tags,
                            "imageSizeInBytes": 1234,
                            "imagePushedAt": dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
                            "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json",
                            "artifactMediaType": media_type,
                        }
                    ]
                },
                {"repositoryName": name, "registryId": ACCOUNT},
            )
        stubber.activate()
        stubs.append(stubber)
        return client

    monkeypatch.setattr(aws, "ecr_client", stubbed)
    listing = list_repositories(ecr_registry())

    stubs[0].assert_no_pending_responses()
    by_name = {r.name: r for r in listing.repositories}
    assert by_name["charts/redis"].media_types == {"18.1.0": HELM_CONFIG, "18.2.0": HELM_CONFIG}
    assert by_name["images/shell"].media_types == {
        "latest": "application/vnd.oci.image.config.v1+json"
    }


def test_ecr_refusing_the_listing_is_said_plainly(moto_checks_credentials, settings):
    settings.WHARF_AWS_ENDPOINT_URL = moto_checks_credentials
    listing = list_repositories(ecr_registry())

    assert not listing.listed
    assert listing.refusal.startswith(LISTING_REFUSED)
    assert "listing-secret-not-real" not in listing.refusal


def test_test_connection_names_the_ecr_api_and_how_many_repositories_it_lists(moto_ecr):
    from registries.connectivity import listing_step

    step = listing_step(ecr_registry(repository_prefixes=["discovery/charts"]), client=None)

    assert step.startswith(
        "Listing the repositories works, through the ECR API (DescribeRepositories and "
        "DescribeImages): it lists "
    ), step
    assert "1 of them under the URL's path and prefixes" in step


def test_a_failed_listing_logs_no_credentials(htpasswd_registry, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    registry = registry_for(htpasswd_registry, secret="wrong-Passw0rd-leak")
    listing = list_repositories(registry)

    assert not listing.listed
    assert "wrong-Passw0rd-leak" not in listing.refusal
    assert "wrong-Passw0rd-leak" not in caplog.text
    assert htpasswd_registry.password not in caplog.text


def test_an_ecr_listing_past_its_total_deadline_fails_whole(moto_ecr, settings):
    # Every page is checked against one deadline for the whole listing: none left here.
    settings.WHARF_OCI_CATALOG_DEADLINE = 0

    with pytest.raises(oci.RegistryError) as raised:
        list_repositories(ecr_registry(repository_prefixes=["discovery"]))

    assert "did not finish within 0 s (WHARF_OCI_CATALOG_DEADLINE)" in str(raised.value)
    assert raised.value.kind == oci.RegistryError.UNREACHABLE
