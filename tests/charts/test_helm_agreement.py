"""Wharf agrees with Helm itself: Helm v4's own Go SDK (``helm-python-sdk``) is the reference.

Against the real test registry and nginx: a chart Helm pushes is indexed by Wharf with
the same name, version and digest; a chart Wharf pushes is pulled by Helm byte-identical;
what Wharf refuses to push, Helm refuses too, and the other way round; a chart Helm
loads is shown with its README and values, whatever push rules it breaks; Wharf's view
of a Helm repository's versions is Helm's ``repo_index`` of it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from charts import files
from charts.models import ChartVersion, SyncRun
from charts.uploads import PushInputError, prepare_push
from tests.chartkit import deterministic_tgz, helm_index
from tests.charts.helpers import helm_source, sync, unique
from tests.servers.base import service_unavailable

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="session")
def helm():
    """Helm v4's Go SDK, bound by ``helm-python-sdk`` (``import helm_python``)."""
    try:
        import helm_python
    except ImportError:  # the dev extras install it
        service_unavailable("helm-python-sdk is not installed (pip install -e '.[dev]')")
    return helm_python


def helm_pushes(helm, server, archive: bytes, prefix: str, tmp_path: Path) -> dict:
    """``helm push`` of ``archive`` under ``oci://<server>/<prefix>``; raises what Helm raises."""
    path = tmp_path / f"chart-{len(os.listdir(tmp_path))}.tgz"
    path.write_bytes(archive)
    return helm.push(str(path), f"oci://{server.host}/{prefix}", plain_http=True)


def chart_with(name: str, version: str, **fields) -> bytes:
    """A chart archive whose Chart.yaml says exactly ``name`` and ``version`` (and ``fields``)."""
    meta = {"apiVersion": "v2", "name": name, "version": version, **fields}
    meta = {key: value for key, value in meta.items() if value is not None}
    folder = "chart"
    return deterministic_tgz(
        {
            f"{folder}/Chart.yaml": yaml.safe_dump(meta, sort_keys=False).encode(),
            f"{folder}/values.yaml": b"replicaCount: 2\n",
            f"{folder}/README.md": f"# {name}\n".encode(),
            f"{folder}/templates/configmap.yaml": b"kind: ConfigMap\n",
        }
    )


# Names and versions at the edges of what `helm push` takes (the OCI repository name and
# tag grammars, Helm's semver parser) and of what Wharf used to refuse.
PUSH_TABLE = [
    ("my_chart", "1.0.0"),
    ("my__chart", "1.0.0"),
    ("my___chart", "1.0.0"),
    ("_chart", "1.0.0"),
    ("chart_", "1.0.0"),
    ("my.chart", "1.0.0"),
    ("my--chart", "1.0.0"),
    ("-chart", "1.0.0"),
    ("MyChart", "1.0.0"),
    ("my chart", "1.0.0"),
    ("web", "v1.2.3"),
    ("web", "1.2"),
    ("web", "1"),
    ("web", "1.2.3+build.7"),
    ("web", "1.2.3-RC.1"),
    ("web", "1.0.0-01"),
    ("web", "01.2.3"),
    ("web", "1.2.3.4"),
    ("web", "latest"),
    ("web", "1.0.0_build"),
    ("web", "1.0.0+" + "b" * 122),
    ("web", "1.0.0+" + "b" * 123),
    ("a" * 200, "1.0.0"),
    ("a" * 256, "1.0.0"),
]


@pytest.mark.parametrize(("name", "version"), PUSH_TABLE)
def test_wharf_refuses_to_push_exactly_what_helm_refuses(
    helm, chart_registry, tmp_path, name, version
):
    prefix = unique("agree")
    archive = chart_with(name, version)
    try:
        helm_pushes(helm, chart_registry, archive, prefix, tmp_path)
        helm_refusal = ""
    except helm.HelmError as exc:
        helm_refusal = str(exc) or type(exc).__name__
    try:
        prepare_push(archive, None, prefix)
        wharf_refusal = ""
    except PushInputError as exc:
        wharf_refusal = str(exc)

    assert bool(wharf_refusal) == bool(helm_refusal), (
        f"Helm: {helm_refusal or 'pushed'}; Wharf: {wharf_refusal or 'accepted'}"
    )


@pytest.mark.parametrize(("name", "version"), [("my_chart", "1.0.0"), ("web", "v1.2.0")])
def test_a_chart_helm_loads_from_a_helm_repository_is_shown_with_its_readme_and_values(
    helm, helm_repo, name, version
):
    archive = chart_with(name, version)
    with helm.Chart.load_archive(archive) as loaded:  # Helm reads it: so must the page
        assert (loaded.name, loaded.version) == (name, version)
    filename = f"{name}-{version}.tgz"
    helm_repo.put(filename, archive)
    helm_repo.write_index(
        helm_index([{"name": name, "version": version, "archive": archive, "urls": [filename]}])
    )
    source = helm_source(helm_repo)
    assert sync(source).status == SyncRun.Status.SUCCEEDED

    files.read_pending_files()

    version_row = ChartVersion.objects.get(chart__source=source)
    assert version_row.files_error == ""
    assert version_row.values_yaml == "replicaCount: 2\n"
    assert version_row.readme == f"# {name}\n"
