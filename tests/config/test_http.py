"""config.http, the one outbound HTTP layer: what it does the same for every protocol."""

from __future__ import annotations

import datetime as dt
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import certifi
import pytest

from config.http import (
    TLS_CA,
    TLS_CHOICES,
    TLS_INSECURE,
    HttpError,
    HttpSession,
    Transport,
    parse_retry_after,
    trust_store,
)
from config.tunnel import SshTarget

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


def session(transport: Transport | None = None, **kw) -> HttpSession:
    return HttpSession(
        transport or Transport(timeout=5.0),
        host=kw.pop("host", "example.test"),
        what="server",
        user_agent="wharf-test/1",
        **kw,
    )


# --- Retry-After ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        ("Sun, 01 Mar 2026 12:02:30 GMT", 150.0),  # the HTTP-date form, 2½ minutes ahead
        ("Sunday, 01-Mar-26 12:01:00 GMT", 60.0),  # the obsolete RFC 850 form
        ("Sun, 01 Mar 2026 11:00:00 GMT", 0.0),  # already past: no wait
        ("99999999999", 24 * 3600.0),  # never longer than a day
        ("soon", 60.0),  # neither form: the server did ask to wait
        ("inf", 60.0),
        ("-5", 60.0),
    ],
)
def test_retry_after_is_read_in_both_forms(value, seconds):
    assert parse_retry_after(value, now=NOW) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [None, "", "   "])
def test_no_retry_after_is_no_wait(value):
    assert parse_retry_after(value, now=NOW) is None


# --- TLS modes and the trust store --------------------------------------------------------


def test_the_tls_choices_are_defined_once_with_the_labels_the_screens_show():
    assert TLS_CHOICES == [
        ("secure", "Allow only secure connection"),
        ("ca", "Secure with CA certificate"),
        ("insecure", "Allow insecure connection"),
    ]


def test_both_models_take_their_tls_choices_from_the_one_definition():
    from charts.models import HelmRepository
    from registries.models import Registry

    for model in (Registry, HelmRepository):
        assert list(model._meta.get_field("tls_mode").choices) == TLS_CHOICES
    assert Registry.Tls.CA == TLS_CA and Registry.Tls.CA.label == "Secure with CA certificate"


def test_the_trust_store_is_the_operators_bundle_when_set_else_certifi(monkeypatch, tmp_path):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    assert trust_store() == certifi.where()
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "system.pem"))
    assert trust_store() == str(tmp_path / "system.pem")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "corporate.pem"))
    assert trust_store() == str(tmp_path / "corporate.pem")
    assert session().verify == str(tmp_path / "corporate.pem")


def test_a_ca_file_is_private_and_removed_on_close(tmp_path, monkeypatch, ca):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    http = session(Transport(tls=TLS_CA, ca_pem=ca.cert_pem))
    (ca_file,) = tmp_path.iterdir()
    assert ca_file.stat().st_mode & 0o077 == 0
    assert ca_file.read_text() == ca.cert_pem

    http.close()

    assert list(tmp_path.iterdir()) == []


def test_another_host_is_checked_against_the_private_ca_and_the_public_roots(
    tmp_path, monkeypatch, ca
):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with session(Transport(tls=TLS_CA, ca_pem=ca.cert_pem), host="registry.test") as http:
        assert http.verify_for("registry.test") == http.verify
        bundle = open(http.verify_for("auth.example.com")).read()  # noqa: SIM115
        assert bundle.startswith(ca.cert_pem.strip())
        assert open(certifi.where()).read() in bundle  # noqa: SIM115
    assert list(tmp_path.iterdir()) == []


def test_ca_mode_without_a_certificate_is_refused_before_any_request():
    with pytest.raises(HttpError) as caught:
        session(Transport(tls=TLS_CA))
    assert caught.value.kind == HttpError.TLS
    assert "no CA certificate was given" in str(caught.value)


def test_the_transport_repr_holds_no_secret():
    proxied = Transport(
        ca_pem="-----BEGIN CERTIFICATE-----",
        proxy_url="http://proxy:3128",
        proxy_username="proxy-user-x",
        proxy_password="proxy-pw-x",
    )
    tunneled = Transport(
        ssh=SshTarget(host="b", username="u", password="ssh-pw-x", private_key="KEY-x")
    )
    text = repr(proxied) + repr(tunneled)
    for secret in ("proxy-pw-x", "proxy-user-x", "ssh-pw-x", "KEY-x", "BEGIN CERTIFICATE"):
        assert secret not in text


def test_proxy_credentials_reach_requests_only_in_the_url_it_is_given():
    transport = Transport(
        proxy_url="http://proxy:3128", proxy_username="a b", proxy_password="p@ss"
    )
    assert transport.proxy_url_with_credentials() == "http://a%20b:p%40ss@proxy:3128"
    assert transport.proxy_address == "proxy:3128"


# --- bounded reads and error translation, against a small server on loopback -------------------


class _Body(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        size = int(self.path.strip("/") or 0)
        declare = "undeclared" not in self.headers.get("X-Test", "")
        self.send_response(200)
        if declare:
            self.send_header("Content-Length", str(size))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"x" * size)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def body_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Body)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_body_declared_over_the_limit_is_refused_unread(body_server):
    with session(Transport(tls=TLS_INSECURE)) as http:
        response = http.request("GET", f"{body_server}/5000", stream=True)
        with pytest.raises(HttpError) as caught:
            http.read_limited(response, 1000, "the index")
    assert caught.value.kind == HttpError.CONTENT
    assert str(caught.value) == "The index is 5,000 bytes, more than the limit of 1,000."


def test_a_body_that_does_not_declare_its_size_is_counted(body_server):
    with session(Transport(tls=TLS_INSECURE)) as http:
        response = http.request(
            "GET", f"{body_server}/5000", stream=True, headers={"X-Test": "undeclared"}
        )
        with pytest.raises(HttpError, match="larger than the limit of 1,000 bytes"):
            http.read_limited(response, 1000, "the index")
        response = http.request("GET", f"{body_server}/999", stream=True)
        assert http.read_limited(response, 1000, "the index") == b"x" * 999
        assert http.requests_made == 2


def test_errors_come_out_as_the_callers_own_type_naming_host_and_reason():
    class ProtocolError(HttpError):
        pass

    with session(error_class=ProtocolError) as http, pytest.raises(ProtocolError) as caught:
        http.request("GET", "http://127.0.0.1:9/")  # the discard port: nothing listens
    assert caught.value.kind == HttpError.UNREACHABLE
    assert "Could not reach the server at 127.0.0.1:9: the connection was refused" in str(
        caught.value
    )


class _Throttling(BaseHTTPRequestHandler):
    """429 (or 503) with ``Retry-After: 0`` for the first N requests, then 200; both with
    Docker Hub's rate-limit headers."""

    def do_GET(self) -> None:
        server = self.server
        server.seen += 1  # type: ignore[attr-defined]
        refused = server.seen <= server.refusals  # type: ignore[attr-defined]
        self.send_response(server.status if refused else 200)  # type: ignore[attr-defined]
        self.send_header("RateLimit-Limit", "100;w=21600")
        self.send_header("RateLimit-Remaining", f"{100 - server.seen};w=21600")  # type: ignore[attr-defined]
        if refused:
            self.send_header("Retry-After", "0")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_PUT = do_GET

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def throttling_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Throttling)
    server.daemon_threads = True
    server.seen, server.refusals, server.status = 0, 2, 429  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_short_429_is_asked_again_and_every_answer_reports_its_rate_limit(throttling_server):
    readings = []
    url = f"http://127.0.0.1:{throttling_server.server_address[1]}/"
    with session(on_rate_limit=lambda host, reading: readings.append(reading)) as http:
        response = http.request("GET", url)
    assert response.status_code == 200
    assert throttling_server.seen == 3
    assert [r.remaining for r in readings] == [99, 98, 97]
    assert [r.throttled for r in readings] == [True, True, False]


def test_a_503_with_retry_after_is_asked_again_too(throttling_server):
    throttling_server.status = 503
    url = f"http://127.0.0.1:{throttling_server.server_address[1]}/"
    with session() as http:
        assert http.request("GET", url).status_code == 200
    assert throttling_server.seen == 3


def test_a_body_read_from_a_stream_is_not_sent_twice(throttling_server, tmp_path):
    body = tmp_path / "chart.tgz"
    body.write_bytes(b"chart")
    url = f"http://127.0.0.1:{throttling_server.server_address[1]}/"
    with session() as http, body.open("rb") as stream:
        assert http.request("PUT", url, data=stream).status_code == 429
    assert throttling_server.seen == 1


@pytest.mark.parametrize(
    "path",
    [
        "config/http.py",
        "config/ratelimit.py",
        "config/tunnel.py",
        "registries/oci.py",
        "charts/helmrepo.py",
    ],
)
def test_the_network_modules_import_no_django(path):
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).resolve().parents[2] / path).read_text())
    imported = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ] + [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [name for name in imported if name.split(".")[0] == "django"]
