"""Domain errors to HTTP status codes, in one place; every error is JSON."""
from __future__ import annotations

import logging

from flask import jsonify, request
from marshmallow import ValidationError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from workflows.errors import (
    CaseworkError,
    Conflict,
    DiagramError,
    EngineFailure,
    Forbidden,
    InvalidInput,
    NotFound,
)
from workflows.log_safety import failure_outline
from workflows.serialization import CaseStateError

from . import bp

log = logging.getLogger(__name__)

STATUS_BY_ERROR = (
    (NotFound, 404),
    (Conflict, 409),
    (Forbidden, 403),
    (InvalidInput, 400),
    (DiagramError, 400),
    (EngineFailure, 422),
    (CaseStateError, 500),
)


def error_response(status: int, message: str, **extra):
    body = {"status": status, "message": message}
    body.update({key: value for key, value in extra.items() if value is not None})
    response = jsonify({"error": body})
    response.status_code = status
    return response


@bp.errorhandler(CaseworkError)
def domain_error(err: CaseworkError):
    status = next((code for kind, code in STATUS_BY_ERROR if isinstance(err, kind)), 400)
    if status >= 500:
        log.error("Case state error: %s", type(err).__name__)
        return error_response(status, "The case's stored state cannot be read; an administrator must look at it.")
    extra = {}
    if isinstance(err, InvalidInput):
        extra["field_errors"] = err.field_errors
    if isinstance(err, DiagramError):
        extra["problems"] = [
            {"message": p.message, "file": p.file, "element_id": p.element_id, "line": p.line} for p in err.problems
        ]
    if isinstance(err, EngineFailure):
        extra["incident_id"] = err.details.get("incident_id")
    return error_response(status, err.message, **extra)


@bp.errorhandler(ValidationError)
def invalid_request(err: ValidationError):
    messages = err.messages if isinstance(err.messages, dict) else {"_schema": err.messages}
    field_errors = {key: _flatten(value) for key, value in messages.items()}
    return error_response(400, "The request is not valid.", field_errors=field_errors)


def too_large_message() -> str:
    """Say what the request size limit is and how to stay under it."""
    limit = request.max_content_length or 0
    size = f"{limit / 2**20:g} MB" if limit >= 2**20 else f"{limit:,} bytes"
    return (f"The request is larger than the {size} limit (CASEWORK_MAX_UPLOAD_BYTES); nothing was changed. "
            "Send less data, or smaller files.")


@bp.errorhandler(RequestEntityTooLarge)
def too_large(err: RequestEntityTooLarge):
    return error_response(413, too_large_message())


@bp.errorhandler(HTTPException)
def http_error(err: HTTPException):
    return error_response(err.code or 500, err.description or err.name)


@bp.errorhandler(OperationalError)
def database_unavailable(err: OperationalError):
    log.error("Database unavailable (%s)", type(getattr(err, "orig", err)).__name__)
    response = error_response(503, "The database is unavailable right now; nothing was changed. Try again shortly.")
    response.headers["Retry-After"] = "5"
    return response


@bp.errorhandler(Exception)
def unexpected_error(err: Exception):
    log.error("Unexpected error in the API (%s) at %s\n%s", type(err).__name__, request.endpoint, failure_outline(err))
    return error_response(500, "Something went wrong on our side; nothing was changed. The error has been logged.")


def _flatten(value) -> list[str]:
    if isinstance(value, list):
        return [item for entry in value for item in _flatten(entry)]
    if isinstance(value, dict):
        return [f"{key}: {item}" for key, entry in value.items() for item in _flatten(entry)]
    return [str(value)]


def api_route_error(err: HTTPException):
    """Answer an HTTP error raised before any API view ran, e.g. an address or method the API does not have.

    service/web/errors.py routes such errors here: they belong to no blueprint.
    """
    if err.code in (404, 405):
        return error_response(err.code, f"{err.name}: no such API endpoint or method ({request.method} {request.path}).")
    return http_error(err)
