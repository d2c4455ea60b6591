"""The profile page of the signed-in user: their role and their personal API tokens.

A new token's text is shown once, on the page that answers its creation, and never again
(Wharf keeps only its digest).
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from api.models import DEFAULT_DAYS, MAX_DAYS, ApiToken, issue_token
from config import audit
from config.forms import StyledFormMixin
from config.models import AuditEntry
from config.roles import role_of
from config.views import SignedInView


class TokenForm(StyledFormMixin, forms.Form):
    name = forms.CharField(
        max_length=100, help_text="What will use it, for example “ci-pipeline” or “terraform”."
    )
    days = forms.IntegerField(
        label="Expires after (days)",
        initial=DEFAULT_DAYS,
        min_value=1,
        max_value=MAX_DAYS,
        help_text=f"{DEFAULT_DAYS} days unless you choose; {MAX_DAYS} at most.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.style_widgets()


class ProfileView(SignedInView):
    template_name = "api/profile.html"

    def render_page(self, request, form, new_token: str = "", status: int = 200):
        context = {
            "role": role_of(request.user) or "none",
            "tokens": ApiToken.objects.filter(user=request.user),
            "form": form,
            "new_token": new_token,
            "api_docs_url": reverse("api:docs"),
        }
        response = render(request, self.template_name, context, status=status)
        if new_token:
            response["Cache-Control"] = "no-store"  # the one page that shows the token
        return response

    def get(self, request):
        return self.render_page(request, TokenForm())

    def post(self, request):
        form = TokenForm(request.POST)
        if not form.is_valid():
            return self.render_page(request, form)
        try:
            with transaction.atomic():
                token, text = issue_token(
                    request.user, form.cleaned_data["name"], form.cleaned_data["days"]
                )
                audit.record(
                    request.user,
                    AuditEntry.Action.CREATE,
                    token,
                    {"name": [None, token.name], "expires_at": [None, str(token.expires_at)]},
                )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
            return self.render_page(request, form)
        return self.render_page(request, TokenForm(), new_token=text)


class RevokeTokenView(SignedInView):
    """Revoke one of your own tokens (its id posted as ``token``)."""

    def get(self, request):
        return HttpResponseRedirect(reverse("account:profile"))

    def post(self, request):
        value = request.POST.get("token", "").strip()
        pk = int(value) if value.isascii() and value.isdigit() and len(value) < 19 else None
        token = ApiToken.objects.filter(pk=pk, user=request.user).first() if pk else None
        if token is None:
            messages.error(request, "No such token of yours: nothing was revoked.")
        elif token.revoked_at is None:
            with transaction.atomic():
                token.revoke()
                audit.record(
                    request.user, AuditEntry.Action.UPDATE, token, {"revoked": [False, True]}
                )
            messages.success(request, f"Revoked the token “{token.name}”.")
        return HttpResponseRedirect(reverse("account:profile"))
