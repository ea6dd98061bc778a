"""Named marks that let one scheduler among many run a periodic job once per interval."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from .. import tables as t
from .base import _Repository


class SqlSchedulerMarkRepository(_Repository):
    """Named marks that let one scheduler among many run a periodic job once per interval."""

    def take(self, name: str, *, owner: str, now: datetime, every: timedelta) -> bool:
        """Move the mark to `now` for `owner` if it was last taken `every` ago or more, or never.

        The row stays locked until the unit of work ends. On PostgreSQL a scheduler that
        finds it locked (another's job still running) passes over it instead of waiting;
        SQLite has one writer, and the write unit of work holds its lock.
        """
        mark = t.scheduler_mark.c
        due = select(mark.name).where(mark.name == name, mark.at <= now - every)
        if self._connection.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        moved = self._connection.execute(
            update(t.scheduler_mark).where(mark.name.in_(due.scalar_subquery())).values(at=now, owner=owner)
        )
        if moved.rowcount == 1:
            return True
        if self._connection.execute(select(mark.name).where(mark.name == name)).first() is not None:
            return False
        # The first time ever: of two schedulers inserting at once, the second waits for the first to
        # commit (PostgreSQL) or for its lock (SQLite), then finds the row and loses.
        dialect_insert = postgresql.insert if self._connection.dialect.name == "postgresql" else sqlite.insert
        created = self._connection.execute(
            dialect_insert(t.scheduler_mark).values(name=name, at=now, owner=owner).on_conflict_do_nothing()
            .returning(mark.name)
        )
        return created.first() is not None
