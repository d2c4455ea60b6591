"""The Chart Store's keyset and exact-name indexes, and its PostgreSQL search indexes
(issue 16; SQLite's search table is migration 0013). On SQLite the last step does nothing.

- PostgreSQL: the pg_trgm extension, a trigram GIN index on name + description + keywords
  (substring search), one on the name (typos), and a full-text GIN index (ranking). The
  expressions are the ones ``charts/search.py`` queries (``PG_DOCUMENT``, ``PG_VECTOR``).
  Creating the extension needs a role allowed to: without that privilege the migration
  stops with a message saying what to run, and changes nothing.
"""

from django.db import migrations, models
from django.db.models.functions import Lower

PG_INDEXES = [
    (
        "chart_search_trgm",
        "USING gin ((lower(name || ' ' || description || ' ' || keywords)) gin_trgm_ops)",
    ),
    ("chart_name_trgm", "USING gin ((lower(name)) gin_trgm_ops)"),
    (
        "chart_search_fts",
        "USING gin ((to_tsvector('english'::regconfig, "
        "name || ' ' || description || ' ' || keywords)))",
    ),
]

NO_PRIVILEGE = (
    "The Chart Store's search needs PostgreSQL's pg_trgm extension, and the database role "
    "Wharf connects as may not create it. Ask a superuser to run, in database {db}:\n"
    "    CREATE EXTENSION IF NOT EXISTS pg_trgm;\n"
    "then run the migrations again. ({error})"
)

def ensure_pg_trgm(schema_editor) -> None:
    from django.db import DatabaseError

    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        if cursor.fetchone():
            return
        in_transaction = not schema_editor.connection.get_autocommit()
        try:
            if in_transaction:  # so that a refusal leaves the migration's transaction usable
                cursor.execute("SAVEPOINT wharf_pg_trgm")
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except DatabaseError as exc:
            if in_transaction:
                cursor.execute("ROLLBACK TO SAVEPOINT wharf_pg_trgm")
            db = schema_editor.connection.settings_dict["NAME"]
            error = str(exc).strip().splitlines()[0]
            raise RuntimeError(NO_PRIVILEGE.format(db=db, error=error)) from None
        if in_transaction:
            cursor.execute("RELEASE SAVEPOINT wharf_pg_trgm")


def create_search_indexes(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        ensure_pg_trgm(schema_editor)
        for name, definition in PG_INDEXES:
            schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON charts_chart {definition}")


def drop_search_indexes(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        for name, _ in PG_INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")  # the extension stays


class Migration(migrations.Migration):
    dependencies = [
        ("charts", "0011_chartversion_values_schema"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="chart",
            name="charts_char_name_72528d_idx",
        ),
        migrations.AddIndex(
            model_name="chart",
            index=models.Index(fields=["name", "id"], name="chart_name_id"),
        ),
        migrations.AddIndex(
            model_name="chart",
            index=models.Index(Lower("name"), name="chart_lower_name"),
        ),
        migrations.RunPython(create_search_indexes, drop_search_indexes, elidable=False),
    ]
