"""The API's resources keep the forms' rules, show no secret, and log every write."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from charts.models import ChartPush, ChartSource, HelmRepository, SyncRun
from clusters.models import PullSecretTarget, RegistryAccess
from config.models import AuditEntry
from registries.models import Registry
from tests.chartkit import make_chart_archive
from tests.charts.helpers import unique
from tests.charts.pushkit import push_registry, tags_of
from tests.clusters.factories import ClusterFactory
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db

SECRET = "a-registry-Passw0rd-never-shown"
REGISTRY = {
    "provider": "other",
    "registry_type": "private",
    "url": "registry.example.com:5000",
    "auth_type": "password",
    "username": "robot",
    "secret": SECRET,
    "push_images": True,
}


def put_registry(client, name="team", **changes):
    return client.put(f"/api/v1/registries/{name}/", {**REGISTRY, **changes}, format="json")


def test_put_creates_a_registry_by_name_then_leaves_it_as_it_is(api):
    created = put_registry(api("admin"))
    again = put_registry(api("admin"))

    assert created.status_code == 201 and again.status_code == 200
    registry = Registry.objects.get(name="team")
    assert registry.secret == SECRET and registry.is_default  # the first is the default
    assert again.json() == {**created.json(), "updated_at": again.json()["updated_at"]}
    assert AuditEntry.objects.filter(object_repr="team").count() == 1  # the second changed nothing


def test_a_registry_may_be_a_chart_source_for_all_its_repositories_under_prefixes(api, broker):
    response = put_registry(
        api("admin"), chart_source=True, repository_scope="all", repository_prefixes=["charts"]
    )

    assert response.status_code == 201, response.json()
    assert response.json()["repository_scope"] == "all"
    assert response.json()["repository_prefixes"] == ["charts"]
    assert Registry.objects.get(name="team").lists_all_repositories


def test_a_registry_that_lists_nothing_is_refused_all_repositories_with_the_forms_words(api):
    response = put_registry(
        api("admin"), provider="docker-hub", url="docker.io", chart_source=True,
        repository_scope="all",
    )  # fmt: skip

    assert response.status_code == 400
    assert "give the list by hand" in " ".join(response.json()["errors"]["repository_scope"])
    assert not Registry.objects.exists()


def test_secrets_are_write_only_and_kept_when_left_out(api):
    put_registry(api("admin"), proxy_password="")
    body = {**REGISTRY, "username": "robot-2"}
    del body["secret"]

    response = api("admin").put("/api/v1/registries/team/", body, format="json")

    assert response.status_code == 200, response.json()
    assert "secret" not in response.json() and SECRET not in response.content.decode()
    assert Registry.objects.get(name="team").secret == SECRET


def test_the_models_rules_come_back_as_field_errors_in_one_shape(api):
    response = put_registry(api("admin"), url="", name="team", provider="ecr", auth_type="bogus")

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"detail", "errors"}
    assert all(
        isinstance(v, list) and all(isinstance(m, str) for m in v) for v in body["errors"].values()
    )
    assert "auth_type" in body["errors"] or "url" in body["errors"]
    assert not Registry.objects.exists()


def test_a_bad_name_is_a_field_error(api):
    response = put_registry(api("admin"), name="Bad Name")

    assert response.status_code in (400, 404)
    assert not Registry.objects.exists()


def test_a_write_with_a_token_is_logged_with_the_tokens_name(api):
    put_registry(api("admin"))

    entry = AuditEntry.objects.get(object_repr="team")
    assert entry.username == "admin-1 (API token “admin-ci”)"
    assert entry.changes["secret"] == ["changed"]


def test_an_update_and_a_delete_are_logged(api):
    put_registry(api("admin"))
    api("admin").patch("/api/v1/registries/team/", {"username": "other"}, format="json")
    assert api("admin").delete("/api/v1/registries/team/").status_code == 204

    actions = list(
        AuditEntry.objects.filter(object_repr="team")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["create", "update", "delete"]


def test_the_default_registry_cannot_be_deleted_while_others_exist(api):
    put_registry(api("admin"), name="first")
    put_registry(api("admin"), name="second")

    response = api("admin").delete("/api/v1/registries/first/")

    assert response.status_code == 409
    assert "default" in response.json()["detail"]


def test_is_default_moves_the_default(api):
    put_registry(api("admin"), name="first")
    put_registry(api("admin"), name="second", is_default=True)

    assert Registry.objects.get(is_default=True).name == "second"


def test_lists_are_paginated_and_filtered(api):
    for n in range(3):
        RegistryFactory(name=f"reg-{n}", provider="other")
    RegistryFactory(name="quay-1", provider="quay", url="quay.io")

    page = api("admin").get("/api/v1/registries/?page_size=2").json()
    quay = api("admin").get("/api/v1/registries/?provider=quay").json()

    assert page["count"] == 4 and len(page["results"]) == 2 and page["next"]
    assert [r["name"] for r in quay["results"]] == ["quay-1"]


def test_a_cluster_token_is_write_only(api):
    response = api("admin").put(
        "/api/v1/clusters/kind/",
        {"api_url": "https://127.0.0.1:6443", "token": "cluster-token-never-shown"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    listed = api("operator").get("/api/v1/clusters/").content.decode()
    assert "cluster-token-never-shown" not in response.content.decode() + listed


def test_an_environment_names_its_cluster(api):
    ClusterFactory(name="kind")

    response = api("admin").put(
        "/api/v1/environments/web/", {"cluster": "kind", "namespace": "web"}, format="json"
    )
    bad = api("admin").put(
        "/api/v1/environments/db/",
        {"cluster": "kind", "namespace": "Not A Namespace"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert bad.status_code == 400 and "namespace" in bad.json()["errors"]


def test_an_access_rule_is_written_whole_and_reconciles(api, broker):
    registry = RegistryFactory(name="team")
    ClusterFactory(name="kind")

    refused = api("admin").put(
        "/api/v1/registries/team/access/", {"mode": "include"}, format="json"
    )
    saved = api("admin").put(
        "/api/v1/registries/team/access/", {"mode": "include", "clusters": ["kind"]}, format="json"
    )

    assert refused.status_code == 400 and "clusters" in refused.json()["errors"]
    assert saved.status_code == 200, saved.json()
    assert saved.json()["clusters"] == ["kind"]
    assert RegistryAccess.objects.get(registry=registry).clusters.get().name == "kind"
    assert AuditEntry.objects.filter(object_type="registry credential access").count() == 1


def test_target_status_is_read_per_registry(api):
    registry = RegistryFactory(name="team")
    cluster = ClusterFactory(name="kind")
    PullSecretTarget.objects.create(
        cluster=cluster, namespace="web", registry=registry, status="failed", error="no access"
    )

    body = api("operator").get("/api/v1/targets/?registry=team&status=failed").json()

    assert [(t["cluster"], t["namespace"], t["status"]) for t in body["results"]] == [
        ("kind", "web", "failed")
    ]


def test_a_chart_repository_made_through_the_api_gets_its_source(api):
    response = api("admin").put(
        "/api/v1/chart-repositories/stable/",
        {"url": "https://charts.example.com/stable", "access": "public"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    repository = HelmRepository.objects.get(name="stable")
    assert ChartSource.objects.filter(helm_repository=repository).exists()


def test_sync_now_queues_a_run(api, broker):
    repository = HelmRepository.objects.create(name="team", url="https://charts.example.com/")
    source = ChartSource.objects.create(kind="helm", helm_repository=repository)

    response = api("operator").post(
        f"/api/v1/chart-sources/{source.pk}/sync/", {"deep": True}, format="json"
    )

    assert response.status_code == 202, response.json()
    run = SyncRun.objects.get(source=source)
    assert run.trigger == SyncRun.Trigger.MANUAL and run.deep
    assert response.json()["id"] == run.pk


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_chart_pushed_through_the_api_lands_in_the_registry(api, chart_registry, broker):
    registry = push_registry(chart_registry)
    name = unique("apipush")
    upload = SimpleUploadedFile("c.tgz", make_chart_archive(name, "1.2.3"), "application/gzip")

    response = api("operator").post(
        f"/api/v1/registries/{registry.name}/pushes/", {"archive": upload}, format="multipart"
    )
    broker.run_all()

    assert response.status_code == 202, response.json()
    push = ChartPush.objects.get(pk=response.json()["id"])
    assert push.status == "succeeded", push.error
    assert tags_of(chart_registry, name) == ["1.2.3"]
    assert api("operator").get(f"/api/v1/pushes/{push.pk}/").json()["status"] == "succeeded"


def test_a_bad_archive_is_refused_with_the_push_pages_message(api):
    registry = RegistryFactory(name="team", push_helm=True, push_images=False)
    upload = SimpleUploadedFile("c.tgz", b"not a chart", "application/gzip")

    response = api("operator").post(
        f"/api/v1/registries/{registry.name}/pushes/", {"archive": upload}, format="multipart"
    )

    assert response.status_code == 400
    assert "archive" in response.json()["errors"]
    assert not ChartPush.objects.exists()


def test_a_registry_without_push_helm_refuses_pushes(api):
    RegistryFactory(name="images", push_helm=False)
    upload = SimpleUploadedFile("c.tgz", make_chart_archive("web", "1.0.0"), "application/gzip")

    response = api("operator").post(
        "/api/v1/registries/images/pushes/", {"archive": upload}, format="multipart"
    )

    assert response.status_code == 409
    assert "Push helm packages" in response.json()["detail"]
