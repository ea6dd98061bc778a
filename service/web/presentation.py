"""How the pages show times, due states and identifiers, in the organisation's time zone."""
from __future__ import annotations

import re
from datetime import datetime

from flask import current_app

from workflows.handlers.common import is_supervisor
from workflows.model import HumanTask, User

from . import bp


@bp.app_template_global()
def due_state(task: HumanTask, now: datetime) -> str:
    """Return "overdue" when the task's due time has come, "at-risk" past its at-risk time, else ""."""
    if task.due_at is not None and task.due_at <= now:
        return "overdue"
    if task.at_risk_at is not None and task.at_risk_at <= now:
        return "at-risk"
    return ""


bp.add_app_template_global(is_supervisor, "is_supervisor")


@bp.app_template_global()
def can_claim(user: User, task: HumanTask) -> bool:
    return task.assignee is None and (user.has_role(task.candidate_role) or is_supervisor(user))


@bp.app_template_global()
def can_unclaim(user: User, task: HumanTask) -> bool:
    return task.assignee is not None and (task.assignee == user.username or is_supervisor(user))


@bp.app_template_filter()
def local_time(moment: datetime | None) -> str:
    """A moment on the organisation's clock, e.g. "Tue 3 Mar 14:05"."""
    if moment is None:
        return ""
    local = moment.astimezone(current_app.extensions["casework"].due_policy.zone)
    return f"{local:%a} {local.day} {local:%b %H:%M}"


@bp.app_template_filter()
def relative_to(moment: datetime, now: datetime) -> str:
    """How far a moment is from now, roughly: "in 3 h", "2 d ago"."""
    seconds = (moment - now).total_seconds()
    size = abs(seconds)
    amount = f"{size // 60:.0f} min" if size < 3600 else f"{size // 3600:.0f} h" if size < 2 * 86400 else f"{size // 86400:.0f} d"
    return f"in {amount}" if seconds >= 0 else f"{amount} ago"


_EVENT_TEXT = {
    "case_opened": "opened the case",
    "case_completed": "The case completed",
    "case_cancelled": "cancelled the case",
    "case_suspended": "put the case on hold",
    "case_resumed": "took the case off hold",
    "task_created": "Task opened",
    "task_claimed": "claimed",
    "task_unclaimed": "put back in the queue",
    "task_assigned": "assigned",
    "task_completed": "completed",
    "task_cancelled": "Task cancelled",
    "task_draft_saved": "saved a draft of",
    "timer_fired": "Timer fired",
    "timer_failed": "Timer failed",
    "due_changed": "Due time changed",
    "message_received": "Message received",
    "message_sent": "Message sent",
    "incident_raised": "Incident raised",
    "note_added": "added a note",
    "case_flagged": "Flagged for a manager",
    "case_data_corrected": "corrected the case data",
    "incident_retried": "retried the failed step",
    "incident_retry_failed": "retried the failed step, which failed again",
    "incident_closed": "closed the incident",
    "token_moved": "moved the case",
}


@bp.app_template_global()
def describe_event(event) -> str:
    """One line of a case's timeline: who did what, in words."""
    payload = event.payload or {}
    text = _EVENT_TEXT.get(event.kind, humanise(event.kind))
    what = payload.get("title") or humanise(payload.get("element_id") or payload.get("name") or "")
    if event.kind == "task_assigned":
        text = f"assigned to {(payload.get('data') or {}).get('assignee', '?')}"
    elif event.kind == "case_flagged":
        what = humanise(payload.get("reason", ""))
    elif event.kind in ("case_cancelled", "case_suspended") and payload.get("reason"):
        what = f"reason: {payload['reason']}"
    elif event.kind in ("incident_raised", "incident_retry_failed"):
        what = payload.get("message", "")
    elif event.kind == "incident_retried" and payload.get("skipped"):
        text, what = "skipped the failed step", humanise(payload["skipped"][0])
    elif event.kind == "case_data_corrected":
        what = ", ".join(f"{name} = {value}" for name, value in (payload.get("values") or {}).items())
    elif event.kind == "incident_closed":
        what = payload.get("reason", "")
    elif event.kind == "token_moved":
        what = f"from {payload.get('from_name')} to {payload.get('to_name')} (reason: {payload.get('reason')})"
    elif event.kind == "case_migration_refused":
        text = f"tried to move the case to version {payload.get('to_version')}, which was refused"
        what = payload.get("reason", "")
    elif event.kind == "case_migrated":
        text = f"moved the case from version {payload.get('from_version')} to version {payload.get('to_version')}"
        what = "; ".join(f"{step.get('name')} ({', '.join(step.get('changes') or [])})"
                         for step in payload.get("changed_steps") or [])
        what = f"changed at its current steps: {what}" if what else ""
    return f"{text}: {what}" if what else text


_DURATION = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")


@bp.app_template_global()
def case_facts(data: dict, limit: int | None = None, *, settings_too: bool = False) -> list[tuple[str, str]]:
    """The case record's plain values as (label, text), for a summary: lists and objects left out.

    The clocks a diagram sets for itself (durations such as "PT24H") are policy, not facts
    about the patient: only `settings_too` shows them.
    """
    facts = []
    for key, value in (data or {}).items():
        if not settings_too and isinstance(value, str) and _DURATION.match(value):
            continue
        if isinstance(value, bool):
            facts.append((humanise(key), "Yes" if value else "No"))
        elif isinstance(value, (str, int, float)) and str(value).strip():
            facts.append((humanise(key), _readable(value)))
    return facts[:limit] if limit else facts


def _readable(value) -> str:
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        try:
            return local_time(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            pass
    return str(value)


@bp.app_template_filter()
def humanise(identifier: str | None) -> str:
    """An identifier as words: "acute_hospital" -> "Acute hospital", "mrn" -> "MRN"."""
    words = (identifier or "").replace("_", " ").strip().capitalize().split(" ")
    return " ".join(word.upper() if word.lower() in _ACRONYMS else word for word in words)


_ACRONYMS = {"mrn", "drg", "gmlos", "im", "moon", "snf", "irf", "dme", "ltch", "ur", "mmi", "p2p", "irf-pai", "pai",
             "qio", "los", "id", "rtw", "ime", "adl", "dob", "npi", "icd"}
