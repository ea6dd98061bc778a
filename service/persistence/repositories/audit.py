"""Who read which case, and the merged trail of changes and reads. Append-only: nothing here updates or deletes."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import String, cast, exists, insert, literal_column, null, or_, select, union_all

from workflows.audit import CaseRead, TrailEntry

from .. import tables as t
from .base import _from_row, _Repository, _values

_insert_read = insert(t.case_read)
# Changes before reads at the same instant: a case is opened before anyone can read it.
_CHANGE, _READ = 0, 1


class SqlAuditRepository(_Repository):
    """The reads of cases (`case_read`) and, with the case events, the trail an auditor exports."""

    def add_reads(self, reads: Sequence[CaseRead]) -> None:
        """Append the reads, all in one statement."""
        if reads:
            self._connection.execute(_insert_read, [_values(read) for read in reads])

    def reads_of_case(self, case_id: int, *, limit: int = 50) -> list[CaseRead]:
        """The case's latest reads, newest first."""
        read = t.case_read.c
        statement = select(t.case_read).where(read.case_id == case_id).order_by(read.id.desc()).limit(limit)
        return [_from_row(CaseRead, row) for row in self._connection.execute(statement)]

    def has_actor(self, actor: str) -> bool:
        """Whether anything was ever done or read under this name."""
        done = exists().where(t.case_event.c.actor == actor)
        read = exists().where(t.case_read.c.actor == actor)
        return bool(self._connection.execute(select(or_(done, read))).scalar())

    def trail(self, *, case_id: int | None = None, actor: str | None = None, since: datetime | None = None,
              until: datetime | None = None, batch_size: int = 1000) -> Iterator[list[TrailEntry]]:
        """The changes and reads of a case and/or by an actor in [since, until), oldest first, a batch at a time.

        One query whose rows are streamed (a server-side cursor on PostgreSQL), so a trail of
        any length is never held whole; consume it inside the unit of work.
        """
        event, read = t.case_event.c, t.case_read.c
        changes = select(
            event.at, event.actor, event.case_id, event.kind.label("action"), cast(null(), String).label("channel"),
            cast(null(), String).label("what"), event.payload, literal_column(str(_CHANGE)).label("source"), event.id,
        ).where(*_bounds(event, case_id, actor, since, until))
        reads = select(
            read.at, read.actor, read.case_id, literal_column("'read'", String).label("action"), read.channel,
            read.what, cast(null(), t.case_event.c.payload.type).label("payload"),
            literal_column(str(_READ)).label("source"), read.id,
        ).where(*_bounds(read, case_id, actor, since, until))
        merged = union_all(changes, reads).subquery()
        statement = select(merged).order_by(merged.c.at, merged.c.source, merged.c.id)
        result = self._connection.execute(statement.execution_options(yield_per=batch_size))
        try:
            for rows in result.partitions(batch_size):
                yield [TrailEntry(row.at, row.actor, row.case_id, row.action, row.channel, row.what,
                                  row.payload if row.source == _CHANGE else None) for row in rows]
        finally:
            result.close()


def _bounds(columns, case_id: int | None, actor: str | None, since: datetime | None, until: datetime | None) -> list:
    conditions = []
    if case_id is not None:
        conditions.append(columns.case_id == case_id)
    if actor is not None:
        conditions.append(columns.actor == actor)
    if since is not None:
        conditions.append(columns.at >= since)
    if until is not None:
        conditions.append(columns.at < until)
    return conditions
