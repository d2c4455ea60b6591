"""Views every Global Configurations screen shares: list, edit and delete an object.

Each screen subclasses these with its queryset, form and templates, and adds only
what is its own (NetBox's generic object views, much smaller).
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import UserPassesTestMixin
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views import View

from config import audit
from config.forms import SecretField
from config.impact import impact_of
from config.models import AuditEntry


class SuperuserRequiredMixin(UserPassesTestMixin):
    """Global Configurations are for superusers; anyone else gets the 403 page."""

    raise_exception = True
    permission_denied_message = "Only superusers can see or change Global Configurations."

    def test_func(self) -> bool:
        return self.request.user.is_superuser


def htmx_partial(request) -> bool:
    """An htmx request that wants a fragment (a boosted request wants the whole page)."""
    return bool(request.htmx) and not request.htmx.boosted


class ObjectListView(SuperuserRequiredMixin, View):
    queryset: models.QuerySet
    template_name: str
    partial_template: str | None = None

    def get_queryset(self):
        return self.queryset.all()

    def get_context(self, objects) -> dict:
        return {}

    def get(self, request):
        objects = self.get_queryset()
        context = {"objects": objects, **self.get_context(objects)}
        if self.partial_template and htmx_partial(request):
            return render(request, self.partial_template, context)
        return render(request, self.template_name, context)


class ObjectEditView(SuperuserRequiredMixin, View):
    """Add (no pk) or edit (pk) one object through a ModelForm.

    Subclasses may override ``save`` (the domain save) and ``before_save`` (a last
    check that can refuse the save with a message, for example a connection test).
    """

    model: type[models.Model]
    form_class: type
    template_name: str
    list_url_name: str

    def get_object(self, pk):
        return get_object_or_404(self.model, pk=pk) if pk is not None else self.model()

    def get_form(self, request, obj, data=None, files=None, initial=None):
        return self.form_class(data=data, files=files, instance=obj, initial=initial or {})

    def context(self, request, form, obj, **extra) -> dict:
        return {"form": form, "object": obj, "editing": obj.pk is not None, **extra}

    def render_form(self, request, form, obj, status=200, **extra):
        return render(
            request, self.template_name, self.context(request, form, obj, **extra), status=status
        )

    def get(self, request, pk=None):
        obj = self.get_object(pk)
        return self.render_form(request, self.get_form(request, obj), obj)

    def post(self, request, pk=None):
        obj = self.get_object(pk)
        if request.POST.get("_refresh"):
            return self.refresh(request, obj)
        form = self.get_form(request, obj, request.POST, request.FILES)
        action = request.POST.get("_action", "save")
        handler = getattr(self, f"action_{action}", None)
        if handler is None:
            return HttpResponse("Unknown action.", status=400)
        return handler(request, form, obj)

    def refresh(self, request, obj):
        """Re-render the form for changed choices (provider, type…) without validating it."""
        initial = {k: v for k, v in request.POST.items() if not k.startswith("_")}
        for name, field in self.form_class.base_fields.items():
            if isinstance(field, SecretField | forms.FileField):
                initial.pop(name, None)  # never echo a typed secret
            elif isinstance(field, forms.BooleanField):
                initial[name] = name in request.POST  # an unticked box is absent
        form = self.get_form(request, obj, initial=initial)
        return self.render_form(request, form, obj)

    def before_save(self, request, form) -> str:
        return ""

    # "Test connection": subclasses that have one return a result with ``ok``, ``message``
    # and ``steps`` for an object built from the form (saved or not).
    connection_result_template = "partials/_connection_result.html"

    def check_connection(self, obj):
        raise NotImplementedError

    def action_test(self, request, form, obj):
        if form.is_valid():
            context = {"result": self.check_connection(form.instance)}
        else:
            context = {"form_errors": form.errors}
        if htmx_partial(request):
            return render(request, self.connection_result_template, context)
        return self.render_form(request, form, obj, **context)

    def save(self, form):
        return form.save()

    def action_save(self, request, form, obj):
        before = audit.snapshot(obj) if obj.pk else None  # before is_valid() touches obj
        if not form.is_valid():
            return self.render_form(request, form, obj, status=422 if request.htmx else 200)
        problem = self.before_save(request, form)
        if problem:
            form.add_error(None, problem)
            return self.render_form(request, form, obj, status=422 if request.htmx else 200)
        creating = before is None
        with transaction.atomic():  # a change is never saved without its audit entry
            saved = self.save(form)
            audit.record_save(request.user, saved, before)
        messages.success(request, f"{'Added' if creating else 'Saved'} {saved}.")
        url = reverse(self.list_url_name)
        if request.htmx:
            response = HttpResponse(status=204)
            response["HX-Location"] = url
            return response
        return HttpResponseRedirect(url)


class ObjectDeleteView(SuperuserRequiredMixin, View):
    """A confirmation page showing the impact (from every app that loses something), then
    the delete."""

    model: type[models.Model]
    template_name = "generic/confirm_delete.html"
    list_url_name: str

    def impact(self, obj) -> list[str]:
        # Told by every app that owns data the object takes with it (config.impact).
        return impact_of(obj)

    def blocker(self, obj) -> str:
        return ""

    def render_confirmation(self, request, obj, blocker: str, status: int = 200):
        context = {
            "object": obj,
            "object_type": obj._meta.verbose_name,
            "impact": self.impact(obj),
            "blocker": blocker,
            "cancel_url": reverse(self.list_url_name),
        }
        return render(request, self.template_name, context, status=status)

    def get(self, request, pk):
        obj = get_object_or_404(self.model, pk=pk)
        return self.render_confirmation(request, obj, self.blocker(obj))

    def post(self, request, pk):
        obj = get_object_or_404(self.model, pk=pk)
        blocker = self.blocker(obj)
        if not blocker:
            label = str(obj)
            try:
                with transaction.atomic():
                    audit.record_delete(request.user, obj)
                    obj.delete()
            except ValidationError as exc:
                blocker = " ".join(exc.messages)
        if blocker:
            return self.render_confirmation(request, obj, blocker, status=409)
        messages.success(request, f"Deleted {label}.")
        return HttpResponseRedirect(reverse(self.list_url_name))


def signin_locked_out(request, response=None, credentials=None):
    """What a locked-out address sees instead of the sign-in page (django-axes)."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    context = {"failure_limit": settings.AXES_FAILURE_LIMIT, "minutes": minutes}
    return render(request, "registration/locked_out.html", context, status=429)


def permission_denied(request, exception=None):
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


def home(request):
    if request.user.is_superuser:
        return HttpResponseRedirect(reverse("registries:list"))
    return HttpResponseRedirect(reverse("charts:store"))


class AuditLogView(ObjectListView):
    queryset = AuditEntry.objects.select_related("user")
    template_name = "audit_log.html"

    def get_queryset(self):
        return super().get_queryset()[:200]
