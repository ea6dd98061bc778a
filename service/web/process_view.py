"""The process view for managers: each deployed process's diagram with where its running cases wait."""
from __future__ import annotations

from flask import Response, current_app, g, jsonify, render_template, request, url_for

from workflows import handlers
from workflows.errors import InvalidInput
from workflows.handlers.process_view import PAGE_SIZE, ProcessView

from ..api.process_view import HeatmapOut
from ..api.schemas import one
from . import bp


def _services():
    return current_app.extensions["casework"]


def _number(name: str, *, default: int | None, example: str) -> int | None:
    """A positive whole number from the query string; blank gives the default."""
    text = request.args.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or not 1 <= int(text) <= 1_000_000:
        raise InvalidInput("The process view cannot show that.",
                           {name: [f"Give a whole number from 1, e.g. {example}, not {text[:20]!r}."]})
    return int(text)


def _chosen() -> dict:
    """The version and diagram the query string chooses (None: the latest version, the process's own diagram)."""
    return {"version": _number("version", default=None, example="2"), "diagram": request.args.get("diagram") or None}


def view_args(view: ProcessView, **changes) -> dict:
    """The query string that shows this version and diagram again, the diagram left out when it is the main one."""
    args = {"version": view.version.version, "diagram": view.diagram if view.diagram != view.diagrams[0] else None}
    return {name: value for name, value in (args | changes).items() if value is not None}


@bp.get("/processes")
def processes():
    return render_template("processes.html", processes=handlers.list_processes(_services(), actor=g.user))


@bp.get("/processes/<process_id>")
def process_page(process_id: str):
    view = handlers.process_view(_services(), actor=g.user, process_id=process_id, **_chosen())
    return render_template("process_view.html", view=view, process_id=process_id, args=view_args(view))


@bp.get("/processes/<process_id>/diagram.bpmn")
def process_diagram(process_id: str):
    xml = handlers.process_diagram_xml(_services(), actor=g.user, process_id=process_id, **_chosen())
    return Response(xml, mimetype="application/xml", headers={"Cache-Control": "private, max-age=300"})


@bp.get("/processes/<process_id>/heat.json")
def process_heat(process_id: str):
    view = handlers.process_view(_services(), actor=g.user, process_id=process_id, **_chosen())
    heat = one(HeatmapOut).dump(view)
    for element in heat["elements"]:
        element["url"] = url_for("web.element_page", process_id=process_id, element_id=element["element_id"],
                                 **view_args(view))
    response = jsonify(heat)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/processes/<process_id>/elements/<element_id>")
def element_page(process_id: str, element_id: str):
    page = _number("page", default=1, example="2")
    result = handlers.element_cases(_services(), actor=g.user, process_id=process_id, element_id=element_id,
                                    limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, **_chosen())
    return render_template("process_element.html", result=result, view=result.view, process_id=process_id,
                           args=view_args(result.view), page=page, pages=max(1, -(-result.total // PAGE_SIZE)),
                           now=_services().clock.now())
