"""The evaluator: checked nodes compiled to Python closures, by an allow-list keyed by node type.

No `eval`, no `exec`: each node type has one compiler here, and a node type without one is
refused. Every closure takes the environment (input and loop variable values) and the
evaluation's Budget; every operation that can grow a value or loop checks its limit first
(runtime.py). A failing operation raises TheoryEvalError with the span of the expression
that failed. Expressions must have passed the checker: the closures rely on its types.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from tui_interp.theory.diagnostics import TheoryEvalError
from tui_interp.theory.functions import FUNCTIONS
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
    Placeholder,
    SliceOf,
    Span,
    StrLit,
    Template,
    Unary,
    node_count,
)
from tui_interp.theory.render import Value
from tui_interp.theory.runtime import (
    Budget,
    EvalFailure,
    check_int,
    check_len,
    concat,
    int_divmod,
    int_lshift,
    int_mul,
    int_pow,
    int_rshift,
    render,
    repeat,
    size_of,
)

Env = dict[str, Value]
Fn = Callable[[Env, Budget], Any]


def _fail(e: EvalFailure, span: Span) -> TheoryEvalError:
    return TheoryEvalError(e.message, span)


# --- operators -------------------------------------------------------------------------------------


def _add(budget: Budget, a: Any, b: Any) -> Value:
    if isinstance(a, int):
        return check_int(a + b)
    return concat(budget, a, b)


def _mul(budget: Budget, a: Any, b: Any) -> Value:
    if isinstance(a, int) and isinstance(b, int):
        return int_mul(budget, a, b)
    if isinstance(a, int):
        return repeat(budget, b, a)
    return repeat(budget, a, b)


_BINARY: dict[str, Callable[[Budget, Any, Any], Value]] = {
    "+": _add,
    "-": lambda budget, a, b: check_int(a - b),
    "*": _mul,
    "//": lambda budget, a, b: int_divmod(budget, a, b, "//"),
    "%": lambda budget, a, b: int_divmod(budget, a, b, "%"),
    "**": int_pow,
    "<<": lambda budget, a, b: int_lshift(a, b),
    ">>": lambda budget, a, b: int_rshift(a, b),
    "&": lambda budget, a, b: a & b,
    "|": lambda budget, a, b: a | b,
    "^": lambda budget, a, b: a ^ b,
}

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda a, b: a in b,
    "not in": lambda a, b: a not in b,
}


def _compare_cost(budget: Budget, op: str, a: Value, b: Value) -> int:
    """`in` scans the list (comparing each element) or searches the str; `==`, `<`, ... on strs
    and lists compare element by element, at most the smaller one in full."""
    if op in ("in", "not in"):
        return size_of(b, budget.left) + (len(a) if isinstance(a, str) else 0)  # type: ignore[arg-type]
    if isinstance(a, (str, tuple)):
        return min(size_of(a, budget.left), size_of(b, budget.left))
    return 0


# --- compilers ---------------------------------------------------------------------------------


_COMPILERS: dict[type, Callable[[Any], Fn]] = {}


def compile_expr(expr: Expr) -> Fn:
    """A closure evaluating a checked expression: fn(env, budget) -> value."""
    compiler = _COMPILERS.get(type(expr))
    if compiler is None:
        raise TheoryEvalError(f"cannot evaluate {type(expr).__name__}", expr.span)
    return compiler(expr)


def _compiles(*types: type) -> Callable[[Callable[[Any], Fn]], Callable[[Any], Fn]]:
    """Register a compiler for these node types (the allow-list)."""

    def register(compiler: Callable[[Any], Fn]) -> Callable[[Any], Fn]:
        _COMPILERS.update(dict.fromkeys(types, compiler))
        return compiler

    return register


@_compiles(IntLit, StrLit, BoolLit)
def _literal(e: IntLit | StrLit | BoolLit) -> Fn:
    value = e.value
    return lambda env, budget: value


@_compiles(Name)
def _name(e: Name) -> Fn:
    name, span = e.id, e.span

    def fn(env: Env, budget: Budget) -> Value:
        try:
            return env[name]
        except KeyError:
            raise TheoryEvalError(f"no value for `{name}`", span) from None

    return fn


@_compiles(Unary)
def _unary(e: Unary) -> Fn:
    operand = compile_expr(e.operand)
    span = e.span
    if e.op == "not":
        return lambda env, budget: not operand(env, budget)
    if e.op == "+":
        return operand
    op = operator.neg if e.op == "-" else operator.invert

    def fn(env: Env, budget: Budget) -> Value:
        try:
            return check_int(op(operand(env, budget)))
        except EvalFailure as err:
            raise _fail(err, span) from None

    return fn


@_compiles(Binary)
def _binary(e: Binary) -> Fn:
    left = compile_expr(e.left)
    right = compile_expr(e.right)
    op = _BINARY[e.op]
    span = e.span

    def fn(env: Env, budget: Budget) -> Value:
        a = left(env, budget)
        b = right(env, budget)
        try:
            return op(budget, a, b)
        except EvalFailure as err:
            raise _fail(err, span) from None

    return fn


@_compiles(BoolOp)
def _boolop(e: BoolOp) -> Fn:
    values = tuple(compile_expr(v) for v in e.values)
    if e.op == "and":
        return lambda env, budget: all(v(env, budget) for v in values)
    return lambda env, budget: any(v(env, budget) for v in values)


@_compiles(Compare)
def _compare(e: Compare) -> Fn:
    operands = tuple(compile_expr(o) for o in e.operands)
    ops = tuple((op, _COMPARE[op]) for op in e.ops)
    span = e.span

    def fn(env: Env, budget: Budget) -> bool:
        a = operands[0](env, budget)
        for (name, op), operand in zip(ops, operands[1:], strict=True):
            b = operand(env, budget)
            try:
                budget.charge(_compare_cost(budget, name, a, b))
            except EvalFailure as err:
                raise _fail(err, span) from None
            if not op(a, b):
                return False
            a = b
        return True

    return fn


@_compiles(IfElse)
def _ifelse(e: IfElse) -> Fn:
    test = compile_expr(e.test)
    body = compile_expr(e.body)
    orelse = compile_expr(e.orelse)
    return lambda env, budget: body(env, budget) if test(env, budget) else orelse(env, budget)


@_compiles(Index)
def _index(e: Index) -> Fn:
    value = compile_expr(e.value)
    index = compile_expr(e.index)
    span = e.span

    def fn(env: Env, budget: Budget) -> Value:
        seq = value(env, budget)
        i = index(env, budget)
        try:
            return seq[i]
        except IndexError:
            what = "string" if isinstance(seq, str) else "list"
            raise TheoryEvalError(f"index {i} is out of range for a {what} of length {len(seq)}", span) from None

    return fn


@_compiles(SliceOf)
def _slice(e: SliceOf) -> Fn:
    value = compile_expr(e.value)
    parts = tuple(None if p is None else compile_expr(p) for p in (e.lower, e.upper, e.step))
    span = e.span

    def fn(env: Env, budget: Budget) -> Value:
        seq = value(env, budget)
        lower, upper, step = (None if p is None else p(env, budget) for p in parts)
        if step == 0:
            raise TheoryEvalError("slice step cannot be 0", span)
        try:
            budget.charge(len(range(*slice(lower, upper, step).indices(len(seq)))))
        except EvalFailure as err:
            raise _fail(err, span) from None
        return seq[lower:upper:step]

    return fn


@_compiles(ListLit)
def _list(e: ListLit) -> Fn:
    items = tuple(compile_expr(i) for i in e.items)
    return lambda env, budget: tuple(item(env, budget) for item in items)


@_compiles(Comprehension)
def _comprehension(e: Comprehension) -> Fn:
    elt = compile_expr(e.elt)
    gens = tuple((g.target, compile_expr(g.iter), tuple(compile_expr(c) for c in g.conds)) for g in e.generators)
    # each item of generator k costs a step, its conditions, and what runs for it next
    nexts = [g.iter for g in e.generators[1:]] + [e.elt]
    item_costs = tuple(
        1 + sum(node_count(c) for c in g.conds) + node_count(nxt) for g, nxt in zip(e.generators, nexts, strict=True)
    )
    span = e.span
    missing = object()

    def fn(env: Env, budget: Budget) -> tuple[Value, ...]:
        out: list[Value] = []

        def run(k: int) -> None:
            if k == len(gens):
                out.append(elt(env, budget))
                return
            target, seq_fn, conds = gens[k]
            seq = seq_fn(env, budget)
            saved = env.get(target, missing)
            cost = item_costs[k]
            try:
                for item in seq:
                    budget.charge(cost)
                    env[target] = item
                    if all(c(env, budget) for c in conds):
                        run(k + 1)
            finally:
                if saved is missing:
                    env.pop(target, None)
                else:
                    env[target] = saved  # type: ignore[assignment]

        try:
            run(0)
            check_len(budget, len(out), "list")
        except EvalFailure as err:
            raise _fail(err, span) from None
        return tuple(out)

    return fn


@_compiles(Call)
def _call(e: Call) -> Fn:
    impl = FUNCTIONS[e.func].impl
    args = tuple(compile_expr(a) for a in e.args)
    span = e.span

    def fn(env: Env, budget: Budget) -> Value:
        values = [a(env, budget) for a in args]
        try:
            return impl(budget, *values)
        except EvalFailure as err:
            raise _fail(err, span) from None

    return fn


# --- top level ---------------------------------------------------------------------------------


class Compiled:
    """A checked expression ready to run: `compiled(env)` evaluates it with a fresh Budget
    (or the one given, which then holds the steps it used). Running it costs a step per node,
    plus what its loops and functions charge."""

    __slots__ = ("cost", "fn", "span")

    def __init__(self, expr: Expr) -> None:
        self.fn = compile_expr(expr)
        self.span = expr.span
        self.cost = node_count(expr)

    def __call__(self, env: Env, budget: Budget | None = None) -> Any:
        budget = budget if budget is not None else Budget()
        try:
            budget.charge(self.cost)
        except EvalFailure as err:
            raise _fail(err, self.span) from None
        return self.fn(env, budget)

    def text(self, env: Env, budget: Budget | None = None) -> tuple[Value, str]:
        """The value and its rendered text (render.py), the rendering charged to the same budget."""
        budget = budget if budget is not None else Budget()
        value = self(env, budget)
        try:
            return value, render(budget, value)
        except EvalFailure as err:
            raise _fail(err, self.span) from None


def _renderer(placeholder: Placeholder) -> Callable[[Env, Budget], str]:
    """A function rendering a placeholder's value as text, failing at its span."""
    compiled = Compiled(placeholder.expr)

    def fn(env: Env, budget: Budget) -> str:
        value = compiled(env, budget)
        try:
            return render(budget, value)
        except EvalFailure as err:
            raise _fail(err, placeholder.span) from None

    return fn


class CompiledTemplate:
    """A prompt template ready to render: literal pieces and placeholders' renderers."""

    __slots__ = ("parts",)

    def __init__(self, template: Template) -> None:
        self.parts: tuple[str | tuple[Placeholder, Callable[[Env, Budget], str]], ...] = tuple(
            p if isinstance(p, str) else (p, _renderer(p)) for p in template.parts
        )

    def pieces(self, env: Env, budget: Budget | None = None) -> list[tuple[str, Placeholder | None]]:
        """(text, placeholder or None for literal text), in order."""
        budget = budget if budget is not None else Budget()
        return [(p, None) if isinstance(p, str) else (p[1](env, budget), p[0]) for p in self.parts]

    def render(self, env: Env, budget: Budget | None = None) -> str:
        return "".join(text for text, _ in self.pieces(env, budget))

    def placeholders(self) -> list[tuple[Placeholder, Callable[[Env, Budget], str]]]:
        """Each placeholder with its renderer (for measuring costs)."""
        return [p for p in self.parts if not isinstance(p, str)]
