"""Indexing a classic Helm repository served by Debian's nginx (ETag and 304 by nginx itself)."""

from __future__ import annotations

import pytest

from charts.models import Chart, ChartSource, ChartVersion, SyncRun
from tests.chartkit import helm_index, make_chart_archive, sha256_digest
from tests.charts.helpers import helm_source, sync
from tests.servers.base import wait_until

pytestmark = pytest.mark.django_db


def publish(repo, charts: dict[str, list[str]], **fields) -> dict[tuple[str, str], bytes]:
    """Put archives and an index.yaml with relative URLs into the repository."""
    archives, entries = {}, []
    for name, versions in charts.items():
        for version in versions:
            archive = make_chart_archive(name, version, values=f"image: {name}:{version}\n")
            repo.put(f"charts/{name}-{version}.tgz", archive)
            archives[(name, version)] = archive
            entries.append({"name": name, "version": version, "archive": archive, **fields})
    repo.write_index(helm_index(entries))
    return archives


def statuses(repo) -> list[str]:
    """HTTP statuses of index.yaml requests in nginx's access log."""
    # log format: METHOD URI STATUS BYTES "If-None-Match" "If-Modified-Since" "user"
    return [line.split()[2] for line in repo.access_log_lines() if "/index.yaml" in line]


def test_first_import_indexes_every_version_with_its_digest_and_absolute_url(helm_repo):
    archives = publish(
        helm_repo, {"redis": ["17.0.0", "17.1.0", "18.0.0-beta.1"], "nginx": ["1.0.0"]}
    )
    source = helm_source(helm_repo)

    run = sync(source)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert (run.added, run.updated, run.removed, run.http_requests) == (4, 0, 0, 1)
    version = ChartVersion.objects.get(chart__name="redis", version="17.1.0")
    assert version.archive_url == f"{helm_repo.url}/charts/redis-17.1.0.tgz"
    assert version.digest == sha256_digest(archives[("redis", "17.1.0")]).removeprefix("sha256:")
    assert Chart.objects.get(name="redis").latest_version == "17.1.0"
    assert ChartVersion.objects.get(version="18.0.0-beta.1").prerelease


def test_unchanged_resync_gets_a_304_and_writes_no_version(helm_repo):
    publish(helm_repo, {"redis": ["17.0.0"]})
    source = helm_source(helm_repo)
    sync(source)
    stamp = ChartVersion.objects.get().updated_at

    run = sync(source)

    assert run.status == SyncRun.Status.SUCCEEDED
    assert (run.added, run.updated, run.removed) == (0, 0, 0)
    wait_until(lambda: len(statuses(helm_repo)) == 2, what="nginx access log", timeout=5)
    assert statuses(helm_repo) == ["200", "304"]
    assert ChartVersion.objects.get().updated_at == stamp


def test_same_content_under_a_new_etag_is_skipped_by_digest(helm_repo):
    publish(helm_repo, {"redis": ["17.0.0"]})
    source = helm_source(helm_repo)
    sync(source)
    helm_repo.write_index((helm_repo.root / "index.yaml").read_bytes())  # new mtime, same bytes
    stamp = ChartVersion.objects.get().updated_at

    run = sync(source)

    wait_until(lambda: len(statuses(helm_repo)) == 2, what="nginx access log", timeout=5)
    assert statuses(helm_repo) == ["200", "200"]
    assert (run.added, run.updated) == (0, 0)
    assert ChartVersion.objects.get().updated_at == stamp


def test_a_version_gone_from_the_index_is_marked_removed_upstream(helm_repo):
    publish(helm_repo, {"redis": ["17.0.0", "17.1.0"], "old": ["0.1.0"]})
    source = helm_source(helm_repo)
    sync(source)
    publish(helm_repo, {"redis": ["17.0.0"]})

    run = sync(source)

    assert run.removed == 2
    assert ChartVersion.objects.filter(removed_upstream_at__isnull=False).count() == 2
    assert Chart.objects.get(name="redis").latest_version == "17.0.0"
    assert not Chart.objects.in_store().filter(name="old").exists()  # nothing left to show


def alias_bomb(levels: int = 9) -> bytes:
    """A few hundred bytes that stand for 10**levels values once every alias is expanded."""
    lines = ["apiVersion: v1", "l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for n in range(1, levels):
        lines.append(f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 10) + "]")
    lines += [
        "entries:",
        "  bomb:",
        f"  - {{name: bomb, version: 1.0.0, keywords: *l{levels - 1}}}",
    ]
    return ("\n".join(lines) + "\n").encode()


ALIAS_BOMB = alias_bomb()


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (b"entries: [unclosed\n", "not valid YAML"),
        (b"apiVersion: v1\nentries: 5\n", "no “entries” mapping"),
        (ALIAS_BOMB, "expand to far more than the file holds"),
    ],
)
def test_a_malformed_index_fails_the_run_and_keeps_the_earlier_index(helm_repo, index, message):
    publish(helm_repo, {"redis": ["17.0.0"]})
    source = helm_source(helm_repo)
    sync(source)
    helm_repo.write_index(index)

    run = sync(source)

    assert run.status == SyncRun.Status.FAILED
    assert message in run.error
    version = ChartVersion.objects.get()
    assert version.removed_upstream_at is None
    assert Chart.objects.in_store().count() == 1
    # The failed content is not remembered as done: the next run reads it again.
    assert ChartSource.objects.get(pk=source.pk).content_digest != sha256_digest(index)


def test_an_index_over_the_size_limit_is_refused(helm_repo, settings):
    settings.WHARF_HELM_INDEX_MAX_BYTES = 1000
    publish(helm_repo, {f"chart-{i}": ["1.0.0"] for i in range(20)})
    source = helm_source(helm_repo)

    run = sync(source)

    assert run.status == SyncRun.Status.FAILED
    assert "more than the limit of 1,000" in run.error
    assert not ChartVersion.objects.exists()


def test_a_private_repository_is_read_with_its_credentials(private_helm_repo):
    publish(private_helm_repo, {"secret-app": ["1.0.0"]})
    source = helm_source(private_helm_repo)

    run = sync(source)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert Chart.objects.get().name == "secret-app"


def test_a_wrong_password_fails_with_a_clear_message(private_helm_repo):
    publish(private_helm_repo, {"secret-app": ["1.0.0"]})
    source = helm_source(private_helm_repo, password="not-the-password")

    run = sync(source)

    assert run.status == SyncRun.Status.FAILED
    assert "refused the username and password (HTTP 401)" in run.error
    assert "not-the-password" not in run.error


def test_a_missing_index_says_to_check_the_url(helm_repo):
    source = helm_source(helm_repo)

    run = sync(source)

    assert run.status == SyncRun.Status.FAILED
    assert "HTTP 404" in run.error and "check the repository URL" in run.error


def test_an_unreachable_repository_fails_the_run(helm_repo):
    from tests.servers.base import free_port

    port = free_port()
    source = helm_source(helm_repo, url=f"http://127.0.0.1:{port}")

    run = sync(source)

    assert run.status == SyncRun.Status.FAILED
    # The shared layer's wording (config.http), as for registries: host, port and why.
    assert f"Could not reach the Helm repository at 127.0.0.1:{port}" in run.error
    assert "the connection was refused" in run.error


def test_markdown_asterisks_in_a_description_are_not_taken_for_yaml_aliases(helm_repo):
    archive = make_chart_archive("redis", "1.0.0")
    helm_repo.write_index(
        helm_index(
            [
                {
                    "name": "redis",
                    "version": "1.0.0",
                    "archive": archive,
                    "description": "A store - *fast* and [*small*], see: *docs*",
                }
            ]
        )
    )

    run = sync(helm_source(helm_repo))

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert ChartVersion.objects.get().description == "A store - *fast* and [*small*], see: *docs*"


def test_an_index_that_shares_values_through_anchors_is_read_as_helm_reads_it(helm_repo):
    # PyYAML's safe_dump writes a list shared by several entries once, with an anchor.
    import yaml

    maintainers = [{"name": "Platform team", "email": "platform@example.com"}]
    document = {
        "apiVersion": "v1",
        "entries": {
            name: [{"name": name, "version": "1.0.0", "maintainers": maintainers}]
            for name in ("api", "web", "worker")
        },
    }
    body = yaml.safe_dump(document).encode()
    assert b"&id001" in body and b"*id001" in body
    helm_repo.write_index(body)

    run = sync(helm_source(helm_repo))

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert ChartVersion.objects.count() == 3
    assert all(v.metadata["maintainers"] == maintainers for v in ChartVersion.objects.all())
