"""Fast bulk inserts: rows as tuples straight to the driver's ``executemany``.

SQLAlchemy's per-row parameter processing costs several times what the driver does for the tens
of thousands of rows a release or a claims file brings. These helpers build one INSERT in the
driver's own parameter style and pass plain tuples. Values are converted the way the model types
store them: on SQLite, dates become ISO text (SQLAlchemy's own SQLite date format) and ``Decimal``
its exact text (``kb.models.ExactDecimal``); on PostgreSQL the rows go through ``COPY``, which
psycopg fills with dates and decimals as they are.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from decimal import Decimal
from typing import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection


# The sqlite3 module converts bound values of these types with these functions (only values that
# reach the driver unconverted, that is the rows of this module: SQLAlchemy converts its own).
sqlite3.register_adapter(date, date.isoformat)
sqlite3.register_adapter(Decimal, str)


def insert_rows(connection: Connection, table: sa.Table, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table``; returns how many."""
    dialect = connection.dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        return _copy_rows(connection, table, columns, rows)
    placeholder = "?" if dialect.paramstyle == "qmark" else "%s"
    quote = dialect.identifier_preparer.quote
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join(placeholder for _ in columns)})"
    )
    batch = rows if isinstance(rows, list) else list(rows)
    if batch:
        connection.exec_driver_sql(sql, batch)
    return len(batch)


def _copy_rows(connection: Connection, table: sa.Table, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    quote = connection.dialect.identifier_preparer.quote
    statement = f"COPY {quote(table.name)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    count = 0
    cursor = connection.connection.cursor()
    try:
        with cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
    finally:
        cursor.close()
    return count
