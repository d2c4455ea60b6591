"""The lock files (scripts/lock.py): they match pyproject.toml, and a stale one is named.

The packages added here are ones Wharf does not use (humanize, pyfiglet): a package that
later becomes a real dependency would be in the locks already."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def lock(tmp_path, monkeypatch):
    """scripts/lock.py, pointed at a copy of pyproject.toml and the lock files."""
    spec = importlib.util.spec_from_file_location("wharf_lock", ROOT / "scripts" / "lock.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in LOCK_FILES:
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    monkeypatch.setattr(module, "PYPROJECT", tmp_path / "pyproject.toml")
    monkeypatch.setattr(module, "LOCK", tmp_path / "requirements.lock")
    monkeypatch.setattr(module, "DEV_LOCK", tmp_path / "requirements-dev.lock")
    monkeypatch.setattr(module, "LDAP_LOCK", tmp_path / "requirements-ldap.lock")
    return module


LOCK_FILES = ("requirements.lock", "requirements-dev.lock", "requirements-ldap.lock")


def add_dependency(pyproject: Path, requirement: str, *, extra: str = "") -> None:
    text = pyproject.read_text()
    if extra == "ldap":
        anchor = "ldap = ["
        pyproject.write_text(text.replace(anchor, f'{anchor}"{requirement}", ', 1))
        return
    anchor = "dev = [\n" if extra == "dev" else "dependencies = [\n"
    pyproject.write_text(text.replace(anchor, f'{anchor}    "{requirement}",\n', 1))


def test_the_committed_lock_files_match_pyproject(lock, capsys):
    assert lock.check() == 0, capsys.readouterr().err


def test_a_dependency_added_without_make_lock_stops_the_install_naming_it(lock, capsys):
    add_dependency(lock.PYPROJECT, "humanize>=4")

    assert lock.check() == 1
    err = capsys.readouterr().err
    assert "requirements.lock was not made from pyproject.toml as it is now" in err
    assert "It lacks: humanize." in err
    assert "Run `make lock`" in err


def test_a_dev_dependency_makes_only_the_dev_lock_lack_it(lock, capsys):
    add_dependency(lock.PYPROJECT, "pyfiglet", extra="dev")

    assert lock.check() == 1
    err = capsys.readouterr().err
    assert re.search(r"requirements-dev\.lock .* It lacks: pyfiglet\.", err)
    assert "requirements.lock was not made" in err  # the fingerprint covers both
    assert "It lacks: pyfiglet" not in err.split("requirements-dev.lock")[0]


def test_an_ldap_dependency_makes_only_the_ldap_lock_lack_it(lock, capsys):
    add_dependency(lock.PYPROJECT, "pyfiglet", extra="ldap")

    assert lock.check() == 1
    err = capsys.readouterr().err
    assert re.search(r"requirements-ldap\.lock .* It lacks: pyfiglet\.", err)
    assert "It lacks: pyfiglet" not in err.split("requirements-ldap.lock")[0]


def test_the_ldap_lock_holds_python_ldap_and_the_dev_lock_does_not():
    # A laptop without OpenLDAP's headers installs the dev lock: nothing in it compiles.
    assert "\npython-ldap==" in (ROOT / "requirements-ldap.lock").read_text()
    assert "\npython-ldap==" not in (ROOT / "requirements-dev.lock").read_text()
    assert "\npython-ldap==" not in (ROOT / "requirements.lock").read_text()


def test_every_locked_package_has_an_exact_version_and_hashes():
    for name in LOCK_FILES:
        entries = re.split(r"\n(?=[a-z0-9])", (ROOT / name).read_text(), flags=re.I)
        packages = [e for e in entries if re.match(r"[A-Za-z0-9][\w.-]*(\[[^\]]*\])?==", e)]
        assert packages, name
        for entry in packages:
            assert "--hash=sha256:" in entry, entry.splitlines()[0]
