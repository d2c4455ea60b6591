"""tests.chartkit: archives, pushers and the relay, against real registries."""

import io
import json
import socket
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import yaml

from charts.archive import read_chart_archive
from tests.chartkit import (
    HELM_CHART_LAYER,
    HELM_CONFIG,
    IMAGE_CONFIG,
    IMAGE_LAYER,
    OCI_MANIFEST,
    DelayingRelay,
    OciPusher,
    chart_config,
    helm_index,
    make_chart_archive,
    populate_registry,
    push_chart_with_oras,
    realistic_index,
    sha256_digest,
)


def registry_session(server) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    if server.username:
        session.auth = (server.username, server.password)
    return session


def read_manifest(server, repository: str, reference: str) -> tuple[requests.Response, dict]:
    with registry_session(server) as session:
        answer = session.get(
            f"{server.url}/v2/{repository}/manifests/{reference}",
            headers={"Accept": OCI_MANIFEST},
            timeout=5,
        )
    answer.raise_for_status()
    return answer, answer.json()


def read_blob(server, repository: str, digest: str) -> bytes:
    with registry_session(server) as session:
        answer = session.get(f"{server.url}/v2/{repository}/blobs/{digest}", timeout=5)
    answer.raise_for_status()
    return answer.content


# --- archives and indexes ---------------------------------------------------------------


def test_the_same_chart_inputs_give_the_same_archive_bytes():
    assert make_chart_archive("demo", "1.0.0") == make_chart_archive("demo", "1.0.0")
    assert make_chart_archive("demo", "1.0.0") != make_chart_archive("demo", "1.0.1")


def test_a_made_chart_passes_the_archive_checks_with_its_files():
    archive = make_chart_archive(
        "demo", "1.2.3-rc.1", values="a: 1\n", extra={"templates/cm.yaml": b"kind: ConfigMap\n"}
    )
    files = read_chart_archive(archive)
    assert files.chart["version"] == "1.2.3-rc.1"
    assert files.values_yaml == "a: 1\n"
    assert files.readme == "# demo\n"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert "demo/templates/cm.yaml" in tar.getnames()


def test_chart_config_is_the_chart_metadata_as_json():
    archive = make_chart_archive("demo", "1.0.0", description="Demo chart", keywords=["a"])
    config = json.loads(chart_config(archive))
    assert config == {
        "name": "demo",
        "version": "1.0.0",
        "description": "Demo chart",
        "keywords": ["a"],
        "apiVersion": "v2",
        "appVersion": "1.0.0",
        "type": "application",
    }


def test_helm_index_lists_each_version_with_the_archive_digest():
    archive = make_chart_archive("demo", "1.0.0")
    index = yaml.safe_load(
        helm_index(
            [
                {"name": "demo", "version": "1.0.0", "archive": archive},
                {"name": "demo", "version": "0.9.0"},
            ],
            base_url="http://charts.example/",
        )
    )
    first, second = index["entries"]["demo"]
    assert index["apiVersion"] == "v1"
    assert first["digest"] == sha256_digest(archive).removeprefix("sha256:")
    assert first["urls"] == ["http://charts.example/charts/demo-1.0.0.tgz"]
    assert second["version"] == "0.9.0"
    assert isinstance(first["created"], str)


# --- oras-py ------------------------------------------------------------------------------


def test_oras_push_to_a_basic_auth_registry_uses_helm_media_types(private_chart_registry):
    archive = make_chart_archive("oras-demo", "1.0.0+build.1")
    digest = push_chart_with_oras(
        private_chart_registry.host,
        "charts/oras-demo",
        "1.0.0+build.1",
        archive,
        username=private_chart_registry.username,
        password=private_chart_registry.password,
    )
    answer, manifest = read_manifest(private_chart_registry, "charts/oras-demo", "1.0.0_build.1")
    assert answer.headers["Docker-Content-Digest"] == digest
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"]["mediaType"] == HELM_CONFIG
    assert [layer["mediaType"] for layer in manifest["layers"]] == [HELM_CHART_LAYER]
    layer_digest = manifest["layers"][0]["digest"]
    assert read_blob(private_chart_registry, "charts/oras-demo", layer_digest) == archive


def test_oras_push_to_a_chart_registry_gives_a_readable_chart(chart_registry):
    archive = make_chart_archive("public-demo", "2.0.0")
    push_chart_with_oras(chart_registry.host, "public-demo", "2.0.0", archive)
    _, manifest = read_manifest(chart_registry, "public-demo", "2.0.0")
    config = read_blob(chart_registry, "public-demo", manifest["config"]["digest"])
    assert json.loads(config)["name"] == "public-demo"
    assert read_blob(chart_registry, "public-demo", manifest["layers"][0]["digest"]) == archive


def test_oras_push_over_tls_trusts_the_given_ca(tls_chart_registry):
    archive = make_chart_archive("tls-demo", "1.0.0")
    digest = push_chart_with_oras(
        tls_chart_registry.host,
        "tls-demo",
        "1.0.0",
        archive,
        username=tls_chart_registry.username,
        password=tls_chart_registry.password,
        insecure=False,
        ca_path=tls_chart_registry.ca_path,
    )
    with registry_session(tls_chart_registry) as session:
        answer = session.head(
            f"{tls_chart_registry.url}/v2/tls-demo/manifests/1.0.0",
            headers={"Accept": OCI_MANIFEST},
            verify=str(tls_chart_registry.ca_path),
            timeout=5,
        )
    assert answer.headers["Docker-Content-Digest"] == digest


# --- OciPusher -------------------------------------------------------------------------------


def test_oci_pusher_pushes_a_chart_that_reads_back_intact(private_chart_registry):
    pusher = OciPusher(
        private_chart_registry.url, private_chart_registry.username, private_chart_registry.password
    )
    archive = make_chart_archive("pushed", "0.1.0")
    digest = pusher.push_chart("team/pushed", "0.1.0", archive)
    answer, manifest = read_manifest(private_chart_registry, "team/pushed", "0.1.0")
    assert answer.headers["Docker-Content-Digest"] == digest == sha256_digest(answer.content)
    assert manifest["config"]["mediaType"] == HELM_CONFIG
    assert manifest["annotations"]["org.opencontainers.image.title"] == "pushed"
    assert (
        read_blob(private_chart_registry, "team/pushed", manifest["layers"][0]["digest"]) == archive
    )
    config = read_blob(private_chart_registry, "team/pushed", manifest["config"]["digest"])
    assert config == chart_config(archive)


def test_oci_pusher_pushing_the_same_chart_twice_gives_the_same_digest(chart_registry):
    pusher = OciPusher(chart_registry.url)
    archive = make_chart_archive("twice", "1.0.0")
    assert pusher.push_chart("twice", "1.0.0", archive) == pusher.push_chart(
        "twice", "1.0.0", archive
    )


def test_oci_pusher_pushes_a_container_image(chart_registry):
    pusher = OciPusher(chart_registry.url)
    digest = pusher.push_image("apps/web", "v1")
    _, manifest = read_manifest(chart_registry, "apps/web", digest)
    assert manifest["config"]["mediaType"] == IMAGE_CONFIG
    assert [layer["mediaType"] for layer in manifest["layers"]] == [IMAGE_LAYER]


def test_oci_pusher_pushes_a_raw_manifest_with_a_broken_helm_config(chart_registry):
    pusher = OciPusher(chart_registry.url)
    config_digest = pusher.push_blob("broken", b"{not json")
    layer_digest = pusher.push_blob("broken", b"not a tgz")
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": HELM_CONFIG, "digest": config_digest, "size": 9},
            "layers": [{"mediaType": HELM_CHART_LAYER, "digest": layer_digest, "size": 9}],
        }
    ).encode()
    digest = pusher.push_raw_manifest("broken", "1.0.0", manifest, OCI_MANIFEST)
    assert digest == sha256_digest(manifest)
    assert read_blob(chart_registry, "broken", config_digest) == b"{not json"


def test_oci_pusher_with_a_wrong_password_raises(private_chart_registry):
    pusher = OciPusher(private_chart_registry.url, private_chart_registry.username, "wrong")
    with pytest.raises(requests.HTTPError):
        pusher.push_blob("denied", b"data")


def test_populate_registry_pushes_every_version_of_every_repository(chart_registry):
    pushed = populate_registry(OciPusher(chart_registry.url), 3, 4, prefix="populated")
    assert sorted(pushed) == ["populated/chart-0", "populated/chart-1", "populated/chart-2"]
    with registry_session(chart_registry) as session:
        tags = session.get(f"{chart_registry.url}/v2/populated/chart-1/tags/list", timeout=5)
    assert sorted(tags.json()["tags"]) == ["1.0.0", "1.1.0", "1.2.0", "1.3.0"]


# --- DelayingRelay -----------------------------------------------------------------------------


def test_the_relay_forwards_a_registry_request_and_adds_the_delay(chart_registry):
    target_host, target_port = chart_registry.host.split(":")
    with (
        DelayingRelay(target_host, int(target_port), delay=0.1) as relay,
        requests.Session() as session,
    ):
        session.trust_env = False
        session.get(f"http://{relay.host}/v2/", timeout=5)  # open the connection
        started = time.monotonic()
        answer = session.get(f"http://{relay.host}/v2/", timeout=5)
        elapsed = time.monotonic() - started
    assert answer.status_code == 200
    assert elapsed >= 0.1


def test_oci_pusher_works_through_the_relay(chart_registry):
    target_host, target_port = chart_registry.host.split(":")
    with DelayingRelay(target_host, int(target_port), delay=0.01) as relay:
        pusher = OciPusher(f"http://{relay.host}")
        archive = make_chart_archive("relayed", "1.0.0")
        pusher.push_chart("relayed", "1.0.0", archive)
        pusher.close()
    _, manifest = read_manifest(chart_registry, "relayed", "1.0.0")
    assert read_blob(chart_registry, "relayed", manifest["layers"][0]["digest"]) == archive


def test_the_relay_forwards_bytes_intact_both_ways():
    payload = bytes(range(256)) * 4096  # 1 MiB
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def echo_once():
            connection, _ = listener.accept()
            with connection:
                while data := connection.recv(65536):
                    connection.sendall(data)

        echo = threading.Thread(target=echo_once, daemon=True)
        echo.start()
        with DelayingRelay("127.0.0.1", port, delay=0.01) as relay:
            host, relay_port = relay.host.split(":")
            with socket.create_connection((host, int(relay_port)), timeout=5) as client:
                sender = threading.Thread(target=client.sendall, args=(payload,), daemon=True)
                sender.start()
                received = bytearray()
                while len(received) < len(payload):
                    chunk = client.recv(65536)
                    assert chunk, "relay closed early"
                    received += chunk
                sender.join(timeout=5)
        echo.join(timeout=5)
    assert bytes(received) == payload


def test_the_relay_handles_many_concurrent_connections(chart_registry):
    target_host, target_port = chart_registry.host.split(":")
    with DelayingRelay(target_host, int(target_port), delay=0.02) as relay:

        def ping(_):
            with requests.Session() as session:
                session.trust_env = False
                return session.get(f"http://{relay.host}/v2/", timeout=10).status_code

        with ThreadPoolExecutor(max_workers=32) as pool:
            statuses = list(pool.map(ping, range(100)))
    assert statuses == [200] * 100


# --- a big index ------------------------------------------------------------------------------


def test_index_of_20000_versions_parses_with_the_c_loader():
    index = yaml.load(realistic_index(1000, 20), Loader=yaml.CSafeLoader)
    assert sum(len(versions) for versions in index["entries"].values()) == 20_000
