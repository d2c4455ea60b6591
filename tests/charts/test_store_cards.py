"""The Chart Store's cards: what they say about the version they show."""

from __future__ import annotations

import pytest
from django.urls import reverse

from charts.models import ChartSource, HelmRepository
from tests.charts.test_views import make_chart

pytestmark = pytest.mark.django_db


@pytest.fixture
def source():
    repository = HelmRepository.objects.create(name="team", url="https://charts.example.com/t")
    return ChartSource.objects.create(kind="helm", helm_repository=repository)


def card(html: str, name: str) -> str:
    start = html.index(f'data-chart="{name}"')
    return html[start : html.index("</a>", start)]


def test_a_card_whose_version_is_a_pre_release_is_marked_and_a_release_is_not(user_client, source):
    make_chart(source, "beta-only", ["2.0.0-beta.1"])
    make_chart(source, "stable", ["1.0.0"])
    html = user_client.get(reverse("charts:chart_list")).content.decode()
    assert 'data-badge="prerelease"' in card(html, "beta-only")
    assert "pre-release" in card(html, "beta-only")
    assert "pre-release" not in card(html, "stable")
