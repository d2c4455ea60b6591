"""registries.oci against real registries (distribution), each behaviour once."""

import socket
import tempfile

import pytest
from urllib3.exceptions import InsecureRequestWarning

from config.http import Transport
from registries import oci
from registries.oci import Connection, RegistryClient, RegistryError
from tests.servers.base import wait_for


def connect(server, *, username=None, password=None, **transport) -> Connection:
    """A Connection to a test registry, with its own credentials unless told otherwise."""
    transport.setdefault("timeout", 5.0)
    return Connection(
        host=server.host,
        username=server.username if username is None else username,
        password=server.password if password is None else password,
        transport=Transport(**transport),
    )


def ping_error(conn: Connection) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        oci.ping(conn)
    return caught.value


# --- plain HTTP registries ---------------------------------------------------


@pytest.mark.services
def test_public_registry_answers_ping_without_authentication(public_registry):
    result = oci.ping(connect(public_registry, tls=oci.TLS_INSECURE))

    assert result.auth_scheme == "none"
    assert result.api_version == "registry/2.0"


@pytest.mark.services
def test_credentials_given_to_a_public_registry_are_not_an_error(public_registry):
    result = oci.ping(connect(public_registry, username="someone", password="x", tls="insecure"))

    assert result.auth_scheme == "none"


@pytest.mark.services
def test_private_registry_accepts_the_right_password_with_basic_auth(private_registry):
    result = oci.ping(connect(private_registry, tls=oci.TLS_INSECURE))

    assert result.auth_scheme == "basic"


@pytest.mark.services
def test_private_registry_rejects_a_wrong_password_as_an_auth_error(private_registry):
    error = ping_error(connect(private_registry, password="wrong-Passw0rd", tls=oci.TLS_INSECURE))

    assert error.kind == "auth"
    assert "rejected the credentials" in str(error)
    assert "wrong-Passw0rd" not in str(error)


@pytest.mark.services
def test_private_registry_without_credentials_is_an_auth_error(private_registry):
    error = ping_error(connect(private_registry, username="", password="", tls="insecure"))

    assert error.kind == "auth"
    assert "requires credentials" in str(error)


@pytest.mark.services
def test_insecure_mode_falls_back_to_plain_http(public_registry):
    result = oci.ping(connect(public_registry, tls=oci.TLS_INSECURE))

    assert result.base_url == f"http://{public_registry.host}"


@pytest.mark.services
def test_secure_mode_against_a_plain_http_registry_is_a_tls_error(public_registry):
    error = ping_error(connect(public_registry, tls=oci.TLS_SECURE))

    assert error.kind == "tls"
    assert "Allow insecure connection" in str(error)


@pytest.mark.services
def test_server_that_is_not_a_registry_is_a_protocol_error(token_registry):
    # The token service is an HTTP server that answers 404 on /v2/.
    realm_host = token_registry.token_server.realm.split("/")[2]

    error = ping_error(
        Connection(host=realm_host, transport=Transport(tls=oci.TLS_INSECURE, timeout=5))
    )

    assert error.kind == "protocol"
    assert "does not look like a container registry" in str(error)


@pytest.mark.services
def test_get_json_reads_the_catalog_of_a_registry(public_registry):
    with RegistryClient(connect(public_registry, tls=oci.TLS_INSECURE)) as client:
        assert client.get_json("/v2/_catalog") == {"repositories": []}


# --- TLS -------------------------------------------------------------------------


@pytest.mark.services
def test_tls_registry_is_trusted_with_its_ca_certificate(tls_registry, ca):
    result = oci.ping(connect(tls_registry, tls=oci.TLS_CA, ca_pem=ca.cert_pem))

    assert result.base_url == f"https://{tls_registry.host}"
    assert result.auth_scheme == "basic"


@pytest.mark.services
def test_secure_mode_refuses_a_certificate_from_a_private_ca(tls_registry):
    error = ping_error(connect(tls_registry, tls=oci.TLS_SECURE))

    assert error.kind == "tls"
    assert "Secure with CA certificate" in str(error)
    assert "Allow insecure connection" in str(error)


@pytest.mark.services
def test_ca_mode_refuses_a_certificate_from_another_ca(tls_registry, other_ca):
    error = ping_error(connect(tls_registry, tls=oci.TLS_CA, ca_pem=other_ca.cert_pem))

    assert error.kind == "tls"
    assert "Allow insecure connection" in str(error)


@pytest.mark.services
def test_insecure_mode_accepts_an_unverified_certificate_without_warnings(tls_registry, recwarn):
    result = oci.ping(connect(tls_registry, tls=oci.TLS_INSECURE))

    assert result.base_url == f"https://{tls_registry.host}"
    assert not [w for w in recwarn if issubclass(w.category, InsecureRequestWarning)]


@pytest.mark.services
def test_ca_certificate_file_is_private_and_removed_on_close(
    tls_registry, ca, tmp_path, monkeypatch
):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    with RegistryClient(connect(tls_registry, tls=oci.TLS_CA, ca_pem=ca.cert_pem)) as client:
        client.ping()
        (ca_file,) = tmp_path.iterdir()
        assert ca_file.stat().st_mode & 0o077 == 0

    assert list(tmp_path.iterdir()) == []


# --- Bearer tokens ------------------------------------------------------------------


@pytest.mark.services
def test_token_registry_accepts_the_right_password_with_a_bearer_token(token_registry):
    result = oci.ping(connect(token_registry, tls=oci.TLS_INSECURE))

    assert result.auth_scheme == "bearer"


@pytest.mark.services
def test_token_registry_rejects_a_wrong_password_as_an_auth_error(token_registry):
    error = ping_error(connect(token_registry, password="not-it", tls=oci.TLS_INSECURE))

    assert error.kind == "auth"
    assert "incorrect username or password" in str(error)
    assert "not-it" not in str(error)


@pytest.mark.services
def test_token_registry_without_credentials_is_an_auth_error(token_registry):
    error = ping_error(connect(token_registry, username="", password="", tls=oci.TLS_INSECURE))

    assert error.kind == "auth"


@pytest.mark.services
def test_bearer_token_for_a_scope_is_fetched_once_and_reused(token_registry):
    requests_before = len(token_registry.token_server.requests)
    scope = "repository:wharf/charts:pull"

    with RegistryClient(connect(token_registry, tls=oci.TLS_INSECURE)) as client:
        for _ in range(3):
            response = client.request("GET", "/v2/wharf/charts/tags/list", scope=scope)
            # Authorised, and the repository does not exist yet.
            assert response.status_code == 404

    asked = token_registry.token_server.requests[requests_before:]
    assert [r["scope"] for r in asked] == [[scope]]


@pytest.mark.services
def test_a_token_for_a_new_scope_is_asked_for_up_front_once_however_many_threads_want_it(
    token_registry,
):
    """One session across repositories: the realm learnt once, no 401 for each new scope."""
    from concurrent.futures import ThreadPoolExecutor

    requests_before = len(token_registry.token_server.requests)
    log_before = len(token_registry.log_path.read_text().splitlines())
    scopes = [f"repository:wharf/up-front-{i}:pull" for i in range(3)]

    with RegistryClient(connect(token_registry, tls=oci.TLS_INSECURE)) as client:

        def list_tags(scope: str) -> int:
            name = scope.split(":")[1]
            return client.request("GET", f"/v2/{name}/tags/list", scope=scope).status_code

        assert list_tags(scopes[0]) == 404  # the one challenge: the realm is learnt
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(list_tags, [s for s in scopes[1:] for _ in range(4)]))
    assert statuses == [404] * 8  # authorised (the repositories do not exist)

    asked = [r["scope"] for r in token_registry.token_server.requests[requests_before:]]
    assert sorted(asked) == sorted([scope] for scope in scopes)

    def logged() -> list[str]:
        lines = token_registry.log_path.read_text().splitlines()[log_before:]
        return [line for line in lines if '"GET /v2/wharf/up-front' in line]

    # 1 challenge, its retry, and the 8 requests sent with a token at once.
    lines = wait_for(lambda: (found := logged()) and len(found) >= 10 and found, what="the log")
    assert sum('" 401 ' in line for line in lines) == 1


# --- network failures and secrets --------------------------------------------------


def test_closed_port_is_reported_as_unreachable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{sock.getsockname()[1]}"  # bound, never listening

    error = ping_error(Connection(host=host, transport=Transport(timeout=2)))

    assert error.kind == "unreachable"
    assert host in str(error)
    assert "refused" in str(error)


def test_unknown_host_name_is_reported_as_unreachable():
    error = ping_error(Connection(host="registry.invalid", transport=Transport(timeout=2)))

    assert error.kind == "unreachable"
    assert "registry.invalid" in str(error)


def test_server_that_never_answers_is_reported_as_unreachable_after_the_timeout():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()  # the kernel accepts the connection; nobody ever answers
        host = f"127.0.0.1:{sock.getsockname()[1]}"

        error = ping_error(Connection(host=host, transport=Transport(timeout=0.3)))

    assert error.kind == "unreachable"
    assert "did not answer within 0.3 seconds" in str(error)


def test_connection_repr_does_not_contain_the_password():
    conn = Connection(host="registry.example.com", username="me", password="hunter2-secret")

    assert "hunter2-secret" not in repr(conn)
    assert "me" in repr(conn)


def test_ca_mode_without_a_ca_certificate_is_a_tls_error():
    error = ping_error(Connection(host="registry.example.com", transport=Transport(tls=oci.TLS_CA)))

    assert error.kind == "tls"


def test_challenge_header_with_commas_inside_quotes_is_parsed():
    challenge = oci.parse_challenge(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:team/app:pull,push"'
    )

    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.example.com/token",
        "service": "registry.example.com",
        "scope": "repository:team/app:pull,push",
    }


@pytest.mark.services
def test_stopped_registry_is_unreachable_until_started_again(registry_factory):
    registry = registry_factory()
    conn = connect(registry, tls=oci.TLS_INSECURE)

    registry.stop()
    error = ping_error(conn)
    registry.start()

    assert error.kind == "unreachable"
    assert oci.ping(conn).auth_scheme == "none"


def test_a_tag_list_page_linking_back_to_an_earlier_one_fails_not_ends_the_list():
    import json

    from tests.servers.catalog import HostileCatalog

    with HostileCatalog() as server:
        server.tag_pages = [
            {"body": json.dumps({"tags": ["1.0.0"]}).encode(),
             "link": '</v2/charts/a/tags/list?page=1>; rel="next"'},
            {"body": json.dumps({"tags": ["1.1.0"]}).encode(),
             "link": '</v2/charts/a/tags/list?page=0>; rel="next"'},
        ]  # fmt: skip
        conn = oci.Connection(host=server.host, transport=oci.Transport(tls=oci.TLS_INSECURE))
        with oci.RegistryClient(conn) as client, pytest.raises(oci.RegistryError) as failed:
            client.list_tags("charts/a")

    # Cut short, a tag list would have the sync mark the versions after it removed upstream.
    assert "back to a page" in str(failed.value)


def test_a_tag_list_that_outlasts_its_total_deadline_fails_whole():
    import json

    from tests.servers.catalog import HostileCatalog

    with HostileCatalog() as server:
        # Each page links to a new one, slowly: only the total deadline ends it.
        server.tag_pages = [
            {"body": json.dumps({"tags": [f"1.{i}.0"]}).encode(),
             "link": f'</v2/charts/a/tags/list?page={i + 1}>; rel="next"', "delay": 0.3}
            for i in range(50)
        ]  # fmt: skip
        conn = oci.Connection(host=server.host, transport=oci.Transport(tls=oci.TLS_INSECURE))
        with oci.RegistryClient(conn) as client, pytest.raises(oci.RegistryError) as failed:
            client.list_tags("charts/a", deadline=1.0)
        asked = len([path for path, _ in server.seen if "tags/list" in path])

    assert "WHARF_OCI_TAGS_DEADLINE" in str(failed.value)
    assert asked < 10
