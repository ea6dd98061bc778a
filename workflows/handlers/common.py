"""What the use cases share: loading what they act on, auditing, and recording incidents."""
from __future__ import annotations

from datetime import timezone

from ..errors import Conflict, EngineFailure, Forbidden, NotFound
from ..model import Case, CaseEvent, CaseStatus, HumanTask, Incident, User
from ..ports import UnitOfWork, VersionLoad
from ..services import Services

SUPERVISOR_ROLES = ("supervisor", "admin")
SCHEDULER = "scheduler"


def is_supervisor(user: User) -> bool:
    return any(user.has_role(role) for role in SUPERVISOR_ROLES)


def covers_case(actor: User | None, case: Case | None) -> bool:
    """Whether the case exists and is one the actor may see (None: the system itself reads)."""
    return case is not None and (actor is None or actor.covers(case.setting))


def visible_case(uow: UnitOfWork, actor: User | None, case_id: int) -> Case:
    """Load a case the actor may see: one of a setting they cover (None: the system itself reads).

    A case outside the actor's settings is reported exactly as a case that does not exist:
    a different answer would tell anyone with an id to try that the case is there.
    """
    case = uow.cases.get(case_id)
    if not covers_case(actor, case):
        raise NotFound(f"Case {case_id} does not exist.")
    return case


def people_covering(uow: UnitOfWork, settings: list[str] | None) -> list[User]:
    """The active users who cover any of these settings (None: every active user), by name."""
    return [user for user in uow.users.list()
            if user.active and (settings is None or any(user.covers(setting) for setting in settings))]


def may_see_task(user: User, task: HumanTask) -> bool:
    """Whether the task is the user's to see: theirs, their role's, done by them, or they supervise."""
    return (is_supervisor(user) or user.has_role(task.candidate_role)
            or user.username in (task.assignee, task.completed_by))


def visible_task(uow: UnitOfWork, actor: User | None, task_id: int) -> tuple[HumanTask, Case]:
    """Load a task the actor may see, with its case (None: the system itself reads)."""
    task, case = _task_in_scope(uow, actor, task_id)
    if actor is not None and not may_see_task(actor, task):
        holder = f"the {task.candidate_role} role" if task.candidate_role else f"{task.assignee or 'its assignee'}"
        raise Forbidden(f"Task {task_id} is for {holder}; you can neither see nor work it.")
    return task, case


def task_to_work(uow: UnitOfWork, actor: User, task_id: int) -> tuple[HumanTask, Case]:
    """Load an open task of a case the actor may see, with its case; whose task it is stays the caller's check."""
    task, case = _task_in_scope(uow, actor, task_id)
    return _require_open(task), case


def _task_in_scope(uow: UnitOfWork, actor: User | None, task_id: int) -> tuple[HumanTask, Case]:
    """A task of a case in the actor's settings; any other task is reported as one that does not exist."""
    found = uow.tasks.with_case(task_id)
    if found is None or not covers_case(actor, found[1]):
        raise NotFound(f"Task {task_id} does not exist.")
    return found


def open_task(uow: UnitOfWork, task_id: int) -> HumanTask:
    task = uow.tasks.get(task_id)
    if task is None:
        raise NotFound(f"Task {task_id} does not exist.")
    return _require_open(task)


def _require_open(task: HumanTask) -> HumanTask:
    if not task.is_open:
        by = f" by {task.completed_by}" if task.completed_by else ""
        raise Conflict(f"Task {task.id} is already {task.status.value}{by}.")
    return task


def visible_incident(uow: UnitOfWork, actor: User | None, incident_id: int) -> tuple[Incident, Case]:
    """Load an incident of a case the actor may see, with its case; any other is reported as not existing."""
    incident = uow.incidents.get(incident_id)
    case = uow.cases.get(incident.case_id) if incident is not None else None
    if incident is None or not covers_case(actor, case):
        raise NotFound(f"Incident {incident_id} does not exist.")
    return incident, case


def active_case(uow: UnitOfWork, case_id: int) -> Case:
    case = uow.cases.get(case_id)
    if case is None:
        raise NotFound(f"Case {case_id} does not exist.")
    return require_active(case)


def require_active(case: Case) -> Case:
    """Return the case if it can be worked; say why not if it is on hold or closed."""
    case_id = case.id
    if case.status == CaseStatus.SUSPENDED:
        since = f" since {case.suspended_at.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC" if case.suspended_at else ""
        raise Conflict(f"Case {case_id} is suspended (on hold{since}); a supervisor must resume it before it can be worked.")
    if case.status != CaseStatus.ACTIVE:
        raise Conflict(f"Case {case_id} is {case.status.value}; only active cases can be worked.")
    return case


def case_in_status(uow: UnitOfWork, actor: User | None, case_id: int, allowed: tuple[CaseStatus, ...], *,
                   to: str) -> Case:
    """Load a case the actor may see that must be in one of the `allowed` statuses for a supervisor `to` act on it."""
    case = visible_case(uow, actor, case_id)
    if case.status not in allowed:
        statuses = " or ".join(status.value for status in allowed)
        raise Conflict(f"Case {case_id} is {case.status.value}; only {statuses} cases can be {to}.")
    return case


def task_event(uow: UnitOfWork, task: HumanTask, now, actor: User, kind: str, *, data: dict | None = None) -> None:
    payload = {"task_id": task.id, "element_id": task.element_id, "title": task.title}
    if data is not None:
        payload["data"] = data
    uow.events.append(CaseEvent(task.case_id, now, actor.username, kind, payload))


def record_incident(services: Services, case_id: int | None, failure: EngineFailure, *, actor: str, data: dict) -> None:
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


def deployed_versions(uow: UnitOfWork, *, actor: User, process_id: str) -> list[VersionLoad]:
    """The versions of a process of a setting the actor covers, oldest first; NotFound otherwise.

    A process of another setting is reported as not deployed, as its cases are reported as not existing.
    """
    versions = uow.process_view.versions(process_id=process_id, settings=actor.setting_scope)
    if not versions or not actor.covers(versions[-1].setting):
        raise NotFound(f"No process '{process_id}' is deployed.")
    return versions


def chosen_version(versions: list[VersionLoad], *, process_id: str, version: int | None,
                   field: str | None = None) -> VersionLoad:
    """The version asked for (the latest when None); NotFound listing the versions there are, naming the field."""
    if version is None:
        return versions[-1]
    found = next((v for v in versions if v.version == version), None)
    if found is None:
        named = f" ('{field}')" if field else ""
        raise NotFound(f"The process {process_id} has no version {version}{named}; "
                       f"its versions are {', '.join(str(v.version) for v in versions)}.")
    return found
