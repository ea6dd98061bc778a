"""Use cases on human tasks: list, read with form, claim, release, complete."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..derive import sync_case
from ..errors import Conflict, EngineFailure, Forbidden, NotFound
from ..forms import validate_submission
from ..model import HumanTask, TaskInCase, TaskStatus, User
from ..ports import TaskQuery
from ..services import Services
from .common import active_case, is_supervisor, open_task, record_incident, task_event


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


@dataclass
class Inbox:
    """One page of one inbox view, how many tasks each view holds, and what its filters can choose from."""

    items: list[TaskInCase]
    counts: dict[str, int]
    settings_by_process: dict[str, str]


def inbox(services: Services, *, views: Mapping[str, TaskQuery], showing: str) -> Inbox:
    """Return the page of the view `showing`, with its case fields, and a count of every view."""
    with services.uow(read_only=True) as uow:
        return Inbox(
            items=uow.tasks.query_in_cases(views[showing]),
            counts={name: uow.tasks.count(query) for name, query in views.items()},
            settings_by_process=uow.processes.settings_by_process(),
        )


def claim_task(services: Services, *, actor: User, task_id: int) -> HumanTask:
    """Claim an open task for the acting user."""
    now = services.clock.now()
    with services.uow() as uow:
        task = open_task(uow, task_id)
        if task.assignee == actor.username:
            return task
        if task.assignee is not None:
            raise Conflict(f"Task {task_id} is already claimed by {task.assignee}.")
        if not (actor.has_role(task.candidate_role) or is_supervisor(actor)):
            raise Forbidden(f"Task {task_id} is for the {task.candidate_role} role, which you do not hold.")
        task.assignee, task.status = actor.username, TaskStatus.CLAIMED
        uow.tasks.update(task)
        task_event(uow, task, now, actor, "task_claimed")
        uow.commit()
    return task


def unclaim_task(services: Services, *, actor: User, task_id: int) -> HumanTask:
    """Put a claimed task back in its team's queue."""
    now = services.clock.now()
    with services.uow() as uow:
        task = open_task(uow, task_id)
        if task.assignee is None:
            raise Conflict(f"Task {task_id} is not claimed.")
        if task.assignee != actor.username and not is_supervisor(actor):
            raise Forbidden(f"Task {task_id} is claimed by {task.assignee}; only they or a supervisor can release it.")
        task.assignee, task.status = None, TaskStatus.OPEN
        uow.tasks.update(task)
        task_event(uow, task, now, actor, "task_unclaimed")
        uow.commit()
    return task


def complete_task(services: Services, *, actor: User, task_id: int, data: dict[str, Any]) -> HumanTask:
    """Complete a task with form data validated against its schema, and run the case on."""
    now = services.clock.now()
    case_id = None
    try:
        with services.uow() as uow:
            task = open_task(uow, task_id)
            case_id = task.case_id
            if task.assignee is not None and task.assignee != actor.username and not is_supervisor(actor):
                raise Conflict(f"Task {task_id} is claimed by {task.assignee}.")
            if task.assignee is None and not (actor.has_role(task.candidate_role) or is_supervisor(actor)):
                raise Forbidden(f"Task {task_id} is for the {task.candidate_role} role, which you do not hold.")
            case = active_case(uow, task.case_id)
            # Read the task again after the case: under READ COMMITTED (PostgreSQL) another
            # completion may have committed between the two reads, leaving an open-looking row
            # beside a case state where the task is gone. Now the row is at least as new as the case.
            task = open_task(uow, task_id)
            bundle = services.bundles.get(uow, case.process_version_id)
            schema = bundle.forms.get(task.form_ref) if task.form_ref else None
            data = validate_submission(schema, data, form_name=task.form_ref or "task")
            run = services.engine.resume(bundle, case.state)
            run.complete_task(task.task_ref, data, now=now)
            task_event(uow, task, now, actor, "task_completed", data=data)
            sync_case(uow, case, run, now=now, actor=actor.username, policy=services.due_policy, completed_task_ref=task.task_ref)
            uow.commit()
    except EngineFailure as failure:
        record_incident(services, case_id, failure, actor=actor.username, data={"task_id": task_id, "submitted": data})
        raise
    task.status, task.completed_at, task.completed_by = TaskStatus.COMPLETED, now, actor.username
    return task
