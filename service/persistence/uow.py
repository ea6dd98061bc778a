"""One action, one transaction: the unit of work over a SQLAlchemy connection."""
from __future__ import annotations

from sqlalchemy import Connection, Engine

from .database import BEGIN_READ, BEGIN_WRITE, SQLITE_BEGIN
from .repositories import (
    SqlCaseEventRepository,
    SqlCaseFlagRepository,
    SqlCaseRepository,
    SqlIncidentRepository,
    SqlMessageWaitRepository,
    SqlNoteRepository,
    SqlProcessVersionRepository,
    SqlSchedulerMarkRepository,
    SqlTaskRepository,
    SqlTimerRepository,
    SqlUserRepository,
)
from .repositories.audit import SqlAuditRepository
from .repositories.drafts import SqlDraftRepository
from .repositories.kpis import SqlKpiRepository
from .repositories.process_view import SqlProcessViewRepository
from .repositories.tokens import SqlApiTokenRepository


class SqlAlchemyUnitOfWork:
    """`with uow: ...; uow.commit()`: leaving the block without committing rolls back.

    A write unit of work takes SQLite's write lock when it begins, so concurrent writers
    wait their turn; a read-only one does not, and on PostgreSQL it refuses writes.

    `snapshot=False` (read-only only): no transaction; each statement sees what was committed
    when it runs. For a unit of work of one read, such as a request's token, it spares the
    database two round trips (BEGIN and ROLLBACK).
    """

    def __init__(self, engine: Engine, *, read_only: bool = False, snapshot: bool = True):
        if not (snapshot or read_only):
            raise ValueError("Only a read-only unit of work can run without a transaction.")
        self._engine = engine
        self.read_only = read_only
        self.snapshot = snapshot
        self._connection: Connection | None = None

    def __enter__(self) -> SqlAlchemyUnitOfWork:
        if self._connection is not None:
            raise RuntimeError("This unit of work is already open; make a new one for each action.")
        connection = self._engine.connect()
        try:
            if not self.snapshot:
                connection.execution_options(isolation_level="AUTOCOMMIT", **{SQLITE_BEGIN: None})
            elif connection.dialect.name == "sqlite":
                connection.execution_options(**{SQLITE_BEGIN: BEGIN_READ if self.read_only else BEGIN_WRITE})
            elif connection.dialect.name == "postgresql" and self.read_only:
                connection.execution_options(postgresql_readonly=True)
            connection.begin()
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        self.processes = SqlProcessVersionRepository(connection)
        self.drafts = SqlDraftRepository(connection)
        self.cases = SqlCaseRepository(connection)
        self.tasks = SqlTaskRepository(connection)
        self.timers = SqlTimerRepository(connection)
        self.messages = SqlMessageWaitRepository(connection)
        self.events = SqlCaseEventRepository(connection)
        self.notes = SqlNoteRepository(connection)
        self.incidents = SqlIncidentRepository(connection)
        self.users = SqlUserRepository(connection)
        self.tokens = SqlApiTokenRepository(connection)
        self.flags = SqlCaseFlagRepository(connection)
        self.marks = SqlSchedulerMarkRepository(connection)
        self.kpis = SqlKpiRepository(connection)
        self.process_view = SqlProcessViewRepository(connection)
        self.audit = SqlAuditRepository(connection)
        return self

    def __exit__(self, *exc) -> None:
        connection, self._connection = self._connection, None
        try:
            if connection.in_transaction():
                connection.rollback()
        finally:
            connection.close()

    @property
    def connection(self) -> Connection:
        """The open connection, for the rare query no repository offers."""
        if self._connection is None:
            raise RuntimeError("The unit of work is not open: use it in a `with` block.")
        return self._connection

    def commit(self) -> None:
        """Make everything done so far permanent; later work starts a new transaction."""
        self.events.flush()
        self.connection.commit()

    def rollback(self) -> None:
        """Undo everything done since the last commit."""
        self.events.discard()
        self.connection.rollback()


class UnitOfWorkFactory:
    """Makes units of work on one engine; the service keeps one on the app."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def __call__(self, *, read_only: bool = False, snapshot: bool = True) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self.engine, read_only=read_only, snapshot=snapshot)

    def dispose(self) -> None:
        """Close every pooled connection (at shutdown, or in a forked worker)."""
        self.engine.dispose()
