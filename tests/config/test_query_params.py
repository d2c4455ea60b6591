"""Every query parameter of every page is validated: a bad one is ignored, never a 500."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.clusters.factories import ClusterFactory

pytestmark = pytest.mark.django_db

HOSTILE = ["99999999999999999999999", "-1", "0", "1e3", "١٢", "x", "\x00", "' OR 1=1 --", "9" * 400]


@pytest.mark.parametrize("value", HOSTILE)
def test_the_store_ignores_a_bad_source_filter(user_client, value):
    response = user_client.get(
        reverse("charts:chart_list"), {"source": value, "q": value, "page": value}
    )

    assert response.status_code == 200


@pytest.mark.parametrize("value", HOSTILE)
def test_adding_an_environment_ignores_a_bad_cluster(admin_client, value):
    ClusterFactory()

    response = admin_client.get(reverse("clusters:environment_add"), {"cluster": value})

    assert response.status_code == 200


def test_adding_an_environment_preselects_a_good_cluster(admin_client):
    cluster = ClusterFactory(name="prod")

    response = admin_client.get(reverse("clusters:environment_add"), {"cluster": cluster.pk})

    assert response.context["form"].initial["cluster"] == cluster.pk


def test_a_403_is_one_warning_line_without_a_traceback(user_client, caplog):
    with caplog.at_level("WARNING", logger="django.request"):
        response = user_client.get(reverse("registries:registry_list"))

    assert response.status_code == 403
    records = [r for r in caplog.records if r.name == "django.request"]
    assert len(records) == 1 and records[0].levelname == "WARNING"
    assert records[0].exc_info is None and "Traceback" not in caplog.text
