"""API routes for a supervisor's fixes: retry, skip or close a failed step; list and move a case's tokens."""
from __future__ import annotations

from flask import g, request
from marshmallow import Schema, fields, validate

from workflows import audit, handlers
from workflows.audit import ReadChannel

from . import bp
from .docs import documented
from .schemas import CaseOut, IncidentOut, one
from .views import _body, _services


class RetryIncidentRequest(Schema):
    corrections = fields.Dict(keys=fields.Str(validate=validate.Length(1, 255)), load_default=dict,
                              metadata={"description": "Case data to correct before the retry, name -> value"})
    skip = fields.Bool(load_default=False, metadata={"description": "Pass over the failed step if it fails again"})


class CloseIncidentRequest(Schema):
    reason = fields.Str(required=True, validate=validate.Length(1, 2000))


class ResolvedIncidentOut(IncidentOut):
    resolution = fields.Str(allow_none=True)
    resolved_at = fields.DateTime(allow_none=True)
    resolved_by = fields.Str(allow_none=True)


class MoveTargetOut(Schema):
    element_id = fields.Str()
    name = fields.Str()
    kind = fields.Str()


class TokenOut(Schema):
    task_ref = fields.Str()
    element_id = fields.Str()
    name = fields.Str()
    process_id = fields.Str()
    state = fields.Str(metadata={"description": "ready, waiting or running (a call activity)"})
    targets = fields.List(fields.Nested(MoveTargetOut))


class TokenList(Schema):
    items = fields.List(fields.Nested(TokenOut))


class MoveTokenRequest(Schema):
    task_ref = fields.Str(required=True, validate=validate.Length(1, 64))
    target = fields.Str(required=True, validate=validate.Length(1, 255))
    reason = fields.Str(required=True, validate=validate.Length(1, 2000))


@documented(bp, "/incidents/<int:incident_id>/retry", "POST",
            "Repeat the action that failed, after correcting case data; optionally skip the failed step (supervisors)",
            body=RetryIncidentRequest, body_required=False, response=ResolvedIncidentOut, errors=(400, 403, 404, 409, 422))
def retry_incident(incident_id: int):
    incident = handlers.retry_incident(_services(), actor=g.user, incident_id=incident_id,
                                       **_body(RetryIncidentRequest, optional=True))
    return one(ResolvedIncidentOut).dump(incident)


@documented(bp, "/incidents/<int:incident_id>/close", "POST", "Close a failed step without retrying it (supervisors)",
            body=CloseIncidentRequest, response=ResolvedIncidentOut, errors=(400, 403, 404, 409))
def close_incident(incident_id: int):
    incident = handlers.close_incident(_services(), actor=g.user, incident_id=incident_id, **_body(CloseIncidentRequest))
    return one(ResolvedIncidentOut).dump(incident)


@documented(bp, "/cases/<int:case_id>/tokens", "GET", "Where a case's tokens stand and where each may move (supervisors)",
            response=TokenList, errors=(401, 403, 404))
def list_tokens(case_id: int):
    choices = handlers.token_choices(_services(), actor=g.user, case_id=case_id)
    audit.record_read(_services(), actor=g.user, case_id=case_id, channel=ReadChannel.API, what=f"GET {request.path}")
    return one(TokenList).dump({"items": [{**choice.token.__dict__, "targets": choice.targets} for choice in choices]})


@documented(bp, "/cases/<int:case_id>/move", "POST",
            "Move a case's token to another step of its process (process-instance modification; supervisors)",
            body=MoveTokenRequest, response=CaseOut, errors=(400, 403, 404, 409, 422))
def move_token(case_id: int):
    args = _body(MoveTokenRequest)
    moved = handlers.move_token(_services(), actor=g.user, case_id=case_id, task_ref=args["task_ref"],
                                target_id=args["target"], reason=args["reason"])
    return one(CaseOut).dump(moved.case)
