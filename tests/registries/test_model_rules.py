"""Registry.clean() holds the registry's rules, so every way of saving one obeys them."""

import pytest
from django.core.exceptions import ValidationError

from registries.models import Registry
from tests.factories import GCP_KEY, RegistryFactory

pytestmark = pytest.mark.django_db


def new_registry(**fields) -> Registry:
    values = {
        "name": "team-registry", "provider": "other", "registry_type": "private",
        "url": "registry.example.com", "auth_type": "password", "username": "robot",
        "secret": "hunter2",
    }  # fmt: skip
    values.update(fields)
    return Registry(**values)


def errors_of(registry: Registry) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        registry.full_clean()
    return caught.value.message_dict


REFUSED = [
    ("url", {"url": "oci://registry.example.com"}, "Drop the scheme"),
    ("url", {"provider": "ecr", "auth_type": "iam-role", "url": "ecr.example.com"}, "12-digit"),
    ("registry_type", {"provider": "gcr", "url": "gcr.io", "auth_type": "json-key", "secret": GCP_KEY, "registry_type": "public"}, "cannot be a public registry"),
    ("push_helm", {"provider": "gcr", "url": "gcr.io", "auth_type": "json-key", "secret": GCP_KEY, "push_helm": True}, "cannot store Helm charts"),
    ("chart_source", {"provider": "gcr", "url": "gcr.io", "auth_type": "json-key", "secret": GCP_KEY, "chart_source": True, "repositories": ["a"]}, "cannot store Helm charts"),
    ("push_images", {"push_images": False}, "Tick at least one"),
    ("repositories", {"chart_source": True, "repositories": []}, "List at least one repository"),
    ("repositories", {"chart_source": True, "repositories": ["ok/path", "No Good"]}, "Not a repository path: No Good."),
    ("secret", {"secret": ""}, "Enter the password/token."),
    ("username", {"username": "  "}, "Enter the username."),
    ("secret", {"provider": "gcp-ar", "url": "us-docker.pkg.dev", "auth_type": "json-key", "secret": "{nope"}, "not valid JSON"),
    ("auth_type", {"provider": "docker-hub", "url": "docker.io", "auth_type": "iam-role"}, "does not offer"),
]  # fmt: skip


@pytest.mark.parametrize(("field", "fields", "message"), REFUSED)
def test_model_refuses_a_registry_that_breaks_a_rule(field, fields, message):
    assert message in " ".join(errors_of(new_registry(**fields)).get(field, []))


def test_model_trims_the_url_and_lowercases_its_host():
    registry = new_registry(url="  Registry.Example.COM:5000/team-a/ ")
    registry.full_clean()
    assert registry.url == "registry.example.com:5000/team-a"


def test_model_gives_docker_hub_its_default_url():
    registry = new_registry(provider="docker-hub", url="")
    registry.clean()  # (full_clean() would first refuse the blank field, as the admin does)
    assert registry.url == "docker.io"


def test_public_registry_keeps_no_credentials():
    registry = new_registry(registry_type="public")
    registry.full_clean()
    assert (registry.auth_type, registry.username, registry.secret) == ("", "", "")


def test_iam_role_keeps_no_username_or_secret_and_blank_auth_is_the_providers_first():
    registry = new_registry(
        provider="ecr", url="123456789012.dkr.ecr.us-east-1.amazonaws.com", auth_type=""
    )
    registry.full_clean()
    assert (registry.auth_type, registry.username, registry.secret) == ("iam-role", "", "")


def test_no_chart_source_means_no_repositories_and_listed_ones_are_normalised():
    registry = new_registry(repositories=["charts/stable"])
    registry.full_clean()
    assert registry.repositories == []
    registry = new_registry(chart_source=True, repositories=[" charts/stable/", "charts/stable"])
    registry.full_clean()
    assert registry.repositories == ["charts/stable"]


def test_stored_secret_satisfies_the_credential_rule_of_an_edit():
    registry = RegistryFactory(url="registry.example.com")
    registry = Registry.objects.get(pk=registry.pk)
    registry.push_helm = True
    registry.full_clean()


def test_default_cannot_be_unticked_while_others_exist_and_the_only_one_stays_default():
    default = RegistryFactory(url="registry.example.com", is_default=True)
    default.is_default = False
    default.full_clean()  # the only registry: it stays the default
    assert default.is_default

    RegistryFactory(url="other.example.com")
    default.is_default = False
    assert "make another registry the default" in errors_of(default)["is_default"][0]
