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
    for name in ("pyproject.toml", "requirements.lock", "requirements-dev.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    monkeypatch.setattr(module, "PYPROJECT", tmp_path / "pyproject.toml")
    monkeypatch.setattr(module, "LOCK", tmp_path / "requirements.lock")
    monkeypatch.setattr(module, "DEV_LOCK", tmp_path / "requirements-dev.lock")
    return module


def add_dependency(pyproject: Path, requirement: str, *, dev: bool = False) -> None:
    text = pyproject.read_text()
    anchor = "dev = [\n" if dev else "dependencies = [\n"
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
    add_dependency(lock.PYPROJECT, "pyfiglet", dev=True)

    assert lock.check() == 1
    err = capsys.readouterr().err
    assert re.search(r"requirements-dev\.lock .* It lacks: pyfiglet\.", err)
    assert "requirements.lock was not made" in err  # the fingerprint covers both
    assert "It lacks: pyfiglet" not in err.split("requirements-dev.lock")[0]


def test_every_locked_package_has_an_exact_version_and_hashes():
    for name in ("requirements.lock", "requirements-dev.lock"):
        entries = re.split(r"\n(?=[a-z0-9])", (ROOT / name).read_text(), flags=re.I)
        packages = [e for e in entries if re.match(r"[A-Za-z0-9][\w.-]*(\[[^\]]*\])?==", e)]
        assert packages, name
        for entry in packages:
            assert "--hash=sha256:" in entry, entry.splitlines()[0]
