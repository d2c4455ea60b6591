"""charts.archive: reading chart archives safely, one refusal per test."""

import gzip
import io
import tarfile

import pytest

from charts.archive import ChartArchiveError, read_chart_archive, validate_chart_archive

CHART_YAML = b"apiVersion: v2\nname: demo\nversion: 1.2.3\nappVersion: '2.0'\n"


def file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    return info, data


def special_member(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def tgz(*members) -> bytes:
    """A gzip'd tar of ``(TarInfo, bytes | None)`` pairs, or ``(name, bytes)`` for files."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            info, data = file_member(*member) if isinstance(member[0], str) else member
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return gzip.compress(raw.getvalue(), mtime=0)


def good_chart(**extra: bytes) -> bytes:
    files = {
        "demo/Chart.yaml": CHART_YAML,
        "demo/values.yaml": b"replicaCount: 1\n",
        "demo/README.md": b"# Demo\n",
        "demo/templates/deployment.yaml": b"kind: Deployment\n",
    }
    files.update(extra)
    return tgz(*files.items())


def refusal(data: bytes, **limits) -> str:
    with pytest.raises(ChartArchiveError) as caught:
        read_chart_archive(data, **limits)
    return str(caught.value)


# --- a good chart --------------------------------------------------------------


def test_a_good_chart_gives_its_chart_yaml_values_and_readme():
    files = read_chart_archive(good_chart())
    assert files.chart_dir == "demo"
    assert files.chart == {
        "apiVersion": "v2",
        "name": "demo",
        "version": "1.2.3",
        "appVersion": "2.0",
    }
    assert files.values_yaml == "replicaCount: 1\n"
    assert files.readme == "# Demo\n"


def test_a_chart_without_values_or_readme_gives_none_for_them():
    files = read_chart_archive(tgz(("demo/Chart.yaml", CHART_YAML)))
    assert files.values_yaml is None
    assert files.readme is None


def test_directory_members_and_dot_slash_prefixes_are_accepted():
    dir_info = tarfile.TarInfo("./demo")
    dir_info.type = tarfile.DIRTYPE
    files = read_chart_archive(tgz((dir_info, None), ("./demo/Chart.yaml", CHART_YAML)))
    assert files.chart_dir == "demo"


def test_readme_md_is_preferred_over_other_readmes_whatever_their_case():
    data = tgz(
        ("demo/Chart.yaml", CHART_YAML),
        ("demo/README.txt", b"text"),
        ("demo/readme.MD", b"markdown"),
    )
    assert read_chart_archive(data).readme == "markdown"


def test_readme_in_a_subfolder_is_not_the_chart_readme():
    data = tgz(("demo/Chart.yaml", CHART_YAML), ("demo/charts/sub/README.md", b"sub"))
    assert read_chart_archive(data).readme is None


def test_text_that_is_not_utf8_is_decoded_with_replacement_characters():
    files = read_chart_archive(good_chart(**{"demo/README.md": b"caf\xe9"}))
    assert files.readme == "caf\ufffd"


def test_validate_chart_archive_is_the_same_check():
    assert validate_chart_archive(good_chart()).chart["name"] == "demo"


# --- size limits ------------------------------------------------------------------


def test_an_archive_over_the_size_limit_is_refused():
    assert "more than the 100 bytes allowed" in refusal(good_chart(), max_archive_bytes=100)


def test_a_gzip_bomb_is_refused_while_decompressing():
    bomb = good_chart(**{"demo/zeros.bin": bytes(5 * 2**20)})
    assert len(bomb) < 20_000
    assert "compression bomb" in refusal(bomb, max_total_bytes=2**20)


def test_too_many_members_are_refused():
    data = tgz(*[(f"demo/templates/t{i}.yaml", b"") for i in range(20)])
    assert "more than 10 members" in refusal(data, max_members=10)


def test_a_values_file_over_the_file_limit_is_refused():
    message = refusal(good_chart(**{"demo/values.yaml": b"a: 1\n" * 400}), max_file_bytes=1000)
    assert "values.yaml" in message and "1,000 bytes" in message


def test_a_chart_yaml_over_the_file_limit_is_refused():
    big = CHART_YAML + b"description: " + b"x" * 2000 + b"\n"
    message = refusal(good_chart(**{"demo/Chart.yaml": big}), max_file_bytes=1000)
    assert "Chart.yaml ('demo/Chart.yaml')" in message


def test_a_readme_over_the_file_limit_is_refused():
    message = refusal(good_chart(**{"demo/README.md": b"#" * 2000}), max_file_bytes=1000)
    assert "README" in message and "demo/README.md" in message


# --- not a tgz ------------------------------------------------------------------------


def test_data_that_is_not_gzip_is_refused():
    assert "not a gzip-compressed" in refusal(b"PK\x03\x04 a zip file")


def test_corrupt_gzip_is_refused():
    data = bytearray(good_chart())
    data[30:60] = bytes(30)
    assert "not valid gzip" in refusal(bytes(data))


def test_truncated_gzip_is_refused():
    assert "not valid gzip" in refusal(good_chart()[:-40])


def test_gzip_that_does_not_hold_a_tar_is_refused():
    assert "not a valid tar" in refusal(gzip.compress(b"hello, this is not a tar file" * 30))


def test_an_empty_tar_is_refused():
    raw = io.BytesIO()
    tarfile.open(fileobj=raw, mode="w").close()
    assert "empty" in refusal(gzip.compress(raw.getvalue()))


# --- paths and member types ----------------------------------------------------------------


def test_an_absolute_path_is_refused():
    message = refusal(good_chart(**{"/etc/passwd": b"root"}))
    assert "'/etc/passwd'" in message and "absolute" in message


def test_a_dot_dot_component_is_refused():
    message = refusal(good_chart(**{"demo/../../evil": b"x"}))
    assert "'demo/../../evil'" in message and "'..'" in message


def test_a_symlink_that_escapes_the_chart_is_refused():
    link = special_member("demo/passwd", tarfile.SYMTYPE, "/etc/passwd")
    message = refusal(tgz(("demo/Chart.yaml", CHART_YAML), link))
    assert "'demo/passwd'" in message and "symbolic link" in message


def test_a_symlink_inside_the_chart_is_refused_too():
    link = special_member("demo/values.yaml", tarfile.SYMTYPE, "Chart.yaml")
    assert "symbolic link" in refusal(tgz(("demo/Chart.yaml", CHART_YAML), link))


def test_a_hard_link_is_refused():
    link = special_member("demo/values.yaml", tarfile.LNKTYPE, "demo/Chart.yaml")
    assert "hard link" in refusal(tgz(("demo/Chart.yaml", CHART_YAML), link))


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE])
def test_a_device_member_is_refused(kind):
    device = special_member("demo/null", kind)
    message = refusal(tgz(("demo/Chart.yaml", CHART_YAML), device))
    assert "'demo/null'" in message and "device file" in message


def test_a_fifo_member_is_refused():
    fifo = special_member("demo/pipe", tarfile.FIFOTYPE)
    assert "fifo" in refusal(tgz(("demo/Chart.yaml", CHART_YAML), fifo))


def test_two_top_level_folders_are_refused():
    message = refusal(good_chart(**{"other/file.txt": b"x"}))
    assert "more than one top-level folder (demo, other)" in message


def test_a_file_at_the_top_level_is_refused():
    message = refusal(good_chart(**{"Chart.yaml": CHART_YAML}))
    assert "'Chart.yaml'" in message and "top level" in message


def test_a_member_that_appears_twice_is_refused():
    data = tgz(("demo/Chart.yaml", CHART_YAML), ("demo/Chart.yaml", CHART_YAML))
    assert "appears twice" in refusal(data)


# --- Chart.yaml -----------------------------------------------------------------------------


def test_a_missing_chart_yaml_is_refused():
    assert "no demo/Chart.yaml" in refusal(tgz(("demo/values.yaml", b"a: 1\n")))


def test_a_chart_yaml_in_a_subfolder_does_not_count():
    assert "no demo/Chart.yaml" in refusal(tgz(("demo/charts/sub/Chart.yaml", CHART_YAML)))


def test_chart_yaml_that_is_not_yaml_is_refused():
    assert "not valid YAML" in refusal(good_chart(**{"demo/Chart.yaml": b"name: [unclosed"}))


def test_chart_yaml_that_is_not_a_mapping_is_refused():
    assert "must be a YAML mapping" in refusal(good_chart(**{"demo/Chart.yaml": b"- a\n- b\n"}))


@pytest.mark.parametrize("missing", ["name", "version"])
def test_chart_yaml_without_name_or_version_is_refused(missing):
    chart = b"name: demo\n" if missing == "version" else b"version: 1.0.0\n"
    assert f"has no '{missing}'" in refusal(good_chart(**{"demo/Chart.yaml": chart}))


@pytest.mark.parametrize(
    ("name", "version"),
    [("my_chart", "1.0.0"), ("MyChart", "1.0.0"), ("demo", "v1.2.0"), ("demo", "1.2")],
)
def test_reading_for_display_takes_names_and_versions_helm_loads(name, version):
    # Push rules (an OCI repository name, a tag) are not reading rules: a chart Helm
    # loads from a Helm repository is shown with its README and values.
    chart = f"apiVersion: v2\nname: '{name}'\nversion: '{version}'\n".encode()

    files = read_chart_archive(good_chart(**{"demo/Chart.yaml": chart}))

    assert (files.name, files.version) == (name, version)
    assert (files.values_yaml, files.readme) == ("replicaCount: 1\n", "# Demo\n")
