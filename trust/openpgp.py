"""OpenPGP through Debian's ``gpg`` (python-gnupg): public keys, and clear-signed text.

Every call runs ``gpg`` in a temporary home directory of its own, holding only the keys it
is given, and removed afterwards: no check sees another's keys or the host's keyring, and
nothing is left behind. Each ``gpg`` run has a deadline (:data:`GPG_TIMEOUT`); one that
does not finish in time is killed and reported as an error. No cryptography is done here:
``gpg`` does it, and this module only reads its machine-readable status lines.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import gnupg

GPG_TIMEOUT = 20.0  # seconds for one gpg run; verifying a small text takes milliseconds
MAX_KEY_BYTES = 256 * 1024
PUBLIC_BLOCK = "-----BEGIN PGP PUBLIC KEY BLOCK-----"


class OpenPgpError(Exception):
    """gpg is missing, timed out, or refused a key; the message says what to do."""


@dataclass(frozen=True)
class PublicKeyInfo:
    fingerprint: str  # the primary key's, 40 hex digits (upper case)
    key_ids: tuple[str, ...]  # long ids (16 hex) of the primary key and its subkeys
    user_ids: tuple[str, ...]
    expires_at: datetime | None


class _TimedGPG(gnupg.GPG):
    """python-gnupg's GPG whose every gpg process is killed past :data:`GPG_TIMEOUT`
    (python-gnupg has no timeout of its own: a watchdog ends the process, which closes its
    pipes, so python-gnupg's readers finish)."""

    timed_out = False

    def _collect_output(self, process, result, writer=None, stdin=None):
        def kill() -> None:
            self.timed_out = True
            process.kill()

        watchdog = threading.Timer(GPG_TIMEOUT, kill)
        watchdog.daemon = True
        watchdog.start()
        try:
            return super()._collect_output(process, result, writer, stdin)
        finally:
            watchdog.cancel()


@contextmanager
def _gpg(armored_keys: Sequence[str] = ()) -> Iterator[_TimedGPG]:
    """A gpg in a fresh home directory holding ``armored_keys`` (and nothing else)."""
    with tempfile.TemporaryDirectory(prefix="wharf-gnupg-") as home:
        os.chmod(home, 0o700)
        # GnuPG 2.4 would write "use-keyboxd" into a new home and start a keyboxd daemon
        # for it; an empty common.conf keeps the plain keyring file and no daemon.
        Path(home, "common.conf").write_text("")
        try:
            gpg = _TimedGPG(gnupghome=home)
        except (OSError, ValueError, RuntimeError) as exc:
            raise OpenPgpError(
                f"OpenPGP keys cannot be checked: gpg could not be run ({exc}). Install "
                "GnuPG (Debian: apt-get install gnupg)."
            ) from None
        for armored in armored_keys:
            gpg.import_keys(armored)
        _check_timeout(gpg)
        yield gpg


def _check_timeout(gpg: _TimedGPG) -> None:
    if gpg.timed_out:
        raise OpenPgpError(f"gpg did not answer within {GPG_TIMEOUT:g} s.")


def _expiry(value: str) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value and value.isdigit() else None


def read_public_key(armored: str) -> PublicKeyInfo:
    """Read one ASCII-armored OpenPGP public key; :class:`OpenPgpError` says why not."""
    text = (armored or "").strip()
    if "PRIVATE KEY BLOCK" in text:
        raise OpenPgpError(
            "This is a private key: paste the public key (gpg --armor --export), never the "
            "private one."
        )
    if not text.startswith(PUBLIC_BLOCK):
        raise OpenPgpError(
            "This is not an ASCII-armored OpenPGP public key: paste the output of "
            "gpg --armor --export KEY, from -----BEGIN PGP PUBLIC KEY BLOCK----- to "
            "-----END PGP PUBLIC KEY BLOCK-----."
        )
    if len(text) > MAX_KEY_BYTES:
        raise OpenPgpError(f"The key is larger than {MAX_KEY_BYTES // 1024} KiB.")
    with _gpg([text]) as gpg:
        keys = gpg.list_keys()
        _check_timeout(gpg)
    if not keys:
        raise OpenPgpError(
            "gpg could not read an OpenPGP public key from this text: check that the whole "
            "block was pasted."
        )
    if len(keys) > 1:
        raise OpenPgpError(
            f"This block holds {len(keys)} keys: add each key on its own, with its own name."
        )
    key = keys[0]
    if key.get("trust") in ("r", "e"):
        state = "revoked" if key["trust"] == "r" else "expired"
        raise OpenPgpError(f"This key is {state}: it cannot verify new signatures.")
    ids = [key["keyid"].upper()]
    for sub in key.get("subkeys") or []:
        ids.append(str(sub[0]).upper())
    return PublicKeyInfo(
        fingerprint=key["fingerprint"].upper(),
        key_ids=tuple(dict.fromkeys(ids)),
        user_ids=tuple(key.get("uids") or ()),
        expires_at=_expiry(key.get("expires") or ""),
    )


@dataclass(frozen=True)
class ClearSignature:
    """What gpg made of a clear-signed text.

    ``status``: ``good`` (valid, by a key given), ``no-key`` (by a key not given: ``key_id``
    says which), ``bad`` (the text does not match the signature), ``expired-key``,
    ``revoked-key`` (valid, by a key that has expired or been revoked), or ``invalid`` (no
    signature gpg could read). ``signed_text`` is the text the signature covers, as gpg
    extracted it (only when the signature itself is valid).
    """

    status: str
    key_id: str = ""
    fingerprint: str = ""
    signed_text: bytes = b""
    statuses: tuple[str, ...] = field(default=(), repr=False)


def _status_lines(result: object) -> list[list[str]]:
    lines = []
    for line in (getattr(result, "stderr", "") or "").splitlines():
        if line.startswith("[GNUPG:] "):
            lines.append(line[len("[GNUPG:] ") :].split())
    return lines


def verify_clearsigned(data: bytes, armored_keys: Sequence[str]) -> ClearSignature:
    """Check a clear-signed text with only ``armored_keys`` trusted.

    Read from gpg's status lines (doc/DETAILS of GnuPG): ``GOODSIG``/``VALIDSIG`` for a
    good signature, ``BADSIG`` for a text that was changed, ``NO_PUBKEY``/``ERRSIG`` for an
    unknown key, ``EXPKEYSIG``/``REVKEYSIG`` for a good signature by an expired or revoked key.
    """
    with _gpg(armored_keys) as gpg:
        # decrypt() of a clear-signed text verifies it and writes the signed text out.
        result = gpg.decrypt(data, always_trust=True)
        _check_timeout(gpg)
    lines = _status_lines(result)
    names = tuple(parts[0] for parts in lines if parts)
    key_id = fingerprint = ""
    status = "invalid"
    for parts in lines:
        word, args = parts[0], parts[1:]
        if word in ("GOODSIG", "EXPKEYSIG", "REVKEYSIG", "BADSIG", "EXPSIG") and args:
            key_id = args[0].upper()
        if word == "ERRSIG" and args:
            key_id = args[0].upper()
        if word == "NO_PUBKEY" and args:
            key_id = args[0].upper()
        if word == "VALIDSIG" and args:
            # VALIDSIG <fingerprint of the signing (sub)key> … <primary key fingerprint>
            fingerprint = (args[9] if len(args) > 9 else args[0]).upper()
    if "BADSIG" in names:
        status = "bad"
    elif "REVKEYSIG" in names:
        status = "revoked-key"
    elif "EXPKEYSIG" in names:
        status = "expired-key"
    elif "GOODSIG" in names and "VALIDSIG" in names:
        status = "good"
    elif "NO_PUBKEY" in names or "ERRSIG" in names:
        status = "no-key"
    valid = status in ("good", "expired-key", "revoked-key")
    return ClearSignature(
        status=status,
        key_id=key_id,
        fingerprint=fingerprint,
        signed_text=bytes(getattr(result, "data", b"") or b"") if valid else b"",
        statuses=names,
    )
