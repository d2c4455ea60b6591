"""cosign signatures, built exactly as cosign's signature spec describes them (the
simple-signing payload as a layer, the base64 ECDSA P-256 signature in its
``dev.cosignproject.cosign/signature`` annotation) and pushed to the real distribution
registry. Debian's distribution registry (2.8) has no referrers API, so it serves the
classic ``sha256-<hex>.sig`` tag and the referrers tag schema (``sha256-<hex>``) for real;
the referrers API itself is tested against a small local server that answers
``GET /v2/<name>/referrers/<digest>`` as the distribution spec describes."""

from __future__ import annotations

import hashlib
import json

import pytest

from charts.models import Chart, ChartVersion
from registries import oci
from tests.chartkit import make_chart_archive, sha256_digest
from tests.charts.helpers import oci_registry, pusher_for, source_of, sync, unique
from tests.hostile import Answer, RecordingServer
from tests.trust.signkit import (
    OCI_INDEX,
    OCI_MANIFEST,
    push_cosign_signature,
    push_referrer_signature,
    signature_manifest,
    simple_signing_payload,
)
from trust import check
from trust.models import SigningKey

pytestmark = pytest.mark.django_db(transaction=True)


def add_cosign_key(key, name="ci") -> SigningKey:
    row = SigningKey(name=name, kind=SigningKey.Kind.COSIGN, public_key=key.public_pem)
    row.full_clean()
    row.save()
    return row


def pushed_chart(server, name="signed", version="1.0.0"):
    """A chart pushed to ``server``: (repository, manifest digest, manifest size, pusher)."""
    repository = f"{unique('cosign')}/{name}"
    pusher = pusher_for(server)
    digest = pusher.push_chart(repository, version, make_chart_archive(name, version))
    size = len(
        pusher.session.get(
            f"{server.url}/v2/{repository}/manifests/{digest}", headers={"Accept": OCI_MANIFEST}
        ).content
    )
    return repository, digest, size, pusher


def checked(server, repository, broker, capture) -> ChartVersion:
    registry = oci_registry(server, [repository])
    with capture(execute=True):
        sync(source_of(registry, repository))
    broker.run_all()
    return ChartVersion.objects.get()


def test_a_cosign_signature_by_a_configured_key_verifies_the_chart(
    chart_registry, cosign_key, broker, django_capture_on_commit_callbacks
):
    add_cosign_key(cosign_key)
    repository, digest, _, pusher = pushed_chart(chart_registry)
    push_cosign_signature(pusher, repository, digest, cosign_key)

    version = checked(chart_registry, repository, broker, django_capture_on_commit_callbacks)

    assert (version.trust_status, version.trust_key) == ("verified", "ci"), version.trust_detail
    assert version.trust_method == "cosign"
    assert f"tag {digest.replace(':', '-')}.sig" in version.trust_evidence["found_via"]
    assert Chart.objects.get().latest_trust == "verified"


def test_a_cosign_signature_by_another_key_is_signed_but_not_verified(
    chart_registry, cosign_key, other_cosign_key, broker, django_capture_on_commit_callbacks
):
    add_cosign_key(cosign_key)
    repository, digest, _, pusher = pushed_chart(chart_registry)
    push_cosign_signature(pusher, repository, digest, other_cosign_key)

    version = checked(chart_registry, repository, broker, django_capture_on_commit_callbacks)

    assert version.trust_status == "signed-unverified"
    assert "no configured cosign key" in version.trust_detail


def test_a_signature_of_another_manifest_moved_onto_the_chart_fails(
    chart_registry, cosign_key, broker, django_capture_on_commit_callbacks
):
    add_cosign_key(cosign_key)
    repository, digest, _, pusher = pushed_chart(chart_registry)
    elsewhere = sha256_digest(b"another manifest")
    push_cosign_signature(pusher, repository, digest, cosign_key, signs=elsewhere)

    version = checked(chart_registry, repository, broker, django_capture_on_commit_callbacks)

    assert version.trust_status == "failed"
    assert elsewhere in version.trust_detail and digest in version.trust_detail


def test_a_referrer_listed_in_the_referrers_tag_schema_is_found_and_verified(
    chart_registry, cosign_key, broker, django_capture_on_commit_callbacks
):
    add_cosign_key(cosign_key)
    repository, digest, size, pusher = pushed_chart(chart_registry)
    push_referrer_signature(pusher, repository, digest, size, cosign_key)

    version = checked(chart_registry, repository, broker, django_capture_on_commit_callbacks)

    assert version.trust_status == "verified", version.trust_detail
    assert f"referrers tag {digest.replace(':', '-')}" in version.trust_evidence["found_via"]


def test_a_sigstore_bundle_is_reported_signed_but_not_verified_with_the_reason(
    chart_registry, cosign_key, broker, django_capture_on_commit_callbacks
):
    add_cosign_key(cosign_key)
    repository, digest, size, pusher = pushed_chart(chart_registry)
    bundle = json.dumps({"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}).encode()
    pusher.push_blob(repository, b"{}")
    pusher.push_blob(repository, bundle)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": sha256_digest(b"{}"),
            "size": 2,
        },
        "layers": [
            {
                "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "digest": sha256_digest(bundle),
                "size": len(bundle),
            }
        ],
        "subject": {"mediaType": OCI_MANIFEST, "digest": digest, "size": size},
    }
    body = json.dumps(manifest).encode()
    bundle_digest = pusher.push_raw_manifest(repository, sha256_digest(body), body)
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": bundle_digest,
                "size": len(body),
                "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            }
        ],
    }
    pusher.push_raw_manifest(
        repository, digest.replace(":", "-"), json.dumps(index).encode(), OCI_INDEX
    )

    version = checked(chart_registry, repository, broker, django_capture_on_commit_callbacks)

    assert version.trust_status == "signed-unverified"
    assert "Sigstore bundle" in version.trust_detail


def test_a_chart_with_no_signature_is_unsigned(
    chart_registry, cosign_key, broker, django_capture_on_commit_callbacks
):
    add_cosign_key(cosign_key)
    repository, _, _, _ = pushed_chart(chart_registry)

    version = checked(chart_registry, repository, broker, django_capture_on_commit_callbacks)

    assert version.trust_status == "unsigned"


def test_adding_the_cosign_key_later_verifies_without_reading_the_registry_again(
    chart_registry, cosign_key, broker, django_capture_on_commit_callbacks
):
    repository, digest, _, pusher = pushed_chart(chart_registry)
    push_cosign_signature(pusher, repository, digest, cosign_key)
    version = checked(chart_registry, repository, broker, django_capture_on_commit_callbacks)
    assert version.trust_status == "signed-unverified"
    chart_registry.stop()  # nothing can be read from it now
    try:
        with django_capture_on_commit_callbacks(execute=True):
            add_cosign_key(cosign_key)
        broker.run_all()
    finally:
        chart_registry.start()

    version.refresh_from_db()
    assert version.trust_status == "verified", version.trust_detail


# --- the referrers API --------------------------------------------------------------------


def json_answer(doc: dict, media_type: str) -> Answer:
    body = json.dumps(doc, separators=(",", ":")).encode()
    return Answer(
        200, body, {"Content-Type": media_type, "Docker-Content-Digest": sha256_digest(body)}
    )


class BlobStore:
    """What a pusher does, into a route table: the RecordingServer then serves it."""

    def __init__(self, routes: dict, repository: str) -> None:
        self.routes, self.repository = routes, repository

    def push_blob(self, repository: str, data: bytes) -> str:
        digest = sha256_digest(data)
        self.routes[f"/v2/{repository}/blobs/{digest}"] = Answer(200, data)
        return digest


def test_signatures_are_found_through_the_referrers_api_when_the_registry_has_it(
    cosign_key, other_cosign_key
):
    repository = "team/web"
    chart_manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": []}
    chart_body = json.dumps(chart_manifest, separators=(",", ":")).encode()
    digest = sha256_digest(chart_body)
    routes: dict = {
        "/v2/": Answer(200, b"{}"),
        f"/v2/{repository}/manifests/{digest}": Answer(
            200, chart_body, {"Content-Type": OCI_MANIFEST}
        ),
    }
    store = BlobStore(routes, repository)
    descriptors = []
    for key in (other_cosign_key, cosign_key):
        payload = simple_signing_payload(digest)
        body = signature_manifest(
            store,
            repository,
            payload,
            key.sign(payload),
            subject={"mediaType": OCI_MANIFEST, "digest": digest, "size": len(chart_body)},
        )
        routes[f"/v2/{repository}/manifests/{sha256_digest(body)}"] = Answer(
            200, body, {"Content-Type": OCI_MANIFEST}
        )
        descriptors.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": sha256_digest(body),
                "size": len(body),
                "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
            }
        )
    routes[f"/v2/{repository}/referrers/{digest}"] = json_answer(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}, OCI_INDEX
    )

    with RecordingServer(routes) as server:
        registry = oci_registry(server, ["web"], chart_source=False, push_helm=True)
        evidence = check.Evidence(manifest_digest=digest)
        with oci.RegistryClient(registry.connection()) as client:
            check.read_cosign_signatures(client, repository, digest, evidence)
        paths = [seen.path for seen in server.seen]

    assert evidence.found_via == ["referrers API"]
    assert len(evidence.cosign) == 2
    assert f"/v2/{repository}/manifests/{digest.replace(':', '-')}" not in paths  # no fallback
    verdict = check.judge(evidence, check.Keys(cosign=(("ci", cosign_key.public_pem),)))
    assert verdict.status == "verified"


def test_a_payload_whose_signature_bytes_were_changed_does_not_verify(cosign_key):
    from trust import cosign as cosign_module

    payload = simple_signing_payload("sha256:" + "a" * 64)
    signature = cosign_key.sign(payload)
    tampered = payload.replace(
        b"cosign container image signature", b"cosign container image signaturE"
    )

    verdict = cosign_module.judge(
        [cosign_module.CosignSignature(tampered, signature)],
        "sha256:" + "a" * 64,
        [("ci", cosign_key.public_pem)],
    )

    assert verdict.status == "signed-unverified"
    assert hashlib.sha256(tampered).hexdigest() != hashlib.sha256(payload).hexdigest()


def test_a_signature_added_after_the_check_is_found_by_the_next_sync(
    chart_registry, cosign_key, broker, django_capture_on_commit_callbacks
):
    """cosign signs after the push: the chart is unchanged, but its new .sig tag (which the
    sync reads anyway, as a tag that is not a chart) has the version read again."""
    add_cosign_key(cosign_key)
    repository, digest, _, pusher = pushed_chart(chart_registry)
    version = checked(chart_registry, repository, broker, django_capture_on_commit_callbacks)
    assert version.trust_status == "unsigned"

    push_cosign_signature(pusher, repository, digest, cosign_key)
    with django_capture_on_commit_callbacks(execute=True):
        sync(source_of(version.chart.source.registry, repository))
    broker.run_all()

    version.refresh_from_db()
    assert version.trust_status == "verified", version.trust_detail
    # And a sync that sees the same signature tags again changes nothing.
    with django_capture_on_commit_callbacks(execute=True):
        sync(source_of(version.chart.source.registry, repository))
    assert check.pending_versions().count() == 0


def test_a_signature_manifest_of_countless_layers_is_read_only_up_to_a_cap(
    chart_registry, other_cosign_key, broker, django_capture_on_commit_callbacks
):
    repository, digest, _, pusher = pushed_chart(chart_registry)
    payload = simple_signing_payload(digest)
    body = json.loads(signature_manifest(pusher, repository, payload, "x"))
    layer = body["layers"][0]
    body["layers"] = [
        {**layer, "annotations": {layer_key: other_cosign_key.sign(payload + b" " * i)}}
        for i in range(3 * check.MAX_SIGNATURES)
        for layer_key in list(layer["annotations"])
    ]
    tag = digest.replace(":", "-") + ".sig"
    pusher.push_raw_manifest(repository, tag, json.dumps(body).encode(), OCI_MANIFEST)

    version = checked(chart_registry, repository, broker, django_capture_on_commit_callbacks)

    assert version.trust_status == "signed-unverified"
    assert len(version.trust_evidence["cosign"]) == check.MAX_SIGNATURES
