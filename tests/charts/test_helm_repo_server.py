"""The nginx Helm repository fixture behaves like a real static chart server."""

import requests

from tests.chartkit import helm_index, make_chart_archive
from tests.servers.base import wait_until


def get(url: str, **kwargs) -> requests.Response:
    with requests.Session() as session:
        session.trust_env = False
        return session.get(url, timeout=5, **kwargs)


def test_index_is_served_with_an_etag_and_last_modified(helm_repo):
    index = helm_index([{"name": "demo", "version": "1.0.0"}])
    helm_repo.write_index(index)
    answer = get(f"{helm_repo.url}/index.yaml")
    assert answer.status_code == 200
    assert answer.content == index
    assert answer.headers["ETag"]
    assert answer.headers["Last-Modified"]


def test_a_repeat_with_if_none_match_gets_304(helm_repo):
    helm_repo.write_index(helm_index([{"name": "demo", "version": "1.0.0"}]))
    first = get(f"{helm_repo.url}/index.yaml")
    again = get(f"{helm_repo.url}/index.yaml", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert again.content == b""


def test_a_repeat_with_if_modified_since_gets_304(helm_repo):
    helm_repo.write_index(helm_index([{"name": "demo", "version": "1.0.0"}]))
    first = get(f"{helm_repo.url}/index.yaml")
    again = get(
        f"{helm_repo.url}/index.yaml",
        headers={"If-Modified-Since": first.headers["Last-Modified"]},
    )
    assert again.status_code == 304


def test_rewriting_the_index_at_once_changes_its_etag(helm_repo):
    index = helm_index([{"name": "demo", "version": "1.0.0"}])
    helm_repo.write_index(index)
    first = get(f"{helm_repo.url}/index.yaml")
    helm_repo.write_index(index.replace(b"1.0.0", b"1.0.1"))  # same size, same second
    again = get(f"{helm_repo.url}/index.yaml", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 200
    assert b"1.0.1" in again.content


def test_chart_archives_are_served_byte_for_byte(helm_repo):
    archive = make_chart_archive("demo", "1.0.0")
    helm_repo.put("charts/demo-1.0.0.tgz", archive)
    answer = get(f"{helm_repo.url}/charts/demo-1.0.0.tgz")
    assert answer.status_code == 200
    assert answer.content == archive


def test_the_access_log_records_each_request_with_its_status(helm_repo):
    helm_repo.write_index(b"apiVersion: v1\nentries: {}\n")
    first = get(f"{helm_repo.url}/index.yaml")
    get(f"{helm_repo.url}/index.yaml", headers={"If-None-Match": first.headers["ETag"]})
    get(f"{helm_repo.url}/missing.tgz")
    wait_until(
        lambda: len(helm_repo.access_log_lines()) == 3, what="three access log lines", timeout=5
    )
    statuses = [line.split()[2] for line in helm_repo.access_log_lines()]
    assert statuses == ["200", "304", "404"]


def test_each_test_starts_with_an_empty_repository(helm_repo):
    assert list(helm_repo.root.iterdir()) == []
    assert get(f"{helm_repo.url}/index.yaml").status_code == 404


def test_the_private_repository_refuses_requests_without_credentials(private_helm_repo):
    private_helm_repo.write_index(b"apiVersion: v1\nentries: {}\n")
    answer = get(f"{private_helm_repo.url}/index.yaml")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Basic")


def test_the_private_repository_refuses_a_wrong_password(private_helm_repo):
    private_helm_repo.write_index(b"apiVersion: v1\nentries: {}\n")
    answer = get(f"{private_helm_repo.url}/index.yaml", auth=(private_helm_repo.username, "wrong"))
    assert answer.status_code == 401


def test_the_private_repository_serves_with_credentials(private_helm_repo):
    private_helm_repo.write_index(b"apiVersion: v1\nentries: {}\n")
    auth = (private_helm_repo.username, private_helm_repo.password)
    answer = get(f"{private_helm_repo.url}/index.yaml", auth=auth)
    assert answer.status_code == 200
    assert answer.content == b"apiVersion: v1\nentries: {}\n"
