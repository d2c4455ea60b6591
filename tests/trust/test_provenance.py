"""Helm provenance, judged as ``helm verify`` judges it, with Helm itself as the reference.

Every ``.prov`` here is made by Debian's real ``gpg`` in Helm's format (tests/trust/
signkit.py). For each case Helm v4's own Go SDK (``helm-python-sdk``) verifies the archive
with a keyring holding the configured key, and Wharf's verdict must be the same: Helm
accepts exactly what Wharf calls verified. Then the same files are read where Helm keeps
them: ``<archive URL>.prov`` beside the archive in a Helm repository (nginx), and the
provenance layer ``helm push`` writes into an OCI registry.
"""

from __future__ import annotations

import hashlib

import pytest

from charts.models import Chart, ChartVersion
from tests.chartkit import helm_index, make_chart_archive
from tests.charts.helpers import helm_source, oci_registry, source_of, sync, unique
from tests.servers.base import service_unavailable
from trust import provenance
from trust.check import check_pending
from trust.models import SigningKey

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="session")
def helm():
    try:
        import helm_python
    except ImportError:  # the dev extras install it
        service_unavailable("helm-python-sdk is not installed (pip install -e '.[dev]')")
    return helm_python


def configured(signer, name: str) -> provenance.ConfiguredKey:
    return provenance.ConfiguredKey(
        name, signer.fingerprint, (signer.key_id,), signer.public_armored
    )


def helm_verifies(
    helm, tmp_path, archive: bytes, prov: bytes, keyring, file_name="demo-1.0.0.tgz"
) -> bool:
    chart = tmp_path / file_name
    chart.write_bytes(archive)
    (tmp_path / f"{file_name}.prov").write_bytes(prov)
    try:
        helm.verify(str(chart), str(keyring))
    except Exception:  # Helm's refusal, whatever its reason
        return False
    return True


def case(name, release_signer, stranger_signer, expired_signer):
    """(archive, provenance, the configured key) for one case."""
    archive = make_chart_archive("demo", "1.0.0")
    file_name = "demo-1.0.0.tgz"
    if name == "right key":
        return archive, release_signer.provenance(archive, file_name), release_signer
    if name == "wrong key":
        return archive, stranger_signer.provenance(archive, file_name), release_signer
    if name == "tampered archive":
        prov = release_signer.provenance(archive, file_name)
        return make_chart_archive("demo", "1.0.0", values="x: 1\n"), prov, release_signer
    if name == "tampered provenance":
        prov = release_signer.provenance(archive, file_name)
        return archive, prov.replace(b"name: demo", b"name: dem0"), release_signer
    if name == "expired key":
        return archive, expired_signer.provenance(archive, file_name), expired_signer
    if name == "archive under another name":
        return archive, release_signer.provenance(archive, "other-1.0.0.tgz"), release_signer
    raise AssertionError(name)


EXPECTED = {
    "right key": "verified",
    "wrong key": "signed-unverified",
    "tampered archive": "failed",
    "tampered provenance": "failed",
    "expired key": "failed",
    "archive under another name": "failed",
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_wharf_verifies_exactly_what_helm_verifies(
    name, helm, tmp_path, release_signer, stranger_signer, expired_signer
):
    archive, prov, key = case(name, release_signer, stranger_signer, expired_signer)

    helm_says = helm_verifies(helm, tmp_path, archive, prov, key.public_keyring(tmp_path))
    verdict = provenance.judge(
        prov,
        archive_sha256=hashlib.sha256(archive).hexdigest(),
        file_name="demo-1.0.0.tgz",
        keys=[configured(key, "release")],
    )

    assert (verdict.status == "verified") == helm_says, verdict
    assert verdict.status == EXPECTED[name], verdict.detail


def test_a_signature_by_an_unknown_key_names_that_key(release_signer, stranger_signer):
    archive = make_chart_archive("demo", "1.0.0")
    prov = stranger_signer.provenance(archive, "demo-1.0.0.tgz")

    verdict = provenance.judge(
        prov,
        archive_sha256=hashlib.sha256(archive).hexdigest(),
        file_name="demo-1.0.0.tgz",
        keys=[configured(release_signer, "release")],
    )

    assert verdict.signer == stranger_signer.key_id
    assert stranger_signer.key_id in verdict.detail


def test_text_outside_the_signed_block_is_not_believed(release_signer):
    """A files block appended after the signature is not what the key signed."""
    archive = make_chart_archive("demo", "1.0.0")
    honest = release_signer.provenance(archive, "demo-1.0.0.tgz", listed_sha256="0" * 64)
    forged = (
        honest
        + b"\n...\nfiles:\n  demo-1.0.0.tgz: sha256:"
        + hashlib.sha256(archive).hexdigest().encode()
    )

    verdict = provenance.judge(
        forged,
        archive_sha256=hashlib.sha256(archive).hexdigest(),
        file_name="demo-1.0.0.tgz",
        keys=[configured(release_signer, "release")],
    )

    assert verdict.status == "failed"


# --- where the provenance lives ----------------------------------------------------------


def add_key(signer, name="release") -> SigningKey:
    key = SigningKey(name=name, kind=SigningKey.Kind.OPENPGP, public_key=signer.public_armored)
    key.full_clean()
    key.save()
    return key


def test_a_helm_repository_chart_with_its_prov_beside_it_is_verified_in_the_background(
    helm_repo, helm, tmp_path, release_signer, broker, django_capture_on_commit_callbacks
):
    add_key(release_signer)
    signed = make_chart_archive("signed", "1.0.0")
    plain = make_chart_archive("plain", "1.0.0")
    helm_repo.put("charts/signed-1.0.0.tgz", signed)
    helm_repo.put(
        "charts/signed-1.0.0.tgz.prov", release_signer.provenance(signed, "signed-1.0.0.tgz")
    )
    helm_repo.put("charts/plain-1.0.0.tgz", plain)
    entries = [
        {"name": "signed", "version": "1.0.0", "archive": signed},
        {"name": "plain", "version": "1.0.0", "archive": plain},
    ]
    helm_repo.write_index(helm_index(entries))
    source = helm_source(helm_repo)
    with django_capture_on_commit_callbacks(execute=True):
        sync(source)

    assert broker.sent("trust.tasks.check_chart_trust")  # queued by the sync, not a page
    assert set(ChartVersion.objects.values_list("trust_status", flat=True)) == {""}
    broker.run_all()

    version = ChartVersion.objects.get(chart__name="signed")
    assert (version.trust_status, version.trust_key) == ("verified", "release")
    assert version.trust_signer == release_signer.key_id
    assert Chart.objects.get(name="signed").latest_trust == "verified"
    assert ChartVersion.objects.get(chart__name="plain").trust_status == "unsigned"
    # Helm agrees, on the very files the repository serves.
    assert helm_verifies(
        helm,
        tmp_path,
        signed,
        (helm_repo.root / "charts/signed-1.0.0.tgz.prov").read_bytes(),
        release_signer.public_keyring(tmp_path),
        file_name="signed-1.0.0.tgz",
    )


def test_an_unchanged_version_is_not_checked_again_by_the_next_sync(
    helm_repo, release_signer, broker, django_capture_on_commit_callbacks
):
    add_key(release_signer)
    archive = make_chart_archive("signed", "1.0.0")
    helm_repo.put("charts/signed-1.0.0.tgz", archive)
    helm_repo.put(
        "charts/signed-1.0.0.tgz.prov", release_signer.provenance(archive, "signed-1.0.0.tgz")
    )
    helm_repo.write_index(helm_index([{"name": "signed", "version": "1.0.0", "archive": archive}]))
    source = helm_source(helm_repo)
    with django_capture_on_commit_callbacks(execute=True):
        sync(source)
    broker.run_all()
    reads = len(helm_repo.access_log_lines())

    with django_capture_on_commit_callbacks(execute=True):
        sync(source)
    checked = check_pending()

    assert checked == 0
    prov_reads = [line for line in helm_repo.access_log_lines()[reads:] if ".prov" in line]
    assert prov_reads == []


def test_a_chart_helm_pushed_with_its_provenance_to_a_registry_is_verified(
    chart_registry, helm, tmp_path, release_signer, broker, django_capture_on_commit_callbacks
):
    add_key(release_signer)
    repository = unique("trusted")
    archive = make_chart_archive("signed", "2.0.0")
    path = tmp_path / "signed-2.0.0.tgz"
    path.write_bytes(archive)
    (tmp_path / "signed-2.0.0.tgz.prov").write_bytes(
        release_signer.provenance(archive, "signed-2.0.0.tgz")
    )
    helm.push(str(path), f"oci://{chart_registry.host}/{repository}", plain_http=True)
    registry = oci_registry(chart_registry, [f"{repository}/signed"])
    with django_capture_on_commit_callbacks(execute=True):
        sync(source_of(registry, f"{repository}/signed"))
    broker.run_all()

    version = ChartVersion.objects.get(chart__name="signed")
    assert version.trust_status == "verified", version.trust_detail
    assert "provenance" in version.trust_method


def test_a_signed_message_hidden_after_another_pgp_block_is_judged_alone(release_signer):
    """gpg is given only the clear-signed block (as Helm's decoder takes it), not an
    armored message put before it."""
    archive = make_chart_archive("demo", "1.0.0")
    prov = release_signer.provenance(archive, "demo-1.0.0.tgz")
    noise = b"-----BEGIN PGP MESSAGE-----\n\nnot a message\n-----END PGP MESSAGE-----\n"

    verdict = provenance.judge(
        noise + prov,
        archive_sha256=hashlib.sha256(archive).hexdigest(),
        file_name="demo-1.0.0.tgz",
        keys=[configured(release_signer, "release")],
    )

    assert verdict.status == "verified", verdict.detail


def test_a_signature_by_a_signing_subkey_is_verified_by_its_primary_key(helm, tmp_path):
    from tests.trust.signkit import GpgSigner
    from trust import openpgp

    signer = GpgSigner("Sub Keys <sub@example.com>", subkey=True)
    try:
        archive = make_chart_archive("demo", "1.0.0")
        prov = signer.provenance(archive, "demo-1.0.0.tgz")
        info = openpgp.read_public_key(signer.public_armored)
        key = provenance.ConfiguredKey("sub", info.fingerprint, info.key_ids, signer.public_armored)

        verdict = provenance.judge(
            prov,
            archive_sha256=hashlib.sha256(archive).hexdigest(),
            file_name="demo-1.0.0.tgz",
            keys=[key],
        )
        helm_says = helm_verifies(helm, tmp_path, archive, prov, signer.public_keyring(tmp_path))
    finally:
        signer.close()

    assert signer.signing_key_id != signer.key_id
    assert verdict.status == "verified" and helm_says
    # The signature names the subkey; the configured key's ids include it, so a change of
    # that key re-judges this version.
    assert verdict.signer == signer.signing_key_id.upper()
    assert verdict.signer in info.key_ids
