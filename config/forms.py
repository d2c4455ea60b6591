"""Form pieces every screen shares: secret inputs, styling, and the model's rules as errors."""

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, FieldDoesNotExist, ValidationError
from django.utils.text import capfirst

# The check lives below the forms now (models use it); still importable from here.
from config.validators import validate_pem_certificates  # noqa: F401

KEEP_SECRET_HELP = "Leave blank to keep the stored value."


class SecretField(forms.CharField):
    """A secret input that never renders a value; blank on an edit form means "keep"."""

    def __init__(self, *args, multiline: bool = False, **kwargs):
        # hx-preserve: when htmx re-renders the form for another choice, what the user
        # typed stays in the browser; the server never echoes it back.
        widget = (
            forms.Textarea(
                attrs={
                    "rows": 4,
                    "autocomplete": "off",
                    "spellcheck": "false",
                    "hx-preserve": "true",
                }
            )
            if multiline
            else forms.PasswordInput(
                render_value=False, attrs={"autocomplete": "new-password", "hx-preserve": "true"}
            )
        )
        kwargs.setdefault("required", False)
        kwargs.setdefault("strip", False)
        super().__init__(*args, widget=widget, **kwargs)

    def bound_data(self, data, initial):
        # A re-rendered form (after an error) must not echo a typed secret either.
        return ""

    def prepare_value(self, value):
        return ""


class StyledFormMixin:
    """Bootstrap classes on every widget, so templates render fields with one include."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.style_widgets()

    def style_widgets(self) -> None:
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.RadioSelect):
                continue  # its class would land on the group's wrapper too; CSS styles it
            if isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = "form-select"
            else:
                css = "form-control"
            widget.attrs["class"] = css


class ModelRulesFormMixin:
    """For a ModelForm whose model's ``clean()`` holds the rules (Wharf's forms and the admin's).

    ModelForm's ``_post_clean`` validates the instance the form built and puts the model's
    errors on the fields. Two cases need more care than Django gives them:

    - a field the form itself refused keeps the form's message alone: the model then saw the
      stored value, not what was typed, so its message would be about the wrong value;
    - an error on a model field the form does not show (the admin leaves secrets out) would
      make Django raise; it goes above the form instead, named (:meth:`hidden_field_error`).
    """

    def hidden_field_error(self, field: str, message: str) -> str:
        try:
            label = capfirst(self._meta.model._meta.get_field(field).verbose_name)
        except FieldDoesNotExist:
            label = field
        return f"{label}: {message}"

    def _update_errors(self, errors):
        if not hasattr(errors, "error_dict"):
            return super()._update_errors(errors)
        kept: dict[str, list] = {}
        for field, messages in errors.error_dict.items():
            if field == NON_FIELD_ERRORS:
                kept.setdefault(field, []).extend(messages)
            elif field not in self.fields:
                kept.setdefault(NON_FIELD_ERRORS, []).extend(
                    self.hidden_field_error(field, text)
                    for text in ValidationError(messages).messages
                )
            elif field not in self._errors:
                kept.setdefault(field, []).extend(messages)
        if kept:
            super()._update_errors(ValidationError(kept))
        return None
