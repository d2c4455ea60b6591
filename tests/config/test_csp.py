"""The Content-Security-Policy: strict everywhere, chart icons from their own sources only."""

import pytest
from django.http import HttpResponse
from django.urls import reverse

from charts.models import ChartSource, HelmRepository
from config import csp

pytestmark = pytest.mark.django_db


def directive(response, name: str) -> list[str]:
    for part in response["Content-Security-Policy"].split(";"):
        words = part.split()
        if words and words[0] == name:
            return words[1:]
    raise AssertionError(f"no {name} in the policy")


def test_static_files_carry_the_policy_too(client):
    response = client.get("/static/wharf.css")
    assert directive(response, "default-src") == ["'self'"]


def test_chart_store_allows_icons_from_each_active_sources_own_host_only(user_client):
    repo = HelmRepository.objects.create(name="team", url="https://charts.example.com:8443/team")
    ChartSource.objects.create(kind="helm", helm_repository=repo)
    off = HelmRepository.objects.create(name="off", url="https://off.example.com/", active=False)
    ChartSource.objects.create(kind="helm", helm_repository=off)

    images = directive(user_client.get(reverse("charts:chart_list")), "img-src")

    assert images == [
        "'self'",
        "data:",
        "https://charts.example.com:8443",
        "http://charts.example.com:8443",
    ]
    assert directive(user_client.get(reverse("home")), "img-src") == ["'self'", "data:"]


@pytest.mark.parametrize(
    "hostile",
    ["https://x.example; script-src *", "'unsafe-inline'", "*", "javascript://x", "https://a b"],
)
def test_an_origin_that_is_not_a_plain_origin_never_reaches_the_policy(hostile):
    response = csp.allow(HttpResponse(), "img-src", [hostile])
    policy = csp.policy_for(response)
    assert hostile not in policy
    assert "img-src 'self' data:;" in policy
