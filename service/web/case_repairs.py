"""A supervisor's fixes from the case page: retry or skip a failed step (after correcting data), close it, move a token."""
from __future__ import annotations

import json

from flask import current_app, flash, g, redirect, request, url_for

from workflows import handlers
from workflows.errors import InvalidInput

from . import bp

MAX_CORRECTIONS = 50


def _services():
    return current_app.extensions["casework"]


def _back(case_id: int, anchor: str = ""):
    return redirect(url_for("web.case_page", case_id=case_id) + anchor, 303)


@bp.post("/cases/<int:case_id>/incidents/<int:incident_id>/retry")
def retry_incident(case_id: int, incident_id: int):
    skip = request.form.get("action") == "skip"
    corrections = read_corrections(request.form.get("corrections", ""))
    incident = handlers.retry_incident(_services(), actor=g.user, incident_id=incident_id,
                                       corrections=corrections, skip=skip)
    step = (incident.element_id or incident.kind).replace("_", " ")
    flash(f"The failed step “{step}” was {'skipped' if skip else 'run again'}"
          f"{' with the corrected data' if corrections else ''}; the case moved on.", "success")
    return _back(case_id)


@bp.post("/cases/<int:case_id>/incidents/<int:incident_id>/close")
def close_incident(case_id: int, incident_id: int):
    handlers.close_incident(_services(), actor=g.user, incident_id=incident_id, reason=request.form.get("reason", ""))
    flash(f"Incident {incident_id} is closed.", "success")
    return _back(case_id)


@bp.post("/cases/<int:case_id>/move")
def move_token(case_id: int):
    token, _, target = request.form.get("move", "").partition(">")
    moved = handlers.move_token(_services(), actor=g.user, case_id=case_id, task_ref=token, target_id=target,
                                reason=request.form.get("reason", ""))
    flash(f"Case {case_id} moved from “{moved.from_name}” to “{moved.to_name}”.", "success")
    return _back(case_id)


def read_corrections(text: str) -> dict:
    """Read "name: value" lines; a value that reads as JSON (4, true, null, "4", [..]) is taken as such, else as text."""
    corrections: dict = {}
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not name.isidentifier():
            problems.append(f"line {number}: write it as name: value, e.g. gmlos_days: 4.")
            continue
        try:
            corrections[name] = json.loads(value)
        except ValueError:
            corrections[name] = value
    if len(corrections) > MAX_CORRECTIONS:
        problems.append(f"at most {MAX_CORRECTIONS} values at once.")
    if problems:
        raise InvalidInput("The corrected data could not be read.", {"corrections": problems})
    return corrections
