"""Helm provenance files, judged as ``helm verify`` judges them.

A ``.prov`` file is an OpenPGP clear-signed text: the chart's Chart.yaml, a line ``...``,
then a YAML block ``files:`` mapping the archive's file name to ``sha256:<hex>``. Helm
verifies, in this order: a valid signature by a key of its keyring over the signed text,
then that the block lists the archive's file name with the archive's SHA-256. Wharf does
the same, with the configured OpenPGP keys as the keyring; only what the signature covers
is read (the signed text as ``gpg`` extracted it), never the file around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from trust import openpgp

MAX_PROVENANCE_BYTES = 1024 * 1024
SIGNED_MESSAGE = b"-----BEGIN PGP SIGNED MESSAGE-----"
SIGNATURE_END = b"-----END PGP SIGNATURE-----"

VERIFIED = "verified"
SIGNED_UNVERIFIED = "signed-unverified"
UNSIGNED = "unsigned"
FAILED = "failed"


@dataclass(frozen=True)
class ConfiguredKey:
    """An OpenPGP key as the check needs it: its name, fingerprint, ids and armored text."""

    name: str
    fingerprint: str
    key_ids: tuple[str, ...]
    armored: str

    def names(self, key_id: str) -> bool:
        key_id = key_id.upper()
        return bool(key_id) and (key_id in self.key_ids or self.fingerprint.endswith(key_id))


@dataclass(frozen=True)
class ProvenanceVerdict:
    status: str
    detail: str
    # The key id the signature names (the signing key or subkey), when it names one.
    signer: str = ""
    key_name: str = ""


def clearsigned_block(data: bytes) -> bytes | None:
    """The first clear-signed block of ``data``, from its ``BEGIN PGP SIGNED MESSAGE`` line
    to its signature's ``END PGP SIGNATURE`` line, as Helm's clearsign decoder takes it:
    gpg sees only that block, not what a file may carry around it."""
    start = data.find(SIGNED_MESSAGE)
    if start < 0:
        return None
    end = data.find(SIGNATURE_END, start)
    if end < 0:
        return None
    return data[start : end + len(SIGNATURE_END)] + b"\n"


def files_block(signed_text: bytes) -> dict[str, str]:
    """The ``files:`` map of a provenance's signed text (Helm's parseMessageBlock)."""
    parts = signed_text.split(b"\n...\n")
    if len(parts) < 2:
        raise ValueError("the signed text has no “...” line before the files block")
    try:
        sums = yaml.safe_load(parts[1].decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValueError(f"the files block is not YAML ({exc.__class__.__name__})") from None
    files = sums.get("files") if isinstance(sums, dict) else None
    if not isinstance(files, dict):
        return {}
    return {str(k): str(v) for k, v in files.items()}


def judge(
    provenance: bytes,
    *,
    archive_sha256: str,
    file_name: str,
    keys: Sequence[ConfiguredKey],
) -> ProvenanceVerdict:
    """The verdict on one provenance file for the archive ``file_name`` of that SHA-256."""
    if len(provenance) > MAX_PROVENANCE_BYTES:
        return ProvenanceVerdict(FAILED, "The provenance file is larger than 1 MiB.")
    block = clearsigned_block(provenance)
    if block is None:
        return ProvenanceVerdict(FAILED, "The provenance file holds no OpenPGP signed message.")
    try:
        sig = openpgp.verify_clearsigned(block, [k.armored for k in keys])
    except openpgp.OpenPgpError as exc:
        return ProvenanceVerdict(FAILED, f"The provenance could not be checked: {exc}")
    signer = sig.key_id
    key = next((k for k in keys if k.names(signer) or k.fingerprint == sig.fingerprint), None)
    if sig.status == "no-key":
        return ProvenanceVerdict(
            SIGNED_UNVERIFIED,
            f"Signed with OpenPGP key {signer or '(unnamed)'}, which is not a configured "
            "signing key.",
            signer=signer,
        )
    if sig.status == "bad":
        return ProvenanceVerdict(
            FAILED,
            f"The provenance signature by {signer} does not match its text: the provenance "
            "was changed after it was signed.",
            signer=signer,
        )
    if sig.status in ("expired-key", "revoked-key"):
        state = "has expired" if sig.status == "expired-key" else "was revoked"
        name = f"“{key.name}”" if key else signer
        return ProvenanceVerdict(FAILED, f"Signed by {name}, but that key {state}.", signer=signer)
    if sig.status != "good" or key is None:
        return ProvenanceVerdict(
            FAILED, "The provenance's OpenPGP signature could not be read.", signer=signer
        )
    try:
        files = files_block(sig.signed_text)
    except ValueError as exc:
        return ProvenanceVerdict(FAILED, f"The provenance is malformed: {exc}.", signer=signer)
    listed = files.get(file_name)
    actual = "sha256:" + archive_sha256.removeprefix("sha256:")
    if listed is None:
        return ProvenanceVerdict(
            FAILED,
            f"The provenance, signed by “{key.name}”, lists no file named {file_name}.",
            signer=signer,
        )
    if listed != actual:
        return ProvenanceVerdict(
            FAILED,
            f"The chart archive does not match its provenance: it lists {listed} for "
            f"{file_name}, the archive is {actual}.",
            signer=signer,
        )
    return ProvenanceVerdict(
        VERIFIED, f"Helm provenance signed by “{key.name}”.", signer=signer, key_name=key.name
    )
