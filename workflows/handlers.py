"""The use cases: open a case, work its tasks, fire its timers, deliver its messages.

Each handler is one transaction: load, run the engine, write the new state and every
derived row, append the audit events, commit. When the engine fails, the transaction
rolls back and the failure is recorded as an incident in a transaction of its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .derive import record_event, sync_case
from .errors import Conflict, EngineFailure, Forbidden, InvalidInput, NotFound, StaleCase
from .forms import validate_submission
from .model import (
    Case,
    CaseEvent,
    CaseStatus,
    HumanTask,
    Incident,
    TaskStatus,
    Timer,
    TimerStatus,
    User,
)
from .ports import TaskQuery, UnitOfWork
from .services import Services

SUPERVISOR_ROLES = ("supervisor", "admin")
SCHEDULER = "scheduler"
MAX_TIMER_ATTEMPTS = 3


def _is_supervisor(user: User) -> bool:
    return any(user.has_role(role) for role in SUPERVISOR_ROLES)


# -- cases ---------------------------------------------------------------------------
def start_case(
    services: Services,
    *,
    actor: User,
    process_id: str,
    data: dict[str, Any] | None = None,
    subject_name: str = "",
    subject_ref: str = "",
    priority: int = 3,
) -> Case:
    """Open a case on the latest version of a process and run it to its first wait."""
    data = validate_submission(None, data if data is not None else {})
    now = services.clock.now()
    with services.uow() as uow:
        version = uow.processes.latest(process_id)
        if version is None:
            raise NotFound(f"No process '{process_id}' is deployed.")
        bundle = services.bundles.get(uow, version.id)
        try:
            run = services.engine.start(bundle, data=data, now=now)
        except EngineFailure as failure:
            raise InvalidInput(f"The case could not be started: {failure.message}") from failure
        case = Case(
            process_version_id=version.id,
            process_id=process_id,
            state="",
            status=CaseStatus.ACTIVE,
            opened_at=now,
            opened_by=actor.username,
            subject_name=subject_name,
            subject_ref=subject_ref,
            setting=version.setting,
            priority=priority,
        )
        sync_case(uow, case, run, now=now, actor=actor.username)
        uow.commit()
    return case


def cancel_case(services: Services, *, actor: User, case_id: int, reason: str) -> Case:
    """Cancel an active case with a reason; its open tasks and timers are cancelled."""
    if not _is_supervisor(actor):
        raise Forbidden("Only supervisors can cancel a case.")
    if not reason.strip():
        raise InvalidInput("Give a reason for cancelling the case.", {"reason": ["This field is required."]})
    now = services.clock.now()
    with services.uow() as uow:
        case = _active_case(uow, case_id)
        run = services.engine.resume(services.bundles.get(uow, case.process_version_id), case.state)
        run.cancel(now=now)
        case.status, case.closed_at = CaseStatus.CANCELLED, now
        record_event(uow, case, now, actor.username, "case_cancelled", {"reason": reason})
        sync_case(uow, case, run, now=now, actor=actor.username)
        uow.commit()
    return case


@dataclass
class CaseDetail:
    case: Case
    open_tasks: list[HumanTask]
    pending_timers: list[Timer]
    events: list[CaseEvent]
    open_incidents: list[Incident]


def get_case(services: Services, *, case_id: int) -> CaseDetail:
    """Return a case with its open tasks, pending timers, audit trail and open incidents."""
    with services.uow(read_only=True) as uow:
        case = uow.cases.get(case_id)
        if case is None:
            raise NotFound(f"Case {case_id} does not exist.")
        return CaseDetail(
            case=case,
            open_tasks=uow.tasks.for_case(case_id, open_only=True),
            pending_timers=uow.timers.for_case(case_id, pending_only=True),
            events=uow.events.for_case(case_id),
            open_incidents=uow.incidents.for_case(case_id, open_only=True),
        )


def list_cases(
    services: Services, *, status: str | None = None, process_id: str | None = None, limit: int = 50, offset: int = 0
) -> list[Case]:
    """Return one page of cases, newest first."""
    with services.uow(read_only=True) as uow:
        return uow.cases.list(status=status, process_id=process_id, limit=limit, offset=offset)


# -- tasks ---------------------------------------------------------------------------
def get_task_form(services: Services, *, task_id: int) -> tuple[HumanTask, dict | None, dict | None]:
    """Return a task with its JSON Schema form and UI schema."""
    with services.uow(read_only=True) as uow:
        task = uow.tasks.get(task_id)
        if task is None:
            raise NotFound(f"Task {task_id} does not exist.")
        case = uow.cases.get(task.case_id)
        bundle = services.bundles.get(uow, case.process_version_id)
    return task, bundle.forms.get(task.form_ref or ""), bundle.forms.get(task.ui_form_ref or "")


def list_tasks(services: Services, *, query: TaskQuery) -> tuple[list[HumanTask], int]:
    """Return one page of tasks matching the query, and how many match in all."""
    with services.uow(read_only=True) as uow:
        return uow.tasks.query(query), uow.tasks.count(query)


def claim_task(services: Services, *, actor: User, task_id: int) -> HumanTask:
    """Claim an open task for the acting user."""
    now = services.clock.now()
    with services.uow() as uow:
        task = _open_task(uow, task_id)
        if task.assignee == actor.username:
            return task
        if task.assignee is not None:
            raise Conflict(f"Task {task_id} is already claimed by {task.assignee}.")
        if not (actor.has_role(task.candidate_role) or _is_supervisor(actor)):
            raise Forbidden(f"Task {task_id} is for the {task.candidate_role} role, which you do not hold.")
        task.assignee, task.status = actor.username, TaskStatus.CLAIMED
        uow.tasks.update(task)
        _task_event(uow, task, now, actor, "task_claimed")
        uow.commit()
    return task


def unclaim_task(services: Services, *, actor: User, task_id: int) -> HumanTask:
    """Put a claimed task back in its team's queue."""
    now = services.clock.now()
    with services.uow() as uow:
        task = _open_task(uow, task_id)
        if task.assignee is None:
            raise Conflict(f"Task {task_id} is not claimed.")
        if task.assignee != actor.username and not _is_supervisor(actor):
            raise Forbidden(f"Task {task_id} is claimed by {task.assignee}; only they or a supervisor can release it.")
        task.assignee, task.status = None, TaskStatus.OPEN
        uow.tasks.update(task)
        _task_event(uow, task, now, actor, "task_unclaimed")
        uow.commit()
    return task


def complete_task(services: Services, *, actor: User, task_id: int, data: dict[str, Any]) -> HumanTask:
    """Complete a task with form data validated against its schema, and run the case on."""
    now = services.clock.now()
    case_id = None
    try:
        with services.uow() as uow:
            task = _open_task(uow, task_id)
            case_id = task.case_id
            if task.assignee is not None and task.assignee != actor.username and not _is_supervisor(actor):
                raise Conflict(f"Task {task_id} is claimed by {task.assignee}.")
            if task.assignee is None and not (actor.has_role(task.candidate_role) or _is_supervisor(actor)):
                raise Forbidden(f"Task {task_id} is for the {task.candidate_role} role, which you do not hold.")
            case = _active_case(uow, task.case_id)
            bundle = services.bundles.get(uow, case.process_version_id)
            schema = bundle.forms.get(task.form_ref) if task.form_ref else None
            data = validate_submission(schema, data, form_name=task.form_ref or "task")
            run = services.engine.resume(bundle, case.state)
            run.complete_task(task.task_ref, data, now=now)
            _task_event(uow, task, now, actor, "task_completed", data=data)
            sync_case(uow, case, run, now=now, actor=actor.username, completed_task_ref=task.task_ref)
            uow.commit()
    except EngineFailure as failure:
        _record_incident(services, case_id, failure, actor=actor.username, data={"task_id": task_id, "submitted": data})
        raise
    task.status, task.completed_at, task.completed_by = TaskStatus.COMPLETED, now, actor.username
    return task


# -- timers and messages -------------------------------------------------------------
def fire_due_timers(services: Services, *, limit: int = 100) -> int:
    """Fire every timer that is due, one case per transaction; return how many fired."""
    now = services.clock.now()
    with services.uow(read_only=True) as uow:
        due = uow.timers.due(now, limit=limit)
    fired = 0
    for case_id in dict.fromkeys(timer.case_id for timer in due):
        fired += _fire_case_timers(services, case_id)
    return fired


def _fire_case_timers(services: Services, case_id: int) -> int:
    now = services.clock.now()
    try:
        with services.uow() as uow:
            case = uow.cases.get(case_id)
            if case is None or case.status != CaseStatus.ACTIVE:
                return 0
            run = services.engine.resume(services.bundles.get(uow, case.process_version_id), case.state)
            fired = run.fire_due_timers(now=now)
            for timer in fired:
                record_event(uow, case, now, SCHEDULER, "timer_fired", {
                    "element_id": timer.element_id, "due_at": timer.due_at.isoformat() if timer.due_at else None,
                })
            sync_case(uow, case, run, now=now, actor=SCHEDULER)
            uow.commit()
            return len(fired)
    except StaleCase:
        return 0
    except EngineFailure as failure:
        _timer_failed(services, case_id, failure)
        return 0


def _timer_failed(services: Services, case_id: int, failure: EngineFailure) -> None:
    now = services.clock.now()
    with services.uow() as uow:
        exhausted = False
        for timer in uow.timers.for_case(case_id, pending_only=True):
            if timer.due_at <= now:
                timer.attempts += 1
                if timer.attempts >= MAX_TIMER_ATTEMPTS:
                    timer.status, exhausted = TimerStatus.FAILED, True
                uow.timers.update(timer)
        uow.commit()
    if exhausted:
        _record_incident(services, case_id, failure, actor=SCHEDULER, data={})


def deliver_message(
    services: Services,
    *,
    actor: User,
    name: str,
    payload: dict[str, Any],
    correlation: dict[str, Any] | None = None,
    case_id: int | None = None,
) -> Case:
    """Deliver a named message to the one case waiting for it with matching correlation values."""
    correlation = correlation or {}
    payload = validate_submission(None, payload)
    with services.uow(read_only=True) as uow:
        waits = uow.messages.for_case(case_id) if case_id is not None else uow.messages.find(name)
    targets = sorted({
        wait.case_id for wait in waits
        if wait.name == name and all(wait.correlation.get(key) == value for key, value in correlation.items())
    })
    described = f"message '{name}'" + (f" with correlation {correlation}" if correlation else "")
    if not targets:
        raise NotFound(f"No case is waiting for {described}.")
    if len(targets) > 1:
        raise Conflict(f"{len(targets)} cases are waiting for {described}; give correlation values or a case id.")
    now = services.clock.now()
    try:
        with services.uow() as uow:
            case = _active_case(uow, targets[0])
            run = services.engine.resume(services.bundles.get(uow, case.process_version_id), case.state)
            run.deliver_message(name, payload, now=now)
            record_event(uow, case, now, actor.username, "message_received", {"name": name, "payload": payload})
            sync_case(uow, case, run, now=now, actor=actor.username)
            uow.commit()
    except EngineFailure as failure:
        _record_incident(services, targets[0], failure, actor=actor.username, data={"message": name, "payload": payload})
        raise
    return case


# -- helpers ---------------------------------------------------------------------------
def _open_task(uow: UnitOfWork, task_id: int) -> HumanTask:
    task = uow.tasks.get(task_id)
    if task is None:
        raise NotFound(f"Task {task_id} does not exist.")
    if not task.is_open:
        by = f" by {task.completed_by}" if task.completed_by else ""
        raise Conflict(f"Task {task_id} is already {task.status.value}{by}.")
    return task


def _active_case(uow: UnitOfWork, case_id: int) -> Case:
    case = uow.cases.get(case_id)
    if case is None:
        raise NotFound(f"Case {case_id} does not exist.")
    if case.status != CaseStatus.ACTIVE:
        raise Conflict(f"Case {case_id} is {case.status.value}; only active cases can be worked.")
    return case


def _task_event(uow: UnitOfWork, task: HumanTask, now, actor: User, kind: str, *, data: dict | None = None) -> None:
    payload = {"task_id": task.id, "element_id": task.element_id, "title": task.title}
    if data is not None:
        payload["data"] = data
    uow.events.append(CaseEvent(task.case_id, now, actor.username, kind, payload))


def _record_incident(services: Services, case_id: int | None, failure: EngineFailure, *, actor: str, data: dict) -> None:
    """Record an engine failure on its case in a transaction of its own."""
    if case_id is None:
        return
    now = services.clock.now()
    with services.uow() as uow:
        incident = uow.incidents.add(Incident(
            case_id=case_id, kind=failure.kind, message=failure.message, created_at=now,
            element_id=failure.element_id, task_ref=failure.task_ref, data=data,
        ))
        uow.events.append(CaseEvent(case_id, now, actor, "incident_raised", {
            "incident_id": incident.id, "kind": failure.kind, "element_id": failure.element_id, "message": failure.message,
        }))
        uow.commit()
    failure.details["incident_id"] = incident.id
