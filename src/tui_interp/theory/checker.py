"""The type checker: every expression gets a type before anything runs.

Types are int, bool, str and list[T], with the bounds the checker can prove (see types.py).
Problems that must happen are errors (`a + "x"`, `10 ** 10 ** 10`, `xs[9]` on a list of 8);
problems that may happen for some inputs are warnings (dividing by an input that can be 0).
The checker reports through a callback and keeps going, so one pass finds every problem;
an expression with an error gets ErrorType, which silences follow-on errors.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

from tui_interp.theory import intervals
from tui_interp.theory.functions import FUNCTIONS, CallCheck
from tui_interp.theory.limits import MAX_LIST_LEN, MAX_STEPS, MAX_STR_LEN
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

Report = Callable[[Span, str, bool], None]
"""report(span, message, is_error)."""

_VERB = {"-": "subtract", "*": "multiply"}


class Checker:
    """Types expressions over an environment of input types; reports through `report`."""

    def __init__(self, env: Mapping[str, Type], report: Report) -> None:
        self.env = env
        self.report = report
        self.scopes: list[dict[str, Type]] = []
        self.handlers: dict[type, Callable[[Any], Type]] = {
            IntLit: self._int,
            StrLit: self._str,
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
        self.report(span, message, True)
        return ERROR

    def warn(self, span: Span, message: str) -> None:
        self.report(span, message, False)

    def _issues(self, span: Span, issues: list[intervals.Issue]) -> bool:
        """Report interval issues; True when one of them is certain (an error)."""
        for issue in issues:
            self.report(span, issue.message, issue.certain)
        return any(issue.certain for issue in issues)

    def check(self, expr: Expr) -> Type:
        handler = self.handlers.get(type(expr))
        if handler is None:
            return self.error(expr.span, f"unsupported expression {type(expr).__name__}")
        return handler(expr)

    # --- directive-level checks ----------------------------------------------------------------

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

    # --- leaves --------------------------------------------------------------------------------

    def _int(self, e: IntLit) -> Type:
        return IntType(e.value, e.value)

    def _str(self, e: StrLit) -> Type:
        return StrType(len(e.value), len(e.value), frozenset(e.value))

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
        if e.op == "+":
            return t
        result, issues = intervals.neg(t) if e.op == "-" else intervals.invert(t)
        return ERROR if self._issues(e.span, issues) else result

    def _binary(self, e: Binary) -> Type:
        a = self.check(e.left)
        b = self.check(e.right)
        if is_poison(a) or is_poison(b):
            return ERROR
        if e.op == "+":
            return self._add(e, a, b)
        if e.op == "*":
            return self._multiply(e, a, b)
        if not (isinstance(a, IntType) and isinstance(b, IntType)):
            if e.op == "-":
                return self.error(e.span, f"cannot subtract {describe(b)} from {describe(a)}")
            hint = " (for bools use `and`, `or` or `!=`)" if isinstance(a, BoolType) or isinstance(b, BoolType) else ""
            if e.op == "%" and isinstance(a, StrType):
                hint = " (string formatting is not supported; use a prompt template or +)"
            return self.error(e.span, f"`{e.op}` needs two ints, got {describe(a)} and {describe(b)}{hint}")
        ops = {
            "-": intervals.sub,
            "//": intervals.floordiv,
            "%": intervals.mod,
            "**": intervals.power,
            "<<": intervals.lshift,
            ">>": intervals.rshift,
        }
        if e.op in ops:
            result, issues = ops[e.op](a, b)
        else:
            result, issues = intervals.bitwise(e.op, a, b)
        return ERROR if self._issues(e.span, issues) else result

    def _add(self, e: Binary, a: Type, b: Type) -> Type:
        if isinstance(a, IntType) and isinstance(b, IntType):
            result, issues = intervals.add(a, b)
            return ERROR if self._issues(e.span, issues) else result
        if isinstance(a, StrType) and isinstance(b, StrType):
            alphabet = a.alphabet | b.alphabet if a.alphabet is not None and b.alphabet is not None else None
            max_len = a.max_len + b.max_len if a.max_len is not None and b.max_len is not None else None
            return self._sized(e.span, StrType(a.min_len + b.min_len, max_len, alphabet))
        if isinstance(a, ListType) and isinstance(b, ListType):
            elem = join(a.elem, b.elem)
            if elem is not None:
                max_len = a.max_len + b.max_len if a.max_len is not None and b.max_len is not None else None
                return self._sized(e.span, ListType(elem, a.min_len + b.min_len, max_len))
        hint = ""
        if {type(a), type(b)} == {IntType, StrType}:
            hint = "; convert the int with str(...) or the str with int(...)"
        return self.error(e.span, f"cannot add {describe(a)} and {describe(b)}{hint}")

    def _multiply(self, e: Binary, a: Type, b: Type) -> Type:
        if isinstance(a, IntType) and isinstance(b, IntType):
            result, issues = intervals.mul(a, b)
            return ERROR if self._issues(e.span, issues) else result
        seq, n = (a, b) if isinstance(b, IntType) else (b, a)
        if isinstance(seq, (StrType, ListType)) and isinstance(n, IntType):
            lo = seq.min_len * max(n.lo, 0) if n.lo is not None else 0
            hi = seq.max_len * max(n.hi, 0) if seq.max_len is not None and n.hi is not None else None
            if isinstance(seq, StrType):
                return self._sized(e.span, StrType(lo, hi, seq.alphabet))
            return self._sized(e.span, ListType(seq.elem, lo, hi))
        return self.error(e.span, f"cannot multiply {describe(a)} by {describe(b)}")

    def _sized(self, span: Span, t: StrType | ListType) -> Type:
        """Refuse a str or list that must exceed its limit; warn when it may."""
        limit = MAX_STR_LEN if isinstance(t, StrType) else MAX_LIST_LEN
        what = "string" if isinstance(t, StrType) else "list"
        if t.min_len > limit:
            return self.error(
                span, f"this {what} is too long: at least {t.min_len:,} elements (the limit is {limit:,})"
            )
        if t.max_len is not None and t.max_len > limit:
            self.warn(span, f"this {what} may be longer than the limit of {limit:,} for some inputs")
            t = StrType(t.min_len, None, t.alphabet) if isinstance(t, StrType) else ListType(t.elem, t.min_len, None)
        return t

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
                    self.error(
                        span, f"cannot compare {describe(a)} and {describe(b)} with `{op}`: they are never equal"
                    )
            elif op in ("in", "not in"):
                self._membership(span, op, a, b)
            elif isinstance(a, BoolType) or isinstance(b, BoolType):
                self.error(span, f"bools cannot be ordered with `{op}`")
            elif not (compatible(a, b) and is_orderable(a) and is_orderable(b)):
                self.error(span, f"cannot order {describe(a)} and {describe(b)} with `{op}`")
        return BOOL

    def _membership(self, span: Span, op: str, a: Type, b: Type) -> None:
        if isinstance(b, StrType):
            if not isinstance(a, StrType):
                self.error(span, f"`{op}` on a str looks for a str, got {describe(a)}")
        elif isinstance(b, ListType):
            if not compatible(a, b.elem):
                self.error(
                    span, f"`{op}` on a {describe(b)} needs an element of type {describe(b.elem)}, got {describe(a)}"
                )
        else:
            self.error(span, f"`{op}` needs a str or a list on the right, got {describe(b)}")

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

    # --- indexing ------------------------------------------------------------------------------

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
        if isinstance(index, IntType) and container.max_len is not None:
            n = container.max_len
            if (index.lo is not None and index.lo >= n) or (index.hi is not None and index.hi < -n):
                shown = index.lo if index.lo is not None and index.lo >= n else index.hi
                what = "str" if isinstance(container, StrType) else "list"
                size = f"of length {n}" if container.min_len == n else f"of at most {n} elements"
                return self.error(e.span, f"index {shown} is out of range for a {what} {size}")
        if isinstance(container, StrType):
            return StrType(1, 1, container.alphabet)
        return container.elem

    def _slice(self, e: SliceOf) -> Type:
        container = self.check(e.value)
        for part in (e.lower, e.upper, e.step):
            if part is None:
                continue
            t = self.check(part)
            if not isinstance(t, IntType) and not is_poison(t):
                self.error(part.span, f"slice bounds must be ints, got {describe(t)}")
            elif part is e.step and isinstance(t, IntType) and t.lo == 0 and t.hi == 0:
                self.error(part.span, "slice step cannot be 0")
        if is_poison(container):
            return ERROR
        if isinstance(container, StrType):
            return StrType(0, container.max_len, container.alphabet)
        if isinstance(container, ListType):
            return ListType(container.elem, 0, container.max_len)
        return self.error(e.value.span, f"cannot slice {describe(container)}: only strs and lists can be sliced")

    # --- lists ---------------------------------------------------------------------------------

    def _list(self, e: ListLit) -> Type:
        elem: Type = EMPTY
        for item in e.items:
            t = self.check(item)
            joined = join(elem, t)
            if joined is None:
                self.error(item.span, f"list elements must all have the same type: {describe(elem)} and {describe(t)}")
                continue
            elem = joined
        return ListType(elem, len(e.items), len(e.items))

    def _comprehension(self, e: Comprehension) -> Type:
        pushed = 0
        min_count: int | None = 1
        max_count: int | None = 1
        try:
            for gen in e.generators:
                seq = self.check(gen.iter)
                elem: Type = ERROR
                if isinstance(seq, StrType):
                    elem = StrType(1, 1, seq.alphabet)
                elif isinstance(seq, ListType):
                    elem = ERROR if isinstance(seq.elem, EmptyType) else seq.elem
                elif not is_poison(seq):
                    self.error(gen.iter.span, f"`for` needs a str or a list to go through, got {describe(seq)}")
                if isinstance(seq, (StrType, ListType)):
                    min_count = min_count * seq.min_len if min_count is not None else None
                    max_count = max_count * seq.max_len if max_count is not None and seq.max_len is not None else None
                else:
                    max_count = None
                if gen.target in self.env:
                    self.error(
                        gen.target_span, f"`{gen.target}` is an input; choose another name for the loop variable"
                    )
                elif gen.target in FUNCTIONS:
                    self.error(gen.target_span, f"`{gen.target}` is a built-in function; choose another name")
                self.scopes.append({gen.target: elem})
                pushed += 1
                for cond in gen.conds:
                    self.check_bool(cond, "`if` in a comprehension")
                if gen.conds:
                    min_count = 0
            elt = self.check(e.elt)
        finally:
            del self.scopes[len(self.scopes) - pushed :]
        if min_count is not None and min_count > MAX_STEPS:
            return self.error(e.span, f"this loop runs {min_count:,} times, more than the step limit of {MAX_STEPS:,}")
        return self._sized(e.span, ListType(elt, min_count or 0, max_count))

    # --- calls ---------------------------------------------------------------------------------

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
        check = CallCheck(e.func, e.span, arg_types, tuple(a.span for a in e.args), self.report)
        return function.check(check)
