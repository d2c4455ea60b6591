"""Every URL of Wharf's apps, found by walking the URL resolver, for anonymous, a plain
signed-in user and a superuser, with GET and POST.

What each URL expects comes from its view (``required_role``: "public", "user" or
"superuser", see config/views.py): a new screen is covered as soon as it has a URL, and a
view that declares nothing fails here. Only the objects its path arguments point at are
written down, once per path prefix (``OWNERS``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from charts.models import Chart, ChartSource, ChartVersion, HelmRepository
from clusters.models import PullSecretTarget
from tests.clusters.factories import EnvironmentFactory, inject
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db

ROLES = ("public", "probe", "user", "superuser")
WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
# What a superuser may get: a page, a redirect, "not this method", a refused change
# (409, a rule or a running job), an htmx form error (422). Never a 500.
SUPERUSER_STATUSES = {200, 302, 405, 409, 422}


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
}


@pytest.fixture
def objects():
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
    return {
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
    undeclared = [f"{s.route} ({s.name})" for s in SCREENS if s.role not in ROLES]
    assert undeclared == [], "set required_role (or use SuperuserRequiredMixin) on these views"


def test_the_walk_finds_every_app_and_skips_the_admin():
    names = {s.name for s in SCREENS}
    assert {"registries:registry_list", "charts:chart_list", "clusters:cluster_list"} <= names
    assert {"config:auditentry_list", "login", "logout", "home"} <= names
    assert not any(s.route.startswith("admin/") for s in SCREENS)


def test_only_the_sign_in_page_and_the_probes_are_public():
    assert [s.name for s in SCREENS if s.role == "public"] == ["login"]
    assert sorted(s.name for s in SCREENS if s.role == "probe") == ["healthz", "metrics", "readyz"]


ALL = [pytest.param(s, m, id=f"{m}-{s.name}") for s in SCREENS for m in ("get", "post")]


@pytest.mark.parametrize(("screen", "method"), ALL)
def test_anonymous_is_sent_to_sign_in(client, objects, broker, screen, method):
    refused = screen.role not in ("public", "probe")
    response = request(client, method, url_of(screen, objects), broker, refused=refused)

    if screen.role == "probe":
        assert response.status_code == (200 if method == "get" else 405)
    elif screen.role == "public":
        assert response.status_code == 200
    else:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(("screen", "method"), ALL)
def test_plain_user_gets_a_clear_403_on_global_configurations(
    user_client, objects, broker, screen, method
):
    refused = screen.role == "superuser"
    response = request(user_client, method, url_of(screen, objects), broker, refused=refused)

    if screen.role == "superuser":
        assert response.status_code == 403
        assert "Only superusers" in response.content.decode()
    elif screen.name == "login":
        assert response.status_code in (200, 302)  # signed in already: sent on
    else:
        # What every signed-in user may use (the Chart Store, a chart, sign out) works.
        assert response.status_code in (200, 302, 405), response.content[:300]


@pytest.mark.parametrize(("screen", "method"), ALL)
def test_superuser_is_never_shown_an_error_page(admin_client, objects, broker, screen, method):
    response = request(admin_client, method, url_of(screen, objects), broker)

    assert response.status_code in SUPERUSER_STATUSES, response.content[:300]
    if method == "get" and response.status_code == 405:
        # Only actions answer GET so: everything else is a page.
        assert screen.name.endswith(("_sync", "_reconcile", "_pulltest", "_make_default", "logout"))


def test_no_page_shows_template_comments_or_tags(admin_client, objects):
    # Django's {# #} comments are one line only: a multi-line one is printed as text.
    for screen in SCREENS:
        html = admin_client.get(url_of(screen, objects)).content.decode()
        assert "{#" not in html and "{%" not in html and "{{" not in html, screen.name
