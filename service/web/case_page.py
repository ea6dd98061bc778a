"""A case's page: who it is about, what it waits on, its history, notes and diagram; add a note or a task."""
from __future__ import annotations

from datetime import datetime

from flask import Response, current_app, flash, g, jsonify, redirect, render_template, request, url_for

from workflows import audit, handlers
from workflows.audit import ReadChannel
from workflows.errors import InvalidInput
from workflows.handlers.common import is_supervisor, may_see_task

from . import bp

TIMELINE_LIMIT = 200


def _services():
    return current_app.extensions["casework"]


@bp.get("/cases/<int:case_id>")
def case_page(case_id: int):
    return _render(case_id)


@bp.post("/cases/<int:case_id>/notes")
def add_note(case_id: int):
    try:
        handlers.add_note(_services(), actor=g.user, case_id=case_id, text=request.form.get("text", ""))
    except InvalidInput as refused:
        return _render(case_id, note_text=request.form.get("text", ""), note_errors=refused.field_errors, status=422)
    flash("Note added.", "success")
    return redirect(url_for("web.case_page", case_id=case_id) + "#notes", 303)


@bp.post("/cases/<int:case_id>/tasks")
def add_task(case_id: int):
    entered = {name: request.form.get(name, "") for name in ("title", "due_at", "who", "note")}
    unreadable: dict[str, list[str]] = {}
    assignee, role = _who(entered["who"], unreadable)
    try:
        task = handlers.add_adhoc_task(
            _services(), actor=g.user, case_id=case_id, title=entered["title"], note=entered["note"],
            due_at=_local_moment(entered["due_at"], unreadable), assignee=assignee, candidate_role=role,
            input_problems=unreadable,
        )
    except InvalidInput as refused:
        errors = dict(refused.field_errors)
        errors["who"] = errors.get("who", []) + errors.pop("assignee", []) + errors.pop("candidate_role", [])
        return _render(case_id, task_values=entered, task_errors={k: v for k, v in errors.items() if v}, status=422)
    flash(f"Task “{task.title}” added to case {case_id} for {task.assignee or task.candidate_role}.", "success")
    return redirect(url_for("web.case_page", case_id=case_id) + "#open-tasks", 303)


# Not recorded as a read: the deployed process's drawing, the same for every case of its version.
@bp.get("/cases/<int:case_id>/diagram.bpmn")
def case_diagram_xml(case_id: int):
    xml = handlers.case_diagram_xml(_services(), actor=g.user, case_id=case_id, path=request.args.get("path"))
    return Response(xml, mimetype="application/xml", headers={"Cache-Control": "private, max-age=300"})


@bp.get("/cases/<int:case_id>/diagram-marks.json")
def case_diagram_marks(case_id: int):
    diagram = handlers.case_diagram(_services(), actor=g.user, case_id=case_id, path=request.args.get("path"))
    audit.record_read(_services(), actor=g.user, case_id=case_id, channel=ReadChannel.PAGE, what="case diagram marks")
    response = jsonify(diagram.marks())
    response.headers["Cache-Control"] = "no-store"
    return response


def _who(value: str, problems: dict) -> tuple[str | None, str | None]:
    """The ad-hoc form's one choice of who does it: "user:carla" or "role:social_worker"."""
    kind, _, name = value.partition(":")
    if kind == "user" and name:
        return name, None
    if kind == "role" and name:
        return None, name
    problems["who"] = ["Choose a person or a role."]
    return None, None


def _local_moment(text: str, problems: dict) -> datetime | None:
    """A datetime-local field's value, on the organisation's clock; blank means no due time."""
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        problems["due_at"] = ["Enter a date and time."]
        return None
    return moment.replace(tzinfo=_services().due_policy.zone) if moment.tzinfo is None else moment


def _render(case_id: int, *, note_text: str = "", note_errors: dict | None = None, task_values: dict | None = None,
            task_errors: dict | None = None, status: int = 200):
    services = _services()
    detail = handlers.get_case(services, case_id=case_id, actor=g.user)
    diagram = handlers.case_diagram(services, actor=g.user, case_id=case_id)
    people, roles = handlers.adhoc_choices(services, setting=detail.case.setting)
    tokens = handlers.token_choices(services, actor=g.user, case_id=case_id) if is_supervisor(g.user) else []
    audit.record_read(services, actor=g.user, case_id=case_id, channel=ReadChannel.PAGE, what="case page")
    return render_template(
        "case.html", detail=detail, case=detail.case, now=services.clock.now(), diagram_paths=diagram.paths,
        timeline=list(reversed(detail.events))[:TIMELINE_LIMIT], may_see_task=may_see_task,
        note_text=note_text, note_errors=note_errors or {}, task_values=task_values or {},
        task_errors=task_errors or {}, people=people, roles=roles, tokens=tokens,
        readers=audit.recent_reads(services, actor=g.user, case_id=case_id),
        open_move=request.args.get("move") == "1",
    ), status
