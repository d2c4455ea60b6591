"""“Test pull” on the status table and “Test all pulls” on a cluster: POST only, with CSRF,
the image checked against the registry's host (in the model), the result on the table."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from clusters.connectivity import check_connection
from clusters.models import PullSecretTarget, PullTestImage, PullTestResult, PullTestRun
from config.models import AuditEntry
from tests.adminkit import admin_errors, admin_url
from tests.clusters.factories import ClusterFactory, EnvironmentFactory, inject
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db

TASK = "clusters.tasks.check_cluster_pulls"
IMAGE = "registry.acme.test:5000/team/app:1.0"


@pytest.fixture
def target():
    cluster = ClusterFactory(name="prod")
    EnvironmentFactory(cluster=cluster, namespace="team-a")
    registry = RegistryFactory(name="acme", url="registry.acme.test:5000/team")
    inject(registry)
    return PullSecretTarget.objects.create(
        cluster=cluster,
        namespace="team-a",
        registry=registry,
        secret_name="wharf-acme",
        status=PullSecretTarget.Status.IN_SYNC,
    )


def pull_test_url(target) -> str:
    return reverse("clusters:pullsecrettarget_pulltest", args=[target.pk])


# --- the image rule (in the model) --------------------------------------------------------


def image_error(registry, image: str) -> str:
    with pytest.raises(ValidationError) as caught:
        PullTestImage(registry=registry, image=image).full_clean()
    return " ".join(caught.value.message_dict["image"])


def test_an_image_of_another_host_is_refused_with_a_clear_message(target):
    message = image_error(target.registry, "ghcr.io/team/app:1.0")

    assert message == (
        "ghcr.io/team/app:1.0 is on ghcr.io, not on acme's host registry.acme.test:5000: a "
        "pull test proves acme's pull secret, so name an image there, e.g. "
        "registry.acme.test:5000/team/app:1.0."
    )


def test_an_image_without_its_host_is_refused_for_a_private_registry(target):
    assert image_error(target.registry, "team/app:1.0").startswith(
        "Name the image with acme's host, registry.acme.test:5000"
    )


def test_a_malformed_image_reference_is_refused(target):
    assert "is not an image reference" in image_error(
        target.registry, "registry.acme.test:5000/Team/App:1.0"
    )
    assert "is not an image reference" in image_error(
        target.registry, "registry.acme.test:5000/team/app:1.0 --privileged"
    )


def test_the_registry_host_is_matched_without_regard_to_case(target):
    image = PullTestImage(
        registry=target.registry, image=" Registry.Acme.Test:5000/team/app@sha256:" + "a" * 64
    )
    image.full_clean()

    assert image.image.startswith("Registry.Acme.Test:5000/")  # trimmed, kept as typed


def test_docker_hub_takes_short_names_and_docker_io_but_not_other_hosts():
    hub = RegistryFactory(name="hub", provider="docker-hub", url="docker.io/team")
    for image in ("nginx:1.27", "team/app:1.0", "docker.io/team/app", "index.docker.io/team/a"):
        PullTestImage(registry=hub, image=image).full_clean()

    assert "not on Docker Hub" in image_error(hub, "quay.io/team/app")


# --- the views ----------------------------------------------------------------------


def test_test_pull_remembers_the_image_and_queues_one_run(
    admin_client, target, broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(pull_test_url(target), {"image": f" {IMAGE} "})

    assert response.status_code == 302
    assert response["Location"] == (
        reverse("clusters:cluster_edit", args=[target.cluster_id]) + "#pull-secrets"
    )
    assert PullTestImage.objects.get(registry=target.registry).image == IMAGE
    run = PullTestRun.objects.get()
    assert (run.cluster_id, run.target_id) == (target.cluster_id, target.pk)
    assert broker.sent(TASK) == [run.pk]
    assert PullTestResult.objects.get(target=target).result == "testing"


def test_test_pull_from_the_manage_page_goes_back_there(admin_client, target):
    response = admin_client.post(pull_test_url(target), {"image": IMAGE, "back": "registry"})

    assert response["Location"] == (
        reverse("clusters:registryaccess_edit", args=[target.registry_id]) + "#pull-secrets"
    )


def test_a_bad_image_says_why_on_the_page_and_changes_nothing(admin_client, target, broker):
    PullTestImage.objects.create(registry=target.registry, image=IMAGE)

    response = admin_client.post(pull_test_url(target), {"image": "ghcr.io/x/y"}, follow=True)

    html = response.content.decode()
    assert response.status_code == 200
    assert "ghcr.io/x/y is on ghcr.io, not on acme&#x27;s host registry.acme.test:5000" in html
    assert PullTestImage.objects.get().image == IMAGE
    assert not PullTestRun.objects.exists() and not PullTestResult.objects.exists()
    assert broker.sent(TASK) == []


def test_test_pull_is_post_only(admin_client, target):
    assert admin_client.get(pull_test_url(target)).status_code == 405
    cluster_url = reverse("clusters:cluster_pulltest", args=[target.cluster_id])
    assert admin_client.get(cluster_url).status_code == 405
    assert not PullTestRun.objects.exists()


def test_test_pull_needs_the_csrf_token(superuser, target):
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)

    response = client.post(pull_test_url(target), {"image": IMAGE})

    assert response.status_code == 403
    assert not PullTestRun.objects.exists() and not PullTestImage.objects.exists()


def test_test_all_pulls_queues_one_run_for_the_whole_cluster(
    admin_client, target, broker, django_capture_on_commit_callbacks
):
    url = reverse("clusters:cluster_pulltest", args=[target.cluster_id])
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url)
        admin_client.post(url)  # asked twice while it waits: one run

    run = PullTestRun.objects.get()
    assert run.target is None and broker.sent(TASK) == [run.pk]


def test_the_status_table_shows_the_result_and_what_a_pull_proves(admin_client, target):
    PullTestImage.objects.create(registry=target.registry, image=IMAGE)
    PullTestResult.objects.create(
        target=target,
        result="not-pulled",
        reason="ErrImagePull",
        message="Failed to pull image: 401 Unauthorized",
        tested_at=timezone.now(),
    )

    html = admin_client.get(reverse("clusters:cluster_edit", args=[target.cluster_id])).content
    html = html.decode()

    assert 'data-status="not-pulled"' in html and "ErrImagePull" in html
    assert "Failed to pull image: 401 Unauthorized" in html
    assert f'value="{IMAGE}"' in html  # remembered for the registry
    assert "a node&#x27;s own credentials" in html and "without the secret" in html


def test_the_status_table_polls_while_a_test_runs_and_stops_after(admin_client, target):
    PullTestImage.objects.create(registry=target.registry, image=IMAGE)
    url = reverse("clusters:cluster_status", args=[target.cluster_id])
    run = PullTestRun.objects.create(cluster=target.cluster, target=target)
    PullTestResult.objects.create(target=target, run=run)

    assert admin_client.get(url, headers={"HX-Request": "true"}).status_code == 200

    PullTestRun.objects.filter(pk=run.pk).update(status="succeeded")
    PullTestResult.objects.filter(target=target).update(result="pulled")
    assert admin_client.get(url, headers={"HX-Request": "true"}).status_code == 286


# --- Test connection ------------------------------------------------------------------


def test_test_connection_says_which_pull_test_rights_the_token_lacks(start_fake_cluster):
    fake = start_fake_cluster(secret_access={"delete pods": False, "list events": False})
    cluster = ClusterFactory(api_url=fake.url, token=fake.token)
    EnvironmentFactory(cluster=cluster, namespace="team-a")

    result = check_connection(cluster)

    assert result.ok  # the pull secrets themselves work without these
    assert (
        "“Test pull” needs rights the token lacks (delete pods, list events in namespace "
        "team-a): grant create, get, list and delete on pods and list on events there to use it."
    ) in result.steps


def test_test_connection_says_nothing_of_pull_tests_when_the_token_may(start_fake_cluster):
    fake = start_fake_cluster()
    cluster = ClusterFactory(api_url=fake.url, token=fake.token)
    EnvironmentFactory(cluster=cluster, namespace="team-a")

    result = check_connection(cluster)

    assert result.ok and not any("Test pull" in step for step in result.steps)
    reviews = [c for c in fake.api_calls() if "selfsubjectaccessreviews" in c]
    # secrets (5 verbs), SA patch; pods (4 verbs), events; namespaces (list, cluster-wide)
    assert len(reviews) == 6 + 5 + 1


def test_the_admin_refuses_a_test_image_of_another_host(admin_client, target):
    data = {"registry": target.registry.pk, "image": "ghcr.io/team/app:1.0"}

    errors = admin_errors(admin_client.post(admin_url(PullTestImage), data))

    assert "not on acme's host registry.acme.test:5000" in str(errors)
    assert not PullTestImage.objects.exists()


def test_a_changed_test_image_is_in_the_audit_log_and_an_unchanged_one_is_not(admin_client, target):
    admin_client.post(pull_test_url(target), {"image": IMAGE})
    admin_client.post(pull_test_url(target), {"image": IMAGE})
    admin_client.post(pull_test_url(target), {"image": IMAGE.replace("1.0", "1.1")})

    entries = AuditEntry.objects.filter(object_type__icontains="pull").order_by("pk")
    assert [e.action for e in entries] == ["create", "update"]
    assert entries[1].changes == {"image": [IMAGE, IMAGE.replace("1.0", "1.1")]}
