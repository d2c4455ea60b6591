"""Development secrets, generated once under var/ and reused on every start."""

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet


def _read_or_create(path: Path, make) -> str:
    if path.exists():
        return path.read_text().strip()
    value = make()
    # Created with owner-only permissions; never printed.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def dev_secret(path: Path) -> str:
    return _read_or_create(path, lambda: secrets.token_urlsafe(50))


def dev_fernet_key(path: Path) -> str:
    return _read_or_create(path, lambda: Fernet.generate_key().decode())
