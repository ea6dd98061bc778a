"""The runtime guards of the script sandbox: the run budget and the size-checking operators.

Code compiled under `workflows.sandbox.ScriptPolicy` calls these through the guard names
the policy inserts (see `workflows.sandbox._GUARDS`): every loop pass, function call and
comprehension step ticks the run's budget, and operators or methods that can multiply the
size of a value check the result first, so a runaway script ends in ScriptRejected.
"""
from __future__ import annotations

import mmap
import operator
import re
import time
from contextvars import ContextVar
from datetime import date, datetime, timedelta
from typing import Any, Callable, Iterable
from uuid import UUID

from RestrictedPython.Guards import full_write_guard, safer_getattr_raise

from .errors import ScriptRejected

MAX_ITEMS = 1_000_000
# Below CPython's 4,300-digit limit on int-to-text conversion, so every number a script
# builds can be shown and stored.
MAX_INT_BITS = 14_000
MAX_FORMAT_WIDTH = 10_000
MAX_MEMORY_GROWTH_BYTES = 256 * 1024 * 1024
MEMORY_CHECK_INTERVAL_SECONDS = 0.01
MAX_TASK_DATA_SIZE = 5_000_000
MAX_NESTING = 100
DENIED_ATTRIBUTES = frozenset({"mro", "encode", "translate", "maketrans", "from_bytes"})
SCALARS = frozenset({type(None), bool, int, float, str, datetime, date, timedelta, UUID})


class _Run:
    """The budget of one script or expression run: a deadline, a memory allowance, its task data."""

    def __init__(self, limit: float, namespace: dict):
        started = time.monotonic()
        self.limit = limit
        self.namespace = namespace
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


def expanded_size(value: Any, limit: int) -> int:
    """Count the items and characters of a value as text or JSON would spell it out, stopping past `limit`."""
    # Shared references count each time they appear: [big] * n is small in memory, not as text.
    size, stack = 0, [value]
    while stack and size <= limit:
        item = stack.pop()
        size += len(item) + 1 if isinstance(item, str) else 1
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
    return size


def _check_expanded(value: Any, doing: str = "turn into text") -> None:
    if type(value) not in SCALARS and expanded_size(value, MAX_ITEMS) > MAX_ITEMS:
        _refuse(f"value too large: scripts may {doing} at most {MAX_ITEMS:,} items or characters at once")


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


def _check_divide(*numbers: Any) -> None:
    # Dividing huge numbers (int(text, 16) makes them) takes quadratic time in one C call.
    for number in numbers:
        if isinstance(number, int):
            _check_bits(number.bit_length())


def _check_widths(widths: Iterable[str]) -> None:
    if any(width == "*" or len(width) > 6 or int(width) > MAX_FORMAT_WIDTH for width in widths if width):
        _refuse(f"format widths in scripts must be numbers up to {MAX_FORMAT_WIDTH:,}")


_PRINTF_FIELD = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_STRFTIME_FIELD = re.compile(r"%[-_0^#]*(\d*)")


def _check_mod(a: Any, b: Any) -> None:
    if isinstance(a, str):
        _check_widths(width for field in _PRINTF_FIELD.findall(a) for width in field)
        _check_expanded(b)
    else:
        _check_divide(a, b)


def _check_strftime(spec: Any) -> None:
    # glibc pads "%9999Y" to 9,999 characters; every other field is at most a few dozen.
    if isinstance(spec, str):
        widths = _STRFTIME_FIELD.findall(spec)
        _check_widths(widths)
        _check_size(len(spec) + sum(int(w) for w in widths if w) + 32 * len(widths))


_CHECKS = {"+": _check_add, "*": _check_mul, "**": _check_pow, "<<": _check_lshift, "%": _check_mod,
           "//": _check_divide}
_OPERATORS = {"+": operator.add, "*": operator.mul, "**": operator.pow, "<<": operator.lshift, "%": operator.mod,
              "//": operator.floordiv}
_INPLACE = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv, "//=": operator.ifloordiv,
    "%=": operator.imod, "**=": operator.ipow, "<<=": operator.ilshift, ">>=": operator.irshift, "|=": operator.ior,
    "^=": operator.ixor, "&=": operator.iand, "@=": operator.imatmul,
}


def _binop(symbol: str, a: Any, b: Any) -> Any:
    _CHECKS[symbol](a, b)
    return _OPERATORS[symbol](a, b)


def _inplacevar(symbol: str, a: Any, b: Any) -> Any:
    check = _CHECKS.get(symbol[:-1])
    if check:
        check(a, b)
    if symbol == "+=" and type(a) is list:
        b = _bounded_list(a, b)
    return _INPLACE[symbol](a, b)


def _bounded_list(target: list, items: Any) -> list:
    items = list(items)
    _check_size(len(target) + len(items))
    return items


class _ListWriter:
    """Write access to a list that refuses slice assignments growing it past the size limit."""

    __slots__ = ("target",)

    def __init__(self, target: list):
        self.target = target

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(key, slice):
            value = _bounded_list(self.target, value)
        self.target[key] = value

    def __delitem__(self, key: Any) -> None:
        del self.target[key]


def _write(target: Any) -> Any:
    return _ListWriter(target) if type(target) is list else full_write_guard(target)


def _extend_guard(target: list) -> Callable[[Any], None]:
    def extend(items):
        target.extend(_bounded_list(target, items))
    return extend


_STR_RESULT_SIZE = {
    "join": lambda s, items: len(s) * len(items) + sum(len(i) for i in items if isinstance(i, str)),
    "ljust": lambda s, width, *_: width,
    "rjust": lambda s, width, *_: width,
    "center": lambda s, width, *_: width,
    "zfill": lambda s, width: width,
    "expandtabs": lambda s, tabsize=8: len(s) + s.count("\t") * tabsize,
    "replace": lambda s, old, new, count=-1: len(s) + max(0, len(new) - len(old)) * (
        s.count(old) if count < 0 else min(count, s.count(old))),
}
_COMPARING = frozenset({"sort", "index", "count", "remove"})
_GUARDED_METHODS = {str: set(_STR_RESULT_SIZE), list: {"extend", *_COMPARING}, tuple: {"index", "count"}}


def _sized_str_method(text: str, name: str, method: Callable[..., str]) -> Callable[..., str]:
    def call(*args, **kwargs):
        if name == "join" and args:
            args = (list(args[0]), *args[1:])  # the items may be an iterator: count them once
        try:
            _check_size(_STR_RESULT_SIZE[name](text, *args, **kwargs))
        except TypeError:
            pass  # the method itself reports bad arguments
        return method(*args, **kwargs)
    return call


def _comparing_guard(target: list | tuple, method: Callable[..., Any]) -> Callable[..., Any]:
    # Sorting [t] * n, or searching it for a copy of t, compares every item of every t in one C call.
    def call(*args, **kwargs):
        _check_expanded((target, args), "compare")
        return method(*args, **kwargs)
    return call


def _unbound_guard(kind: type, name: str) -> Callable[..., Any]:
    # str.join(sep, items) must meet the same checks as sep.join(items).
    def call(target, *args, **kwargs):
        if not isinstance(target, kind):
            raise TypeError(f"{kind.__name__}.{name}() needs a {kind.__name__} first, not {type(target).__name__}")
        return _getattr(target, name)(*args, **kwargs)
    return call


def _strftime_guard(method: Callable[..., str]) -> Callable[..., str]:
    def strftime(*args, **kwargs):
        _check_strftime(kwargs.get("format", args[-1] if args else None))
        return method(*args, **kwargs)
    return strftime


def denied_attribute_message(name: str) -> str:
    return f"'.{name}' is not allowed in scripts"


def _getattr(target: Any, name: str) -> Any:
    if name in DENIED_ATTRIBUTES:
        _refuse(denied_attribute_message(name))
    try:
        value = safer_getattr_raise(target, name)
    except NotImplementedError as err:
        _refuse(f"{err}: scripts format text with f-strings")
    if name == "strftime":
        return _strftime_guard(value)
    if isinstance(target, type):
        kind = next((kind for kind in _GUARDED_METHODS if issubclass(target, kind)), None)
        return _unbound_guard(kind, name) if kind and name in _GUARDED_METHODS[kind] else value
    if isinstance(target, str) and name in _STR_RESULT_SIZE:
        return _sized_str_method(target, name, value)
    if type(target) is list and name == "extend":
        return _extend_guard(target)
    return _comparing_guard(target, value) if type(target) in (list, tuple) and name in _COMPARING else value
