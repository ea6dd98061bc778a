"""What a case waits on: human tasks, timers and named messages."""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import datetime

from sqlalchemy import Select, bindparam, delete, exists, func, or_, select, update

from workflows.model import (
    OPEN_TASK_STATUSES,
    Case,
    CaseStatus,
    HumanTask,
    MessageWait,
    TaskInCase,
    TaskStatus,
    Timer,
    TimerStatus,
)
from workflows.ports import TaskQuery, TaskSort

from .. import tables as t
from .base import _from_labelled, _from_row, _labelled, _Repository, _update, _values
from .task_filters import filtered, order


_OPEN_TASKS_OF_CASE = (
    select(t.human_task)
    .where(t.human_task.c.case_id == bindparam("case_id"),
           t.human_task.c.status.in_([s.value for s in OPEN_TASK_STATUSES]))
    .order_by(t.human_task.c.created_at, t.human_task.c.id)
)
_TASKS_OF_CASE = select(t.human_task).where(t.human_task.c.case_id == bindparam("case_id")).order_by(
    t.human_task.c.created_at, t.human_task.c.id)
_PENDING_TIMERS_OF_CASE = (
    select(t.timer)
    .where(t.timer.c.case_id == bindparam("case_id"), t.timer.c.status == TimerStatus.PENDING.value)
    .order_by(t.timer.c.due_at, t.timer.c.id)
)
_TIMERS_OF_CASE = select(t.timer).where(t.timer.c.case_id == bindparam("case_id")).order_by(t.timer.c.due_at, t.timer.c.id)
_TIMERS_OF_CASE_IN_STATUS = (
    select(t.timer)
    .where(t.timer.c.case_id == bindparam("case_id"), t.timer.c.status.in_(bindparam("statuses", expanding=True)))
    .order_by(t.timer.c.due_at, t.timer.c.id)
)


# A task and its whole case in one round trip: every action on a task needs both.
_TASK_WITH_CASE = (
    select(*_labelled(t.human_task, "t_"), *_labelled(t.case_record, "c_"))
    .join(t.case_record, t.case_record.c.id == t.human_task.c.case_id)
    .where(t.human_task.c.id == bindparam("_id"))
)


def _task(row) -> HumanTask:
    return _from_row(HumanTask, row, status=TaskStatus)


def _task_in_case(row) -> TaskInCase:
    values = row._asdict()
    case_fields = {column.name: values.pop(column.name) for column in _CASE_COLUMNS}
    values["status"] = TaskStatus(values["status"])
    return TaskInCase(HumanTask(**values), **case_fields)


class SqlTaskRepository(_Repository):
    """The inbox: one row per READY human task."""

    def add(self, task: HumanTask) -> HumanTask:
        task.id = self._insert(t.human_task, _values(task))
        return task

    def get(self, task_id: int) -> HumanTask | None:
        return self._get(t.human_task, task_id, _task)

    def with_case(self, task_id: int) -> tuple[HumanTask, Case] | None:
        row = self._connection.execute(_TASK_WITH_CASE, {"_id": task_id}).first()
        if row is None:
            return None
        values = row._asdict()
        return (_from_labelled(HumanTask, values, t.human_task, "t_", status=TaskStatus),
                _from_labelled(Case, values, t.case_record, "c_", status=CaseStatus))

    def update(self, task: HumanTask) -> None:
        _update(self._connection, t.human_task, task, "Task")

    def for_case(self, case_id: int, *, open_only: bool = True) -> list[HumanTask]:
        statement = _OPEN_TASKS_OF_CASE if open_only else _TASKS_OF_CASE
        return [_task(row) for row in self._connection.execute(statement, {"case_id": case_id})]

    def query(self, query: TaskQuery) -> list[HumanTask]:
        """List the tasks the query selects, in its order (soonest due first by default)."""
        statement = _page(select(t.human_task), query)
        return [_task(row) for row in self._connection.execute(statement)]

    def query_in_cases(self, query: TaskQuery) -> list[TaskInCase]:
        """List the tasks the query selects with their cases' subject, setting and process, in one statement."""
        # The page of task rows first, then only its rows joined to their cases: the case
        # rows are wide (the stored state), and reading thousands of them is the slow part.
        page = _page(select(t.human_task), query).subquery()
        statement = (select(page, *_CASE_COLUMNS).join(t.case_record, t.case_record.c.id == page.c.case_id)
                     .order_by(*order(page.c, query.sort)))
        return [_task_in_case(row) for row in self._connection.execute(statement)]

    def task_types(self, query: TaskQuery) -> dict[str, tuple[str, int]]:
        """Element id -> (title, how many tasks) among the tasks the query selects but for its element, by title.

        One pass gives an inbox view both its task-type filter and, summed, its count.
        """
        columns = t.human_task.c
        statement = filtered(select(columns.element_id, func.min(columns.title), func.count()),
                             replace(query, element_id=None)).group_by(columns.element_id)
        return dict(sorted(((row[0], (row[1], row[2])) for row in self._connection.execute(statement)),
                           key=lambda pair: pair[1][0]))

    def count(self, query: TaskQuery) -> int:
        """Count every task the query selects, ignoring its limit and offset."""
        statement = filtered(select(func.count()).select_from(t.human_task), query)
        return self._connection.execute(statement).scalar_one()


def _page(statement: Select, query: TaskQuery) -> Select:
    return (filtered(statement, query, sorted_by=query.sort).order_by(*order(t.human_task.c, query.sort))
            .limit(query.limit).offset(query.offset))


_CASE_COLUMNS = (t.case_record.c.subject_name, t.case_record.c.subject_ref, t.case_record.c.setting,
                 t.case_record.c.process_id)


def _timer(row) -> Timer:
    return _from_row(Timer, row, status=TimerStatus)


class SqlTimerRepository(_Repository):
    """Waiting timer events; the database, not the scheduler, is the source of truth."""

    def add(self, timer: Timer) -> Timer:
        timer.id = self._insert(t.timer, _values(timer))
        return timer

    def update(self, timer: Timer) -> None:
        _update(self._connection, t.timer, timer, "Timer")

    def for_case(self, case_id: int, *, pending_only: bool = True,
                 statuses: Collection[TimerStatus] | None = None) -> list[Timer]:
        if statuses is not None:
            values = [TimerStatus(status).value for status in statuses]
            rows = self._connection.execute(_TIMERS_OF_CASE_IN_STATUS, {"case_id": case_id, "statuses": values})
            return [_timer(row) for row in rows]
        statement = _PENDING_TIMERS_OF_CASE if pending_only else _TIMERS_OF_CASE
        return [_timer(row) for row in self._connection.execute(statement, {"case_id": case_id})]

    def get(self, timer_id: int) -> Timer | None:
        return self._get(t.timer, timer_id, _timer)

    def due(self, now: datetime, *, limit: int = 100) -> list[Timer]:
        """Pending timers whose due time has come, oldest first."""
        return [_timer(row) for row in self._connection.execute(self._due(now, limit=limit))]

    def claim(self, now: datetime, *, owner: str, lease_until: datetime, limit: int) -> list[Timer]:
        """Lease up to `limit` firable timers to `owner` until `lease_until`, oldest due first.

        On PostgreSQL the candidates are locked FOR UPDATE SKIP LOCKED, so concurrent
        claimers pass over each other's rows instead of queueing behind them; SQLite has
        one writer, and the write unit of work holds its lock.
        """
        columns = t.timer.c
        candidates = (
            self._due(now, limit=limit)
            .with_only_columns(columns.id)
            .where(
                or_(columns.retry_at.is_(None), columns.retry_at <= now),
                or_(columns.lease_expires_at.is_(None), columns.lease_expires_at <= now),
                # A suspended or failed case keeps its timers: they must not fill every batch.
                exists().where(t.case_record.c.id == columns.case_id, t.case_record.c.status == CaseStatus.ACTIVE.value),
            )
        )
        if self._connection.dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        statement = (
            update(t.timer)
            .where(columns.id.in_(candidates.scalar_subquery()))
            .values(lease_owner=owner, lease_expires_at=lease_until)
            .returning(*t.timer.c)
        )
        claimed = [_timer(row) for row in self._connection.execute(statement)]
        return sorted(claimed, key=lambda timer: (timer.due_at, timer.id))

    def release(self, timer_id: int, *, owner: str) -> None:
        """Give up `owner`'s lease on a timer it did not fire, so the next poll takes it."""
        columns = t.timer.c
        self._connection.execute(
            update(t.timer)
            .where(columns.id == timer_id, columns.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None)
        )

    def release_all(self, *, owner: str) -> int:
        """Give up every lease `owner` holds on timers it has not fired; return how many."""
        columns = t.timer.c
        return self._connection.execute(
            update(t.timer)
            .where(columns.lease_owner == owner, columns.status == TimerStatus.PENDING.value)
            .values(lease_owner=None, lease_expires_at=None)
        ).rowcount

    @staticmethod
    def _due(now: datetime, *, limit: int) -> Select:
        # The one definition of "due"; claim() narrows it to the firable ones.
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
