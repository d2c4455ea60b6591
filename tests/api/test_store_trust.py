"""The store API and trust: each version's trust status, and a source's "verified only"
setting hiding through the API (and the files fragment) what it hides from the store page."""

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


def test_a_verified_only_source_shows_no_unverified_version_through_the_api(api):
    chart = store_chart(verified_only=True)

    listed = api("viewer").get(f"/api/v1/charts/{chart.pk}/versions/").json()["results"]
    hidden = api("viewer").get(f"/api/v1/charts/{chart.pk}/versions/2.0.0/")

    assert [v["version"] for v in listed] == ["1.0.0"]
    assert hidden.status_code == 404


def test_a_verified_only_source_shows_no_files_of_an_unverified_version_on_the_page(
    user_client,
):
    chart = store_chart(verified_only=True)
    hidden = chart.versions.get(version="2.0.0")
    ChartVersion.objects.filter(pk=hidden.pk).update(values_yaml="hidden: true")

    response = user_client.get(f"/charts/{chart.pk}/versions/{hidden.pk}/files/")

    assert response.status_code == 404


def test_the_store_api_filters_charts_whose_latest_version_is_verified(api):
    chart = store_chart()
    Chart.objects.create(source=chart.source, name="db", latest_version="1.0.0")

    found = api("viewer").get("/api/v1/charts/", {"verified": "true"}).json()["results"]

    assert [c["name"] for c in found] == ["web"]


def test_a_sources_verified_only_setting_and_discovery_state_are_read_with_it(api):
    chart = store_chart(verified_only=True)

    source = api("operator").get(f"/api/v1/chart-sources/{chart.source.pk}/").json()

    assert source["verified_only"] is True
    assert (source["discovered"], source["vanished_at"]) == (False, None)


def test_read_now_on_the_values_comparison_does_not_reach_a_hidden_version(user_client):
    chart = store_chart(verified_only=True)

    response = user_client.post(
        f"/charts/{chart.pk}/values-diff/", {"version": "2.0.0"}, follow=True
    )

    assert "not in the store" in response.content.decode()
    assert chart.versions.get(version="2.0.0").files_requested_at is None
