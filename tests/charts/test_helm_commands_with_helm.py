"""The flags the chart page gives Helm are the ones Helm needs: each is mapped to the
option of Helm's own SDK (helm-python-sdk: Helm v4's Go code, no helm binary), and the
chart is pulled with it from a real server, one per TLS set-up, and fails without it.

- plain HTTP: the OCI test registry (docker-registry) without TLS, ``--plain-http``;
- a private CA and an unverified certificate: a Helm repository over HTTPS with a
  certificate from the test CA, ``--ca-file`` and ``--insecure-skip-tls-verify``. (The
  SDK's OCI pull takes these options but its registry client, which it always passes to
  Helm, has no TLS settings, so Helm ignores them there: an OCI registry with TLS cannot
  be checked through this SDK yet; the flags are Helm's same ones.)

Each pull runs in a child process: Helm's Go code keeps state (its trust store, the
registry client's credentials) for the life of a process, and one TLS set-up must not
leak into the next test's.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from charts.helmcommands import CA_FILE, INSECURE_SKIP_TLS_VERIFY, PLAIN_HTTP, helm_commands
from charts.models import Chart
from tests.charts.helpers import oci_registry, push_versions, source_of, sync, unique
from tests.servers.base import service_unavailable

pytestmark = [pytest.mark.services, pytest.mark.django_db]

# Each flag the page may show on ``helm pull`` / ``helm install`` -> the SDK's pull option.
SDK_OPTION = {
    PLAIN_HTTP: "plain_http",
    INSECURE_SKIP_TLS_VERIFY: "insecure_skip_tls_verify",
    CA_FILE: "ca_file",
}

# The Python binding's pull() does not name ca_file yet; its C ABI takes it in the same
# options document (helm-c-sdk's pull options: plain_http, insecure_skip_tls_verify,
# cert_file, key_file, ca_file), so the child passes the options there as they are.
PULL = textwrap.dedent(
    """
    import json, sys
    import helm_python
    from helm_python import _native, registry
    ref, options = sys.argv[1], json.loads(sys.argv[2])
    result = _native.call_string(
        "helm_pull", registry._client_handle(None), ref, json.dumps(options)
    )
    print(result)
    """
)


@pytest.fixture(scope="module")
def sdk():
    if importlib.util.find_spec("helm_python") is None:
        service_unavailable("helm-python-sdk is not installed (pip install -e '.[dev]')")


def pull_options(line: str) -> tuple[str, dict]:
    """The reference and the SDK options of a ``helm pull`` line as the page shows it."""
    words = shlex.split(line)
    assert words[:2] == ["helm", "pull"]
    ref, options, rest = words[2], {}, iter(words[3:])
    for word in rest:
        if word == "--version":
            options["version"] = next(rest)
        elif word == "--repo":
            options["repo_url"] = next(rest)
        elif word == CA_FILE:
            options[SDK_OPTION[word]] = next(rest)
        else:
            assert word in SDK_OPTION, f"the page shows {word}, which the test cannot map"
            options[SDK_OPTION[word]] = True
    return ref, options


def helm_pull(line: str, workdir: Path) -> subprocess.CompletedProcess:
    ref, options = pull_options(line)
    if "ca_file" in options:  # the page's file name, saved where the user runs helm
        options["ca_file"] = str(workdir / options["ca_file"])
    options["dest_dir"] = str(workdir)
    return subprocess.run(
        [sys.executable, "-c", PULL, ref, json.dumps(options)],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(workdir), "HELM_CONFIG_HOME": str(workdir)},
    )


class HttpsHelmRepo:
    """A Helm repository (index.yaml and archives) served over HTTPS from a folder."""

    def __init__(self, root: Path, cert_path: Path, key_path: Path) -> None:
        import http.server
        import ssl
        import threading
        from functools import partial

        handler = partial(QuietFiles, directory=str(root))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.root = root
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _quiet_files():
    import http.server

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format, *args):  # the test's output stays the test's
            pass

    return Quiet


QuietFiles = _quiet_files()


@pytest.fixture(scope="module")
def https_helm_repo(ca, tmp_path_factory):
    from tests.chartkit import helm_index, make_chart_archive

    root = tmp_path_factory.mktemp("https-helm-repo")
    (root / "charts").mkdir()
    archive = make_chart_archive("helmcheck", "0.3.0")
    (root / "charts" / "helmcheck-0.3.0.tgz").write_bytes(archive)
    (root / "index.yaml").write_bytes(
        helm_index([{"name": "helmcheck", "version": "0.3.0", "archive": archive}])
    )
    cert_path, key_path = ca.issue().write(root.parent, "https-helm-repo")
    repo = HttpsHelmRepo(root, cert_path, key_path)
    yield repo
    repo.stop()


def helm_repo_chart(repo, tls_mode: str, ca_pem: str = "") -> Chart:
    from charts.models import ChartSource, ChartVersion, HelmRepository

    repository = HelmRepository.objects.create(
        name=unique("tls"), url=repo.url, tls_mode=tls_mode, ca_certificate=ca_pem
    )
    source = ChartSource.objects.create(kind="helm", helm_repository=repository)
    chart = Chart.objects.create(source=source, name="helmcheck", latest_version="0.3.0")
    ChartVersion.objects.create(chart=chart, version="0.3.0", fingerprint="0.3.0")
    return chart


def chart_in(server, **registry_fields) -> Chart:
    repository = f"{unique('charts/tls')}/helmcheck"  # Helm names a chart by its repository
    push_versions(server, repository, "helmcheck", ["0.3.0"])
    source = source_of(oci_registry(server, [repository], **registry_fields), repository)
    sync(source)
    return Chart.objects.get(source=source)


def pull_line(chart: Chart, variant: str) -> tuple[str, str]:
    guide = helm_commands(chart, chart.versions.get())
    commands = {v.key: {c.key: c.line for c in v.commands} for v in guide.variants}
    return commands[variant]["pull"], guide.ca_pem


def test_the_plain_http_line_pulls_from_a_plain_http_registry(sdk, chart_registry, tmp_path):
    chart = chart_in(chart_registry)  # "Allow insecure connection", plain HTTP
    line, _ = pull_line(chart, "plain-http")
    assert PLAIN_HTTP in shlex.split(line)

    pulled = helm_pull(line, tmp_path)

    assert pulled.returncode == 0, pulled.stderr
    assert (tmp_path / "helmcheck-0.3.0.tgz").exists()
    # And without the flag Helm speaks HTTPS to it, and fails: the flag is needed.
    assert helm_pull(line.replace(f" {PLAIN_HTTP}", ""), tmp_path).returncode != 0


def test_the_ca_file_line_pulls_from_https_with_a_private_ca(sdk, https_helm_repo, ca, tmp_path):
    chart = helm_repo_chart(https_helm_repo, "ca", ca.cert_pem)
    line, ca_pem = pull_line(chart, "one-line")
    words = shlex.split(line)
    ca_file = words[words.index(CA_FILE) + 1]
    (tmp_path / ca_file).write_text(ca_pem)  # as the page says: save the CA as that file

    pulled = helm_pull(line, tmp_path)

    assert pulled.returncode == 0, pulled.stderr
    assert (tmp_path / "helmcheck-0.3.0.tgz").exists()
    without = helm_pull(line.replace(f" {CA_FILE} {ca_file}", ""), tmp_path)
    assert without.returncode != 0 and "certificate" in without.stderr


def test_the_skip_verify_line_pulls_from_https_with_an_unverified_certificate(
    sdk, https_helm_repo, tmp_path
):
    chart = helm_repo_chart(https_helm_repo, "insecure")
    line, _ = pull_line(chart, "one-line")
    assert INSECURE_SKIP_TLS_VERIFY in shlex.split(line)

    pulled = helm_pull(line, tmp_path)

    assert pulled.returncode == 0, pulled.stderr
    assert (tmp_path / "helmcheck-0.3.0.tgz").exists()
    without = helm_pull(line.replace(f" {INSECURE_SKIP_TLS_VERIFY}", ""), tmp_path)
    assert without.returncode != 0 and "certificate" in without.stderr


# Signs in as the login line says (each of its flags -> the SDK's login option), then pulls.
LOGIN_AND_PULL = textwrap.dedent(
    """
    import json, os, sys
    import helm_python
    host, login_options, ref, pull_options = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
    with helm_python.RegistryClient(
        plain_http=login_options.get("plain_http", False),
        credentials_file=os.path.join(os.environ["HOME"], "registry.json"),
    ) as client:
        client.login(host, os.environ["HELM_USERNAME"], os.environ["HELM_PASSWORD"], **login_options)
        print(json.dumps(client.pull(ref, **pull_options)))
    """
)
LOGIN_OPTION = {PLAIN_HTTP: "plain_http", "--insecure": "insecure"}


def test_the_login_line_signs_in_to_a_private_plain_http_registry(
    sdk, private_chart_registry, tmp_path
):
    chart = chart_in(private_chart_registry)
    guide = helm_commands(chart, chart.versions.get())
    commands = {c.key: c.line for c in guide.variants[0].commands}
    words = shlex.split(commands["login"])  # "$HELM_USERNAME" stays a shell variable here
    assert words[:3] == ["helm", "registry", "login"]
    host = words[3]
    assert words[-4:] == ["--username", "$HELM_USERNAME", "--password", "$HELM_PASSWORD"]
    login_options = {LOGIN_OPTION[w]: True for w in words[4:-4]}
    ref, options = pull_options(commands["pull"])

    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "HELM_CONFIG_HOME": str(tmp_path),
        "HELM_USERNAME": private_chart_registry.username,
        "HELM_PASSWORD": private_chart_registry.password,
    }
    run = subprocess.run(
        [sys.executable, "-c", LOGIN_AND_PULL, host, json.dumps(login_options), ref,
         json.dumps({**options, "destination": str(tmp_path)})],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip

    assert login_options == {"plain_http": True}
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "helmcheck-0.3.0.tgz").exists()
