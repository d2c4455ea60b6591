"""Odd JSON at every write: a list where an object is expected, null, numbers for text,
huge strings. Each is a 4xx in the API's error shape, never a 500."""

from __future__ import annotations

import pytest

from config import roles
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db

ODD_BODIES = [
    [],
    [{"name": "x"}],
    None,
    "text",
    7,
    {"name": None, "url": None, "provider": None},
    {"name": ["a"], "url": {"a": 1}, "provider": 3, "secret": {"x": 1}},
    {"name": "x" * 100_000, "url": "h" * 100_000, "provider": "other"},
    {
        "provider": "other",
        "url": "registry.example.com",
        "repository_prefixes": "charts",
        "repositories": {"a": 1},
        "port": "NaN",
        "tls_mode": ["secure"],
    },
    {"deep": "yes"},
    {"archive": None, "prefix": ["a"]},
]

WRITES = [
    ("put", "/api/v1/registries/odd/"),
    ("post", "/api/v1/registries/"),
    ("patch", "/api/v1/registries/odd/"),
    ("put", "/api/v1/chart-repositories/odd/"),
    ("post", "/api/v1/chart-repositories/"),
    ("put", "/api/v1/clusters/odd/"),
    ("post", "/api/v1/clusters/"),
    ("put", "/api/v1/environments/odd/"),
    ("post", "/api/v1/environments/"),
    ("put", "/api/v1/registries/odd/access/"),
    ("post", "/api/v1/chart-sources/1/sync/"),
    ("post", "/api/v1/registries/odd/pushes/"),
]


@pytest.mark.parametrize("existing", [False, True])
@pytest.mark.parametrize(("method", "path"), WRITES)
def test_odd_json_is_a_client_error_never_a_server_error(api, method, path, existing):
    if existing:  # an update, not a create
        RegistryFactory(name="odd", url="registry.example.com", registry_type="public")
    client = api(roles.ADMIN)
    for body in ODD_BODIES:
        response = getattr(client, method)(path, body, format="json")
        assert response.status_code < 500, (method, path, body if len(str(body)) < 200 else "…")
        if response.status_code >= 400 and response.headers.get("Content-Type", "").startswith(
            "application/json"
        ):
            assert "detail" in response.json(), response.json()
