"""The restricted environment that runs the scripts and expressions of diagrams.

Scripts see the helpers defined here (a clock-following `datetime`, business-day
arithmetic, `get_value`) and run under the sandbox of `workflows.sandbox`: its policy
compiles them, its guards bound their time, memory and value sizes.
"""
from __future__ import annotations

import copy
import sys
from datetime import date, datetime, timedelta, timezone, tzinfo
from types import CodeType
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.exceptions import SpiffWorkflowException

from . import calendar
from .clock import current_time
from .errors import ScriptRejected
from .sandbox import _GUARDS, SAFE_BUILTINS, ScriptPolicy, _compile, check_script
from .sandbox_guards import _current_run, _Run

# The sandbox names listed here are re-exported: callers and tests import them from this module.
__all__ = [
    "HELPERS",
    "SAFE_BUILTINS",
    "RestrictedEnvironment",
    "RestrictedScriptEngine",
    "ScriptDate",
    "ScriptDatetime",
    "ScriptPolicy",
    "check_script",
    "get_value",
    "length_of_stay",
    "make_script_engine",
    "now",
    "today",
]


class _PlainInstances(type):
    # The script classes build plain datetime/date objects (the serializer matches exact
    # classes), so isinstance() must accept those plain objects too.
    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, cls._plain)


class ScriptDatetime(datetime, metaclass=_PlainInstances):
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


class ScriptDate(date, metaclass=_PlainInstances):
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
    # Scripts run with the task data as their globals; the caller's frame is the script.
    namespace = sys._getframe(1).f_globals
    value = namespace.get(name, default)
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
        namespace = copy.copy(self.globals)
        namespace.update(external_context or {})
        namespace.update(context)
        namespace.update(_GUARDS, __builtins__=SAFE_BUILTINS)
        return self._run(code, namespace)

    def execute(self, script: str, context: dict, external_context: dict | None = None) -> bool:
        """Run a script whose assignments land in the task data `context`."""
        self.check_for_overwrite(context, external_context or {})
        code = _compile(script, "exec")
        self._prepare_context(context)
        context.update(self.globals)
        context.update(external_context or {})
        context.update(_GUARDS, __builtins__=SAFE_BUILTINS)
        try:
            self._run(code, context)
        finally:
            self._remove_globals_and_functions_from_context(context, external_context)
        return True

    def _run(self, code: CodeType, namespace: dict) -> Any:
        run = _Run(self.time_limit_seconds)
        token = _current_run.set(run)
        try:
            result = eval(code, namespace)
        except ScriptRejected:
            raise
        except RecursionError as err:
            raise ScriptRejected(run.refusal or "script recursion went too deep") from err
        except MemoryError as err:
            raise ScriptRejected(run.refusal or "value too large: the script ran out of memory") from err
        except Exception as err:
            if run.refusal:
                raise ScriptRejected(run.refusal) from err
            raise
        finally:
            _current_run.reset(token)
        if run.refusal:
            raise ScriptRejected(run.refusal)
        return result


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
