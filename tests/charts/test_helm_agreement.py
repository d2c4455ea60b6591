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
from urllib.parse import urljoin

import pytest
import yaml

from charts import files
from charts.models import ChartVersion, SyncRun
from charts.uploads import PushInputError, prepare_push
from tests.chartkit import deterministic_tgz, helm_index, sha256_digest
from tests.charts.helpers import helm_source, oci_registry, source_of, sync, unique
from tests.charts.pushkit import push_now, push_registry
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


def helm_registry_client(helm):
    client = helm.RegistryClient(plain_http=True)
    return client


HELM_PUSHED_VERSIONS = ["1.0.0", "1.1.0-rc.1", "2.0.0+build.3", "v3.0.0"]


def test_a_chart_helm_pushes_is_indexed_with_helms_name_version_and_digest(
    helm, chart_registry, tmp_path
):
    prefix = unique("helm-pushed")
    repo = f"{prefix}/my_chart"
    archives = {v: chart_with("my_chart", v) for v in HELM_PUSHED_VERSIONS}
    for archive in archives.values():
        helm_pushes(helm, chart_registry, archive, prefix, tmp_path)
    client = helm_registry_client(helm)
    try:
        helm_says = {
            (
                "my_chart",
                v,
                client.resolve(f"oci://{chart_registry.host}/{repo}:{v.replace('+', '_')}")[
                    "digest"
                ],
                sha256_digest(archive),
            )
            for v, archive in archives.items()
        }
    finally:
        client.close()
    source = source_of(oci_registry(chart_registry, [repo]), repo)

    run = sync(source)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    wharf_says = {
        (v.chart.name, v.version, v.digest, v.archive_digest)
        for v in ChartVersion.objects.filter(chart__source=source).select_related("chart")
    }
    assert wharf_says == helm_says


@pytest.mark.parametrize(("name", "version"), [("web", "1.2.0+build.7"), ("my_chart", "v1.2.0")])
def test_a_chart_wharf_pushes_is_pulled_by_helm_byte_identical(
    helm, chart_registry, tmp_path, name, version
):
    prefix = unique("wharf-pushed")
    registry = push_registry(chart_registry)
    archive = chart_with(name, version)

    push = push_now(registry, archive, prefix=prefix)

    assert push.status == "succeeded", push.error
    pulled = tmp_path / "pulled"
    pulled.mkdir()
    helm.pull(
        f"oci://{chart_registry.host}/{prefix}/{name}",
        version=version,
        destination=str(pulled),
        plain_http=True,
    )
    (path,) = pulled.iterdir()
    assert path.read_bytes() == archive
    client = helm_registry_client(helm)
    try:
        ref = f"oci://{chart_registry.host}/{prefix}/{name}:{push.tag}"
        assert client.resolve(ref)["digest"] == push.manifest_digest
    finally:
        client.close()


def odd_index(base_url: str) -> bytes:
    """An index.yaml with what real repositories hold at the edges, behind a UTF-8 BOM."""
    entries = [
        {"name": "web", "version": "1.0.0", "urls": ["web-1.0.0.tgz"]},
        {"name": "web", "version": "1.1.0-rc.1", "urls": ["charts/web-1.1.0-rc.1.tgz"]},
        {"name": "web", "version": "1.0.1+build.7", "urls": [f"{base_url}/web-1.0.1.tgz"]},
        {"name": "web", "version": "v2.0.0", "urls": ["/abs/web-v2.0.0.tgz"]},
        {"name": "web", "version": "2.1", "urls": ["../up/web-2.1.tgz"]},
        {"name": "my_chart", "version": "0.1.0-alpha.1+exp.sha.5114f85"},
        {"name": "Upper", "version": "3.0.0"},
        {"name": "bad", "version": "latest"},
        {"name": "bad", "version": "1.0.0-01"},
        {"name": "bad", "version": "1.0.0"},
    ]
    return b"\xef\xbb\xbf" + helm_index(entries)


def test_wharf_sees_a_helm_repositorys_versions_as_helms_repo_index_does(helm, helm_repo):
    helm_repo.write_index(odd_index(helm_repo.url))
    helm_index_read = helm.repo_index(helm_repo.url)["entries"]
    helm_says = {
        (name, item["version"]) for name, items in helm_index_read.items() for item in items
    }
    # Helm resolves a relative URL against the repository URL as a folder.
    helm_urls = {
        (name, item["version"]): urljoin(helm_repo.url.rstrip("/") + "/", item["urls"][0])
        for name, items in helm_index_read.items()
        for item in items
    }
    source = helm_source(helm_repo)

    run = sync(source)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    wharf_says = set(
        ChartVersion.objects.filter(chart__source=source).values_list("chart__name", "version")
    )
    assert wharf_says == helm_says
    assert ("web", "v2.0.0") in wharf_says and ("bad", "latest") not in wharf_says
    wharf_urls = {
        (v.chart.name, v.version): v.archive_url
        for v in ChartVersion.objects.filter(chart__source=source).select_related("chart")
    }
    assert wharf_urls == helm_urls


def test_an_index_pyyaml_wrote_with_anchors_is_read_as_helm_reads_it(helm, helm_repo):
    maintainers = [{"name": "Platform team", "email": "platform@example.com"}]
    document = {
        "apiVersion": "v1",
        "entries": {
            name: [{"name": name, "version": "1.0.0", "maintainers": maintainers}]
            for name in ("api", "web")
        },
    }
    body = yaml.safe_dump(document).encode()
    assert b"&id001" in body and b"*id001" in body
    helm_repo.write_index(body)
    helm_read = helm.repo_index(helm_repo.url)["entries"]
    source = helm_source(helm_repo)

    run = sync(source)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    for version in ChartVersion.objects.filter(chart__source=source).select_related("chart"):
        (helm_item,) = helm_read[version.chart.name]
        assert version.metadata["maintainers"] == helm_item["maintainers"] == maintainers


def test_wharf_orders_a_charts_versions_as_helm_does(helm, helm_repo):
    # Helm sorts each chart's versions when it loads an index (its semver, loose forms too).
    versions = ["1.0.0", "v2.0.0", "1.10", "2.0.0-rc.1", "v1.9.0+build.1", "0.9.0", "1.2"]
    helm_repo.write_index(helm_index([{"name": "order", "version": v} for v in versions]))
    helm_order = [item["version"] for item in helm.repo_index(helm_repo.url)["entries"]["order"]]
    source = helm_source(helm_repo)
    sync(source)

    from charts.models import Chart
    from charts.semver import semver_key

    wharf_order = sorted(
        ChartVersion.objects.filter(chart__source=source).values_list("version", flat=True),
        key=semver_key,
        reverse=True,
    )
    assert wharf_order == helm_order
    assert Chart.objects.get(source=source).latest_version == "v2.0.0"
