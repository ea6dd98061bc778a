"""Use cases on whole cases: open, cancel, suspend and resume, read, list."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..derive import record_event, sync_case
from ..errors import EngineFailure, Forbidden, InvalidInput, NotFound
from ..forms import validate_submission
from ..model import Case, CaseEvent, CaseStatus, HumanTask, Incident, Note, Timer, TimerStatus, User
from ..services import Services
from .common import case_in_status, is_supervisor, visible_case


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
        # A process of a setting the actor does not cover is, to them, not deployed.
        if version is None or not actor.covers(version.setting):
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
        sync_case(uow, case, run, now=now, actor=actor.username, policy=services.due_policy)
        uow.commit()
    return case


def cancel_case(services: Services, *, actor: User, case_id: int, reason: str) -> Case:
    """Cancel an active or suspended case with a reason; its open tasks and timers are cancelled."""
    _supervisor_with_reason(actor, reason, doing="cancel", required=True)
    now = services.clock.now()
    with services.uow() as uow:
        case = case_in_status(uow, actor, case_id, (CaseStatus.ACTIVE, CaseStatus.SUSPENDED), to="cancelled")
        run = services.engine.resume(services.bundles.get(uow, case.process_version_id), case.state)
        run.cancel(now=now)
        for timer in _paused_timers(uow, case.id):
            timer.status = TimerStatus.CANCELLED
            uow.timers.update(timer)
        case.status, case.closed_at, case.suspended_at = CaseStatus.CANCELLED, now, None
        record_event(uow, case, now, actor.username, "case_cancelled", {"reason": reason})
        sync_case(uow, case, run, now=now, actor=actor.username, policy=services.due_policy)
        uow.commit()
    return case


def suspend_case(services: Services, *, actor: User, case_id: int, reason: str) -> Case:
    """Put an active case on hold: its clocks stand still and nobody can work it until it resumes."""
    _supervisor_with_reason(actor, reason, doing="suspend", required=True)
    now = services.clock.now()
    with services.uow() as uow:
        case = case_in_status(uow, actor, case_id, (CaseStatus.ACTIVE,), to="suspended")
        case.status, case.suspended_at, case.updated_at = CaseStatus.SUSPENDED, now, now
        # The case row first: its version check turns a timer firing at this moment into a clean conflict.
        uow.cases.save(case)
        for timer in uow.timers.for_case(case.id, pending_only=True):
            timer.status, timer.lease_owner, timer.lease_expires_at = TimerStatus.PAUSED, None, None
            uow.timers.update(timer)
        record_event(uow, case, now, actor.username, "case_suspended", {"reason": reason})
        uow.commit()
    return case


def resume_case(services: Services, *, actor: User, case_id: int, reason: str = "") -> Case:
    """Take a case off hold, moving every clock on by the time it stood still."""
    _supervisor_with_reason(actor, reason, doing="resume", required=False)
    now = services.clock.now()
    with services.uow() as uow:
        case = case_in_status(uow, actor, case_id, (CaseStatus.SUSPENDED,), to="resumed")
        suspended_at = case.suspended_at or now
        paused = max(now - suspended_at, timedelta(0))
        run = services.engine.resume(services.bundles.get(uow, case.process_version_id), case.state)
        run.shift_timers(paused)
        # Rows back to pending before the sync, which matches pending rows to the engine's (shifted) timers.
        for timer in _paused_timers(uow, case.id):
            timer.status, timer.due_at = TimerStatus.PENDING, timer.due_at + paused
            timer.retry_at = timer.retry_at + paused if timer.retry_at else None
            uow.timers.update(timer)
        for task in uow.tasks.for_case(case.id, open_only=True):
            if task.due_at is None and task.at_risk_at is None:
                continue
            task.due_at = task.due_at + paused if task.due_at else None
            task.at_risk_at = task.at_risk_at + paused if task.at_risk_at else None
            uow.tasks.update(task)
        case.status, case.suspended_at = CaseStatus.ACTIVE, None
        record_event(uow, case, now, actor.username, "case_resumed", {
            "reason": reason, "suspended_at": suspended_at.isoformat(), "paused_seconds": paused.total_seconds(),
        })
        sync_case(uow, case, run, now=now, actor=actor.username, policy=services.due_policy)
        uow.commit()
    return case


def _supervisor_with_reason(actor: User, reason: str, *, doing: str, required: bool) -> None:
    if not is_supervisor(actor):
        raise Forbidden(f"Only supervisors can {doing} a case.")
    if required and not reason.strip():
        raise InvalidInput(f"Give a reason to {doing} the case.", {"reason": ["This field is required."]})


def _paused_timers(uow, case_id: int) -> list[Timer]:
    return uow.timers.for_case(case_id, statuses=[TimerStatus.PAUSED])


@dataclass
class CaseDetail:
    case: Case
    open_tasks: list[HumanTask]
    pending_timers: list[Timer]  # paused ones while the case is suspended
    events: list[CaseEvent]
    open_incidents: list[Incident]
    notes: list[Note]


def get_case(services: Services, *, case_id: int, actor: User | None = None) -> CaseDetail:
    """Return a case the actor may see, with its open tasks, timers, audit trail, incidents and notes.

    `actor` None is the system reading (demo loading, tests). Everyone who may see the case
    sees what it waits on; only a task's own people open its form (see `get_task`).
    """
    with services.uow(read_only=True) as uow:
        case = visible_case(uow, actor, case_id)
        return CaseDetail(
            case=case,
            open_tasks=uow.tasks.for_case(case_id, open_only=True),
            pending_timers=(_paused_timers(uow, case_id) if case.status == CaseStatus.SUSPENDED
                            else uow.timers.for_case(case_id, pending_only=True)),
            events=uow.events.for_case(case_id),
            open_incidents=uow.incidents.for_case(case_id, open_only=True),
            notes=uow.notes.for_case(case_id),
        )


def list_cases(
    services: Services, *, actor: User | None = None, status: str | None = None, process_id: str | None = None,
    limit: int = 50, offset: int = 0,
) -> list[Case]:
    """Return one page of the cases the actor may see, newest first."""
    with services.uow(read_only=True) as uow:
        return uow.cases.list(status=status, process_id=process_id, limit=limit, offset=offset,
                              settings=actor.setting_scope if actor is not None else None)
