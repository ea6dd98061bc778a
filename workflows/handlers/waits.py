"""Use cases on incoming messages: deliver one to the case waiting for it."""
from __future__ import annotations

from typing import Any

from ..derive import record_event, sync_case
from ..errors import Conflict, EngineFailure, NotFound
from ..forms import validate_submission
from ..model import Case, User
from ..services import Services
from .common import active_case, covers_case, record_incident


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
        waiting = {
            wait.case_id for wait in waits
            if wait.name == name and all(wait.correlation.get(key) == value for key, value in correlation.items())
        }
        # Cases outside the actor's settings do not wait for them: a message must not reveal them.
        targets = sorted(waiting if actor.setting_scope is None else
                         (found for found in waiting if covers_case(actor, uow.cases.get(found))))
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
