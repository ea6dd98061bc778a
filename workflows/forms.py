"""Validate submitted task data against the task's JSON Schema form, server-side."""
from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from .errors import DiagramError, InvalidInput

_validators: dict[int, Draft202012Validator] = {}


def validate_submission(schema: dict | None, data: Any, *, form_name: str = "form") -> dict[str, Any]:
    """Return the data if it satisfies the schema; raise InvalidInput with field errors otherwise."""
    if not isinstance(data, dict):
        raise InvalidInput("Task data must be a JSON object.", {"data": ["Must be a JSON object."]})
    if schema is None:
        return data
    field_errors: dict[str, list[str]] = {}
    for error in _validator(schema, form_name).iter_errors(data):
        for path, message in _describe(error):
            # jsonschema reports one "required" error per missing field, each naming them all.
            if message not in field_errors.setdefault(path, []):
                field_errors[path].append(message)
    if field_errors:
        count = sum(len(m) for m in field_errors.values())
        raise InvalidInput(f"The submitted data does not match the {form_name} form ({count} problem(s)).", field_errors)
    return data


def _validator(schema: dict, form_name: str) -> Draft202012Validator:
    key = id(schema)
    validator = _validators.get(key)
    if validator is None or validator.schema is not schema:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as err:
            raise DiagramError(f"{form_name}: not a valid JSON Schema: {err.message}") from err
        validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        _validators[key] = validator
    return validator


def _describe(error) -> list[tuple[str, str]]:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        return [(_join(path, name), "This field is required.") for name in missing]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = [name for name in error.instance if name not in allowed]
        return [(_join(path, name), "This field is not part of the form.") for name in extra]
    return [(path or "data", error.message)]


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
