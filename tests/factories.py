"""Factories for models and form data used across the suite."""

import json

import factory

from registries.models import Registry

GCP_KEY = json.dumps(
    {
        "type": "service_account",
        "project_id": "wharf-test",
        "private_key_id": "abc123",
        "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIE...\\n-----END PRIVATE KEY-----\\n",
        "client_email": "wharf@wharf-test.iam.gserviceaccount.com",
    },
    indent=2,
)


class RegistryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Registry

    name = factory.Sequence(lambda n: f"registry-{n}")
    provider = "other"
    registry_type = Registry.Type.PRIVATE
    url = factory.Sequence(lambda n: f"registry{n}.example.com")
    auth_type = "password"
    username = "robot"
    secret = factory.Sequence(lambda n: f"s3cret-value-{n}-do-not-leak")


def registry_form_data(**overrides) -> dict:
    """A valid POST for a private "Other" registry; override per test."""
    data = {
        "provider": "other",
        "registry_type": "private",
        "name": "team-registry",
        "url": "registry.example.com:5000",
        "auth_type": "password",
        "username": "robot",
        "secret": "hunter2-correct-horse",
        "connection_method": "direct",
        "tls_mode": "secure",
        "push_images": "on",
        "save_without_checking": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}
