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
from functools import lru_cache
from types import CodeType
from typing import Any, Callable

from RestrictedPython import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.Guards import (
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
)
from RestrictedPython.PrintCollector import PrintCollector
from RestrictedPython.transformer import (
    IOPERATOR_TO_STR,
    RestrictingNodeTransformer,
    copy_locations,
)

from .errors import ScriptRejected
from .sandbox_guards import (
    DENIED_ATTRIBUTES,
    MAX_FORMAT_WIDTH,
    MAX_ITEMS,
    _augitem,
    _binop,
    _check_size,
    _format,
    _getattr,
    _inplacevar,
    _loop_guard,
    _refuse,
    _write,
    denied_attribute_message,
)

REFUSED_BUILTINS = (
    "__import__ open eval exec compile getattr setattr delattr hasattr vars globals locals dir type "
    "object input breakpoint help memoryview super iter format bytes bytearray classmethod "
    "staticmethod property exit quit id"
).split()

_GUARDED_BINOPS = {ast.Add: "+", ast.Mult: "*", ast.Pow: "**", ast.LShift: "<<", ast.Mod: "%"}


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
