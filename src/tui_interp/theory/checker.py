"""The type checker: every expression gets a type before anything runs.

Types are int, bool, str and list[T] (types.py). What can never work is an error at the
expression's span (`a + "x"`, `len(a)`, `"x" in xs`); what depends on values (a division by
zero, an index out of range, a value over a limit) is the evaluator's to refuse when it
happens, also at the expression's span. The checker reports through a callback and keeps
going, so one pass finds every problem; an expression with an error gets ErrorType, which
silences follow-on errors.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

from tui_interp.theory.functions import FUNCTIONS, CallCheck
from tui_interp.theory.nodes import (
    Binary,
    BoolLit,
    BoolOp,
    Call,
    Compare,
    Comprehension,
    Expr,
    IfElse,
    Index,
    IntLit,
    ListLit,
    Name,
    SliceOf,
    Span,
    StrLit,
    Unary,
)
from tui_interp.theory.types import (
    BOOL,
    EMPTY,
    ERROR,
    INT,
    STR,
    BoolType,
    EmptyType,
    IntType,
    ListType,
    StrType,
    Type,
    compatible,
    describe,
    is_orderable,
    is_poison,
    is_renderable,
    join,
)

Report = Callable[[Span, str], None]
"""report(span, message): an error at span."""


class Checker:
    """Types expressions over an environment of input types; reports through `report`."""

    def __init__(self, env: Mapping[str, Type], report: Report) -> None:
        self.env = env
        self.report = report
        self.scopes: list[dict[str, Type]] = []
        self.handlers: dict[type, Callable[[Any], Type]] = {
            IntLit: lambda e: INT,
            StrLit: lambda e: STR,
            BoolLit: lambda e: BOOL,
            Name: self._name,
            Unary: self._unary,
            Binary: self._binary,
            BoolOp: self._boolop,
            Compare: self._compare,
            IfElse: self._ifelse,
            Index: self._index,
            SliceOf: self._slice,
            ListLit: self._list,
            Call: self._call,
            Comprehension: self._comprehension,
        }

    def error(self, span: Span, message: str) -> Type:
        self.report(span, message)
        return ERROR

    def check(self, expr: Expr) -> Type:
        handler = self.handlers.get(type(expr))
        if handler is None:
            return self.error(expr.span, f"unsupported expression {type(expr).__name__}")
        return handler(expr)

    def check_bool(self, expr: Expr, what: str) -> Type:
        t = self.check(expr)
        if not isinstance(t, BoolType) and not is_poison(t):
            hint = " (compare it, e.g. x != 0)" if isinstance(t, IntType) else ""
            return self.error(expr.span, f"{what} needs a bool condition, got {describe(t)}{hint}")
        return t

    def check_renderable(self, expr: Expr, what: str) -> Type:
        t = self.check(expr)
        if not is_renderable(t):
            return self.error(
                expr.span, f"{what} cannot turn {describe(t)} into text; join the inner lists, e.g. with join()"
            )
        return t

    def _name(self, e: Name) -> Type:
        name = e.id
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        if name in self.env:
            return self.env[name]
        if name in FUNCTIONS:
            return self.error(e.span, f"`{name}` is a function: call it, e.g. {name}(...)")
        known = [n for scope in self.scopes for n in scope] + list(self.env)
        close = difflib.get_close_matches(name, known, n=1)
        if close:
            hint = f"; did you mean `{close[0]}`?"
        elif known:
            hint = f"; the inputs are {', '.join(self.env)}" if self.env else ""
        else:
            hint = "; declare it with an `input` line"
        return self.error(e.span, f"unknown name `{name}`{hint}")

    # --- operators -----------------------------------------------------------------------------

    def _unary(self, e: Unary) -> Type:
        t = self.check(e.operand)
        if is_poison(t):
            return BOOL if e.op == "not" else ERROR
        if e.op == "not":
            if not isinstance(t, BoolType):
                return self.error(e.span, f"`not` needs a bool, got {describe(t)} (compare it, e.g. x != 0)")
            return BOOL
        if not isinstance(t, IntType):
            return self.error(e.span, f"unary `{e.op}` needs an int, got {describe(t)}")
        return INT

    def _binary(self, e: Binary) -> Type:
        a = self.check(e.left)
        b = self.check(e.right)
        if is_poison(a) or is_poison(b):
            return ERROR
        if isinstance(a, IntType) and isinstance(b, IntType):
            return INT
        if e.op == "+":
            joined = join(a, b)
            if isinstance(joined, (StrType, ListType)):
                return joined
            hint = "; convert the int with str(...) or the str with int(...)" if {type(a), type(b)} == {IntType, StrType} else ""
            return self.error(e.span, f"cannot add {describe(a)} and {describe(b)}{hint}")
        if e.op == "*":
            seq, n = (a, b) if isinstance(b, IntType) else (b, a)
            if isinstance(seq, (StrType, ListType)) and isinstance(n, IntType):
                return seq
            return self.error(e.span, f"cannot multiply {describe(a)} by {describe(b)}")
        if e.op == "-":
            return self.error(e.span, f"cannot subtract {describe(b)} from {describe(a)}")
        hint = " (for bools use `and`, `or` or `!=`)" if isinstance(a, BoolType) or isinstance(b, BoolType) else ""
        if e.op == "%" and isinstance(a, StrType):
            hint = " (string formatting is not supported; use a prompt template or +)"
        return self.error(e.span, f"`{e.op}` needs two ints, got {describe(a)} and {describe(b)}{hint}")

    def _boolop(self, e: BoolOp) -> Type:
        for value in e.values:
            t = self.check(value)
            if not isinstance(t, BoolType) and not is_poison(t):
                hint = " (compare it, e.g. x != 0)" if isinstance(t, IntType) else ""
                self.error(value.span, f"`{e.op}` needs bool operands, got {describe(t)}{hint}")
        return BOOL

    def _compare(self, e: Compare) -> Type:
        types = [self.check(operand) for operand in e.operands]
        for i, op in enumerate(e.ops):
            a, b = types[i], types[i + 1]
            if is_poison(a) or is_poison(b):
                continue
            span = e.operands[i].span.to(e.operands[i + 1].span)
            if op in ("==", "!="):
                if not compatible(a, b):
                    self.error(span, f"cannot compare {describe(a)} and {describe(b)} with `{op}`: they are never equal")
            elif op in ("in", "not in"):
                if isinstance(b, StrType) and not isinstance(a, StrType):
                    self.error(span, f"`{op}` on a str looks for a str, got {describe(a)}")
                elif isinstance(b, ListType) and not compatible(a, b.elem):
                    self.error(
                        span, f"`{op}` on a {describe(b)} needs an element of type {describe(b.elem)}, got {describe(a)}"
                    )
                elif not isinstance(b, (StrType, ListType)):
                    self.error(span, f"`{op}` needs a str or a list on the right, got {describe(b)}")
            elif isinstance(a, BoolType) or isinstance(b, BoolType):
                self.error(span, f"bools cannot be ordered with `{op}`")
            elif not (compatible(a, b) and is_orderable(a) and is_orderable(b)):
                self.error(span, f"cannot order {describe(a)} and {describe(b)} with `{op}`")
        return BOOL

    def _ifelse(self, e: IfElse) -> Type:
        self.check_bool(e.test, "`if`")
        a = self.check(e.body)
        b = self.check(e.orelse)
        joined = join(a, b)
        if joined is None:
            return self.error(
                e.span, f"the two branches of `if`/`else` have different types: {describe(a)} and {describe(b)}"
            )
        return joined

    # --- indexing and lists --------------------------------------------------------------------

    def _index(self, e: Index) -> Type:
        container = self.check(e.value)
        index = self.check(e.index)
        if not isinstance(index, IntType) and not is_poison(index):
            return self.error(e.index.span, f"indices must be ints, got {describe(index)}")
        if is_poison(container):
            return ERROR
        if not isinstance(container, (StrType, ListType)):
            return self.error(e.value.span, f"cannot index {describe(container)}: only strs and lists have elements")
        if isinstance(container, ListType) and isinstance(container.elem, EmptyType):
            return self.error(e.span, "cannot index an empty list")
        return STR if isinstance(container, StrType) else container.elem

    def _slice(self, e: SliceOf) -> Type:
        container = self.check(e.value)
        for part in (e.lower, e.upper, e.step):
            t = self.check(part) if part is not None else INT
            if part is not None and not isinstance(t, IntType) and not is_poison(t):
                self.error(part.span, f"slice bounds must be ints, got {describe(t)}")
        if is_poison(container):
            return ERROR
        if isinstance(container, (StrType, ListType)):
            return container
        return self.error(e.value.span, f"cannot slice {describe(container)}: only strs and lists can be sliced")

    def _list(self, e: ListLit) -> Type:
        elem: Type = EMPTY
        for item in e.items:
            t = self.check(item)
            joined = join(elem, t)
            if joined is None:
                self.error(item.span, f"list elements must all have the same type: {describe(elem)} and {describe(t)}")
                continue
            elem = joined
        return ListType(elem)

    def _comprehension(self, e: Comprehension) -> Type:
        pushed = 0
        try:
            for gen in e.generators:
                seq = self.check(gen.iter)
                elem: Type = ERROR
                if isinstance(seq, StrType):
                    elem = STR
                elif isinstance(seq, ListType):
                    elem = ERROR if isinstance(seq.elem, EmptyType) else seq.elem
                elif not is_poison(seq):
                    self.error(gen.iter.span, f"`for` needs a str or a list to go through, got {describe(seq)}")
                if gen.target in self.env:
                    self.error(gen.target_span, f"`{gen.target}` is an input; choose another name for the loop variable")
                elif gen.target in FUNCTIONS:
                    self.error(gen.target_span, f"`{gen.target}` is a built-in function; choose another name")
                self.scopes.append({gen.target: elem})
                pushed += 1
                for cond in gen.conds:
                    self.check_bool(cond, "`if` in a comprehension")
            return ListType(self.check(e.elt))
        finally:
            del self.scopes[len(self.scopes) - pushed :]

    def _call(self, e: Call) -> Type:
        function = FUNCTIONS.get(e.func)
        arg_types = tuple(self.check(arg) for arg in e.args)
        if function is None:
            if e.func in self.env or any(e.func in scope for scope in self.scopes):
                return self.error(e.func_span, f"`{e.func}` is an input, not a function")
            close = difflib.get_close_matches(e.func, list(FUNCTIONS), n=1)
            hint = f"; did you mean `{close[0]}`?" if close else f"; the functions are {', '.join(FUNCTIONS)}"
            return self.error(e.func_span, f"unknown function `{e.func}`{hint}")
        if not function.min_args <= len(e.args) <= function.max_args:
            return self.error(e.span, f"{e.func}() takes {function.arity_text()} ({len(e.args)} given)")
        return function.check(CallCheck(e.func, e.span, arg_types, tuple(a.span for a in e.args), self.report))
