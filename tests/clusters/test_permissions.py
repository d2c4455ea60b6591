"""What a plain user sees of the cluster screens (every URL's access:
tests/config/test_every_url.py)."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_plain_user_sees_no_cluster_links_in_the_navigation(user_client):
    html = user_client.get(reverse("home"), follow=True).content.decode()
    assert reverse("clusters:cluster_list") not in html
