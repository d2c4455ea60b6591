"""Bulk writes of many rows: one statement, run by the driver's ``executemany``.

Django's ``bulk_create`` compiles every value of every row into the SQL text (on SQLite in
batches of ~30 rows, its limit of variables), and ``bulk_update`` builds a ``CASE WHEN``
per field over the batch: together a third of a big Helm import. Here the statement is
written once, each value is adapted by its field only where the database needs it (JSON,
dates and times), and the driver runs the rows: psycopg 3 pipelines them, sqlite3 loops
in C. The same rows are written as with the ORM; no signal is sent (the ORM's bulk
methods send none either).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models.fields import NOT_PROVIDED

# Field types whose Python value the driver cannot take as it is.
_ADAPTED = {
    "JSONField",
    "DateTimeField",
    "DateField",
    "TimeField",
    "DecimalField",
    "DurationField",
    "UUIDField",
    "BinaryField",
}


def _reader(field: models.Field, conn: Any) -> Callable[[Any], Any]:
    """How to turn ``field``'s Python value into what the driver takes."""
    if field.get_internal_type() not in _ADAPTED:
        return lambda value: value
    last: list[Any] = [object(), None]  # the rows of a batch share their timestamps

    def adapt(value: Any) -> Any:
        if value is None:
            return None
        if value is last[0]:
            return last[1]
        last[:] = [value, field.get_db_prep_save(value, conn)]
        return last[1]

    return adapt


def insert_rows(model: type[models.Model], rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT ``rows`` (field attnames to values; a missing field takes its default) as
    ``bulk_create`` would, without building model instances."""
    if not rows:
        return
    conn = connections[DEFAULT_DB_ALIAS]
    fields = [
        f
        for f in model._meta.concrete_fields
        if not f.generated
        and not (f.primary_key and isinstance(f, models.AutoField | models.BigAutoField))
        and f.db_default is NOT_PROVIDED
    ]
    for field in fields:
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            raise ValueError(f"insert_rows() does not set {field.name} (auto_now)")
    defaults = {f.attname: f.get_default() for f in fields}
    columns = [(f.attname, _reader(f, conn)) for f in fields]
    quote = conn.ops.quote_name
    # Names from the model's own metadata, quoted; every value is a parameter.
    sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608
        quote(model._meta.db_table),
        ", ".join(quote(f.column) for f in fields),
        ", ".join(["%s"] * len(fields)),
    )
    values = (
        [adapt(row[name] if name in row else defaults[name]) for name, adapt in columns]
        for row in rows
    )
    with conn.cursor() as cursor:
        if conn.vendor == "postgresql":
            # COPY: psycopg writes the rows in C; executemany would quote each value into
            # SQL text in Python (Django's psycopg cursors bind on the client).
            table = quote(model._meta.db_table)
            names = ", ".join(quote(f.column) for f in fields)
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for value in values:
                    copy.write_row(value)
        else:
            cursor.executemany(sql, list(values))


def update_rows(model: type[models.Model], objs: Sequence[models.Model], names: list[str]) -> None:
    """UPDATE the fields ``names`` of ``objs`` (by primary key), as ``bulk_update`` would."""
    if not objs:
        return
    conn = connections[DEFAULT_DB_ALIAS]
    fields = [model._meta.get_field(name) for name in names]
    columns = [(f.attname, _reader(f, conn)) for f in fields]  # type: ignore[arg-type, union-attr]
    pk = model._meta.pk
    assert pk is not None
    quote = conn.ops.quote_name
    sql = "UPDATE {} SET {} WHERE {} = %s".format(  # noqa: S608
        quote(model._meta.db_table),
        ", ".join(f"{quote(str(f.column))} = %s" for f in fields),  # type: ignore[union-attr]
        quote(pk.column),
    )
    values = [[*(adapt(getattr(obj, name)) for name, adapt in columns), obj.pk] for obj in objs]
    with conn.cursor() as cursor:
        cursor.executemany(sql, values)
