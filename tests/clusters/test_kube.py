"""clusters.kube through the official client: versions, rights, TLS, and errors a user can act on."""

import socket
import time

import pytest

from clusters import kube
from tests.hostile import DrippingServer
from tests.servers.base import LOOPBACK

TOKEN = "kube-token-do-not-leak"


def connect(url: str, token: str = TOKEN, **options) -> kube.KubeClient:
    return kube.KubeClient(kube.Connection(url, token, **options))


def test_server_version_and_secret_rights(start_fake_cluster):
    fake = start_fake_cluster(token=TOKEN, secret_access={"delete": False})

    with connect(fake.url) as api:
        access = api.check_secret_access("team-a")

    assert access.version == "v1.26.4+k3s1"
    assert access.allowed == {
        "list": True,
        "get": True,
        "create": True,
        "patch": True,
        "delete": False,
    }


def test_rejected_token_raises_an_error_naming_the_token_but_not_its_value(start_fake_cluster):
    fake = start_fake_cluster(token="the-right-one")

    with connect(fake.url) as api, pytest.raises(kube.KubeError) as caught:
        api.list_secrets("a=b")

    assert caught.value.status == 401
    assert "rejected the bearer token" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_unreachable_server_raises_could_not_reach():
    with connect(f"http://{LOOPBACK}:9") as api, pytest.raises(kube.KubeError) as caught:
        api.server_version()

    assert "Could not reach the API server" in str(caught.value)


def test_a_server_that_never_answers_times_out():
    with socket.socket() as silent:
        silent.bind((LOOPBACK, 0))
        silent.listen()  # accepts connections into the backlog, never answers
        url = f"http://{LOOPBACK}:{silent.getsockname()[1]}"
        with connect(url, timeout=0.5) as api, pytest.raises(kube.KubeError) as caught:
            api.server_version()

    assert "did not answer in time" in str(caught.value)


def test_https_with_the_clusters_ca_certificate(start_fake_cluster, ca):
    fake = start_fake_cluster(token=TOKEN, tls=ca.issue())
    assert fake.url.startswith("https://")

    with connect(fake.url, ca_pem=ca.cert_pem) as api:
        assert api.server_version() == "v1.26.4+k3s1"


def test_https_with_another_ca_fails_with_a_tls_message(start_fake_cluster, ca, other_ca):
    fake = start_fake_cluster(token=TOKEN, tls=ca.issue())

    with connect(fake.url, ca_pem=other_ca.cert_pem) as api, pytest.raises(kube.KubeError) as e:
        api.server_version()

    assert "TLS verification" in str(e.value) and "Skip TLS verify" in str(e.value)


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_https_with_skip_tls_verify_connects_without_a_ca(start_fake_cluster, ca):
    fake = start_fake_cluster(token=TOKEN, tls=ca.issue())

    with connect(fake.url, skip_tls_verify=True) as api:
        assert api.server_version() == "v1.26.4+k3s1"


def test_secrets_are_listed_by_label_in_one_call(start_fake_cluster):
    fake = start_fake_cluster(token=TOKEN, namespaces=["a", "b"])
    fake.put_secret("a", "ours", {"metadata": {"labels": {"owner": "wharf"}}, "data": {}})
    fake.put_secret("b", "theirs", {"metadata": {"labels": {"owner": "team"}}, "data": {}})

    with connect(fake.url) as api:
        secrets = api.list_secrets("owner=wharf")

    assert [(s.namespace, s.name) for s in secrets] == [("a", "ours")]
    assert fake.calls() == {"list": 1}


def test_deleting_a_secret_that_is_gone_is_fine(start_fake_cluster):
    fake = start_fake_cluster(token=TOKEN, namespaces=["a"])

    with connect(fake.url) as api:
        api.delete_secret("a", "never-existed")

    assert fake.calls() == {"delete": 1}


def test_a_token_with_a_line_break_fails_without_echoing_it(start_fake_cluster):
    # http.client refuses such a header with a ValueError that quotes the whole value.
    fake = start_fake_cluster(token=TOKEN)

    api = connect(fake.url, token="first-half-do-not-leak\nsecond-half")
    with api, pytest.raises(kube.KubeError) as caught:
        api.list_secrets("a=b")

    assert "first-half-do-not-leak" not in str(caught.value)
    assert "paste it again" in str(caught.value)


JSON_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"


@pytest.mark.parametrize("drip_head", [False, True], ids=["body", "status-line-and-headers"])
def test_an_answer_that_drips_is_cut_at_the_calls_deadline(drip_head):
    # A byte every 0.2 s: the 1 s read timeout alone would never fire (the server gives up
    # after 20 s).
    server = DrippingServer(head=JSON_HEAD, body=b" " * 100_000, drip_head=drip_head)
    with server, connect(server.url, timeout=1.0) as api:
        started = time.monotonic()
        with pytest.raises(kube.KubeError) as caught:
            api.read_pod("team-a", "wharf-pull-test-0a1b2c3d")
        seconds = time.monotonic() - started

    assert 0.8 <= seconds < 2.0, seconds
    assert "did not answer in time (within 1s) while trying to read pod" in str(caught.value)
    assert server.paths == ["/api/v1/namespaces/team-a/pods/wharf-pull-test-0a1b2c3d"]


def test_listed_secrets_and_service_accounts_read_as_the_single_object_reads_do(
    start_fake_cluster,
):
    # LISTs are read as plain JSON (the client's model objects cost more CPU than the call);
    # what Wharf reads of each object must be what the model-based single reads give.
    fake = start_fake_cluster(token=TOKEN, namespaces=["a"])
    fake.put_secret(
        "a",
        "ours",
        {
            "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"labels": {"owner": "wharf"}, "resourceVersion": "7"},
            "data": {".dockerconfigjson": "e30="},
        },
    )
    account = fake.service_account("a")
    fake.objects[fake.service_account_key("a")].patch(
        {
            "metadata": {**account["metadata"], "annotations": {"wharf.dev/linked": "ours"}},
            "imagePullSecrets": [{"name": "ours"}, {"name": "theirs"}],
        }
    )

    with connect(fake.url) as api:
        listed = api.list_secrets("owner=wharf")
        accounts = api.service_accounts()
        read = api.read_secret("a", "ours")
        read_account = api.read_service_account("a", "default")

    assert listed == [read]
    assert read.type == "kubernetes.io/dockerconfigjson"
    assert read.data == {".dockerconfigjson": "e30="}
    assert accounts == [read_account]
    assert read_account.pull_secrets == ("ours", "theirs")
    assert read_account.annotations == {"wharf.dev/linked": "ours"}


def test_a_list_answer_without_a_list_of_items_is_an_error_with_a_message():
    body = b'{"kind": "SecretList", "items": 5}'
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    server = DrippingServer(fast={"*": answer})
    with server, connect(server.url) as api, pytest.raises(kube.KubeError) as caught:
        api.list_secrets("owner=wharf")

    assert "Could not list secrets on" in str(caught.value)
    assert "list of items" in str(caught.value)
