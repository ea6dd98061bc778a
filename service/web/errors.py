"""Errors on the web pages: a form action that fails says why and returns to where it came from."""
from __future__ import annotations

import logging

from flask import flash, jsonify, redirect, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from workflows.designing import StaleDraft
from workflows.errors import CaseworkError, DiagramError, InvalidInput
from workflows.log_safety import failure_outline

from ..api import bp as api_bp
from ..api.errors import STATUS_BY_ERROR, api_route_error, too_large_message
from . import bp
from .auth import safe_target
from .designer import problem_out, wants_json

log = logging.getLogger(__name__)
# The designer's scripts read errors as JSON; a file or draft that cannot be used is 422 there.
JSON_STATUS_BY_ERROR = ((InvalidInput, 422), (DiagramError, 422), *STATUS_BY_ERROR)


def _json(status: int, message: str, **extra):
    return jsonify({"error": message, **{key: value for key, value in extra.items() if value is not None}}), status


def _json_error(err: CaseworkError):
    status = next((code for kind, code in JSON_STATUS_BY_ERROR if isinstance(err, kind)), 400)
    if status >= 500:
        return _json(status, "Something went wrong on our side; nothing was changed. The error has been logged.")
    return _json(status, err.message, field_errors=getattr(err, "field_errors", None) or None,
                 problems=[problem_out(p) for p in err.problems] if isinstance(err, DiagramError) else None,
                 **({"revision": err.revision, "updated_by": err.updated_by} if isinstance(err, StaleDraft) else {}))


def _page(status: int, title: str, message: str):
    return render_template("error.html", status=status, title=title, message=message), status


@bp.errorhandler(CaseworkError)
def domain_error(err: CaseworkError):
    if wants_json():
        return _json_error(err)
    status = next((code for kind, code in STATUS_BY_ERROR if isinstance(err, kind)), 400)
    if status >= 500:
        log.error("Case state error: %s", type(err).__name__)
        return _page(status, "This case cannot be read", "Its stored state is damaged; an administrator must look at it.")
    message = err.message
    if isinstance(err, InvalidInput) and err.field_errors:
        message += " " + " ".join(f"{name}: {' '.join(problems)}" for name, problems in err.field_errors.items())
    if request.method == "POST":
        flash(message, "error")
        return redirect(safe_target(request.form.get("back")), 303)
    return _page(status, "That did not work", message)


@bp.errorhandler(CSRFError)
def missing_form_token(err: CSRFError):
    if wants_json():
        return _json(400, "The request had no valid security token (X-CSRFToken); reload the page and try again.")
    return _page(400, "The form could not be accepted",
                 "It was sent without a valid security token, perhaps from an old page or after signing out. "
                 "Go back, reload the page and try again.")


@bp.errorhandler(RequestEntityTooLarge)
def too_large(err: RequestEntityTooLarge):
    if wants_json():
        return _json(413, too_large_message())
    return _page(413, "The request is too large", too_large_message())


@bp.errorhandler(HTTPException)
def http_error(err: HTTPException):
    if wants_json():
        return _json(err.code or 500, err.description or err.name)
    return _page(err.code or 500, err.name, err.description or err.name)


# Requests no blueprint answers (unknown addresses, static files) and /metrics, which has no handlers of its
# own, get the same answers as the pages, never Flask's defaults: the API's own prefix is answered in JSON.
@bp.app_errorhandler(HTTPException)
def http_error_elsewhere(err: HTTPException):
    if request.path.startswith(f"{api_bp.url_prefix}/"):
        return api_route_error(err)
    return http_error(err)


@bp.errorhandler(OperationalError)
@bp.app_errorhandler(OperationalError)
def database_unavailable(err: OperationalError):
    log.error("Database unavailable (%s)", type(getattr(err, "orig", err)).__name__)
    response = _page(503, "The database is unavailable", "Nothing was changed. Try again in a moment.")
    return response[0], 503, {"Retry-After": "5"}


@bp.errorhandler(Exception)
@bp.app_errorhandler(Exception)
def unexpected_error(err: Exception):
    log.error("Unexpected error on a web page (%s) at %s\n%s", type(err).__name__, request.endpoint,
              failure_outline(err))
    return _page(500, "Something went wrong on our side", "Nothing was changed. The error has been logged.")
