"""Work people add to a case that its diagram did not plan: ad-hoc tasks and notes."""
from __future__ import annotations

import uuid
from datetime import datetime

from ..derive import record_event
from ..errors import InvalidInput
from ..model import HumanTask, Note, TaskStatus, User
from ..services import Services
from .common import people_covering, require_active, visible_case

MAX_TITLE = 200
MAX_NOTE = 10_000
ADHOC_ELEMENT = "adhoc"

# The form every ad-hoc task is completed with: what was done goes on the case's timeline.
ADHOC_FORM = {
    "type": "object",
    "title": "Ad-hoc task",
    "required": ["outcome"],
    "properties": {"outcome": {"type": "string", "title": "Outcome", "minLength": 1, "maxLength": 4000}},
    "additionalProperties": False,
}
ADHOC_UI = {"outcome": {"ui:widget": "textarea", "ui:help": "What was done, or why it is no longer needed."}}


def add_adhoc_task(
    services: Services, *, actor: User, case_id: int, title: str, due_at: datetime | None = None,
    assignee: str | None = None, candidate_role: str | None = None, note: str = "",
    input_problems: dict[str, list[str]] | None = None,
) -> HumanTask:
    """Add a task to an active case for one person or one role; it shows in the inbox like any other.

    `input_problems`: what the caller could not read of its input (a garbled due time, say),
    refused together with everything found here, so every problem is named at once.
    """
    now = services.clock.now()
    title, note = (title or "").strip(), (note or "").strip()
    assignee, candidate_role = (assignee or "").strip().lower() or None, (candidate_role or "").strip() or None
    problems: dict[str, list[str]] = dict(input_problems or {})
    if not title or len(title) > MAX_TITLE:
        problems["title"] = [f"Give a title of 1 to {MAX_TITLE} characters."]
    if (assignee is None) == (candidate_role is None) and "who" not in problems:
        problems["assignee"] = ["Give either a person or a role, not both." if assignee else "Give a person or a role."]
    if due_at is not None and due_at <= now:
        problems["due_at"] = ["Give a due time in the future."]
    if len(note) > MAX_NOTE:
        problems["note"] = [f"Use at most {MAX_NOTE:,} characters."]
    with services.uow() as uow:
        case = require_active(visible_case(uow, actor, case_id))
        if assignee is not None and "assignee" not in problems:
            person = uow.users.get_by_username(assignee)
            if person is None or not person.active:
                problems["assignee"] = [f"There is no active user named '{assignee}'."]
            elif not person.covers(case.setting):
                problems["assignee"] = [f"{assignee} does not cover the {case.setting} setting of this case."]
        if candidate_role is not None and candidate_role not in _roles_of(people_covering(uow, [case.setting])):
            problems["candidate_role"] = [f"Nobody who covers the {case.setting} setting holds the role "
                                          f"'{candidate_role}'."]
        if problems:
            raise InvalidInput("The task cannot be added: " + " ".join(
                f"{name}: {' '.join(messages)}" for name, messages in problems.items()), problems)
        at_risk_at = None
        if due_at is not None:
            at_risk_at = now + (due_at - now) * services.due_policy.at_risk_fraction
        task = uow.tasks.add(HumanTask(
            case_id=case.id, task_ref=f"adhoc-{uuid.uuid4().hex}", element_id=ADHOC_ELEMENT, title=title,
            candidate_role=candidate_role, status=TaskStatus.CLAIMED if assignee else TaskStatus.OPEN,
            created_at=now, priority=case.priority, assignee=assignee, due_at=due_at, at_risk_at=at_risk_at,
            instructions=note, adhoc=True,
        ))
        case.updated_at = now
        uow.cases.save(case)
        record_event(uow, case, now, actor.username, "task_created", {
            "task_id": task.id, "element_id": ADHOC_ELEMENT, "title": title, "adhoc": True,
            "candidate_role": candidate_role, "assignee": assignee, "due_at": due_at.isoformat() if due_at else None,
        })
        uow.commit()
    return task


def add_note(services: Services, *, actor: User, case_id: int, text: str) -> Note:
    """Add a note to a case the actor may see, in any status: notes are kept, never edited."""
    text = (text or "").strip()
    if not text or len(text) > MAX_NOTE:
        raise InvalidInput(f"Write a note of 1 to {MAX_NOTE:,} characters.", {"text": [
            "Write the note." if not text else f"Use at most {MAX_NOTE:,} characters."]})
    now = services.clock.now()
    with services.uow() as uow:
        case = visible_case(uow, actor, case_id)
        note = uow.notes.add(Note(case_id=case.id, at=now, author=actor.username, text=text))
        record_event(uow, case, now, actor.username, "note_added", {"note_id": note.id})
        uow.commit()
    return note


def adhoc_choices(services: Services, *, setting: str) -> tuple[list[User], list[str]]:
    """Who an ad-hoc task on a case of this setting can go to: active people covering it, and the roles held."""
    with services.uow(read_only=True) as uow:
        people = people_covering(uow, [setting])
    return people, sorted(_roles_of(people))


def _roles_of(people: list[User]) -> set[str]:
    """The roles some of these people hold: the queues they can work."""
    return {role for person in people for role in person.roles}
