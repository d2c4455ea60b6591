"""Registry screens through the test client: CRUD flows, defaults, delete rules."""

import pytest
from django.urls import reverse

from config.models import AuditEntry
from registries.models import Registry
from tests.crud import CrudScreen
from tests.factories import RegistryFactory, registry_form_data

pytestmark = pytest.mark.django_db


def test_list_shows_each_registry_with_provider_url_type_flags_and_default(admin_client):
    RegistryFactory(name="alpha", provider="quay", url="quay.io", is_default=True, push_helm=True)
    RegistryFactory(name="beta", registry_type="public", username="", secret="", auth_type="")
    html = admin_client.get(reverse("registries:registry_list")).content.decode()
    assert "alpha" in html and "beta" in html
    assert "Quay" in html and "quay.io" in html
    assert "Default" in html and "Push helm" in html and "Public" in html


def test_list_runs_a_fixed_number_of_queries(admin_client, django_assert_max_num_queries):
    for _ in range(15):
        RegistryFactory()
    with django_assert_max_num_queries(6):
        admin_client.get(reverse("registries:registry_list"))


def test_add_registry_saves_and_redirects_to_the_list(admin_client):
    response = admin_client.post(reverse("registries:registry_add"), registry_form_data())
    assert response.status_code == 302
    registry = Registry.objects.get(name="team-registry")
    assert registry.is_default  # the first registry
    assert AuditEntry.objects.filter(action="create", object_repr="team-registry").exists()


def test_refresh_rerenders_the_form_for_another_provider_without_validating(admin_client):
    data = registry_form_data(provider="gcp-ar", _refresh="1", url="")
    response = admin_client.post(
        reverse("registries:registry_add"), data, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Service Account JSON File" in html
    assert "errorlist" not in html
    assert "hunter2-correct-horse" not in html
    assert not Registry.objects.exists()


def test_refresh_for_a_public_registry_hides_the_credentials(admin_client):
    data = registry_form_data(registry_type="public", _refresh="1")
    html = admin_client.post(reverse("registries:registry_add"), data).content.decode()
    assert 'name="username"' not in html
    assert "needs no credentials" in html


def test_edit_form_renders_the_name_read_only(admin_client):
    registry = RegistryFactory(name="fixed-name")
    html = admin_client.get(
        reverse("registries:registry_edit", args=[registry.pk])
    ).content.decode()
    assert 'name="name"' in html and "disabled" in html.split('name="name"')[1].split(">")[0]


def test_make_default_moves_the_default_badge(admin_client):
    old = RegistryFactory(is_default=True)
    new = RegistryFactory()
    admin_client.post(reverse("registries:registry_make_default", args=[new.pk]))
    assert list(Registry.objects.filter(is_default=True)) == [new]
    assert AuditEntry.objects.filter(object_repr=new.name, action="update").exists()
    old.refresh_from_db()
    assert not old.is_default


def test_delete_confirmation_shows_the_impact(admin_client):
    registry = RegistryFactory(chart_source=True, repositories=["charts/stable"])
    html = admin_client.get(
        reverse("registries:registry_delete", args=[registry.pk])
    ).content.decode()
    assert "charts/stable" in html and "Chart Store" in html
    assert Registry.objects.filter(pk=registry.pk).exists()


def test_default_registry_cannot_be_deleted_while_others_exist(admin_client):
    default = RegistryFactory(is_default=True)
    RegistryFactory()
    response = admin_client.post(reverse("registries:registry_delete", args=[default.pk]))
    assert response.status_code == 409
    assert "is the default registry" in response.content.decode()
    assert Registry.objects.filter(pk=default.pk).exists()


def test_the_only_registry_can_be_deleted_even_if_default(admin_client):
    default = RegistryFactory(is_default=True)
    admin_client.post(reverse("registries:registry_delete", args=[default.pk]))
    assert not Registry.objects.exists()


def test_audit_log_shows_a_secret_change_only_as_changed(admin_client):
    registry = RegistryFactory(name="team-registry", url="registry.example.com:5000")
    old_secret = registry.secret
    admin_client.post(
        reverse("registries:registry_edit", args=[registry.pk]),
        registry_form_data(secret="brand-new-secret-value"),
    )
    entry = AuditEntry.objects.get(action="update")
    assert entry.changes["secret"] == ["changed"]
    html = admin_client.get(reverse("config:auditentry_list")).content.decode()
    assert "brand-new-secret-value" not in html and old_secret not in html
    assert "changed" in html


def test_edit_form_lists_repositories_one_per_line(admin_client):
    registry = RegistryFactory(chart_source=True, repositories=["charts/stable", "team/apps"])
    html = admin_client.get(
        reverse("registries:registry_edit", args=[registry.pk])
    ).content.decode()
    assert "charts/stable\nteam/apps</textarea>" in html


def test_unknown_registry_is_a_404_page(admin_client):
    response = admin_client.get(reverse("registries:registry_edit", args=[999]))
    assert response.status_code == 404


def test_admin_edit_is_recorded_in_the_audit_log(admin_client):
    registry = RegistryFactory(name="team-registry", url="registry.example.com")
    change_url = f"/admin/registries/registry/{registry.pk}/change/"
    form = admin_client.get(change_url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and not isinstance(v, list)}
    data.update(url="mirror.example.com", repositories="")
    for flag in ("push_images", "push_helm", "chart_source"):
        if not data.get(flag):
            data.pop(flag, None)
    response = admin_client.post(change_url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    entry = AuditEntry.objects.get(action="update", object_repr="team-registry")
    assert entry.changes["url"] == ["registry.example.com", "mirror.example.com"]


class TestRegistryScreen(CrudScreen):
    model = Registry
    namespace = "registries"
    add_data = registry_form_data()
    added_name = "team-registry"
    edit_field = "url"
    edit_value = "mirror.example.com:5000"
    bad_field = "url"
    bad_value = "https://x.io"
    bad_message = "Drop the scheme"

    def make(self):
        return RegistryFactory(name="team-registry", is_default=True)

    def edit_data(self, obj):
        return registry_form_data(url=obj.url, secret="")
