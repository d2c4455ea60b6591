"""Registry URL rules, per provider."""

import pytest
from django.core.exceptions import ValidationError

from registries.providers import EcrProvider, get_provider, normalise_url, parse_json_key


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  registry.example.com  ", "registry.example.com"),
        ("Registry.Example.com:5000/team/", "registry.example.com:5000/team"),
        ("127.0.0.1:5000", "127.0.0.1:5000"),
        ("[::1]:5000/charts", "[::1]:5000/charts"),
    ],
)
def test_registry_url_is_trimmed_and_host_lowercased(raw, expected):
    assert normalise_url(raw) == expected


@pytest.mark.parametrize("scheme", ["oci://", "http://", "https://", "HTTPS://"])
def test_registry_url_with_a_scheme_is_rejected_with_drop_the_scheme_message(scheme):
    with pytest.raises(ValidationError, match="Drop the scheme"):
        normalise_url(f"{scheme}registry.example.com")


@pytest.mark.parametrize(
    "raw", ["", "has space.com", "host:99999", "host:/x", "-bad.com", "a..b", "host/UpperCase"]
)
def test_malformed_registry_url_is_rejected(raw):
    with pytest.raises(ValidationError):
        normalise_url(raw)


@pytest.mark.parametrize(
    ("provider", "url", "public", "ok"),
    [
        ("ecr", "123456789012.dkr.ecr.eu-west-1.amazonaws.com", False, True),
        ("ecr", "12345.dkr.ecr.eu-west-1.amazonaws.com", False, False),
        ("ecr", "123456789012.dkr.ecr.amazonaws.com", False, False),
        ("ecr", "public.ecr.aws", True, True),
        ("ecr", "public.ecr.aws", False, False),
        ("acr", "myregistry.azurecr.io", False, True),
        ("acr", "myregistry.example.com", False, False),
        ("gcp-ar", "europe-west1-docker.pkg.dev/project/repo", False, True),
        ("gcp-ar", "docker.pkg.dev", False, False),
        ("gcr", "gcr.io/my-project", False, True),
        ("gcr", "eu.gcr.io", False, True),
        ("gcr", "xx.gcr.io", False, False),
        ("docker-hub", "docker.io", False, True),
        ("docker-hub", "quay.io", False, False),
        ("quay", "quay.example.com", False, True),
        ("other", "10.0.0.5:5000/path", False, True),
    ],
)
def test_provider_url_rules(provider, url, public, ok):
    check = get_provider(provider).clean_url
    if ok:
        assert check(url, public=public) == url
    else:
        with pytest.raises(ValidationError):
            check(url, public=public)


def test_docker_hub_url_defaults_to_docker_io():
    assert get_provider("docker-hub").clean_url("", public=True) == "docker.io"


def test_ecr_region_and_account_come_from_the_url():
    assert EcrProvider.account_and_region("123456789012.dkr.ecr.ap-south-1.amazonaws.com") == (
        "123456789012",
        "ap-south-1",
    )


@pytest.mark.parametrize(
    "raw",
    [
        '{"client_email": "a@b.iam.gserviceaccount.com"}',
        '\'{"client_email": "a@b.iam.gserviceaccount.com"}\'',
        '  \n{\n "client_email": "a@b.iam.gserviceaccount.com"\n}\n',
    ],
)
def test_json_key_is_accepted_with_or_without_single_quotes(raw):
    assert parse_json_key(raw)["client_email"] == "a@b.iam.gserviceaccount.com"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"type": "service_account"}', "no client_email"),
        ("[]", "no client_email"),
    ],
)
def test_bad_json_key_is_rejected_with_a_clear_message(raw, message):
    with pytest.raises(ValidationError, match=message):
        parse_json_key(raw)
