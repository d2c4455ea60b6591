"""charts.semver: SemVer 2 parsing and precedence."""

import pytest

from charts.semver import is_prerelease, is_semver, parse_semver, semver_key


@pytest.mark.parametrize(
    "version",
    [
        "0.0.0",
        "1.2.3",
        "10.20.30",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-0.3.7",
        "1.0.0-x.7.z.92",
        "1.0.0+20130313144700",
        "1.0.0-beta+exp.sha.5114f85",
        "1.0.0-rc-1",
    ],
)
def test_valid_semver_versions_parse(version):
    assert is_semver(version)


@pytest.mark.parametrize(
    "version",
    [
        "",
        "1",
        "1.2",
        "v1.2.3",
        "01.2.3",
        "1.02.3",
        "1.2.3-01",
        "1.2.3-",
        "1.2.3+",
        "1.2.3.4",
        "1.2.3-alpha..1",
        " 1.2.3",
        "1.2.3\n",
    ],
)
def test_invalid_versions_do_not_parse(version):
    assert parse_semver(version) is None


def test_a_non_string_is_not_semver():
    assert parse_semver(1.0) is None


def test_parse_splits_prerelease_and_build_identifiers():
    assert parse_semver("1.2.3-rc.1+build.7") == (1, 2, 3, ("rc", "1"), ("build", "7"))


def test_versions_sort_by_semver_precedence():
    expected = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.2.0",
        "1.10.0",
        "2.0.0",
    ]
    assert sorted(reversed(expected), key=semver_key) == expected


def test_build_metadata_does_not_change_precedence():
    assert semver_key("1.0.0+build.1") == semver_key("1.0.0+build.2") == semver_key("1.0.0")


def test_strings_that_are_not_semver_sort_before_every_version():
    assert sorted(["1.0.0", "latest", "0.0.1-a"], key=semver_key) == ["latest", "0.0.1-a", "1.0.0"]


def test_prerelease_is_detected_and_build_metadata_is_not_a_prerelease():
    assert is_prerelease("1.0.0-rc.1")
    assert not is_prerelease("1.0.0+build")
    assert not is_prerelease("not-a-version")


@pytest.mark.parametrize(
    ("version", "taken"),
    [("v1.2.3", True), ("1.2", True), ("01.2.3", True), ("1.0.0-0a", True),
     ("1.0.0+01", True), ("1.0.0-01", False), ("1.0.0-x.01", False), ("1.2.3.4", False)],
)  # fmt: skip
def test_helm_versions_are_what_helms_semver_parser_takes(version, taken):
    from charts.semver import is_helm_version

    assert is_helm_version(version) is taken
