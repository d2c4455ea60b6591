"""/healthz and /readyz: for anyone, fast, and saying only ok / not ok and which check."""

from __future__ import annotations

import pytest
from django.db.migrations.executor import MigrationExecutor

from config import health

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _migrations_unknown(monkeypatch):
    monkeypatch.setattr(health, "_migrated", False)  # each test asks afresh


def test_healthz_answers_anyone_without_signing_in(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ok_when_database_migrations_and_broker_are(client, settings):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "broker": "ok"},
    }


@pytest.mark.services
def test_readyz_names_an_unreachable_broker_and_nothing_more(client, monkeypatch):
    from config.celery import app

    # A Redis URL on a closed port: the probe must fail fast and say only "broker".
    monkeypatch.setitem(app.conf, "broker_url", "redis://127.0.0.1:9/0")
    monkeypatch.setitem(app.conf, "broker_transport_options", {})

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body == {
        "status": "not ok",
        "checks": {"database": "ok", "migrations": "ok", "broker": "not ok"},
    }
    assert "127.0.0.1" not in response.content.decode()


def test_readyz_names_unapplied_migrations(client, monkeypatch):
    monkeypatch.setattr(MigrationExecutor, "migration_plan", lambda self, targets: [("x", False)])

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == "not ok"


def test_readyz_with_no_database_says_so(client, monkeypatch):
    monkeypatch.setattr(health, "database_ok", lambda: False)
    monkeypatch.setitem(health.CHECKS, "database", health.database_ok)

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "not ok", "migrations": "not ok"}


def test_the_probes_take_no_post(client):
    assert client.post("/healthz").status_code == 405
    assert client.post("/readyz").status_code == 405
