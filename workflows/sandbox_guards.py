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
from typing import Any, Callable

from RestrictedPython.Guards import full_write_guard, safer_getattr_raise

from .errors import ScriptRejected

MAX_ITEMS = 1_000_000
MAX_INT_BITS = 16_384
MAX_FORMAT_WIDTH = 10_000
MAX_MEMORY_GROWTH_BYTES = 256 * 1024 * 1024
MEMORY_CHECK_INTERVAL_SECONDS = 0.01
DENIED_ATTRIBUTES = frozenset({"mro", "encode", "translate", "maketrans"})


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


def denied_attribute_message(name: str) -> str:
    return f"'.{name}' is not allowed in scripts"


def _getattr(target: Any, name: str) -> Any:
    if name in DENIED_ATTRIBUTES:
        _refuse(denied_attribute_message(name))
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
