"""Views every Global Configurations screen shares: list, edit and delete an object.

Each screen subclasses these with its model, queryset, form and template, and adds only
what is its own (NetBox's generic object views, much smaller). The templates they render
extend ``generic/object_list.html``, ``generic/object_edit.html`` and
``generic/confirm_delete.html``, which take what every page shows (the screen's title, its
list and add URLs, the object's verbose name, the edit and delete links) from here.

URL names follow ``<app>:<model>_<action>`` (``registries:registry_edit``), so a view finds
the other screens of its model from its own URL's namespace.

Access is declared by each view: ``required_role`` is one of config/roles.py's roles
(``"viewer"``: the Chart Store; ``"operator"``: starting work; ``"admin"``: Global
Configurations, the default of the generic views), ``"signed-in"`` (any signed-in user, with
a role or not: the start page, signing out), ``"public"`` (signing in) or ``"probe"``. The
permission test walks every URL and expects what its view declares, for every role.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import models, transaction
from django.db.models import Count, Prefetch
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.decorators import method_decorator
from django.utils.text import capfirst
from django.views import View
from django.views.decorators.cache import never_cache
from django_htmx.http import HttpResponseLocation, HttpResponseStopPolling
from social_core.actions import do_auth, do_complete
from social_core.exceptions import SocialAuthBaseException
from social_django.utils import load_strategy

from config import audit, csp, roles, signin
from config.forms import GroupRoleForm, SecretField, UserRoleForm
from config.impact import impact_of
from config.models import AuditEntry, GroupRole, UserRole
from config.params import ParamError, date_param, page_param, text_param
from config.rolesetup import parse_role_groups
from registries.models import Registry


def no_role_page(request, status: int = 403) -> HttpResponse:
    """What a signed-in user without a role sees (``WHARF_REQUIRE_ROLE``): whom to ask."""
    contact = settings.WHARF_ROLE_CONTACT or ", ".join(roles.admin_usernames()) or "an admin"
    return render(request, "no_role.html", {"contact": contact}, status=status)


DENIED = {
    roles.VIEWER: "Only users with a role can see the Chart Store.",
    roles.OPERATOR: ("Only operators and admins can sync, push charts, reconcile and test pulls."),
    roles.ADMIN: "Only admins can see or change Global Configurations.",
}


class RoleRequiredMixin:
    """Lets a view through for users who hold its ``required_role`` (or a higher one);
    other signed-in users get the 403 page saying why, or, with no role at all, the page
    saying whom to ask. (LoginRequiredMiddleware sends anonymous users to sign in first.)"""

    required_role = roles.VIEWER

    def dispatch(self, request, *args, **kwargs):
        if roles.role_of(request.user) is None:
            return no_role_page(request)
        if not roles.allows(request.user, self.required_role):
            raise PermissionDenied(DENIED[self.required_role])
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


class AdminRequiredMixin(RoleRequiredMixin):
    """Global Configurations are for admins (superusers are admins)."""

    required_role = roles.ADMIN


class OperatorRequiredMixin(RoleRequiredMixin):
    """Starting work (sync, push, reconcile, pull test) is for operators and admins."""

    required_role = roles.OPERATOR


# The name views used before there were roles; what it guards is now the admin's.
SuperuserRequiredMixin = AdminRequiredMixin


class SignedInView(RoleRequiredMixin, View):
    """A Chart Store page: for every viewer (every signed-in user, unless
    ``WHARF_REQUIRE_ROLE`` leaves those without a role out)."""


# Known problems a redirect back to the sign-in page may name (?problem=…): fixed texts,
# so the address cannot make the page say anything else.
SIGN_IN_PROBLEMS = {
    "inactive": "Your Wharf account is deactivated. Ask an administrator to activate it.",
}


def sign_in_options(request) -> dict:
    """What the sign-in page offers: the SSO button, LDAP, who may use local accounts."""
    sso = None
    if signin.oidc_enabled():
        sso = {"label": settings.WHARF_OIDC_BUTTON_LABEL, "url": reverse("oidc_begin")}
    return {
        "sso": sso,
        "ldap": signin.ldap_enabled(),
        "local_for_superusers": settings.WHARF_LOCAL_SIGN_IN == signin.LOCAL_FOR_SUPERUSERS,
        "ldap_unreachable": getattr(request, "wharf_ldap_error", False),
    }


def _sso_may_leave(response: HttpResponse) -> HttpResponse:
    """The SSO button's form ends at the identity provider (Wharf redirects it there):
    the page's Content-Security-Policy lets forms go on to that origin."""
    if signin.oidc_enabled():
        csp.allow(response, "form-action", [signin.issuer_origin()])
    return response


def render_sign_in(request, problem: signin.SignInProblem) -> HttpResponse:
    """The sign-in page again, saying what went wrong with single sign-on."""
    context = {
        "form": AuthenticationForm(request),
        "next": "",
        "problem": problem.message,
        **sign_in_options(request),
    }
    response = render(request, "registration/login.html", context, status=problem.status)
    return _sso_may_leave(response)


@method_decorator(login_not_required, name="dispatch")
class SignInView(auth_views.LoginView):
    """The one page for anyone, signed in or not (a signed-in user is sent on)."""

    required_role = "public"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(sign_in_options(self.request))
        context["problem"] = SIGN_IN_PROBLEMS.get(self.request.GET.get("problem", ""), "")
        return context

    def render_to_response(self, context, **response_kwargs):
        return _sso_may_leave(super().render_to_response(context, **response_kwargs))


def _oidc_backend(request) -> signin.OidcBackend:
    strategy = load_strategy(request)
    return strategy.get_backend("oidc", redirect_uri=reverse("oidc_complete"))


def _signed_in_by_oidc(backend, user, social_user) -> None:
    request = backend.strategy.request
    login(request, user, backend=signin.OIDC_BACKEND)
    signin.remember_provider_sign_out(request, backend)


NOT_SET_UP = signin.SignInProblem("Single sign-on is not set up on this Wharf.", 404)


@method_decorator([login_not_required, never_cache], name="dispatch")
class OidcBeginView(View):
    """The SSO button: a POST (with CSRF) that sends the browser to the identity provider."""

    required_role = "public"
    http_method_names = ["post"]

    def post(self, request):
        if not signin.oidc_enabled():
            return render_sign_in(request, NOT_SET_UP)
        try:
            return do_auth(_oidc_backend(request), redirect_name="next")
        except SocialAuthBaseException as error:
            signin.log_problem(error)
            return render_sign_in(request, signin.problem_of(error))


@method_decorator([login_not_required, never_cache], name="dispatch")
class OidcCompleteView(View):
    """Where the identity provider sends the browser back (a GET, as OpenID Connect has it):
    the code is exchanged, the ID token verified, the user found or made, their groups
    mirrored, and they are signed in. Any failure is a message on the sign-in page."""

    required_role = "public"
    http_method_names = ["get"]

    def get(self, request):
        if not signin.oidc_enabled():
            return render_sign_in(request, NOT_SET_UP)
        try:
            return do_complete(_oidc_backend(request), _signed_in_by_oidc, redirect_name="next")
        except SocialAuthBaseException as error:
            signin.log_problem(error)
            return render_sign_in(request, signin.problem_of(error))


class SignOutView(auth_views.LogoutView):
    """Sign out of Wharf; after an SSO sign-in with ``WHARF_OIDC_SIGN_OUT_AT_PROVIDER``,
    the browser goes on to the provider's end-session page, which sends it back to
    Wharf's sign-in page."""

    required_role = "signed-in"

    def post(self, request, *args, **kwargs):
        endpoint = request.session.get(signin.PROVIDER_SIGN_OUT_KEY)
        response = super().post(request, *args, **kwargs)  # the session is gone after this
        if isinstance(endpoint, str) and signin.signs_out_at_provider():
            return_to = request.build_absolute_uri(reverse("login"))
            return HttpResponseRedirect(signin.provider_sign_out_url(endpoint, return_to))
        return response


def htmx_partial(request) -> bool:
    """An htmx request that wants a fragment (a boosted request wants the whole page)."""
    return bool(request.htmx) and not request.htmx.boosted


# --- polled status tables ---------------------------------------------------------------


@dataclass(frozen=True)
class Polled:
    """A table that refreshes itself (``partials/_polled.html``): its element id, the URL
    that renders it again, the template of its content, and whether it still changes."""

    id: str
    url: str
    template: str
    active: bool


def poll_response(
    request, done: bool, context: dict, *, template: str = "partials/_polled.html"
) -> HttpResponse:
    """The polled part again; once ``done`` (nothing queued, running or pending), htmx is
    told to stop polling (django-htmx's 286), still with the final content to show.

    ``template`` is ``partials/_polled.html`` (a table, ``context["poll"]``), or a fragment
    that polls itself the same way (a chart version's files).
    """
    content = render_to_string(template, context, request)
    if done and request.htmx:
        return HttpResponseStopPolling(content)
    return HttpResponse(content)


# --- the generic object views -------------------------------------------------------------


class ObjectView(AdminRequiredMixin, View):
    """What the list, edit and delete views of one model share: its names and URLs."""

    model: type[models.Model]
    # The screen's name in the menu and breadcrumbs; default: the model's plural name.
    screen_title: str = ""

    def url_name(self, action: str) -> str:
        namespace = self.request.resolver_match.namespace
        return f"{namespace}:{self.model._meta.model_name}_{action}"

    def url_of(self, action: str, *args) -> str:
        """The URL of another screen of this model ("" if it has none)."""
        try:
            return reverse(self.url_name(action), args=args)
        except NoReverseMatch:
            return ""

    def has_url(self, action: str) -> bool:
        # Object URLs take a primary key: try one, the name is all that matters here.
        return bool(self.url_of(action) or self.url_of(action, 0))

    def screen_context(self) -> dict:
        meta = self.model._meta
        # A list an operator may see (to start work from it) is read-only for them.
        changes = roles.allows(self.request.user, roles.ADMIN)
        return {
            "verbose_name": meta.verbose_name,
            "verbose_name_plural": meta.verbose_name_plural,
            "screen_title": self.screen_title or capfirst(meta.verbose_name_plural),
            "list_url": self.url_of("list"),
            "add_url": self.url_of("add") if changes else "",
            "add_label": f"Add {meta.verbose_name}",
        }


class ObjectListView(ObjectView):
    queryset: models.QuerySet
    template_name: str

    def get_queryset(self):
        return self.queryset.all()

    def get_context(self, objects) -> dict:
        return {}

    def changes(self, action: str) -> bool:
        """Whether the list links to ``action`` (edit, delete): it has one, for admins."""
        return self.has_url(action) and roles.allows(self.request.user, roles.ADMIN)

    def get(self, request):
        objects = self.get_queryset()
        context = {
            "objects": objects,
            **self.screen_context(),
            # Names, not URLs: the list template reverses them for each row.
            "edit_url_name": self.url_name("edit") if self.changes("edit") else "",
            "delete_url_name": self.url_name("delete") if self.changes("delete") else "",
            **self.get_context(objects),
        }
        return render(request, self.template_name, context)


class ObjectEditView(ObjectView):
    """Add (no pk) or edit (pk) one object through a ModelForm.

    Subclasses may override ``save`` (the domain save), ``before_save`` (a last check that
    can refuse the save with a message, for example a connection test), ``success_url``
    (where a save goes) and ``check_connection`` (which adds "Test connection").
    """

    form_class: type
    template_name: str

    def get_object(self, pk):
        return get_object_or_404(self.model, pk=pk) if pk is not None else self.model()

    def get_form(self, request, obj, data=None, files=None, initial=None):
        return self.form_class(data=data, files=files, instance=obj, initial=initial or {})

    @property
    def can_test_connection(self) -> bool:
        return type(self).check_connection is not ObjectEditView.check_connection

    def context(self, request, form, obj, **extra) -> dict:
        editing = obj.pk is not None
        return {
            **self.screen_context(),
            "form": form,
            "object": obj,
            "editing": editing,
            "cancel_url": self.url_of("list"),
            "delete_url": self.url_of("delete", obj.pk) if editing else "",
            "can_test_connection": self.can_test_connection,
            **extra,
        }

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
        if handler is None or (action == "test" and not self.can_test_connection):
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
        """A last check that can refuse the save: by default, the connection check of a form
        that asks for one (:class:`config.forms.CheckedSaveForm`)."""
        needs_check = getattr(form, "needs_connection_check", None)
        if not self.can_test_connection or needs_check is None or not needs_check():
            return ""
        result = self.check_connection(form.instance)
        self.save_check = result
        if result.ok:
            return ""
        return (
            f"Nothing was saved: the connection check failed. {result.message} "
            f"If the dashboard cannot reach this {self.model._meta.verbose_name}, tick "
            "“Save without checking the connection” and save again."
        )

    # The result of the connection check the save ran (None: it ran none).
    save_check = None

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

    def success_url(self, saved) -> str:
        return self.url_of("list")

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
        url = self.success_url(saved)
        if request.htmx:
            return HttpResponseLocation(url)
        return HttpResponseRedirect(url)


class ObjectDeleteView(ObjectView):
    """A confirmation page showing the impact (from every app that loses something), then
    the delete."""

    template_name = "generic/confirm_delete.html"

    def impact(self, obj) -> list[str]:
        # Told by every app that owns data the object takes with it (config.impact).
        return impact_of(obj)

    def blocker(self, obj) -> str:
        return ""

    def render_confirmation(self, request, obj, blocker: str, status: int = 200):
        context = {
            **self.screen_context(),
            "object": obj,
            "object_type": obj._meta.verbose_name,
            "object_url": self.url_of("edit", obj.pk),
            "impact": self.impact(obj),
            "blocker": blocker,
            "cancel_url": self.url_of("list"),
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
        return HttpResponseRedirect(self.url_of("list"))


def signin_locked_out(request, response=None, credentials=None):
    """What a locked-out address sees instead of the sign-in page (django-axes)."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    context = {"failure_limit": settings.AXES_FAILURE_LIMIT, "minutes": minutes}
    return render(request, "registration/locked_out.html", context, status=429)


def permission_denied(request, exception=None):
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


class HomeView(View):
    """The start page: Global Configurations for admins, the Chart Store for others, and
    for a user without a role the page saying whom to ask."""

    required_role = "signed-in"

    def get(self, request):
        if roles.allows(request.user, roles.ADMIN):
            return HttpResponseRedirect(reverse("registries:registry_list"))
        if roles.allows(request.user, roles.VIEWER):
            return HttpResponseRedirect(reverse("charts:chart_list"))
        return no_role_page(request, status=200)


class AuditLogView(ObjectListView):
    """The audit log, newest first, 50 a page; filtered by object type, user and dates. A
    filter that means nothing is named on the page (400) and left out; the others apply."""

    model = AuditEntry
    queryset = AuditEntry.objects.all()
    template_name = "audit_log.html"
    screen_title = "Audit log"
    page_size = 50

    def get(self, request):
        entries = self.get_queryset()
        problems: list[str] = []
        types = sorted(set(AuditEntry.objects.values_list("object_type", flat=True)))
        kind = text_param(request, "type", limit=100)
        if kind and kind not in types:
            problems.append(f"No object type “{kind}” in the log: pick one from the list.")
        elif kind:
            entries = entries.filter(object_type=kind)
        username = text_param(request, "user", limit=150)
        if username:
            entries = entries.filter(username=username)
        dates = {}
        for name in ("since", "until"):
            try:
                dates[name] = date_param(request, name)
            except ParamError as exc:
                problems.append(str(exc))
        since, until = dates.get("since"), dates.get("until")
        if since and until and since > until:
            problems.append("The start date is after the end date: nothing could match.")
        else:
            if since:
                entries = entries.filter(created_at__date__gte=since)
            if until:
                entries = entries.filter(created_at__date__lte=until)
        try:
            number = page_param(request)
        except ParamError as exc:
            problems.append(str(exc))
            number = 1
        page = Paginator(entries, self.page_size).get_page(number)
        rows = list(page)
        audit.show_changes(rows)
        context = {
            "objects": rows,
            "page": page,
            **self.screen_context(),
            "problems": problems,
            "types": types,
            "usernames": sorted(
                set(AuditEntry.objects.exclude(username="").values_list("username", flat=True))
            ),
            "filters": {
                "type": kind,
                "user": username,
                "since": since.isoformat() if since else "",
                "until": until.isoformat() if until else "",
            },
            "filtered": bool(kind or username or since or until),
        }
        return render(request, self.template_name, context, status=400 if problems else 200)


# --- the Roles screen (Global Configurations → Roles) --------------------------------


class RoleScreen:
    """Both kinds of roles share the one Roles page as their list."""

    screen_title = "Roles"

    def url_of(self, action: str, *args) -> str:
        if action == "list":
            return reverse("config:roles")
        return super().url_of(action, *args)  # type: ignore[misc]


class RoleListView(RoleScreen, ObjectListView):
    model = UserRole
    template_name = "roles.html"

    def get(self, request):
        grants = UserRole.objects.select_related("user")
        mappings = (
            GroupRole.objects.select_related("group")
            .annotate(member_count=Count("group__user"))
            .prefetch_related(
                Prefetch("push_registries", queryset=Registry.objects.order_by("name"))
            )
        )
        context = {
            **self.screen_context(),
            "require_role": settings.WHARF_REQUIRE_ROLE,
            "seeded": set(parse_role_groups(settings.WHARF_ROLE_GROUPS)),
            "grants": grants,
            "mappings": mappings,
            "group_add_url": reverse("config:grouprole_add"),
        }
        return render(request, self.template_name, context)


class UserRoleEditView(RoleScreen, ObjectEditView):
    model = UserRole
    form_class = UserRoleForm
    template_name = "roles_form.html"


class UserRoleDeleteView(RoleScreen, ObjectDeleteView):
    model = UserRole


class GroupRoleEditView(RoleScreen, ObjectEditView):
    model = GroupRole
    form_class = GroupRoleForm
    template_name = "roles_form.html"


class GroupRoleDeleteView(RoleScreen, ObjectDeleteView):
    model = GroupRole
