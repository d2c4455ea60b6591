"""The Chart Store's search table on SQLite (issue 16); nothing on PostgreSQL (0012).

An FTS5 table (trigram tokenizer: substrings, as the store always matched) whose content is
``charts_chart``, kept in step by triggers, so every writer (the Helm import's and the OCI
sync's ``bulk_create``/``bulk_update``, ``update()``, deletes and cascades) keeps it right
without knowing it exists. A later migration that makes SQLite rebuild ``charts_chart``
drops the triggers with the old table: ``charts.search.repair_sqlite_search`` (run after
every ``migrate``) puts them back and rebuilds the table when it had to.
"""

from django.db import migrations

SQLITE_SETUP = [
    "CREATE VIRTUAL TABLE charts_chart_fts USING fts5("
    "name, description, keywords, content='charts_chart', content_rowid='id', "
    "tokenize='trigram')",
    "CREATE TRIGGER charts_chart_fts_insert AFTER INSERT ON charts_chart BEGIN "
    "INSERT INTO charts_chart_fts(rowid, name, description, keywords) "
    "VALUES (new.id, new.name, new.description, new.keywords); END",
    "CREATE TRIGGER charts_chart_fts_delete AFTER DELETE ON charts_chart BEGIN "
    "INSERT INTO charts_chart_fts(charts_chart_fts, rowid, name, description, keywords) "
    "VALUES ('delete', old.id, old.name, old.description, old.keywords); END",
    "CREATE TRIGGER charts_chart_fts_update AFTER UPDATE OF name, description, keywords "
    "ON charts_chart BEGIN "
    "INSERT INTO charts_chart_fts(charts_chart_fts, rowid, name, description, keywords) "
    "VALUES ('delete', old.id, old.name, old.description, old.keywords); "
    "INSERT INTO charts_chart_fts(rowid, name, description, keywords) "
    "VALUES (new.id, new.name, new.description, new.keywords); END",
    "INSERT INTO charts_chart_fts(charts_chart_fts) VALUES ('rebuild')",
]

SQLITE_TEARDOWN = [
    "DROP TRIGGER IF EXISTS charts_chart_fts_insert",
    "DROP TRIGGER IF EXISTS charts_chart_fts_delete",
    "DROP TRIGGER IF EXISTS charts_chart_fts_update",
    "DROP TABLE IF EXISTS charts_chart_fts",
]



def create_fts(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_SETUP:
            schema_editor.execute(statement)


def drop_fts(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_TEARDOWN:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("charts", "0012_store_search_indexes"),
    ]

    operations = [migrations.RunPython(create_fts, drop_fts, elidable=False)]
