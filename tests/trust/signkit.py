"""Signing kit for the trust tests: real OpenPGP keys and Helm provenance files made with
Debian's ``gpg``, and cosign signature artifacts built as cosign's signature spec says.

Plain functions and classes, no fixtures (those are in ``tests/trust/conftest.py``).

- :class:`GpgSigner` is one key in its own temporary GnuPG home: ``public_armored``,
  ``public_keyring`` (a binary keyring file, what ``helm verify --keyring`` takes), and
  :meth:`GpgSigner.provenance`, a ``.prov`` in Helm's format (Chart.yaml, ``...``, the
  ``files:`` block) clear-signed by ``gpg`` with SHA-512, as ``helm package --sign`` does.
- :class:`CosignKey` is an ECDSA P-256 key pair; :func:`simple_signing_payload` and
  :func:`push_cosign_signature` push a signature manifest with the payload as its layer
  and the signature as the layer's ``dev.cosignproject.cosign/signature`` annotation, at
  the ``sha256-<hex>.sig`` tag, or (``subject``) as an OCI 1.1 referrer listed in the
  referrers tag schema's index (``sha256-<hex>``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.chartkit import chart_yaml_of, sha256_digest
from tests.servers.base import require_tool

GPG_TIMEOUT = 60


class GpgSigner:
    """One RSA signing key in a temporary GnuPG home (removed by :meth:`close`).

    ``created`` and ``expires`` (gpg's forms: ``20200101T000000``, ``1d``) make a key in
    the past, e.g. one that expired long ago; signatures are then made at ``created``.
    """

    def __init__(
        self, uid: str, *, created: str = "", expires: str = "never", subkey: bool = False
    ) -> None:
        self.gpg = require_tool("gpg")
        self.uid = uid
        self.home = Path(tempfile.mkdtemp(prefix="wharf-test-gnupg-"))
        self.home.chmod(0o700)
        (self.home / "common.conf").write_text("")
        self.faked = [f"--faked-system-time={created}!"] if created else []
        self._run("--quick-gen-key", uid, "rsa2048", "sign", expires)
        listing = self._run("--list-keys", "--with-colons", uid).stdout.decode()
        self.fingerprint = next(
            line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
        )
        self.key_id = self.fingerprint[-16:]
        self.signing_key_id = self.key_id
        if subkey:  # a signing subkey: gpg signs with it, and the signature names it
            self._run("--quick-add-key", self.fingerprint, "rsa2048", "sign", expires)
            listing = self._run("--list-keys", "--with-colons", uid).stdout.decode()
            self.signing_key_id = [
                line.split(":")[4] for line in listing.splitlines() if line.startswith("sub:")
            ][-1]

    def _run(self, *args: str, data: bytes | None = None) -> subprocess.CompletedProcess:
        argv = [
            self.gpg,
            "--homedir",
            str(self.home),
            "--batch",
            "--yes",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            *self.faked,
            *args,
        ]
        return subprocess.run(
            argv, input=data, capture_output=True, check=True, timeout=GPG_TIMEOUT
        )

    @property
    def public_armored(self) -> str:
        return self._run("--armor", "--export", self.fingerprint).stdout.decode()

    def public_keyring(self, directory: Path) -> Path:
        """The public key as a binary keyring file, for Helm's ``verify``."""
        path = directory / f"{self.key_id}.gpg"
        path.write_bytes(self._run("--export", self.fingerprint).stdout)
        return path

    def clearsign(self, text: bytes) -> bytes:
        return self._run(
            "--local-user", self.fingerprint, "--digest-algo", "SHA512", "--clearsign", data=text
        ).stdout

    def provenance(self, archive: bytes, file_name: str, *, listed_sha256: str = "") -> bytes:
        """A ``.prov`` for ``archive`` named ``file_name``, in Helm's format."""
        return self.clearsign(provenance_text(archive, file_name, listed_sha256=listed_sha256))

    def close(self) -> None:
        subprocess.run(
            ["gpgconf", "--homedir", str(self.home), "--kill", "all"],
            capture_output=True,
            timeout=GPG_TIMEOUT,
            check=False,
        )
        shutil.rmtree(self.home, ignore_errors=True)


def provenance_text(archive: bytes, file_name: str, *, listed_sha256: str = "") -> bytes:
    """Helm's signed block: Chart.yaml's metadata, ``...``, and the ``files:`` hashes."""
    meta = yaml.safe_dump(chart_yaml_of(archive), sort_keys=True)
    digest = listed_sha256 or hashlib.sha256(archive).hexdigest()
    files = yaml.safe_dump({"files": {file_name: f"sha256:{digest}"}})
    return f"{meta}\n...\n{files}".encode()


# --- cosign -------------------------------------------------------------------------------

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIG_ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"


class CosignKey:
    """An ECDSA P-256 key pair, as ``cosign generate-key-pair`` makes one."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())

    @property
    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def sign(self, payload: bytes) -> str:
        return base64.b64encode(self.private.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()


def simple_signing_payload(manifest_digest: str, reference: str = "") -> bytes:
    """The payload cosign signs: ``critical.image.docker-manifest-digest`` names the image."""
    doc = {
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": manifest_digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def signature_manifest(pusher, repository: str, payload: bytes, signature: str, *, subject=None):
    """Push the payload blob and an empty config; return the signature manifest's bytes."""
    config = b"{}"
    pusher.push_blob(repository, config)
    pusher.push_blob(repository, payload)
    manifest: dict = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": EMPTY_CONFIG if subject else "application/vnd.oci.image.config.v1+json",
            "digest": sha256_digest(config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": SIMPLE_SIGNING,
                "digest": sha256_digest(payload),
                "size": len(payload),
                "annotations": {SIGNATURE_ANNOTATION: signature},
            }
        ],
    }
    if subject:
        manifest["artifactType"] = SIG_ARTIFACT_TYPE
        manifest["subject"] = subject
    return json.dumps(manifest, separators=(",", ":")).encode()


def push_cosign_signature(
    pusher, repository: str, manifest_digest: str, key: CosignKey, *, signs: str = ""
) -> str:
    """A classic cosign signature of ``manifest_digest`` at its ``sha256-<hex>.sig`` tag;
    ``signs`` puts another digest in the payload (a signature moved onto this chart)."""
    payload = simple_signing_payload(signs or manifest_digest)
    body = signature_manifest(pusher, repository, payload, key.sign(payload))
    tag = manifest_digest.replace(":", "-") + ".sig"
    return pusher.push_raw_manifest(repository, tag, body, OCI_MANIFEST)


def push_referrer_signature(
    pusher, repository: str, manifest_digest: str, manifest_size: int, key: CosignKey
) -> dict:
    """A cosign signature as an OCI 1.1 referrer (``subject`` = the chart's manifest),
    listed in the referrers tag schema's index (tag ``sha256-<hex>``), as a client
    pushing to a registry without the referrers API must; returns its descriptor."""
    payload = simple_signing_payload(manifest_digest)
    subject = {"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": manifest_size}
    body = signature_manifest(pusher, repository, payload, key.sign(payload), subject=subject)
    digest = pusher.push_raw_manifest(repository, sha256_digest(body), body, OCI_MANIFEST)
    descriptor = {
        "mediaType": OCI_MANIFEST,
        "digest": digest,
        "size": len(body),
        "artifactType": SIG_ARTIFACT_TYPE,
    }
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor]}
    pusher.push_raw_manifest(
        repository,
        manifest_digest.replace(":", "-"),
        json.dumps(index, separators=(",", ":")).encode(),
        OCI_INDEX,
    )
    return descriptor
