"""Chart Repositories, chart sources and Chart Store screens through the test client."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from charts.files import MAX_ATTEMPTS, pending_versions, read_pending_files, request_files
from charts.models import Chart, ChartSource, ChartVersion, HelmRepository, SyncRun
from config.models import AuditEntry
from tests.chartkit import helm_index, make_chart_archive
from tests.charts.helpers import helm_source, oci_registry, push_versions, source_of, sync, unique
from tests.crud import CrudScreen

pytestmark = pytest.mark.django_db

SECRET = "helm-repo-secret-do-not-leak"


def repository_data(**overrides) -> dict:
    data = {
        "name": "stable",
        "url": "https://charts.example.com/stable",
        "access": "public",
        "tls_mode": "secure",
        "active": "on",
        "save_without_checking": "on",  # nothing serves charts.example.com
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def make_chart(source, name: str, versions: list[str], **fields) -> Chart:
    chart = Chart.objects.create(source=source, name=name, latest_version=versions[0], **fields)
    for version in versions:
        ChartVersion.objects.create(chart=chart, version=version, fingerprint=version)
    return chart


@pytest.fixture
def helm_repository():
    repository = HelmRepository.objects.create(
        name="team", url="https://charts.example.com/team", access="private",
        username="reader", password=SECRET,
    )  # fmt: skip
    ChartSource.objects.create(kind="helm", helm_repository=repository)
    return repository


# --- permissions ------------------------------------------------------------------------


def test_chart_store_is_for_every_signed_in_user_and_not_for_anonymous(
    user_client, helm_repository
):
    chart = make_chart(helm_repository.source, "redis", ["1.0.0"])
    assert user_client.get(reverse("charts:chart_list")).status_code == 200
    assert user_client.get(reverse("charts:chart_detail", args=[chart.pk])).status_code == 200
    client = Client()
    assert client.get(reverse("charts:chart_list")).status_code == 302
    assert client.get(reverse("charts:chart_detail", args=[chart.pk])).status_code == 302


# --- Chart Repositories -----------------------------------------------------------------


def test_adding_a_repository_saves_it_audits_it_and_queues_its_first_sync(
    admin_client, queued_syncs, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("charts:helmrepository_add"), repository_data())
    assert response.status_code == 302
    repository = HelmRepository.objects.get(name="stable")
    run = SyncRun.objects.get(source__helm_repository=repository)
    assert queued_syncs == [run.pk]
    assert run.trigger == SyncRun.Trigger.CHANGE
    assert AuditEntry.objects.filter(object_repr="stable", action="create").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"url": "charts.example.com"}, "http:// or https:// URL"),
        ({"url": "ftp://charts.example.com"}, "http:// or https:// URL"),
        ({"url": "https://user:pw@charts.example.com"}, "Do not put credentials in the URL"),
        ({"url": "http://charts.example.com"}, "plain http://"),
        ({"access": "private"}, "A private repository needs a username"),
        ({"name": "Bad Name"}, "lowercase letters"),
        ({"tls_mode": "ca", "ca_certificate": "nope"}, "not a PEM certificate"),
    ],
)
def test_bad_input_is_explained_beside_the_field_and_saves_nothing(
    admin_client, overrides, message
):
    response = admin_client.post(reverse("charts:helmrepository_add"), repository_data(**overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not HelmRepository.objects.exists()


def test_index_yaml_at_the_end_of_the_url_is_accepted_and_dropped(admin_client):
    admin_client.post(
        reverse("charts:helmrepository_add"),
        repository_data(url="https://charts.example.com/stable/index.yaml/"),
    )
    assert HelmRepository.objects.get().url == "https://charts.example.com/stable"


def test_the_password_is_encrypted_never_shown_and_kept_when_left_blank(
    admin_client, helm_repository
):
    page = admin_client.get(reverse("charts:helmrepository_edit", args=[helm_repository.pk]))
    assert SECRET not in page.content.decode()
    admin_client.post(
        reverse("charts:helmrepository_edit", args=[helm_repository.pk]),
        repository_data(
            name=None, access="private", username="reader", password="", url=helm_repository.url
        ),
    )
    helm_repository.refresh_from_db()
    assert helm_repository.password == SECRET
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT password FROM charts_helmrepository")
        assert SECRET not in cursor.fetchone()[0]
    for url in ("charts:helmrepository_list", "charts:chartsource_list"):
        assert SECRET not in admin_client.get(reverse(url)).content.decode()
    assert SECRET not in str(list(AuditEntry.objects.values_list("changes", flat=True)))


def test_test_connection_reads_the_index_and_says_what_it_found(admin_client, helm_repo):
    archive = make_chart_archive("redis", "1.0.0")
    helm_repo.write_index(helm_index([{"name": "redis", "version": "1.0.0", "archive": archive}]))
    response = admin_client.post(
        reverse("charts:helmrepository_add"),
        repository_data(url=helm_repo.url, tls_mode="insecure", _action="test"),
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert "Connection OK." in html and "1 charts, 1 versions" in html
    assert not HelmRepository.objects.exists()


def test_test_connection_reports_a_wrong_password(admin_client, private_helm_repo):
    response = admin_client.post(
        reverse("charts:helmrepository_add"),
        repository_data(
            url=private_helm_repo.url,
            tls_mode="insecure",
            access="private",
            username="charts",
            password="wrong",
            _action="test",
        ),
        HTTP_HX_REQUEST="true",
    )
    assert "refused the username and password" in response.content.decode()


def test_delete_page_shows_how_many_charts_leave_the_store(admin_client, helm_repository):
    make_chart(helm_repository.source, "redis", ["1.0.0", "1.1.0"])
    page = admin_client.get(reverse("charts:helmrepository_delete", args=[helm_repository.pk]))
    assert "1 chart (2 versions) indexed from it leaves the Chart Store" in page.content.decode()
    admin_client.post(reverse("charts:helmrepository_delete", args=[helm_repository.pk]))
    assert not Chart.objects.exists()


# --- sources and runs -------------------------------------------------------------------


def test_sync_now_queues_one_run_and_answers_htmx_with_the_runs_table(
    admin_client, helm_repository, queued_syncs, django_capture_on_commit_callbacks
):
    url = reverse("charts:chartsource_sync", args=[helm_repository.source.pk])
    with django_capture_on_commit_callbacks(execute=True):
        first = admin_client.post(url, HTTP_HX_REQUEST="true")
        admin_client.post(url, HTTP_HX_REQUEST="true")  # a second click joins the queued run
    assert first.status_code == 200
    assert 'id="runs"' in first.content.decode() and "Queued" in first.content.decode()
    assert SyncRun.objects.count() == 1
    assert queued_syncs == [SyncRun.objects.get().pk]


def test_runs_table_polls_while_a_run_is_going_and_stops_with_286(admin_client, helm_repository):
    source = helm_repository.source
    run = SyncRun.objects.create(source=source, status=SyncRun.Status.RUNNING, indexed=1234)
    url = reverse("charts:chartsource_runs", args=[source.pk])
    live = admin_client.get(url, HTTP_HX_REQUEST="true")
    assert live.status_code == 200
    assert "1234 versions indexed so far" in live.content.decode()
    assert 'hx-trigger="every 2s"' in live.content.decode()
    run.status = SyncRun.Status.FAILED
    run.error = "index.yaml is not valid YAML"
    run.save()
    done = admin_client.get(url, HTTP_HX_REQUEST="true")
    assert done.status_code == 286
    assert "index.yaml is not valid YAML" in done.content.decode()


def test_source_page_shows_the_runs_with_counts_and_errors(admin_client, helm_repository):
    SyncRun.objects.create(
        source=helm_repository.source, status="succeeded", added=12, updated=3, removed=1
    )
    SyncRun.objects.create(source=helm_repository.source, status="failed", error="HTTP 503")
    html = admin_client.get(
        reverse("charts:chartsource_detail", args=[helm_repository.source.pk])
    ).content.decode()
    assert "HTTP 503" in html and "What earlier runs indexed is kept." in html
    assert ">12<" in html


def test_registry_list_shows_each_chart_repositorys_last_sync(admin_client, chart_registry):
    repo = unique("charts/listed")
    push_versions(chart_registry, repo, "listed", ["1.0.0"])
    source = source_of(oci_registry(chart_registry, [repo]), repo)
    sync(source)
    html = admin_client.get(reverse("registries:registry_list")).content.decode()
    assert repo in html and "Synced" in html


# --- Chart Store ------------------------------------------------------------------------


def test_store_searches_name_description_and_keywords(user_client, helm_repository):
    source = helm_repository.source
    make_chart(source, "redis", ["1.0.0"], description="In-memory store")
    make_chart(source, "postgresql", ["2.0.0"], keywords="database sql")
    make_chart(source, "nginx", ["3.0.0"], description="Web server")

    def names(q):
        page = user_client.get(reverse("charts:chart_list"), {"q": q}).context["page"]
        return [c.name for c in page.object_list]

    assert names("redis") == ["redis"]
    assert names("memory") == ["redis"]
    assert names("sql") == ["postgresql"]
    assert names("") == ["nginx", "postgresql", "redis"]


def test_store_filters_by_source_and_hides_inactive_sources(user_client, helm_repository):
    other = HelmRepository.objects.create(name="other", url="https://o.example.com")
    other_source = ChartSource.objects.create(kind="helm", helm_repository=other)
    make_chart(helm_repository.source, "redis", ["1.0.0"])
    make_chart(other_source, "nginx", ["1.0.0"])
    page = user_client.get(reverse("charts:chart_list"), {"source": other_source.pk}).context[
        "page"
    ]
    assert [c.name for c in page.object_list] == ["nginx"]
    other.active = False
    other.save()
    page = user_client.get(reverse("charts:chart_list")).context["page"]
    assert [c.name for c in page.object_list] == ["redis"]


def test_store_paginates_and_answers_htmx_with_the_results_alone(user_client, helm_repository):
    for i in range(30):
        make_chart(helm_repository.source, f"chart-{i:02d}", ["1.0.0"])
    first = user_client.get(reverse("charts:chart_list"))
    assert len(first.context["page"].object_list) == 24
    assert "30 charts" in first.content.decode()
    cursor = first.context["page"].next_cursor
    assert f'&cursor={cursor}">Next' in first.content.decode()
    partial = user_client.get(
        reverse("charts:chart_list"), {"cursor": cursor}, HTTP_HX_REQUEST="true"
    )
    assert '<nav class="navbar' not in partial.content.decode()
    assert [c.name for c in partial.context["page"].object_list] == [
        f"chart-{i:02d}" for i in range(24, 30)
    ]


def test_store_queries_do_not_grow_with_the_number_of_charts(
    user_client, helm_repository, django_assert_max_num_queries
):
    for i in range(60):
        make_chart(helm_repository.source, f"chart-{i:02d}", ["1.0.0"])
    with django_assert_max_num_queries(9):  # 8, and the user's role (config/roles.py)
        user_client.get(reverse("charts:chart_list"), {"q": "chart"})


def test_bad_page_numbers_and_filters_do_not_fail(user_client, helm_repository):
    make_chart(helm_repository.source, "redis", ["1.0.0"])
    for params in (
        {"page": "999"},
        {"page": "x"},
        {"source": "abc"},
        {"q": "%' OR 1=1"},
        {"cursor": "x"},
        {"cursor": "%' OR 1=1"},
    ):
        assert user_client.get(reverse("charts:chart_list"), params).status_code == 200


# --- chart page -------------------------------------------------------------------------


def test_chart_files_are_read_by_a_worker_and_a_page_view_fetches_nothing(
    user_client, helm_repo, broker, django_capture_on_commit_callbacks
):
    archive = make_chart_archive(
        "redis", "1.0.0", values="replicaCount: 3\n", readme="# Redis chart\n"
    )
    helm_repo.put("charts/redis-1.0.0.tgz", archive)
    helm_repo.write_index(helm_index([{"name": "redis", "version": "1.0.0", "archive": archive}]))
    source = helm_source(helm_repo)
    with django_capture_on_commit_callbacks(execute=True):
        sync(source)
    chart = Chart.objects.get()
    archive_reads = sum(".tgz " in line for line in helm_repo.access_log_lines())

    before = user_client.get(reverse("charts:chart_detail", args=[chart.pk])).content.decode()
    assert "Reading the chart" in before and "replicaCount" not in before
    assert sum(".tgz " in line for line in helm_repo.access_log_lines()) == archive_reads
    assert broker.sent("charts.tasks.read_chart_files")  # the sync woke the reader

    broker.run_all()  # a worker reads the archive
    html = user_client.get(reverse("charts:chart_detail", args=[chart.pk])).content.decode()

    assert "replicaCount: 3" in html and "<h1>Redis chart</h1>" in html
    assert f"helm pull redis --repo {helm_repo.url} --version 1.0.0" in html
    assert f"helm install redis redis --repo {helm_repo.url} --version 1.0.0" in html
    assert sum(".tgz " in line for line in helm_repo.access_log_lines()) == archive_reads + 1


def test_the_files_fragment_polls_while_reading_and_stops_once_read(user_client, helm_repo):
    archive = make_chart_archive("redis", "1.0.0")
    helm_repo.put("charts/redis-1.0.0.tgz", archive)
    helm_repo.write_index(helm_index([{"name": "redis", "version": "1.0.0", "archive": archive}]))
    sync(helm_source(helm_repo))
    version = ChartVersion.objects.get()
    url = reverse("charts:chartversion_files", args=[version.chart_id, version.pk])

    waiting = user_client.get(url, headers={"HX-Request": "true"})
    read_pending_files()
    done = user_client.get(url, headers={"HX-Request": "true"})

    assert waiting.status_code == 200 and 'hx-trigger="every 2s"' in waiting.content.decode()
    assert done.status_code == 286 and "replicaCount: 1" in done.content.decode()


def test_a_corrupt_archive_is_explained_and_tried_again_after_a_backoff(
    user_client, helm_repo, time_machine
):
    time_machine.move_to("2026-06-01 08:00Z", tick=False)
    corrupt = b"\x1f\x8b\x08\x00garbage" * 20
    helm_repo.put("charts/broken-1.0.0.tgz", corrupt)
    helm_repo.write_index(helm_index([{"name": "broken", "version": "1.0.0", "archive": corrupt}]))
    sync(helm_source(helm_repo))

    assert read_pending_files() == 1
    assert read_pending_files() == 0  # not again before the backoff
    response = user_client.get(reverse("charts:chart_detail", args=[Chart.objects.get().pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert "The chart archive could not be read" in html and "tries again at 08:01" in html
    version = ChartVersion.objects.get()
    assert (version.files_attempts, version.files_read_at) == (1, None)
    time_machine.shift(timedelta(minutes=2))
    assert read_pending_files() == 1


def test_a_version_stays_failed_after_its_last_attempt_until_asked_again(
    user_client, helm_repo, time_machine, broker, django_capture_on_commit_callbacks
):
    time_machine.move_to("2026-06-01 08:00Z", tick=False)
    helm_repo.write_index(
        helm_index([{"name": "gone", "version": "1.0.0", "archive": b"x", "urls": ["nowhere.tgz"]}])
    )
    sync(helm_source(helm_repo))
    for _ in range(MAX_ATTEMPTS):
        read_pending_files()
        time_machine.shift(timedelta(hours=7))
    version = ChartVersion.objects.get()
    assert version.files_attempts == MAX_ATTEMPTS and version.files_state == "failed"
    assert read_pending_files() == 0
    url = reverse("charts:chartversion_files", args=[version.chart_id, version.pk])
    assert "Read now" in user_client.get(url).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        user_client.post(url, headers={"HX-Request": "true"})

    assert broker.sent("charts.tasks.read_chart_files")
    assert read_pending_files() == 1  # one more attempt, as asked


def test_read_now_respects_the_backoff_of_a_failed_read(user_client, helm_repo, time_machine):
    time_machine.move_to("2026-06-01 08:00Z", tick=False)
    helm_repo.write_index(
        helm_index([{"name": "gone", "version": "1.0.0", "archive": b"x", "urls": ["nowhere.tgz"]}])
    )
    sync(helm_source(helm_repo))
    read_pending_files()
    version = ChartVersion.objects.get()
    url = reverse("charts:chartversion_files", args=[version.chart_id, version.pk])

    response = user_client.post(url, headers={"HX-Request": "true"})

    assert "the next one is at 08:01" in response.content.decode()
    assert read_pending_files() == 0


def test_latest_versions_are_read_first_and_asked_for_ones_before_all(helm_repo):
    entries = [
        {"name": "app", "version": v, "archive": make_chart_archive("app", v)}
        for v in ("1.0.0", "3.0.0", "2.0.0")
    ]
    helm_repo.write_index(helm_index(entries))
    sync(helm_source(helm_repo))
    assert pending_versions().first().version == "3.0.0"  # the chart's latest

    old = ChartVersion.objects.get(version="1.0.0")
    request_files(old)

    assert [v.version for v in pending_versions()][:2] == ["1.0.0", "3.0.0"]


def test_an_archive_that_does_not_match_the_index_digest_is_refused(user_client, helm_repo):
    archive = make_chart_archive("redis", "1.0.0")
    helm_repo.put(
        "charts/redis-1.0.0.tgz", make_chart_archive("redis", "1.0.0", values="evil: 1\n")
    )
    helm_repo.write_index(helm_index([{"name": "redis", "version": "1.0.0", "archive": archive}]))
    sync(helm_source(helm_repo))
    read_pending_files()

    html = user_client.get(
        reverse("charts:chart_detail", args=[Chart.objects.get().pk])
    ).content.decode()

    assert "does not match the digest" in html and "evil" not in html


def test_chart_page_lists_versions_in_semver_order_and_shows_the_oci_commands(
    user_client, chart_registry
):
    repo = unique("charts/app")
    push_versions(chart_registry, repo, "app", ["1.2.0", "1.10.0", "1.10.0-rc.1", "1.9.0"])
    source = source_of(oci_registry(chart_registry, [repo]), repo)
    sync(source)
    chart = Chart.objects.get(source=source)

    response = user_client.get(
        reverse("charts:chart_detail", args=[chart.pk]), {"version": "1.9.0"}
    )

    assert [v.version for v in response.context["versions"]] == [
        "1.10.0",
        "1.10.0-rc.1",
        "1.9.0",
        "1.2.0",
    ]
    html = response.content.decode()
    assert f"helm pull oci://{chart_registry.host}/{repo} --version 1.9.0" in html
    assert "pre-release" in html
    read_pending_files()  # the worker reads the files (the OCI chart layer)
    html = user_client.get(reverse("charts:chart_detail", args=[chart.pk]), {"version": "1.9.0"})
    html = html.content.decode()
    assert "image: app" not in html  # values come from make_chart_archive's default
    assert "replicaCount: 1" in html


def test_icons_from_the_internet_are_never_loaded_by_the_page(user_client, helm_repository):
    source = helm_repository.source
    make_chart(source, "outside", ["1.0.0"], icon="https://cdn.example.org/outside.png")
    make_chart(source, "inside", ["1.0.0"], icon="https://charts.example.com/icons/inside.png")
    make_chart(source, "inline", ["1.0.0"], icon="data:image/png;base64,iVBORw0KGgo=")
    html = user_client.get(reverse("charts:chart_list")).content.decode()
    assert "cdn.example.org" not in html
    assert 'src="https://charts.example.com/icons/inside.png"' in html
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in html


def test_registry_delete_page_counts_the_charts_that_leave_the_store(admin_client, chart_registry):
    repo = unique("charts/doomed")
    push_versions(chart_registry, repo, "doomed", ["1.0.0"])
    registry = oci_registry(chart_registry, [repo])
    sync(source_of(registry, repo))
    html = admin_client.get(
        reverse("registries:registry_delete", args=[registry.pk])
    ).content.decode()
    assert "1 chart indexed from it leaves the Chart Store" in html


class TestHelmRepositoryScreen(CrudScreen):
    model = HelmRepository
    namespace = "charts"
    add_data = repository_data()
    added_name = "stable"
    edit_field = "url"
    edit_value = "https://charts.example.com/other"
    bad_field = "url"
    bad_value = "ftp://charts.example.com"
    bad_message = "http:// or https:// URL"

    def make(self):
        repository = HelmRepository.objects.create(name="team", url="https://charts.example.com/t")
        ChartSource.objects.create(kind="helm", helm_repository=repository)
        return repository

    def edit_data(self, obj):
        return repository_data(name=obj.name, url=obj.url)
