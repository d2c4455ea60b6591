"""The signing key form: the rules are the model's (SigningKey.clean)."""

from __future__ import annotations

from django import forms

from config.forms import ModelRulesFormMixin, StyledFormMixin
from trust.models import SigningKey


class SigningKeyForm(ModelRulesFormMixin, StyledFormMixin, forms.ModelForm):
    class Meta:
        model = SigningKey
        fields = ["name", "kind", "public_key"]
        labels = {"kind": "Key type"}
        widgets = {
            "kind": forms.RadioSelect,
            "public_key": forms.Textarea(
                attrs={"rows": 12, "spellcheck": "false", "class": "font-monospace"}
            ),
        }
