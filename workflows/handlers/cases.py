"""Use cases on whole cases: open, cancel, read, list."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..derive import record_event, sync_case
from ..errors import EngineFailure, Forbidden, InvalidInput, NotFound
from ..forms import validate_submission
from ..model import Case, CaseEvent, CaseStatus, HumanTask, Incident, Timer, User
from ..services import Services
from .common import active_case, is_supervisor


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
        sync_case(uow, case, run, now=now, actor=actor.username, policy=services.due_policy)
        uow.commit()
    return case


def cancel_case(services: Services, *, actor: User, case_id: int, reason: str) -> Case:
    """Cancel an active case with a reason; its open tasks and timers are cancelled."""
    if not is_supervisor(actor):
        raise Forbidden("Only supervisors can cancel a case.")
    if not reason.strip():
        raise InvalidInput("Give a reason for cancelling the case.", {"reason": ["This field is required."]})
    now = services.clock.now()
    with services.uow() as uow:
        case = active_case(uow, case_id)
        run = services.engine.resume(services.bundles.get(uow, case.process_version_id), case.state)
        run.cancel(now=now)
        case.status, case.closed_at = CaseStatus.CANCELLED, now
        record_event(uow, case, now, actor.username, "case_cancelled", {"reason": reason})
        sync_case(uow, case, run, now=now, actor=actor.username, policy=services.due_policy)
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
