"""Where running cases wait, per process version and diagram element: a few GROUP BY queries, never a case resumed.

A case waits at an element when it has an open task, a pending (or, on hold, paused)
timer, a message wait or an open incident there. The four kinds of row are read as one
UNION ALL over the version's running cases in the asker's settings.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import DateTime, Integer, String, case as when, func, literal, null, select, union_all

from workflows.model import OPEN_TASK_STATUSES, CaseStatus, IncidentStatus, TimerStatus
from workflows.ports import ElementLoad, VersionLoad, WaitingCase

from .. import tables as t
from .base import _Repository

RUNNING = [status.value for status in CaseStatus if status not in (CaseStatus.COMPLETED, CaseStatus.CANCELLED)]
OPEN_TASKS = [status.value for status in OPEN_TASK_STATUSES]
WAITING_TIMERS = [TimerStatus.PENDING.value, TimerStatus.PAUSED.value]


def _running_ids(*, process_id=None, settings: Sequence[str] | None = None):
    """The ids of the running cases (of a process) in these settings, read from indexes alone.

    No case row is read: a case row holds the engine state, and on SQLite a long stay's
    state spills into overflow pages that must be read to reach the columns after it
    (100,000 cases with 20 kB of state each: the element counts took 2.5 s joined to the
    case rows, 0.6 s this way; PostgreSQL keeps the state out of line, 0.3-0.4 s either way).
    """
    case = t.case_record.c
    of_process = [case.process_id == process_id] if process_id is not None else []
    running = select(case.id).where(case.status.in_(RUNNING), *of_process)
    if settings is None:
        return running
    return running.where(case.id.in_(select(case.id).where(case.setting.in_(list(settings)), *of_process)))


def _running_cases(process_version_id: int, settings: Sequence[str] | None):
    """The ids of the version's running cases in these settings (from indexes alone, as `_running_ids`)."""
    case = t.case_record.c
    process_id = (select(t.process_version.c.process_id)
                  .where(t.process_version.c.id == process_version_id).scalar_subquery())
    return select(case.id).where(case.process_version_id == process_version_id,
                                 case.id.in_(_running_ids(process_id=process_id, settings=settings)))


class SqlProcessViewRepository(_Repository):
    """Counts of waiting cases for the process view, and the cases behind each count."""

    def versions(self, *, process_id: str | None = None, settings: Sequence[str] | None = None) -> list[VersionLoad]:
        """Every deployed version (of one process), by process and version, with counts of cases in `settings`."""
        version, case, incident = t.process_version.c, t.case_record.c, t.incident.c
        running = _running_ids(process_id=process_id, settings=settings)
        cases = (select(case.process_version_id, func.count().label("number"))
                 .where(case.id.in_(running)).group_by(case.process_version_id).subquery("cases"))
        incidents = (select(case.process_version_id, func.count().label("number"))
                     .join_from(t.incident, t.case_record, incident.case_id == case.id)
                     .where(incident.status == IncidentStatus.OPEN.value, case.id.in_(running))
                     .group_by(case.process_version_id).subquery("incidents"))
        statement = (
            select(version.id.label("process_version_id"), version.process_id, version.version, version.name,
                   version.setting, version.deployed_at, func.coalesce(cases.c.number, 0).label("running_cases"),
                   func.coalesce(incidents.c.number, 0).label("open_incidents"))
            .outerjoin(cases, cases.c.process_version_id == version.id)
            .outerjoin(incidents, incidents.c.process_version_id == version.id)
            .order_by(version.process_id, version.version)
        )
        if process_id is not None:
            statement = statement.where(version.process_id == process_id)
        return [VersionLoad(**row._asdict()) for row in self._connection.execute(statement)]

    def load_by_element(self, *, process_version_id: int, shown: Mapping[str, str | None], now: datetime,
                        settings: Sequence[str] | None = None) -> list[ElementLoad]:
        """Count the running cases of a version per element they are drawn on (see the port)."""
        waits = _waits(_running_cases(process_version_id, settings), now)
        moved = {source: target for source, target in shown.items() if target != source}
        drawn_on = when(moved, value=waits.c.element_id, else_=waits.c.element_id) if moved else waits.c.element_id
        placed = select(drawn_on.label("element_id"), waits.c.case_id, waits.c.overdue, waits.c.incident).subquery()
        statement = (
            select(placed.c.element_id, func.count(placed.c.case_id.distinct()).label("cases"),
                   func.sum(placed.c.overdue).label("overdue"), func.sum(placed.c.incident).label("incidents"))
            .where(placed.c.element_id.is_not(None))
            .group_by(placed.c.element_id)
            .order_by(placed.c.element_id)
        )
        return [ElementLoad(row.element_id, row.cases, int(row.overdue or 0), int(row.incidents or 0))
                for row in self._connection.execute(statement)]

    def cases_at(self, *, process_version_id: int, element_ids: Sequence[str], now: datetime,
                 settings: Sequence[str] | None = None, limit: int = 50, offset: int = 0) -> list[WaitingCase]:
        """The running cases of a version waiting at any of these element ids (see the port for the order)."""
        waits = _waits(_running_cases(process_version_id, settings), now, element_ids=element_ids)
        page = (
            select(waits.c.case_id, func.min(waits.c.since).label("since"), func.min(waits.c.due_at).label("due_at"),
                   func.max(waits.c.overdue).label("overdue"), func.max(waits.c.incident).label("incident"),
                   func.min(waits.c.assignee).label("assignee"), func.min(waits.c.candidate_role).label("role"))
            .group_by(waits.c.case_id)
            .order_by(func.min(waits.c.since).is_(None), func.min(waits.c.since), func.min(waits.c.due_at).is_(None),
                      func.min(waits.c.due_at), waits.c.case_id)
            .limit(limit).offset(offset)
            .subquery("page")
        )
        case = t.case_record.c
        # Only the page's case rows are read: for a wait on a timer or a message, the case's last move.
        since = func.coalesce(page.c.since, case.updated_at, case.opened_at)
        statement = (
            select(page, since.label("waiting_since"), case.subject_name, case.subject_ref, case.setting, case.status)
            .join(t.case_record, case.id == page.c.case_id)
            .order_by(page.c.since.is_(None), page.c.since, page.c.due_at.is_(None), page.c.due_at, page.c.case_id)
        )
        return [
            WaitingCase(case_id=row.case_id, subject_name=row.subject_name, subject_ref=row.subject_ref,
                        setting=row.setting, status=CaseStatus(row.status), since=row.waiting_since,
                        due_at=row.due_at, assignee=row.assignee, candidate_role=row.role, overdue=bool(row.overdue),
                        incident=bool(row.incident))
            for row in self._connection.execute(statement)
        ]

    def count_cases_at(self, *, process_version_id: int, element_ids: Sequence[str],
                       settings: Sequence[str] | None = None) -> int:
        waits = _waits(_running_cases(process_version_id, settings), None, element_ids=element_ids)
        return self._connection.execute(select(func.count(waits.c.case_id.distinct()))).scalar_one()


def _waits(running, now: datetime | None, *, element_ids: Sequence[str] | None = None):
    """Every wait of the running cases (at these element ids): one row per task, timer, message wait, incident."""
    task, timer, wait, incident = t.human_task.c, t.timer.c, t.message_wait.c, t.incident.c
    no_text, no_time, zero = null().cast(String), null().cast(DateTime), literal(0, Integer)

    def of(table, *columns, where=()):
        statement = (select(table.c.case_id, table.c.element_id, *columns)
                     .where(table.c.case_id.in_(running), *where))
        return statement.where(table.c.element_id.in_(list(element_ids))) if element_ids is not None else statement

    overdue = when((task.due_at <= now, 1), else_=0) if now is not None else zero
    return union_all(
        of(t.human_task, task.created_at.label("since"), task.due_at.label("due_at"), overdue.label("overdue"),
           zero.label("incident"), task.assignee, task.candidate_role, where=[task.status.in_(OPEN_TASKS)]),
        of(t.timer, no_time, timer.due_at, zero, zero, no_text, no_text, where=[timer.status.in_(WAITING_TIMERS)]),
        of(t.message_wait, no_time, no_time, zero, zero, no_text, no_text),
        of(t.incident, incident.created_at, no_time, zero, literal(1, Integer), no_text, no_text,
           where=[incident.status == IncidentStatus.OPEN.value]),
    ).subquery("waits")
