"""The inbox: a user's tasks, their team's queue and (supervisors) every open task; claim and unclaim."""
from __future__ import annotations

from dataclasses import replace

from flask import current_app, flash, g, redirect, render_template, request, session

from workflows import handlers
from workflows.errors import Forbidden

from . import bp
from .auth import safe_target
from .filters import DUE_CHOICES, PAGE_SIZE, PRIORITIES, SORTS, VIEWS, InboxFilters


def _services():
    return current_app.extensions["casework"]


@bp.get("/")
@bp.get("/inbox")
def inbox():
    services = _services()
    filters = InboxFilters.from_args(request.args)
    now = services.clock.now()
    views = filters.views(g.user, now=now, zone=services.due_policy.zone)
    if filters.view not in views:
        raise Forbidden("Only supervisors can see every open task; choose My tasks or My team's queue.")
    views[filters.view] = replace(views[filters.view], limit=PAGE_SIZE, offset=(filters.page - 1) * PAGE_SIZE)
    result = handlers.inbox(services, views=views, showing=filters.view)
    total = result.counts[filters.view]
    return render_template(
        "inbox.html", filters=filters, result=result, now=now, total=total,
        pages=max(1, -(-total // PAGE_SIZE)), views={name: VIEWS[name] for name in views},
        settings=sorted(s for s in set(result.settings_by_process.values()) if g.user.covers(s)),
        processes=sorted(p for p, s in result.settings_by_process.items() if g.user.covers(s)),
        due_choices=DUE_CHOICES, priorities=PRIORITIES, sorts=SORTS, next_task=session.pop("next_task", None),
    )


@bp.post("/tasks/<int:task_id>/claim")
def claim(task_id: int):
    task = handlers.claim_task(_services(), actor=g.user, task_id=task_id)
    flash(f"You claimed “{task.title}” (case {task.case_id}); it is in My tasks.", "success")
    return redirect(safe_target(request.form.get("back")), 303)


@bp.post("/tasks/<int:task_id>/unclaim")
def unclaim(task_id: int):
    task = handlers.unclaim_task(_services(), actor=g.user, task_id=task_id)
    flash(f"You put “{task.title}” (case {task.case_id}) back in the {task.candidate_role or 'team'} queue.", "success")
    return redirect(safe_target(request.form.get("back")), 303)
