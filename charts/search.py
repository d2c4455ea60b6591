"""The Chart Store's listing and search: one page of charts at a time, at any catalogue size.

Every query here costs the same at 5,000 charts as at 50,000 (issue 16):

- the plain listing is ordered by ``(name, id)`` and paged by keyset (an opaque cursor that
  carries the last row's key, read through the ``(name, id)`` index), never by OFFSET;
- the number of charts is counted up to :data:`COUNT_CAP` only ("1,000+ charts");
- a search reads an index: on PostgreSQL a trigram index (pg_trgm) on name, description
  and keywords for substrings (every word must appear, as before) and one on the name for
  typos, plus full-text search (``to_tsvector('english', …)``) for ranking and word forms;
  on SQLite an FTS5 table with the trigram tokenizer, kept in step with ``charts_chart``
  by triggers (so ``bulk_create``/``bulk_update``, ``QuerySet.update`` and deletes all
  keep it right). See migration ``0012_store_search_indexes``.

A search gathers at most :data:`SEARCH_CANDIDATES` matching charts (plus the charts whose
name is exactly the query, always) and ranks those: exact name, name starting with the
query, every word in the name, the other matches (by full-text rank), then typo-only
matches; by name within each rank. When more charts match, the page says "200+" and the
user narrows the search, as on any large catalogue.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import BooleanField, F
from django.db.models.expressions import RawSQL

from charts.models import Chart, TrustStatus

PAGE_SIZE = 24
COUNT_CAP = 1000
# A search ranks at most this many of the charts it finds (8 pages; the exact name always):
# a broad word costs the same at any catalogue size, and the page says to narrow it.
SEARCH_CANDIDATES = 200
MAX_WORDS = 5
# Trigram indexes (and FTS5's trigram tokenizer) find substrings of three characters or more.
MIN_INDEXED_WORD = 3
# Typos are looked for only in words long enough for a trigram match to mean something.
MIN_TYPO_WORD = 4
TYPO_BUCKET = 4


class BadCursor(ValueError):
    """A page link (cursor) that is no link this store made; ``str(e)`` is for the page."""


@dataclass
class StorePage:
    object_list: list[Chart]
    count: int  # exact when not ``capped``
    capped: bool
    next_cursor: str = ""
    previous_cursor: str = ""
    paged: bool = False  # reached through a page link (an empty one is past the end)

    @property
    def count_label(self) -> str:
        return f"{self.count:,}+" if self.capped else f"{self.count:,}"

    @property
    def has_other_pages(self) -> bool:
        return bool(self.next_cursor or self.previous_cursor)


# --- cursors ----------------------------------------------------------------------------

LIST_KEY = (str, int)  # (name, id)
SEARCH_KEY = (int, int, str, int)  # (rank bucket, rank within it, name, id)


def encode_cursor(kind: str, key: Sequence, direction: str = "after") -> str:
    text = json.dumps([kind, direction[0], list(key)], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(value: str, kind: str) -> tuple[str, tuple]:
    """``(direction, key)`` from a cursor made by :func:`encode_cursor` for ``kind``."""
    shape = LIST_KEY if kind == "list" else SEARCH_KEY
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        made_for, direction, key = json.loads(raw)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise BadCursor("This page link is damaged; here is the first page.") from None
    if made_for != kind:
        raise BadCursor(
            "This page link belongs to another search; here is the first page of this one."
        )
    if (
        direction not in ("a", "b")
        or not isinstance(key, list)
        or len(key) != len(shape)
        or not all(type(v) is t for v, t in zip(key, shape, strict=True))
        or any(isinstance(v, int) and abs(v) > 2**62 for v in key)
        or any(isinstance(v, str) and ("\x00" in v or len(v) > 255) for v in key)
    ):
        raise BadCursor("This page link is damaged; here is the first page.")
    return ("after" if direction == "a" else "before"), tuple(key)


def _page(
    rows: list[tuple[tuple, int]], direction: str, kind: str, *, from_cursor: bool
) -> tuple[list[int], str, str]:
    """Chart ids in page order, and the next/previous cursors, from ``PAGE_SIZE + 1`` rows
    fetched in the direction of travel (``(key, id)`` pairs)."""
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    if direction == "before":
        rows.reverse()
    if not rows:
        return [], "", ""
    has_next = more if direction == "after" else from_cursor
    has_previous = from_cursor if direction == "after" else more
    next_cursor = encode_cursor(kind, rows[-1][0]) if has_next else ""
    previous_cursor = encode_cursor(kind, rows[0][0], "before") if has_previous else ""
    return [pk for _, pk in rows], next_cursor, previous_cursor


def _charts_in_order(ids: list[int]) -> list[Chart]:
    charts = Chart.objects.select_related("source__registry", "source__helm_repository").in_bulk(
        ids
    )
    return [charts[pk] for pk in ids if pk in charts]


# --- the listing and the search ---------------------------------------------------------


def store_page(
    query: str, source_ids: Sequence[int], cursor: str = "", *, verified_only: bool = False
) -> StorePage:
    """One page of the store: the charts of ``source_ids`` (the active sources the user may
    see, or the one chosen) matching ``query`` (all of it when empty), after/before
    ``cursor``; with ``verified_only``, only charts whose latest version a configured key
    verified. Raises :class:`BadCursor` for a cursor this function did not make."""
    if not source_ids:
        return StorePage([], 0, False)
    words = search_words(query)
    if words:
        return _search_page(" ".join(words), words, list(source_ids), cursor, verified_only)
    return _list_page(list(source_ids), cursor, verified_only)


def search_words(query: str) -> list[str]:
    return [w for w in query.lower().split() if w][:MAX_WORDS]


def _list_page(source_ids: list[int], cursor: str, verified_only: bool = False) -> StorePage:
    direction, key = decode_cursor(cursor, "list") if cursor else ("after", None)
    if len(source_ids) == 1:  # one source: read in name order from (source, name)'s index
        charts = Chart.objects.filter(source_id=source_ids[0])
    else:
        # ``source_id + 0``: a filter, never a way in (as in _store_filter): the rows are
        # read in (name, id) order from that index and stop after a page, at any size.
        charts = Chart.objects.alias(in_source=F("source_id") + 0).filter(in_source__in=source_ids)
    charts = charts.exclude(latest_version="")
    if verified_only:
        charts = charts.filter(latest_trust=TrustStatus.VERIFIED)
    # Counting stops at COUNT_CAP + 1 rows, whatever the store holds.
    counted = charts.order_by()[: COUNT_CAP + 1].count()
    if key is not None:
        op = ">" if direction == "after" else "<"
        # A row-value comparison: one range read of the (name, id) index on both databases.
        row_value = f'("charts_chart"."name", "charts_chart"."id") {op} (%s, %s)'
        charts = charts.filter(RawSQL(row_value, key, output_field=BooleanField()))  # noqa: S611
    order = ("name", "id") if direction == "after" else ("-name", "-id")
    rows = charts.order_by(*order).select_related("source__registry", "source__helm_repository")
    found = list(rows[: PAGE_SIZE + 1])
    by_pk = {c.pk: c for c in found}
    ids, next_cursor, previous_cursor = _page(
        [((c.name, c.pk), c.pk) for c in found], direction, "list", from_cursor=key is not None
    )
    return StorePage(
        [by_pk[pk] for pk in ids],
        min(counted, COUNT_CAP),
        counted > COUNT_CAP,
        next_cursor,
        previous_cursor,
        key is not None,
    )


def _search_page(
    query: str, words: list[str], source_ids: list[int], cursor: str, verified_only: bool = False
) -> StorePage:
    direction, key = decode_cursor(cursor, "search") if cursor else ("after", None)
    if connection.vendor == "postgresql":
        # Typos are looked for when nothing matches as written (a typo page's cursor
        # carries rank bucket 4): a broad search does not pay for them.
        typos = key is not None and key[0] == TYPO_BUCKET
        with _planned_for_indexes() as db:
            db.execute(
                *_postgresql_search(
                    query, words, source_ids, direction, key, typos=typos, verified=verified_only
                )
            )
            fetched = db.fetchall()
            if not fetched and key is None and len(query) >= MIN_TYPO_WORD:
                db.execute(
                    *_postgresql_search(
                        query, words, source_ids, direction, key, typos=True, verified=verified_only
                    )
                )
                fetched = db.fetchall()
    else:
        sql, params = _sqlite_search(query, words, source_ids, direction, key, verified_only)
        with connection.cursor() as db:
            db.execute(sql, params)
            fetched = db.fetchall()
    total = fetched[0][4] if fetched else 0  # an empty page past the end has a way back
    rows = [((bucket, rank, name, pk), pk) for pk, bucket, rank, name, _ in fetched]
    ids, next_cursor, previous_cursor = _page(
        rows, direction, "search", from_cursor=key is not None
    )
    capped = total > SEARCH_CANDIDATES
    return StorePage(
        _charts_in_order(ids),
        min(total, SEARCH_CANDIDATES),
        capped,
        next_cursor,
        previous_cursor,
        key is not None,
    )


def _store_filter(source_ids: list[int], verified: bool = False) -> tuple[str, list]:
    """Charts of these sources with a version to show (a verified one, with ``verified``).
    ``source_id + 0``: a filter, never a way in (PostgreSQL would otherwise read a big
    source through its foreign-key index rather than the search index)."""
    marks = ", ".join(["%s"] * len(source_ids))
    sql = f"c.latest_version <> '' AND (c.source_id + 0) IN ({marks})"
    params: list = list(source_ids)
    if verified:
        sql += " AND c.latest_trust = %s"
        params.append(str(TrustStatus.VERIFIED))
    return sql, params


def _like(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# The expressions the PostgreSQL indexes are built on (migration 0012): the query repeats
# them exactly, so the planner matches them to the indexes.
PG_DOCUMENT = "lower(c.name || ' ' || c.description || ' ' || c.keywords)"
PG_VECTOR = "to_tsvector('english'::regconfig, c.name || ' ' || c.description || ' ' || c.keywords)"


def _keyset(direction: str, key: tuple | None) -> tuple[str, list, str]:
    if key is None:
        where, params = "", []
    else:
        op = ">" if direction == "after" else "<"
        where, params = f"WHERE (bucket, rank, name, id) {op} (%s, %s, %s, %s)", list(key)
    order = "ASC" if direction == "after" else "DESC"
    return where, params, f"bucket {order}, rank {order}, name {order}, id {order}"


def _postgresql_search(
    query: str,
    words: list[str],
    source_ids: list[int],
    direction: str,
    key: tuple | None,
    *,
    typos: bool = False,
    verified: bool = False,
) -> tuple[str, list]:
    """The search as one statement; run it with :func:`_planned_for_indexes`.

    Candidates come from index reads only, each capped, each tagged with how it matched:
    the exact name (0), every word a substring of name, description or keywords, as the
    store always matched (3; the trigram index), or the words in any form (3; full text).
    With ``typos`` (asked when those find nothing), the names close to the query instead
    (4; the name's trigram index). Ranking then reads only the candidates: never a
    row-by-row ``to_tsvector`` or a scan of the table.
    """
    store, store_params = _store_filter(source_ids, verified)
    cap = SEARCH_CANDIDATES + 1
    if typos:
        found = [
            f"(SELECT c.id, 4 AS kind FROM charts_chart c WHERE {store} "  # noqa: S608
            "AND lower(c.name) %%> %s LIMIT %s)"
        ]
        found_params = [*store_params, query, cap]
    else:
        substring = " AND ".join(f"{PG_DOCUMENT} LIKE %s" for _ in words)
        found = [
            f"(SELECT c.id, 0 AS kind FROM charts_chart c WHERE {store} AND lower(c.name) = %s)",  # noqa: S608
            f"(SELECT c.id, 3 FROM charts_chart c WHERE {store} AND {substring} LIMIT %s)",  # noqa: S608
            f"(SELECT c.id, 3 FROM charts_chart c WHERE {store} AND {PG_VECTOR} "  # noqa: S608
            "@@ plainto_tsquery('english', %s) LIMIT %s)",
        ]
        found_params = [
            *store_params, query,
            *store_params, *map(_like, words), cap,
            *store_params, query, cap,
        ]  # fmt: skip
    in_name = " AND ".join("strpos(lower(c.name), %s) > 0" for _ in words)
    where, key_params, order = _keyset(direction, key)
    sql = f"""
        WITH candidates AS (
            SELECT id, min(kind) AS kind FROM ({" UNION ALL ".join(found)}) AS found GROUP BY id
        ), ranked AS (
            SELECT c.id, c.name,
                CASE WHEN candidates.kind = 0 THEN 0
                     WHEN left(lower(c.name), %s) = %s THEN 1
                     WHEN {in_name} THEN 2
                     ELSE candidates.kind END AS bucket,
                CASE WHEN candidates.kind = 4  -- typos: the closest names first
                     THEN -round(similarity(lower(c.name), %s) * 1000)::int ELSE 0 END AS rank
            FROM candidates JOIN charts_chart c ON c.id = candidates.id
        )
        SELECT id, bucket, rank, name, (SELECT count(*) FROM ranked)
        FROM ranked {where} ORDER BY {order} LIMIT %s
    """  # noqa: S608
    params = [
        *found_params, len(query), query, *words, query, *key_params, PAGE_SIZE + 1
    ]  # fmt: skip
    return sql, params


@contextmanager
def _planned_for_indexes():
    """PostgreSQL: read the search through its indexes, whatever the planner estimates.

    pg_trgm's row estimates for ``LIKE '%word%'`` are rough; with a LIMIT the planner then
    often prefers reading the table until enough rows match, which costs in proportion to
    the catalogue (and evaluates the expressions row by row). Within this transaction it
    may not: the indexes exist for exactly these expressions. JIT is off too: forbidding a
    plan inflates its cost estimate, which would only trigger compilation.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        # SET LOCAL both, in one statement.
        cursor.execute(
            "SELECT set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true)"
        )
        yield cursor


def _fts5_phrase(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


SQLITE_DOCUMENT = "lower(c.name || ' ' || c.description || ' ' || c.keywords)"


def _sqlite_search(
    query: str,
    words: list[str],
    source_ids: list[int],
    direction: str,
    key: tuple | None,
    verified: bool = False,
) -> tuple[str, list]:
    store, store_params = _store_filter(source_ids, verified)
    indexed = [w for w in words if len(w) >= MIN_INDEXED_WORD]
    short = [w for w in words if len(w) < MIN_INDEXED_WORD]
    short_sql = "".join(f" AND instr({SQLITE_DOCUMENT}, %s) > 0" for _ in short)
    if indexed:
        # FTS5's trigram tokenizer matches each quoted word as a substring, any column.
        matched = f"""
            SELECT c.id, bm25(charts_chart_fts) AS score
            FROM charts_chart_fts JOIN charts_chart c ON c.id = charts_chart_fts.rowid
            WHERE charts_chart_fts MATCH %s AND {store}{short_sql} LIMIT %s
        """  # noqa: S608
        matched_params = [" AND ".join(map(_fts5_phrase, indexed)), *store_params, *short]
    else:  # only one- and two-letter words: no index can find those
        matched = f"SELECT c.id, 0.0 AS score FROM charts_chart c WHERE {store}{short_sql} LIMIT %s"  # noqa: S608
        matched_params = [*store_params, *short]
    in_name = " AND ".join("instr(lower(c.name), %s) > 0" for _ in words)
    where, key_params, order = _keyset(direction, key)
    sql = f"""
        WITH candidates AS (
            SELECT id, min(score) AS score FROM (
                SELECT c.id, 0.0 AS score FROM charts_chart c
                WHERE {store} AND lower(c.name) = %s
                UNION ALL
                SELECT * FROM ({matched})
            ) GROUP BY id
        ), ranked AS (
            SELECT c.id, c.name,
                CASE WHEN lower(c.name) = %s THEN 0
                     WHEN substr(lower(c.name), 1, %s) = %s THEN 1
                     WHEN {in_name} THEN 2
                     ELSE 3 END AS bucket,
                CAST(round(candidates.score * 10000) AS INTEGER) AS rank
            FROM charts_chart c JOIN candidates ON candidates.id = c.id
        )
        SELECT id, bucket, rank, name, (SELECT count(*) FROM ranked)
        FROM ranked {where} ORDER BY {order} LIMIT %s
    """  # noqa: S608
    params = [
        *store_params, query, *matched_params, SEARCH_CANDIDATES + 1,
        query, len(query), query, *words,
        *key_params, PAGE_SIZE + 1,
    ]  # fmt: skip
    return sql, params


# --- SQLite: the search table's triggers --------------------------------------------------

SQLITE_TRIGGERS = {
    "charts_chart_fts_insert": "AFTER INSERT ON charts_chart BEGIN "
    "INSERT INTO charts_chart_fts(rowid, name, description, keywords) "
    "VALUES (new.id, new.name, new.description, new.keywords); END",
    "charts_chart_fts_delete": "AFTER DELETE ON charts_chart BEGIN "
    "INSERT INTO charts_chart_fts(charts_chart_fts, rowid, name, description, keywords) "
    "VALUES ('delete', old.id, old.name, old.description, old.keywords); END",
    "charts_chart_fts_update": "AFTER UPDATE OF name, description, keywords "
    "ON charts_chart BEGIN "
    "INSERT INTO charts_chart_fts(charts_chart_fts, rowid, name, description, keywords) "
    "VALUES ('delete', old.id, old.name, old.description, old.keywords); "
    "INSERT INTO charts_chart_fts(rowid, name, description, keywords) "
    "VALUES (new.id, new.name, new.description, new.keywords); END",
}


def repair_sqlite_search(using: str = "default", **_kwargs) -> bool:
    """Put back the FTS5 table's triggers if a migration rebuilt ``charts_chart`` (SQLite
    drops a table's triggers with it), and rebuild the table from ``charts_chart`` then.
    Connected to ``post_migrate``; True when it had to repair."""
    from django.db import connections

    db = connections[using]
    if db.vendor != "sqlite":
        return False
    with db.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE name LIKE 'charts_chart_fts%'")
        present = {row[0] for row in cursor.fetchall()}
        if "charts_chart_fts" not in present:  # not migrated that far (yet)
            return False
        missing = [name for name in SQLITE_TRIGGERS if name not in present]
        for name in missing:
            cursor.execute(f"CREATE TRIGGER {name} {SQLITE_TRIGGERS[name]}")
        if missing:
            cursor.execute("INSERT INTO charts_chart_fts(charts_chart_fts) VALUES ('rebuild')")
    return bool(missing)
