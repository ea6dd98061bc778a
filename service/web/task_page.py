"""A task's page: its instructions, its case, its form; save a draft, complete it, or (supervisors) assign it."""
from __future__ import annotations

from flask import current_app, flash, g, redirect, render_template, request, session, url_for

from workflows import audit, handlers
from workflows.audit import ReadChannel
from workflows.errors import InvalidInput
from workflows.forms import validate_submission
from workflows.handlers.common import is_supervisor

from . import bp
from .schema_form import build_form, form_level_errors
from .schema_form_read import read_submission


def _services():
    return current_app.extensions["casework"]


@bp.get("/tasks/<int:task_id>")
def task_page(task_id: int):
    detail = handlers.get_task(_services(), task_id=task_id, actor=g.user)
    return _render(detail, values=detail.task.draft or {}, errors={})


@bp.post("/tasks/<int:task_id>")
def submit_task(task_id: int):
    services = _services()
    detail = handlers.get_task(services, task_id=task_id, actor=g.user)
    values, problems = read_submission(detail.form_schema or {}, request.form, zone=services.due_policy.zone)
    action = request.form.get("_action", "complete")
    if "_add_row" in request.form:
        return _render(detail, values=values, errors={}, extra_rows={request.form["_add_row"]: 1})
    if action == "save":
        handlers.save_draft(services, actor=g.user, task_id=task_id, data=values)
        flash(f"Draft of “{detail.task.title}” saved. Nothing has been submitted yet.", "success")
        return redirect(url_for("web.task_page", task_id=task_id), 303)
    if problems:
        return _render(detail, values=values, errors=_every_problem(detail, values, problems), status=422)
    try:
        task = handlers.complete_task(services, actor=g.user, task_id=task_id, data=values)
    except InvalidInput as refused:
        return _render(detail, values=values, errors=refused.field_errors or {"data": [refused.message]}, status=422)
    subject = detail.case.subject_name or f"case {task.case_id}"
    flash(f"Completed “{task.title}” for {subject} (case {task.case_id}).", "success")
    following = handlers.next_task(services, actor=g.user, case_id=task.case_id)
    if following is not None:
        session["next_task"] = {"id": following.id, "title": following.title, "case_id": following.case_id}
    return redirect(url_for("web.inbox"), 303)


@bp.post("/tasks/<int:task_id>/assign")
def assign(task_id: int):
    task = handlers.assign_task(_services(), actor=g.user, task_id=task_id, assignee=request.form.get("assignee", ""))
    flash(f"“{task.title}” (case {task.case_id}) is now assigned to {task.assignee}.", "success")
    return redirect(url_for("web.task_page", task_id=task_id), 303)


def _every_problem(detail, values: dict, problems: dict[str, list[str]]) -> dict[str, list[str]]:
    """What could not be read, and everything else the form's schema finds wrong, so all is shown at once."""
    try:
        validate_submission(detail.form_schema, values, form_name=detail.task.form_ref or "task")
    except InvalidInput as refused:
        found = {path: messages for path, messages in refused.field_errors.items() if path not in problems}
        return {**found, **problems}
    return problems


def _render(detail, *, values: dict, errors: dict, extra_rows: dict | None = None, status: int = 200):
    services = _services()
    fields = build_form(detail.form_schema or {"type": "object", "properties": {}}, detail.ui_schema,
                        values=values, errors=errors, zone=services.due_policy.zone, extra_rows=extra_rows)
    assignees = (handlers.eligible_assignees(services, task=detail.task, case=detail.case)
                 if detail.task.is_open and is_supervisor(g.user) else [])
    audit.record_read(services, actor=g.user, case_id=detail.case.id, channel=ReadChannel.PAGE,
                      what=f"task {detail.task.id} page")
    return render_template(
        "task.html", task=detail.task, case=detail.case, fields=fields, has_form=bool(detail.form_schema),
        problems=form_level_errors(fields, errors), errors=errors, assignees=assignees,
        now=services.clock.now(),
    ), status
