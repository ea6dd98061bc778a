"""The stuck-case scan's storage: what it finds, the flags it keeps, the mark that elects one scanner.

Findings come from a handful of set-based queries over the derived rows (tasks, timers,
incidents, message waits) and the case row's columns; the engine state is never read.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import (
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)

from workflows.model import (
    OPEN_TASK_STATUSES,
    CaseFlag,
    CaseStatus,
    FlaggedCase,
    FlagReason,
    IncidentStatus,
    TimerStatus,
)
from workflows.ports import FlagChanges, FlagQuery, FlagSort

from .. import tables as t
from .base import _from_row, _Repository, _values

ACTIVE = CaseStatus.ACTIVE.value
CLOSED = (CaseStatus.COMPLETED.value, CaseStatus.CANCELLED.value)
OPEN_TASKS = [status.value for status in OPEN_TASK_STATUSES]
# What a continuing flag takes from its current finding; `id` and `since` stay as first found.
FOLLOWED = ("setting", "process_id", "assignee", "candidate_role", "element_id", "detail")


def _flag(row) -> CaseFlag:
    return _from_row(CaseFlag, row, reason=FlagReason(row.reason))


def _key(flag: CaseFlag) -> tuple[int, str, str]:
    return flag.case_id, FlagReason(flag.reason).value, flag.subject


def _plain(text: str) -> str:
    return " ".join(text.split())


def _stalled_detail(awaited: list[str]) -> str:
    if not awaited:
        return "No open task and no pending timer: nothing will move the case on."
    names = " or ".join(f"'{name}'" for name in awaited)
    return f"No open task and no pending timer: the case only waits for the message {names}."


def _flag_order(columns, sort: FlagSort) -> tuple:
    """The ORDER BY of a stuck-case sort, on case_flag's columns or a subquery's copy of them."""
    return {
        FlagSort.SINCE: (columns.since, columns.id),
        FlagSort.REASON: (columns.reason, columns.since, columns.id),
        FlagSort.SETTING: (columns.setting, columns.since, columns.id),
        FlagSort.CASE: (columns.case_id, columns.since, columns.id),
    }[FlagSort(sort)]


class SqlCaseFlagRepository(_Repository):
    """Stuck-case flags: found by the scan, read by the dashboard."""

    def find_stuck(self, *, now: datetime, timer_due_before: datetime, idle_before: datetime) -> list[CaseFlag]:
        """Compute what holds at `now`, one finding per case, reason and subject (see the port)."""
        return [
            *self._late_tasks(now),
            *self._late_timers(now, timer_due_before),
            *self._open_incidents(now),
            *self._stalled_cases(now),
            *self._idle_cases(now, idle_before),
        ]

    def _late_tasks(self, now: datetime) -> list[CaseFlag]:
        case, task = t.case_record.c, t.human_task.c
        statement = (
            select(
                task.id, task.case_id, task.title, task.element_id, task.assignee, task.candidate_role,
                task.due_at, task.at_risk_at, case.setting, case.process_id,
            )
            .join_from(t.human_task, t.case_record, task.case_id == case.id)
            .where(case.status == ACTIVE, task.status.in_(OPEN_TASKS), or_(task.due_at <= now, task.at_risk_at <= now))
        )
        findings = []
        for row in self._connection.execute(statement):
            overdue = row.due_at is not None and row.due_at <= now
            findings.append(CaseFlag(
                case_id=row.case_id,
                reason=FlagReason.TASK_OVERDUE if overdue else FlagReason.TASK_AT_RISK,
                subject=f"task:{row.id}",
                since=row.due_at if overdue else row.at_risk_at,
                detected_at=now, setting=row.setting, process_id=row.process_id, assignee=row.assignee,
                candidate_role=row.candidate_role, element_id=row.element_id, detail=row.title,
            ))
        return findings

    def _late_timers(self, now: datetime, due_before: datetime) -> list[CaseFlag]:
        case, timer = t.case_record.c, t.timer.c
        statement = (
            select(timer.id, timer.case_id, timer.element_id, timer.due_at, timer.attempts, case.setting, case.process_id)
            .join_from(t.timer, t.case_record, timer.case_id == case.id)
            .where(case.status == ACTIVE, timer.status == TimerStatus.PENDING.value, timer.due_at <= due_before)
        )
        findings = []
        for row in self._connection.execute(statement):
            failed = f" after {row.attempts} failed attempt{'s' if row.attempts != 1 else ''}" if row.attempts else ""
            findings.append(CaseFlag(
                case_id=row.case_id, reason=FlagReason.TIMER_OVERDUE, subject=f"timer:{row.id}", since=row.due_at,
                detected_at=now, setting=row.setting, process_id=row.process_id, element_id=row.element_id,
                detail=f"The timer '{row.element_id}' was due at {row.due_at:%Y-%m-%d %H:%M} UTC and has not fired{failed}.",
            ))
        return findings

    def _open_incidents(self, now: datetime) -> list[CaseFlag]:
        case, incident = t.case_record.c, t.incident.c
        statement = (
            select(incident.id, incident.case_id, incident.element_id, incident.message, incident.created_at,
                   case.setting, case.process_id)
            .join_from(t.incident, t.case_record, incident.case_id == case.id)
            .where(incident.status == IncidentStatus.OPEN.value, case.status.not_in(CLOSED))
        )
        return [
            CaseFlag(
                case_id=row.case_id, reason=FlagReason.INCIDENT, subject=f"incident:{row.id}", since=row.created_at,
                detected_at=now, setting=row.setting, process_id=row.process_id, element_id=row.element_id,
                detail=_plain(row.message),
            )
            for row in self._connection.execute(statement)
        ]

    def _stalled_cases(self, now: datetime) -> list[CaseFlag]:
        case, task, timer, wait = t.case_record.c, t.human_task.c, t.timer.c, t.message_wait.c
        # Every active case, then every open task's and pending timer's case marked busy, grouped
        # once: a case with no busy row is stalled. Correlated NOT EXISTS reads better, but SQLite
        # without statistics looks each case's timers up through (status, due_at) and goes
        # quadratic (minutes for 100,000 cases); PostgreSQL runs NOT IN over a list larger than
        # work_mem the same way.
        marked = union_all(
            select(case.id.label("case_id"), literal(0).label("busy")).where(case.status == ACTIVE),
            select(task.case_id, literal(1)).where(task.status.in_(OPEN_TASKS)),
            select(timer.case_id, literal(1)).where(timer.status == TimerStatus.PENDING.value),
        ).subquery("marked")
        stalled_ids = select(marked.c.case_id).group_by(marked.c.case_id).having(func.max(marked.c.busy) == 0)
        statement = (
            select(case.id, case.setting, case.process_id, self._last_action().label("last_action"), wait.name)
            .outerjoin(t.message_wait, wait.case_id == case.id)
            .where(case.id.in_(stalled_ids))
            .order_by(case.id, wait.name)
        )
        stalled: dict[int, tuple] = {}
        awaited: dict[int, list[str]] = defaultdict(list)
        for row in self._connection.execute(statement):
            stalled.setdefault(row.id, row)
            if row.name is not None and row.name not in awaited[row.id]:
                awaited[row.id].append(row.name)
        return [
            CaseFlag(
                case_id=case_id, reason=FlagReason.STALLED, subject="case", since=row.last_action, detected_at=now,
                setting=row.setting, process_id=row.process_id, detail=_stalled_detail(awaited[case_id]),
            )
            for case_id, row in stalled.items()
        ]

    def _idle_cases(self, now: datetime, idle_before: datetime) -> list[CaseFlag]:
        case = t.case_record.c
        # Spelt as two ranges rather than one COALESCE so the (status, updated_at) index serves it.
        idle = or_(case.updated_at < idle_before, and_(case.updated_at.is_(None), case.opened_at < idle_before))
        statement = select(case.id, case.setting, case.process_id, self._last_action().label("last_action")).where(
            case.status == ACTIVE, idle
        )
        return [
            CaseFlag(
                case_id=row.id, reason=FlagReason.IDLE, subject="case", since=row.last_action, detected_at=now,
                setting=row.setting, process_id=row.process_id,
                detail=f"No engine action since {row.last_action:%Y-%m-%d %H:%M} UTC.",
            )
            for row in self._connection.execute(statement)
        ]

    @staticmethod
    def _last_action():
        return func.coalesce(t.case_record.c.updated_at, t.case_record.c.opened_at)

    def replace_all(self, findings: list[CaseFlag], *, now: datetime) -> FlagChanges:
        """Make the stored flags exactly `findings`: insert, delete, and carry on (see the port)."""
        # Rows, not records: with tens of thousands of flags standing, building a CaseFlag for
        # each would cost more than every query of the scan together.
        stored = {(row.case_id, row.reason, row.subject): row for row in self._connection.execute(select(t.case_flag))}
        raised, changed = [], []
        for finding in findings:
            previous = stored.pop(_key(finding), None)
            if previous is None:
                finding.detected_at = now
                raised.append(finding)
                continue
            finding.id, finding.since, finding.detected_at = previous.id, previous.since, previous.detected_at
            if any(getattr(finding, name) != getattr(previous, name) for name in FOLLOWED):
                changed.append(finding)
        cleared = [_flag(row) for row in stored.values()]
        flag_id = bindparam("flag_id")
        if cleared:
            self._connection.execute(delete(t.case_flag).where(t.case_flag.c.id == flag_id),
                                     [{"flag_id": flag.id} for flag in cleared])
        if changed:
            self._connection.execute(
                update(t.case_flag).where(t.case_flag.c.id == flag_id),
                [{"flag_id": flag.id} | {name: getattr(flag, name) for name in FOLLOWED} for flag in changed],
            )
        if raised:
            # Rows come back in no promised order (SQLite would otherwise insert one row per
            # statement), so each id is matched to its flag by the flag's key.
            columns = t.case_flag.c
            inserted = self._connection.execute(
                insert(t.case_flag).returning(columns.id, columns.case_id, columns.reason, columns.subject),
                [_values(flag) for flag in raised],
            )
            ids = {(row.case_id, row.reason, row.subject): row.id for row in inserted}
            for flag in raised:
                flag.id = ids[_key(flag)]
        return FlagChanges(raised=raised, cleared=cleared)

    def follow_assignee(self, task_ids, assignee: str) -> None:
        """Show the new assignee on the flags of reassigned tasks (see the port)."""
        if task_ids:
            self._connection.execute(update(t.case_flag).where(
                t.case_flag.c.subject.in_([f"task:{task_id}" for task_id in task_ids])).values(assignee=assignee))

    def clear_settled(self, case_id: int) -> int:
        """Delete the case's flags a fix has settled (see the port)."""
        flags = t.case_flag.c
        subjects = {row.id: row.subject for row in self._connection.execute(
            select(flags.id, flags.subject, flags.reason).where(flags.case_id == case_id))
            if row.reason not in (FlagReason.IDLE.value, FlagReason.STALLED.value)}
        standing = {f"task:{i}" for i in self._ids(t.human_task, t.human_task.c.status.in_(OPEN_TASKS), case_id)}
        standing |= {f"timer:{i}" for i in self._ids(t.timer, t.timer.c.status == TimerStatus.PENDING.value, case_id)}
        standing |= {f"incident:{i}" for i in
                     self._ids(t.incident, t.incident.c.status == IncidentStatus.OPEN.value, case_id)}
        settled = [flags.reason.in_([FlagReason.IDLE.value, FlagReason.STALLED.value]),
                   flags.id.in_([flag_id for flag_id, subject in subjects.items() if subject not in standing])]
        return self._connection.execute(delete(t.case_flag).where(flags.case_id == case_id, or_(*settled))).rowcount

    def _ids(self, table, condition, case_id: int) -> list[int]:
        return list(self._connection.execute(select(table.c.id).where(table.c.case_id == case_id, condition)).scalars())

    def query(self, query: FlagQuery) -> list[CaseFlag]:
        """List the flags the query selects, in its order (longest-standing first by default)."""
        statement = self._filtered(select(t.case_flag), query).order_by(*_flag_order(t.case_flag.c, query.sort))
        return [_flag(row) for row in self._connection.execute(statement.limit(query.limit).offset(query.offset))]

    def query_in_cases(self, query: FlagQuery) -> list[FlaggedCase]:
        """List the flags the query selects with their cases' subject and status: the page first, then its cases."""
        page = (self._filtered(select(t.case_flag), query).order_by(*_flag_order(t.case_flag.c, query.sort))
                .limit(query.limit).offset(query.offset).subquery())
        cases = t.case_record.c
        statement = (select(page, cases.subject_name, cases.subject_ref, cases.status.label("case_status"))
                     .join(t.case_record, cases.id == page.c.case_id).order_by(*_flag_order(page.c, query.sort)))
        rows = []
        for row in self._connection.execute(statement):
            values = row._asdict()
            case_fields = {name: values.pop(name) for name in ("subject_name", "subject_ref", "case_status")}
            flag = CaseFlag(**{**values, "reason": FlagReason(values["reason"])})
            rows.append(FlaggedCase(flag, case_fields["subject_name"], case_fields["subject_ref"],
                                    CaseStatus(case_fields["case_status"])))
        return rows

    def count(self, query: FlagQuery) -> int:
        """Count every flag the query selects, ignoring its limit and offset."""
        return self._connection.execute(self._filtered(select(func.count()).select_from(t.case_flag), query)).scalar_one()

    def count_by_reason(self, query: FlagQuery) -> dict[FlagReason, int]:
        """Count the flags the query selects for each reason (every reason, zero included)."""
        counts = dict.fromkeys(FlagReason, 0)
        for reason, number in self._grouped(t.case_flag.c.reason, query):
            counts[FlagReason(reason)] = number
        return counts

    def count_by_setting(self, query: FlagQuery) -> dict[str, int]:
        """Count the flags the query selects for each setting that has any."""
        return dict(self._grouped(t.case_flag.c.setting, query))

    def _grouped(self, column, query: FlagQuery) -> list[tuple]:
        statement = self._filtered(select(column, func.count()), query).group_by(column).order_by(column)
        return [tuple(row) for row in self._connection.execute(statement)]

    @staticmethod
    def _filtered(statement: Select, query: FlagQuery) -> Select:
        columns = t.case_flag.c
        if query.reasons is not None:
            statement = statement.where(columns.reason.in_([FlagReason(reason).value for reason in query.reasons]))
        if query.settings is not None:
            statement = statement.where(columns.setting.in_(list(query.settings)))
        if query.process_id is not None:
            statement = statement.where(columns.process_id == query.process_id)
        if query.assignee is not None:
            statement = statement.where(columns.assignee == query.assignee)
        if query.case_id is not None:
            statement = statement.where(columns.case_id == query.case_id)
        return statement
