"""Keep the rows derived from a case's engine state in step with it, in the same transaction.

After every action the inbox (`human_task`), the `timer` table, the message waits
and the case row itself must say exactly what the engine says. This module computes
the differences and writes them through the unit of work.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from .due_rules import DuePolicy, ready_task_window
from .engine import CaseRun
from .model import (
    Case,
    CaseEvent,
    CaseStatus,
    HumanTask,
    MessageWait,
    TaskStatus,
    Timer,
    TimerStatus,
)
from .ports import UnitOfWork

DEFAULT_POLICY = DuePolicy()

def json_safe(data: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of case data that any JSON column can hold (dates become ISO text)."""
    return json.loads(json.dumps(data, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def sync_case(
    uow: UnitOfWork,
    case: Case,
    run: CaseRun,
    *,
    now: datetime,
    actor: str,
    completed_task_ref: str | None = None,
    policy: DuePolicy = DEFAULT_POLICY,
    pending_timers: list[Timer] | None = None,
    open_tasks: list[HumanTask] | None = None,
) -> None:
    """Write the case's new state and every derived row; append events for what changed.

    `pending_timers`, `open_tasks`: the case's pending timer rows or open task rows when the
    caller has just read them in this transaction, after the case (the scheduler and a task's
    completion have), saving a second read.
    """
    case.state = run.serialize()
    case.data = {**(case.data or {}), **json_safe(run.written)}
    if run.elements_done:
        done = {path: set(ids) for path, ids in (case.elements_done or {}).items()}
        for path, ids in run.elements_done.items():
            done.setdefault(path, set()).update(ids)
        case.elements_done = {path: sorted(ids) for path, ids in done.items()}
    case.updated_at = now
    finished = run.completed and case.status == CaseStatus.ACTIVE
    if finished:
        case.status, case.closed_at = CaseStatus.COMPLETED, now
    if case.id is None:
        uow.cases.add(case)
        record_event(uow, case, now, actor, "case_opened", {
            "process_id": case.process_id, "process_version_id": case.process_version_id,
            "subject_name": case.subject_name, "subject_ref": case.subject_ref,
        })
    else:
        uow.cases.save(case)
    if finished:
        record_event(uow, case, now, actor, "case_completed", {})
    for message in run.sent_messages:
        record_event(uow, case, now, actor, "message_sent", {"name": message.name, "payload": json_safe({"p": message.payload})["p"]})
    _sync_tasks(uow, case, run, now=now, actor=actor, completed_task_ref=completed_task_ref, policy=policy,
                open_tasks=open_tasks)
    _sync_timers(uow, case, run, now=now, pending=pending_timers)
    waits = run.waiting_messages()
    # Most actions leave the message waits as they were: then there is nothing to rewrite.
    if waits != run.message_waits_at_load:
        uow.messages.replace_for_case(
            case.id, [MessageWait(case.id, m.name, m.task_ref, m.element_id, json_safe(m.correlation)) for m in waits],
        )


def _sync_tasks(uow, case, run, *, now, actor, completed_task_ref, policy, open_tasks=None) -> None:
    ready = {t.task_ref: t for t in run.ready_tasks()}
    for task in uow.tasks.for_case(case.id, open_only=True) if open_tasks is None else open_tasks:
        # A task a person added lives outside the diagram: it stays open while the case does.
        if task.adhoc and case.status in (CaseStatus.ACTIVE, CaseStatus.SUSPENDED):
            continue
        if task.task_ref in ready:
            _restart_clock(uow, case, task, ready.pop(task.task_ref), run, now=now, actor=actor, policy=policy)
            continue
        if task.task_ref == completed_task_ref:
            task.status, task.completed_at, task.completed_by = TaskStatus.COMPLETED, now, actor
        else:
            task.status = TaskStatus.CANCELLED
            record_event(uow, case, now, actor, "task_cancelled", {"task_id": task.id, "element_id": task.element_id})
        uow.tasks.update(task)
    for ready_task in ready.values():
        window = ready_task_window(ready_task, opened_at=now, data=run.task_data(ready_task.task_ref), policy=policy)
        due_at, at_risk_at = (window.due_at, window.at_risk_at) if window else (None, None)
        task = uow.tasks.add(
            HumanTask(
                case_id=case.id,
                task_ref=ready_task.task_ref,
                element_id=ready_task.element_id,
                title=ready_task.title,
                candidate_role=ready_task.lane,
                status=TaskStatus.OPEN,
                created_at=now,
                priority=case.priority,
                due_at=due_at,
                at_risk_at=at_risk_at,
                form_ref=ready_task.form_ref,
                ui_form_ref=ready_task.ui_form_ref,
                instructions=ready_task.instructions,
            )
        )
        record_event(uow, case, now, actor, "task_created", {
            "task_id": task.id, "element_id": task.element_id, "title": task.title,
            "candidate_role": task.candidate_role, "due_at": _iso(due_at),
        })


def _restart_clock(uow, case, task, ready_task, run, *, now, actor, policy) -> None:
    """Work out an open task's due window again when this action rewrote a variable its due rule reads.

    The clock restarts from the new value: a corrected inpatient order time restarts the
    IM notice clock. The task's own copy of the data may be an older branch's, so the
    values this action wrote take precedence.
    """
    rule = ready_task.properties
    reads = {str(rule[name]).strip() for name in ("dueFrom", "dueIn", "calendar") if rule.get(name)}
    rewritten = sorted(reads & run.written.keys())
    if not rewritten:
        return
    data = {**run.task_data(ready_task.task_ref), **run.written}
    window = ready_task_window(ready_task, opened_at=task.created_at, data=data, policy=policy)
    due_at, at_risk_at = (window.due_at, window.at_risk_at) if window else (None, None)
    if (due_at, at_risk_at) == (task.due_at, task.at_risk_at):
        return
    old_due_at = task.due_at
    task.due_at, task.at_risk_at = due_at, at_risk_at
    uow.tasks.update(task)
    record_event(uow, case, now, actor, "due_changed", {
        "task_id": task.id, "element_id": task.element_id, "title": task.title, "because_of": rewritten,
        "old_due_at": _iso(old_due_at), "new_due_at": _iso(due_at), "new_at_risk_at": _iso(at_risk_at),
    })


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _sync_timers(uow, case, run, *, now, pending=None) -> None:
    waiting = {t.task_ref: t for t in run.waiting_timers()}
    # A timer that failed keeps its row (and its incident) while the engine still waits on it: no second row.
    failed: set[str] | None = None
    if pending is None:
        rows = uow.timers.for_case(case.id, statuses=(TimerStatus.PENDING, TimerStatus.FAILED))
        pending = [timer for timer in rows if timer.status == TimerStatus.PENDING]
        failed = {timer.task_ref for timer in rows if timer.status == TimerStatus.FAILED}
    for timer in pending:
        current = waiting.pop(timer.task_ref, None)
        if current is None:
            # Gone without firing (its task was completed first, the case cancelled): cancelled, even if it was due.
            timer.status = TimerStatus.FIRED if timer.task_ref in run.fired_timer_refs else TimerStatus.CANCELLED
            timer.fired_at = now if timer.status == TimerStatus.FIRED else None
        elif current.due_at is not None and current.due_at != timer.due_at:
            # A new due time is a new clock: earlier failures and back-off no longer apply.
            timer.due_at, timer.attempts, timer.retry_at, timer.last_error = current.due_at, 0, None, None
        else:
            continue
        uow.timers.update(timer)
    if waiting and failed is None:
        failed = {timer.task_ref for timer in uow.timers.for_case(case.id, statuses=[TimerStatus.FAILED])}
    for waiting_timer in waiting.values():
        if waiting_timer.due_at is not None and waiting_timer.task_ref not in failed:
            uow.timers.add(Timer(case.id, waiting_timer.task_ref, waiting_timer.element_id, waiting_timer.due_at))


def record_event(uow: UnitOfWork, case: Case, now: datetime, actor: str, kind: str, payload: dict) -> None:
    """Append one event to the case's audit trail."""
    uow.events.append(CaseEvent(case.id, now, actor, kind, payload))
