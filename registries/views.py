"""Container/OCI Registry screens: list, add/edit (with Test connection), delete."""

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views import View

from config import audit, roles
from config.views import (
    AdminRequiredMixin,
    ObjectDeleteView,
    ObjectEditView,
    ObjectListView,
)
from registries.connectivity import check_connection
from registries.forms import RegistryForm, save_registry
from registries.models import Registry


class RegistryScreen:
    model = Registry
    screen_title = "Container/OCI Registry"


class RegistryListView(RegistryScreen, ObjectListView):
    queryset = Registry.objects.select_related(
        "rate_limit_budget", "discovery__last_run"
    ).prefetch_related("chart_sources__last_run")
    template_name = "registries/registry_list.html"
    # Admins change registries here; operators see them read-only, with "Push chart" on
    # those they may push to.
    required_role = roles.OPERATOR

    def get_context(self, objects) -> dict:
        pushable = roles.push_registry_ids(self.request.user)
        return {"pushable": None if pushable is None else sorted(pushable)}


class RegistryEditView(RegistryScreen, ObjectEditView):
    form_class = RegistryForm
    template_name = "registries/registry_form.html"

    def context(self, request, form, obj, **extra) -> dict:
        reserve = settings.WHARF_RATE_LIMIT_RESERVE_PERCENT
        return super().context(request, form, obj, reserve_percent=reserve, **extra)

    def save(self, form):
        return save_registry(form)

    def check_connection(self, obj):
        return check_connection(obj)


class RegistryDeleteView(RegistryScreen, ObjectDeleteView):
    def blocker(self, obj) -> str:
        return obj.deletion_blocker()


class RegistryMakeDefaultView(AdminRequiredMixin, View):
    def post(self, request, pk):
        registry = get_object_or_404(Registry, pk=pk)
        if not registry.is_default:
            before = audit.snapshot(registry)
            with transaction.atomic():
                registry.make_default()
                audit.record_save(request.user, registry, before)
            messages.success(request, f"{registry} is now the default registry.")
        return HttpResponseRedirect(reverse("registries:registry_list"))
