#!/usr/bin/env python3
"""The lock files: every Python package Wharf installs, at an exact version, with hashes.

``requirements.lock`` holds what Wharf runs with (pyproject.toml's
``dependencies``, plus the build back-end that installs Wharf itself);
``requirements-dev.lock`` adds the ``dev`` extra for tests and lint, and
``requirements-ldap.lock`` the ``ldap`` extra (python-ldap builds from source, so only
``make install-ldap`` and CI install it), each at the runtime lock's versions for every
package they share. All are written by ``uv pip compile --generate-hashes``
and are installed with ``pip install --require-hashes``, then Wharf with ``--no-deps``.

    scripts/lock.py            write all three (``make lock``): pins already in the lock files
                               are kept; only what pyproject.toml's changes need moves
    scripts/lock.py --upgrade  write all three with the newest versions pyproject.toml allows
    scripts/lock.py check      exit 1, saying why, when a lock file no longer matches
                               pyproject.toml (``make install`` runs this first)

Each lock file's first line is a fingerprint of the pyproject.toml sections it was made
from, so a change to them (a merge adding a dependency) is found without trusting
file times, which a fresh clone does not keep.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
LDAP_LOCK = ROOT / "requirements-ldap.lock"
FINGERPRINT = "# pyproject.toml fingerprint: "
PYTHON_VERSION = "3.11"  # the oldest Python Wharf supports (requires-python)


def _project() -> dict:
    return tomllib.loads(PYPROJECT.read_text())


def fingerprint() -> str:
    """A hash of everything in pyproject.toml that decides what the lock files hold."""
    data = _project()
    project = data["project"]
    relevant = {
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
        "requires-python": project.get("requires-python", ""),
        "build-system": data.get("build-system", {}).get("requires", []),
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def _name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else requirement


def _locked_names(lock: Path) -> set[str]:
    names = set()
    for line in lock.read_text().splitlines():
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==", line)
        if match:
            names.add(_name(match.group(1)))
    return names


def _wanted(lock: Path) -> list[str]:
    data = _project()
    wanted = list(data["project"].get("dependencies", []))
    wanted += data.get("build-system", {}).get("requires", [])
    wanted += data["project"].get("optional-dependencies", {}).get("postgres", [])
    if lock == DEV_LOCK:
        wanted += data["project"].get("optional-dependencies", {}).get("dev", [])
    if lock == LDAP_LOCK:
        wanted += data["project"].get("optional-dependencies", {}).get("ldap", [])
    return wanted


def check() -> int:
    """0 when the lock files were made from pyproject.toml as it is; else 1, saying why."""
    current = fingerprint()
    problems = []
    for lock in (LOCK, DEV_LOCK, LDAP_LOCK):
        if not lock.exists():
            problems.append(f"{lock.name} is missing.")
            continue
        first = lock.read_text().partition("\n")[0]
        if first == FINGERPRINT + current:
            continue
        missing = sorted({_name(r) for r in _wanted(lock)} - _locked_names(lock))
        why = f" It lacks: {', '.join(missing)}." if missing else ""
        problems.append(
            f"{lock.name} was not made from pyproject.toml as it is now (its dependencies, "
            f"extras or build requirements changed since).{why}"
        )
    if problems:
        print("The lock files are stale:", *problems, sep="\n  ", file=sys.stderr)
        advice = "Run `make lock`, then commit the lock files. Nothing was installed."
        print(advice, file=sys.stderr)
        return 1
    return 0


def _uv() -> str:
    for candidate in (os.environ.get("UV"), shutil.which("uv"), str(ROOT / ".venv/bin/uv")):
        if candidate and Path(candidate).exists():
            return candidate
    sys.exit("uv is not installed: `make lock` installs it into .venv")


def _compile(output: Path, *, extra_args: list[str], upgrade: bool) -> None:
    """Lock pyproject.toml's requirements and, from standard input, its build requirements
    (the build back-end is locked too: Wharf itself is installed without fetching it)."""
    build = _project().get("build-system", {}).get("requires", [])
    argv = [_uv(), "pip", "compile", "--quiet", "--generate-hashes", "--universal"]
    argv += ["--python-version", PYTHON_VERSION, "--custom-compile-command", "make lock"]
    # The system's CA bundle: package downloads may pass a TLS-inspecting proxy.
    argv += ["--native-tls", "--no-header", "--output-file", str(output)]
    argv += ["--upgrade"] if upgrade else []
    argv += [*extra_args, "pyproject.toml", "-"]
    subprocess.run(argv, cwd=ROOT, check=True, input="\n".join(build) + "\n", text=True)
    body = output.read_text()
    header = (
        f"{FINGERPRINT}{fingerprint()}\n"
        "# Exact versions with hashes, written by `make lock` (scripts/lock.py) from\n"
        "# pyproject.toml; do not edit by hand. Installed with pip --require-hashes.\n"
    )
    output.write_text(header + body)


def write(upgrade: bool) -> None:
    _compile(LOCK, extra_args=["--extra", "postgres"], upgrade=upgrade)
    # The dev lock keeps every version of the runtime lock: tests run what ships.
    _compile(DEV_LOCK, extra_args=["--extra", "dev", "--constraint", LOCK.name], upgrade=upgrade)
    ldap = ["--extra", "ldap", "--extra", "postgres", "--constraint", LOCK.name]
    _compile(LDAP_LOCK, extra_args=ldap, upgrade=upgrade)
    print(f"Wrote {LOCK.name}, {DEV_LOCK.name} and {LDAP_LOCK.name}.")


def main(argv: list[str]) -> int:
    if argv[:1] == ["check"]:
        return check()
    write(upgrade="--upgrade" in argv)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
