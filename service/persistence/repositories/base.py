"""What every repository shares: record fields as column values, rows as records.

Columns are named as the dataclass fields, so a row maps onto its record directly.
"""
from __future__ import annotations

from dataclasses import fields
from enum import Enum
from typing import Any

from functools import cache

from sqlalchemy import Connection, Table, bindparam, insert, select, update

from workflows.errors import NotFound


def _values(record: Any, *, without: tuple[str, ...] = ("id",)) -> dict[str, Any]:
    """Return the record's stored fields as column values, enums as their plain values."""
    values = {}
    for item in fields(record):
        if item.name not in without:
            value = getattr(record, item.name)
            values[item.name] = value.value if isinstance(value, Enum) else value
    return values


def _from_row(model: type, row, *, status: type[Enum] | None = None, **extra: Any):
    values = row._asdict() | extra
    if status is not None:
        values["status"] = status(values["status"])
    return model(**values)


def _labelled(table: Table, prefix: str) -> list:
    """The table's columns labelled `<prefix><column>`: two tables' records read in one statement."""
    return [column.label(f"{prefix}{column.name}") for column in table.c]


def _from_labelled(model: type, values: dict[str, Any], table: Table, prefix: str, *,
                   status: type[Enum] | None = None, **extra: Any):
    """The record of `table` among a row's values labelled by `_labelled(table, prefix)`."""
    fields = {column.name: values[f"{prefix}{column.name}"] for column in table.c} | extra
    if status is not None:
        fields["status"] = status(fields["status"])
    return model(**fields)


# Statements are built once per table: building one costs ten times more than running it
# (the scheduler fires hundreds of timers a second through these).
@cache
def _by_id(table: Table):
    return select(table).where(table.c.id == bindparam("_id"))


@cache
def _update_by_id(table: Table):
    return update(table).where(table.c.id == bindparam("_id"))


@cache
def _insert_into(table: Table):
    return insert(table)


def _update(connection: Connection, table: Table, record: Any, what: str, *, without=("id",)) -> None:
    values = _values(record, without=without) | {"_id": record.id}
    if connection.execute(_update_by_id(table), values).rowcount != 1:
        raise NotFound(f"{what} {record.id} does not exist.")


class _Repository:
    """Works on the unit of work's connection, inside its transaction."""

    def __init__(self, connection: Connection):
        self._connection = connection

    def _get(self, table: Table, record_id: int, convert):
        """Return the record with this id, converted from its row, or None."""
        row = self._connection.execute(_by_id(table), {"_id": record_id}).first()
        return convert(row) if row else None

    def _insert(self, table: Table, values: dict[str, Any]) -> int:
        return self._connection.execute(_insert_into(table), values).inserted_primary_key[0]
