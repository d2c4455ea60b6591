"""The Chart Store's search and paging at catalogue scale (issue 16): an index on each
database (PostgreSQL trigram + full-text, SQLite FTS5), ranked results, keyset pages with
an opaque cursor, a capped count."""

from __future__ import annotations

import re

import pytest
from django.db import DatabaseError, connection
from django.urls import reverse

from charts import search
from charts.models import Chart, ChartSource, ChartVersion, HelmRepository
from tests.chartkit import helm_index
from tests.charts.helpers import helm_source, oci_registry, push_versions, source_of, sync, unique

pytestmark = pytest.mark.django_db

STORE = reverse("charts:chart_list")
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="PostgreSQL's indexes: run with DATABASE_URL=postgres://…",
)
sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's FTS5 table")


@pytest.fixture
def source() -> ChartSource:
    repository = HelmRepository.objects.create(name="team", url="https://charts.example.com/t")
    return ChartSource.objects.create(kind="helm", helm_repository=repository)


def chart(source, name: str, **fields) -> Chart:
    fields.setdefault("latest_version", "1.0.0")
    return Chart.objects.create(source=source, name=name, **fields)


def names(client, q: str = "", **params) -> list[str]:
    page = client.get(STORE, {"q": q, **params}).context["page"]
    return [c.name for c in page.object_list]


def all_pages(client, params: dict, *, between=None) -> list[str]:
    """Every chart name, following the Next links; ``between(n)`` runs after page n."""
    seen, cursor, number = [], "", 0
    while True:
        response = client.get(STORE, {**params, "cursor": cursor} if cursor else params)
        page = response.context["page"]
        seen += [c.name for c in page.object_list]
        number += 1
        if between:
            between(number)
        if not page.next_cursor:
            return seen
        assert f"cursor={page.next_cursor}" in response.content.decode()
        cursor = page.next_cursor


# --- ranking and matching ---------------------------------------------------------------


def test_the_exact_name_comes_first_then_names_starting_with_it_then_the_rest(user_client, source):
    chart(source, "a-redis-exporter", description="Exports metrics")
    chart(source, "cache", description="Works with Redis and memcached")
    chart(source, "redis-cluster")
    chart(source, "redis")
    chart(source, "nginx")
    assert names(user_client, "redis") == ["redis", "redis-cluster", "a-redis-exporter", "cache"]
    assert names(user_client, "REDIS")[0] == "redis"


def test_every_word_must_match_somewhere_in_name_description_or_keywords(user_client, source):
    chart(source, "postgresql", description="Object-relational database", keywords="sql")
    chart(source, "mysql", description="Relational database")
    chart(source, "mongodb", description="Document database")
    assert sorted(names(user_client, "relational database")) == ["mysql", "postgresql"]
    assert names(user_client, "gres") == ["postgresql"]  # a substring inside a word
    assert sorted(names(user_client, "sql")) == ["mysql", "postgresql"]  # in both names
    assert names(user_client, "db document") == ["mongodb"]  # a two-letter word too


def test_search_keeps_the_source_filter_and_hides_inactive_sources(user_client, source):
    other = ChartSource.objects.create(
        kind="helm", helm_repository=HelmRepository.objects.create(name="o", url="https://o.ex")
    )
    chart(source, "redis")
    chart(other, "redis-ha")
    assert names(user_client, "redis", source=other.pk) == ["redis-ha"]
    HelmRepository.objects.filter(name="o").update(active=False)
    assert names(user_client, "redis") == ["redis"]


def test_special_characters_are_searched_for_as_text(user_client, source):
    chart(source, "under_score", description='100% "quoted"')
    chart(source, "underscore")
    assert names(user_client, "r_s") == ["under_score"]
    assert names(user_client, "100%") == ["under_score"]
    assert names(user_client, '"quoted"') == ["under_score"]
    assert names(user_client, "%") == ["under_score"]


@postgresql_only
def test_a_typo_in_a_name_still_finds_the_chart_on_postgresql(user_client, source):
    chart(source, "postgresql", description="Object-relational database")
    chart(source, "redis")
    assert names(user_client, "postgrsql") == ["postgresql"]
    assert names(user_client, "postgresql") == ["postgresql"]


@postgresql_only
def test_full_text_finds_other_forms_of_a_word_on_postgresql(user_client, source):
    chart(source, "loki", description="Aggregates logs from every pod")
    chart(source, "redis")
    assert names(user_client, "aggregating") == ["loki"]


@postgresql_only
def test_the_search_reads_the_indexes_not_the_whole_table_on_postgresql(source):
    # A store large enough, with statistics, for the plan to be the one of a real store.
    Chart.objects.bulk_create(
        [Chart(source=source, name=f"chart-{i}", latest_version="1", description=f"n {i}")
         for i in range(5000)], batch_size=1000,
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE charts_chart")
    for words, typos in (
        (["database"], False),
        (["postgrsql", "db"], False),
        (["redis", "cluster"], False),
        (["postgrsql"], True),
    ):
        sql, params = search._postgresql_search(
            " ".join(words), words, [source.pk], "after", None, typos=typos
        )
        # As the store runs it (the planner may not fall back to reading the table).
        with search._planned_for_indexes() as cursor:
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "Seq Scan on charts_chart" not in plan, plan
        if typos:
            assert "chart_name_trgm" in plan, plan
        else:
            assert "chart_search_trgm" in plan and "chart_search_fts" in plan, plan
            assert "chart_lower_name" in plan, plan  # the exact-name lookup


@sqlite_only
def test_the_search_reads_the_fts5_table_on_sqlite(source):
    chart(source, "redis")
    sql, params = search._sqlite_search("redis", ["redis"], [source.pk], "after", None)
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        plan = "\n".join(str(row[-1]) for row in cursor.fetchall())
    assert re.search(r"SCAN charts_chart_fts VIRTUAL TABLE INDEX", plan), plan
    assert "USING INDEX chart_lower_name" in plan, plan


# --- the index stays right, whatever writes the charts ----------------------------------


def fts_is_consistent() -> bool:
    """SQLite: FTS5's own check that the index matches ``charts_chart``, row for row."""
    if connection.vendor != "sqlite":
        return True
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO charts_chart_fts(charts_chart_fts, rank) VALUES ('integrity-check', 1)"
            )
    except DatabaseError:
        return False
    return True


def test_the_index_follows_bulk_create_bulk_update_update_and_delete(user_client, source):
    Chart.objects.bulk_create(
        [Chart(source=source, name=f"bulk-{i}", latest_version="1") for i in range(3)]
    )
    assert names(user_client, "bulk") == ["bulk-0", "bulk-1", "bulk-2"]
    charts = list(Chart.objects.filter(name__startswith="bulk"))
    for c in charts:
        c.description = "now about zebras"
    Chart.objects.bulk_update(charts, ["description"])
    assert names(user_client, "zebras") == ["bulk-0", "bulk-1", "bulk-2"]
    Chart.objects.filter(name="bulk-1").update(name="renamed", keywords="okapi")
    assert names(user_client, "okapi") == ["renamed"]
    assert names(user_client, "bulk") == ["bulk-0", "bulk-2"]
    Chart.objects.filter(name="bulk-0").delete()
    assert names(user_client, "zebras") == ["bulk-2", "renamed"]
    assert fts_is_consistent()
    source.helm_repository.delete()  # cascades to the source and its charts
    assert names(user_client, "zebras") == []
    assert fts_is_consistent()


def test_the_index_follows_a_helm_import_and_its_updates(user_client, helm_repo):
    helm_repo.write_index(helm_index([
        {"name": "alpha", "version": "1.0.0", "description": "first words"},
        {"name": "beta", "version": "1.0.0", "description": "first words", "keywords": ["kw"]},
    ]))  # fmt: skip
    source = helm_source(helm_repo)
    sync(source)
    assert names(user_client, "first") == ["alpha", "beta"]
    helm_repo.write_index(helm_index([
        {"name": "alpha", "version": "1.0.0", "description": "first words"},
        {"name": "alpha", "version": "2.0.0", "description": "second release"},
    ]))  # fmt: skip
    sync(source)
    assert names(user_client, "second") == ["alpha"]  # the latest version's description
    assert names(user_client, "first") == []  # alpha moved on, beta left the index
    assert fts_is_consistent()


def test_the_index_follows_an_oci_sync(user_client, chart_registry):
    repo = unique("charts/search")
    push_versions(chart_registry, repo, "searchable-app", ["1.0.0"])
    source = source_of(oci_registry(chart_registry, [repo]), repo)
    sync(source)
    assert names(user_client, "searchable") == ["searchable-app"]
    assert fts_is_consistent()


@sqlite_only
def test_a_migration_that_rebuilds_the_chart_table_gets_its_triggers_back(user_client, source):
    with connection.cursor() as cursor:  # what SQLite's table rebuild does to them
        for name in search.SQLITE_TRIGGERS:
            cursor.execute(f"DROP TRIGGER {name}")
    chart(source, "written-meanwhile")  # no trigger: the FTS table misses it
    assert search.repair_sqlite_search() is True
    assert names(user_client, "meanwhile") == ["written-meanwhile"]
    chart(source, "written-after")
    assert names(user_client, "written") == ["written-after", "written-meanwhile"]
    assert search.repair_sqlite_search() is False
    assert fts_is_consistent()


@postgresql_only
def test_the_migration_says_what_to_run_when_the_role_may_not_create_pg_trgm(db):
    from importlib import import_module

    from django.db.backends.postgresql.base import DatabaseWrapper

    migration = import_module("charts.migrations.0012_store_search_indexes")
    database, role = f"{connection.settings_dict['NAME']}_noext", "wharf_no_extension"
    admin = DatabaseWrapper({**connection.settings_dict, "NAME": "postgres"})
    with admin.cursor() as cursor:  # autocommit: seen by the role's own connection
        cursor.execute(f"SELECT 1 FROM pg_roles WHERE rolname = '{role}'")
        if not cursor.fetchone():
            cursor.execute(f"CREATE ROLE {role} LOGIN")
        cursor.execute(f"DROP DATABASE IF EXISTS {database}")
        cursor.execute(f"CREATE DATABASE {database}")
    try:
        other = DatabaseWrapper({**connection.settings_dict, "NAME": database, "USER": role})
        other.set_autocommit(False)  # in a transaction, as a migration runs
        with pytest.raises(RuntimeError) as refused, other.schema_editor(atomic=False) as editor:
            migration.ensure_pg_trgm(editor)
        assert "CREATE EXTENSION IF NOT EXISTS pg_trgm" in str(refused.value)
        assert database in str(refused.value)
        with other.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'")
            assert cursor.fetchone() == (0,)  # and the transaction is still usable
        other.rollback()
        other.close()
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.close()


# --- keyset pages -----------------------------------------------------------------------


def test_pages_have_no_duplicate_and_no_gap_while_charts_are_added(user_client, source):
    for i in range(0, 120, 2):
        chart(source, f"chart-{i:03d}")
    original = [f"chart-{i:03d}" for i in range(0, 120, 2)]

    def add_some(page_number: int) -> None:  # before and after where the reader is
        chart(source, f"chart-{page_number * 2 - 1:03d}")
        chart(source, f"chart-{121 - page_number * 2:03d}")
        chart(source, f"aaa-{page_number}")  # before every page already read

    seen = all_pages(user_client, {}, between=add_some)
    assert len(seen) == len(set(seen))
    assert seen == sorted(seen)
    assert set(original) <= set(seen)
    assert not any(name.startswith("aaa") for name in seen)  # they sort before the cursor


def test_search_results_page_through_without_duplicates_in_rank_order(user_client, source):
    chart(source, "app")
    for i in range(30):
        chart(source, f"app-{i:02d}")
        chart(source, f"other-{i:02d}", description="an app")
    seen = all_pages(user_client, {"q": "app"})
    assert seen == [
        "app",
        *[f"app-{i:02d}" for i in range(30)],
        *[f"other-{i:02d}" for i in range(30)],
    ]


def test_previous_goes_back_to_the_page_before(user_client, source):
    for i in range(60):
        chart(source, f"chart-{i:02d}")
    first = user_client.get(STORE).context["page"]
    assert not first.previous_cursor
    second = user_client.get(STORE, {"cursor": first.next_cursor}).context["page"]
    third = user_client.get(STORE, {"cursor": second.next_cursor}).context["page"]
    assert [c.name for c in third.object_list] == [f"chart-{i:02d}" for i in range(48, 60)]
    assert not third.next_cursor
    back = user_client.get(STORE, {"cursor": third.previous_cursor}).context["page"]
    assert [c.name for c in back.object_list] == [c.name for c in second.object_list]
    back = user_client.get(STORE, {"cursor": back.previous_cursor})
    assert [c.name for c in back.context["page"].object_list] == [c.name for c in first.object_list]
    assert not back.context["page"].previous_cursor
    assert 'rel="first"' not in back.content.decode()


def test_a_page_past_the_end_is_empty_with_a_way_back(user_client, source):
    for i in range(30):
        chart(source, f"chart-{i:02d}")
    cursor = user_client.get(STORE).context["page"].next_cursor
    Chart.objects.filter(name__gte="chart-24").delete()
    response = user_client.get(STORE, {"cursor": cursor})
    assert response.status_code == 200
    assert "No more charts past this point" in response.content.decode()


def test_the_count_is_capped_and_says_so(user_client, source, monkeypatch):
    for i in range(8):
        chart(source, f"chart-{i}", description="common words")
    assert "8 charts" in user_client.get(STORE).content.decode()
    monkeypatch.setattr(search, "COUNT_CAP", 5)
    monkeypatch.setattr(search, "SEARCH_CANDIDATES", 5)
    html = user_client.get(STORE).content.decode()
    assert "5+ charts" in html
    html = user_client.get(STORE, {"q": "common"}).content.decode()
    assert "5+ charts matching “common”" in html
    assert "ranked among the first 5 found" in html


@pytest.mark.parametrize(
    "cursor",
    [
        "x",
        "%%%",
        search.encode_cursor("search", [0, 0, "a", 1]),  # a search's link on the listing
        search.encode_cursor("list", ["a", "1"]),  # the id is no number
        search.encode_cursor("list", ["a", 2**70]),
        search.encode_cursor("list", ["a\x00", 1]),
        search.encode_cursor("list", ["a", 1, 2]),
        "WyJsaXN0IiwieiIsWyJhIiwxXV0",  # direction "z"
    ],
)
def test_a_bad_cursor_shows_the_first_page_with_a_message(user_client, source, cursor):
    for i in range(30):
        chart(source, f"chart-{i:02d}")
    response = user_client.get(STORE, {"cursor": cursor})
    assert response.status_code == 200
    html = response.content.decode()
    assert "This page link" in html
    assert response.context["page"].object_list[0].name == "chart-00"


# --- the chart page ---------------------------------------------------------------------


def test_the_chart_page_lists_a_bounded_number_of_versions(user_client, source, monkeypatch):
    monkeypatch.setattr("charts.views.VERSIONS_LISTED", 3)
    c = chart(source, "big", latest_version="1.5.0", version_count=6)
    for minor in range(6):
        ChartVersion.objects.create(
            chart=c, version=f"1.{minor}.0", fingerprint=str(minor),
            created=f"2024-01-0{minor + 1}T00:00:00Z",
        )  # fmt: skip
    response = user_client.get(reverse("charts:chart_detail", args=[c.pk]))
    assert [v.version for v in response.context["versions"]] == ["1.5.0", "1.4.0", "1.3.0"]
    assert "3 older ones not listed" in response.content.decode()
    older = user_client.get(reverse("charts:chart_detail", args=[c.pk]), {"version": "1.0.0"})
    assert older.context["selected"].version == "1.0.0"  # a link to an old version works
