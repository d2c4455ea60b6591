"""Pushing charts to the real distribution registry, then reading them back with oras-py."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from charts import helmoci, tasks
from charts import push as push_module
from charts.archive import read_chart_archive
from charts.helmoci import (
    HELM_CHART_CONTENT_MEDIA_TYPE,
    HELM_CONFIG_MEDIA_TYPE,
    HELM_PROVENANCE_MEDIA_TYPE,
    OCI_MANIFEST_MEDIA_TYPE,
)
from charts.models import ChartPush, SyncRun
from charts.push import request_push, run_push
from charts.uploads import PushInputError, prepare_push
from config.models import AuditEntry
from config.runs import recover_runs
from registries import oci
from registries.models import Registry
from tests.chartkit import make_chart_archive, sha256_digest
from tests.charts.helpers import source_of, unique
from tests.charts.pushkit import fake_provenance, pull_with_oras, push_now, push_registry, tags_of
from tests.servers.base import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def test_pushed_chart_pulls_back_with_oras_byte_identical_with_helm_media_types(
    private_chart_registry,
):
    name = unique("web")
    archive = make_chart_archive(name, "1.2.0", description="A web server")
    registry = push_registry(private_chart_registry)

    push = push_now(registry, archive)

    assert push.status == ChartPush.Status.SUCCEEDED, push.error
    manifest, blobs = pull_with_oras(private_chart_registry, name, "1.2.0")
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["mediaType"] == HELM_CONFIG_MEDIA_TYPE
    assert [layer["mediaType"] for layer in manifest["layers"]] == [HELM_CHART_CONTENT_MEDIA_TYPE]
    assert blobs[HELM_CHART_CONTENT_MEDIA_TYPE] == archive
    assert push.manifest_digest.startswith("sha256:")
    assert push.archive_digest == sha256_digest(archive)


def test_config_blob_is_chart_yaml_metadata_as_json_and_manifest_has_oci_annotations(
    chart_registry,
):
    name = unique("api")
    archive = make_chart_archive(name, "0.3.1", description="An API", app_version="2.0")
    push = push_now(push_registry(chart_registry), archive)

    manifest, blobs = pull_with_oras(chart_registry, name, "0.3.1")

    assert push.status == ChartPush.Status.SUCCEEDED, push.error
    config = json.loads(blobs[HELM_CONFIG_MEDIA_TYPE])
    assert config == {
        "name": name,
        "version": "0.3.1",
        "description": "An API",
        "apiVersion": "v2",
        "appVersion": "2.0",
        "type": "application",
    }
    annotations = manifest["annotations"]
    assert annotations["org.opencontainers.image.title"] == name
    assert annotations["org.opencontainers.image.version"] == "0.3.1"
    assert annotations["org.opencontainers.image.description"] == "An API"
    assert annotations["org.opencontainers.image.created"].endswith("Z")


def test_version_with_build_metadata_is_tagged_with_an_underscore(chart_registry):
    name = unique("build")
    push = push_now(push_registry(chart_registry), make_chart_archive(name, "1.0.0+build.1"))

    assert push.status == ChartPush.Status.SUCCEEDED, push.error
    assert push.tag == "1.0.0_build.1"
    assert tags_of(chart_registry, name) == ["1.0.0_build.1"]
    assert push.helm_pull.endswith(f"/{name} --version 1.0.0+build.1")


def test_prefix_puts_the_chart_under_it(chart_registry):
    name = unique("prefixed")
    registry = push_registry(chart_registry)

    push = push_now(registry, make_chart_archive(name, "2.0.0"), prefix="team/charts/")

    assert push.status == ChartPush.Status.SUCCEEDED, push.error
    assert push.repository == f"team/charts/{name}"
    assert tags_of(chart_registry, f"team/charts/{name}") == ["2.0.0"]
    assert push.helm_pull == (
        f"helm pull oci://{chart_registry.host}/team/charts/{name} --version 2.0.0"
    )


def test_provenance_file_is_pushed_as_its_own_layer(chart_registry):
    name = unique("signed")
    archive = make_chart_archive(name, "1.0.0")
    prov = fake_provenance(archive, f"{name}-1.0.0.tgz")

    push = push_now(push_registry(chart_registry), archive, prov=prov)

    assert push.status == ChartPush.Status.SUCCEEDED, push.error
    manifest, blobs = pull_with_oras(chart_registry, name, "1.0.0")
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        HELM_CHART_CONTENT_MEDIA_TYPE,
        HELM_PROVENANCE_MEDIA_TYPE,
    ]
    assert blobs[HELM_PROVENANCE_MEDIA_TYPE] == prov
    assert blobs[HELM_CHART_CONTENT_MEDIA_TYPE] == archive


def test_push_over_tls_with_a_private_ca(tls_chart_registry):
    name = unique("tls")
    push = push_now(push_registry(tls_chart_registry), make_chart_archive(name, "1.0.0"))

    assert push.status == ChartPush.Status.SUCCEEDED, push.error
    assert tags_of(tls_chart_registry, name) == ["1.0.0"]


def test_different_content_under_an_existing_tag_is_refused_without_overwrite(chart_registry):
    name = unique("taken")
    registry = push_registry(chart_registry)
    first = push_now(registry, make_chart_archive(name, "1.0.0", values="a: 1\n"))

    second = push_now(registry, make_chart_archive(name, "1.0.0", values="a: 2\n"))

    assert second.status == ChartPush.Status.FAILED
    assert "already exists" in second.error and "Overwrite" in second.error
    _, blobs = pull_with_oras(chart_registry, name, "1.0.0")
    assert blobs[HELM_CHART_CONTENT_MEDIA_TYPE] == make_chart_archive(
        name, "1.0.0", values="a: 1\n"
    )
    assert first.status == ChartPush.Status.SUCCEEDED


def test_different_content_replaces_the_tag_when_overwrite_is_ticked(chart_registry):
    name = unique("replaced")
    registry = push_registry(chart_registry)
    push_now(registry, make_chart_archive(name, "1.0.0", values="a: 1\n"))
    newer = make_chart_archive(name, "1.0.0", values="a: 2\n")

    push = push_now(registry, newer, overwrite=True)

    assert push.status == ChartPush.Status.SUCCEEDED, push.error
    assert "Replaced" in push.note
    _, blobs = pull_with_oras(chart_registry, name, "1.0.0")
    assert blobs[HELM_CHART_CONTENT_MEDIA_TYPE] == newer


def test_same_content_again_is_a_successful_no_op(chart_registry):
    name = unique("again")
    registry = push_registry(chart_registry)
    archive = make_chart_archive(name, "1.0.0")
    first = push_now(registry, archive)

    again = push_now(registry, archive)

    assert again.status == ChartPush.Status.SUCCEEDED, again.error
    assert again.manifest_digest == first.manifest_digest
    assert "nothing pushed" in again.note


def test_registry_that_rejects_the_credentials_fails_the_push_with_a_clear_error(
    private_chart_registry,
):
    name = unique("denied")
    registry = push_registry(private_chart_registry, secret="wrong-Passw0rd-xyz")

    push = push_now(registry, make_chart_archive(name, "1.0.0"))

    assert push.status == ChartPush.Status.FAILED
    assert "rejected the credentials" in push.error
    assert "wrong-Passw0rd-xyz" not in push.error
    assert tags_of(private_chart_registry, name) == []


def test_unreachable_registry_fails_the_push_without_raising(chart_registry):
    registry = push_registry(chart_registry, url="127.0.0.1:9")

    push = push_now(registry, make_chart_archive(unique("down"), "1.0.0"))

    assert push.status == ChartPush.Status.FAILED
    assert "Could not reach" in push.error


def test_finished_push_keeps_no_archive_bytes(chart_registry):
    registry = push_registry(chart_registry)
    ok = push_now(registry, make_chart_archive(unique("kept"), "1.0.0"))
    failed = push_now(
        push_registry(chart_registry, url="127.0.0.1:9"),
        make_chart_archive(unique("kept"), "1.0.0"),
    )

    assert bytes(ok.archive) == b"" and bytes(failed.archive) == b""


def test_registry_without_push_helm_is_refused(chart_registry):
    registry = push_registry(chart_registry, push_helm=False)
    upload = prepare_push(make_chart_archive(unique("nopush"), "1.0.0"), b"", "")

    with pytest.raises(PushInputError, match="Push helm packages"):
        request_push(registry, None, upload, overwrite=False)

    assert not ChartPush.objects.exists()


def test_a_push_that_already_finished_is_not_run_again(chart_registry):
    registry = push_registry(chart_registry)
    push = push_now(registry, make_chart_archive(unique("twice"), "1.0.0"))

    again = run_push(push.pk)

    assert again.status == ChartPush.Status.SUCCEEDED
    assert again.finished_at == push.finished_at


def test_push_into_a_chart_source_repository_queues_its_sync(chart_registry, queued_syncs):
    name = unique("fed")
    registry = push_registry(chart_registry, [f"apps/{name}"])
    source = source_of(registry, f"apps/{name}")
    source.runs.update(status=SyncRun.Status.SUCCEEDED)  # the sync the registry's save queued
    queued_syncs.clear()

    push = push_now(registry, make_chart_archive(name, "1.0.0"), prefix="apps")

    assert push.status == ChartPush.Status.SUCCEEDED, push.error
    run = source.runs.get(status=SyncRun.Status.QUEUED)
    assert run.trigger == SyncRun.Trigger.PUSH
    assert queued_syncs == [run.pk]


def test_push_to_another_repository_queues_no_sync(chart_registry, queued_syncs):
    registry = push_registry(chart_registry, [unique("elsewhere")])
    queued_syncs.clear()

    push = push_now(registry, make_chart_archive(unique("other"), "1.0.0"))

    assert push.status == ChartPush.Status.SUCCEEDED, push.error
    assert queued_syncs == []


def test_each_push_request_is_in_the_audit_log_without_the_bytes(chart_registry, superuser):
    registry = push_registry(chart_registry)
    name = unique("audited")
    upload = prepare_push(make_chart_archive(name, "1.0.0"), b"", "")

    push = request_push(registry, superuser, upload, overwrite=True, enqueue=False)

    entry = AuditEntry.objects.get(object_type="chart push", object_id=str(push.pk))
    assert entry.username == superuser.username
    assert entry.changes["repository"] == [None, name]
    assert entry.changes["registry"] == [None, registry.name]
    assert entry.changes["overwrite"] == [None, True]
    assert "archive" not in entry.changes


def test_task_for_a_push_that_does_not_exist_returns_quietly():
    assert tasks.push_chart(987654) is None


def test_unexpected_error_fails_the_push_without_crashing_the_worker(chart_registry, monkeypatch):
    def explode(*args, **kwargs):
        raise ValueError("internal detail with a token abc123")

    monkeypatch.setattr(push_module, "push_chart_artifact", explode)

    push = push_now(push_registry(chart_registry), make_chart_archive(unique("boom"), "1.0.0"))

    assert push.status == ChartPush.Status.FAILED
    assert "failed unexpectedly (ValueError)" in push.error
    assert "abc123" not in push.error


def test_push_left_running_by_a_dead_worker_is_failed_by_the_recovery(chart_registry):
    registry = push_registry(chart_registry)
    upload = prepare_push(make_chart_archive(unique("orphan"), "1.0.0"), b"", "")
    push = request_push(registry, None, upload, overwrite=False, enqueue=False)
    ChartPush.objects.filter(pk=push.pk).update(
        status=ChartPush.Status.RUNNING,
        started_at=timezone.now() - timedelta(hours=1),
        lease_owner="a-killed-worker",
        lease_expires_at=timezone.now() - timedelta(minutes=50),
    )
    assert run_push(push.pk).status == ChartPush.Status.RUNNING  # a redelivery: not queued

    assert recover_runs().closed == 1

    push.refresh_from_db()
    assert push.status == ChartPush.Status.FAILED
    assert "The worker stopped before this push finished" in push.error
    assert "push the chart again" in push.error
    assert bytes(push.archive) == b"" and push.lease_owner == ""
    assert tags_of(chart_registry, push.repository) == []  # nothing was pushed


def test_push_running_elsewhere_is_left_alone(chart_registry):
    registry = push_registry(chart_registry)
    upload = prepare_push(make_chart_archive(unique("busy"), "1.0.0"), b"", "")
    push = request_push(registry, None, upload, overwrite=False, enqueue=False)
    ChartPush.objects.filter(pk=push.pk).update(
        status=ChartPush.Status.RUNNING,
        started_at=timezone.now(),
        lease_owner="a-live-worker",
        lease_expires_at=timezone.now() + timedelta(minutes=1),
    )

    assert run_push(push.pk).status == ChartPush.Status.RUNNING
    assert recover_runs().closed == 0


def test_rejected_credentials_never_reach_the_logs(private_chart_registry, caplog):
    caplog.set_level("DEBUG")
    registry = push_registry(private_chart_registry, secret="log-leak-Passw0rd-42")

    push = push_now(registry, make_chart_archive(unique("logs"), "1.0.0"))

    assert push.status == ChartPush.Status.FAILED
    assert "log-leak-Passw0rd-42" not in caplog.text
    assert "log-leak-Passw0rd-42" not in repr(push)


def test_push_to_a_bearer_token_registry_asks_for_a_pull_push_token(token_registry):
    name = unique("bearer")
    archive = make_chart_archive(name, "1.0.0")

    push = push_now(push_registry(token_registry), archive)

    assert push.status == ChartPush.Status.SUCCEEDED, push.error
    scopes = [scope for r in token_registry.token_server.requests for scope in r["scope"]]
    assert f"repository:{name}:pull,push" in scopes
    _, blobs = pull_with_oras(token_registry, name, "1.0.0")
    assert blobs[HELM_CHART_CONTENT_MEDIA_TYPE] == archive


def test_ecr_token_failure_fails_the_push_with_the_aws_message(moto_server, settings):
    # The registry login of an ECR registry is an AWS call: its failure is the user's to fix
    # (keys, region, proxy), not an "unexpected" error for the worker log.
    settings.WHARF_AWS_ENDPOINT_URL = moto_server
    port = free_port()
    registry = Registry.objects.create(
        name="ecr-push", provider="ecr", url="123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        auth_type="access-key", username="AKIAWHARFTEST", secret="aws-secret-key",
        connection_method="proxy", proxy_url=f"http://127.0.0.1:{port}",
        proxy_username="u", proxy_password="proxy-secret-value", push_helm=True,
    )  # fmt: skip

    push = push_now(registry, make_chart_archive(unique("ecr"), "1.0.0"))

    assert push.status == ChartPush.Status.FAILED
    assert "unexpectedly" not in push.error
    assert f"through the proxy 127.0.0.1:{port}" in push.error
    assert "proxy-secret-value" not in push.error


def test_config_blob_is_encoded_as_helms_go_json_encoder_writes_it():
    # Go's json.Marshal writes non-ASCII as UTF-8, escapes <, > and & and sorts map keys.
    chart = {
        "apiVersion": "v2",
        "name": "cafe",
        "version": "1.0.0",
        "description": "Café <b> & co",
        "annotations": {"zeta": "1", "alpha": "2"},
    }

    assert (
        helmoci.helm_config(chart)
        == (
            '{"name":"cafe","version":"1.0.0","description":"Café \\u003cb\\u003e \\u0026 co",'
            '"apiVersion":"v2","annotations":{"alpha":"2","zeta":"1"}}'
        ).encode()
    )


def test_same_archive_pushed_earlier_with_another_config_encoding_is_a_no_op(chart_registry):
    # E.g. pushed by `helm push`: the archive layer is the chart; the config is derived from it.
    name = unique("helmed")
    registry = push_registry(chart_registry)
    archive = make_chart_archive(name, "1.0.0", description="Docs & more")
    chart = read_chart_archive(archive).chart
    with oci.RegistryClient(registry.connection()) as client:
        push_module.push_chart_artifact(client, name, "1.0.0", chart, archive)
        config = json.dumps(dict(reversed(list(chart.items())))).encode()  # another encoding
        client.upload_blob(name, config)
        manifest = client.get_manifest(name, "1.0.0").body
        manifest["config"]["digest"] = sha256_digest(config)
        manifest["config"]["size"] = len(config)
        client.put_manifest(name, "1.0.0", json.dumps(manifest).encode(), OCI_MANIFEST_MEDIA_TYPE)

    again = push_now(registry, archive)

    assert again.status == ChartPush.Status.SUCCEEDED, again.error
    assert "nothing pushed" in again.note


def test_a_registrys_own_400_is_not_taken_for_a_move_to_tls(private_chart_registry):
    # A client that remembers "plain HTTP" must not resend a rejected upload over https://
    # and again over http:// just because the registry answered 400 to it.
    conn = oci.Connection(
        host=private_chart_registry.host,
        username=private_chart_registry.username,
        password=private_chart_registry.password,
        transport=oci.Transport(tls=oci.TLS_INSECURE),
    )
    oci.ping(conn)  # learns plain HTTP and Basic auth for the route
    name = unique("rejected")
    missing = sha256_digest(b"a blob that was never uploaded")
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": HELM_CONFIG_MEDIA_TYPE, "digest": missing, "size": 30},
        "layers": [],
    }

    with oci.RegistryClient(conn) as client, pytest.raises(oci.RegistryError) as caught:
        client.put_manifest(name, "1.0.0", json.dumps(manifest).encode(), OCI_MANIFEST_MEDIA_TYPE)

    assert client.requests_made == 1
    assert "blob unknown" in str(caught.value).lower()
