"""Fixtures shared by the whole suite.

The real outside servers (registries, token service, moto, tinyproxy, sshd, an OpenID
Connect provider, slapd) and the test CA live in ``tests/servers/``, loaded below as
plugins; ``bench/`` imports the same modules. What stays here: the users, the recording broker, and the per-test reset of learned
registry routes.
"""

import pytest

from tests.broker import SentTasks

# pytest takes plugins only from a top-level conftest such as this one.
# tests/servers/base.py is no plugin: it has no fixtures, the others import it.
pytest_plugins = [
    "tests.servers.tls",
    "tests.servers.registry",
    "tests.servers.tokens",
    "tests.servers.aws",
    "tests.servers.proxy",
    "tests.servers.ssh",
    "tests.servers.oidc",
    "tests.servers.ldap",
]


# =============================================================================
# Users: a superuser, a plain signed-in user (anonymous is the plain `client`)
# =============================================================================


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", password="root-password-1")


@pytest.fixture
def plain_user(django_user_model):
    return django_user_model.objects.create_user("viewer", password="viewer-password-1")


@pytest.fixture
def user_client(client, plain_user):
    client.force_login(plain_user)
    return client


# =============================================================================
# The broker: background work is recorded, and run by the test (tests/broker.py)
# =============================================================================


@pytest.fixture(autouse=True)
def broker(monkeypatch) -> SentTasks:
    """Every task Wharf sends lands here instead of a broker; ``broker.run_all()`` runs them."""
    from config.celery import app

    sent = SentTasks()
    monkeypatch.setattr(app, "send_task", sent.send_task)
    return sent


@pytest.fixture(autouse=True)
def _fresh_registry_routes():
    """Each test starts without what earlier tests' clients learned about a registry route
    (plain HTTP, Basic auth), so request counts and first-contact paths are the test's own."""
    from registries import budgets, oci

    oci._ROUTES.clear()
    budgets.forget()  # rate-limit budgets this process noted (registries/budgets.py)
    yield
    oci._ROUTES.clear()
    budgets.forget()
