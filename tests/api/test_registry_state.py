"""What Wharf learned about a registry, readable through the API as on its pages: the
rate-limit budget it last announced and whether it speaks plain HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from registries.models import RateLimitBudget, Registry
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db


def test_a_registrys_rate_limit_budget_is_read_through_the_api(api):
    registry = RegistryFactory(name="hub")
    resets = timezone.now() + timedelta(hours=6)
    RateLimitBudget.objects.create(
        registry=registry, limit=100, remaining=40, window_seconds=21600, resets_at=resets,
        updated_at=timezone.now(),
    )  # fmt: skip

    budget = api("operator").get("/api/v1/registries/hub/").json()["rate_limit_budget"]

    assert (budget["limit"], budget["remaining"], budget["window_seconds"]) == (100, 40, 21600)
    assert budget["resets_at"] is not None and budget["throttled_until"] is None


def test_a_registry_that_announced_no_budget_has_none_and_says_its_route(api):
    registry = RegistryFactory(name="quiet")
    Registry.objects.filter(pk=registry.pk).update(plain_http=True)

    answer = api("operator").get("/api/v1/registries/quiet/").json()

    assert answer["rate_limit_budget"] is None
    assert answer["plain_http"] is True


def test_a_new_url_put_through_the_api_forgets_the_plain_http_route(api):
    from tests.api.test_resources import REGISTRY

    api("admin").put("/api/v1/registries/moved/", REGISTRY, format="json")
    Registry.objects.filter(name="moved").update(plain_http=True)

    answer = api("admin").put(
        "/api/v1/registries/moved/", {**REGISTRY, "url": "elsewhere.example.com"}, format="json"
    )

    assert answer.status_code == 200 and answer.json()["plain_http"] is False
    assert Registry.objects.get(name="moved").plain_http is False
