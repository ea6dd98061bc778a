"""Protocols the core needs from the outside world: storage, transactions, time.

The service implements them with SQLAlchemy; unit tests implement them with fakes.
Repositories never commit: the unit of work does, once per action.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from .model import (
    Case,
    CaseEvent,
    HumanTask,
    Incident,
    MessageWait,
    ProcessVersion,
    TaskStatus,
    Timer,
    User,
)


class Clock(Protocol):
    def now(self) -> datetime:
        """Return the current time, timezone-aware UTC."""


class ProcessVersionRepository(Protocol):
    def add(self, process_version: ProcessVersion) -> ProcessVersion: ...
    def get(self, process_version_id: int) -> ProcessVersion | None: ...
    def latest(self, process_id: str) -> ProcessVersion | None: ...
    def list(self, *, process_id: str | None = None) -> list[ProcessVersion]: ...


class CaseRepository(Protocol):
    def add(self, case: Case) -> Case:
        """Insert a new case and give it an id."""

    def get(self, case_id: int) -> Case | None: ...

    def save(self, case: Case) -> None:
        """Write the case if nobody changed it since it was read, and bump its version.

        Raises StaleCase when the stored version is no longer `case.version`.
        """

    def list(
        self, *, status: str | None = None, process_id: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[Case]: ...


@dataclass(frozen=True)
class TaskQuery:
    """Which human tasks to list; every field is optional and they combine with AND."""

    case_id: int | None = None
    candidate_roles: Sequence[str] | None = None
    assignee: str | None = None
    statuses: Sequence[TaskStatus] | None = None
    unassigned_only: bool = False
    limit: int = 50
    offset: int = 0


class TaskRepository(Protocol):
    def add(self, task: HumanTask) -> HumanTask: ...
    def get(self, task_id: int) -> HumanTask | None: ...
    def update(self, task: HumanTask) -> None: ...
    def for_case(self, case_id: int, *, open_only: bool = True) -> list[HumanTask]: ...
    def query(self, query: TaskQuery) -> list[HumanTask]: ...
    def count(self, query: TaskQuery) -> int: ...


class TimerRepository(Protocol):
    def add(self, timer: Timer) -> Timer: ...
    def update(self, timer: Timer) -> None: ...
    def for_case(self, case_id: int, *, pending_only: bool = True) -> list[Timer]: ...
    def due(self, now: datetime, *, limit: int = 100) -> list[Timer]:
        """Pending timers whose due time has come, oldest first."""


class MessageWaitRepository(Protocol):
    def replace_for_case(self, case_id: int, waits: list[MessageWait]) -> None: ...
    def for_case(self, case_id: int) -> list[MessageWait]: ...
    def find(self, name: str) -> list[MessageWait]:
        """Every case waiting for a message of this name (the caller matches correlation)."""


class CaseEventRepository(Protocol):
    def append(self, event: CaseEvent) -> CaseEvent: ...
    def for_case(self, case_id: int) -> list[CaseEvent]: ...


class IncidentRepository(Protocol):
    def add(self, incident: Incident) -> Incident: ...
    def get(self, incident_id: int) -> Incident | None: ...
    def update(self, incident: Incident) -> None: ...
    def for_case(self, case_id: int, *, open_only: bool = True) -> list[Incident]: ...


class UserRepository(Protocol):
    def add(self, user: User) -> User: ...
    def get_by_username(self, username: str) -> User | None: ...
    def get_by_token_hash(self, token_hash: str) -> User | None: ...
    def update(self, user: User) -> None: ...
    def list(self) -> list[User]: ...


class UnitOfWork(Protocol):
    """One action, one transaction: `with uow: ...; uow.commit()`; leaving without commit rolls back."""

    processes: ProcessVersionRepository
    cases: CaseRepository
    tasks: TaskRepository
    timers: TimerRepository
    messages: MessageWaitRepository
    events: CaseEventRepository
    incidents: IncidentRepository
    users: UserRepository

    def __enter__(self) -> "UnitOfWork": ...
    def __exit__(self, *exc) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
