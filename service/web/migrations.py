"""What a new process version changes, and moving running cases onto it (supervisors)."""
from __future__ import annotations

from flask import current_app, g, render_template, request

from workflows.errors import InvalidInput
from workflows.handlers import migration

from . import bp


def _services():
    return current_app.extensions["casework"]


def _version(name: str, source=None) -> int | None:
    """A version number from the query string or form; blank gives None."""
    text = (source if source is not None else request.args).get(name, "").strip()
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= 1_000_000:
        raise InvalidInput("That is not a version number.",
                           {name: [f"Give a version number such as 2, not {text[:20]!r}."]})
    return int(text)


@bp.get("/processes/<process_id>/diff")
def process_diff(process_id: str):
    diff = migration.version_diff(_services(), actor=g.user, process_id=process_id,
                                  from_version=_version("from"), to_version=_version("to"))
    return render_template("process_diff.html", diff=diff, process_id=process_id)


@bp.get("/processes/<process_id>/migrate")
def process_migrate(process_id: str):
    return _migrate_page(process_id, _version("to"), results=None)


@bp.post("/processes/<process_id>/migrate")
def migrate_cases(process_id: str):
    to_version = _version("to_version", request.form)
    if to_version is None:
        raise InvalidInput("Say which version to move the cases to.", {"to_version": ["This field is required."]})
    case_ids = [_case_id(text) for text in request.form.getlist("case_id")]
    expected = {case_id: int(request.form[f"version_{case_id}"]) for case_id in case_ids
                if request.form.get(f"version_{case_id}", "").isdigit()}
    results = migration.migrate_cases(_services(), actor=g.user, process_id=process_id, case_ids=case_ids,
                                      to_version=to_version, expected_versions=expected)
    return _migrate_page(process_id, to_version, results=results)


def _migrate_page(process_id: str, to_version: int | None, *, results):
    target = migration.migration_target(_services(), actor=g.user, process_id=process_id, to_version=to_version)
    candidates = migration.migration_preview(_services(), actor=g.user, process_id=process_id,
                                             to_version=target.version)
    return render_template("process_migrate.html", process_id=process_id, target=target, candidates=candidates,
                           results=results, limit=migration.PREVIEW_LIMIT)


def _case_id(text: str) -> int:
    if not text.strip().isdigit():
        raise InvalidInput("Choose the cases from the list.", {"case_id": [f"{text[:20]!r} is not a case number."]})
    return int(text)
