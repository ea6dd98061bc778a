"""A task's JSON Schema form as fields for a server-rendered page (no JavaScript), with values and errors in place.

Field names are the dotted paths that `workflows.forms.validate_submission` uses for its errors
("attendees.0.name"), so an error lands next to the input it is about.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

_BOOLEAN_OPTIONS = [("true", "Yes"), ("false", "No")]
_NOT_ANSWERED = ("", "Not answered")


@dataclass
class Field:
    """One input (or group of inputs) of a form, as the template draws it."""

    name: str
    id: str
    label: str
    widget: str
    required: bool = False
    # The browser enforces only what holds whatever else is entered: not inside array rows or optional objects.
    required_attr: bool = False
    description: str = ""
    help: str = ""
    placeholder: str = ""
    readonly: bool = False
    options: list[tuple[str, str]] = field(default_factory=list)
    value: str | list[str] | bool = ""
    errors: list[str] = field(default_factory=list)
    # An object's fields, or an array's rows (each row a list of fields).
    children: list[Any] = field(default_factory=list)
    item_title: str = ""
    object_rows: bool = False
    can_add_row: bool = False
    minimum: int | float | None = None
    maximum: int | float | None = None
    minlength: int | None = None
    maxlength: int | None = None
    step: str | None = None

    @property
    def described_by(self) -> str:
        """The ids of the texts that describe this field, for aria-describedby."""
        parts = [(self.description, "description"), (self.errors, "error"), (self.help, "help")]
        return " ".join(f"{self.id}-{suffix}" for present, suffix in parts if present)

    @property
    def add_row_label(self) -> str:
        return f"Add another {self.item_title[:1].lower()}{self.item_title[1:]}"


def build_form(schema: dict, ui_schema: dict | None, *, values: dict, errors: dict[str, list[str]],
               zone: tzinfo, extra_rows: dict[str, int] | None = None) -> list[Field]:
    """Lay out the form's fields in ui:order, showing `values` (JSON data or what was entered) and `errors` by path.

    `extra_rows` adds blank rows to arrays, by path: what an "Add another" button (name="_add_row") asks for.
    """
    builder = _Builder(errors=errors, zone=zone, extra_rows=extra_rows or {})
    return builder.properties(schema, ui_schema or {}, values if isinstance(values, dict) else {},
                              prefix="", enforced=True)


def form_level_errors(fields: list[Field], errors: dict[str, list[str]]) -> list[str]:
    """The messages of `errors` that no field shows, so the page can list them above the form."""
    claimed = set()
    for each in _walk(fields):
        claimed.update(path for path in errors if _claims(each, path))
    messages = []
    for path, path_messages in errors.items():
        if path not in claimed:
            messages.extend(path_messages if path in ("", "data") else [f"{path}: {m}" for m in path_messages])
    return list(dict.fromkeys(messages))


def schema_kind(schema: dict) -> tuple[str, bool]:
    """The JSON type a property holds ("string", "object", ...) and whether it may also be null."""
    declared = schema.get("type")
    types = declared if isinstance(declared, list) else [declared] if declared else []
    nullable = "null" in types
    kinds = [t for t in types if t != "null"]
    if kinds:
        return kinds[0], nullable
    if "properties" in schema:
        return "object", nullable
    if "items" in schema:
        return "array", nullable
    choices = [value for value, _ in choice_options(schema, {})]
    return ("boolean" if choices and set(choices) <= {"true", "false"} else "string"), nullable


def choice_options(schema: dict, ui: dict) -> list[tuple[str, str]]:
    """The (value, label) pairs of an enum, or of a oneOf/anyOf of {const, title}."""
    alternatives = schema.get("oneOf") or schema.get("anyOf") or []
    if alternatives and all(isinstance(a, dict) and "const" in a for a in alternatives):
        return [(_as_text(a["const"]), a.get("title") or _humanise_value(a["const"]))
                for a in alternatives if a["const"] is not None]
    names = ui.get("ui:enumNames") or []
    values = [v for v in schema.get("enum", []) if v is not None]
    return [(_as_text(v), names[i] if i < len(names) else _humanise_value(v)) for i, v in enumerate(values)]


def ordered_properties(schema: dict, ui: dict) -> list[str]:
    """The object's property names in ui:order, where "*" stands for those it does not name."""
    names = list(schema.get("properties", {}))
    order = [n for n in ui.get("ui:order", []) if n == "*" or n in names]
    if "*" not in order:
        order.append("*")
    rest = [n for n in names if n not in order]
    star = order.index("*")
    return order[:star] + rest + order[star + 1:]


def _as_text(value: Any) -> str:
    """A JSON value as an input shows it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _humanise_value(value: Any) -> str:
    """An enum value as words, keeping capitals ("PT", "4th") where `humanise` would lower them."""
    text = _as_text(value).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _local_datetime_text(value: Any, zone: tzinfo) -> str:
    """An ISO date-time as a datetime-local input shows it in `zone`; text that is no date-time as it is."""
    if not isinstance(value, str):
        return _as_text(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    local = moment.astimezone(zone) if moment.tzinfo else moment
    return local.strftime("%Y-%m-%dT%H:%M:%S" if local.second else "%Y-%m-%dT%H:%M")


def _html_id(name: str) -> str:
    return "f-" + re.sub(r"[^A-Za-z0-9_-]+", "-", name)


def _walk(fields: list[Field]):
    for each in fields:
        yield each
        if each.widget == "object":
            yield from _walk(each.children)
        elif each.widget == "array":
            for row in each.children:
                yield from _walk(row)


def _claims(each: Field, path: str) -> bool:
    # A leaf also shows the errors below it ("dme_items.0" belongs to the dme_items checkboxes), and an
    # array of objects the errors about a whole row ("attendees.2"), which no input stands for.
    if path == each.name:
        return True
    if each.widget == "array":
        return each.object_rows and re.fullmatch(re.escape(each.name) + r"\.\d+", path) is not None
    return each.widget != "object" and path.startswith(each.name + ".")


@dataclass
class _Builder:
    errors: dict[str, list[str]]
    zone: tzinfo
    extra_rows: dict[str, int]

    def properties(self, schema: dict, ui: dict, values: dict, *, prefix: str, enforced: bool,
                   defaults: bool = True) -> list[Field]:
        required = set(schema.get("required", []))
        fields = []
        for name in ordered_properties(schema, ui):
            path = f"{prefix}.{name}" if prefix else name
            fields.append(self.field(schema["properties"][name], ui.get(name) or {}, values.get(name), path=path,
                                     present=name in values, required=name in required, enforced=enforced,
                                     defaults=defaults))
        return fields

    def field(self, schema: dict, ui: dict, value: Any, *, path: str, present: bool, required: bool,
              enforced: bool, defaults: bool = True, label: str | None = None) -> Field:
        kind, _ = schema_kind(schema)
        # As in RJSF, a default stands wherever the data has no value yet; but not in a blank row, which
        # would then no longer be blank and be kept.
        if defaults and not present and "default" in schema:
            value = schema["default"]
        made = Field(
            name=path, id=_html_id(path), widget="text", required=required, required_attr=required and enforced,
            label=ui.get("ui:title") or label or schema.get("title") or _humanise_value(path.rsplit(".", 1)[-1]),
            description=ui.get("ui:description") or schema.get("description", ""), help=ui.get("ui:help", ""),
            placeholder=ui.get("ui:placeholder", ""), readonly=bool(ui.get("ui:readonly") or schema.get("readOnly")),
        )
        if kind == "object":
            made.widget = "object"
            made.children = self.properties(schema, ui, value if isinstance(value, dict) else {}, prefix=path,
                                            enforced=made.required_attr, defaults=defaults)
        elif kind == "array":
            self.array(made, schema, ui, value)
        else:
            self.scalar(made, kind, schema, ui, value)
        # validate_submission can report one missing field once per missing sibling; say it once.
        shown = (m for at, messages in self.errors.items() if _claims(made, at) for m in messages)
        made.errors = list(dict.fromkeys(shown))
        return made

    def array(self, made: Field, schema: dict, ui: dict, value: Any) -> None:
        items, item_ui = schema.get("items") or {}, ui.get("items") or {}
        values = value if isinstance(value, list) else []
        options = choice_options(items, item_ui)
        if options:
            made.widget = "checkboxes" if ui.get("ui:widget") == "checkboxes" else "multiselect"
            made.options, made.value = options, [_as_text(v) for v in values]
            made.required_attr = False
            return
        made.widget, made.required_attr = "array", False
        made.item_title = items.get("title") or "row"
        made.object_rows = schema_kind(items)[0] == "object"
        count = max(len(values), 1) + self.extra_rows.get(made.name, 0)
        if "maxItems" in schema:
            count = max(len(values), min(count, schema["maxItems"]))
        made.can_add_row = count < schema.get("maxItems", count + 1)
        for index in range(count):
            path, present = f"{made.name}.{index}", index < len(values)
            item = values[index] if present else None
            if made.object_rows:
                row = self.properties(items, item_ui, item if isinstance(item, dict) else {}, prefix=path,
                                      enforced=False, defaults=present)
            else:
                label = f"{items.get('title') or made.label} {index + 1}"
                row = [self.field(items, item_ui, item, path=path, present=present, required=False, enforced=False,
                                  defaults=False, label=label)]
            made.children.append(row)

    def scalar(self, made: Field, kind: str, schema: dict, ui: dict, value: Any) -> None:
        widget = ui.get("ui:widget")
        if kind == "boolean":
            made.widget = "checkbox" if widget == "checkbox" else "select" if widget == "select" else "radio"
            made.options = list(_BOOLEAN_OPTIONS)
            made.value = value is True if made.widget == "checkbox" else _as_text(value)
        elif options := choice_options(schema, ui):
            made.widget = "radio" if widget == "radio" else "select"
            made.options, made.value = options, _as_text(value)
        elif kind in ("integer", "number"):
            made.widget, made.value, made.step = kind, _as_text(value), "1" if kind == "integer" else "any"
            made.minimum, made.maximum = schema.get("minimum"), schema.get("maximum")
        elif schema.get("format") == "date-time":
            made.widget, made.value = "datetime", _local_datetime_text(value, self.zone)
            made.step = "1" if len(made.value) > 16 else None
        else:
            made.widget = "date" if schema.get("format") == "date" else "textarea" if widget == "textarea" else "text"
            made.value = _as_text(value)
            made.minlength, made.maxlength = schema.get("minLength"), schema.get("maxLength")
        # Without JavaScript a chosen radio cannot be unchosen: an optional question offers an explicit blank.
        if made.widget == "radio" and not made.required and ("default" not in schema or made.value == ""):
            made.options.append(_NOT_ANSWERED)
