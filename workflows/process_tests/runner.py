"""Run one process test: start the case, play its steps, compare what the case shows."""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..calendar import add_duration, parse_datetime
from ..due_rules import DuePolicy
from ..engine import Engine
from ..errors import CaseworkError, InvalidInput
from .model import ProcessTest, Step
from .simulation import SimulatedCase, same_value


@dataclass
class TestOutcome:
    test: ProcessTest
    failures: list[str] = field(default_factory=list)
    reached: set[tuple[str, str]] = field(default_factory=set)
    steps_run: int = 0
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures


class StepFailed(Exception):
    """A step did not do or show what the test said; the message says what differed."""


def run_process_test(test: ProcessTest, bundles: dict[str, Any], engine: Engine) -> TestOutcome:
    """Play a process test against parsed bundles (process id -> bundle)."""
    outcome = TestOutcome(test)
    began = time.perf_counter()
    try:
        bundle = _bundle_for(test, bundles)
        policy = DuePolicy.of(zone_name=test.timezone_name, holidays=test.holidays)
        case = SimulatedCase(engine, bundle, now=test.start, policy=policy)
        try:
            case.start(dict(test.data))
        except CaseworkError as err:
            raise StepFailed(f"start: the case could not start: {err}") from None
        try:
            _play(case, test.steps, "", outcome)
        finally:
            outcome.reached = case.reached
    except (StepFailed, ValueError) as err:
        outcome.failures.append(str(err))
    outcome.seconds = time.perf_counter() - began
    return outcome


def _bundle_for(test: ProcessTest, bundles: dict[str, Any]):
    if test.process:
        if test.process not in bundles:
            raise StepFailed(f"process '{test.process}' is not in this diagram set; it has {', '.join(sorted(bundles))}")
        return bundles[test.process]
    if len(bundles) != 1:
        raise StepFailed(f"say which process to start ('process:'); this set has {', '.join(sorted(bundles))}")
    return next(iter(bundles.values()))


def _play(case: SimulatedCase, steps: tuple[Step, ...], repeat_label: str, outcome: TestOutcome) -> None:
    for step in steps:
        where = step.where if not repeat_label else step.where.replace(" > step", f" > turn {repeat_label} > step", 1)
        if step.kind == "repeat":
            for turn in range(1, step.spec["repeat"] + 1):
                _play(case, step.steps, str(turn), outcome)
            continue
        outcome.steps_run += 1
        try:
            _run_step(case, step)
        except StepFailed as err:
            raise StepFailed(f"{where} ({_describe(step)}): {err}") from None
        except AssertionError as err:
            raise StepFailed(f"{where} ({_describe(step)}): {err}") from None


def _run_step(case: SimulatedCase, step: Step) -> None:
    spec = step.spec
    if step.kind == "expect":
        problems = check_expectations(case, spec["expect"])
        if problems:
            raise StepFailed("; ".join(problems))
        return
    if step.kind == "advance":
        try:
            target = add_duration(case.now, str(spec["advance"]))
        except ValueError as err:
            raise StepFailed(str(err)) from None
        case.advance_to(target)
        return
    if step.kind == "advance_to":
        target = _instant(str(spec["advance_to"]))
        if target < case.now:
            raise StepFailed(f"the clock is already at {case.now.isoformat()}; it does not go back")
        case.advance_to(target)
        return
    expected_error = spec.get("error")
    try:
        if step.kind == "complete":
            case.complete(spec["complete"], dict(spec.get("data") or {}), spec.get("where"))
        else:
            case.deliver(spec["message"], dict(spec.get("payload") or {}))
    except CaseworkError as err:
        text = _error_text(err)
        if expected_error is None:
            raise StepFailed(text) from None
        if str(expected_error) not in text:
            raise StepFailed(f"it failed as expected, but the error does not mention {expected_error!r}: {text}") from None
        return
    if expected_error is not None:
        raise StepFailed(f"it was expected to fail with {expected_error!r}, but it succeeded")


def check_expectations(case: SimulatedCase, expect: dict[str, Any]) -> list[str]:
    """List every way the case differs from the expectations (empty when it matches)."""
    problems = []
    if "status" in expect:
        status = "completed" if case.completed else "active"
        if status != expect["status"]:
            problems.append(f"status is {status}, expected {expect['status']}")
    open_ids = [t.element_id for t in case.open_tasks]
    if "tasks" in expect:
        problems += _match_items("open tasks", "task", case.open_tasks, expect["tasks"] or [], exact=True)
    if "tasks_include" in expect:
        problems += _match_items("open tasks", "task", case.open_tasks, expect["tasks_include"] or [], exact=False)
    for element_id in expect.get("tasks_exclude") or []:
        if element_id in open_ids:
            problems.append(f"task '{element_id}' is open, expected it not to be")
    if "timers" in expect:
        pending = [t for t in case.timers if t.due_at is not None]
        problems += _match_items("pending timers", "timer", pending, expect["timers"] or [], exact=True)
    if "messages" in expect and sorted(expect["messages"] or []) != case.waiting_messages:
        problems.append(f"waiting for messages {case.waiting_messages}, expected {sorted(expect['messages'] or [])}")
    if "sent" in expect:
        sent, wanted = Counter(case.sent), Counter(expect["sent"] or [])
        short = {name: n for name, n in wanted.items() if sent[name] < n}
        if short:
            problems.append(f"messages sent so far {dict(sent)}, expected at least {dict(wanted)}")
    for name, value in (expect.get("data") or {}).items():
        if name not in case.data:
            problems.append(f"data '{name}' is not set, expected {value!r}")
        elif not same_value(case.data[name], value):
            problems.append(f"data '{name}' is {case.data[name]!r}, expected {value!r}")
    return problems


def _match_items(label: str, key: str, actual: list, wanted: list, *, exact: bool) -> list[str]:
    """Match wanted ids (or mappings with an id and details) against actual tasks or timers."""
    remaining = list(actual)
    problems = []
    for item in wanted:
        details = item if isinstance(item, dict) else {key: item}
        element_id = details.get(key)
        candidates = [a for a in remaining if a.element_id == element_id]
        if not candidates:
            problems.append(f"no {key} '{element_id}' among the {label} ({_ids(actual)})")
            continue
        fitting = [a for a in candidates if not _detail_problems(a, details, key)]
        if not fitting:
            problems.append(f"{key} '{element_id}': " + "; ".join(_detail_problems(candidates[0], details, key)))
            remaining.remove(candidates[0])
            continue
        remaining.remove(fitting[0])
    if exact and remaining:
        problems.append(f"unexpected {label}: {_ids(remaining)} (all {label}: {_ids(actual)})")
    return problems


def _detail_problems(item, details: dict[str, Any], key: str) -> list[str]:
    problems = []
    for name, expected in details.items():
        if name == key:
            continue
        attribute = {"due": "due_at", "at_risk": "at_risk_at"}.get(name, name)
        if not hasattr(item, attribute):
            problems.append(f"'{name}' is not something a {key} has")
            continue
        actual = getattr(item, attribute)
        if isinstance(actual, datetime) or (actual is None and name in ("due", "at_risk")):
            if expected is None and actual is None:
                continue
            if actual is None or expected is None or actual != _instant(str(expected)):
                problems.append(f"{name} is {actual.isoformat() if actual else None}, expected {expected}")
        elif actual != expected:
            problems.append(f"{name} is {actual!r}, expected {expected!r}")
    return problems


def _ids(items: list) -> str:
    return ", ".join(sorted(i.element_id for i in items)) or "none"


def _instant(text: str) -> datetime:
    try:
        moment = parse_datetime(text)
    except ValueError as err:
        raise StepFailed(str(err)) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _describe(step: Step) -> str:
    value = step.spec.get(step.kind)
    return step.kind if step.kind == "expect" else f"{step.kind} {value}"


def _error_text(err: CaseworkError) -> str:
    if isinstance(err, InvalidInput) and err.field_errors:
        fields = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in err.field_errors.items())
        return f"{err} — {fields}"
    return str(err)
