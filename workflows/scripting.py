"""The restricted environment that runs the scripts and expressions of diagrams.

SpiffWorkflow runs them with plain eval/exec; diagrams are written by designers, not by
administrators, so Casework compiles them with RestrictedPython under a policy of its own:
no imports, no names or attributes starting with "_", whitelisted builtins only, and
guards on loops, functions and size-multiplying operators so that a runaway script ends
in ScriptRejected (an incident) instead of a hung or swapping worker.
"""
from __future__ import annotations

import ast
import builtins
import copy
import sys
import mmap
import operator
import re
import time
from contextvars import ContextVar
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from types import CodeType
from typing import Any, Callable

from RestrictedPython import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr_raise,
)
from RestrictedPython.PrintCollector import PrintCollector
from RestrictedPython.transformer import IOPERATOR_TO_STR, RestrictingNodeTransformer, copy_locations
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.exceptions import SpiffWorkflowException

from . import calendar
from .clock import current_time
from .errors import ScriptRejected

MAX_ITEMS = 1_000_000
MAX_INT_BITS = 16_384
MAX_FORMAT_WIDTH = 10_000
MAX_MEMORY_GROWTH_BYTES = 256 * 1024 * 1024
MEMORY_CHECK_INTERVAL_SECONDS = 0.01
DENIED_ATTRIBUTES = frozenset({"mro", "encode", "translate", "maketrans"})
REFUSED_BUILTINS = (
    "__import__ open eval exec compile getattr setattr delattr hasattr vars globals locals dir type "
    "object input breakpoint help memoryview super iter format bytes bytearray classmethod "
    "staticmethod property exit quit id"
).split()


class _Run:
    """The budget of one script or expression run: a deadline and a memory allowance."""

    def __init__(self, limit: float):
        started = time.monotonic()
        self.limit = limit
        self.deadline = started + limit
        self.refusal: str | None = None
        # The first sample is the baseline; short scripts never pay for reading it.
        self.memory_base: int | None = None
        self.next_memory_check = started + MEMORY_CHECK_INTERVAL_SECONDS

    def tick(self) -> None:
        if self.refusal:
            raise ScriptRejected(self.refusal)
        now = time.monotonic()
        if now > self.deadline:
            _refuse(f"script ran longer than {self.limit:g} s")
        if now >= self.next_memory_check:
            self.next_memory_check = now + MEMORY_CHECK_INTERVAL_SECONDS
            resident = _resident_bytes()
            if self.memory_base is None or resident is None:
                self.memory_base = resident
            elif resident - self.memory_base > MAX_MEMORY_GROWTH_BYTES:
                _refuse(f"script used more than {MAX_MEMORY_GROWTH_BYTES // 2**20} MB of memory")


_current_run: ContextVar[_Run | None] = ContextVar("casework_script_run", default=None)


def _resident_bytes() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * mmap.PAGESIZE
    except (OSError, ValueError, IndexError):
        return None


def _refuse(message: str) -> None:
    # Sticky: a script that catches the refusal still fails once it returns.
    run = _current_run.get()
    if run is not None:
        run.refusal = run.refusal or message
    raise ScriptRejected(message)


def _loop_guard() -> None:
    run = _current_run.get()
    if run is None:
        _refuse("script code can only run inside the script engine")
    run.tick()


def _check_size(size: int) -> None:
    if size > MAX_ITEMS:
        _refuse(f"value too large: scripts may build at most {MAX_ITEMS:,} items or characters at once")


def _check_bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        _refuse(f"value too large: numbers in scripts are limited to {MAX_INT_BITS:,} bits")


def _check_add(a: Any, b: Any) -> None:
    if isinstance(a, (str, list, tuple)) and isinstance(b, (str, list, tuple)):
        _check_size(len(a) + len(b))


def _check_mul(a: Any, b: Any) -> None:
    if isinstance(a, int) and isinstance(b, int):
        _check_bits(a.bit_length() + b.bit_length())
    elif isinstance(a, (str, list, tuple)) and isinstance(b, int):
        _check_size(len(a) * b)
    elif isinstance(b, (str, list, tuple)) and isinstance(a, int):
        _check_size(len(b) * a)


def _check_pow(a: Any, b: Any) -> None:
    if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
        _check_bits(b * (abs(a).bit_length() - 1))


def _check_lshift(a: Any, b: Any) -> None:
    if isinstance(a, int) and isinstance(b, int) and a:
        _check_bits(a.bit_length() + b)


_PRINTF_FIELD = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_mod(a: Any, b: Any) -> None:
    if isinstance(a, str):
        for width in (w for field in _PRINTF_FIELD.findall(a) for w in field if w):
            if width == "*" or int(width) > MAX_FORMAT_WIDTH:
                _refuse(f"format widths in scripts must be numbers up to {MAX_FORMAT_WIDTH:,}")


_CHECKS = {"+": _check_add, "*": _check_mul, "**": _check_pow, "<<": _check_lshift, "%": _check_mod}
_OPERATORS = {"+": operator.add, "*": operator.mul, "**": operator.pow, "<<": operator.lshift, "%": operator.mod}
_GUARDED_BINOPS = {ast.Add: "+", ast.Mult: "*", ast.Pow: "**", ast.LShift: "<<", ast.Mod: "%"}
_INPLACE = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow, "<<=": operator.ilshift,
    ">>=": operator.irshift, "|=": operator.ior, "^=": operator.ixor, "&=": operator.iand,
    "@=": operator.imatmul,
}


def _binop(symbol: str, a: Any, b: Any) -> Any:
    _CHECKS[symbol](a, b)
    return _OPERATORS[symbol](a, b)


def _inplacevar(symbol: str, a: Any, b: Any) -> Any:
    check = _CHECKS.get(symbol[:-1])
    if check:
        check(a, b)
    return _INPLACE[symbol](a, b)


class _ListWriter:
    """Write access to a list that refuses slice assignments growing it past the size limit."""

    __slots__ = ("target",)

    def __init__(self, target: list):
        self.target = target

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(key, slice):
            value = list(value)
            _check_size(len(self.target) + len(value))
        self.target[key] = value

    def __delitem__(self, key: Any) -> None:
        del self.target[key]


def _write(target: Any) -> Any:
    return _ListWriter(target) if type(target) is list else full_write_guard(target)


def _augitem(target: Any, key: Any, symbol: str, value: Any) -> None:
    _write(target)[key] = _inplacevar(symbol, target[key], value)


def _format(value: Any, conversion: int, spec: str) -> str:
    if any(int(number) > MAX_FORMAT_WIDTH for number in re.findall(r"\d+", spec)):
        _refuse(f"format widths in scripts must be numbers up to {MAX_FORMAT_WIDTH:,}")
    converters = {ord("r"): repr, ord("s"): str, ord("a"): ascii}
    return format(converters[conversion](value) if conversion in converters else value, spec)


def _join_guard(separator: str) -> Callable[[Any], str]:
    def join(items):
        items = list(items)
        _check_size(len(separator) * len(items) + sum(len(i) for i in items if isinstance(i, str)))
        return separator.join(items)
    return join


def _extend_guard(target: list) -> Callable[[Any], None]:
    def extend(items):
        items = list(items)
        _check_size(len(target) + len(items))
        target.extend(items)
    return extend


_STR_RESULT_SIZE = {
    "ljust": lambda s, width, *_: width,
    "rjust": lambda s, width, *_: width,
    "center": lambda s, width, *_: width,
    "zfill": lambda s, width: width,
    "expandtabs": lambda s, tabsize=8: len(s) + s.count("\t") * tabsize,
    "replace": lambda s, old, new, count=-1: len(s) + max(0, len(new) - len(old)) * (
        s.count(old) if count < 0 else min(count, s.count(old))),
}


def _sized_str_method(text: str, name: str, method: Callable[..., str]) -> Callable[..., str]:
    def call(*args, **kwargs):
        try:
            _check_size(_STR_RESULT_SIZE[name](text, *args, **kwargs))
        except TypeError:
            pass  # the method itself reports bad arguments
        return method(*args, **kwargs)
    return call


def _getattr(target: Any, name: str) -> Any:
    if name in DENIED_ATTRIBUTES:
        _refuse(f"'.{name}' is not allowed in scripts")
    try:
        value = safer_getattr_raise(target, name)
    except NotImplementedError as err:
        _refuse(f"{err}: scripts format text with f-strings")
    if isinstance(target, str):
        if name == "join":
            return _join_guard(target)
        if name in _STR_RESULT_SIZE:
            return _sized_str_method(target, name, value)
    if type(target) is list and name == "extend":
        return _extend_guard(target)
    return value


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    try:
        _check_size(len(numbers))
    except OverflowError:
        _refuse(f"value too large: range() in scripts is limited to {MAX_ITEMS:,} numbers")
    return numbers


def _guarded_pow(base: Any, exponent: Any, modulus: Any = None) -> Any:
    return _binop("**", base, exponent) if modulus is None else pow(base, exponent, modulus)


def _guarded_round(number: Any, ndigits: int | None = None) -> Any:
    if isinstance(ndigits, int) and abs(ndigits) > MAX_FORMAT_WIDTH:
        _refuse(f"round() in scripts takes at most {MAX_FORMAT_WIDTH:,} digits")
    return round(number, ndigits)


def _guarded_sum(items: Any, start: Any = 0) -> Any:
    if isinstance(start, (list, tuple)):
        items = list(items)
        _check_size(len(start) + sum(len(i) for i in items if isinstance(i, (list, tuple))))
    return sum(items, start)


def _refused_builtin(name: str) -> Callable[..., None]:
    def refused(*args: Any, **kwargs: Any) -> None:
        _refuse(f"'{name}' is not available in scripts")
    return refused


SAFE_BUILTINS: dict[str, Any] = {
    name: getattr(builtins, name)
    for name in (
        "None True False len min max sorted reversed any all abs enumerate zip map filter next "
        "list dict set frozenset tuple str int float bool isinstance divmod repr chr ord "
        "Exception ValueError KeyError TypeError IndexError LookupError ArithmeticError "
        "ZeroDivisionError OverflowError AttributeError NameError RuntimeError AssertionError "
        "NotImplementedError StopIteration"
    ).split()
}
SAFE_BUILTINS.update(range=_bounded_range, pow=_guarded_pow, round=_guarded_round, sum=_guarded_sum)
SAFE_BUILTINS.update({name: _refused_builtin(name) for name in REFUSED_BUILTINS})

_GUARDS: dict[str, Any] = {
    "_getattr_": _getattr,
    "_getitem_": operator.getitem,
    "_write_": _write,
    "_getiter_": iter,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_apply_": lambda function, *args, **kwargs: function(*args, **kwargs),
    "_inplacevar_": _inplacevar,
    "_print_": PrintCollector,
    "_loop_guard_": _loop_guard,
    "_binop_": _binop,
    "_augitem_": _augitem,
    "_format_": _format,
}


class ScriptPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy, plus no imports or classes, and guards on loops and growth."""

    def visit_Import(self, node: ast.stmt) -> ast.AST:
        self.error(node, "imports are not allowed in scripts")
        return node

    visit_ImportFrom = visit_Import

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self.error(node, "class definitions are not allowed in scripts")
        return node

    def visit_While(self, node: ast.While) -> ast.AST:
        return self._guard_body(super().visit_While(node))

    def visit_For(self, node: ast.For) -> ast.AST:
        return self._guard_body(super().visit_For(node))

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return self._guard_body(super().visit_FunctionDef(node))

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        node = super().visit_Lambda(node)
        node.body = self._located(ast.BoolOp(ast.Or(), [self._call("_loop_guard_", [], node.body), node.body]), node.body)
        return node

    def visit_comprehension(self, node: ast.comprehension) -> ast.AST:
        node = super().visit_comprehension(node)
        node.ifs.insert(0, self._located(ast.UnaryOp(ast.Not(), self._call("_loop_guard_", [], node.iter)), node.iter))
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        node = super().visit_BinOp(node)
        symbol = _GUARDED_BINOPS.get(type(node.op))
        return node if symbol is None else self._call("_binop_", [ast.Constant(symbol), node.left, node.right], node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        if not isinstance(node.target, ast.Subscript):
            return super().visit_AugAssign(node)
        target = node.target
        symbol = ast.Constant(IOPERATOR_TO_STR[type(node.op)])
        args = [self.visit(target.value), self.visit(target.slice), symbol, self.visit(node.value)]
        return self._located(ast.Expr(self._call("_augitem_", args, node)), node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> ast.AST:
        node = super().visit_FormattedValue(node)
        spec = node.format_spec or ast.Constant("")
        node.value = self._call("_format_", [node.value, ast.Constant(node.conversion), spec], node.value)
        node.conversion, node.format_spec = -1, None
        return node

    def _guard_body(self, node: ast.While | ast.For | ast.FunctionDef) -> ast.AST:
        node.body.insert(0, self._located(ast.Expr(self._call("_loop_guard_", [], node)), node))
        return node

    def _call(self, name: str, args: list[ast.expr], where: ast.AST) -> ast.Call:
        return self._located(ast.Call(ast.Name(name, ast.Load()), args, []), where)

    @staticmethod
    def _located(new: ast.AST, where: ast.AST) -> Any:
        copy_locations(new, where)
        return new


@lru_cache(maxsize=2048)
def _compile(source: str, mode: str) -> CodeType:
    # Parsing first keeps SyntaxError (with its line) exactly as SpiffWorkflow reports it.
    tree = ast.parse(source, "<string>", mode)
    result = (compile_restricted_exec if mode == "exec" else compile_restricted_eval)(tree, policy=ScriptPolicy)
    if result.errors:
        raise ScriptRejected("Script not allowed: " + "; ".join(result.errors))
    return result.code


def check_script(source: str, *, expression: bool = False) -> None:
    """Raise SyntaxError or ScriptRejected if the sandbox would refuse this script or expression."""
    _compile(source.lstrip(" \t") if expression else source, "eval" if expression else "exec")


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
