"""Safe reading of Helm chart archives (``.tgz``), entirely in memory.

A chart archive comes from a registry or a Helm repository we do not control, so it is
read as hostile input: the compressed size, the uncompressed total (counted while
decompressing, so a gzip bomb is caught whatever its headers claim), the number of
members and the size of each file we read are all bounded; absolute paths, ``..``
components, links of any kind and device or fifo members are refused; nothing is ever
written to disk. Only ``Chart.yaml``, ``values.yaml``, ``values.schema.json`` and the
README are kept.

Links are refused outright, not only those that escape the chart folder: ``helm package``
follows links when it builds an archive, so a real chart has none, and refusing them all
leaves nothing to get wrong.

No Django and no network here: the sync code, the background file reads and the push
call :func:`read_chart_archive` (alias :func:`validate_chart_archive`) on bytes they hold.
It checks the archive, not the chart's name or version: a chart Helm loads from a source
is shown whatever its name (``my_chart``) or version (``v1.2.0``); the rules of a push
are Helm's push rules, in :mod:`charts.uploads`.
"""

from __future__ import annotations

import gzip
import io
import re
import tarfile
import zlib
from dataclasses import dataclass

import yaml

__all__ = [
    "ChartArchiveError",
    "ChartFiles",
    "read_chart_archive",
    "validate_chart_archive",
]

try:
    _YamlLoader: type = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _YamlLoader = yaml.SafeLoader

MIB = 2**20
_GZIP_MAGIC = b"\x1f\x8b"
_READ_CHUNK = 64 * 1024


class ChartArchiveError(Exception):
    """A chart archive that cannot be used; the message says what to fix, naming the member."""


@dataclass(frozen=True)
class ChartFiles:
    """What Wharf keeps from a chart archive."""

    chart_dir: str  # the one top-level folder
    chart: dict  # parsed Chart.yaml
    values_yaml: str | None  # text of <chart_dir>/values.yaml, if present
    readme: str | None  # text of <chart_dir>/README.md (or another README*), if present
    values_schema: str | None = None  # text of <chart_dir>/values.schema.json, if present

    @property
    def name(self) -> str:
        return str(self.chart["name"])

    @property
    def version(self) -> str:
        return str(self.chart["version"])


class _BoundedDecompressor(io.RawIOBase):
    """A readable stream of the decompressed archive that fails past ``limit`` bytes."""

    def __init__(self, data: bytes, limit: int) -> None:
        self._gzip = gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb")
        self._limit = limit
        self.total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            chunk = self._gzip.read(min(len(buffer), _READ_CHUNK))
        except (gzip.BadGzipFile, zlib.error, EOFError, OSError) as exc:
            raise ChartArchiveError(f"The archive is not valid gzip data ({exc}).") from exc
        self.total += len(chunk)
        if self.total > self._limit:
            raise ChartArchiveError(
                f"The archive unpacks to more than {_size(self._limit)}; "
                "this looks like a compression bomb, not a chart."
            )
        buffer[: len(chunk)] = chunk
        return len(chunk)


def _size(n: int) -> str:
    if n >= MIB and n % MIB == 0:
        return f"{n // MIB} MiB"
    return f"{n:,} bytes"


def _member_parts(name: str) -> list[str]:
    """Path components of a member name, refusing absolute paths and ``..``."""
    if name.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", name):
        raise ChartArchiveError(f"The archive member {name!r} has an absolute path.")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ChartArchiveError(f"The archive member {name!r} has a '..' path component.")
    return parts


def _check_member_type(member: tarfile.TarInfo) -> None:
    if member.issym() or member.islnk():
        kind = "symbolic link" if member.issym() else "hard link"
        raise ChartArchiveError(
            f"The archive member {member.name!r} is a {kind} (to {member.linkname!r}); "
            "chart archives may not contain links."
        )
    if member.ischr() or member.isblk() or member.isfifo():
        kind = "fifo" if member.isfifo() else "device file"
        raise ChartArchiveError(
            f"The archive member {member.name!r} is a {kind}; only files and folders are allowed."
        )
    if not (member.isreg() or member.isdir()):
        raise ChartArchiveError(
            f"The archive member {member.name!r} has an unsupported type ({member.type!r})."
        )


def _read_text(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int, what: str) -> str:
    if member.size > limit:
        raise ChartArchiveError(
            f"{what} ({member.name!r}) is {_size(member.size)}, more than the "
            f"{_size(limit)} allowed."
        )
    handle = tar.extractfile(member)
    data = handle.read(limit + 1) if handle else b""
    if len(data) > limit:  # headers can lie; the bytes read cannot
        raise ChartArchiveError(f"{what} ({member.name!r}) is more than {_size(limit)}.")
    # "utf-8-sig": a byte-order mark some editors write is no part of the text.
    return data.decode("utf-8-sig", errors="replace")


def _readme_rank(filename: str) -> tuple[int, str]:
    lower = filename.lower()
    if lower == "readme.md":
        return (0, filename)
    if lower.endswith(".md"):
        return (1, filename)
    return (2, filename)


def _parse_chart_yaml(text: str, member_name: str) -> dict:
    try:
        chart = yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise ChartArchiveError(f"{member_name} is not valid YAML: {exc}") from exc
    if not isinstance(chart, dict):
        raise ChartArchiveError(
            f"{member_name} must be a YAML mapping (name: ..., version: ...), "
            f"not {type(chart).__name__}."
        )
    # YAML aliases are shared when loaded but written out in full (the config blob of a
    # push, the metadata a sync stores): a few hundred bytes can expand to gigabytes.
    if _expanded_size(chart, limit=4 * len(text) + 64 * 1024) is None:
        raise ChartArchiveError(
            f"{member_name} uses YAML aliases that expand to far more data than the file "
            "holds; write the values out instead of repeating anchors."
        )
    # Only what every reader needs: what a push may take is charts.uploads' business
    # (Helm's own rules), and a chart shown from a source is shown as Helm would load it.
    for key in ("name", "version"):
        if chart.get(key) in (None, ""):
            raise ChartArchiveError(f"{member_name} has no {key!r}.")
    return chart


def _expanded_size(document, *, limit: int) -> int | None:
    """Roughly how large ``document`` is written out (aliases in full), or None past ``limit``."""
    size, stack = 0, [document]
    while stack:
        node = stack.pop()
        size += 1
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list | tuple | set):
            stack.extend(node)
        elif isinstance(node, str | bytes):
            size += len(node)
        if size > limit:
            return None
    return size


def read_chart_archive(
    data: bytes,
    *,
    max_archive_bytes: int = 20 * MIB,
    max_file_bytes: int = 2 * MIB,
    max_total_bytes: int = 100 * MIB,
    max_members: int = 10000,
) -> ChartFiles:
    """Check a chart ``.tgz`` held in memory and return its Chart.yaml, values and README.

    Raises :class:`ChartArchiveError` with a message naming the problem and the member.
    """
    if len(data) > max_archive_bytes:
        raise ChartArchiveError(
            f"The archive is {_size(len(data))}, more than the {_size(max_archive_bytes)} allowed."
        )
    if not data.startswith(_GZIP_MAGIC):
        raise ChartArchiveError("The file is not a gzip-compressed chart archive (.tgz).")

    stream = _BoundedDecompressor(data, max_total_bytes)
    seen: set[str] = set()
    top_dirs: set[str] = set()
    chart_text: tuple[str, str] | None = None  # (member name, text)
    values_text: str | None = None
    schema_text: str | None = None
    readmes: dict[str, str] = {}
    count = 0
    try:
        # "r|" reads the tar as a stream: members in order, no seeking, nothing on disk.
        with tarfile.open(fileobj=io.BufferedReader(stream), mode="r|") as tar:
            for member in tar:
                count += 1
                if count > max_members:
                    raise ChartArchiveError(f"The archive has more than {max_members:,} members.")
                parts = _member_parts(member.name)
                _check_member_type(member)
                if not parts:
                    continue  # "./" itself
                if len(parts) == 1 and not member.isdir():
                    raise ChartArchiveError(
                        f"The archive member {member.name!r} is a file at the top level; "
                        "everything must be inside one chart folder."
                    )
                top_dirs.add(parts[0])
                if len(top_dirs) > 1:
                    raise ChartArchiveError(
                        "The archive has more than one top-level folder "
                        f"({', '.join(sorted(top_dirs))}); a chart archive has exactly one."
                    )
                if member.isdir():
                    continue
                path = "/".join(parts)
                if path in seen:
                    raise ChartArchiveError(f"The archive member {path!r} appears twice.")
                seen.add(path)
                if len(parts) != 2:
                    continue
                filename = parts[1]
                if filename == "Chart.yaml":
                    chart_text = (path, _read_text(tar, member, max_file_bytes, "Chart.yaml"))
                elif filename == "values.yaml":
                    values_text = _read_text(tar, member, max_file_bytes, "values.yaml")
                elif filename == "values.schema.json":
                    schema_text = _read_text(tar, member, max_file_bytes, "values.schema.json")
                elif filename.lower().startswith("readme"):
                    readmes[filename] = _read_text(tar, member, max_file_bytes, "The README")
    except tarfile.TarError as exc:
        raise ChartArchiveError(f"The archive is not a valid tar file ({exc}).") from exc
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ChartArchiveError(f"The archive is not valid gzip data ({exc}).") from exc

    if not top_dirs:
        raise ChartArchiveError("The archive is empty; it should hold one chart folder.")
    (chart_dir,) = top_dirs
    if chart_text is None:
        raise ChartArchiveError(f"The archive has no {chart_dir}/Chart.yaml.")
    chart = _parse_chart_yaml(chart_text[1], chart_text[0])
    readme = readmes[min(readmes, key=_readme_rank)] if readmes else None
    return ChartFiles(
        chart_dir=chart_dir,
        chart=chart,
        values_yaml=values_text,
        readme=readme,
        values_schema=schema_text,
    )


# The same checks, named for the "push chart" feature, which only needs them to pass.
validate_chart_archive = read_chart_archive
