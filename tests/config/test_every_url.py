"""Every URL of Wharf's apps, found by walking the URL resolver, with GET and POST, for
anonymous, a viewer, an operator, an admin, a superuser, and a signed-in user with no role
(``WHARF_REQUIRE_ROLE`` on).

What each URL expects comes from its view (``required_role``: "public", "probe",
"signed-in" or one of config/roles.py's roles, see config/views.py): a new screen is covered
as soon as it has a URL, and a view that declares nothing fails here. Only the objects its
path arguments point at are written down, once per path prefix (``OWNERS``). Every link and
form on a page a role sees leads somewhere that role may go (no button it may not use).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from charts.models import Chart, ChartSource, ChartVersion, HelmRepository
from clusters.models import PullSecretTarget
from config import roles, views
from config.models import GroupRole, UserRole
from tests.clusters.factories import EnvironmentFactory, inject
from tests.factories import RegistryFactory
from trust.models import SigningKey

pytestmark = pytest.mark.django_db

# What a view may declare: config/roles.py's roles, or who needs none of them.
DECLARED = ("public", "probe", "signed-in", *roles.ROLES)
WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
# What a user allowed on a URL may get: a page, a redirect, "not this method", a refused
# change (409, a rule or a running job), an htmx form error (422). Never a 500.
ALLOWED_STATUSES = {200, 302, 405, 409, 422}
RANK = {role: rank for rank, role in enumerate(roles.ROLES, start=1)}
# The two steps of single sign-on (the button, the provider's way back): without an issuer
# configured, as here, they answer 404 with a message (tests/config/test_sign_in_oidc.py
# signs in through a real provider), and 405 to the other method.
SSO_STEPS = {"oidc_begin", "oidc_complete"}
SSO_OFF_STATUSES = {404, 405}


@dataclass(frozen=True)
class Screen:
    route: str  # "global/registries/<int:pk>/"
    name: str  # "registries:registry_edit"
    view: type | object
    role: str | None

    def __str__(self) -> str:
        return self.name


def walk(patterns, prefix: str = "", namespace: str = ""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":  # Django's own, with its own permissions
                continue
            if pattern.namespace == "api":  # 401s, not sign-in redirects: tests/api walks it
                continue
            inner = ":".join(n for n in (namespace, pattern.namespace) if n)
            yield from walk(pattern.url_patterns, route, inner)
        elif isinstance(pattern, URLPattern):
            callback = pattern.callback
            view = getattr(callback, "view_class", callback)
            name = ":".join(n for n in (namespace, pattern.name) if n)
            yield Screen(route, name, view, getattr(view, "required_role", None))


SCREENS = list(walk(get_resolver().url_patterns))

# Which fixture object each path argument belongs to, by the route up to it.
OWNERS = {
    "charts/<int:pk>/versions/<int:version_pk>/": "version",
    "global/registries/<int:pk>/": "registry",
    "global/chart-repositories/<int:pk>/": "helm_repository",
    "global/chart-sources/<int:pk>/": "source",
    "charts/<int:pk>/": "chart",
    "global/clusters/<int:pk>/": "cluster",
    "global/environments/<int:pk>/": "environment",
    "global/targets/<int:pk>/": "target",
    "global/signing-keys/<int:pk>/": "signing_key",
    "global/roles/users/<int:pk>/": "user_role",
    "global/roles/groups/<int:pk>/": "group_role",
}


@pytest.fixture
def objects(django_user_model):
    """One of everything a path can point at, linked as the screens expect."""
    registry = RegistryFactory(is_default=True, push_helm=True)
    repository = HelmRepository.objects.create(name="team", url="http://127.0.0.1:9/team")
    source = ChartSource.objects.create(kind="helm", helm_repository=repository)
    chart = Chart.objects.create(source=source, name="web", latest_version="1.0.0")
    version = ChartVersion.objects.create(chart=chart, version="1.0.0", fingerprint="1")
    environment = EnvironmentFactory(cluster__api_url="http://127.0.0.1:9")
    inject(registry, clusters=[environment.cluster])
    target = PullSecretTarget.objects.create(
        cluster=environment.cluster, namespace=environment.namespace, registry=registry
    )
    signing_key = SigningKey.objects.create(
        name="release", kind=SigningKey.Kind.COSIGN, public_key="-", fingerprint="ab" * 32
    )
    user_role = UserRole.objects.create(
        user=django_user_model.objects.create_user("granted"), role=roles.VIEWER
    )
    group_role = GroupRole.objects.create(
        group=Group.objects.create(name="deployers"), role=roles.OPERATOR
    )
    return {
        "signing_key": signing_key,
        "user_role": user_role,
        "group_role": group_role,
        "registry": registry,
        "helm_repository": repository,
        "source": source,
        "chart": chart,
        "version": version,
        "cluster": environment.cluster,
        "environment": environment,
        "target": target,
    }


def url_of(screen: Screen, objects) -> str:
    args = []
    for argument in re.finditer(r"<[^>]+>", screen.route):
        prefix = screen.route[: argument.end()] + "/"
        owner = OWNERS.get(prefix)
        assert owner, f"{prefix}: say in OWNERS which object this path argument is"
        args.append(objects[owner].pk)
    return reverse(screen.name, args=args)


def assert_strict_csp(response) -> None:
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def request(client, method: str, url: str, broker, *, refused: bool = False):
    """GET (or a request the user is refused) must write nothing and send nothing."""
    sent_before = len(broker.messages)
    with CaptureQueriesContext(connection) as queries:
        response = getattr(client, method)(url)
    if method == "get" or refused:
        writes = [q["sql"] for q in queries.captured_queries if WRITES.match(q["sql"])]
        assert writes == [], f"{method.upper()} {url} wrote to the database"
        assert broker.messages[sent_before:] == [], f"{method.upper()} {url} sent a task"
    assert_strict_csp(response)
    return response


def test_every_wharf_view_declares_who_may_use_it():
    undeclared = [f"{s.route} ({s.name})" for s in SCREENS if s.role not in DECLARED]
    assert undeclared == [], "set required_role (or use a RoleRequiredMixin) on these views"


def test_the_walk_finds_every_app_and_skips_the_admin():
    names = {s.name for s in SCREENS}
    assert {"registries:registry_list", "charts:chart_list", "clusters:cluster_list"} <= names
    assert {"config:auditentry_list", "config:roles", "login", "logout", "home"} <= names
    assert not any(s.route.startswith("admin/") for s in SCREENS)


def test_only_the_sign_in_page_and_the_probes_are_public():
    public = [s.name for s in SCREENS if s.role == "public"]
    assert public == ["login", "oidc_begin", "oidc_complete"]
    assert sorted(s.name for s in SCREENS if s.role == "probe") == ["healthz", "metrics", "readyz"]
    assert sorted(s.name for s in SCREENS if s.role == "signed-in") == ["home", "logout"]


def test_operators_get_exactly_the_actions_and_the_pages_they_start_them_from():
    operator = sorted(s.name for s in SCREENS if s.role == roles.OPERATOR)
    assert operator == [
        "charts:chartpush_add",
        "charts:chartpush_list",
        "charts:chartsource_detail",
        "charts:chartsource_list",
        "charts:chartsource_runs",
        "charts:chartsource_sync",
        "clusters:cluster_list",
        "clusters:cluster_pulltest",
        "clusters:cluster_reconcile",
        "clusters:pullsecrettarget_pulltest",
        "registries:registry_list",
    ]


ALL = [pytest.param(s, m, id=f"{m}-{s.name}") for s in SCREENS for m in ("get", "post")]


@pytest.mark.parametrize(("screen", "method"), ALL)
def test_anonymous_is_sent_to_sign_in(client, objects, broker, screen, method):
    refused = screen.role not in ("public", "probe")
    response = request(client, method, url_of(screen, objects), broker, refused=refused)

    if screen.role == "probe":
        assert response.status_code == (200 if method == "get" else 405)
    elif screen.name in SSO_STEPS:
        assert response.status_code in SSO_OFF_STATUSES
    elif screen.role == "public":
        assert response.status_code == 200
    else:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


@pytest.fixture
def role_client(request, client, django_user_model, settings):
    """A client signed in as a user who holds ``request.param``: a role granted by name
    ("viewer", "operator", "admin"), "superuser", or "no-role" (with WHARF_REQUIRE_ROLE)."""
    held = request.param
    if held == "superuser":
        user = django_user_model.objects.create_superuser("root", password="x" * 20)
    else:
        user = django_user_model.objects.create_user(f"as-{held}", password="x" * 20)
    if held in roles.ROLES:
        UserRole.objects.create(user=user, role=held)
    settings.WHARF_REQUIRE_ROLE = held == "no-role"
    client.force_login(user)
    client.held = held
    return client


HOLDERS = ("viewer", "operator", "admin", "superuser", "no-role")
EVERY_HOLDER = [
    pytest.param(holder, s, m, id=f"{holder}-{m}-{s.name}")
    for holder in HOLDERS
    for s in SCREENS
    for m in ("get", "post")
]


def may_use(held: str, screen_role: str) -> bool:
    if screen_role in ("public", "probe", "signed-in"):
        return True
    if held == "no-role":
        return False
    rank = RANK[roles.ADMIN] if held == "superuser" else RANK[held]
    return rank >= RANK[screen_role]


@pytest.mark.parametrize(
    ("role_client", "screen", "method"), EVERY_HOLDER, indirect=["role_client"]
)
def test_each_role_may_use_what_its_views_declare_and_gets_a_clear_403_elsewhere(
    role_client, objects, broker, screen, method
):
    allowed = may_use(role_client.held, screen.role)
    url = url_of(screen, objects)
    response = request(role_client, method, url, broker, refused=not allowed)

    if screen.role == "probe":
        assert response.status_code == (200 if method == "get" else 405)
    elif screen.name == "login":
        assert response.status_code in (200, 302)  # signed in already: sent on
    elif screen.name in SSO_STEPS:
        assert response.status_code in SSO_OFF_STATUSES
    elif not allowed and role_client.held == "no-role":
        assert response.status_code == 403
        assert "You have no role in Wharf yet" in response.content.decode()
    elif not allowed:
        assert response.status_code == 403
        assert views.DENIED[screen.role] in response.content.decode()
    else:
        assert response.status_code in ALLOWED_STATUSES, response.content[:300]
        if method == "get" and response.status_code == 405:
            # Only actions answer GET so: everything else is a page.
            assert screen.name.endswith(
                ("_sync", "_reconcile", "_pulltest", "_make_default", "_trust", "logout")
            )


def test_a_user_without_a_role_lands_on_the_page_that_says_whom_to_ask(
    client, django_user_model, superuser, settings
):
    settings.WHARF_REQUIRE_ROLE = True
    settings.WHARF_ROLE_CONTACT = ""
    client.force_login(django_user_model.objects.create_user("newcomer"))
    response = client.get(reverse("home"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "You have no role in Wharf yet" in html and "Ask <strong>root</strong>" in html
    assert reverse("charts:chart_list") not in html  # not even the Chart Store in the menu


LINK = re.compile(r'\b(?:href|action|hx-get|hx-post)="(/[^"#?]*)')


def links_on(html: str) -> set[str]:
    return {m for m in LINK.findall(html) if not m.startswith(("/static/", "/admin/"))}


@pytest.mark.parametrize("role_client", ["viewer", "operator", "no-role"], indirect=True)
def test_no_page_shows_a_link_or_button_its_user_may_not_use(role_client, objects):
    """Every page the role may open, and every link and form on it, resolved to its view:
    the role may use each one (no Edit, Delete, Manage or admin-only menu entry)."""
    from django.urls import resolve

    held = role_client.held
    offending = []
    for screen in SCREENS:
        if screen.role in ("probe", "public") or not may_use(held, screen.role):
            continue
        page = url_of(screen, objects)
        response = role_client.get(page)
        if response.status_code != 200:
            continue
        for link in links_on(response.content.decode()):
            view = resolve(link).func
            target = getattr(getattr(view, "view_class", view), "required_role", None)
            if target == "api":  # the API's own walk: tests/api/test_permissions.py
                continue
            if target is not None and not may_use(held, target):
                offending.append(f"{page} → {link} ({target})")
    assert offending == []


def test_no_page_shows_template_comments_or_tags(admin_client, objects):
    # Django's {# #} comments are one line only: a multi-line one is printed as text.
    for screen in SCREENS:
        html = admin_client.get(url_of(screen, objects)).content.decode()
        assert "{#" not in html and "{%" not in html and "{{" not in html, screen.name
