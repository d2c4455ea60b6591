"""Semantic Versioning 2.0.0: parsing, precedence and pre-release checks for chart versions.

Helm requires chart versions to be SemVer 2. Versions are ordered by SemVer precedence:
major, minor, patch numerically; a pre-release sorts before its release; pre-release
identifiers compare one by one (numeric ones numerically and below alphanumeric ones,
a shorter list first when all else is equal); build metadata is ignored.
"""

from __future__ import annotations

import re

__all__ = [
    "HELM_VERSION",
    "SEMVER",
    "is_helm_version",
    "is_prerelease",
    "is_semver",
    "parse_helm_version",
    "parse_semver",
    "semver_key",
]

# The official SemVer 2 pattern (semver.org), with named groups.
SEMVER = re.compile(
    r"^(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<prerelease>(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+(?P<build>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)

# What Helm itself accepts as a chart version (Masterminds semver's NewVersion): looser
# than SemVer 2 — a leading "v", a missing minor or patch, leading zeros are all taken.
HELM_VERSION = re.compile(
    r"v?[0-9]+(?:\.[0-9]+)?(?:\.[0-9]+)?"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)

SemVer = tuple[int, int, int, tuple[str, ...], tuple[str, ...]]

_HELM_PARTS = re.compile(
    r"v?(?P<major>[0-9]+)(?:\.(?P<minor>[0-9]+))?(?:\.(?P<patch>[0-9]+))?"
    r"(?:-(?P<prerelease>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)


def parse_helm_version(version: str) -> SemVer | None:
    """Like :func:`parse_semver`, for every version Helm takes: ``v2.0.0`` is 2.0.0 and
    ``1.10`` is 1.10.0, as Helm's semver parser reads them; None if Helm refuses it."""
    parsed = parse_semver(version)
    if parsed is not None or not is_helm_version(version):
        return parsed
    match = _HELM_PARTS.fullmatch(version)
    if match is None:
        return None
    pre, build = match["prerelease"], match["build"]
    return (
        int(match["major"]),
        int(match["minor"] or 0),
        int(match["patch"] or 0),
        tuple(pre.split(".")) if pre else (),
        tuple(build.split(".")) if build else (),
    )


def parse_semver(version: str) -> SemVer | None:
    """``(major, minor, patch, pre_ids, build_ids)`` of ``version``; None if not SemVer 2."""
    if not isinstance(version, str):
        return None
    match = SEMVER.fullmatch(version)
    if match is None:
        return None
    pre = match["prerelease"]
    build = match["build"]
    return (
        int(match["major"]),
        int(match["minor"]),
        int(match["patch"]),
        tuple(pre.split(".")) if pre else (),
        tuple(build.split(".")) if build else (),
    )


def is_semver(version: str) -> bool:
    """Whether ``version`` is a valid SemVer 2 version string."""
    return parse_semver(version) is not None


def is_helm_version(version: str) -> bool:
    """Whether Helm's semver parser takes ``version`` (``1.2``, ``v1.2.3``, ``01.2.3``
    included; a numeric pre-release identifier with a leading zero, ``1.0.0-01``, not)."""
    if not isinstance(version, str) or HELM_VERSION.fullmatch(version) is None:
        return False
    prerelease = version.split("+", 1)[0].partition("-")[2]
    return not any(
        part.isdigit() and len(part) > 1 and part.startswith("0")
        for part in prerelease.split(".")
        if prerelease
    )


def is_prerelease(version: str) -> bool:
    """Whether ``version`` is a pre-release (``1.0.0-rc.1``, ``v1.0-rc.1``); False when
    Helm would not take it as a version."""
    parsed = parse_helm_version(version)
    return bool(parsed and parsed[3])


def _identifier_key(identifier: str) -> tuple[int, int, str]:
    # Numeric identifiers have lower precedence than alphanumeric ones.
    if identifier.isdigit():
        return (0, int(identifier), "")
    return (1, 0, identifier)


def semver_key(version: str) -> tuple:
    """A sort key that orders versions by SemVer 2 precedence (build metadata ignored).

    Versions Helm takes in a looser form sort as Helm sorts them (``v2.0.0`` as 2.0.0,
    ``1.10`` as 1.10.0). Other strings sort before every valid version, among themselves
    by text, so sorting a mixed list never raises.
    """
    parsed = parse_helm_version(version)
    if parsed is None:
        return (0, (), 0, (), str(version))
    major, minor, patch, pre, _build = parsed
    # A release (no pre-release) ranks above any of its pre-releases.
    pre_key = (1, ()) if not pre else (0, tuple(_identifier_key(i) for i in pre))
    return (1, (major, minor, patch), pre_key[0], pre_key[1], "")
