"""The ports of `workflows.ports`, implemented with SQLAlchemy Core on one connection.

Repositories never commit: the unit of work that owns the connection does.
Columns are named as the dataclass fields, so a row maps onto its record directly.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import fields
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import Connection, Select, Table, delete, func, insert, select, update

from workflows.errors import NotFound, StaleCase
from workflows.model import (
    OPEN_TASK_STATUSES,
    Case,
    CaseEvent,
    CaseStatus,
    HumanTask,
    Incident,
    IncidentStatus,
    MessageWait,
    ProcessVersion,
    TaskStatus,
    Timer,
    TimerStatus,
    User,
)
from workflows.ports import TaskQuery

from . import tables as t


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


def _update(connection: Connection, table: Table, record: Any, what: str, *, without=("id",)) -> None:
    statement = update(table).where(table.c.id == record.id).values(_values(record, without=without))
    if connection.execute(statement).rowcount != 1:
        raise NotFound(f"{what} {record.id} does not exist.")


class _Repository:
    """Works on the unit of work's connection, inside its transaction."""

    def __init__(self, connection: Connection):
        self._connection = connection

    def _insert(self, table: Table, values: dict[str, Any]) -> int:
        return self._connection.execute(insert(table), values).inserted_primary_key[0]


class SqlProcessVersionRepository(_Repository):
    """Deployed diagram sets, with their files stored byte for byte."""

    def add(self, process_version: ProcessVersion) -> ProcessVersion:
        values = _values(process_version, without=("id", "files"))
        process_version.id = self._insert(t.process_version, values)
        if process_version.files:
            rows = [
                {"process_version_id": process_version.id, "path": path, "content": content}
                for path, content in process_version.files.items()
            ]
            self._connection.execute(insert(t.process_file), rows)
        return process_version

    def get(self, process_version_id: int) -> ProcessVersion | None:
        found = self._load(select(t.process_version).where(t.process_version.c.id == process_version_id))
        return found[0] if found else None

    def latest(self, process_id: str) -> ProcessVersion | None:
        statement = (
            select(t.process_version)
            .where(t.process_version.c.process_id == process_id)
            .order_by(t.process_version.c.version.desc())
            .limit(1)
        )
        found = self._load(statement)
        return found[0] if found else None

    def list(self, *, process_id: str | None = None) -> list[ProcessVersion]:
        statement = select(t.process_version).order_by(t.process_version.c.process_id, t.process_version.c.version)
        if process_id is not None:
            statement = statement.where(t.process_version.c.process_id == process_id)
        return self._load(statement)

    def _load(self, statement: Select) -> list[ProcessVersion]:
        rows = self._connection.execute(statement).all()
        if not rows:
            return []
        files: dict[int, dict[str, bytes]] = defaultdict(dict)
        file_rows = self._connection.execute(
            select(t.process_file)
            .where(t.process_file.c.process_version_id.in_([row.id for row in rows]))
            .order_by(t.process_file.c.process_version_id, t.process_file.c.path)
        )
        for file_row in file_rows:
            files[file_row.process_version_id][file_row.path] = bytes(file_row.content)
        return [_from_row(ProcessVersion, row, files=files[row.id]) for row in rows]


def _case(row) -> Case:
    return _from_row(Case, row, status=CaseStatus)


class SqlCaseRepository(_Repository):
    """Cases, written with an optimistic version check so no update is ever lost."""

    def add(self, case: Case) -> Case:
        case.id = self._insert(t.case_record, _values(case))
        return case

    def get(self, case_id: int) -> Case | None:
        row = self._connection.execute(select(t.case_record).where(t.case_record.c.id == case_id)).first()
        return _case(row) if row else None

    def save(self, case: Case) -> None:
        """Write the case if its stored version is still `case.version`, and bump the version."""
        expected = case.version
        result = self._connection.execute(
            update(t.case_record)
            .where(t.case_record.c.id == case.id, t.case_record.c.version == expected)
            .values(**_values(case, without=("id", "version")), version=expected + 1)
        )
        if result.rowcount != 1:
            raise StaleCase(f"Case {case.id} was changed by someone else; reload it and try again.")
        case.version = expected + 1

    def list(
        self, *, status: str | None = None, process_id: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[Case]:
        statement = select(t.case_record)
        if status is not None:
            statement = statement.where(t.case_record.c.status == str(status))
        if process_id is not None:
            statement = statement.where(t.case_record.c.process_id == process_id)
        statement = statement.order_by(t.case_record.c.opened_at.desc(), t.case_record.c.id.desc())
        return [_case(row) for row in self._connection.execute(statement.limit(limit).offset(offset))]


def _task(row) -> HumanTask:
    return _from_row(HumanTask, row, status=TaskStatus)


class SqlTaskRepository(_Repository):
    """The inbox: one row per READY human task."""

    def add(self, task: HumanTask) -> HumanTask:
        task.id = self._insert(t.human_task, _values(task))
        return task

    def get(self, task_id: int) -> HumanTask | None:
        row = self._connection.execute(select(t.human_task).where(t.human_task.c.id == task_id)).first()
        return _task(row) if row else None

    def update(self, task: HumanTask) -> None:
        _update(self._connection, t.human_task, task, "Task")

    def for_case(self, case_id: int, *, open_only: bool = True) -> list[HumanTask]:
        statement = select(t.human_task).where(t.human_task.c.case_id == case_id)
        if open_only:
            statement = statement.where(t.human_task.c.status.in_([s.value for s in OPEN_TASK_STATUSES]))
        statement = statement.order_by(t.human_task.c.created_at, t.human_task.c.id)
        return [_task(row) for row in self._connection.execute(statement)]

    def query(self, query: TaskQuery) -> list[HumanTask]:
        """List the tasks the query selects, soonest due first (undated last), then oldest."""
        statement = self._filtered(select(t.human_task), query).order_by(
            t.human_task.c.due_at.asc().nulls_last(), t.human_task.c.created_at, t.human_task.c.id
        )
        return [_task(row) for row in self._connection.execute(statement.limit(query.limit).offset(query.offset))]

    def count(self, query: TaskQuery) -> int:
        """Count every task the query selects, ignoring its limit and offset."""
        statement = self._filtered(select(func.count()).select_from(t.human_task), query)
        return self._connection.execute(statement).scalar_one()

    @staticmethod
    def _filtered(statement: Select, query: TaskQuery) -> Select:
        columns = t.human_task.c
        if query.case_id is not None:
            statement = statement.where(columns.case_id == query.case_id)
        if query.candidate_roles is not None:
            statement = statement.where(columns.candidate_role.in_(list(query.candidate_roles)))
        if query.assignee is not None:
            statement = statement.where(columns.assignee == query.assignee)
        if query.statuses is not None:
            statement = statement.where(columns.status.in_([TaskStatus(s).value for s in query.statuses]))
        if query.unassigned_only:
            statement = statement.where(columns.assignee.is_(None))
        return statement


def _timer(row) -> Timer:
    return _from_row(Timer, row, status=TimerStatus)


class SqlTimerRepository(_Repository):
    """Waiting timer events; the database, not the scheduler, is the source of truth."""

    def add(self, timer: Timer) -> Timer:
        timer.id = self._insert(t.timer, _values(timer))
        return timer

    def update(self, timer: Timer) -> None:
        _update(self._connection, t.timer, timer, "Timer")

    def for_case(self, case_id: int, *, pending_only: bool = True) -> list[Timer]:
        statement = select(t.timer).where(t.timer.c.case_id == case_id)
        if pending_only:
            statement = statement.where(t.timer.c.status == TimerStatus.PENDING.value)
        statement = statement.order_by(t.timer.c.due_at, t.timer.c.id)
        return [_timer(row) for row in self._connection.execute(statement)]

    def due(self, now: datetime, *, limit: int = 100) -> list[Timer]:
        """Pending timers whose due time has come, oldest first."""
        return [_timer(row) for row in self._connection.execute(self._due(now, limit=limit))]

    @staticmethod
    def _due(now: datetime, *, limit: int) -> Select:
        # The one definition of "due"; claiming with leases builds on it, adding
        # FOR UPDATE SKIP LOCKED on PostgreSQL.
        return (
            select(t.timer)
            .where(t.timer.c.status == TimerStatus.PENDING.value, t.timer.c.due_at <= now)
            .order_by(t.timer.c.due_at, t.timer.c.id)
            .limit(limit)
        )


class SqlMessageWaitRepository(_Repository):
    """Which cases wait for which named messages."""

    def replace_for_case(self, case_id: int, waits: list[MessageWait]) -> None:
        self._connection.execute(delete(t.message_wait).where(t.message_wait.c.case_id == case_id))
        for wait in waits:
            wait.case_id = case_id
            wait.id = self._insert(t.message_wait, _values(wait))

    def for_case(self, case_id: int) -> list[MessageWait]:
        statement = select(t.message_wait).where(t.message_wait.c.case_id == case_id).order_by(t.message_wait.c.id)
        return [_from_row(MessageWait, row) for row in self._connection.execute(statement)]

    def find(self, name: str) -> list[MessageWait]:
        """Every case waiting for a message of this name (the caller matches correlation)."""
        statement = select(t.message_wait).where(t.message_wait.c.name == name).order_by(t.message_wait.c.id)
        return [_from_row(MessageWait, row) for row in self._connection.execute(statement)]


class SqlCaseEventRepository(_Repository):
    """The audit trail. Append-only on purpose: there is no way here to change or remove an event."""

    def append(self, event: CaseEvent) -> CaseEvent:
        event.id = self._insert(t.case_event, _values(event))
        return event

    def for_case(self, case_id: int) -> list[CaseEvent]:
        statement = select(t.case_event).where(t.case_event.c.case_id == case_id).order_by(t.case_event.c.id)
        return [_from_row(CaseEvent, row) for row in self._connection.execute(statement)]


def _incident(row) -> Incident:
    return _from_row(Incident, row, status=IncidentStatus)


class SqlIncidentRepository(_Repository):
    """Failures recorded against a case, and how they were resolved."""

    def add(self, incident: Incident) -> Incident:
        incident.id = self._insert(t.incident, _values(incident))
        return incident

    def get(self, incident_id: int) -> Incident | None:
        row = self._connection.execute(select(t.incident).where(t.incident.c.id == incident_id)).first()
        return _incident(row) if row else None

    def update(self, incident: Incident) -> None:
        _update(self._connection, t.incident, incident, "Incident")

    def for_case(self, case_id: int, *, open_only: bool = True) -> list[Incident]:
        statement = select(t.incident).where(t.incident.c.case_id == case_id)
        if open_only:
            statement = statement.where(t.incident.c.status == IncidentStatus.OPEN.value)
        return [_incident(row) for row in self._connection.execute(statement.order_by(t.incident.c.id))]


class SqlUserRepository(_Repository):
    """People and API clients, with their roles (returned sorted by name)."""

    def add(self, user: User) -> User:
        user.id = self._insert(t.app_user, _values(user, without=("id", "roles")))
        self._write_roles(user)
        return user

    def get_by_username(self, username: str) -> User | None:
        found = self._load(select(t.app_user).where(t.app_user.c.username == username))
        return found[0] if found else None

    def get_by_token_hash(self, token_hash: str) -> User | None:
        found = self._load(select(t.app_user).where(t.app_user.c.token_hash == token_hash))
        return found[0] if found else None

    def update(self, user: User) -> None:
        _update(self._connection, t.app_user, user, "User", without=("id", "roles"))
        self._connection.execute(delete(t.user_role).where(t.user_role.c.user_id == user.id))
        self._write_roles(user)

    def list(self) -> list[User]:
        return self._load(select(t.app_user).order_by(t.app_user.c.username))

    def _write_roles(self, user: User) -> None:
        user.roles = sorted(set(user.roles))
        if user.roles:
            self._connection.execute(insert(t.user_role), [{"user_id": user.id, "role": role} for role in user.roles])

    def _load(self, statement: Select) -> list[User]:
        rows = self._connection.execute(statement).all()
        if not rows:
            return []
        roles: dict[int, list[str]] = defaultdict(list)
        role_rows = self._connection.execute(
            select(t.user_role)
            .where(t.user_role.c.user_id.in_([row.id for row in rows]))
            .order_by(t.user_role.c.user_id, t.user_role.c.role)
        )
        for role_row in role_rows:
            roles[role_row.user_id].append(role_row.role)
        return [_from_row(User, row, roles=roles[row.id]) for row in rows]
