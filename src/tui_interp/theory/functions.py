"""The fixed set of functions a theory may call, each with its type rule and implementation.

The table at the bottom is the whole list (LANGUAGE.md describes each). Only positional
arguments; no keyword arguments, no user-defined functions. A type rule sees the argument
types and reports what can never work; an implementation gets the evaluation's Budget first
and raises EvalFailure for what fails on these values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from tui_interp.theory.limits import MAX_INT_BITS, MAX_STR_LEN
from tui_interp.theory.nodes import Span
from tui_interp.theory.render import Value, format_value, render_value
from tui_interp.theory.runtime import Budget, EvalFailure, check_int, check_len, int_mod_pow, int_pow, render, text_size
from tui_interp.theory.types import (
    BOOL,
    EMPTY,
    ERROR,
    INT,
    STR,
    BoolType,
    EmptyType,
    ErrorType,
    IntType,
    ListType,
    StrType,
    Type,
    compatible,
    describe,
    is_orderable,
    is_poison,
    join,
)

_DIGIT_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"
_MAX_INT_STR = MAX_INT_BITS + 64  # longest str int() parses: a longer one cannot fit MAX_INT_BITS


@dataclass
class CallCheck:
    """What a function's type rule sees: argument types and spans, and a way to report."""

    name: str
    span: Span
    args: tuple[Type, ...]
    arg_spans: tuple[Span, ...]
    report: Callable[[Span, str], None]

    def error(self, i: int, message: str) -> Type:
        self.report(self.arg_spans[i], message)
        return ERROR

    def ints(self, *positions: int) -> None:
        """Report every argument at these positions that is not an int."""
        for i in positions[: len(self.args)]:
            t = self.args[i]
            if not isinstance(t, IntType) and not is_poison(t):
                self.error(i, f"{self.name}() needs an int here, got {describe(t)}")

    def seq(self, i: int, what: str = "a str or a list") -> StrType | ListType | None:
        t = self.args[i]
        if isinstance(t, (StrType, ListType)):
            return t
        if not is_poison(t):
            self.error(i, f"{self.name}() takes {what}, got {describe(t)}")
        return None


@dataclass(frozen=True)
class Function:
    name: str
    min_args: int
    max_args: int
    check: Callable[[CallCheck], Type]
    impl: Callable[..., Value]  # impl(budget, *args)

    def arity_text(self) -> str:
        if self.min_args == self.max_args:
            return f"{self.min_args} argument{'s' if self.min_args != 1 else ''}"
        return f"{self.min_args} to {self.max_args} arguments"


# --- type rules --------------------------------------------------------------------------------


def _returns(t: Type, *int_args: int) -> Callable[[CallCheck], Type]:
    """A rule for functions of ints (at these positions) returning t."""

    def check(c: CallCheck) -> Type:
        c.ints(*int_args)
        return t

    return check


def _check_len(c: CallCheck) -> Type:
    c.seq(0)
    return INT


def _check_sum(c: CallCheck) -> Type:
    t = c.args[0]
    if not is_poison(t) and not (
        isinstance(t, ListType) and isinstance(t.elem, (IntType, BoolType, EmptyType, ErrorType))
    ):
        return c.error(0, f"sum() takes a list of ints, got {describe(t)}")
    return INT


def _check_extreme(c: CallCheck) -> Type:
    if len(c.args) == 1:
        t = c.args[0]
        if is_poison(t):
            return ERROR
        if not isinstance(t, ListType):
            hint = "; for several values write min(a, b)" if isinstance(t, IntType) else ""
            return c.error(0, f"{c.name}() of one argument takes a list, got {describe(t)}{hint}")
        if isinstance(t.elem, EmptyType):
            return c.error(0, f"{c.name}() of an empty list")
        if not is_orderable(t.elem):
            return c.error(0, f"{c.name}() needs ints, strs or lists of those, got {describe(t)}")
        return t.elem
    result: Type = EMPTY
    for i, t in enumerate(c.args):
        if not is_orderable(t):
            return c.error(i, f"{c.name}() needs ints, strs or lists of those, got {describe(t)}")
        joined = join(result, t)
        if joined is None:
            return c.error(i, f"{c.name}() arguments must all have the same type: {describe(result)} and {describe(t)}")
        result = joined
    return result


def _check_search(c: CallCheck) -> Type:
    """count(xs, x) and index(xs, x)."""
    hay = c.seq(0)
    needle = c.args[1]
    if hay is None or is_poison(needle):
        return INT
    if isinstance(hay, StrType) and not isinstance(needle, StrType):
        return c.error(1, f"{c.name}() in a str looks for a str, got {describe(needle)}")
    if isinstance(hay, ListType) and not compatible(hay.elem, needle):
        return c.error(
            1, f"{c.name}() in a {describe(hay)} needs an element of type {describe(hay.elem)}, got {describe(needle)}"
        )
    return INT


def _check_join(c: CallCheck) -> Type:
    xs, sep = c.args
    if not isinstance(sep, StrType) and not is_poison(sep):
        c.error(1, f"join() needs a str separator, got {describe(sep)}")
    if is_poison(xs):
        return STR
    if not isinstance(xs, ListType):
        return c.error(0, f"join() takes a list, got {describe(xs)}")
    if isinstance(xs.elem, ListType):
        return c.error(0, f"join() takes a list of ints, bools or strs, got {describe(xs)}")
    return STR


def _check_str(c: CallCheck) -> Type:
    t = c.args[0]
    if isinstance(t, (IntType, BoolType, StrType)) or is_poison(t):
        return STR
    return c.error(0, f'str() takes an int, bool or str, got {describe(t)}; to turn a list into text use join(xs, " ")')


def _check_int(c: CallCheck) -> Type:
    t = c.args[0]
    if len(c.args) == 2:
        c.ints(1)
        if not isinstance(t, StrType) and not is_poison(t):
            return c.error(0, f"int() with a base takes a str, got {describe(t)}")
    elif not isinstance(t, (StrType, BoolType, IntType)) and not is_poison(t):
        return c.error(0, f"int() takes a str, bool or int, got {describe(t)}")
    return INT


def _check_ord(c: CallCheck) -> Type:
    t = c.args[0]
    if not isinstance(t, StrType) and not is_poison(t):
        return c.error(0, f"ord() takes a one-character str, got {describe(t)}")
    return INT


def _check_sorted(c: CallCheck) -> Type:
    t = c.args[0]
    if is_poison(t):
        return ERROR
    if isinstance(t, StrType):
        return c.error(
            0, 'sorted() takes a list; for the characters of a string use sorted(list(s)), then join(..., "")'
        )
    if not isinstance(t, ListType) or not is_orderable(t.elem):
        return c.error(0, f"sorted() takes a list of ints, strs or lists of those, got {describe(t)}")
    return t


def _check_same_seq(c: CallCheck) -> Type:
    t = c.seq(0)
    return t if t is not None else ERROR


def _check_list(c: CallCheck) -> Type:
    t = c.seq(0)
    if isinstance(t, StrType):
        return ListType(STR)
    return t if t is not None else ERROR


def _check_bools(c: CallCheck) -> Type:
    t = c.args[0]
    if is_poison(t) or (isinstance(t, ListType) and isinstance(t.elem, (BoolType, EmptyType, ErrorType))):
        return BOOL
    hint = " (compare the elements, e.g. [x > 0 for x in xs])" if isinstance(t, ListType) else ""
    return c.error(0, f"{c.name}() takes a list of bools, got {describe(t)}{hint}")


# --- implementations ---------------------------------------------------------------------------


def _len(budget: Budget, x: str | tuple[Value, ...]) -> int:
    return len(x)


def _sum(budget: Budget, xs: tuple[Value, ...]) -> int:
    budget.charge(len(xs))
    return check_int(sum(cast("tuple[int, ...]", xs)))  # ints or bools, by the checker


def _extreme(fn: Callable[..., Any], name: str) -> Callable[..., Value]:
    """min/max: every element compared with the best so far, each comparison costing its size."""

    def impl(budget: Budget, *args: Any) -> Value:
        xs = args[0] if len(args) == 1 else args
        if not xs:
            raise EvalFailure(f"{name}() of an empty list")
        budget.charge_size(xs)
        return cast("Value", fn(xs))

    return impl


def _abs(budget: Budget, x: int) -> int:
    return check_int(abs(x))


def _charge_search(budget: Budget, hay: str | tuple[Value, ...], needle: Value) -> None:
    """A substring search reads both strs; a list search compares the needle with each element."""
    budget.charge(len(hay) + len(needle) if isinstance(hay, str) else 0)  # type: ignore[arg-type]
    if isinstance(hay, tuple):
        budget.charge_size(hay)


def _count(budget: Budget, hay: str | tuple[Value, ...], needle: Value) -> int:
    _charge_search(budget, hay, needle)
    return hay.count(needle)  # type: ignore[arg-type]  # the checker matched the needle's type


def _index(budget: Budget, hay: str | tuple[Value, ...], needle: Value) -> int:
    _charge_search(budget, hay, needle)
    try:
        return hay.index(needle)  # type: ignore[arg-type]  # the checker matched the needle's type
    except ValueError:
        what = "string" if isinstance(hay, str) else "list"
        raise EvalFailure(f"index(): {format_value(needle)} is not in the {what} {format_value(hay)}") from None


def _join(budget: Budget, xs: tuple[Value, ...], sep: str) -> str:
    budget.charge(len(xs))
    check_len(budget, sum(text_size(x) for x in xs) + len(sep) * max(len(xs) - 1, 0), "string")
    return sep.join(x if isinstance(x, str) else render_value(x) for x in xs)  # checked and charged above


def _str(budget: Budget, x: Value) -> str:
    return render(budget, x)


def _int(budget: Budget, x: Value, base: int | None = None) -> int:
    if not isinstance(x, str):
        return int(x)  # type: ignore[arg-type]  # int or bool, by the checker
    budget.charge(len(x))
    if base is not None and not 2 <= base <= 36:
        raise EvalFailure(f"int() base must be from 2 to 36, got {base}")
    if len(x) > _MAX_INT_STR:
        raise EvalFailure(f"int(): the string is too long to convert ({len(x):,} characters)")
    try:
        return check_int(int(x, base if base is not None else 10))
    except ValueError:
        where = f" in base {base}" if base is not None else ""
        raise EvalFailure(f"int(): {format_value(x)} is not a whole number{where}") from None


def _ord(budget: Budget, s: str) -> int:
    if len(s) != 1:
        raise EvalFailure(f"ord() takes a single character, got a string of length {len(s)}")
    return ord(s)


def _chr(budget: Budget, n: int) -> str:
    if not 0 <= n <= 0x10FFFF or 0xD800 <= n <= 0xDFFF:
        raise EvalFailure(f"chr(): {n} is not a valid character code")
    return chr(n)


def _base(budget: Budget, n: int, b: int, width: int = 0) -> str:
    if not 2 <= b <= 36:
        raise EvalFailure(f"base() needs a base from 2 to 36, got {b}")
    if width > MAX_STR_LEN:
        raise EvalFailure(f"base() width {width:,} is larger than the string limit of {MAX_STR_LEN:,}")
    check_len(budget, max(n.bit_length() // (b.bit_length() - 1) + 2, width), "string")  # before the digits
    digits = _digits(abs(n), b)
    sign = "-" if n < 0 else ""
    return sign + digits.rjust(max(width - len(sign), 0), "0")


def _digits(n: int, b: int) -> str:
    if b in (2, 8, 10, 16):
        return format(n, {2: "b", 8: "o", 10: "d", 16: "x"}[b])
    out = []
    while True:
        n, r = divmod(n, b)
        out.append(_DIGIT_CHARS[r])
        if n == 0:
            return "".join(reversed(out))


def _sorted(budget: Budget, xs: tuple[Value, ...]) -> tuple[Value, ...]:
    """About n·log2(n) comparisons: each element is compared log2(n) times, at its size."""
    budget.charge(len(xs))
    budget.charge_size(xs, max(1, len(xs).bit_length()))
    return tuple(sorted(xs))  # type: ignore[type-var]  # orderable, by the checker


def _reversed(budget: Budget, x: str | tuple[Value, ...]) -> str | tuple[Value, ...]:
    budget.charge(len(x))
    return x[::-1]


def _list(budget: Budget, x: str | tuple[Value, ...]) -> tuple[Value, ...]:
    budget.charge(len(x))
    return tuple(x)


def _range(budget: Budget, *args: int) -> tuple[Value, ...]:
    start, stop, step = (0, args[0], 1) if len(args) == 1 else (args[0], args[1], args[2] if len(args) == 3 else 1)
    if step == 0:
        raise EvalFailure("range() step cannot be 0")
    length = max(0, -((start - stop) // step)) if step > 0 else max(0, -((stop - start) // -step))
    check_len(budget, length, "list")
    return tuple(range(start, stop, step))


def _any(budget: Budget, xs: tuple[Value, ...]) -> bool:
    budget.charge(len(xs))
    return any(xs)


def _all(budget: Budget, xs: tuple[Value, ...]) -> bool:
    budget.charge(len(xs))
    return all(xs)


def _pow(budget: Budget, a: int, b: int, m: int | None = None) -> int:
    return int_pow(budget, a, b) if m is None else int_mod_pow(budget, a, b, m)


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function("len", 1, 1, _check_len, _len),
        Function("sum", 1, 1, _check_sum, _sum),
        Function("min", 1, 64, _check_extreme, _extreme(min, "min")),
        Function("max", 1, 64, _check_extreme, _extreme(max, "max")),
        Function("abs", 1, 1, _returns(INT, 0), _abs),
        Function("count", 2, 2, _check_search, _count),
        Function("index", 2, 2, _check_search, _index),
        Function("join", 2, 2, _check_join, _join),
        Function("str", 1, 1, _check_str, _str),
        Function("int", 1, 2, _check_int, _int),
        Function("ord", 1, 1, _check_ord, _ord),
        Function("chr", 1, 1, _returns(STR, 0), _chr),
        Function("base", 2, 3, _returns(STR, 0, 1, 2), _base),
        Function("sorted", 1, 1, _check_sorted, _sorted),
        Function("reversed", 1, 1, _check_same_seq, _reversed),
        Function("list", 1, 1, _check_list, _list),
        Function("range", 1, 3, _returns(ListType(INT), 0, 1, 2), _range),
        Function("any", 1, 1, _check_bools, _any),
        Function("all", 1, 1, _check_bools, _all),
        Function("pow", 2, 3, _returns(INT, 0, 1, 2), _pow),
    )
}
"""Every function a theory may call, by name."""
