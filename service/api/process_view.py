"""The process view over the API: where each process version's running cases wait, and which cases (supervisors)."""
from __future__ import annotations

from flask import current_app, g, request
from marshmallow import Schema, fields, validate

from workflows import handlers
from workflows.handlers.process_view import ElementCases, ProcessView

from . import bp
from .docs import documented
from .schemas import MAX_INT32, OFFSET, one


class ProcessViewQuery(Schema):
    version = fields.Int(validate=validate.Range(min=1, max=MAX_INT32),
                         metadata={"description": "Version number; the latest if left out"})
    diagram = fields.Str(validate=validate.Length(min=1, max=500),
                         metadata={"description": "Diagram file of the version; the process's own if left out"})


class ElementCasesQuery(ProcessViewQuery):
    limit = fields.Int(load_default=50, validate=validate.Range(min=1, max=500))
    offset = fields.Int(load_default=0, validate=OFFSET)


class ElementLoadOut(Schema):
    element_id = fields.Str()
    name = fields.Str()
    cases = fields.Int(metadata={"description": "Running cases waiting there (each counted once)"})
    overdue_tasks = fields.Int()
    open_incidents = fields.Int()
    inside = fields.List(fields.Str(), metadata={
        "description": "For a call activity: the called diagrams whose waiting cases it stands for"})


class VersionLoadOut(Schema):
    version = fields.Int()
    running_cases = fields.Int()
    open_incidents = fields.Int()
    deployed_at = fields.DateTime()


class HeatmapOut(Schema):
    process_id = fields.Function(lambda view: view.version.process_id)
    version = fields.Function(lambda view: view.version.version)
    diagram = fields.Str()
    diagrams = fields.List(fields.Str(),
                           metadata={"description": "Every diagram the process runs through, its own first"})
    versions = fields.List(fields.Nested(VersionLoadOut), metadata={
        "description": "The latest version and older ones with running cases"})
    elements = fields.Method("element_loads", metadata={"description": "Elements where cases wait, most cases first"})
    unplaced = fields.List(fields.Str(), metadata={
        "description": "Called diagrams whose cases count on their own view only: several call activities lead there"})

    def element_loads(self, view: ProcessView) -> list[dict]:
        return one(ElementLoadOut, many=True).dump([
            {**vars(load), "name": view.names[load.element_id], "inside": view.rolled_up.get(load.element_id, [])}
            for load in view.busiest
        ])


class WaitingCaseOut(Schema):
    case_id = fields.Int()
    subject_name = fields.Str()
    subject_ref = fields.Str()
    setting = fields.Str()
    status = fields.Function(lambda row: row.status.value)
    since = fields.DateTime(metadata={"description": "When its first task there opened or incident there was "
                                                     "raised; for a timer or message wait, the case's last move"})
    due_at = fields.DateTime(allow_none=True)
    assignee = fields.Str(allow_none=True)
    candidate_role = fields.Str(allow_none=True)
    overdue = fields.Bool()
    incident = fields.Bool()


class ElementCasesOut(Schema):
    process_id = fields.Function(lambda page: page.view.version.process_id)
    version = fields.Function(lambda page: page.view.version.version)
    diagram = fields.Function(lambda page: page.view.diagram)
    element_id = fields.Str()
    name = fields.Str()
    items = fields.List(fields.Nested(WaitingCaseOut))
    total = fields.Int()
    limit = fields.Int()
    offset = fields.Int()


@documented(bp, "/processes/<process_id>/heatmap", "GET",
            "Running cases, overdue tasks and open incidents per element of a process's diagram (supervisors)",
            query=ProcessViewQuery, response=HeatmapOut, errors=(400, 403, 404))
def process_heatmap(process_id: str):
    view = handlers.process_view(current_app.extensions["casework"], actor=g.user, process_id=process_id,
                                 **one(ProcessViewQuery).load(request.args.to_dict()))
    return one(HeatmapOut).dump(view)


@documented(bp, "/processes/<process_id>/elements/<element_id>/cases", "GET",
            "The running cases waiting at an element of a process's diagram, longest waiting first (supervisors)",
            query=ElementCasesQuery, response=ElementCasesOut, errors=(400, 403, 404))
def element_waiting_cases(process_id: str, element_id: str):
    page: ElementCases = handlers.element_cases(current_app.extensions["casework"], actor=g.user,
                                                process_id=process_id, element_id=element_id,
                                                **one(ElementCasesQuery).load(request.args.to_dict()))
    return one(ElementCasesOut).dump(page)
