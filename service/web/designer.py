"""The designer: diagram sets and their versions, the draft the modeler edits, uploads, deploys and downloads.

Scripts (the modeler page) get JSON, errors included; forms get a flash message and a redirect.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

from flask import Response, current_app, flash, g, jsonify, redirect, render_template, request, url_for

from workflows import catalog, design_views, designing
from workflows.errors import DiagramProblem, InvalidInput

from ..api.designer import file_download, mimetype_of
from . import bp

_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")

bp.add_app_template_global(designing.may_read, "may_use_designer")


def _services():
    return current_app.extensions["casework"]


def _library() -> list[catalog.DiagramSet]:
    """Where called processes come from: bpmn/common, as designers last deployed it."""
    folder = catalog.find_diagram_sets(Path(current_app.config["BPMN_PATH"]))
    return designing.library_as_deployed(_services(), folder=folder)


def wants_json() -> bool:
    """Tell whether a designer request comes from a script rather than a form or a link, so errors are JSON."""
    if not request.path.startswith("/designer/"):
        return False
    if (request.is_json or "X-CSRFToken" in request.headers
            or request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"):
        return True
    if request.method == "POST":
        return request.mimetype not in _FORM_TYPES
    return request.method == "PUT" or request.path.endswith(".json") or "/draft/" in request.path


def problem_out(problem: DiagramProblem) -> dict:
    """A problem as the modeler page reads it."""
    return {"severity": problem.severity, "message": problem.message, "file": problem.file,
            "element_id": problem.element_id, "line": problem.line}


def _problems_out(problems: list[DiagramProblem]) -> dict:
    errors = sum(1 for problem in problems if problem.is_error)
    return {"problems": [problem_out(p) for p in problems], "errors": errors, "warnings": len(problems) - errors}


def diff_url(process_id: str, version: int) -> str | None:
    """Link a version to the page of its changes since the one before, once that page exists."""
    if version < 2 or "web.process_diff" not in current_app.view_functions:
        return None
    return url_for("web.process_diff", process_id=process_id, **{"from": version - 1, "to": version})


@bp.get("/designer")
def designer():
    sets = design_views.designer_overview(_services(), actor=g.user, library=_library())
    return render_template("designer.html", sets=sets, can_deploy=designing.may_write(g.user), diff_url=diff_url,
                           upload_folders=designing.UPLOAD_FOLDERS)


@bp.get("/designer/sets/<set_name>")
def designer_set(set_name: str):
    draft = design_views.open_draft(_services(), actor=g.user, set_name=set_name, library=_library())
    return render_template("designer_editor.html", set_name=set_name, draft=draft,
                           can_deploy=designing.may_write(g.user))


@bp.get("/designer/sets/<set_name>/draft.json")
def designer_draft(set_name: str):
    draft = design_views.open_draft(_services(), actor=g.user, set_name=set_name, library=_library())
    based_on = draft.based_on
    return _no_store(jsonify({
        "set": draft.set_name, "revision": draft.revision, "updated_by": draft.updated_by,
        "updated_at": draft.updated_at.isoformat() if draft.updated_at else None,
        "based_on": {"process_id": based_on.process_id, "version": based_on.version,
                     "content_hash": based_on.content_hash} if based_on else None,
        "files": [{"path": file.path, "kind": file.kind, "size": file.size} for file in draft.files],
        "processes": [{"process_id": p.process_id, "name": p.name, "file": p.file} for p in draft.processes],
    }))


@bp.get("/designer/sets/<set_name>/draft/files/<path:path>")
def designer_draft_file(set_name: str, path: str):
    content = design_views.read_draft_file(_services(), actor=g.user, set_name=set_name, path=path, library=_library())
    return _no_store(Response(content, mimetype=mimetype_of(path)))


@bp.url_value_preprocessor
def room_for_oversized_files(endpoint: str | None, values: dict | None) -> None:
    # Room above the file limit, so an oversized file gets the core's sentence rather than a bare 413.
    # It must be set here: URL preprocessors run before the CSRF check, which reads the body.
    if endpoint == "web.designer_save_file":
        request.max_content_length = 2 * designing.MAX_FILE_BYTES


@bp.put("/designer/sets/<set_name>/draft/files/<path:path>")
def designer_save_file(set_name: str, path: str):
    revision, problems = designing.save_file(_services(), actor=g.user, set_name=set_name, path=path,
                                             content=request.get_data(), revision=_loaded_revision(),
                                             library=_library())
    return jsonify({"revision": revision, "problems": [problem_out(p) for p in problems]})


@bp.post("/designer/sets/<set_name>/draft/validate")
def designer_validate(set_name: str):
    return jsonify(_problems_out(designing.validate_draft(_services(), actor=g.user, set_name=set_name,
                                                          library=_library())))


@bp.post("/designer/sets/<set_name>/draft/tests")
def designer_tests(set_name: str):
    report = designing.run_draft_tests(_services(), actor=g.user, set_name=set_name, library=_library())
    return jsonify({
        "passed": report.passed, "problems": report.problems,
        "outcomes": [{"name": outcome.test.name, "path": outcome.test.path, "passed": outcome.passed,
                      "failures": outcome.failures} for outcome in report.outcomes],
        "coverage": [{"file": item.file, "percent": round(item.percent, 1), "elements": sorted(item.elements),
                      "reached": sorted(item.reached & set(item.elements)), "flows": sorted(item.flows),
                      "taken": sorted(item.taken & set(item.flows))}
                     for item in sorted(report.coverage.values(), key=lambda item: item.file)],
    })


@bp.post("/designer/sets/<set_name>/draft/deploy")
def designer_deploy(set_name: str):
    fields = (request.get_json(silent=True) if request.is_json else request.form) or {}
    note = fields.get("note", "") if isinstance(fields, dict) else None
    if not isinstance(note, str):
        raise InvalidInput("Send the deployment note as text in the field 'note'.", {"note": ["Send text."]})
    versions = designing.deploy_draft(_services(), actor=g.user, set_name=set_name, note=note, library=_library())
    # Flashed for the script too: the modeler page goes on to /designer, which shows it.
    flash(f"Deployed {', '.join(f'{v.process_id} version {v.version}' for v in versions)}.", "success")
    if wants_json():
        return jsonify({"versions": [{"process_id": v.process_id, "version": v.version, "content_hash": v.content_hash}
                                     for v in versions], "redirect": url_for("web.designer")})
    return redirect(url_for("web.designer"), 303)


@bp.post("/designer/sets/<set_name>/draft/upload")
def designer_upload(set_name: str):
    files: dict[str, bytes] = {}
    for upload in request.files.getlist("file"):
        if upload.filename in files:
            raise InvalidInput(f"Two uploaded files are both called {upload.filename}; upload one of them.",
                               {"file": ["The same file name twice."]})
        if upload.filename:
            files[upload.filename] = upload.read()
    revision, paths, problems = designing.upload_files(_services(), actor=g.user, set_name=set_name, files=files,
                                                       folder=request.form.get("folder", ""), library=_library())
    if wants_json():
        return jsonify({"revision": revision, "files": paths, "problems": [problem_out(p) for p in problems]})
    flash(f"Added {', '.join(paths)} to the {set_name} draft (revision {revision}).", "success")
    return redirect(url_for("web.designer_set", set_name=set_name), 303)


@bp.post("/designer/sets/<set_name>/draft/discard")
def designer_discard(set_name: str):
    designing.discard_draft(_services(), actor=g.user, set_name=set_name)
    if wants_json():
        return jsonify({"discarded": True, "redirect": url_for("web.designer")})
    flash(f"The {set_name} draft was discarded; the deployed versions are unchanged.", "success")
    return redirect(url_for("web.designer"), 303)


@bp.get("/designer/versions/<int:version_id>/files/<path:path>")
def designer_version_file(version_id: int, path: str):
    content = design_views.version_file(_services(), actor=g.user, version_id=version_id, path=path)
    return file_download(content, name=path)


@bp.get("/designer/versions/<int:version_id>.zip")
def designer_version_zip(version_id: int):
    version = design_views.deployed_version(_services(), actor=g.user, version_id=version_id)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path, content in sorted(version.files.items()):
            bundle.writestr(zipfile.ZipInfo(path, date_time=version.deployed_at.timetuple()[:6]), content,
                            compress_type=zipfile.ZIP_DEFLATED)
    return file_download(archive.getvalue(), name=f"{version.process_id}-v{version.version}.zip",
                         mimetype="application/zip")


def _loaded_revision() -> int:
    text = request.headers.get("X-Draft-Revision", "").strip()
    if not text.isdigit() or len(text) > 9:
        raise InvalidInput("Send the revision of the draft you loaded in the X-Draft-Revision header, e.g. "
                           "X-Draft-Revision: 3.", {"X-Draft-Revision": ["Give the revision as a whole number."]})
    return int(text)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"  # a draft changes under other designers' hands
    return response
