"""The audit log: names not ids, no internal bookkeeping, 50 a page, filters that explain a
bad value, and who ran a management command."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from clusters.models import Cluster, RegistryAccess
from config import audit
from config.models import AuditEntry
from tests.clusters.factories import ClusterFactory
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db

URL = reverse("config:auditentry_list")


def entry(**fields) -> AuditEntry:
    fields.setdefault("action", AuditEntry.Action.UPDATE)
    fields.setdefault("object_type", "cluster")
    fields.setdefault("object_repr", "prod")
    return AuditEntry.objects.create(**fields)


def test_a_foreign_key_change_is_logged_and_shown_by_name(admin_client):
    cluster = ClusterFactory(name="prod")
    data = {"name": "prod-web", "cluster": cluster.pk, "namespace": "web", "_action": "save"}
    admin_client.post(reverse("clusters:environment_add"), data)

    logged = AuditEntry.objects.get(object_type="environment")
    html = admin_client.get(URL).content.decode()

    assert logged.changes["cluster"] == [None, "prod"]
    assert "<code>cluster</code>: — → prod" in html


def test_ids_older_entries_logged_for_foreign_keys_are_shown_as_names(admin_client):
    cluster = ClusterFactory(name="prod")
    entry(
        object_type="environment", object_repr="prod-web", changes={"cluster": [None, cluster.pk]}
    )
    entry(object_type="environment", object_repr="gone-web", changes={"cluster": [None, 999]})

    html = admin_client.get(URL).content.decode()

    assert "<code>cluster</code>: — → prod<" in html
    assert "<code>cluster</code>: — → cluster 999 (deleted)<" in html


def test_bookkeeping_fields_are_not_logged():
    cluster = ClusterFactory(name="prod")
    rule = RegistryAccess.objects.create(registry=RegistryFactory(), ecr_token="t0ken")

    assert not {
        "lease_owner", "lease_expires_at", "last_reconciled_at", "health", "health_message",
        "health_checked_at",
    } & set(audit.snapshot(cluster))  # fmt: skip
    assert not {"ecr_token", "ecr_token_expires_at"} & set(audit.snapshot(rule))


def test_bookkeeping_fields_of_older_entries_are_not_shown(admin_client):
    entry(changes={"lease_owner": ["", "worker-1"], "api_url": ["https://a", "https://b"]})
    entry(
        object_type="registry credential access",
        changes={"ecr_token": ["changed"], "mode": ["exclude", "include"]},
    )

    html = admin_client.get(URL).content.decode()

    assert "api_url" in html and "mode" in html
    assert "lease_owner" not in html and "worker-1" not in html
    assert "ecr_token" not in html


def test_the_log_shows_50_entries_a_page(admin_client):
    for number in range(120):
        entry(object_repr=f"cluster-{number:03d}")

    first = admin_client.get(URL)
    last = admin_client.get(URL, {"page": "3"})

    assert len(first.context["objects"]) == 50
    assert "cluster-119" in first.content.decode()
    assert len(last.context["objects"]) == 20
    assert "cluster-000" in last.content.decode()
    assert "Page 1 of 3" in first.content.decode()


def test_the_log_filters_by_object_type_user_and_date(admin_client, superuser):
    old = entry(object_repr="old-one", username="alice")
    AuditEntry.objects.filter(pk=old.pk).update(
        created_at=timezone.make_aware(dt.datetime(2026, 1, 5, 12))
    )
    entry(object_type="registry", object_repr="acme", username="alice")
    entry(object_repr="bobs", username="bob")

    by_type = admin_client.get(URL, {"type": "registry"}).context["objects"]
    by_user = admin_client.get(URL, {"user": "bob"}).context["objects"]
    by_date = admin_client.get(URL, {"since": "2026-01-01", "until": "2026-01-31"})

    assert [e.object_repr for e in by_type] == ["acme"]
    assert [e.object_repr for e in by_user] == ["bobs"]
    assert [e.object_repr for e in by_date.context["objects"]] == ["old-one"]
    assert 'value="2026-01-01"' in by_date.content.decode()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"page": "abc"}, "“abc” is not a page number"),
        ({"page": "99999999999999999999999"}, "is not a page number"),
        ({"since": "2026-13-01"}, "“2026-13-01” is not a date: use YYYY-MM-DD."),
        ({"until": "yesterday"}, "“yesterday” is not a date"),
        ({"type": "spaceship"}, "No object type “spaceship” in the log"),
        ({"since": "2026-02-01", "until": "2026-01-01"}, "The start date is after the end date"),
    ],
)
def test_a_bad_filter_says_what_is_wrong_instead_of_failing(admin_client, params, message):
    entry()

    response = admin_client.get(URL, params)

    assert response.status_code == 400
    assert message in response.content.decode()


def test_a_page_past_the_end_shows_the_last_page(admin_client):
    entry(object_repr="only")

    response = admin_client.get(URL, {"page": "7"})

    assert response.status_code == 200
    assert "only" in response.content.decode()


def test_the_log_page_runs_a_fixed_number_of_queries(admin_client, django_assert_max_num_queries):
    for number in range(60):
        entry(object_repr=f"c{number}", changes={"cluster": [None, "prod"]})
    with django_assert_max_num_queries(8):
        admin_client.get(URL)


def test_acting_as_names_who_ran_a_command_when_no_user_did():
    cluster = ClusterFactory(name="prod")

    with audit.acting_as("push_chart by os:ci"):
        logged = audit.record(None, AuditEntry.Action.UPDATE, cluster, {"active": [True, False]})

    assert logged.username == "push_chart by os:ci"
    assert str(logged).startswith("push_chart by os:ci ")
    assert Cluster.objects.count() == 1
