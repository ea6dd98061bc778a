"""The process-test format: YAML a designer writes next to the diagram (bpmn/README.md).

Loading checks the whole file up front, so a typo in step 40 is reported before the
case starts, with the step's place and the keys that were expected.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import yaml

from ..calendar import parse_datetime

DEFAULT_START = "2026-01-05T09:00:00+00:00"  # a Monday morning
MAX_REPEAT = 10_000

_TOP_KEYS = {"name", "process", "start", "timezone", "holidays", "data", "steps"}
_STEP_KEYS = {
    "complete": {"complete", "data", "where", "error"},
    "advance": {"advance"},
    "advance_to": {"advance_to"},
    "message": {"message", "payload", "error"},
    "expect": {"expect"},
    "repeat": {"repeat", "steps"},
}
EXPECT_KEYS = {"status", "tasks", "tasks_include", "tasks_exclude", "timers", "messages", "sent", "data"}


class ProcessTestFormatError(ValueError):
    """The YAML does not follow the process-test format; the message says where and how."""


@dataclass(frozen=True)
class Step:
    kind: str
    where: str  # "step 3", "step 5 > repeat 2 > step 1" once running
    spec: Mapping[str, Any]
    steps: tuple["Step", ...] = ()


@dataclass(frozen=True)
class ProcessTest:
    path: str
    name: str
    process: str | None
    start: datetime
    timezone_name: str | None
    holidays: tuple[str, ...]
    data: Mapping[str, Any]
    steps: tuple[Step, ...] = field(default_factory=tuple)


class _TextLoader(yaml.SafeLoader):
    """Safe YAML where dates stay text, as a browser form would submit them."""


_TextLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_process_test(path: str, text: str | bytes) -> ProcessTest:
    """Read and check one process test file."""
    try:
        document = yaml.load(text, Loader=_TextLoader)
    except yaml.YAMLError as err:
        raise ProcessTestFormatError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(document, dict):
        raise ProcessTestFormatError(f"{path}: a process test is a mapping with 'name', 'data' and 'steps'.")
    _no_unknown_keys(path, "the test", document, _TOP_KEYS)
    steps = document.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ProcessTestFormatError(f"{path}: 'steps' must be a non-empty list.")
    data = document.get("data") or {}
    if not isinstance(data, dict):
        raise ProcessTestFormatError(f"{path}: 'data' must be a mapping of start data.")
    holidays = document.get("holidays") or []
    if not isinstance(holidays, list):
        raise ProcessTestFormatError(f"{path}: 'holidays' must be a list of dates.")
    try:
        start = parse_datetime(str(document.get("start") or DEFAULT_START))
    except ValueError as err:
        raise ProcessTestFormatError(f"{path}: 'start': {err}") from None
    return ProcessTest(
        path=path,
        name=str(document.get("name") or path),
        process=document.get("process"),
        start=start if start.tzinfo else start.replace(tzinfo=timezone.utc),
        timezone_name=document.get("timezone"),
        holidays=tuple(str(h) for h in holidays),
        data=data,
        steps=_steps(path, steps, "step"),
    )


def _steps(path: str, items: list, prefix: str) -> tuple[Step, ...]:
    steps = []
    for number, item in enumerate(items, start=1):
        where = f"{prefix} {number}"
        if not isinstance(item, dict) or not item:
            raise ProcessTestFormatError(f"{path}: {where} must be a mapping such as 'complete: <task id>'.")
        kinds = [key for key in item if key in _STEP_KEYS]
        if len(kinds) != 1:
            raise ProcessTestFormatError(
                f"{path}: {where} must have exactly one of {', '.join(sorted(_STEP_KEYS))}; it has {sorted(item)}.")
        kind = kinds[0]
        _no_unknown_keys(path, where, item, _STEP_KEYS[kind])
        nested: tuple[Step, ...] = ()
        if kind == "repeat":
            count = item["repeat"]
            if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_REPEAT:
                raise ProcessTestFormatError(f"{path}: {where}: 'repeat' must be a whole number from 1 to {MAX_REPEAT}.")
            if not isinstance(item.get("steps"), list) or not item["steps"]:
                raise ProcessTestFormatError(f"{path}: {where}: 'repeat' needs a non-empty list of 'steps'.")
            nested = _steps(path, item["steps"], f"{where} > step")
        elif kind == "expect":
            if not isinstance(item["expect"], dict):
                raise ProcessTestFormatError(f"{path}: {where}: 'expect' must be a mapping.")
            _no_unknown_keys(path, f"{where} (expect)", item["expect"], EXPECT_KEYS)
        elif kind in ("complete", "message") and not isinstance(item[kind], str):
            raise ProcessTestFormatError(f"{path}: {where}: '{kind}' must name a {'task' if kind == 'complete' else 'message'}.")
        for key in ("data", "where", "payload"):
            if key in item and not isinstance(item[key], dict):
                raise ProcessTestFormatError(f"{path}: {where}: '{key}' must be a mapping.")
        steps.append(Step(kind=kind, where=where, spec=item, steps=nested))
    return tuple(steps)


def _no_unknown_keys(path: str, where: str, mapping: dict, allowed: set[str]) -> None:
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise ProcessTestFormatError(
            f"{path}: {where}: unknown key(s) {', '.join(map(repr, unknown))}; expected {', '.join(sorted(allowed))}.")
