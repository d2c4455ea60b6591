"""The store API and trust: each version's trust status, and a source's "verified only"
setting hiding through the API what it hides from the store page."""

from __future__ import annotations

import pytest

from charts.models import Chart, ChartSource, ChartVersion, HelmRepository, TrustStatus

pytestmark = pytest.mark.django_db


def store_chart(*, verified_only: bool = False) -> Chart:
    repository = HelmRepository.objects.create(name="stable", url="http://127.0.0.1:9/stable")
    source = ChartSource.objects.create(
        kind="helm", helm_repository=repository, verified_only=verified_only
    )
    chart = Chart.objects.create(
        source=source, name="web", latest_version="1.0.0", latest_trust=TrustStatus.VERIFIED
    )
    ChartVersion.objects.create(
        chart=chart, version="1.0.0", fingerprint="1", trust_status=TrustStatus.VERIFIED,
        trust_key="release-key", trust_method="provenance", trust_detail="Signed by release-key.",
    )  # fmt: skip
    ChartVersion.objects.create(
        chart=chart, version="2.0.0", fingerprint="2", trust_status=TrustStatus.UNSIGNED
    )
    return chart


def test_versions_in_the_api_carry_their_trust_status_and_key(api):
    chart = store_chart()

    listed = api("viewer").get(f"/api/v1/charts/{chart.pk}/versions/").json()["results"]
    one = api("viewer").get(f"/api/v1/charts/{chart.pk}/versions/1.0.0/").json()
    card = api("viewer").get(f"/api/v1/charts/{chart.pk}/").json()

    assert {v["version"]: v["trust_status"] for v in listed} == {
        "1.0.0": "verified",
        "2.0.0": "unsigned",
    }
    assert (one["trust_status"], one["trust_key"], one["trust_method"]) == (
        "verified",
        "release-key",
        "provenance",
    )
    assert card["latest_trust"] == "verified"
