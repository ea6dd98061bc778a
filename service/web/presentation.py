"""How the pages show times, due states and identifiers, in the organisation's time zone."""
from __future__ import annotations

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


@bp.app_template_filter()
def humanise(identifier: str | None) -> str:
    """An identifier as words: "acute_hospital" -> "Acute hospital"."""
    return (identifier or "").replace("_", " ").strip().capitalize()
