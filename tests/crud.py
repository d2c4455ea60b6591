"""The checks every add/edit/delete screen passes, written once (NetBox's ViewTestCases).

A screen's test class subclasses :class:`CrudScreen` and says only what is its own: its
model and URL namespace, how to make an object, valid and bad form data, the field an edit
changes. pytest then runs every ``test_…`` below against it:

- the list shows the object, with its Edit and Delete links;
- add creates the object, audits it and goes where the screen says;
- edit changes the field and audits the change;
- delete removes the object and audits it;
- bad input (add or edit) shows the screen's message and changes nothing.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest
from django.db import models
from django.forms.models import model_to_dict
from django.urls import reverse

from config.models import AuditEntry


@pytest.mark.django_db
class CrudScreen:
    model: ClassVar[type[models.Model]]
    namespace: ClassVar[str]  # "registries": URLs are <namespace>:<model>_<action>
    # A valid POST to the add page; what ``str()`` of the object it creates reads.
    add_data: ClassVar[dict[str, Any]]
    added_name: ClassVar[str]
    # The field an edit changes, and the value it changes it to.
    edit_field: ClassVar[str]
    edit_value: ClassVar[Any]
    # A POST field that is refused, and the message the page shows for it.
    bad_field: ClassVar[str]
    bad_value: ClassVar[Any]
    bad_message: ClassVar[str]

    def make(self) -> models.Model:
        """An existing object of the screen (a factory call)."""
        raise NotImplementedError

    def edit_data(self, obj) -> dict[str, Any]:
        """A valid POST to the edit page of ``obj`` that changes nothing."""
        raise NotImplementedError

    def success_url(self, obj) -> str:
        return self.url("list")

    # --- helpers -----------------------------------------------------------------------

    def url(self, action: str, obj=None) -> str:
        name = f"{self.namespace}:{self.model._meta.model_name}_{action}"
        return reverse(name, args=[obj.pk] if obj is not None else [])

    def audited(self, action: str, obj_repr: str) -> AuditEntry | None:
        return AuditEntry.objects.filter(
            action=action, object_type=self.model._meta.verbose_name, object_repr=obj_repr
        ).first()

    @staticmethod
    def state(obj) -> dict:
        fresh = type(obj).objects.get(pk=obj.pk)
        return model_to_dict(fresh)

    # --- the checks --------------------------------------------------------------------

    def test_list_shows_the_object_with_its_edit_and_delete_links(self, admin_client):
        obj = self.make()

        html = admin_client.get(self.url("list")).content.decode()

        assert str(obj) in html
        assert f'href="{self.url("edit", obj)}"' in html
        assert f'href="{self.url("delete", obj)}"' in html

    def test_add_creates_the_object_and_audits_it(self, admin_client):
        response = admin_client.post(self.url("add"), self.add_data)

        assert response.status_code == 302, response.content.decode()[:2000]
        obj = next(o for o in self.model.objects.all() if str(o) == self.added_name)
        assert response["Location"] == self.success_url(obj)
        assert self.audited(AuditEntry.Action.CREATE, self.added_name) is not None

    def test_edit_changes_the_object_and_audits_the_change(self, admin_client):
        obj = self.make()
        data = {**self.edit_data(obj), self.edit_field: self.edit_value}

        response = admin_client.post(self.url("edit", obj), data)

        assert response.status_code == 302, response.content.decode()[:2000]
        assert self.state(obj)[self.edit_field] == self.edit_value
        entry = self.audited(AuditEntry.Action.UPDATE, str(obj))
        assert entry is not None and self.edit_field in entry.changes

    def test_delete_asks_first_then_removes_the_object_and_audits_it(self, admin_client):
        obj = self.make()

        page = admin_client.get(self.url("delete", obj))
        assert page.status_code == 200 and self.model.objects.filter(pk=obj.pk).exists()
        response = admin_client.post(self.url("delete", obj))

        assert response.status_code == 302
        assert response["Location"] == self.url("list")
        assert not self.model.objects.filter(pk=obj.pk).exists()
        assert self.audited(AuditEntry.Action.DELETE, str(obj)) is not None

    def test_bad_input_on_add_shows_the_message_and_saves_nothing(self, admin_client):
        before = self.model.objects.count()
        data = {**self.add_data, self.bad_field: self.bad_value}

        response = admin_client.post(self.url("add"), data)

        assert response.status_code == 200
        assert self.bad_message in response.content.decode()
        assert self.model.objects.count() == before
        assert not AuditEntry.objects.exists()

    def test_bad_input_on_edit_shows_the_message_and_changes_nothing(self, admin_client):
        obj = self.make()
        before = self.state(obj)
        data = {**self.edit_data(obj), self.bad_field: self.bad_value}

        response = admin_client.post(self.url("edit", obj), data)

        assert response.status_code == 200
        assert self.bad_message in response.content.decode()
        assert self.state(obj) == before
        assert not AuditEntry.objects.exists()

    def test_bad_input_over_htmx_answers_422_with_the_form(self, admin_client):
        data = {**self.add_data, self.bad_field: self.bad_value}

        response = admin_client.post(self.url("add"), data, headers={"HX-Request": "true"})

        assert response.status_code == 422
        assert self.bad_message in response.content.decode()

    def test_add_over_htmx_sends_the_browser_on_with_hx_location(self, admin_client):
        response = admin_client.post(self.url("add"), self.add_data, headers={"HX-Request": "true"})

        assert response.status_code == 200
        obj = next(o for o in self.model.objects.all() if str(o) == self.added_name)
        assert json.loads(response["HX-Location"])["path"] == self.success_url(obj)
