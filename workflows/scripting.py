"""The restricted environment that runs the scripts and expressions of diagrams.

Scripts see the helpers defined here (a clock-following `datetime`, business-day
arithmetic, `get_value`) and run under the sandbox of `workflows.sandbox`: its policy
compiles them, its guards bound their time, memory and value sizes.
"""
from __future__ import annotations

import copy
from collections import Counter
from datetime import date, datetime, timedelta, timezone, tzinfo
from itertools import repeat
from types import CodeType
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.exceptions import SpiffWorkflowException

from . import calendar
from .clock import current_time
from .errors import ScriptRejected
from .sandbox import _GUARDS, SAFE_BUILTINS, PlainInstances, ScriptPolicy, _compile, check_script
from .sandbox_guards import MAX_INT_BITS, MAX_NESTING, MAX_TASK_DATA_SIZE, SCALARS, _current_run, _Run, expanded_size

MAX_ERROR_SIZE = 10_000

# The sandbox names listed here are re-exported: callers and tests import them from this module.
__all__ = [
    "HELPERS", "SAFE_BUILTINS", "RestrictedEnvironment", "RestrictedScriptEngine", "ScriptDate", "ScriptDatetime",
    "ScriptPolicy", "check_script", "check_task_data", "get_value", "length_of_stay", "make_script_engine", "now",
    "today",
]


class ScriptDatetime(datetime, metaclass=PlainInstances):
    """`datetime` as scripts see it: now() follows the engine's injected clock."""

    _plain = datetime

    def __new__(cls, *args: Any, **kwargs: Any) -> datetime:
        return datetime(*args, **kwargs)

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> datetime:
        """Return the engine's current time, converted to `tz` when given."""
        return current_time() if tz is None else current_time().astimezone(tz)

    @classmethod
    def utcnow(cls) -> datetime:
        """Return the engine's current time as a naive UTC datetime, as Python does."""
        return current_time().astimezone(timezone.utc).replace(tzinfo=None)

    @classmethod
    def today(cls) -> datetime:
        """Return the engine's current time (aware, unlike Python's local naive today())."""
        return current_time()


class ScriptDate(date, metaclass=PlainInstances):
    """`date` as scripts see it: today() follows the engine's injected clock."""

    _plain = date

    def __new__(cls, *args: Any, **kwargs: Any) -> date:
        return date(*args, **kwargs)

    @classmethod
    def today(cls) -> date:
        """Return the engine's current date."""
        return current_time().date()


def now() -> datetime:
    """Return the engine's current time (timezone-aware)."""
    return current_time()


def today() -> date:
    """Return the engine's current date, in the timezone of its current time."""
    return current_time().date()


def length_of_stay(admitted_at: calendar.Moment, discharged_at: calendar.Moment | None = None) -> int:
    """Count midnights from admission to discharge, or to now while the patient is still in."""
    return calendar.length_of_stay(admitted_at, current_time() if discharged_at is None else discharged_at)


def get_value(name: str, default: Any = None) -> Any:
    """Return the task data value called `name`, or `default` when the case has none."""
    if not isinstance(name, str) or name.startswith("_"):
        raise ScriptRejected("get_value needs the plain name of a task data value")
    # The run knows the task data it was given; looking at the caller's frame instead would
    # let a guard or a builtin that calls get_value hand over the globals of its own module.
    run = _current_run.get()
    if run is None:
        raise ScriptRejected("get_value can only be called by a script")
    value = run.namespace.get(name, default)
    return default if name in HELPERS or name in _GUARDS or name == "__builtins__" else value


HELPERS: dict[str, Any] = {
    "datetime": ScriptDatetime,
    "date": ScriptDate,
    "timedelta": timedelta,
    "timezone": timezone,
    "now": now,
    "today": today,
    "add_business_days": calendar.add_business_days,
    "business_days_between": calendar.business_days_between,
    "is_business_day": calendar.is_business_day,
    "add_duration": calendar.add_duration,
    "parse_datetime": calendar.parse_datetime,
    "length_of_stay": length_of_stay,
    "get_value": get_value,
}


class RestrictedEnvironment(TaskDataEnvironment):
    """TaskDataEnvironment's semantics, with code compiled and run under the sandbox policy."""

    def __init__(self, environment_globals: dict[str, Any] | None = None, *, time_limit_seconds: float = 1.0):
        super().__init__({**HELPERS, **(environment_globals or {}), **_GUARDS})
        self.time_limit_seconds = time_limit_seconds

    def evaluate(self, expression: str, context: dict, external_context: dict | None = None) -> Any:
        """Evaluate an expression against task data and return its value."""
        code = _compile(expression.lstrip(" \t"), "eval")
        self._prepare_context(context)
        before = copy.deepcopy(context)
        namespace = copy.copy(self.globals)
        namespace.update(external_context or {})
        namespace.update(context)
        namespace.update(_GUARDS, __builtins__=SAFE_BUILTINS)
        try:
            result = self._run(code, namespace)
            if expanded_size(result, MAX_TASK_DATA_SIZE) > MAX_TASK_DATA_SIZE:
                raise ScriptRejected(f"value too large: the expression's value holds more than "
                                     f"{MAX_TASK_DATA_SIZE:,} items or characters")
            check_task_data(context)
        except BaseException:
            _restore(context, before)
            raise
        return result

    def execute(self, script: str, context: dict, external_context: dict | None = None) -> bool:
        """Run a script whose assignments land in the task data `context`; if it fails, the data is as it was."""
        self.check_for_overwrite(context, external_context or {})
        code = _compile(script, "exec")
        self._prepare_context(context)
        before = copy.deepcopy(context)
        context.update(self.globals)
        context.update(external_context or {})
        context.update(_GUARDS, __builtins__=SAFE_BUILTINS)
        try:
            try:
                self._run(code, context)
            finally:
                self._remove_globals_and_functions_from_context(context, external_context)
            check_task_data(context)
        except BaseException:
            _restore(context, before)
            raise
        return True

    def _run(self, code: CodeType, namespace: dict) -> Any:
        run = _Run(self.time_limit_seconds, namespace)
        token = _current_run.set(run)
        refusal = None
        try:
            result = eval(code, namespace)
        except ScriptRejected as err:
            refusal = str(err)
        except Exception as err:
            refusal = run.refusal or _refusal_for(err)
            if refusal is None:
                raise
        finally:
            _current_run.reset(token)
        # Raised outside the handler, so the refused error (and what it carries) is not its context.
        if refusal or run.refusal:
            raise ScriptRejected(refusal or run.refusal)
        return result


def _refusal_for(err: Exception) -> str | None:
    if isinstance(err, RecursionError):
        return "script recursion went too deep"
    if isinstance(err, MemoryError):
        return "value too large: the script ran out of memory"
    # Whatever reports the error turns it and its causes into text: [big] * n must not get there.
    chain, cause = [], err
    while cause is not None and len(chain) < 100:
        chain.append(cause.args)
        cause = cause.__cause__ or cause.__context__
    if expanded_size(chain, MAX_ERROR_SIZE) > MAX_ERROR_SIZE:
        return f"{type(err).__name__} raised with a value too large to show"
    if isinstance(err, ValueError) and "integer string conversion" in str(err):
        return "value too large: numbers in scripts are limited to 4,300 digits"
    return None


def _restore(context: dict, before: dict) -> None:
    context.clear()
    context.update(before)


_FLAT = SCALARS - {str}
_CONTAINERS = frozenset({list, tuple, dict, set})
_KEYS = frozenset({str, int, float, bool, type(None)})


def check_task_data(data: dict) -> None:
    """Raise ScriptRejected for task data a case could not store: odd values, deep nesting, too much."""
    size, stack = 0, []
    for name, value in data.items():
        size += _measure([value], 1, name, 1, stack)
    while stack and size <= MAX_TASK_DATA_SIZE:
        value, depth, name, times = stack.pop()
        if depth > MAX_NESTING:
            raise ScriptRejected(f"'{name}' is nested more than {MAX_NESTING} levels deep (or holds itself); "
                                 "a case cannot store it")
        if type(value) is dict:
            if not (keys := set(map(type, value))) <= _KEYS:
                raise ScriptRejected(f"'{name}' has a {(keys - _KEYS).pop().__name__} as a dict key; "
                                     "keys in task data are text or numbers")
            size += times * (len(value) + (sum(map(len, value)) if keys == {str} else 0))
            value = value.values()
        size += _measure(value, depth + 1, name, times, stack)
    if size > MAX_TASK_DATA_SIZE:
        raise ScriptRejected(f"value too large: the task data would hold more than {MAX_TASK_DATA_SIZE:,} "
                             "items or characters")


def _measure(items: Any, depth: int, name: str, times: int, stack: list) -> int:
    """Count the scalars among `items`, `times` over; put the containers on the stack."""
    # Long lists are measured in C: a million numbers cost milliseconds, and a value met n
    # times through shared references ([row] * n: small in memory, huge as JSON) is walked once.
    multiples = repeat(1)
    if len(items) > 64:
        kinds = set(map(type, items))
        if kinds <= _FLAT or kinds == {str}:
            numbers = (items if kinds == {int} else [i for i in items if type(i) is int]) if int in kinds else ()
            if numbers and max(max(numbers), -min(numbers)).bit_length() > MAX_INT_BITS:
                raise ScriptRejected(f"value too large: '{name}' holds a number of more than {MAX_INT_BITS:,} bits")
            return times * (len(items) + (sum(map(len, items)) if kinds == {str} else 0))
        ids = list(map(id, items))
        items, multiples = dict(zip(ids, items)).values(), Counter(ids).values()
    size = 0
    for item, count in zip(items, multiples):
        kind = type(item)
        if kind is str:
            size += count * (len(item) + 1)
        elif kind in _CONTAINERS:
            stack.append((item, depth, name, times * count))
        elif kind not in _FLAT:
            raise ScriptRejected(f"'{name}' holds a {kind.__name__}, which a case cannot store; "
                                 "task data keeps text, numbers, true/false, lists, dicts and dates")
        elif kind is int and item.bit_length() > MAX_INT_BITS:
            raise ScriptRejected(f"value too large: '{name}' holds a number of more than {MAX_INT_BITS:,} bits")
        else:
            size += count
    return times * size


class RestrictedScriptEngine(PythonScriptEngine):
    """PythonScriptEngine whose errors always name their cause."""

    def evaluate(self, task: Any, expression: str, external_context: dict | None = None) -> Any:
        """Evaluate an expression for a task; wrap failures with the expression and the cause."""
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except SpiffWorkflowException as err:
            err.add_note(f"Error evaluating expression '{expression}'")
            raise
        except Exception as err:
            message = f"Error evaluating expression '{expression}': {_describe(err)}"
            raise WorkflowTaskException(message, task=task, exception=err) from err

    def create_task_exec_exception(self, task: Any, script: str, err: Exception) -> Exception:
        """Wrap a script failure, naming the cause even when its first argument is not text."""
        if isinstance(err, SpiffWorkflowException):
            return super().create_task_exec_exception(task, script, err)
        line_number, error_line = self.get_error_line_number_and_content(script, err)
        return WorkflowTaskException(
            _describe(err), task=task, exception=err, line_number=line_number, error_line=error_line
        )


def _describe(err: BaseException) -> str:
    return f"{err.__class__.__name__}: {err}" if str(err) else err.__class__.__name__


def make_script_engine(*, time_limit_seconds: float = 1.0) -> PythonScriptEngine:
    """Build the script engine every Casework workflow runs with."""
    return RestrictedScriptEngine(environment=RestrictedEnvironment(time_limit_seconds=time_limit_seconds))
