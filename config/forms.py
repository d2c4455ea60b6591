"""Form pieces every screen shares: secret inputs and certificate checks."""

from cryptography import x509
from django import forms
from django.core.exceptions import ValidationError

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


def validate_pem_certificates(value: str) -> str:
    """One or more PEM certificates; returns the trimmed text."""
    text = (value or "").strip()
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ValidationError(
            "This is not a PEM certificate: paste the CA certificate including the "
            "-----BEGIN CERTIFICATE----- and -----END CERTIFICATE----- lines."
        )
    try:
        x509.load_pem_x509_certificates(text.encode())
    except ValueError as exc:
        raise ValidationError(
            "The CA certificate could not be read: check that the whole PEM block was pasted."
        ) from exc
    return text + "\n"


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
