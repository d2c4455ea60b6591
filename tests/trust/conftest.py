"""Fixtures for the trust tests: OpenPGP keys made by Debian's gpg, cosign key pairs, and
the registries and Helm repository the chart tests use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.charts.conftest import _helm_repo_server, chart_registry, helm_repo  # noqa: F401
from tests.trust.signkit import CosignKey, GpgSigner


@pytest.fixture(scope="session")
def release_signer() -> Iterator[GpgSigner]:
    """The key the charts are signed with (and, configured, verified by)."""
    signer = GpgSigner("Release Team <release@example.com>")
    yield signer
    signer.close()


@pytest.fixture(scope="session")
def stranger_signer() -> Iterator[GpgSigner]:
    """A key nobody configured."""
    signer = GpgSigner("Someone Else <someone@example.com>")
    yield signer
    signer.close()


@pytest.fixture(scope="session")
def expired_signer() -> Iterator[GpgSigner]:
    """A key made in 2020 that expired a day later; its signatures date from then."""
    signer = GpgSigner("Old Release <old@example.com>", created="20200101T000000", expires="1d")
    yield signer
    signer.close()


@pytest.fixture(scope="session")
def cosign_key() -> CosignKey:
    return CosignKey()


@pytest.fixture(scope="session")
def other_cosign_key() -> CosignKey:
    return CosignKey()
