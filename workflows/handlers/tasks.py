"""Use cases on human tasks: list, read with form, claim, release, assign, save a draft, complete."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import json

from ..derive import json_safe, sync_case
from ..errors import Conflict, EngineFailure, Forbidden, InvalidInput
from ..forms import validate_submission
from ..model import Case, HumanTask, TaskInCase, TaskStatus, User
from ..ports import TaskQuery
from ..services import Services
from .adhoc import ADHOC_FORM, ADHOC_UI
from .common import (
    is_supervisor,
    open_task,
    people_covering,
    record_incident,
    require_active,
    task_event,
    task_to_work,
    visible_task,
)

MAX_DRAFT_BYTES = 256 * 1024


@dataclass
class TaskDetail:
    """A task with its case and its form: JSON Schema and UI schema (None when it has no form)."""

    task: HumanTask
    case: Case
    form_schema: dict | None
    ui_schema: dict | None


def get_task(services: Services, *, task_id: int, actor: User | None = None) -> TaskDetail:
    """Return a task the actor may see, with its case and form (actor None: the system reads)."""
    with services.uow(read_only=True) as uow:
        task, case = visible_task(uow, actor, task_id)
        if task.adhoc:
            return TaskDetail(task, case, ADHOC_FORM, ADHOC_UI)
        bundle = services.bundles.get(uow, case.process_version_id)
    return TaskDetail(task, case, bundle.forms.get(task.form_ref or ""), bundle.forms.get(task.ui_form_ref or ""))


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
    task_types: dict[str, str]  # element id -> title, of the tasks the views hold


def inbox(services: Services, *, views: Mapping[str, TaskQuery], showing: str) -> Inbox:
    """Return the page of the view `showing`, with its case fields, and a count of every view."""
    shown = views[showing]
    with services.uow(read_only=True) as uow:
        items = uow.tasks.query_in_cases(shown)
        by_type = uow.tasks.task_types(shown)
        # The shown view's count comes from its tasks by type (one pass over its rows, not two).
        shown_count = (sum(number for _, number in by_type.values()) if shown.element_id is None
                       else by_type.get(shown.element_id, ("", 0))[1])
        return Inbox(
            items=items,
            counts={name: shown_count if name == showing else uow.tasks.count(query) for name, query in views.items()},
            settings_by_process=uow.processes.settings_by_process(),
            task_types={element_id: title for element_id, (title, _) in by_type.items()},
        )


def claim_task(services: Services, *, actor: User, task_id: int) -> HumanTask:
    """Claim an open task for the acting user."""
    now = services.clock.now()
    with services.uow() as uow:
        task, _ = task_to_work(uow, actor, task_id)
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
        task, _ = task_to_work(uow, actor, task_id)
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
            task, case = task_to_work(uow, actor, task_id)
            case_id = task.case_id
            _may_work(actor, task)
            require_active(case)
            if task.adhoc:
                return _complete_adhoc(uow, case, task, actor=actor, data=data, now=now)
            # Read the case's open tasks after the case: under READ COMMITTED (PostgreSQL) another
            # completion may have committed between the two reads, leaving an open-looking row
            # beside a case state where the task is gone. Now the rows are at least as new as the case.
            open_tasks = uow.tasks.for_case(case.id, open_only=True)
            task = next((t for t in open_tasks if t.id == task_id), None) or open_task(uow, task_id)
            bundle = services.bundles.get(uow, case.process_version_id)
            schema = bundle.forms.get(task.form_ref) if task.form_ref else None
            data = validate_submission(schema, data, form_name=task.form_ref or "task")
            run = services.engine.resume(bundle, case.state)
            run.complete_task(task.task_ref, data, now=now)
            task_event(uow, task, now, actor, "task_completed", data=data)
            sync_case(uow, case, run, now=now, actor=actor.username, policy=services.due_policy,
                      completed_task_ref=task.task_ref, open_tasks=open_tasks)
            uow.commit()
    except EngineFailure as failure:
        record_incident(services, case_id, failure, actor=actor.username, data={"task_id": task_id, "submitted": data})
        raise
    task.status, task.completed_at, task.completed_by = TaskStatus.COMPLETED, now, actor.username
    return task


def _may_work(actor: User, task: HumanTask) -> None:
    if task.assignee is not None and task.assignee != actor.username and not is_supervisor(actor):
        raise Conflict(f"Task {task.id} is claimed by {task.assignee}.")
    if task.assignee is None and not (actor.has_role(task.candidate_role) or is_supervisor(actor)):
        raise Forbidden(f"Task {task.id} is for the {task.candidate_role} role, which you do not hold.")


def _complete_adhoc(uow, case: Case, task: HumanTask, *, actor: User, data: dict, now) -> HumanTask:
    """Complete a task a person added: nothing runs in the engine; the case just records it."""
    data = validate_submission(ADHOC_FORM, data, form_name="ad-hoc task")
    task.status, task.completed_at, task.completed_by = TaskStatus.COMPLETED, now, actor.username
    task.draft = task.draft_saved_at = task.draft_saved_by = None
    uow.tasks.update(task)
    case.updated_at = now
    uow.cases.save(case)
    task_event(uow, task, now, actor, "task_completed", data=data)
    uow.commit()
    return task


def save_draft(services: Services, *, actor: User, task_id: int, data: dict[str, Any]) -> HumanTask:
    """Keep a task's form data without submitting it; an unclaimed task becomes the actor's."""
    if not isinstance(data, dict):
        raise InvalidInput("A draft must be a JSON object.", {"data": ["Must be a JSON object."]})
    data = json_safe(data)
    if len(json.dumps(data)) > MAX_DRAFT_BYTES:
        raise InvalidInput(f"The draft is larger than {MAX_DRAFT_BYTES // 1024} KiB.", {"data": ["Too large."]})
    now = services.clock.now()
    with services.uow() as uow:
        task, case = task_to_work(uow, actor, task_id)
        _may_work(actor, task)
        require_active(case)
        if task.assignee is None:
            task.assignee, task.status = actor.username, TaskStatus.CLAIMED
            task_event(uow, task, now, actor, "task_claimed")
        task.draft, task.draft_saved_at, task.draft_saved_by = data, now, actor.username
        uow.tasks.update(task)
        task_event(uow, task, now, actor, "task_draft_saved")
        uow.commit()
    return task


def assign_task(services: Services, *, actor: User, task_id: int, assignee: str) -> HumanTask:
    """Give an open task to a user who holds its role and covers its case's setting (supervisors)."""
    if not is_supervisor(actor):
        raise Forbidden("Only supervisors can assign a task to someone.")
    now = services.clock.now()
    with services.uow() as uow:
        task, case = task_to_work(uow, actor, task_id)
        person = uow.users.get_by_username((assignee or "").strip().lower())
        if person is None or not person.active:
            raise InvalidInput(f"There is no active user named '{assignee}'.", {"assignee": ["Unknown user."]})
        if task.candidate_role and not person.has_role(task.candidate_role):
            raise InvalidInput(f"{person.username} does not hold the {task.candidate_role} role this task needs.",
                               {"assignee": [f"Choose someone with the {task.candidate_role} role."]})
        if not person.covers(case.setting):
            raise InvalidInput(f"{person.username} does not cover the {case.setting} setting of case {case.id}.",
                               {"assignee": ["Choose someone who covers this case's setting."]})
        previous = task.assignee
        task.assignee, task.status = person.username, TaskStatus.CLAIMED
        uow.tasks.update(task)
        task_event(uow, task, now, actor, "task_assigned", data={"assignee": person.username, "previous": previous})
        uow.commit()
    return task


def eligible_assignees(services: Services, *, task: HumanTask, case: Case) -> list[User]:
    """The active users a supervisor may assign this task to: its role, its case's setting."""
    with services.uow(read_only=True) as uow:
        people = people_covering(uow, [case.setting])
    return [person for person in people if not task.candidate_role or person.has_role(task.candidate_role)]


def next_task(services: Services, *, actor: User, case_id: int) -> HumanTask | None:
    """The task to offer after one is done: the actor's next step on the same case, else their soonest due."""
    with services.uow(read_only=True) as uow:
        for task in uow.tasks.for_case(case_id, open_only=True):
            if task.assignee == actor.username or (task.assignee is None and actor.has_role(task.candidate_role)):
                return task
        for query in (TaskQuery.my_tasks(actor, limit=1), TaskQuery.team_queue(actor, limit=1)):
            found = uow.tasks.query(query)
            if found:
                return found[0]
    return None
