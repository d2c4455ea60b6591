"""Chart test kit: archives, Helm indexes, pushers, a slow-network relay and an nginx Helm repo.

Plain functions and classes, no pytest fixtures, so the benchmarks under ``bench/`` can use
them as the tests do. The fixtures that wrap them live in ``tests/charts/conftest.py``.

- :func:`make_chart_archive` builds a Helm-style ``.tgz`` with deterministic bytes;
  :func:`chart_config` is the config blob Helm pushes beside it.
- :func:`push_chart_with_oras` pushes a chart with oras-py, as a real client would;
  :class:`OciPusher` pushes charts, images and deliberately broken artifacts quickly
  with plain ``requests``.
- :func:`helm_index` and :func:`realistic_index` write ``index.yaml`` files.
- :class:`DelayingRelay` makes a loopback server behave like one across a network.
- :class:`NginxHelmRepo` serves a Helm repository with Debian's nginx.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import gzip
import hashlib
import io
import json
import os
import queue
import random
import shutil
import socket
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests
import yaml

from charts import helmoci
from tests.servers.base import LOOPBACK, ChildServer

# --- media types (as Helm 3 writes them) ----------------------------------------------

OCI_MANIFEST = helmoci.OCI_MANIFEST_MEDIA_TYPE
HELM_CONFIG = helmoci.HELM_CONFIG_MEDIA_TYPE
HELM_CHART_LAYER = helmoci.HELM_CHART_CONTENT_MEDIA_TYPE
IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
IMAGE_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

FIXED_MTIME = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp())

try:
    _YamlDumper: type = yaml.CSafeDumper
    _YamlLoader: type = yaml.CSafeLoader
except AttributeError:  # PyYAML without libyaml
    _YamlDumper, _YamlLoader = yaml.SafeDumper, yaml.SafeLoader


sha256_digest = helmoci.sha256_digest
oci_tag = helmoci.tag_of_version


# --- chart archives ------------------------------------------------------------------


def _tar_member(tar: tarfile.TarFile, name: str, data: bytes | None) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if data is None:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tar.addfile(info)
    else:
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))


def deterministic_tgz(files: Mapping[str, bytes]) -> bytes:
    """A gzip'd tar of ``files`` (path → bytes) in the given order; same input, same bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files.items():
            _tar_member(tar, name, data)
    return gzip.compress(raw.getvalue(), compresslevel=6, mtime=0)


def chart_metadata(
    name: str,
    version: str,
    *,
    app_version: str = "1.0.0",
    description: str = "",
    keywords: Iterable[str] = (),
    icon: str | None = None,
) -> dict:
    """The Chart.yaml mapping :func:`make_chart_archive` writes."""
    meta: dict[str, Any] = {"apiVersion": "v2", "name": name, "version": version}
    if description:
        meta["description"] = description
    meta["type"] = "application"
    if keywords:
        meta["keywords"] = list(keywords)
    if icon:
        meta["icon"] = icon
    meta["appVersion"] = app_version
    return meta


def make_chart_archive(
    name: str,
    version: str,
    *,
    app_version: str = "1.0.0",
    description: str = "",
    values: str = "replicaCount: 1\n",
    readme: str = "# name\n",
    extra: dict[str, bytes] | None = None,
    keywords: Iterable[str] = (),
    icon: str | None = None,
) -> bytes:
    """A valid Helm chart ``.tgz`` for ``name``/``version``, byte-for-byte reproducible.

    ``extra`` adds files by path inside the chart folder (``{"templates/x.yaml": b"..."}``).
    ``readme`` defaults to ``# name`` with the chart's name put in.
    """
    meta = chart_metadata(
        name,
        version,
        app_version=app_version,
        description=description,
        keywords=keywords,
        icon=icon,
    )
    if readme == "# name\n":
        readme = f"# {name}\n"
    files: dict[str, bytes | None] = {
        f"{name}/Chart.yaml": yaml.dump(meta, Dumper=_YamlDumper, sort_keys=False).encode(),
        f"{name}/values.yaml": values.encode(),
        f"{name}/README.md": readme.encode(),
        f"{name}/templates/deployment.yaml": (
            b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n"
            b"  name: {{ .Release.Name }}\nspec:\n  replicas: {{ .Values.replicaCount }}\n"
        ),
        f"{name}/templates/NOTES.txt": b"Installed {{ .Chart.Name }}.\n",
    }
    for path, data in (extra or {}).items():
        files[f"{name}/{path}"] = data
    return deterministic_tgz(files)


def chart_yaml_of(archive: bytes) -> dict:
    """Chart.yaml of a chart archive, read without checks (for test data only)."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar:
            parts = member.name.strip("./").split("/")
            if len(parts) == 2 and parts[1] == "Chart.yaml":
                handle = tar.extractfile(member)
                assert handle is not None
                return yaml.load(handle.read(), Loader=_YamlLoader)
    raise ValueError("no Chart.yaml in the archive")


def chart_config(archive_bytes_or_meta: bytes | Mapping) -> bytes:
    """The Helm config blob: Chart.yaml metadata as compact JSON, as Helm writes it."""
    meta = (
        chart_yaml_of(archive_bytes_or_meta)
        if isinstance(archive_bytes_or_meta, bytes | bytearray)
        else dict(archive_bytes_or_meta)
    )
    return helmoci.helm_config(meta)


def chart_manifest(config: bytes, archive: bytes, meta: Mapping | None = None) -> bytes:
    """The OCI manifest Helm writes for a chart (with its org.opencontainers annotations)."""
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": HELM_CONFIG, "digest": sha256_digest(config), "size": len(config)},
        "layers": [
            {
                "mediaType": HELM_CHART_LAYER,
                "digest": sha256_digest(archive),
                "size": len(archive),
            }
        ],
    }
    if meta:
        annotations = {
            "org.opencontainers.image.title": meta.get("name"),
            "org.opencontainers.image.version": meta.get("version"),
            "org.opencontainers.image.description": meta.get("description"),
        }
        manifest["annotations"] = {k: v for k, v in annotations.items() if v}
    return json.dumps(manifest, separators=(",", ":")).encode()


# --- pushing with oras-py ---------------------------------------------------------------


def _auth_backend(scheme: str, registry_host: str, verify: bool | str) -> str:
    """oras-py's auth backend for a registry: ``basic`` if /v2/ asks for Basic, else ``token``."""
    with requests.Session() as session:
        session.trust_env = False
        answer = session.get(f"{scheme}://{registry_host}/v2/", timeout=10, verify=verify)
    challenge = answer.headers.get("WWW-Authenticate", "")
    return "basic" if challenge.lower().startswith("basic") else "token"


def push_chart_with_oras(
    registry_host: str,
    repository: str,
    tag: str,
    archive: bytes,
    *,
    username: str = "",
    password: str = "",
    insecure: bool = True,
    ca_path: str | os.PathLike | None = None,
) -> str:
    """Push a chart with oras-py and Helm's media types; return the manifest digest.

    ``insecure`` means plain HTTP. oras-py defaults to the bearer-token flow, so a registry
    that challenges with Basic gets ``auth_backend="basic"``.
    """
    import oras.provider  # slow to import; only the tests that push need it

    scheme = "http" if insecure else "https"
    verify: bool | str = str(ca_path) if ca_path else True
    registry = oras.provider.Registry(
        hostname=registry_host,
        insecure=insecure,
        tls_verify=verify,
        auth_backend=_auth_backend(scheme, registry_host, verify),
    )
    registry.session.trust_env = False  # never through a proxy from the environment
    if username:
        registry.auth.set_basic_auth(username, password)
    container = registry.get_container(f"{registry_host}/{repository}:{oci_tag(tag)}")
    config = chart_config(archive)
    with tempfile.TemporaryDirectory(prefix="wharf-oras-") as tmp:
        # oras-py uploads blobs from files.
        chart_path, config_path = Path(tmp, "chart.tgz"), Path(tmp, "config.json")
        chart_path.write_bytes(archive)
        config_path.write_bytes(config)
        layer = {
            "mediaType": HELM_CHART_LAYER,
            "digest": sha256_digest(archive),
            "size": len(archive),
        }
        conf = {"mediaType": HELM_CONFIG, "digest": sha256_digest(config), "size": len(config)}
        for path, descriptor in ((chart_path, layer), (config_path, conf)):
            answer = registry.upload_blob(str(path), container, descriptor)
            if answer.status_code not in (200, 201, 202):
                raise RuntimeError(f"oras blob upload failed: {answer.status_code} {answer.text}")
        manifest = json.loads(chart_manifest(config, archive, chart_yaml_of(archive)))
        answer = registry.upload_manifest(manifest, container)
    if answer.status_code != 201:
        raise RuntimeError(f"oras manifest upload failed: {answer.status_code} {answer.text}")
    return answer.headers["Docker-Content-Digest"]


# --- pushing with plain requests ----------------------------------------------------------


class OciPusher:
    """A fast pusher over plain ``requests``: Basic auth (or a Bearer ``token`` already
    fetched for every repository pushed to), monolithic uploads, keep-alive.

    Thread-safe: each thread gets its own keep-alive session, so a thread pool can share
    one pusher. Raises ``requests.HTTPError`` when the registry refuses.
    """

    def __init__(
        self,
        base_url: str,
        username: str = "",
        password: str = "",
        verify: bool | str = True,
        timeout: float = 30.0,
        token: str = "",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = (username, password) if username else None
        self.token = token
        self.verify = verify
        self.timeout = timeout
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"<OciPusher {self.base_url}>"

    @property
    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False
            session.auth = self.auth
            if self.token:
                session.headers["Authorization"] = f"Bearer {self.token}"
            session.verify = self.verify
            self._local.session = session
        return session

    def _request(self, method: str, url: str, **kwargs) -> requests.Response:
        answer = self.session.request(
            method, urljoin(self.base_url + "/", url), timeout=self.timeout, **kwargs
        )
        if answer.status_code >= 400:
            raise requests.HTTPError(
                f"{method} {url}: {answer.status_code} {answer.text[:300]}", response=answer
            )
        return answer

    def push_blob(self, repository: str, data: bytes) -> str:
        """Upload ``data`` as a blob (skipped if already there); return its digest."""
        digest = sha256_digest(data)
        head = self.session.head(
            f"{self.base_url}/v2/{repository}/blobs/{digest}", timeout=self.timeout
        )
        if head.status_code == 200:
            return digest
        started = self._request("POST", f"/v2/{repository}/blobs/uploads/")
        location = urljoin(self.base_url + "/", started.headers["Location"])
        separator = "&" if "?" in location else "?"
        self._request(
            "PUT",
            f"{location}{separator}digest={digest}",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        return digest

    def push_raw_manifest(
        self, repository: str, tag: str, manifest_bytes: bytes, media_type: str = OCI_MANIFEST
    ) -> str:
        """PUT ``manifest_bytes`` as-is under ``tag``; return the digest the registry reports."""
        answer = self._request(
            "PUT",
            f"/v2/{repository}/manifests/{tag}",
            data=manifest_bytes,
            headers={"Content-Type": media_type},
        )
        return answer.headers.get("Docker-Content-Digest") or sha256_digest(manifest_bytes)

    def push_chart(self, repository: str, tag: str, archive: bytes) -> str:
        """Push a chart archive as Helm does (config + chart layer); return the manifest digest."""
        meta = chart_yaml_of(archive)
        config = chart_config(meta)
        self.push_blob(repository, config)
        self.push_blob(repository, archive)
        return self.push_raw_manifest(
            repository, oci_tag(tag), chart_manifest(config, archive, meta), OCI_MANIFEST
        )

    def push_image(self, repository: str, tag: str) -> str:
        """Push a small container image (one layer) under ``tag``; return the manifest digest."""
        layer_tar = io.BytesIO()
        with tarfile.open(fileobj=layer_tar, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            _tar_member(tar, "hello.txt", f"{repository}:{tag}\n".encode())
        layer = gzip.compress(layer_tar.getvalue(), mtime=0)
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Cmd": ["/bin/true"]},
                "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer_tar.getvalue())]},
            },
            separators=(",", ":"),
        ).encode()
        self.push_blob(repository, config)
        self.push_blob(repository, layer)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": IMAGE_CONFIG,
                "digest": sha256_digest(config),
                "size": len(config),
            },
            "layers": [
                {"mediaType": IMAGE_LAYER, "digest": sha256_digest(layer), "size": len(layer)}
            ],
        }
        return self.push_raw_manifest(
            repository, tag, json.dumps(manifest, separators=(",", ":")).encode(), OCI_MANIFEST
        )

    def close(self) -> None:
        """Close this thread's session (others close when their threads end)."""
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()
            self._local.session = None


def populate_registry(
    pusher: OciPusher,
    n_repositories: int,
    charts_per_repository: int,
    *,
    prefix: str = "charts",
    workers: int = 16,
) -> dict[str, list[str]]:
    """Push ``charts_per_repository`` versions of a chart into each of ``n_repositories``.

    Repositories are ``<prefix>/chart-<i>``, versions ``1.<j>.0``; pushes run on a thread
    pool. Returns repository → manifest digests, in version order.
    """
    from concurrent.futures import ThreadPoolExecutor

    def push_repository(i: int) -> tuple[str, list[str]]:
        repository, name = f"{prefix}/chart-{i}", f"chart-{i}"
        digests = [
            pusher.push_chart(repository, f"1.{j}.0", make_chart_archive(name, f"1.{j}.0"))
            for j in range(charts_per_repository)
        ]
        return repository, digests

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(push_repository, range(n_repositories)))


# --- Helm repository indexes ----------------------------------------------------------------


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def helm_index(
    entries: Iterable[Mapping[str, Any]],
    *,
    base_url: str | None = None,
    generated: dt.datetime | None = None,
) -> bytes:
    """An ``index.yaml`` for ``entries``: mappings with ``name`` and ``version`` at least.

    An entry may carry ``archive`` (bytes; its sha256 becomes ``digest``) and any index
    field, which overrides the default (``appVersion``, ``description``, ``keywords``,
    ``maintainers``, ``home``, ``sources``, ``icon``, ``created``, ``urls``, ...).
    URLs are ``charts/<name>-<version>.tgz``, made absolute when ``base_url`` is given.
    """
    when = generated or dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
    index: dict[str, list[dict]] = {}
    for entry in entries:
        fields = dict(entry)
        name, version = fields["name"], fields["version"]
        archive = fields.pop("archive", None)
        path = f"charts/{name}-{version}.tgz"
        url = f"{base_url.rstrip('/')}/{path}" if base_url else path
        item: dict[str, Any] = {
            "apiVersion": "v2",
            "name": name,
            "version": version,
            "appVersion": "1.0.0",
            "description": f"A Helm chart for {name}",
            "type": "application",
            "keywords": [name],
            "maintainers": [{"name": "Wharf Tests", "email": "tests@wharf.example"}],
            "home": f"https://charts.example/{name}",
            "sources": [f"https://git.example/{name}"],
            "icon": f"https://charts.example/{name}/icon.png",
            "created": _rfc3339(when),
            "digest": hashlib.sha256(archive).hexdigest() if archive else "0" * 64,
            "urls": [url],
        }
        item.update(fields)
        if isinstance(item["created"], dt.datetime):
            item["created"] = _rfc3339(item["created"])
        index.setdefault(name, []).append(item)
    document = {"apiVersion": "v1", "entries": index, "generated": _rfc3339(when)}
    return yaml.dump(document, Dumper=_YamlDumper, sort_keys=False).encode()


_WORDS = [
    "cloud",
    "native",
    "scalable",
    "operator",
    "database",
    "cache",
    "proxy",
    "gateway",
    "metrics",
    "logging",
    "tracing",
    "storage",
    "backup",
    "secure",
    "ingress",
    "controller",
    "service",
    "mesh",
    "queue",
    "stream",
    "search",
    "analytics",
    "identity",
    "certificate",
    "policy",
    "monitoring",
    "dashboard",
    "workflow",
    "pipeline",
    "registry",
    "network",
    "serverless",
    "batch",
    "scheduler",
    "vault",
    "config",
]


def realistic_index(n_charts: int, versions_per_chart: int, *, seed: int = 3) -> bytes:
    """A big, realistic ``index.yaml`` (``n_charts`` x ``versions_per_chart`` versions).

    Field sizes follow public repositories: 100-200 character descriptions, 2-5 keywords,
    1-3 maintainers, home, sources, icon, a few annotations, dependencies on some charts.
    Written as YAML text directly (JSON-quoted strings), so 20,000 versions (~24 MB) take
    well under a second; the same arguments give the same bytes. Parsing is the slow part:
    PyYAML's CSafeLoader needs ~10 s for that on the development machine.
    """
    rng = random.Random(seed)
    q = json.dumps  # a JSON string is a valid YAML double-quoted scalar
    start = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    out = ["apiVersion: v1\nentries:\n"]
    for c in range(n_charts):
        name = f"{rng.choice(_WORDS)}-{rng.choice(_WORDS)}-{c}"
        description = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(14, 26)))
        description = f"A Helm chart for {name}: {description}"[:200]
        keywords = "".join(f"    - {w}\n" for w in rng.sample(_WORDS, rng.randint(2, 5)))
        maintainers = "".join(
            f"    - email: {q(f'dev{m}@{name}.example')}\n      name: {q(f'Maintainer {m}')}\n"
            f"      url: {q(f'https://github.com/dev{m}')}\n"
            for m in range(rng.randint(1, 3))
        )
        dependency = (
            "    dependencies:\n    - condition: redis.enabled\n      name: redis\n"
            '      repository: "oci://registry.example/charts"\n      version: "18.x.x"\n'
            if c % 4 == 0
            else ""
        )
        out.append(f"  {name}:\n")
        for v in range(versions_per_chart):
            major, minor = divmod(v, 10)  # unique per v, so versions never repeat
            version = f"{major + 1}.{minor}.{rng.randint(0, 9)}"
            if v % 7 == 6:
                version += f"-rc.{v % 3 + 1}"
            created = start + dt.timedelta(days=c % 365, hours=v * 7)
            images = f"- name: {name}\n  image: docker.io/example/{name}:{version}\n"
            out.append(
                f"  - annotations:\n"
                f"      category: {q(rng.choice(_WORDS).title())}\n"
                f"      licenses: Apache-2.0\n"
                f"      images: {q(images)}\n"
                f"    apiVersion: v2\n"
                f"    appVersion: {q(f'{minor + 2}.{v}.0')}\n"
                f"    created: {q(_rfc3339(created))}\n"
                f"{dependency}"
                f"    description: {q(description)}\n"
                f"    digest: {hashlib.sha256(f'{name}{version}'.encode()).hexdigest()}\n"
                f"    home: {q(f'https://{name}.example')}\n"
                f"    icon: {q(f'https://{name}.example/assets/icon.svg')}\n"
                f"    keywords:\n{keywords}"
                f"    maintainers:\n{maintainers}"
                f"    name: {name}\n"
                f"    sources:\n    - {q(f'https://github.com/example/{name}')}\n"
                f"    type: application\n"
                f"    urls:\n    - {q(f'charts/{name}-{version}.tgz')}\n"
                f"    version: {q(version)}\n"
            )
    out.append(f"generated: {q(_rfc3339(start))}\n")
    return "".join(out).encode()


# --- a relay that adds network latency ---------------------------------------------------------


class DelayingRelay:
    """A TCP relay on a free loopback port that delays every client→server chunk by ``delay``.

    Latency, not a bandwidth cap: each chunk is forwarded ``delay`` seconds after it arrived,
    so a request on a keep-alive connection pays about ``delay`` once, as it would to a
    registry that is not on loopback. ``.host`` is ``"127.0.0.1:PORT"``. Use as a context
    manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, target_host: str, target_port: int, delay: float = 0.02) -> None:
        self.target = (target_host, int(target_port))
        self.delay = delay
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port = self._listener.getsockname()[1]
        self.host = f"{LOOPBACK}:{self.port}"
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, name="relay-accept", daemon=True)
        self.accepted = 0  # TCP connections the clients opened to the relay so far

    def __repr__(self) -> str:
        return f"<DelayingRelay {self.host} → {self.target[0]}:{self.target[1]} +{self.delay}s>"

    def __enter__(self) -> DelayingRelay:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        self._acceptor.start()

    def stop(self) -> None:
        """Stop accepting and close every open connection."""
        self._stopping.set()
        # shutdown() wakes the accept() below on Linux; close() alone may not.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._acceptor.join(timeout=5)
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            self._close(sock)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            try:
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets.update((client, server))
            chunks: queue.Queue = queue.Queue()
            threads = (
                threading.Thread(target=self._read, args=(client, chunks), daemon=True),
                threading.Thread(target=self._write_later, args=(chunks, server), daemon=True),
                threading.Thread(target=self._pump, args=(server, client), daemon=True),
            )
            for thread in threads:
                thread.start()

    def _read(self, source: socket.socket, chunks: queue.Queue) -> None:
        """Client → queue, each chunk stamped with when it may leave."""
        try:
            while data := source.recv(65536):
                chunks.put((time.monotonic() + self.delay, data))
        except OSError:
            pass
        chunks.put((time.monotonic() + self.delay, b""))

    def _write_later(self, chunks: queue.Queue, target: socket.socket) -> None:
        """Queue → server, each chunk no earlier than its stamp (the simulated latency)."""
        try:
            while True:
                due, data = chunks.get()
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)  # this wait IS the network delay being simulated
                if not data:
                    target.shutdown(socket.SHUT_WR)
                    return
                target.sendall(data)
        except OSError:
            pass

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        """Server → client, straight through; closes both ends when the server is done."""
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


# --- a Helm repository served by nginx ------------------------------------------------------------


def nginx_executable() -> str | None:
    """Path of nginx (Debian puts it in /usr/sbin, which a user's PATH may lack)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    return found


def _ssha_password(password: str) -> str:
    """An htpasswd entry nginx understands ({SSHA}: salted SHA-1), made without any tool."""
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


class NginxHelmRepo(ChildServer):
    """One nginx serving ``root`` as a static Helm repository on ``127.0.0.1:port``.

    nginx runs in the foreground as a single process (``daemon off; master_process off``)
    with its config, pid, logs and temp folders all in ``workdir``, so it needs no
    privileges. Static files get ETag and Last-Modified; conditional GETs get 304.
    ``auth=(user, password)`` puts the whole server behind Basic auth.
    """

    def __init__(
        self,
        workdir: str | os.PathLike,
        port: int,
        auth: tuple[str, str] | None = None,
        *,
        executable: str | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.port = port
        self.auth = auth
        self.username, self.password = auth or ("", "")
        self.executable = executable or nginx_executable() or "/usr/sbin/nginx"
        self.url = f"http://{LOOPBACK}:{port}"
        self.root = self.workdir / "root"
        self.access_log = self.workdir / "access.log"
        self.error_log = self.workdir / "error.log"
        self.config_path = self.workdir / "nginx.conf"
        self._mtimes: dict[Path, int] = {}
        # -e: nginx opens its built-in error log before reading the config.
        argv = [self.executable, "-p", str(self.workdir), "-e", str(self.error_log)]
        argv += ["-c", str(self.config_path)]
        super().__init__(argv, self.workdir / "nginx.out", port, cwd=self.workdir)

    name = "nginx"

    def __repr__(self) -> str:
        return f"<NginxHelmRepo {self.url} auth={bool(self.auth)} running={self.running}>"

    @classmethod
    def start_on_free_port(
        cls,
        workdir: str | os.PathLike,
        auth: tuple[str, str] | None = None,
        *,
        executable: str | None = None,
        attempts: int = 3,
    ) -> NginxHelmRepo:
        """Start one on a free loopback port, trying again if another process takes it first."""
        from tests.servers.base import free_port

        last_error: Exception | None = None
        for _attempt in range(attempts):
            repo = cls(workdir, free_port(), auth=auth, executable=executable)
            try:
                return repo.start()
            except RuntimeError as exc:
                last_error = exc
                if "Address already in use" not in str(exc):
                    raise
        raise RuntimeError(f"could not start nginx: {last_error}")

    def _write_config(self) -> None:
        for folder in (self.root, self.workdir / "temp"):
            folder.mkdir(parents=True, exist_ok=True)
        auth = ""
        if self.auth:
            htpasswd = self.workdir / "htpasswd"
            htpasswd.write_text(f"{self.username}:{_ssha_password(self.password)}\n")
            auth = f'auth_basic "wharf-test-charts";\n            auth_basic_user_file {htpasswd};'
        temp = self.workdir / "temp"
        self.config_path.write_text(
            f"""# Written by tests/chartkit.py: a throw-away static Helm repository.
daemon off;
master_process off;
worker_processes 1;
pid {self.workdir}/nginx.pid;
error_log {self.error_log} warn;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    types {{
        application/x-yaml yaml yml;
        application/gzip tgz gz;
        application/json json;
    }}
    default_type application/octet-stream;
    log_format wharf '$request_method $request_uri $status $body_bytes_sent '
                     '"$http_if_none_match" "$http_if_modified_since" "$remote_user"';
    access_log {self.access_log} wharf;
    sendfile on;
    keepalive_timeout 65;
    server {{
        listen {LOOPBACK}:{self.port};
        server_name localhost;
        root {self.root};
        etag on;
        log_not_found off;  # a 404 is in the access log; keep the error log for errors
        location / {{
            {auth}
        }}
    }}
}}
"""
        )

    def start(self) -> NginxHelmRepo:
        """Start nginx and wait until it answers; raises RuntimeError if it exits early."""
        if not self.running:
            self._write_config()
            super().start()
        return self

    def log(self) -> str:
        return self.error_log.read_text(errors="replace") if self.error_log.exists() else ""

    def put(self, relative_path: str, data: bytes) -> Path:
        """Write ``data`` at ``relative_path`` under the root; return the file's path.

        nginx's ETag is mtime + size, and Last-Modified has one-second resolution, so each
        write of a path gets an mtime at least a second after the last one: a change made
        within the same second is never hidden behind a 304.
        """
        path = self.root / relative_path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        mtime = max(int(time.time()), self._mtimes.get(path, 0) + 1)
        os.utime(path, (mtime, mtime))
        self._mtimes[path] = mtime
        return path

    def write_index(self, data: bytes) -> Path:
        """Write ``index.yaml`` at the root."""
        return self.put("index.yaml", data)

    def access_log_lines(self) -> list[str]:
        """Lines of the access log: ``METHOD URI STATUS BYTES "If-None-Match" "If-Modified-Since" "user"``.

        nginx writes a line after it answers, so poll (``wait_until``) when counting.
        """
        if not self.access_log.exists():
            return []
        return self.access_log.read_text(errors="replace").splitlines()

    def reset(self) -> None:
        """Empty the root and the access log (a fresh repository for the next test)."""
        for child in self.root.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
        self._mtimes.clear()
        if self.access_log.exists():
            with self.access_log.open("r+") as log:  # nginx appends; truncating is safe
                log.truncate(0)
