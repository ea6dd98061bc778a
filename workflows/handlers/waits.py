"""Use cases on what cases wait for: due timers and incoming messages."""
from __future__ import annotations

from typing import Any

from ..derive import record_event, sync_case
from ..errors import Conflict, EngineFailure, NotFound, StaleCase
from ..forms import validate_submission
from ..model import Case, CaseStatus, TimerStatus, User
from ..services import Services
from .common import SCHEDULER, active_case, record_incident

MAX_TIMER_ATTEMPTS = 3


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
            sync_case(uow, case, run, now=now, actor=SCHEDULER, policy=services.due_policy)
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
        record_incident(services, case_id, failure, actor=SCHEDULER, data={})


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
            case = active_case(uow, targets[0])
            run = services.engine.resume(services.bundles.get(uow, case.process_version_id), case.state)
            run.deliver_message(name, payload, now=now)
            record_event(uow, case, now, actor.username, "message_received", {"name": name, "payload": payload})
            sync_case(uow, case, run, now=now, actor=actor.username, policy=services.due_policy)
            uow.commit()
    except EngineFailure as failure:
        record_incident(services, targets[0], failure, actor=actor.username, data={"message": name, "payload": payload})
        raise
    return case
