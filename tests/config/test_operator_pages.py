"""What an operator sees and starts: read-only lists with their actions (every URL's access
for every role: tests/config/test_every_url.py)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from charts.models import ChartSource, HelmRepository
from config.models import UserRole
from tests.clusters.factories import ClusterFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(client, django_user_model):
    user = django_user_model.objects.create_user("op")
    UserRole.objects.create(user=user, role="operator")
    client.force_login(user)
    return client


def test_an_operator_starts_a_sync_from_the_read_only_chart_sources(
    operator_client, broker, django_capture_on_commit_callbacks
):
    repository = HelmRepository.objects.create(name="team", url="http://127.0.0.1:9/team")
    source = ChartSource.objects.create(kind="helm", helm_repository=repository)
    html = operator_client.get(reverse("charts:chartsource_list")).content.decode()
    assert "Sync now" in html and reverse("charts:helmrepository_list") not in html
    detail = operator_client.get(reverse("charts:chartsource_detail", args=[source.pk]))
    assert "Edit repository" not in detail.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(reverse("charts:chartsource_sync", args=[source.pk]))
    assert response.status_code == 302
    assert source.runs.count() == 1 and len(broker.messages) == 1


def test_an_operator_reconciles_from_the_clusters_list_and_comes_back_to_it(
    operator_client, broker, django_capture_on_commit_callbacks
):
    cluster = ClusterFactory(name="prod")
    html = operator_client.get(reverse("clusters:cluster_list")).content.decode()
    assert "Reconcile now" in html and "Test all pulls" in html
    assert f'href="{reverse("clusters:cluster_edit", args=[cluster.pk])}"' not in html

    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(reverse("clusters:cluster_reconcile", args=[cluster.pk]))
    assert response["Location"] == reverse("clusters:cluster_list") + f"#cluster-{cluster.pk}"
    assert cluster.reconciles.exists()  # queued (or joined to the one a new cluster queued)
    messages = [m.message for m in response.wsgi_request._messages]
    assert messages == ["Reconciling the pull secrets of prod."]


def test_an_admin_reconciles_from_the_cluster_page_as_before(admin_client):
    cluster = ClusterFactory(name="prod")
    html = admin_client.get(reverse("clusters:cluster_list")).content.decode()
    assert "Reconcile now" not in html  # on the cluster's own page
    response = admin_client.post(reverse("clusters:cluster_reconcile", args=[cluster.pk]))
    assert response["Location"] == reverse("clusters:cluster_edit", args=[cluster.pk])


def test_a_viewer_has_no_global_configurations_menu(user_client):
    html = user_client.get(reverse("charts:chart_list")).content.decode()
    assert "Global Configurations" not in html.split("<main")[0]


def test_an_operator_menu_lists_only_what_operators_open(operator_client):
    nav = operator_client.get(reverse("charts:chart_list")).content.decode().split("<main")[0]
    assert reverse("charts:chartsource_list") in nav and reverse("clusters:cluster_list") in nav
    for admin_only in ("config:roles", "config:auditentry_list", "clusters:environment_list"):
        assert reverse(admin_only) not in nav
    assert "/admin/" not in nav
