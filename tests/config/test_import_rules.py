"""Which way imports go: registries/ knows nothing of charts/ or clusters/ (they build on
it), and only forms, views and admin modules import a forms module."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = ("config", "registries", "charts", "clusters")
FORM_USERS = ("forms.py", "views.py", "admin.py")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str = "", *, is_package: bool = False) -> Iterator[str]:
    """Every module ``source`` imports, anywhere in it (inside functions too), as a dotted
    name: ``from a import b`` yields ``a`` and ``a.b`` (b may be a module);
    ``importlib.import_module("x")`` yields ``x``."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", ""))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.args[0].value


def project_modules(*packages: str) -> Iterator[tuple[Path, set[str]]]:
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            name = module_name(path)
            imported = imports_of(path.read_text(), name, is_package=path.name == "__init__.py")
            yield path, set(imported)


def is_forms_module(name: str) -> bool:
    parts = name.split(".")
    return parts[0] in PROJECT_PACKAGES and parts[-1] == "forms"


def test_the_import_reader_sees_nested_relative_dynamic_and_from_imports():
    source = """
import charts.models
from clusters import pullsecrets
from . import forms
from .forms import RegistryForm


def later():
    from charts.sync import queue_sync
    importlib.import_module("clusters.kube")
"""
    found = set(imports_of(source, "registries.views"))
    assert {
        "charts.models", "clusters", "clusters.pullsecrets", "registries.forms",
        "charts.sync.queue_sync", "clusters.kube",
    } <= found  # fmt: skip


def test_registries_imports_nothing_from_charts_or_clusters():
    offending = [
        f"{path.relative_to(ROOT)}: {name}"
        for path, imported in project_modules("registries")
        for name in sorted(imported)
        if name.split(".")[0] in ("charts", "clusters")
    ]
    assert offending == []


def test_only_forms_views_and_admin_modules_import_a_forms_module():
    offending = [
        f"{path.relative_to(ROOT)}: {name}"
        for path, imported in project_modules(*PROJECT_PACKAGES, "bench")
        if path.name not in FORM_USERS
        for name in sorted(imported)
        if is_forms_module(name)
    ]
    assert offending == []
