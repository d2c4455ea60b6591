"""Global Configurations → Signing keys: the public keys chart signatures are verified with."""

from __future__ import annotations

from config.views import ObjectDeleteView, ObjectEditView, ObjectListView
from trust.forms import SigningKeyForm
from trust.models import SigningKey


class SigningKeyListView(ObjectListView):
    model = SigningKey
    queryset = SigningKey.objects.all()
    template_name = "trust/signingkey_list.html"


class SigningKeyEditView(ObjectEditView):
    model = SigningKey
    form_class = SigningKeyForm
    template_name = "trust/signingkey_form.html"


class SigningKeyDeleteView(ObjectDeleteView):
    model = SigningKey

    def impact(self, obj) -> list[str]:
        return [
            "Chart versions this key verified are checked again in the background, without "
            "it: they become “signed, not verified” unless another configured key signed them."
        ]
