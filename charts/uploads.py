"""Checking a chart upload before anything is stored or pushed.

Shared by the "Push chart" form, the ``push_chart`` command and (later) the API: the
archive (through :mod:`charts.archive`), the optional provenance file and the repository
prefix. Each problem is a :class:`PushInputError` naming the field it belongs to.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from django.conf import settings

from charts.archive import ChartArchiveError, ChartFiles, read_chart_archive
from charts.helmoci import tag_of_version
from charts.semver import is_helm_version
from registries.models import REPOSITORY_PATH

PROVENANCE_MAX_BYTES = 2**20
MAX_TAG_LENGTH = 128  # the distribution spec's tag grammar allows 128 characters
# The distribution registry refuses longer repository names (NAME_INVALID).
MAX_REPOSITORY_LENGTH = 255
# One path component of an OCI repository name (the distribution spec's grammar, as
# `helm push` checks it): lowercase letters and digits, separated by one "." or "_",
# a "__", or dashes.
OCI_NAME_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_PGP_SIGNED = "-----BEGIN PGP SIGNED MESSAGE-----"
_PGP_SIGNATURE = "-----BEGIN PGP SIGNATURE-----"
_PGP_END = "-----END PGP SIGNATURE-----"
_SHA256 = re.compile(r"sha256:([0-9a-f]{64})")


class PushInputError(Exception):
    """An upload that cannot be pushed; ``field`` is the form field the message belongs to."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class PushUpload:
    """A checked upload: what will be pushed, and where under the registry URL."""

    chart: ChartFiles
    archive: bytes
    provenance: bytes
    repository: str  # prefix + chart name, relative to the registry URL
    tag: str

    @property
    def archive_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.archive).hexdigest()


def max_push_bytes() -> int:
    return settings.WHARF_CHART_PUSH_MAX_BYTES


def check_archive(data: bytes) -> ChartFiles:
    """The chart inside ``data``, or :class:`PushInputError` saying what is wrong with it."""
    try:
        chart = read_chart_archive(data, max_archive_bytes=max_push_bytes())
    except ChartArchiveError as exc:
        raise PushInputError(str(exc), field="archive") from None
    problem = push_rule_broken(chart.chart)
    if problem:
        raise PushInputError(f"{chart.chart_dir}/Chart.yaml: {problem}", field="archive")
    return chart


def push_rule_broken(chart: dict) -> str:
    """Which of ``helm push``'s rules ``chart`` (a parsed Chart.yaml) breaks, or "".

    Helm's loader (``chart.Metadata.Validate``): an apiVersion, a name that is a plain
    file name, a version its semver parser takes, a type of application or library.
    Then the OCI reference Helm builds: the name is a repository path component, the
    version (``+`` written ``_``) a tag.
    """
    name, version = chart.get("name"), chart.get("version")
    if not chart.get("apiVersion"):
        return "it has no apiVersion (Helm requires one: apiVersion: v2)."
    if not isinstance(name, str) or "/" in name or "\\" in name or name in (".", ".."):
        return f"the chart name {name!r} is not a plain name (Helm refuses a path)."
    if not OCI_NAME_COMPONENT.match(name):
        return (
            f"the chart name {name!r} cannot name an OCI repository: use lowercase letters "
            "and digits, separated by one “.” or “_”, a “__”, or dashes (the OCI "
            "distribution rule `helm push` applies)."
        )
    if not isinstance(version, str) or not is_helm_version(version):
        return (
            f"the version {version!r} is not a version Helm accepts: a semantic version "
            "such as 1.2.3, 1.2.3-rc.1 or 1.2.3+build.7 (a leading v and a missing minor "
            "or patch are taken; numeric pre-release parts may not start with 0)."
        )
    if chart.get("type", "") not in ("", "application", "library"):
        return f"its type {chart['type']!r} is neither application nor library."
    if len(tag_of_version(version)) > MAX_TAG_LENGTH:
        return (
            f"the version {version} is too long for an OCI tag "
            f"({MAX_TAG_LENGTH} characters at most)."
        )
    return ""


def check_provenance(data: bytes, archive: bytes) -> None:
    """A provenance file must look like the one ``helm package --sign`` writes for ``archive``."""
    if len(data) > PROVENANCE_MAX_BYTES:
        raise PushInputError(
            f"The provenance file is {len(data):,} bytes, more than the "
            f"{PROVENANCE_MAX_BYTES:,} allowed.",
            field="provenance",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PushInputError(
            "The provenance file is not text; upload the .prov file `helm package --sign` wrote.",
            field="provenance",
        ) from None
    signed = text.lstrip().startswith(_PGP_SIGNED)
    if not signed or _PGP_SIGNATURE not in text or _PGP_END not in text:
        raise PushInputError(
            "The provenance file is not a PGP signed message (it should start with "
            f"“{_PGP_SIGNED}” and end with a signature block).",
            field="provenance",
        )
    signed_part = text.split(_PGP_SIGNATURE, 1)[0]
    listed = set(_SHA256.findall(signed_part))
    if listed and hashlib.sha256(archive).hexdigest() not in listed:
        raise PushInputError(
            "The provenance file was made for another archive: the sha256 it lists does not "
            "match the uploaded chart.",
            field="provenance",
        )


def check_prefix(prefix: str) -> str:
    """The repository prefix without surrounding slashes; lowercase path segments only."""
    prefix = (prefix or "").strip().strip("/")
    if prefix and not REPOSITORY_PATH.match(prefix):
        raise PushInputError(
            f"Not a repository path: {prefix}. Use lowercase letters, digits, ., _, - and / "
            "(for example “charts” or “team/charts”).",
            field="prefix",
        )
    return prefix


def prepare_push(archive: bytes, provenance: bytes | None, prefix: str) -> PushUpload:
    """Check everything about an upload; nothing is stored or sent here."""
    prefix = check_prefix(prefix)
    chart = check_archive(archive)
    if provenance:
        check_provenance(provenance, archive)
    return upload_for(chart, archive, provenance or b"", prefix)


def upload_for(chart: ChartFiles, archive: bytes, provenance: bytes, prefix: str) -> PushUpload:
    """Where a checked chart goes: the repository and tag, themselves checked."""
    repository = f"{prefix}/{chart.name}" if prefix else chart.name
    if len(repository) > MAX_REPOSITORY_LENGTH:
        raise PushInputError(
            f"The repository {repository} is longer than the {MAX_REPOSITORY_LENGTH} "
            "characters a registry takes; use a shorter prefix.",
            field="prefix",
        )
    tag = tag_of_version(chart.version)
    return PushUpload(
        chart=chart, archive=archive, provenance=provenance, repository=repository, tag=tag
    )
