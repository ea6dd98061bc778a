"""A supervisor's fixes to a stuck case: retry a failed step (after correcting its data), skip it, close it, move a token.

Each fix is one transaction that ends in the case's audit trail. An incident remembers
the action that failed (a task's completion, a message, a timer): a retry repeats that
action on the case as it is now. A retry that fails again changes nothing in the case;
the incident keeps the newest error.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..derive import json_safe, record_event, sync_case
from ..engine import CaseRun, MoveTarget, Token
from ..errors import Conflict, EngineFailure, Forbidden, InvalidInput, NotFound
from ..forms import validate_submission
from ..model import Case, CaseEvent, CaseStatus, Incident, IncidentStatus, TimerStatus, User
from ..services import Services
from .common import is_supervisor, task_event, visible_case, visible_incident
from .timers import record_fired


@dataclass(frozen=True)
class Moved:
    """A case after a token move, with the names of the steps it left and went to."""

    case: Case
    from_name: str
    to_name: str


@dataclass(frozen=True)
class TokenChoice:
    """A token a supervisor may move, with where it may go."""

    token: Token
    targets: list[MoveTarget]


def retry_incident(
    services: Services, *, actor: User, incident_id: int, corrections: dict[str, Any] | None = None,
    skip: bool = False,
) -> Incident:
    """Repeat the action that failed, with the case data corrected first; with `skip`, pass over the failed step."""
    _require_supervisor(actor, "retry a failed step")
    corrections = validate_submission(None, corrections or {}, form_name="corrections")
    now = services.clock.now()
    try:
        with services.uow() as uow:
            incident, case = _open_incident(uow, actor, incident_id)
            run = services.engine.resume(services.bundles.get(uow, case.process_version_id), case.state)
            if corrections:
                run.correct_data(corrections, now=now)
                record_event(uow, case, now, actor.username, "case_data_corrected", {
                    "incident_id": incident.id, "values": json_safe(corrections),
                })
            if skip:
                if not incident.element_id:
                    raise Conflict(f"Incident {incident.id} does not name the step that failed, so it cannot be skipped.")
                run.skip_failed_step(incident.element_id)
            completed_ref = _repeat(uow, services, case, run, incident, actor, corrections, now)
            record_event(uow, case, now, actor.username, "incident_retried", {
                "incident_id": incident.id, "element_id": incident.element_id, "skipped": run.skipped,
                "corrected": sorted(corrections),
            })
            _resolve(incident, actor, now, "skipped" if run.skipped else "retried")
            uow.incidents.update(incident)
            sync_case(uow, case, run, now=now, actor=actor.username, policy=services.due_policy,
                      completed_task_ref=completed_ref)
            _settle(uow, case, run, actor, now)
            uow.commit()
    except EngineFailure as failure:
        _retry_failed(services, incident_id, failure, actor=actor)
        raise
    return incident


def close_incident(services: Services, *, actor: User, incident_id: int, reason: str) -> Incident:
    """Close an incident without repeating its action: the case was set right another way."""
    _require_supervisor(actor, "close a failed step")
    if not reason.strip():
        raise InvalidInput("Say why the failed step can be closed.", {"reason": ["This field is required."]})
    now = services.clock.now()
    with services.uow() as uow:
        incident, case = _open_incident(uow, actor, incident_id, statuses=tuple(CaseStatus))
        _resolve(incident, actor, now, "closed")  # the reason (up to 2,000 characters) goes in the event
        uow.incidents.update(incident)
        if "timer_ids" in incident.data:
            _cancel_failed_timers(uow, case, incident.data["timer_ids"])
        record_event(uow, case, now, actor.username, "incident_closed", {"incident_id": incident.id, "reason": reason})
        uow.flags.clear_settled(case.id)
        uow.commit()
    return incident


def token_choices(services: Services, *, actor: User, case_id: int) -> list[TokenChoice]:
    """Where an active case's tokens stand and where each may be moved (supervisors)."""
    _require_supervisor(actor, "move a case's token")
    with services.uow(read_only=True) as uow:
        case = visible_case(uow, actor, case_id)
        if case.status != CaseStatus.ACTIVE:
            return []
        run = services.engine.resume(services.bundles.get(uow, case.process_version_id), case.state)
    return [TokenChoice(token, run.move_targets(token.task_ref)) for token in run.tokens()]


def move_token(services: Services, *, actor: User, case_id: int, task_ref: str, target_id: str, reason: str) -> Moved:
    """Cancel the case's token at `task_ref` and start its process again at `target_id` (process-instance modification)."""
    _require_supervisor(actor, "move a case's token")
    problems = {name: ["This field is required."] for name, value in
                (("token", task_ref), ("target", target_id), ("reason", reason)) if not value.strip()}
    if problems:
        raise InvalidInput("Choose the token, the step to move it to, and say why.", problems)
    now = services.clock.now()
    with services.uow() as uow:
        case = visible_case(uow, actor, case_id)
        _require_active(case, "moved")
        run = services.engine.resume(services.bundles.get(uow, case.process_version_id), case.state)
        token = next((t for t in run.tokens() if t.task_ref == task_ref), None)
        if token is None:
            raise Conflict(f"Case {case_id} no longer has that token: it moved on meanwhile. Reload the case.")
        target = next((t for t in run.move_targets(task_ref) if t.element_id == target_id), None)
        run.move_token(task_ref, target_id, now=now)
        to_name = target.name if target else target_id
        record_event(uow, case, now, actor.username, "token_moved", {
            "from_element": token.element_id, "from_name": token.name, "to_element": target_id,
            "to_name": to_name, "process_id": token.process_id, "reason": reason,
        })
        sync_case(uow, case, run, now=now, actor=actor.username, policy=services.due_policy)
        _settle(uow, case, run, actor, now)
        uow.commit()
    return Moved(case, token.name, to_name)


# -- the action an incident remembers ---------------------------------------------
def _repeat(uow, services: Services, case: Case, run: CaseRun, incident: Incident, actor: User,
            corrections: dict, now) -> str | None:
    """Run the failed action again; return the task it completed, if it was a task's completion."""
    origin = incident.data
    if "task_id" in origin:
        task = uow.tasks.get(origin["task_id"])
        if task is None or not task.is_open:
            raise Conflict(f"The task whose completion failed (task {origin['task_id']}) is no longer open; "
                           "close the incident instead.")
        submitted = {**(origin.get("submitted") or {}), **corrections}
        run.complete_task(task.task_ref, submitted, now=now)
        task_event(uow, task, now, actor, "task_completed", data={**submitted, "retry_of_incident": incident.id})
        return task.task_ref
    if "message" in origin:
        try:
            run.deliver_message(origin["message"], origin.get("payload") or {}, now=now)
        except NotFound as gone:
            raise Conflict(f"{gone} Close the incident instead.") from gone
        record_event(uow, case, now, actor.username, "message_received",
                     {"name": origin["message"], "payload": origin.get("payload") or {}, "retry_of_incident": incident.id})
        return None
    if "timer_ids" in origin:
        rows = [row for row in (uow.timers.get(i) for i in origin["timer_ids"]) if row is not None]
        for row in rows:
            if row.status == TimerStatus.FAILED:
                row.status, row.attempts, row.retry_at, row.last_error = TimerStatus.PENDING, 0, None, None
                row.lease_owner = row.lease_expires_at = None
                uow.timers.update(row)
        record_fired(uow, case, now, actor.username, run.fire_due_timers(now=now), rows, retry_of_incident=incident.id)
        return None
    raise Conflict(f"Incident {incident.id} came from an action that cannot be repeated here; "
                   "set the case right (move its token) and close the incident.")


def _settle(uow, case: Case, run: CaseRun, actor: User, now) -> None:
    """Close the case's other incidents the fix made moot, and its flags that no longer hold."""
    waiting_messages = {m.name for m in run.waiting_messages()}
    waiting_timers = {t.task_ref for t in run.waiting_timers()}
    for incident in uow.incidents.for_case(case.id, open_only=True):
        origin = incident.data
        if "task_id" in origin:
            task = uow.tasks.get(origin["task_id"])
            moot = task is None or not task.is_open
        elif "message" in origin:
            moot = origin["message"] not in waiting_messages
        elif "timer_ids" in origin:
            moot = not any(row.task_ref in waiting_timers for row in
                           (uow.timers.get(i) for i in origin["timer_ids"]) if row is not None)
        else:
            moot = False
        if moot:
            _resolve(incident, actor, now, "moot: the case moved on")
            uow.incidents.update(incident)
            if "timer_ids" in origin:
                _cancel_failed_timers(uow, case, origin["timer_ids"])
            uow.events.append(CaseEvent(case.id, now, actor.username, "incident_closed", {
                "incident_id": incident.id, "reason": "The case moved on past the step that failed.",
            }))
    uow.flags.clear_settled(case.id)


def _cancel_failed_timers(uow, case: Case, timer_ids: list[int]) -> None:
    for row in (uow.timers.get(i) for i in timer_ids):
        if row is not None and row.case_id == case.id and row.status == TimerStatus.FAILED:
            row.status = TimerStatus.CANCELLED
            uow.timers.update(row)


def _retry_failed(services: Services, incident_id: int, failure: EngineFailure, *, actor: User) -> None:
    """Keep the newest error on the incident, in a transaction of its own (the retry's rolled back)."""
    now = services.clock.now()
    with services.uow() as uow:
        incident = uow.incidents.get(incident_id)
        if incident is None:
            return
        incident.message = failure.message
        incident.data = {**incident.data, "retries": int(incident.data.get("retries", 0)) + 1}
        uow.incidents.update(incident)
        uow.events.append(CaseEvent(incident.case_id, now, actor.username, "incident_retry_failed", {
            "incident_id": incident.id, "element_id": failure.element_id, "message": failure.message,
        }))
        uow.commit()
    failure.details["incident_id"] = incident_id


def _open_incident(uow, actor: User, incident_id: int, *, statuses=(CaseStatus.ACTIVE,)) -> tuple[Incident, Case]:
    incident, case = visible_incident(uow, actor, incident_id)
    if incident.status != IncidentStatus.OPEN:
        raise Conflict(f"Incident {incident_id} is already {incident.status.value} ({incident.resolution}).")
    if case.status not in statuses:
        _require_active(case, "repaired")
    return incident, case


def _require_active(case: Case, done: str) -> None:
    if case.status == CaseStatus.SUSPENDED:
        raise Conflict(f"Case {case.id} is on hold; resume it before it can be {done}.")
    if case.status != CaseStatus.ACTIVE:
        raise Conflict(f"Case {case.id} is {case.status.value}; only active cases can be {done}.")


def _require_supervisor(actor: User, doing: str) -> None:
    if not is_supervisor(actor):
        raise Forbidden(f"Only supervisors can {doing}.")


def _resolve(incident: Incident, actor: User, now, resolution: str) -> None:
    incident.status, incident.resolution = IncidentStatus.RESOLVED, resolution
    incident.resolved_at, incident.resolved_by = now, actor.username
