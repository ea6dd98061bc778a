"""What the KPIs read: narrow rows of one setting over one period, one query each.

Case data is read value by value (JSON_EXTRACT on SQLite, -> on PostgreSQL), never whole
documents: a long workers' comp case carries years of appointments the KPIs do not need.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select

from workflows.kpis import CaseFacts, Submission, TaskFacts
from workflows.model import OPEN_TASK_STATUSES, CaseStatus, TaskStatus

from .. import tables as t
from .base import _Repository

OPEN_TASKS = [status.value for status in OPEN_TASK_STATUSES]


def _cases_open_during(setting: str, start: datetime, end: datetime):
    """The setting's cases open at some time in [start, end), cancelled ones left out (conditions on case_record)."""
    case = t.case_record.c
    return (case.setting == setting, case.status != CaseStatus.CANCELLED.value, case.opened_at < end,
            or_(case.closed_at.is_(None), case.closed_at >= start))


class SqlKpiRepository(_Repository):
    def case_data(self, *, setting: str, start: datetime, end: datetime, keys: Sequence[str]) -> list[CaseFacts]:
        case = t.case_record.c
        values = [case.data[key].label(f"value_{number}") for number, key in enumerate(keys)]
        statement = select(case.id, case.setting, *values).where(*_cases_open_during(setting, start, end))
        return [CaseFacts(row[0], row[1], dict(zip(keys, row[2:]))) for row in self._connection.execute(statement)]

    def submissions(self, *, setting: str, start: datetime, end: datetime,
                    element_ids: Sequence[str]) -> list[Submission]:
        if not element_ids:
            return []
        event, case = t.case_event.c, t.case_record.c
        element_id = event.payload["element_id"].as_string()
        statement = (
            select(event.case_id, element_id.label("element_id"), event.at, event.payload["data"].label("data"))
            .where(event.kind == "task_completed", element_id.in_(list(element_ids)),
                   event.case_id.in_(select(case.id).where(*_cases_open_during(setting, start, end))))
        )
        return [Submission(row.case_id, row.element_id, row.at, row.data if isinstance(row.data, dict) else {})
                for row in self._connection.execute(statement)]

    def completed_tasks(self, *, setting: str, start: datetime, end: datetime) -> list[TaskFacts]:
        task, case = t.human_task.c, t.case_record.c
        statement = (
            select(case.setting, task.element_id, task.title, task.created_at, task.due_at, task.completed_at,
                   task.completed_by, task.adhoc)
            .join_from(t.human_task, t.case_record, task.case_id == case.id)
            .where(case.setting == setting, task.status == TaskStatus.COMPLETED.value,
                   task.completed_at >= start, task.completed_at < end)
        )
        return [TaskFacts(**row._asdict()) for row in self._connection.execute(statement)]

    def open_overdue_by_assignee(self, *, setting: str, due_before: datetime) -> dict[str, int]:
        task, case = t.human_task.c, t.case_record.c
        statement = (
            select(task.assignee, func.count())
            .join_from(t.human_task, t.case_record, task.case_id == case.id)
            .where(case.setting == setting, task.status.in_(OPEN_TASKS), task.assignee.is_not(None),
                   task.due_at < due_before)
            .group_by(task.assignee)
        )
        return dict(tuple(row) for row in self._connection.execute(statement))
