"""The compile-time policy of the script sandbox, and the namespace scripts run in.

SpiffWorkflow runs scripts with plain eval/exec; diagrams are written by designers, not by
administrators, so Casework compiles them with RestrictedPython under a policy of its own:
no imports, no names or attributes starting with "_", whitelisted builtins only, and
guards on loops, functions and size-multiplying operators so that a runaway script ends
in ScriptRejected (an incident) instead of a hung or swapping worker.
"""
from __future__ import annotations

import ast
import builtins
import operator
import re
from datetime import date, time
from functools import lru_cache
from types import CodeType
from typing import Any, Callable, Iterator

from RestrictedPython import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence
from RestrictedPython.PrintCollector import PrintCollector
from RestrictedPython.transformer import IOPERATOR_TO_STR, RestrictingNodeTransformer, copy_locations

from .errors import ScriptRejected
from .sandbox_guards import (
    DENIED_ATTRIBUTES, MAX_FORMAT_WIDTH, MAX_ITEMS, _binop, _check_divide, _check_expanded, _check_size,
    _check_strftime, _check_widths, _getattr, _inplacevar, _loop_guard, _refuse, _write,
    denied_attribute_message,
)

REFUSED_BUILTINS = (
    "__import__ open eval exec compile getattr setattr delattr hasattr vars globals locals dir type "
    "object input breakpoint help memoryview super iter format bytes bytearray classmethod "
    "staticmethod property exit quit id"
).split()

_GUARDED_BINOPS = {ast.Add: "+", ast.Mult: "*", ast.Pow: "**", ast.LShift: "<<", ast.Mod: "%", ast.FloorDiv: "//"}


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    try:
        _check_size(len(numbers))
    except OverflowError:
        _refuse(f"value too large: range() in scripts is limited to {MAX_ITEMS:,} numbers")
    return numbers


def _guarded_pow(base: Any, exponent: Any, modulus: Any = None) -> Any:
    if modulus is None:
        return _binop("**", base, exponent)
    _check_divide(base, exponent, modulus)
    return pow(base, exponent, modulus)


def _guarded_round(number: Any, ndigits: int | None = None) -> Any:
    if isinstance(ndigits, int) and abs(ndigits) > MAX_FORMAT_WIDTH:
        _refuse(f"round() in scripts takes at most {MAX_FORMAT_WIDTH:,} digits")
    _check_divide(number)
    return round(number, ndigits)


def _guarded_sum(items: Any, start: Any = 0) -> Any:
    if isinstance(start, (list, tuple)):
        items = list(items)
        _check_size(len(start) + sum(len(i) for i in items if isinstance(i, (list, tuple))))
    return sum(items, start)


def _checked(function: Callable[..., Any], check: Callable[..., None]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        check(*args)
        return function(*args)
    return call


# map() and filter() call their function from C: over a list the function appends to they
# would never stop, so they tick the run's budget like a loop does.
def _ticking_map(function: Callable[..., Any], iterable: Any, *iterables: Any) -> Iterator[Any]:
    for args in zip(iterable, *iterables):
        _loop_guard()
        yield function(*args)


def _ticking_filter(function: Callable[[Any], Any] | None, iterable: Any) -> Iterator[Any]:
    for item in iterable:
        _loop_guard()
        if item if function is None else function(item):
            yield item


def _on_a_copy(pick: Callable[..., Any]) -> Callable[..., Any]:
    # min(items, key=items.append) would walk a list that grows as fast as it is walked, and
    # sorting [t] * n compares every item of every t in one C call.
    def call(*args: Any, **kwargs: Any) -> Any:
        items = list(args[0]) if len(args) == 1 else list(args)
        _check_expanded(items, "compare")
        return pick(items, **kwargs)
    return call


def _compared(value: Any, membership: bool = False) -> Any:
    # Comparing (or hashing) shared references walks them all in one C call: [t] * n == [u] * n.
    if not (membership and isinstance(value, (dict, set, frozenset))):
        _check_expanded(value, "compare")
    return value


class PlainInstances(type):
    """The class of the stand-ins scripts see for builtin classes: isinstance() accepts the plain objects they build."""

    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, cls._plain)


class _ScriptStr(str, metaclass=PlainInstances):
    _plain = str

    def __new__(cls, *args: Any, **kwargs: Any) -> str:
        if args:
            _check_expanded(args[0])
        return str(*args, **kwargs)


class _PrintCollector(PrintCollector):
    def _call_print(self, *objects: Any, **kwargs: Any) -> None:
        _check_expanded(objects)
        super()._call_print(*objects, **kwargs)


def _augitem(target: Any, key: Any, symbol: str, value: Any) -> None:
    _write(target)[key] = _inplacevar(symbol, target[key], value)


def _format(value: Any, conversion: int, spec: str) -> str:
    _check_widths(re.findall(r"\d+", spec))
    if isinstance(value, (date, time)):
        _check_strftime(spec)
    _check_expanded(value)
    converters = {ord("r"): repr, ord("s"): str, ord("a"): ascii}
    return format(converters[conversion](value) if conversion in converters else value, spec)


def _refused_builtin_message(name: str) -> str:
    return f"'{name}' is not available in scripts"


def _refused_builtin(name: str) -> Callable[..., None]:
    def refused(*args: Any, **kwargs: Any) -> None:
        _refuse(_refused_builtin_message(name))
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
SAFE_BUILTINS.update(
    range=_bounded_range, pow=_guarded_pow, round=_guarded_round, sum=_guarded_sum, str=_ScriptStr,
    divmod=_checked(divmod, _check_divide), repr=_checked(repr, _check_expanded), map=_ticking_map,
    filter=_ticking_filter, min=_on_a_copy(min), max=_on_a_copy(max), sorted=_on_a_copy(sorted),
)
SAFE_BUILTINS.update({name: _refused_builtin(name) for name in REFUSED_BUILTINS})


def _internal_import(name: str, *args: Any, **kwargs: Any) -> Any:
    # Only C code calls this (scripts cannot name it): datetime.strptime() imports _strptime
    # through the builtins of the frame that called it, the script's.
    if name != "_strptime":
        _refuse(_refused_builtin_message("__import__"))
    return builtins.__import__(name, *args, **kwargs)


SAFE_BUILTINS["__import__"] = _internal_import

_GUARDS: dict[str, Any] = {
    "_getattr_": _getattr, "_getitem_": operator.getitem, "_write_": _write, "_getiter_": iter,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence, "_unpack_sequence_": guarded_unpack_sequence,
    "_apply_": lambda function, *args, **kwargs: function(*args, **kwargs), "_inplacevar_": _inplacevar,
    "_print_": _PrintCollector, "_loop_guard_": _loop_guard, "_binop_": _binop, "_augitem_": _augitem,
    "_format_": _format, "_compared_": _compared,
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

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        node = super().visit_Compare(node)
        if all(isinstance(op, (ast.Is, ast.IsNot)) for op in node.ops):
            return node  # identity looks at nothing inside the values
        node.left = self._call("_compared_", [node.left], node.left)
        node.comparators = [
            self._call("_compared_", [value, ast.Constant(isinstance(op, (ast.In, ast.NotIn)))], value)
            for op, value in zip(node.ops, node.comparators)
        ]
        return node

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
    """Raise SyntaxError or ScriptRejected if the sandbox would refuse this script or expression; never run it."""
    source, mode = (source.lstrip(" \t"), "eval") if expression else (source, "exec")
    _compile(source, mode)
    _refuse_forbidden_calls(ast.parse(source, "<string>", mode))


def _refuse_forbidden_calls(tree: ast.AST) -> None:
    """Raise ScriptRejected for what the run-time guards would refuse whatever the case data."""
    # A refused builtin is called through its name unless the script rebinds that name;
    # task data cannot rebind it to anything callable, since it is serialised as JSON.
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in REFUSED_BUILTINS and node.func.id not in bound:
                raise ScriptRejected(_refused_builtin_message(node.func.id))
        elif isinstance(node, ast.Attribute) and node.attr in DENIED_ATTRIBUTES:
            raise ScriptRejected(denied_attribute_message(node.attr))
