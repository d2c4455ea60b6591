"""cosign signatures as cosign's signature spec describes them, checked with ``cryptography``.

A signature is a layer of a signature manifest: the payload (a "simple signing" JSON
document, media type :data:`SIMPLE_SIGNING_MEDIA_TYPE`) is the layer's blob, the
signature (base64 of an ASN.1 DER ECDSA signature over the payload's SHA-256) is the
layer's annotation :data:`SIGNATURE_ANNOTATION`. The payload names the signed manifest in
``critical.image.docker-manifest-digest``: it must be the chart's own manifest digest, or
a valid signature signs something else.

Where signature manifests are found (the referrers API, the referrers tag schema, the
``sha256-<hex>.sig`` tag) is :mod:`trust.check`'s business; no network here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
# The artifactType of a signature manifest cosign attaches with OCI 1.1 referrers.
SIGNATURE_ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
# cosign v3's default: a Sigstore bundle (certificate or key, transparency log entry).
SIGSTORE_BUNDLE_ARTIFACT_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
SIGSTORE_BUNDLE_PREFIX = "application/vnd.dev.sigstore.bundle"
MAX_PAYLOAD_BYTES = 64 * 1024


class CosignError(Exception):
    """A key or signature Wharf cannot use; the message says why."""


def load_public_key(pem: str) -> ec.EllipticCurvePublicKey:
    """An ECDSA P-256 public key from PEM, or :class:`CosignError` saying what is wrong."""
    text = (pem or "").strip()
    if "PRIVATE KEY" in text:
        raise CosignError(
            "This is a private key: paste the public key (cosign.pub), never the private one."
        )
    if "-----BEGIN PUBLIC KEY-----" not in text:
        raise CosignError(
            "This is not a PEM public key: paste it including the -----BEGIN PUBLIC KEY----- "
            "and -----END PUBLIC KEY----- lines."
        )
    try:
        key = serialization.load_pem_public_key(text.encode())
    except (ValueError, TypeError):
        raise CosignError(
            "The public key could not be read: check that the whole PEM block was pasted."
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CosignError(
            "Only ECDSA P-256 public keys are supported for cosign (cosign generate-key-pair "
            "makes one)."
        )
    return key


def public_key_id(pem: str) -> str:
    """The key's id: SHA-256 (hex) of its DER SubjectPublicKeyInfo."""
    key = load_public_key(pem)
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class CosignSignature:
    """One signature as found in a registry: the payload bytes and the base64 signature."""

    payload: bytes
    signature: str

    def as_evidence(self) -> dict:
        return {"payload": base64.b64encode(self.payload).decode(), "signature": self.signature}

    @classmethod
    def from_evidence(cls, data: dict) -> CosignSignature:
        return cls(base64.b64decode(data.get("payload") or ""), str(data.get("signature") or ""))


def signed_digest(payload: bytes) -> str:
    """``critical.image.docker-manifest-digest`` of a simple-signing payload ("" if none)."""
    try:
        doc = json.loads(payload)
    except ValueError:
        return ""
    critical = doc.get("critical") if isinstance(doc, dict) else None
    image = critical.get("image") if isinstance(critical, dict) else None
    if not isinstance(image, dict):
        return ""
    # The spec's own example spells it "Docker-manifest-digest"; cosign writes lower case.
    for key, value in image.items():
        if isinstance(key, str) and key.lower() == "docker-manifest-digest":
            return value if isinstance(value, str) else ""
    return ""


def signature_valid(key: ec.EllipticCurvePublicKey, sig: CosignSignature) -> bool:
    try:
        raw = base64.b64decode(sig.signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        key.verify(raw, sig.payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class CosignVerdict:
    """``verified`` (by ``key_name``), ``signed-unverified`` or ``failed``, with ``detail``."""

    status: str
    detail: str
    key_name: str = ""
    key_id: str = ""


def judge(
    signatures: Sequence[CosignSignature],
    manifest_digest: str,
    keys: Sequence[tuple[str, str]],
) -> CosignVerdict:
    """Judge the signatures of one manifest against ``keys`` (name, PEM).

    Verified if one signature verifies with a key and names this manifest; failed if a
    signature verifies but names another manifest (a signature moved onto this chart);
    otherwise signed but not verified (no configured key made them).
    """
    loaded = []
    for name, pem in keys:
        try:
            loaded.append((name, public_key_id(pem), load_public_key(pem)))
        except CosignError:
            continue  # refused when saved; a key that stopped loading verifies nothing
    moved = ""
    for sig in signatures:
        for name, key_id, key in loaded:
            if not signature_valid(key, sig):
                continue
            digest = signed_digest(sig.payload)
            if digest == manifest_digest:
                return CosignVerdict(
                    "verified", f"cosign signature by “{name}”.", key_name=name, key_id=key_id
                )
            moved = (
                f"A cosign signature by “{name}” signs {digest or 'no manifest digest'}, "
                f"not this chart's manifest {manifest_digest}."
            )
    if moved:
        return CosignVerdict("failed", moved)
    count = len(signatures)
    return CosignVerdict(
        "signed-unverified",
        f"{count} cosign signature{'s' if count != 1 else ''}, made by no configured cosign key.",
    )
