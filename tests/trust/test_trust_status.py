"""Trust status per chart version: kept signature material judged again only when keys
change (and only for the versions a key concerns), shown on the store card, the chart page
and its version list, the store's "verified only" filter, and a source's setting that
hides unverified versions from the store."""

from __future__ import annotations

import base64
import hashlib

import pytest
from django.urls import reverse
from django.utils import timezone

from charts.models import Chart, ChartSource, ChartVersion, HelmRepository
from charts.sync.writer import refresh_charts
from tests.chartkit import make_chart_archive
from trust import check
from trust.models import SigningKey

pytestmark = pytest.mark.django_db

# Nothing answers here: a check that tried to read this source would fail and retry later.
UNREACHABLE = "http://127.0.0.1:9/charts"


@pytest.fixture
def source() -> ChartSource:
    repository = HelmRepository.objects.create(name="team", url=UNREACHABLE, tls_mode="insecure")
    return ChartSource.objects.create(kind="helm", helm_repository=repository)


def signed_version(source, signer, name: str, version: str = "1.0.0") -> ChartVersion:
    """A version indexed earlier whose provenance (by ``signer``) was read by a first check
    made with no key configured: signed, not verified, its evidence kept."""
    archive = make_chart_archive(name, version)
    file_name = f"{name}-{version}.tgz"
    chart, _ = Chart.objects.get_or_create(source=source, name=name)
    row = ChartVersion.objects.create(
        chart=chart,
        version=version,
        fingerprint=f"fp-{name}-{version}",
        archive_url=f"{UNREACHABLE}/{file_name}",
    )
    evidence = check.Evidence(
        fingerprint=row.fingerprint,
        provenance=signer.provenance(archive, file_name),
        archive_sha256=hashlib.sha256(archive).hexdigest(),
        file_name=file_name,
    )
    ChartVersion.objects.filter(pk=row.pk).update(trust_evidence=evidence.as_json())
    row.refresh_from_db()
    check.check_version(row)
    refresh_charts([chart.pk])
    row.refresh_from_db()
    return row


def add_key(signer, name: str) -> SigningKey:
    key = SigningKey(name=name, kind=SigningKey.Kind.OPENPGP, public_key=signer.public_armored)
    key.full_clean()
    key.save()
    return key


def test_adding_a_key_rechecks_only_the_versions_whose_signature_names_it(
    source, release_signer, stranger_signer, broker, django_capture_on_commit_callbacks
):
    ours = signed_version(source, release_signer, "ours")
    theirs = signed_version(source, stranger_signer, "theirs")
    assert (ours.trust_status, theirs.trust_status) == ("signed-unverified",) * 2

    with django_capture_on_commit_callbacks(execute=True):
        add_key(release_signer, "release")

    ours.refresh_from_db()
    theirs.refresh_from_db()
    assert ours.trust_checked_at is None  # due again
    assert theirs.trust_checked_at is not None  # untouched: another key signed it
    assert broker.sent("trust.tasks.check_chart_trust")
    broker.run_all()
    ours.refresh_from_db()
    assert (ours.trust_status, ours.trust_key) == ("verified", "release")
    assert ours.trust_retry_at is None  # judged from what was kept: the source was not read
    assert Chart.objects.get(name="ours").latest_trust == "verified"


def test_removing_a_key_makes_what_it_verified_signed_but_unverified(
    source, release_signer, broker, django_capture_on_commit_callbacks
):
    key = add_key(release_signer, "release")
    version = signed_version(source, release_signer, "ours")
    assert version.trust_status == "verified"

    with django_capture_on_commit_callbacks(execute=True):
        key.delete()
    broker.run_all()

    version.refresh_from_db()
    assert version.trust_status == "signed-unverified"
    assert release_signer.key_id in version.trust_detail


def test_a_version_changed_upstream_loses_its_verdict_and_evidence(source, release_signer):
    from charts.sync.writer import VersionData, VersionWriter

    add_key(release_signer, "release")
    version = signed_version(source, release_signer, "ours")

    class Progress:
        def save(self, **kwargs):
            pass

    writer = VersionWriter(source, Progress())
    writer.add(VersionData(chart="ours", version="1.0.0", fingerprint="changed", metadata={}))
    writer.flush()

    version.refresh_from_db()
    assert (version.trust_status, version.trust_evidence, version.trust_checked_at) == (
        "",
        {},
        None,
    )


def test_a_source_that_cannot_be_read_leaves_the_version_unchecked_and_retries_later(source):
    chart = Chart.objects.create(source=source, name="web", latest_version="1.0.0")
    version = ChartVersion.objects.create(
        chart=chart, version="1.0.0", fingerprint="1", archive_url=f"{UNREACHABLE}/web-1.0.0.tgz"
    )

    assert check.check_version(version) is None

    version.refresh_from_db()
    assert version.trust_status == "" and version.trust_checked_at is None
    assert version.trust_retry_at > timezone.now()
    assert "could not be read" in version.trust_detail
    assert not check.pending_versions().filter(pk=version.pk).exists()


# --- what the pages show ------------------------------------------------------------------


def test_the_store_card_chart_page_and_version_list_show_the_trust_status(
    source, user_client, release_signer, stranger_signer
):
    add_key(release_signer, "release")
    signed_version(source, release_signer, "web", "1.0.0")
    signed_version(source, stranger_signer, "web", "0.9.0")
    chart = Chart.objects.get(name="web")

    store = user_client.get(reverse("charts:chart_list")).content.decode()
    page = user_client.get(reverse("charts:chart_detail", args=[chart.pk])).content.decode()
    older = user_client.get(
        reverse("charts:chart_detail", args=[chart.pk]), {"version": "0.9.0"}
    ).content.decode()

    assert 'data-status="verified"' in store
    assert "Helm provenance signed by “release”" in page
    assert page.count('data-status="verified"') >= 2  # the header and the 1.0.0 row
    assert 'data-status="signed-unverified"' in page  # the 0.9.0 row
    assert stranger_signer.key_id in older


def test_the_store_filter_verified_only_shows_only_charts_whose_latest_version_is_verified(
    source, user_client, release_signer, stranger_signer
):
    add_key(release_signer, "release")
    signed_version(source, release_signer, "trusted")
    signed_version(source, stranger_signer, "unknown")
    Chart.objects.create(source=source, name="plain", latest_version="1.0.0")

    every = user_client.get(reverse("charts:chart_list")).content.decode()
    verified = user_client.get(reverse("charts:chart_list"), {"verified": "1"}).content.decode()
    searched = user_client.get(
        reverse("charts:chart_list"), {"verified": "1", "q": "unknown"}
    ).content.decode()

    assert all(f'data-chart="{n}"' in every for n in ("trusted", "unknown", "plain"))
    assert 'data-chart="trusted"' in verified
    assert 'data-chart="unknown"' not in verified and 'data-chart="plain"' not in verified
    assert 'data-chart="unknown"' not in searched and "No verified chart matches" in searched


def test_a_source_set_to_verified_only_hides_its_unverified_versions_from_the_store(
    source, admin_client, user_client, release_signer, stranger_signer
):
    add_key(release_signer, "release")
    signed_version(source, release_signer, "web", "1.0.0")
    signed_version(source, stranger_signer, "web", "2.0.0")
    signed_version(source, stranger_signer, "other", "1.0.0")
    chart = Chart.objects.get(name="web")
    assert chart.latest_version == "2.0.0"

    response = admin_client.post(
        reverse("charts:chartsource_trust", args=[source.pk]), {"verified_only": "1"}
    )

    assert response.status_code == 302
    chart.refresh_from_db()
    assert (chart.latest_version, chart.latest_trust) == ("1.0.0", "verified")
    page = user_client.get(reverse("charts:chart_detail", args=[chart.pk])).content.decode()
    assert 'data-version="1.0.0"' in page and 'data-version="2.0.0"' not in page
    store = user_client.get(reverse("charts:chart_list")).content.decode()
    assert 'data-chart="web"' in store and 'data-chart="other"' not in store
    detail = admin_client.get(reverse("charts:chartsource_detail", args=[source.pk]))
    assert "1 verified" in detail.content.decode()


def test_the_evidence_keeps_the_provenance_bytes_as_read(source, release_signer):
    version = signed_version(source, release_signer, "web")

    kept = base64.b64decode(version.trust_evidence["provenance"])

    assert kept.startswith(b"-----BEGIN PGP SIGNED MESSAGE-----")


def test_a_version_one_worker_claimed_is_passed_by_the_others(source):
    chart = Chart.objects.create(source=source, name="web", latest_version="1.0.0")
    version = ChartVersion.objects.create(chart=chart, version="1.0.0", fingerprint="1")

    assert check.claim(version.pk)
    assert not check.claim(version.pk)  # the second worker
    assert check.check_pending() == 0  # nothing left that is free
    assert check.claim(version.pk, now=timezone.now() + check.CLAIM * 2)  # a dead worker's lapses
