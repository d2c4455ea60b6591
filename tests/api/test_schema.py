"""The OpenAPI schema validates, and the browsable docs load only Wharf's own files."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_the_schema_generates_without_warnings_and_validates(capsys):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


def test_the_schema_is_served_to_a_token(api):
    response = api("viewer").get(reverse("api:schema"), HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/registries/{name}/" in schema["paths"]
    assert "bearer" in schema["components"]["securitySchemes"]


def test_the_schema_needs_a_sign_in(client):
    assert client.get(reverse("api:schema")).status_code == 401


def test_the_docs_load_every_asset_from_wharf_under_the_strict_policy(client, users):
    client.force_login(users["viewer"])

    page = client.get(reverse("api:docs"))

    assert page.status_code == 200
    html = page.content.decode()
    policy = page["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "<style" not in html
    assert not re.search(r"<script>\s*\S", html), "an inline script would be blocked"
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(src.startswith("/") for src in sources), sources
    assert any("swagger-ui-bundle.js" in src for src in sources)
    script = next(src for src in sources if "script" in src and "swagger" not in src)
    init = client.get(script)
    assert init.status_code == 200 and "SwaggerUIBundle" in init.content.decode()
    assert reverse("api:schema") in init.content.decode()
