"""Chart archives named by an index.yaml are fetched only from hosts the admin allows.

Over http(s) only, from the repository's own host or one listed under "Also allow chart
downloads from these hosts", and every redirect hop keeps to the same rules. Small
servers on loopback record what reached them; ``localhost`` is another host than
``127.0.0.1`` (the repository's).
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from charts.helmrepo import HelmEndpoint, HelmRepoClient, HelmRepoError
from charts.models import HelmRepository
from config.http import TLS_INSECURE, Transport
from tests.chartkit import make_chart_archive
from tests.hostile import Answer, RecordingServer

ARCHIVE = make_chart_archive("web", "1.0.0")
SETTING = "“Also allow chart downloads from these hosts”"


def endpoint(server: RecordingServer, *hosts: str) -> HelmEndpoint:
    return HelmEndpoint(
        server.url(),
        "reader",
        "helm-pw-do-not-leak",
        transport=Transport(tls=TLS_INSECURE, timeout=5.0),
        archive_hosts=hosts,
    )


def download(endpoint: HelmEndpoint, url: str) -> bytes:
    with HelmRepoClient(endpoint) as client:
        return client.fetch_archive(url, max_bytes=10**6)


def refusal(endpoint: HelmEndpoint, url: str) -> HelmRepoError:
    with pytest.raises(HelmRepoError) as caught:
        download(endpoint, url)
    return caught.value


def test_an_archive_on_another_host_is_refused_naming_the_host_and_the_setting():
    with RecordingServer() as repo, RecordingServer({"/web.tgz": Answer(body=ARCHIVE)}) as cdn:
        error = refusal(endpoint(repo), f"http://localhost:{cdn.port}/web.tgz")

    assert f"localhost:{cdn.port}" in str(error)
    assert SETTING in str(error)
    assert cdn.seen == [] and repo.seen == []


def test_an_archive_on_a_listed_host_is_fetched_without_the_repositorys_credentials():
    with RecordingServer() as repo, RecordingServer({"/web.tgz": Answer(body=ARCHIVE)}) as cdn:
        data = download(
            endpoint(repo, f"localhost:{cdn.port}"), f"http://localhost:{cdn.port}/web.tgz"
        )

    assert data == ARCHIVE
    assert [seen.authorization for seen in cdn.seen] == [None]


def test_a_redirect_off_the_allowed_hosts_is_refused_before_it_is_followed():
    with RecordingServer() as repo, RecordingServer({"/web.tgz": Answer(body=ARCHIVE)}) as cdn:
        repo.routes["/web.tgz"] = Answer(
            302, headers={"Location": f"http://localhost:{cdn.port}/web.tgz"}
        )
        error = refusal(endpoint(repo), repo.url("/web.tgz"))

    assert f"redirected the chart archive download to localhost:{cdn.port}" in str(error)
    assert SETTING in str(error)
    assert cdn.seen == []


def test_a_redirect_to_a_listed_host_is_followed():
    with RecordingServer() as repo, RecordingServer({"/web.tgz": Answer(body=ARCHIVE)}) as cdn:
        repo.routes["/web.tgz"] = Answer(
            302, headers={"Location": f"http://localhost:{cdn.port}/web.tgz"}
        )
        data = download(endpoint(repo, f"localhost:{cdn.port}"), repo.url("/web.tgz"))

    assert data == ARCHIVE
    assert repo.seen[0].authorization and cdn.seen[0].authorization is None


def test_redirects_are_followed_a_bounded_number_of_times():
    with RecordingServer() as repo:
        repo.routes["/web.tgz"] = Answer(302, headers={"Location": "/web.tgz"})
        error = refusal(endpoint(repo), repo.url("/web.tgz"))

    assert "redirected the request more than 5 times" in str(error)
    assert len(repo.seen) == 6


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/web.tgz", "gopher://x/"])
def test_an_archive_url_that_is_not_http_is_refused(url):
    with RecordingServer() as repo:
        error = refusal(endpoint(repo), url)

    assert "only over http:// or https://" in str(error)
    assert "/etc/passwd" not in str(error)


@pytest.mark.parametrize(
    ("repository", "hosts", "url", "allowed"),
    [
        ("https://charts.example.com/stable", (), "https://charts.example.com/a.tgz", True),
        ("https://charts.example.com", (), "http://charts.example.com/a.tgz", True),
        ("https://charts.example.com", (), "https://CHARTS.example.com:443/a.tgz", True),
        ("https://charts.example.com", (), "https://charts.example.com:8443/a.tgz", False),
        ("https://charts.example.com:8443", (), "https://charts.example.com:8443/a.tgz", True),
        ("https://charts.example.com:8443", (), "https://charts.example.com/a.tgz", False),
        ("https://charts.example.com", (), "https://cdn.example.com/a.tgz", False),
        ("https://charts.example.com", ("cdn.example.com",), "https://cdn.example.com/a.tgz", True),
        ("https://charts.example.com", ("cdn.example.com",), "https://cdn.example.com:9/a.tgz", False),
        ("https://charts.example.com", ("cdn.example.com:9",), "https://cdn.example.com:9/a", True),
        ("https://charts.example.com", ("cdn.example.com",), "https://x.cdn.example.com/a", False),
        ("https://charts.example.com", ("[::1]:8080",), "http://[::1]:8080/a.tgz", True),
    ],
)  # fmt: skip
def test_which_archive_hosts_are_allowed(repository, hosts, url, allowed):
    endpoint = HelmEndpoint(repository, archive_hosts=hosts)
    assert endpoint.allows_archive_from(url) is allowed


# --- the setting on the repository --------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value", ["https://cdn.example.com", "cdn.example.com/charts", "cdn..example.com", "user@cdn.example.com", "cdn.example.com:99999", "two words"]
)  # fmt: skip
def test_a_host_list_that_is_not_hosts_is_refused(value):
    repository = HelmRepository(
        name="stable", url="https://charts.example.com", archive_hosts=value
    )
    with pytest.raises(ValidationError) as caught:
        repository.full_clean()
    assert "archive_hosts" in caught.value.message_dict


@pytest.mark.django_db
def test_the_listed_hosts_reach_the_helm_client():
    repository = HelmRepository(
        name="stable", url="https://charts.example.com",
        archive_hosts="\n  github.com \nobjects.githubusercontent.com:443\n\n",
    )  # fmt: skip
    repository.full_clean()
    assert repository.endpoint().archive_hosts == (
        "github.com",
        "objects.githubusercontent.com:443",
    )


@pytest.mark.django_db
def test_the_chart_files_read_explains_a_refused_archive_host(helm_repo):
    from charts.files import read_pending_files
    from charts.models import ChartVersion
    from tests.chartkit import helm_index
    from tests.charts.helpers import helm_source, sync

    helm_repo.write_index(
        helm_index(
            [{"name": "web", "version": "1.0.0", "archive": ARCHIVE}],
            base_url="https://charts.elsewhere.example/",
        )
    )
    sync(helm_source(helm_repo))

    read_pending_files()  # what the worker does after the sync
    version = ChartVersion.objects.get()

    assert "charts.elsewhere.example" in version.files_error
    assert SETTING in version.files_error


@pytest.mark.django_db
def test_the_repository_form_saves_the_hosts_and_explains_a_bad_one(admin_client):
    from django.urls import reverse

    data = {
        "name": "stable", "url": "https://charts.example.com", "access": "public",
        "connection_method": "direct", "tls_mode": "secure", "active": "on",
        "save_without_checking": "on",
    }  # fmt: skip
    page = admin_client.post(
        reverse("charts:helmrepository_add"), {**data, "archive_hosts": "github.com/releases"}
    )
    assert "“github.com/releases” is not a host" in page.content.decode()
    assert not HelmRepository.objects.exists()

    admin_client.post(reverse("charts:helmrepository_add"), {**data, "archive_hosts": "github.com"})
    assert HelmRepository.objects.get().archive_hosts == "github.com"
    page = admin_client.get(
        reverse("charts:helmrepository_edit", args=[HelmRepository.objects.get().pk])
    )
    assert "Also allow chart downloads from these hosts" in page.content.decode()
