"""Marshmallow schemas for every request and response of the JSON API."""
from __future__ import annotations

from datetime import datetime, timezone
from functools import cache

from marshmallow import Schema, ValidationError, fields, validate


@cache
def one(schema: type[Schema], *, many: bool = False) -> Schema:
    """The one instance of a schema class (of a list of them with `many`), made on first use.

    marshmallow 4 schemas keep nothing between calls of load and dump, and making one copies
    every declared field: tens of microseconds on each request that made its own.
    """
    return schema(many=many)


_NAME = validate.Regexp(r"^[A-Za-z0-9_.-]{1,64}$", error="Use 1-64 letters, digits, '_', '.' or '-'.")
# Row ids are 64-bit in every database Casework runs on (SQLite cannot even bind a larger
# integer); versions, priorities and attempts are 32-bit columns.
MAX_ID = 2**63 - 1
MAX_INT32 = 2**31 - 1
ID = validate.Range(min=1, max=MAX_ID, error="Ids run from {min} to {max}.")
OFFSET = validate.Range(min=0, max=MAX_INT32)
FILE_PATH_LENGTH = 255  # a diagram set's file path, sent as a JSON key or an upload's name


def plausible_time(value: datetime) -> None:
    """Refuse a time outside the years 1900-2999 in UTC: a typo, and near year 9999 one UTC cannot hold."""
    try:
        year = value.astimezone(timezone.utc).year
    except OverflowError:  # before year 1 or after 9999 once in UTC
        year = 0
    if not 1900 <= year <= 2999:
        raise ValidationError("Give a time between the years 1900 and 2999.")


class ErrorBody(Schema):
    status = fields.Int(required=True)
    message = fields.Str(required=True)
    field_errors = fields.Dict(keys=fields.Str(), values=fields.List(fields.Str()))
    problems = fields.List(fields.Dict())
    incident_id = fields.Int(allow_none=True)


class ErrorResponse(Schema):
    error = fields.Nested(ErrorBody, required=True)


class DeployRequest(Schema):
    name = fields.Str(required=True, validate=_NAME, metadata={"description": "Diagram set name, e.g. acute_hospital"})
    files = fields.Dict(
        keys=fields.Str(validate=validate.Length(min=1, max=FILE_PATH_LENGTH)),
        values=fields.Str(),
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata={"description": "Relative path -> file text (.bpmn, .dmn, forms/*.json)"},
    )
    note = fields.Str(load_default=None, validate=validate.Length(max=500),
                      metadata={"description": "What changed and why, kept with the new versions"})


class DeployUploadForm(Schema):
    name = fields.Str(required=True, validate=_NAME)
    note = fields.Str(load_default=None, validate=validate.Length(max=500))


class ProcessVersionOut(Schema):
    id = fields.Int()
    process_id = fields.Str()
    version = fields.Int()
    name = fields.Str()
    setting = fields.Str()
    content_hash = fields.Str()
    deployed_by = fields.Str()
    deployed_at = fields.DateTime()
    note = fields.Str(allow_none=True, metadata={"description": "What changed and why, as the designer wrote it"})
    files = fields.Method("file_names")

    def file_names(self, version) -> list[str]:
        return sorted(version.files)


class ProcessVersionList(Schema):
    items = fields.List(fields.Nested(ProcessVersionOut))


class StartCaseRequest(Schema):
    process_id = fields.Str(required=True, validate=validate.Length(min=1, max=255))
    data = fields.Dict(keys=fields.Str(), load_default=dict)
    subject_name = fields.Str(load_default="", validate=validate.Length(max=200))
    subject_ref = fields.Str(load_default="", validate=validate.Length(max=100))
    priority = fields.Int(load_default=3, validate=validate.Range(min=1, max=5))


class CaseOut(Schema):
    id = fields.Int()
    process_id = fields.Str()
    process_version_id = fields.Int()
    status = fields.Str()
    subject_name = fields.Str()
    subject_ref = fields.Str()
    setting = fields.Str()
    priority = fields.Int()
    version = fields.Int()
    opened_at = fields.DateTime()
    opened_by = fields.Str()
    closed_at = fields.DateTime(allow_none=True)
    updated_at = fields.DateTime(allow_none=True)
    suspended_at = fields.DateTime(allow_none=True, metadata={"description": "When the case was put on hold, if it is"})
    data = fields.Dict()


class CaseListQuery(Schema):
    status = fields.Str(validate=validate.OneOf(["active", "completed", "cancelled", "suspended", "error"]))
    process_id = fields.Str()
    limit = fields.Int(load_default=50, validate=validate.Range(min=1, max=200))
    offset = fields.Int(load_default=0, validate=OFFSET)


class CaseList(Schema):
    items = fields.List(fields.Nested(CaseOut))


class TaskOut(Schema):
    id = fields.Int()
    case_id = fields.Int()
    task_ref = fields.Str()
    element_id = fields.Str()
    title = fields.Str()
    candidate_role = fields.Str(allow_none=True)
    status = fields.Str()
    assignee = fields.Str(allow_none=True)
    priority = fields.Int()
    created_at = fields.DateTime()
    due_at = fields.DateTime(allow_none=True)
    at_risk_at = fields.DateTime(allow_none=True)
    form_ref = fields.Str(allow_none=True)
    ui_form_ref = fields.Str(allow_none=True)
    instructions = fields.Str()
    completed_at = fields.DateTime(allow_none=True)
    completed_by = fields.Str(allow_none=True)
    adhoc = fields.Bool(metadata={"description": "Added to the case by a person, not opened by its diagram"})


class TaskDetailOut(TaskOut):
    form_schema = fields.Dict(allow_none=True)
    ui_schema = fields.Dict(allow_none=True)
    draft = fields.Dict(allow_none=True, metadata={"description": "Form data saved, not submitted"})
    draft_saved_at = fields.DateTime(allow_none=True)
    draft_saved_by = fields.Str(allow_none=True)


class SaveDraftRequest(Schema):
    data = fields.Dict(keys=fields.Str(), required=True)


class AssignTaskRequest(Schema):
    assignee = fields.Str(required=True, validate=validate.Length(min=1, max=150))


class AddTaskRequest(Schema):
    title = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    due_at = fields.AwareDateTime(load_default=None, allow_none=True, validate=plausible_time)
    assignee = fields.Str(load_default=None, allow_none=True, validate=validate.Length(max=150))
    candidate_role = fields.Str(load_default=None, allow_none=True, validate=validate.Length(max=100))
    note = fields.Str(load_default="", validate=validate.Length(max=10_000))


class NoteRequest(Schema):
    text = fields.Str(required=True, validate=validate.Length(min=1, max=10_000))


class NoteOut(Schema):
    id = fields.Int()
    at = fields.DateTime()
    author = fields.Str()
    text = fields.Str()


class TaskListQuery(Schema):
    role = fields.Str(metadata={"description": "Candidate role (lane)"})
    assignee = fields.Str()
    case_id = fields.Int(validate=ID)
    status = fields.Str(validate=validate.OneOf(["open", "claimed", "completed", "cancelled"]))
    mine = fields.Bool(load_default=False, metadata={"description": "Only tasks claimed by me"})
    queue = fields.Bool(load_default=False, metadata={"description": "Unclaimed tasks for my roles"})
    limit = fields.Int(load_default=50, validate=validate.Range(min=1, max=200))
    offset = fields.Int(load_default=0, validate=OFFSET)


class TaskList(Schema):
    items = fields.List(fields.Nested(TaskOut))
    total = fields.Int()
    limit = fields.Int()
    offset = fields.Int()


class CompleteTaskRequest(Schema):
    data = fields.Dict(keys=fields.Str(), required=True)


class TimerOut(Schema):
    id = fields.Int()
    element_id = fields.Str()
    due_at = fields.DateTime()
    status = fields.Str()
    attempts = fields.Int()


class EventOut(Schema):
    id = fields.Int()
    at = fields.DateTime()
    actor = fields.Str()
    kind = fields.Str()
    payload = fields.Dict()


class IncidentOut(Schema):
    id = fields.Int()
    kind = fields.Str()
    message = fields.Str()
    element_id = fields.Str(allow_none=True)
    status = fields.Str()
    created_at = fields.DateTime()


class CaseDetailOut(CaseOut):
    open_tasks = fields.List(fields.Nested(TaskOut))
    timers = fields.List(fields.Nested(TimerOut))
    events = fields.List(fields.Nested(EventOut))
    incidents = fields.List(fields.Nested(IncidentOut))
    notes = fields.List(fields.Nested(NoteOut))


class MessageRequest(Schema):
    name = fields.Str(required=True, validate=validate.Length(min=1, max=255))
    payload = fields.Dict(keys=fields.Str(), load_default=dict)
    correlation = fields.Dict(keys=fields.Str(), load_default=dict)
    case_id = fields.Int(load_default=None, allow_none=True, validate=ID)


class CancelCaseRequest(Schema):
    reason = fields.Str(required=True, validate=validate.Length(min=1, max=2000))


class SuspendCaseRequest(Schema):
    reason = fields.Str(required=True, validate=validate.Length(min=1, max=2000),
                        metadata={"description": "Why the case is on hold, e.g. patient transferred out"})


class ResumeCaseRequest(Schema):
    reason = fields.Str(load_default="", validate=validate.Length(max=2000))


class UserOut(Schema):
    username = fields.Str()
    display_name = fields.Str()
    roles = fields.List(fields.Str())
    settings = fields.List(fields.Str(), metadata={"description": "Settings whose cases the user sees; '*' is every one"})


class StuckCaseListQuery(Schema):
    reason = fields.Str(validate=validate.OneOf(
        ["task_overdue", "task_at_risk", "timer_overdue", "incident", "stalled", "idle"]))
    setting = fields.Str(validate=validate.Length(max=100))
    process_id = fields.Str(validate=validate.Length(max=255))
    assignee = fields.Str(validate=validate.Length(max=150), metadata={"description": "Team member"})
    sort = fields.Str(load_default="since", validate=validate.OneOf(["since", "reason", "setting", "case"]))
    limit = fields.Int(load_default=50, validate=validate.Range(min=1, max=500))
    offset = fields.Int(load_default=0, validate=OFFSET)


class StuckCaseOut(Schema):
    case_id = fields.Function(lambda row: row.flag.case_id)
    subject_name = fields.Str()
    subject_ref = fields.Str()
    case_status = fields.Function(lambda row: row.case_status.value)
    reason = fields.Function(lambda row: row.flag.reason.value)
    subject = fields.Function(lambda row: row.flag.subject, metadata={"description": "task:ID, timer:ID, incident:ID or case"})
    detail = fields.Function(lambda row: row.flag.detail)
    since = fields.Function(lambda row: row.flag.since.isoformat())
    detected_at = fields.Function(lambda row: row.flag.detected_at.isoformat())
    setting = fields.Function(lambda row: row.flag.setting)
    process_id = fields.Function(lambda row: row.flag.process_id)
    assignee = fields.Function(lambda row: row.flag.assignee)
    candidate_role = fields.Function(lambda row: row.flag.candidate_role)
    element_id = fields.Function(lambda row: row.flag.element_id)


class StuckCaseList(Schema):
    items = fields.List(fields.Nested(StuckCaseOut))
    total = fields.Int()
    by_reason = fields.Dict(keys=fields.Str(), values=fields.Int())
    by_setting = fields.Dict(keys=fields.Str(), values=fields.Int())
