"""Refuse, before any handler runs, input that no database can hold, naming where it is.

The same request must get the same answer on SQLite and PostgreSQL. PostgreSQL refuses the
NUL character in text and JSON, and NaN or Infinity in JSON; neither database stores an
unpaired surrogate (it is not Unicode text), binds an integer past 64 bits, or fits an
uploaded file name longer than its column; JSON nested hundreds of levels deep exhausts
Python's stack. Registered after authentication: an anonymous request is refused for its
token first.
"""
from __future__ import annotations

import math

from flask import request
from werkzeug.exceptions import BadRequest, NotFound

from workflows.errors import InvalidInput

from . import bp
from .schemas import FILE_PATH_LENGTH, MAX_ID

MAX_JSON_DEPTH = 32
_REPORTED = 20  # problems named in one answer, however many the request holds


@bp.before_request
def ids_in_range():
    """Refuse a path id no row can have before it reaches a query (SQLite cannot even bind it)."""
    for name, value in (request.view_args or {}).items():
        if isinstance(value, int) and value > MAX_ID:
            raise NotFound(f"No {name.removesuffix('_id').replace('_', ' ')} has id {value}: ids go up to {MAX_ID}.")


@bp.before_request
def storable_input():
    """Refuse NUL characters, unpaired surrogates, NaN, Infinity and over-deep JSON, by field."""
    found: list[tuple[str, str]] = []
    for source in (request.view_args or {}, request.args, request.form):
        for name, value in source.items(multi=True) if hasattr(source, "getlist") else source.items():
            found.extend((_label(name), problem) for text in (name, value)
                         if isinstance(text, str) and (problem := _text_problem(text)))
    for field, upload in request.files.items(multi=True):
        if problem := _text_problem(upload.filename or "") or _name_length_problem(upload.filename or ""):
            found.append((field, f"File name {_label(upload.filename)[:60]!r}: {problem}"))
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        raise BadRequest(f"The JSON body is nested too deeply: use at most {MAX_JSON_DEPTH} levels.") from None
    found.extend(_json_problems(body))
    if found:
        where, problem = found[0]
        more = f" ({len(found) - 1} more problem(s) in field_errors)" if len(found) > 1 else ""
        field_errors: dict[str, list[str]] = {}
        for place, text in found[:_REPORTED]:
            field_errors.setdefault(place, []).append(text)
        raise InvalidInput(f"{where}: {problem}{more}", field_errors)


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "Text may not contain the NUL character (U+0000)."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "Text must be Unicode: it holds an unpaired surrogate (U+D800 to U+DFFF)."
    return None


def _name_length_problem(file_name: str) -> str | None:
    if len(file_name) > FILE_PATH_LENGTH:
        return f"Use at most {FILE_PATH_LENGTH} characters, not {len(file_name)}."
    return None


def _label(name: str) -> str:
    """A field name fit to show, its NUL characters and surrogates escaped."""
    return name if _text_problem(name) is None else repr(name)[1:-1]


def _json_problems(body) -> list[tuple[str, str]]:
    """What is wrong in a parsed JSON body, each with its path (e.g. data.items[2].name), up to a bound."""
    found: list[tuple[str, str]] = []
    pending = [(body, "", 0)]
    while pending and len(found) < _REPORTED:
        value, path, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            found.append((path, f"Nested more than {MAX_JSON_DEPTH} levels deep."))
        elif isinstance(value, dict):
            for key, item in value.items():
                key_path = f"{path}.{_label(key)}" if path else _label(key)
                if problem := _text_problem(key):
                    found.append((key_path, f"In the name: {problem}"))
                pending.append((item, key_path, depth + 1))
        elif isinstance(value, list):
            pending.extend((item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value))
        elif isinstance(value, str) and (problem := _text_problem(value)):
            found.append((path or "_body", problem))
        elif isinstance(value, float) and not math.isfinite(value):
            found.append((path or "_body", "Numbers must be finite: NaN and Infinity cannot be stored."))
    return found
