"""The "Push chart" page and the pushes table, through the test client, on a real registry."""

from __future__ import annotations

import gzip
import io
import random
import tarfile
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from charts.models import ChartPush
from config.models import AuditEntry
from config.runs import recover_runs
from tests.chartkit import deterministic_tgz, make_chart_archive
from tests.charts.helpers import unique
from tests.charts.pushkit import fake_provenance, push_registry, tags_of

pytestmark = pytest.mark.django_db(transaction=True)


def upload(data: bytes, name: str = "chart.tgz") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/gzip")


def post_push(client, registry, archive: bytes, **fields):
    data = {"archive": upload(archive), "prefix": fields.pop("prefix", "")}
    if "provenance" in fields:
        data["provenance"] = upload(fields.pop("provenance"), "chart.tgz.prov")
    if fields.pop("overwrite", False):
        data["overwrite"] = "on"
    return client.post(reverse("charts:chartpush_add", args=[registry.pk]), data)


def tgz_with(members: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    """A gzip'd tar of hand-made members: (name, bytes) files or TarInfo entries (links…)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tar.addfile(info, io.BytesIO(member[1]))
    return gzip.compress(raw.getvalue(), mtime=0)


def link(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


CHART_YAML = b"apiVersion: v2\nname: bad\nversion: 1.0.0\n"

BAD_ARCHIVES = {
    "not gzip": (b"just some text, not a chart", "not a gzip-compressed chart archive"),
    "gzip but not tar": (gzip.compress(b"x" * 600, mtime=0), "not a valid tar file"),
    "two top-level folders": (
        deterministic_tgz({"bad/Chart.yaml": CHART_YAML, "other/x.yaml": b"a: 1\n"}),
        "more than one top-level folder",
    ),
    "file at the top level": (
        deterministic_tgz({"Chart.yaml": CHART_YAML}),
        "is a file at the top level",
    ),
    "no Chart.yaml": (deterministic_tgz({"bad/values.yaml": b"a: 1\n"}), "has no bad/Chart.yaml"),
    "Chart.yaml not YAML": (
        deterministic_tgz({"bad/Chart.yaml": b"name: [unclosed\n"}),
        "is not valid YAML",
    ),
    "no version": (
        deterministic_tgz({"bad/Chart.yaml": b"apiVersion: v2\nname: bad\n"}),
        "has no 'version'",
    ),
    "invalid name": (
        deterministic_tgz({"bad/Chart.yaml": b"apiVersion: v2\nname: Bad_Name\nversion: 1.0.0\n"}),
        "the chart name 'Bad_Name' cannot name an OCI repository",
    ),
    "version not SemVer": (
        deterministic_tgz({"bad/Chart.yaml": b"apiVersion: v2\nname: bad\nversion: '1.0.0.0'\n"}),
        "is not a version Helm accepts",
    ),
    "no apiVersion": (
        deterministic_tgz({"bad/Chart.yaml": b"name: bad\nversion: '1.0.0'\n"}),
        "it has no apiVersion",
    ),
    "YAML alias bomb": (
        # 500 bytes of YAML that expand to a 10 GB config blob when written out as JSON.
        deterministic_tgz(
            {
                "bad/Chart.yaml": CHART_YAML
                + b"l0: &l0 [xxxxxxxxxx, xxxxxxxxxx, xxxxxxxxxx, xxxxxxxxxx, xxxxxxxxxx]\n"
                + b"".join(
                    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n".encode()
                    for i in range(1, 10)
                )
                + b"keywords: [*l9]\n"
            }
        ),
        "YAML aliases",
    ),
    "absolute path": (
        tgz_with([("bad/Chart.yaml", CHART_YAML), ("/etc/passwd", b"root\n")]),
        "has an absolute path",
    ),
    "dot-dot path": (
        tgz_with([("bad/Chart.yaml", CHART_YAML), ("bad/../../escape.txt", b"x")]),
        "'..' path component",
    ),
    "link out of the chart": (
        tgz_with([("bad/Chart.yaml", CHART_YAML), link("bad/templates/x.yaml", "/etc/passwd")]),
        "chart archives may not contain links",
    ),
}


@pytest.mark.parametrize("case", list(BAD_ARCHIVES))
def test_bad_archive_is_refused_beside_the_field_and_nothing_is_pushed(
    admin_client, chart_registry, case
):
    archive, message = BAD_ARCHIVES[case]
    registry = push_registry(chart_registry)

    response = post_push(admin_client, registry, archive)

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == ["archive"], errors
    assert message in errors["archive"][0]
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not ChartPush.objects.exists()
    assert not AuditEntry.objects.filter(object_type="chart push").exists()
    assert tags_of(chart_registry, "bad") == []


def test_archive_over_the_size_limit_is_refused(admin_client, chart_registry, settings):
    settings.WHARF_CHART_PUSH_MAX_BYTES = 1000
    name = unique("big")
    archive = make_chart_archive(
        name, "1.0.0", extra={"blob.bin": random.Random(1).randbytes(4000)}
    )

    response = post_push(admin_client, push_registry(chart_registry), archive)

    assert "more than the 1,000 allowed" in response.context["form"].errors["archive"][0]
    assert not ChartPush.objects.exists()
    assert tags_of(chart_registry, name) == []


@pytest.mark.parametrize(
    ("provenance", "message"),
    [
        (b"\xff\xfe\x00binary", "not text"),
        (b"hello, not signed\n", "not a PGP signed message"),
        (None, "made for another archive"),
    ],
)
def test_bad_provenance_file_is_refused(admin_client, chart_registry, provenance, message):
    name = unique("prov")
    archive = make_chart_archive(name, "1.0.0")
    if provenance is None:  # a real-looking file, for another archive
        provenance = fake_provenance(make_chart_archive(name, "9.9.9"), "x.tgz")

    response = post_push(
        admin_client, push_registry(chart_registry), archive, provenance=provenance
    )

    assert message in response.context["form"].errors["provenance"][0]
    assert not ChartPush.objects.exists()
    assert tags_of(chart_registry, name) == []


@pytest.mark.parametrize("prefix", ["Team", "team//charts", "team charts", "-x"])
def test_bad_repository_prefix_is_refused(admin_client, chart_registry, prefix):
    name = unique("prefix")
    response = post_push(
        admin_client, push_registry(chart_registry), make_chart_archive(name, "1.0.0"),
        prefix=prefix,
    )  # fmt: skip

    assert "Not a repository path" in response.context["form"].errors["prefix"][0]
    assert not ChartPush.objects.exists()


def test_push_page_pushes_the_chart_and_lists_it_with_its_helm_pull_command(
    admin_client, private_chart_registry, broker
):
    name = unique("page")
    registry = push_registry(private_chart_registry)

    response = post_push(admin_client, registry, make_chart_archive(name, "1.4.0"), prefix="ops")

    assert response.status_code == 302
    push = ChartPush.objects.get()
    assert broker.sent("charts.tasks.push_chart") == [push.pk]  # once the upload committed
    broker.run_all()  # a worker takes it
    push.refresh_from_db()
    assert push.status == ChartPush.Status.SUCCEEDED, push.error
    assert push.username == "admin"
    page = admin_client.get(response["Location"]).content.decode()
    assert f"helm pull oci://{private_chart_registry.host}/ops/{name} --version 1.4.0" in page
    assert push.manifest_digest[:19] in page
    assert "queued" in page  # the flash message
    assert private_chart_registry.password not in page
    assert tags_of(private_chart_registry, f"ops/{name}") == ["1.4.0"]


def test_refused_overwrite_shows_the_error_in_the_list(admin_client, chart_registry, broker):
    name = unique("clash")
    registry = push_registry(chart_registry)
    post_push(admin_client, registry, make_chart_archive(name, "1.0.0", values="a: 1\n"))
    broker.run_all()

    response = post_push(admin_client, registry, make_chart_archive(name, "1.0.0", values="b\n"))
    broker.run_all()

    page = admin_client.get(response["Location"]).content.decode()
    assert "already exists in the registry with different content" in page
    latest = ChartPush.objects.first()
    assert latest.status == ChartPush.Status.FAILED


def test_registry_without_push_helm_gets_a_message_and_no_form(admin_client, chart_registry):
    registry = push_registry(chart_registry, push_helm=False)

    page = admin_client.get(reverse("charts:chartpush_add", args=[registry.pk]))
    response = post_push(admin_client, registry, make_chart_archive(unique("off"), "1.0.0"))

    assert page.status_code == 200
    assert "Push helm packages" in page.content.decode()
    assert 'id="push-form"' not in page.content.decode()
    assert response.status_code == 409
    assert not ChartPush.objects.exists()


def test_pushes_table_stops_polling_when_nothing_is_queued(admin_client, chart_registry):
    registry = push_registry(chart_registry)
    url = reverse("charts:chartpush_list", args=[registry.pk])

    assert admin_client.get(url, headers={"HX-Request": "true"}).status_code == 286
    assert admin_client.get(url).status_code == 200


def test_pushes_table_keeps_polling_while_a_push_is_queued(admin_client, chart_registry):
    registry = push_registry(chart_registry)
    ChartPush.objects.create(
        registry=registry, chart_name="web", version="1.0.0", repository="web", tag="1.0.0",
        archive_digest="sha256:" + "0" * 64, archive_size=10,
    )  # fmt: skip

    response = admin_client.get(
        reverse("charts:chartpush_list", args=[registry.pk]), headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    assert 'hx-trigger="every 2s"' in response.content.decode()
    assert "Queued" in response.content.decode()


def test_registry_list_and_edit_page_link_to_push_only_when_push_helm_is_on(
    admin_client, chart_registry
):
    on = push_registry(chart_registry, name="push-on")
    off = push_registry(chart_registry, name="push-off", push_helm=False)

    listing = admin_client.get(reverse("registries:registry_list")).content.decode()

    assert reverse("charts:chartpush_add", args=[on.pk]) in listing
    assert reverse("charts:chartpush_add", args=[off.pk]) not in listing
    edit_on = admin_client.get(reverse("registries:registry_edit", args=[on.pk])).content.decode()
    edit_off = admin_client.get(reverse("registries:registry_edit", args=[off.pk])).content.decode()
    assert reverse("charts:chartpush_add", args=[on.pk]) in edit_on
    assert reverse("charts:chartpush_add", args=[off.pk]) not in edit_off


def test_unknown_registry_is_a_404(admin_client):
    assert admin_client.get(reverse("charts:chartpush_add", args=[999999])).status_code == 404
    assert admin_client.get(reverse("charts:chartpush_list", args=[999999])).status_code == 404


def test_admin_shows_pushes_read_only(admin_client, chart_registry):
    registry = push_registry(chart_registry)
    push = ChartPush.objects.create(
        registry=registry, chart_name="web", version="1.0.0", repository="web", tag="1.0.0",
        archive_digest="sha256:" + "0" * 64, archive_size=10, archive=b"\x1f\x8bsecret-bytes",
    )  # fmt: skip

    listing = admin_client.get(reverse("admin:charts_chartpush_changelist"))
    detail = admin_client.get(reverse("admin:charts_chartpush_change", args=[push.pk]))

    assert listing.status_code == 200 and "web" in listing.content.decode()
    assert detail.status_code == 200 and "secret-bytes" not in detail.content.decode()
    assert admin_client.get(reverse("admin:charts_chartpush_add")).status_code == 403
    post = admin_client.post(reverse("admin:charts_chartpush_change", args=[push.pk]), {})
    assert post.status_code == 403


def test_request_body_far_over_the_limit_is_refused_before_it_is_parsed(
    admin_client, chart_registry, settings
):
    settings.WHARF_CHART_PUSH_MAX_BYTES = 1000
    registry = push_registry(chart_registry)
    archive = make_chart_archive(unique("huge"), "1.0.0", extra={"x": random.randbytes(2_000_000)})

    response = post_push(admin_client, registry, archive)

    assert response.status_code == 413
    assert "more than the 1,000 bytes a chart may be" in response.content.decode()
    assert not ChartPush.objects.exists()


def test_push_page_queries_do_not_grow_with_the_number_of_pushes(
    admin_client, chart_registry, django_assert_max_num_queries
):
    registry = push_registry(chart_registry)
    url = reverse("charts:chartpush_add", args=[registry.pk])

    def add_pushes(n: int) -> None:
        for i in range(n):
            ChartPush.objects.create(
                registry=registry, chart_name="web", version=f"1.0.{i}", repository="web",
                tag=f"1.0.{i}", archive_digest="sha256:" + "0" * 64, archive_size=10,
                status=ChartPush.Status.SUCCEEDED, manifest_digest="sha256:" + "1" * 64,
            )  # fmt: skip

    add_pushes(1)
    admin_client.get(url)  # warm the session and caches
    with CaptureQueriesContext(connection) as one:
        admin_client.get(url)
    add_pushes(10)
    with django_assert_max_num_queries(len(one.captured_queries)):
        response = admin_client.get(url)
    assert response.content.decode().count("helm pull oci://") == 11


def test_push_whose_worker_died_is_failed_by_the_recovery_and_polling_stops(
    admin_client, chart_registry
):
    # A worker killed mid-push (OOM, SIGKILL) has its message acknowledged by Celery: no
    # redelivery will ever finish the row, so the page must not show it "Pushing" forever.
    registry = push_registry(chart_registry)
    push = ChartPush.objects.create(
        registry=registry, chart_name="web", version="1.0.0", repository="web", tag="1.0.0",
        archive_digest="sha256:" + "0" * 64, archive_size=10, archive=b"x" * 10,
        status=ChartPush.Status.RUNNING, started_at=timezone.now() - timedelta(hours=2),
        lease_owner="a-killed-worker", lease_expires_at=timezone.now() - timedelta(hours=1),
    )  # fmt: skip
    url = reverse("charts:chartpush_list", args=[registry.pk])

    polled = admin_client.get(url, headers={"HX-Request": "true"})
    assert polled.status_code == 200  # still polling: a GET writes nothing
    assert ChartPush.objects.get(pk=push.pk).status == ChartPush.Status.RUNNING

    recover_runs()
    response = admin_client.get(url, headers={"HX-Request": "true"})

    assert response.status_code == 286
    assert "The worker stopped before this push finished" in response.content.decode()
    push.refresh_from_db()
    assert push.status == ChartPush.Status.FAILED
    assert bytes(push.archive) == b""


def test_push_running_within_its_lease_is_still_shown_running(admin_client, chart_registry):
    registry = push_registry(chart_registry)
    ChartPush.objects.create(
        registry=registry, chart_name="web", version="1.0.0", repository="web", tag="1.0.0",
        archive_digest="sha256:" + "0" * 64, archive_size=10,
        status=ChartPush.Status.RUNNING, started_at=timezone.now(),
        lease_owner="a-live-worker", lease_expires_at=timezone.now() + timedelta(seconds=60),
    )  # fmt: skip

    response = admin_client.get(
        reverse("charts:chartpush_list", args=[registry.pk]), headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    assert "Pushing" in response.content.decode()
    assert "No heartbeat" not in response.content.decode()


def test_push_whose_heartbeat_stopped_says_its_worker_seems_gone(admin_client, chart_registry):
    registry = push_registry(chart_registry)
    ChartPush.objects.create(
        registry=registry, chart_name="web", version="1.0.0", repository="web", tag="1.0.0",
        archive_digest="sha256:" + "0" * 64, archive_size=10,
        status=ChartPush.Status.RUNNING, started_at=timezone.now() - timedelta(minutes=10),
        lease_owner="a-killed-worker", lease_expires_at=timezone.now() - timedelta(minutes=1),
    )  # fmt: skip

    response = admin_client.get(
        reverse("charts:chartpush_list", args=[registry.pk]), headers={"HX-Request": "true"}
    )

    html = response.content.decode()
    assert response.status_code == 200  # still polling: the recovery closes it, not a GET
    assert "No heartbeat since" in html and "its worker seems gone" in html
    assert "Pushing" not in html


class RecordingUploadHandler(FileUploadHandler):
    """Notes every upload Django starts to receive, to prove a body was never parsed."""

    started: list[str] = []

    def new_file(self, field_name, *args, **kwargs):
        self.started.append(field_name)
        super().new_file(field_name, *args, **kwargs)

    def receive_data_chunk(self, raw_data, start):
        return raw_data

    def file_complete(self, file_size):
        return None


def test_body_over_the_limit_is_refused_before_even_the_csrf_check_parses_it(
    chart_registry, superuser, settings
):
    # The CSRF middleware reads request.POST, which would store the whole upload first.
    settings.WHARF_CHART_PUSH_MAX_BYTES = 1000
    settings.FILE_UPLOAD_HANDLERS = [f"{__name__}.RecordingUploadHandler"]
    RecordingUploadHandler.started.clear()
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    registry = push_registry(chart_registry)
    url = reverse("charts:chartpush_add", args=[registry.pk])
    client.get(url)
    archive = make_chart_archive(unique("huge"), "1.0.0", extra={"x": random.randbytes(2_000_000)})

    response = client.post(
        url, {"archive": upload(archive), "csrfmiddlewaretoken": client.cookies["csrftoken"].value}
    )

    assert response.status_code == 413
    assert RecordingUploadHandler.started == []


def test_push_without_a_csrf_token_is_still_refused(chart_registry, superuser):
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    registry = push_registry(chart_registry)

    response = client.post(
        reverse("charts:chartpush_add", args=[registry.pk]),
        {"archive": upload(make_chart_archive(unique("nocsrf"), "1.0.0"))},
    )

    assert response.status_code == 403
    assert not ChartPush.objects.exists()


def test_a_push_that_never_reached_a_worker_is_sent_again_by_the_recovery(
    admin_client, chart_registry, broker
):
    registry = push_registry(chart_registry)
    lost = ChartPush.objects.create(
        registry=registry, chart_name="web", version="1.0.0", repository="web", tag="1.0.0",
        archive_digest="sha256:" + "0" * 64, archive_size=10, archive=b"x" * 10,
        queued_at=timezone.now() - timedelta(hours=1),
    )  # fmt: skip
    fresh = ChartPush.objects.create(
        registry=registry, chart_name="web", version="1.1.0", repository="web", tag="1.1.0",
        archive_digest="sha256:" + "1" * 64, archive_size=10, archive=b"y" * 10,
    )  # fmt: skip
    sent = broker.sent("charts.tasks.push_chart")

    admin_client.get(
        reverse("charts:chartpush_list", args=[registry.pk]), headers={"HX-Request": "true"}
    )
    assert sent == []  # listing the pushes sends nothing
    recover_runs()

    assert sent == [lost.pk]
    assert fresh.pk not in sent


def test_a_broker_outage_after_an_upload_is_logged_not_a_500(
    admin_client, chart_registry, broker, caplog, django_capture_on_commit_callbacks
):
    broker.down = True
    registry = push_registry(chart_registry)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_push(admin_client, registry, make_chart_archive("web", "1.0.0"))

    assert response.status_code in (200, 302)
    assert ChartPush.objects.get().status == ChartPush.Status.QUEUED
    assert "Could not queue charts.tasks.push_chart" in caplog.text
