"""Helpers for tests that add and change objects through the Django admin."""

from __future__ import annotations


def admin_url(model, pk=None) -> str:
    """The admin's add page of ``model``, or the change page of the object ``pk``."""
    meta = model._meta
    action = f"{pk}/change" if pk is not None else "add"
    return f"/admin/{meta.app_label}/{meta.model_name}/{action}/"


def admin_errors(response) -> dict[str, list[str]]:
    """The errors the admin form shows, by field ("__all__" for those above the form)."""
    assert response.status_code == 200, f"expected the form again, got {response.status_code}"
    form = response.context["adminform"].form
    return {field: list(messages) for field, messages in form.errors.items()}


def change_data(client, model, pk, **overrides) -> dict:
    """What the admin's change page of ``pk`` would post unchanged, with ``overrides``
    (None drops a field: an unticked box)."""
    context = client.get(admin_url(model, pk)).context
    forms = [context["adminform"].form]
    for inline in context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    data = {}
    for form in forms:
        for name in form.fields:
            value = form[name].value()
            if value is None or value is False:
                continue
            data[form.add_prefix(name)] = "on" if value is True else value
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}
