"""Wharf's container image, built by ``make image`` and run with podman as a user would.

The image is built once per session (buildah's layer cache makes a rebuild of an unchanged
tree quick; ``WHARF_TEST_IMAGE=name`` uses an image built already). Its containers run
with a read-only root file system on the host's network, against the host's PostgreSQL
(a database of their own) and Redis (a database number of their own), with their secrets
in mounted files (``*_FILE``), as ``deploy/compose.yaml`` runs them.

podman on Wharf's machines: the vfs storage driver, runc with cgroupfs, and no raised
RLIMIT_NOFILE (``default_ulimits = []``), all set in a containers.conf written here.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import subprocess
import time
import uuid
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from tests.chartkit import helm_index, make_chart_archive
from tests.servers.base import free_port, require_tool, service_unavailable, wait_until
from tests.servers.ldap import USERS

pytestmark = pytest.mark.services

ROOT = Path(__file__).resolve().parents[2]
STORAGE_DRIVER = os.environ.get("STORAGE_DRIVER", "vfs")
STOP_WITHIN = 10.0
UID = 10001
TREE_LABEL = "org.wharf.build-context"
ENCRYPTION_KEY = "Vr4Yt2cGQx0QJX0f1zQ8m4aV3pZ5b9Gm9m4X3q7yT0c="
ADMIN_PASSWORD = "image-Admin-passw0rd"
# The settings given as mounted files (as deploy/compose.yaml gives them), and the files.
SECRET_FILES = {
    "SECRET_KEY_FILE": "secret_key",
    "WHARF_ENCRYPTION_KEYS_FILE": "encryption_keys",
    "DATABASE_URL_FILE": "database_url",
    "WHARF_ADMIN_PASSWORD_FILE": "admin_password",
}
SYNC_SUCCEEDED = re.compile(r"charts\.tasks\.sync_chart_source\[[0-9a-f-]+\] succeeded")
# The tests' own container storage, apart from the machine's default one: a default store
# that something else first opened with another driver refuses vfs ("database storage graph
# driver "" does not match our storage graph driver "vfs""), whatever Wharf does.
TEST_STORAGE = Path(
    os.environ.get("WHARF_TEST_CONTAINER_STORAGE", "/var/tmp/wharf-test-containers")
)
CONTAINERS_CONF = """\
[containers]
# The default RLIMIT_NOFILE raise is not permitted on these machines.
default_ulimits = []

[engine]
# crun fails on this cgroup set-up; runc with cgroupfs works.
runtime = "runc"
cgroup_manager = "cgroupfs"
"""


class Podman:
    """podman with this machine's settings; every container it starts is removed at the end."""

    def __init__(self, conf: Path, storage_conf: Path):
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(conf),
            "CONTAINERS_STORAGE_CONF": str(storage_conf),
        }
        self.started: list[str] = []

    def __call__(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        result = subprocess.run(
            ["podman", "--storage-driver", STORAGE_DRIVER, *args],
            env=self.env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def start(self, name: str, *args: str) -> str:
        self.started.append(name)
        self("run", "--detach", "--name", name, *args)
        return name

    def logs(self, name: str) -> str:
        result = subprocess.run(
            ["podman", "--storage-driver", STORAGE_DRIVER, "logs", name],
            env=self.env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return result.stdout + result.stderr

    def process_uid(self, name: str) -> int:
        """The real uid of the container's PID 1, as the host's kernel sees it."""
        pid = self("inspect", "--format", "{{.State.Pid}}", name).strip()
        status = Path(f"/proc/{pid}/status").read_text()
        return int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))

    def remove_all(self) -> None:
        for name in self.started:
            self("rm", "--force", "--time", "0", name, check=False)


@pytest.fixture(scope="session")
def podman(tmp_path_factory):
    for tool in ("buildah", "podman", "runc"):
        require_tool(tool)
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    TEST_STORAGE.mkdir(parents=True, exist_ok=True)
    storage_conf = TEST_STORAGE / "storage.conf"
    storage_conf.write_text(
        f'[storage]\ndriver = "{STORAGE_DRIVER}"\n'
        f'graphroot = "{TEST_STORAGE / "storage"}"\nrunroot = "{TEST_STORAGE / "run"}"\n'
    )
    engine = Podman(conf, storage_conf)
    yield engine
    engine.remove_all()


def build_context_digest() -> str:
    """A digest of what the image is built from: the Dockerfile and what .dockerignore lets in."""
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    rules = [rule for rule in rules if rule and not rule.startswith("#") and rule != "*"]
    included = [rule[1:].rstrip("/") for rule in rules if rule.startswith("!")]
    excluded = [rule.removeprefix("**/") for rule in rules if not rule.startswith("!")]
    digest = hashlib.sha256((ROOT / "Dockerfile").read_bytes())
    for top in included:
        paths = [ROOT / top] if (ROOT / top).is_file() else sorted((ROOT / top).rglob("*"))
        for path in paths:
            relative = path.relative_to(ROOT)
            if not path.is_file() or any(
                fnmatch.fnmatch(part, rule) or fnmatch.fnmatch(str(relative), rule)
                for rule in excluded
                for part in relative.parts
            ):
                continue
            digest.update(str(relative).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="session")
def image(podman) -> str:
    """The image of this tree: built by ``make image``, unless the image built last time
    came from the same files (its label says); or WHARF_TEST_IMAGE, used as it is."""
    if name := os.environ.get("WHARF_TEST_IMAGE"):
        return name
    name = "localhost/wharf:test"
    tree = build_context_digest()
    labels = podman("image", "inspect", "--format", "{{json .Labels}}", name, check=False)
    if labels.strip() and json.loads(labels).get(TREE_LABEL) == tree:
        return name
    started = time.monotonic()
    result = subprocess.run(
        ["make", "--no-print-directory", "image", f"IMAGE={name}", f"BUILD_ARGS=--label {TREE_LABEL}={tree}"],
        cwd=ROOT, capture_output=True, text=True, timeout=3600,
        env={**podman.env, "STORAGE_DRIVER": STORAGE_DRIVER},
    )  # fmt: skip
    assert result.returncode == 0, f"make image failed:\n{(result.stdout + result.stderr)[-4000:]}"
    print(f"make image: {time.monotonic() - started:.0f} s")
    return name


def _postgres_url(database: str) -> str:
    configured = os.environ.get("DATABASE_URL", "")
    base = (
        configured if configured.startswith("postgres") else "postgres://postgres@127.0.0.1:5432/x"
    )
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture(scope="session")
def database_url() -> str:
    """An empty PostgreSQL database of the image tests' own (``wharf_image``)."""
    import psycopg

    try:
        with psycopg.connect(_postgres_url("postgres"), autocommit=True, connect_timeout=5) as pg:
            pg.execute("DROP DATABASE IF EXISTS wharf_image WITH (FORCE)")
            pg.execute("CREATE DATABASE wharf_image")
    except psycopg.OperationalError as exc:
        service_unavailable(f"PostgreSQL is not reachable: {exc}")
    return _postgres_url("wharf_image")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """Redis database 7, emptied: the image tests' own broker."""
    import redis

    url = "redis://127.0.0.1:6379/7"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).flushdb()
    except redis.RedisError as exc:
        service_unavailable(f"Redis is not reachable: {exc}")
    return url


@pytest.fixture(scope="session")
def run_args(tmp_path_factory, database_url, redis_url) -> list[str]:
    """What every Wharf container gets: read-only root, host network, secrets as files."""
    secrets = tmp_path_factory.mktemp("secrets")
    values = {
        "secret_key": "image-test-secret-key-0123456789abcdef",
        "encryption_keys": ENCRYPTION_KEY,
        "database_url": database_url,
        "admin_password": ADMIN_PASSWORD,
    }
    for name, value in values.items():
        (secrets / name).write_text(value + "\n")
        (secrets / name).chmod(0o644)  # read by the container's non-root user
    secrets.chmod(0o755)
    env = [f"--env={setting}=/run/secrets/{name}" for setting, name in SECRET_FILES.items()]
    return [
        "--read-only",
        "--network", "host",
        "--tmpfs", "/var/lib/wharf:rw,mode=1777",
        "--volume", f"{secrets}:/run/secrets:ro",
        *env,
        "--env", f"REDIS_URL={redis_url}",
        "--env", "ALLOWED_HOSTS=127.0.0.1,localhost",
        # Plain HTTP in this test: secure-only cookies would never come back.
        "--env", "SESSION_COOKIE_SECURE=0",
        "--env", "CSRF_COOKIE_SECURE=0",
    ]  # fmt: skip


class _FormFields(HTMLParser):
    """The fields a browser would post from the page's form that has a ``name`` input."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict[str, str]] = []
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({})
        elif not self.forms or "name" not in a:
            if (
                tag == "option"
                and self._select
                and ("selected" in a or self._select not in self.forms[-1])
            ):
                self.forms[-1][self._select] = a.get("value", "")
        elif tag == "input" and a.get("type") in ("checkbox", "radio"):
            if "checked" in a:
                self.forms[-1][a["name"]] = a.get("value", "on")
        elif tag == "input" and a.get("type") not in ("submit", "button"):
            self.forms[-1][a["name"]] = a.get("value", "")
        elif tag == "textarea":
            self.forms[-1][a["name"]] = ""
        elif tag == "select":
            self._select = a["name"]

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


def form_fields(html: str) -> dict[str, str]:
    parser = _FormFields()
    parser.feed(html)
    return next(form for form in parser.forms if "name" in form)


def sign_in(base: str, username: str = "admin", password: str = ADMIN_PASSWORD) -> requests.Session:
    session = requests.Session()
    login = f"{base}/accounts/login/"
    session.get(login, timeout=10).raise_for_status()
    response = session.post(
        login,
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        timeout=10,
    )
    assert "/accounts/login/" not in response.url, "sign-in failed"
    assert "sessionid" in session.cookies
    return session


def stop_seconds(podman: Podman, name: str) -> float:
    """Seconds ``podman stop`` (SIGTERM, SIGKILL after 10 s) took; fails if it needed SIGKILL."""
    started = time.monotonic()
    podman("stop", "--time", "10", name, timeout=60)
    took = time.monotonic() - started
    exit_code = int(podman("inspect", "--format", "{{.State.ExitCode}}", name).strip())
    assert exit_code != 137, f"{name} was killed (SIGKILL) after {took:.1f} s"
    return took


def test_the_image_runs_wharf_migrate_web_worker_beat_and_stops_on_sigterm(
    podman, image, run_args, helm_repo, slapd
):
    suffix = uuid.uuid4().hex[:8]
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    podman("run", "--rm", *run_args, image, "migrate", timeout=300)

    # The web container also signs people in through LDAP (the image holds python-ldap).
    ldap_env = [f"--env={name}={value}" for name, value in slapd.wharf_variables().items()]
    web = podman.start(
        f"wharf-web-{suffix}", *run_args, *ldap_env, "--env", f"PORT={port}", image, "web"
    )
    worker = podman.start(f"wharf-worker-{suffix}", *run_args, image, "worker")
    beat = podman.start(f"wharf-beat-{suffix}", *run_args, image, "beat")
    for name in (web, worker, beat):
        assert podman.process_uid(name) == UID, f"{name} runs as root"
    # `manage`, in the running web container (a new container costs a copy of the image
    # with the vfs storage driver).
    podman("exec", web, "/app/scripts/entrypoint.sh", "manage", "ensure_admin")

    def ready() -> bool:
        try:
            return requests.get(f"{base}/readyz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    wait_until(ready, what="the web container's /readyz", timeout=90)
    assert requests.get(f"{base}/readyz", timeout=5).json()["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "broker": "ok",
    }
    # The image's HEALTHCHECK (python scripts/healthcheck.py asking /healthz).
    podman("healthcheck", "run", web)
    # Static files come from the image, collected at build (whitenoise).
    assert requests.get(f"{base}/static/vendor/htmx.min.js", timeout=10).status_code == 200

    # Signed in over HTTP, a Helm repository is added; the worker container indexes it.
    archive = make_chart_archive("image-probe", "1.2.3", description="Indexed by the image")
    helm_repo.put("charts/image-probe-1.2.3.tgz", archive)
    helm_repo.write_index(
        helm_index([{"name": "image-probe", "version": "1.2.3", "archive": archive}])
    )
    session = sign_in(base)
    add = f"{base}/global/chart-repositories/add/"
    fields = form_fields(session.get(add, timeout=10).text)
    fields.update(name=f"image-{suffix}", url=helm_repo.url, tls_mode="insecure")
    response = session.post(add, data=fields, headers={"Referer": add}, timeout=30)
    assert response.status_code == 200 and "/add/" not in response.url, response.text[-2000:]

    def synced_by_the_worker() -> bool:
        return bool(SYNC_SUCCEEDED.search(podman.logs(worker)))

    wait_until(synced_by_the_worker, what="the worker container's sync", timeout=90)
    assert "image-probe" in session.get(f"{base}/charts/", timeout=10).text
    assert "beat: Starting" in podman.logs(beat)
    # A directory user signs in through the LDAP backend of the image (python-ldap in it).
    directory_user = sign_in(base, "alice", USERS["alice"][0])
    assert ">alice<" in directory_user.get(f"{base}/charts/", timeout=10).text

    for name in (web, worker, beat):
        assert stop_seconds(podman, name) < STOP_WITHIN


def test_the_image_holds_no_keys_env_files_git_or_tests(podman, image):
    root = Path(podman("image", "mount", image).strip())
    try:
        assert (root / "app/manage.py").is_file()
        assert (root / "opt/wharf/static/vendor/htmx.min.js").is_file()
        for path in (
            "var",
            ".env",
            ".git",
            "tests",
            "node_modules",
            ".venv",
            "static/vendor/.installed",
        ):
            assert not (root / "app" / path).exists(), f"/app/{path} is in the image"
        unwanted = {"secret_key", "encryption_key", ".env", ".git", "wharf.sqlite3"}
        found = [
            str(Path(folder, name).relative_to(root))
            for folder, dirs, files in os.walk(root / "app")
            for name in dirs + files
            if name in unwanted or name.endswith(".sqlite3")
        ]
        assert found == []
    finally:
        podman("image", "unmount", image, check=False)
