"""Saving a Helm repository checks its connection first, as saving a registry does."""

from __future__ import annotations

import pytest
from django.urls import reverse

from charts.models import HelmRepository
from tests.chartkit import helm_index

pytestmark = pytest.mark.django_db


def repository_data(url: str, **overrides) -> dict:
    data = {
        "name": "stable",
        "url": url,
        "access": "public",
        "connection_method": "direct",
        "tls_mode": "insecure",
        "active": "on",
        "_action": "save",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_a_repository_whose_index_cannot_be_read_is_not_saved(admin_client, helm_repo):
    # The server answers, but there is no index.yaml: Test connection fails.
    response = admin_client.post(
        reverse("charts:helmrepository_add"), repository_data(helm_repo.url)
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "Nothing was saved: the connection check failed." in html
    assert "Save without checking the connection" in html
    assert not HelmRepository.objects.exists()


def test_save_without_checking_saves_an_unreachable_repository(admin_client):
    data = repository_data("http://127.0.0.1:9/charts", save_without_checking="on")

    response = admin_client.post(reverse("charts:helmrepository_add"), data)

    assert response.status_code == 302
    assert HelmRepository.objects.get().url == "http://127.0.0.1:9/charts"


def test_a_repository_with_a_readable_index_passes_the_check(admin_client, helm_repo):
    helm_repo.write_index(helm_index([]))

    response = admin_client.post(
        reverse("charts:helmrepository_add"), repository_data(helm_repo.url)
    )

    assert response.status_code == 302
    assert HelmRepository.objects.filter(name="stable").exists()


def test_an_edit_that_keeps_the_connection_is_not_checked_again(admin_client):
    repository = HelmRepository.objects.create(
        name="stable", url="http://127.0.0.1:9/charts", tls_mode="insecure"
    )
    data = repository_data(repository.url, name=None, active=None)

    response = admin_client.post(reverse("charts:helmrepository_edit", args=[repository.pk]), data)

    assert response.status_code == 302
    repository.refresh_from_db()
    assert not repository.active
