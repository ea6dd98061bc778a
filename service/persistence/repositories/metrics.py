"""Operational counts for the metrics endpoint: one GROUP BY query each, never a row per case."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import case as when, exists, func, select

from workflows.model import OPEN_TASK_STATUSES, CaseStatus, IncidentStatus, TimerStatus

from .. import tables as t
from .base import _Repository

OPEN_TASKS = [status.value for status in OPEN_TASK_STATUSES]


class SqlMetricsRepository(_Repository):
    """Counts of cases, tasks, incidents and timers, as plain dicts keyed by their labels."""

    def settings(self) -> list[str]:
        """List every setting a deployed process belongs to, so a setting with nothing open still shows zeros."""
        column = t.process_version.c.setting
        return list(self._connection.execute(select(column).distinct().order_by(column)).scalars())

    def cases_by_status_and_setting(self) -> dict[tuple[str, str], int]:
        """Count the cases of each (status, setting) that has any."""
        case = t.case_record.c
        statement = select(case.status, case.setting, func.count()).group_by(case.status, case.setting)
        return {(row.status, row.setting): row[2] for row in self._connection.execute(statement)}

    def open_tasks_by_setting_and_role(self, now: datetime) -> dict[tuple[str, str | None], dict[str, int]]:
        """Count the open or claimed tasks of each (setting, candidate role), and how many are overdue at `now`."""
        task, case = t.human_task.c, t.case_record.c
        overdue = func.sum(when((task.due_at <= now, 1), else_=0))
        statement = (
            select(case.setting, task.candidate_role, func.count().label("open"), overdue.label("overdue"))
            .join_from(t.human_task, t.case_record, task.case_id == case.id)
            .where(task.status.in_(OPEN_TASKS))
            .group_by(case.setting, task.candidate_role)
        )
        return {(row.setting, row.candidate_role): {"open": row.open, "overdue": int(row.overdue or 0)}
                for row in self._connection.execute(statement)}

    def open_incidents_by_setting(self) -> dict[str, int]:
        """Count the open incidents of each setting that has any."""
        incident, case = t.incident.c, t.case_record.c
        statement = (
            select(case.setting, func.count())
            .join_from(t.incident, t.case_record, incident.case_id == case.id)
            .where(incident.status == IncidentStatus.OPEN.value)
            .group_by(case.setting)
        )
        return dict(tuple(row) for row in self._connection.execute(statement))

    def timers_by_status(self) -> dict[str, int]:
        """Count the timers of each status (every status, zero included)."""
        column = t.timer.c.status
        counts = {status.value: 0 for status in TimerStatus}
        counts.update(tuple(row) for row in self._connection.execute(select(column, func.count()).group_by(column)))
        return counts

    def oldest_overdue_timer(self, now: datetime) -> datetime | None:
        """Return when the longest-overdue pending timer of an active case fell due, or None if none has."""
        timer, case = t.timer.c, t.case_record.c
        # A suspended case's timers wait on purpose: they say nothing about the scheduler.
        statement = select(func.min(timer.due_at)).where(
            timer.status == TimerStatus.PENDING.value,
            timer.due_at <= now,
            exists().where(case.id == timer.case_id, case.status == CaseStatus.ACTIVE.value),
        )
        return self._connection.execute(statement).scalar_one()
