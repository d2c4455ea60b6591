"""Push limited per group to chosen registries (config/roles.py): the "Push chart" page,
the registries list's buttons and ``manage.py push_chart --as``, on a real registry."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from charts.models import ChartPush
from config import roles
from config.models import GroupRole, UserRole
from tests.chartkit import make_chart_archive
from tests.charts.helpers import unique
from tests.charts.pushkit import push_registry
from tests.charts.test_push_views import post_push

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def registries(chart_registry):
    """Two registries that take charts, on the same real registry server."""
    return push_registry(chart_registry, name="team-a"), push_registry(
        chart_registry, name="team-b"
    )


@pytest.fixture
def deployer(django_user_model, registries):
    """An operator through the group "deployers", whose push is limited to team-a."""
    user = django_user_model.objects.create_user("dee", password="x" * 20)
    group = Group.objects.create(name="deployers")
    group.user_set.add(user)
    mapping = GroupRole.objects.create(group=group, role=roles.OPERATOR, push_limited=True)
    mapping.push_registries.set([registries[0]])
    return user


@pytest.fixture
def deployer_client(client, deployer):
    client.force_login(deployer)
    return client


def test_the_page_refuses_a_registry_outside_the_limit_and_pushes_nothing(
    deployer_client, registries, broker
):
    _, other = registries
    assert deployer_client.get(reverse("charts:chartpush_add", args=[other.pk])).status_code == 403
    response = post_push(deployer_client, other, make_chart_archive(unique("lim"), "1.0.0"))

    assert response.status_code == 403
    assert "You may not push charts to team-b" in response.content.decode()
    assert not ChartPush.objects.exists() and broker.messages == []


def test_the_page_pushes_to_a_registry_inside_the_limit(deployer_client, registries, broker):
    allowed, _ = registries
    response = post_push(deployer_client, allowed, make_chart_archive(unique("lim"), "1.0.0"))

    assert response.status_code == 302
    assert ChartPush.objects.get().registry == allowed
    broker.run_all()
    assert ChartPush.objects.get().status == ChartPush.Status.SUCCEEDED


def test_the_pushes_table_of_another_registry_is_refused(deployer_client, registries):
    _, other = registries
    url = reverse("charts:chartpush_list", args=[other.pk])
    assert deployer_client.get(url).status_code == 403


def test_the_registries_list_offers_push_only_where_the_limit_allows(deployer_client, registries):
    allowed, other = registries
    html = deployer_client.get(reverse("registries:registry_list")).content.decode()
    assert f'href="{reverse("charts:chartpush_add", args=[allowed.pk])}"' in html
    assert f'href="{reverse("charts:chartpush_add", args=[other.pk])}"' not in html
    assert f'href="{reverse("registries:registry_edit", args=[allowed.pk])}"' not in html


def write_chart(tmp_path) -> str:
    path = tmp_path / "chart.tgz"
    path.write_bytes(make_chart_archive(unique("cli-lim"), "1.0.0"))
    return str(path)


def test_the_command_refuses_a_registry_outside_the_limit(deployer, registries, tmp_path):
    with pytest.raises(CommandError, match="dee may not push charts to team-b"):
        call_command("push_chart", "team-b", write_chart(tmp_path), "--as", "dee")
    assert not ChartPush.objects.exists()


def test_the_command_pushes_to_a_registry_inside_the_limit(deployer, registries, tmp_path):
    call_command("push_chart", "team-a", write_chart(tmp_path), "--as", "dee")
    push = ChartPush.objects.get()
    assert (push.registry.name, push.status, push.user) == (
        "team-a",
        ChartPush.Status.SUCCEEDED,
        deployer,
    )


def test_the_command_refuses_a_viewer(django_user_model, registries, tmp_path):
    UserRole.objects.create(user=django_user_model.objects.create_user("vic"), role="viewer")
    with pytest.raises(CommandError, match="vic may not push"):
        call_command("push_chart", "team-a", write_chart(tmp_path), "--as", "vic")
    assert not ChartPush.objects.exists()
