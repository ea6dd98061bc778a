"""Read a posted schema form back into the task's JSON data, keeping what the user typed where it does not convert."""
from __future__ import annotations

import math
import re
from datetime import date, datetime, timezone, tzinfo
from typing import Any

from werkzeug.datastructures import MultiDict

from .schema_form import choice_options, ordered_properties, schema_kind

_ABSENT = object()
# ASCII only: int() and float() would also take "1_000" and other scripts' digits.
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}.*", re.ASCII)
_WHOLE = re.compile(r"[+-]?\d+", re.ASCII)
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


def read_submission(schema: dict, form: MultiDict, *, zone: tzinfo) -> tuple[dict, dict[str, list[str]]]:
    """Turn a posted form into the schema's JSON data and the problems met converting it, by field path.

    Where a value does not convert (an integer "12a"), the data holds the text as typed and the
    problems say why, so `build_form(values=data, errors=problems)` shows the user their own entry.
    Blank optional fields and completely blank array rows are left out; posted names that are not
    in the schema (csrf_token, _action) are ignored.
    """
    reader = _Reader(form=form, zone=zone)
    data = reader.object(schema, prefix="", required=True)
    return data, reader.problems


class _Reader:
    def __init__(self, *, form: MultiDict, zone: tzinfo):
        self.form, self.zone = form, zone
        self.problems: dict[str, list[str]] = {}

    def value(self, schema: dict, *, path: str, required: bool) -> Any:
        kind, nullable = schema_kind(schema)
        if kind == "object":
            return self.object(schema, prefix=path, required=required)
        if kind == "array":
            return self.array(schema, path=path)
        if kind == "boolean":
            return self.boolean(path)
        text = (self.form.get(path) or "").replace("\r\n", "\n").strip()
        if not text:
            return None if nullable and required else _ABSENT
        return self.convert(text, kind, schema, path=path)

    def object(self, schema: dict, *, prefix: str, required: bool) -> Any:
        required_names = set(schema.get("required", []))
        data = {}
        for name in ordered_properties(schema, {}):
            path = f"{prefix}.{name}" if prefix else name
            value = self.value(schema["properties"][name], path=path, required=name in required_names)
            if value is not _ABSENT:
                data[name] = value
        # A required object is sent even when empty, so the errors name its missing fields one by one.
        return data if data or required else _ABSENT

    def array(self, schema: dict, *, path: str) -> Any:
        items = schema.get("items") or {}
        if choice_options(items, {}):
            item_kind = schema_kind(items)[0]
            chosen = [text for text in self.form.getlist(path) if text.strip()]
            values = [self.convert(text, item_kind, items, path=path) for text in dict.fromkeys(chosen)]
            return values or _ABSENT
        rows = []
        for index in self.row_indices(path):
            row_path = f"{path}.{index}"
            if self.is_blank(row_path):
                continue
            value = self.row(items, posted=row_path, kept=f"{path}.{len(rows)}")
            if value is not _ABSENT:
                rows.append(value)
        return rows or _ABSENT

    def row(self, items: dict, *, posted: str, kept: str) -> Any:
        # Blank rows are dropped, so a row's problems are filed under the index it keeps in the data.
        before = set(self.problems)
        value = self.value(items, path=posted, required=True)
        if posted != kept:
            for path in set(self.problems) - before:
                self.problems[kept + path[len(posted):]] = self.problems.pop(path)
        return value

    def boolean(self, path: str) -> Any:
        # A checkbox posts a hidden "" before its "true", so unticked reads as False; unanswered radios post nothing.
        posted = self.form.getlist(path)
        if "true" in posted:
            return True
        if "false" in posted or "" in posted:
            return False
        if posted:
            self.problems.setdefault(path, []).append("Choose yes or no.")
            return posted[-1]
        return _ABSENT

    def convert(self, text: str, kind: str, schema: dict, *, path: str) -> Any:
        converted, problem = text, None
        if kind == "integer":
            converted, problem = (int(text), None) if _WHOLE.fullmatch(text) else (text, "Enter a whole number.")
        elif kind == "number":
            converted, problem = _number(text)
        elif schema.get("format") == "date":
            if not _DATE.fullmatch(text) or not _is_date(text):
                problem = "Enter a date as year-month-day, e.g. 2026-11-23."
        elif schema.get("format") == "date-time":
            converted, problem = _moment(text, self.zone)
        if problem:
            self.problems.setdefault(path, []).append(problem)
            return text
        return converted

    def row_indices(self, path: str) -> list[int]:
        pattern = re.compile(re.escape(path) + r"\.(\d+)(?:\.|$)")
        return sorted({int(m.group(1)) for key in self.form.keys() if (m := pattern.match(key))})

    def is_blank(self, prefix: str) -> bool:
        return all(not text.strip() for key in self.form.keys() if key == prefix or key.startswith(prefix + ".")
                   for text in self.form.getlist(key))


def _number(text: str) -> tuple[Any, str | None]:
    if _WHOLE.fullmatch(text):
        return int(text), None
    if _DECIMAL.fullmatch(text) and math.isfinite(value := float(text)):
        return value, None
    return text, "Enter a number."


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _moment(text: str, zone: tzinfo) -> tuple[str, str | None]:
    """A datetime-local entry, read on the organisation's clock, as ISO 8601 with its UTC offset."""
    try:
        moment = datetime.fromisoformat(text) if _MOMENT.fullmatch(text) else None
    except ValueError:
        moment = None
    if moment is None:
        return text, "Enter a date and time, e.g. 2026-11-23 14:05."
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
        # In the hour the clocks go forward, local times do not exist; round-tripping through UTC moves them.
        if moment.astimezone(timezone.utc).astimezone(zone).replace(tzinfo=None) != moment.replace(tzinfo=None):
            return text, (f"{moment:%H:%M} on {moment:%Y-%m-%d} does not exist in {zone}: the clocks skip that "
                          "hour. Enter the time the clock showed.")
    return moment.isoformat(timespec="seconds"), None
