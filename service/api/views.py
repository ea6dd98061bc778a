"""API routes: parse the request, call a handler, serialise the result. Nothing else."""
from __future__ import annotations

import json
from pathlib import Path

from flask import current_app, g, request
from werkzeug.exceptions import BadRequest

from workflows import audit, deployment, handlers
from workflows.audit import ReadChannel
from workflows.catalog import DiagramSet, find_diagram_sets
from workflows.errors import InvalidInput
from workflows.handlers.common import is_supervisor
from workflows.model import FlagReason
from workflows.ports import FlagQuery, FlagSort, TaskQuery

from . import bp
from . import schemas as s
from .docs import build_openapi, documented


def _services():
    return current_app.extensions["casework"]


def _body(schema: type, *, optional: bool = False) -> dict:
    payload = request.get_json(silent=True)
    if payload is None and optional and not request.get_data():
        payload = {}
    if payload is None:
        raise BadRequest(_not_a_json_body())
    return s.one(schema).load(payload)


def _not_a_json_body() -> str:
    """Say why the body could not be read as JSON: its content type, or what is wrong in it."""
    if not request.is_json:
        return f"Send a JSON object body with Content-Type: application/json, not {request.mimetype or 'none'}."
    try:
        json.loads(request.get_data())
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
        return f"The body is not JSON encoded as UTF-8 ({err}); send a JSON object."
    return "Send a JSON object body with Content-Type: application/json."


def _query(schema: type) -> dict:
    return s.one(schema).load(request.args.to_dict())


@documented(bp, "/openapi.json", "GET", "This API's OpenAPI document", public=True, errors=())
def openapi():
    return build_openapi(bp.url_prefix)


@documented(bp, "/me", "GET", "The user the token belongs to", response=s.UserOut, errors=())
def me():
    return s.one(s.UserOut).dump(g.user)


@documented(bp, "/process-versions", "POST", "Deploy a diagram set (JSON files, or multipart upload)",
            body=s.DeployRequest, response=s.ProcessVersionList, status=201, errors=(400, 403, 413))
def deploy():
    if request.files:
        form = s.one(s.DeployUploadForm).load(request.form.to_dict())
        name, note = form["name"], form.get("note")
        files = {upload.filename: upload.read() for upload in request.files.getlist("file") if upload.filename}
        if not files:
            raise InvalidInput("Upload the diagram files as form field 'file'.", {"file": ["No files were uploaded."]})
        diagram_set = DiagramSet(name, files)
    else:
        fields = _body(s.DeployRequest)
        note = fields.get("note")
        diagram_set = DiagramSet(fields["name"], {path: text.encode("utf-8") for path, text in fields["files"].items()})
    library = find_diagram_sets(Path(current_app.config["BPMN_PATH"]))  # called processes (bpmn/common)
    versions = deployment.deploy_diagram_set(_services(), diagram_set=diagram_set, library=library, actor=g.user,
                                                  note=note)
    return s.one(s.ProcessVersionList).dump({"items": versions}), 201


@documented(bp, "/process-versions", "GET", "List deployed process versions", response=s.ProcessVersionList)
def list_process_versions():
    versions = deployment.list_process_versions(_services(), process_id=request.args.get("process_id"))
    return s.one(s.ProcessVersionList).dump({"items": versions})


@documented(bp, "/cases", "POST", "Start a case on the latest version of a process",
            body=s.StartCaseRequest, response=s.CaseOut, status=201)
def start_case():
    case = handlers.start_case(_services(), actor=g.user, **_body(s.StartCaseRequest))
    return s.one(s.CaseOut).dump(case), 201


@documented(bp, "/cases", "GET", "List cases", query=s.CaseListQuery, response=s.CaseList)
def list_cases():
    cases = handlers.list_cases(_services(), actor=g.user, **_query(s.CaseListQuery))
    return s.one(s.CaseList).dump({"items": cases})


@documented(bp, "/cases/<int:case_id>", "GET", "A case with its open tasks, timers, events and incidents",
            response=s.CaseDetailOut)
def get_case(case_id: int):
    detail = handlers.get_case(_services(), case_id=case_id, actor=g.user)
    audit.record_read(_services(), actor=g.user, case_id=case_id, channel=ReadChannel.API, what=f"GET {request.path}")
    body = s.one(s.CaseOut).dump(detail.case)
    body["open_tasks"] = s.one(s.TaskOut, many=True).dump(detail.open_tasks)
    body["timers"] = s.one(s.TimerOut, many=True).dump(detail.pending_timers)
    body["events"] = s.one(s.EventOut, many=True).dump(detail.events)
    body["incidents"] = s.one(s.IncidentOut, many=True).dump(detail.open_incidents)
    body["notes"] = s.one(s.NoteOut, many=True).dump(detail.notes)
    return body


@documented(bp, "/cases/<int:case_id>/notes", "POST", "Add a note to a case", body=s.NoteRequest,
            response=s.NoteOut, status=201, errors=(400, 403, 404))
def add_note(case_id: int):
    note = handlers.add_note(_services(), actor=g.user, case_id=case_id, **_body(s.NoteRequest))
    return s.one(s.NoteOut).dump(note), 201


@documented(bp, "/cases/<int:case_id>/tasks", "POST", "Add an ad-hoc task to a case, for a person or a role",
            body=s.AddTaskRequest, response=s.TaskOut, status=201, errors=(400, 403, 404, 409))
def add_task(case_id: int):
    task = handlers.add_adhoc_task(_services(), actor=g.user, case_id=case_id, **_body(s.AddTaskRequest))
    return s.one(s.TaskOut).dump(task), 201


@documented(bp, "/cases/<int:case_id>/cancel", "POST", "Cancel a case with a reason (supervisors)",
            body=s.CancelCaseRequest, response=s.CaseOut, errors=(400, 403, 404, 409))
def cancel_case(case_id: int):
    case = handlers.cancel_case(_services(), actor=g.user, case_id=case_id, **_body(s.CancelCaseRequest))
    return s.one(s.CaseOut).dump(case)


@documented(bp, "/cases/<int:case_id>/suspend", "POST", "Put a case on hold with a reason; its clocks stop (supervisors)",
            body=s.SuspendCaseRequest, response=s.CaseOut, errors=(400, 403, 404, 409))
def suspend_case(case_id: int):
    case = handlers.suspend_case(_services(), actor=g.user, case_id=case_id, **_body(s.SuspendCaseRequest))
    return s.one(s.CaseOut).dump(case)


@documented(bp, "/cases/<int:case_id>/resume", "POST",
            "Take a case off hold; every clock moves on by the time it was held (supervisors)",
            body=s.ResumeCaseRequest, body_required=False, response=s.CaseOut, errors=(400, 403, 404, 409))
def resume_case(case_id: int):
    case = handlers.resume_case(_services(), actor=g.user, case_id=case_id,
                                **_body(s.ResumeCaseRequest, optional=True))
    return s.one(s.CaseOut).dump(case)


@documented(bp, "/tasks", "GET", "List tasks (filter by role, assignee, case, status)",
            query=s.TaskListQuery, response=s.TaskList)
def list_tasks():
    args = _query(s.TaskListQuery)
    statuses = [args["status"]] if args.get("status") else (["open", "claimed"] if not args.get("case_id") else None)
    query = TaskQuery(
        case_id=args.get("case_id"),
        candidate_roles=[args["role"]] if args.get("role") else (g.user.roles if args["queue"] else None),
        assignee=g.user.username if args["mine"] else args.get("assignee"),
        statuses=statuses,
        unassigned_only=args["queue"],
        settings=g.user.setting_scope,
        viewer=None if is_supervisor(g.user) else (g.user.username, g.user.roles),
        limit=args["limit"],
        offset=args["offset"],
    )
    tasks, total = handlers.list_tasks(_services(), query=query)
    if query.case_id is not None and tasks:  # one case's tasks are a read of it; other task lists are summaries
        audit.record_read(_services(), actor=g.user, case_id=query.case_id, channel=ReadChannel.API,
                          what=f"GET {request.full_path}")
    return s.one(s.TaskList).dump({"items": tasks, "total": total, "limit": query.limit, "offset": query.offset})


@documented(bp, "/tasks/<int:task_id>", "GET", "A task with its form", response=s.TaskDetailOut)
def get_task(task_id: int):
    detail = handlers.get_task(_services(), task_id=task_id, actor=g.user)
    audit.record_read(_services(), actor=g.user, case_id=detail.case.id, channel=ReadChannel.API,
                      what=f"GET {request.path}")
    body = s.one(s.TaskDetailOut).dump(detail.task)
    body["form_schema"], body["ui_schema"] = detail.form_schema, detail.ui_schema
    return body


@documented(bp, "/tasks/<int:task_id>/draft", "PUT", "Save form data without submitting it (claims an unclaimed task)",
            body=s.SaveDraftRequest, response=s.TaskOut, errors=(400, 403, 404, 409))
def save_draft(task_id: int):
    data = _body(s.SaveDraftRequest)["data"]
    return s.one(s.TaskOut).dump(handlers.save_draft(_services(), actor=g.user, task_id=task_id, data=data))


@documented(bp, "/tasks/<int:task_id>/assign", "POST", "Assign a task to a user with its role (supervisors)",
            body=s.AssignTaskRequest, response=s.TaskOut, errors=(400, 403, 404, 409))
def assign_task(task_id: int):
    assignee = _body(s.AssignTaskRequest)["assignee"]
    return s.one(s.TaskOut).dump(handlers.assign_task(_services(), actor=g.user, task_id=task_id, assignee=assignee))


@documented(bp, "/tasks/<int:task_id>/claim", "POST", "Claim a task", response=s.TaskOut, errors=(403, 404, 409))
def claim_task(task_id: int):
    return s.one(s.TaskOut).dump(handlers.claim_task(_services(), actor=g.user, task_id=task_id))


@documented(bp, "/tasks/<int:task_id>/unclaim", "POST", "Release a claimed task", response=s.TaskOut,
            errors=(403, 404, 409))
def unclaim_task(task_id: int):
    return s.one(s.TaskOut).dump(handlers.unclaim_task(_services(), actor=g.user, task_id=task_id))


@documented(bp, "/tasks/<int:task_id>/complete", "POST", "Complete a task with form data",
            body=s.CompleteTaskRequest, response=s.TaskOut, errors=(400, 403, 404, 409, 422))
def complete_task(task_id: int):
    data = _body(s.CompleteTaskRequest)["data"]
    return s.one(s.TaskOut).dump(handlers.complete_task(_services(), actor=g.user, task_id=task_id, data=data))


@documented(bp, "/messages", "POST", "Deliver a message to the case waiting for it",
            body=s.MessageRequest, response=s.CaseOut, errors=(400, 404, 409, 422))
def post_message():
    case = handlers.deliver_message(_services(), actor=g.user, **_body(s.MessageRequest))
    return s.one(s.CaseOut).dump(case)


@documented(bp, "/stuck-cases", "GET", "Cases the stuck-case scan flagged, with counts per reason and setting (supervisors)",
            query=s.StuckCaseListQuery, response=s.StuckCaseList, errors=(400, 403))
def list_stuck_cases():
    args = _query(s.StuckCaseListQuery)
    query = FlagQuery(
        reasons=[FlagReason(args["reason"])] if args.get("reason") else None,
        settings=[args["setting"]] if args.get("setting") else None, process_id=args.get("process_id"),
        assignee=args.get("assignee"), sort=FlagSort(args["sort"]), limit=args["limit"], offset=args["offset"],
    )
    result = handlers.stuck_cases(_services(), actor=g.user, query=query)
    return s.one(s.StuckCaseList).dump({
        "items": result.items, "total": result.total, "by_setting": result.by_setting,
        "by_reason": {reason.value: number for reason, number in result.by_reason.items()},
    })
