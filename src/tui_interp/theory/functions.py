"""The fixed set of functions a theory may call: each with its type rule and implementation.

    len(x)                 length of a str or list
    sum(xs)                sum of a list of ints (or bools: a count)
    min(xs) / min(a, b, ...), max(...)   of ints, strs, or lists of those
    abs(n)                 absolute value
    count(xs, x)           occurrences of x in a list; of a substring in a str
    index(xs, x)           position of the first x (error when absent)
    join(xs, sep)          elements rendered (ints in decimal) and joined by sep
    str(x)                 int, bool or str as text (`str(True)` is "True")
    int(x) / int(s, base)  int from a bool, an int, or a str of digits (base 2..36)
    ord(c) / chr(n)        code point of a one-character str, and back
    base(n, b[, width])    the digits of n in base b (2..36, lowercase), zero-padded to width
    sorted(xs)             a sorted copy of a list
    reversed(x)            a reversed str or list (not an iterator)
    list(x)                the characters of a str, or a copy of a list
    range(stop) / range(start, stop[, step])   a list of ints (at most MAX_LIST_LEN)
    any(xs) / all(xs)      of a list of bools
    pow(a, b[, m])         a ** b, or (a ** b) % m (a negative b with m is a modular inverse)

Only positional arguments; no keyword arguments, no user-defined functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from tui_interp.theory import intervals
from tui_interp.theory.limits import MAX_LIST_LEN, MAX_STR_LEN
from tui_interp.theory.nodes import Span
from tui_interp.theory.render import Value, format_value, render_value
from tui_interp.theory.runtime import Budget, EvalFailure, check_int, check_len, int_pow
from tui_interp.theory.types import (
    BOOL,
    DIGITS,
    EMPTY,
    ERROR,
    BoolType,
    EmptyType,
    ErrorType,
    IntType,
    ListType,
    StrType,
    Type,
    compatible,
    describe,
    digits_len,
    is_orderable,
    is_poison,
    join,
)

_DIGIT_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"
_BOOL_ALPHABET = frozenset("TrueFals")
_MAX_INT_STR = 5000  # longest str int() will parse (longer ones cannot fit MAX_INT_BITS anyway)


@dataclass
class CallCheck:
    """What a function's type rule sees: argument types and spans, and a way to report."""

    name: str
    span: Span
    args: tuple[Type, ...]
    arg_spans: tuple[Span, ...]
    report: Callable[[Span, str, bool], None]
    """report(span, message, certain): certain problems are errors, others warnings."""

    def error(self, i: int | None, message: str) -> Type:
        self.report(self.span if i is None else self.arg_spans[i], message, True)
        return ERROR

    def warn(self, i: int | None, message: str) -> None:
        self.report(self.span if i is None else self.arg_spans[i], message, False)

    def issues(self, found: list[intervals.Issue]) -> None:
        for issue in found:
            self.report(self.span, issue.message, issue.certain)

    def expect_int(self, i: int) -> IntType | None:
        """The i-th argument as an IntType, or None after reporting (or for a poisoned arg)."""
        t = self.args[i]
        if isinstance(t, IntType):
            return t
        if not is_poison(t):
            self.error(i, f"{self.name}() needs an int here, got {describe(t)}")
        return None


@dataclass(frozen=True)
class Function:
    name: str
    min_args: int
    max_args: int
    signature: str
    check: Callable[[CallCheck], Type]
    impl: Callable[..., Value]  # impl(budget, *args)
    doc: str = field(default="")

    def arity_text(self) -> str:
        if self.min_args == self.max_args:
            return f"{self.min_args} argument{'s' if self.min_args != 1 else ''}"
        return f"{self.min_args} to {self.max_args} arguments"


# --- helpers -----------------------------------------------------------------------------------


def _seq(c: CallCheck, i: int, what: str = "a str or a list") -> StrType | ListType | None:
    t = c.args[i]
    if isinstance(t, (StrType, ListType)):
        return t
    if not is_poison(t):
        c.error(i, f"{c.name}() takes {what}, got {describe(t)}")
    return None


def _elem(t: Type) -> Type:
    """The type of one element of a str or list."""
    if isinstance(t, StrType):
        return StrType(1, 1, t.alphabet)
    if isinstance(t, ListType):
        return ERROR if isinstance(t.elem, EmptyType) else t.elem
    return ERROR


def _max_text_len(t: Type) -> int | None:
    if isinstance(t, IntType):
        return digits_len(t)
    if isinstance(t, BoolType):
        return 5
    if isinstance(t, StrType):
        return t.max_len
    if isinstance(t, EmptyType):
        return 0
    return None


def _text_alphabet(t: Type) -> frozenset[str] | None:
    if isinstance(t, IntType):
        return DIGITS
    if isinstance(t, BoolType):
        return _BOOL_ALPHABET
    if isinstance(t, StrType):
        return t.alphabet
    if isinstance(t, EmptyType):
        return frozenset()
    return None


def _scalar_text(value: Value) -> str:
    if isinstance(value, tuple):
        raise EvalFailure("cannot render a nested list")
    return render_value(value)


# --- the functions -----------------------------------------------------------------------------


def _check_len(c: CallCheck) -> Type:
    t = _seq(c, 0)
    if isinstance(t, (StrType, ListType)):
        return IntType(t.min_len, t.max_len)
    return IntType(0, None)


def _len(budget: Budget, x: str | tuple[Value, ...]) -> int:
    return len(x)


def _check_sum(c: CallCheck) -> Type:
    t = c.args[0]
    if is_poison(t):
        return IntType()
    if not isinstance(t, ListType) or not isinstance(t.elem, (IntType, BoolType, EmptyType, ErrorType)):
        return c.error(0, f"sum() takes a list of ints, got {describe(t)}")
    if isinstance(t.elem, EmptyType):
        return IntType(0, 0)
    elem = t.elem if isinstance(t.elem, IntType) else IntType(0, 1)
    if isinstance(elem, ErrorType) or elem.lo is None or elem.hi is None or t.max_len is None:
        return IntType()
    counts = (t.min_len, t.max_len)
    result, issues = intervals.finish(min(n * elem.lo for n in counts), max(n * elem.hi for n in counts))
    c.issues(issues)
    return result


def _sum(budget: Budget, xs: tuple[Value, ...]) -> int:
    budget.charge(len(xs))
    return check_int(sum(cast("tuple[int, ...]", xs)))  # ints or bools, by the checker


def _check_extreme(c: CallCheck) -> Type:
    if len(c.args) == 1:
        t = c.args[0]
        if is_poison(t):
            return ERROR
        if not isinstance(t, ListType):
            hint = "; for several values write min(a, b)" if isinstance(t, IntType) else ""
            return c.error(0, f"{c.name}() of one argument takes a list, got {describe(t)}{hint}")
        if t.max_len == 0:
            return c.error(0, f"{c.name}() of an empty list")
        if not is_orderable(t.elem):
            return c.error(0, f"{c.name}() needs ints, strs or lists of those, got {describe(t)}")
        return _elem(t)
    result: Type = EMPTY
    for i, t in enumerate(c.args):
        if not is_orderable(t):
            return c.error(i, f"{c.name}() needs ints, strs or lists of those, got {describe(t)}")
        joined = join(result, t)
        if joined is None:
            return c.error(i, f"{c.name}() arguments must all have the same type: {describe(result)} and {describe(t)}")
        result = joined
    return result


def _min(budget: Budget, *args: Any) -> Value:
    return _extreme(budget, min, "min", args)


def _max(budget: Budget, *args: Any) -> Value:
    return _extreme(budget, max, "max", args)


def _extreme(budget: Budget, fn: Callable[..., Any], name: str, args: tuple[Any, ...]) -> Value:
    if len(args) == 1:
        (xs,) = args
        if not xs:
            raise EvalFailure(f"{name}() of an empty list")
        budget.charge(len(xs))
        return fn(xs)
    return fn(args)


def _check_abs(c: CallCheck) -> Type:
    t = c.expect_int(0)
    if t is None:
        return IntType(0, None)
    result, issues = intervals.absolute(t)
    c.issues(issues)
    return result


def _abs(budget: Budget, x: int) -> int:
    return check_int(abs(x))


def _check_search(c: CallCheck) -> Type:
    """count(xs, x) and index(xs, x)."""
    hay = _seq(c, 0)
    needle = c.args[1]
    if hay is None or is_poison(needle):
        return IntType(0, None)
    if isinstance(hay, StrType):
        if not isinstance(needle, StrType):
            return c.error(1, f"{c.name}() in a str looks for a str, got {describe(needle)}")
        if hay.max_len is None:
            return IntType(0, None)
        return IntType(0, hay.max_len + 1 if c.name == "count" else hay.max_len)
    if isinstance(hay, ListType) and not compatible(hay.elem, needle):
        return c.error(
            1, f"{c.name}() in a {describe(hay)} needs an element of type {describe(hay.elem)}, got {describe(needle)}"
        )
    top = hay.max_len
    if c.name == "index" and top is not None:
        top = max(top - 1, 0)
    return IntType(0, top)


def _count(budget: Budget, hay: str | tuple[Value, ...], needle: Value) -> int:
    budget.charge(len(hay))
    return hay.count(needle)  # type: ignore[arg-type]  # the checker matched the needle's type


def _index(budget: Budget, hay: str | tuple[Value, ...], needle: Value) -> int:
    budget.charge(len(hay))
    if isinstance(hay, str):
        found = hay.find(needle)  # type: ignore[arg-type]
        if found < 0:
            raise EvalFailure(f"index(): {format_value(needle)} is not in the string {format_value(hay)}")
        return found
    try:
        return hay.index(needle)
    except ValueError:
        raise EvalFailure(f"index(): {format_value(needle)} is not in the list {format_value(hay)}") from None


def _check_join(c: CallCheck) -> Type:
    xs, sep = c.args
    if not isinstance(sep, StrType) and not is_poison(sep):
        c.error(1, f"join() needs a str separator, got {describe(sep)}")
    if is_poison(xs):
        return StrType()
    if not isinstance(xs, ListType):
        return c.error(0, f"join() takes a list, got {describe(xs)}")
    if isinstance(xs.elem, ListType):
        return c.error(0, f"join() takes a list of ints, bools or strs, got {describe(xs)}")
    elem_len = _max_text_len(xs.elem)
    sep_len = sep.max_len if isinstance(sep, StrType) else None
    max_len = None
    if xs.max_len is not None and elem_len is not None and sep_len is not None:
        max_len = xs.max_len * elem_len + max(xs.max_len - 1, 0) * sep_len
    elem_alphabet = _text_alphabet(xs.elem)
    sep_alphabet = sep.alphabet if isinstance(sep, StrType) else None
    alphabet = elem_alphabet | sep_alphabet if elem_alphabet is not None and sep_alphabet is not None else None
    return StrType(0, max_len, alphabet)


def _join(budget: Budget, xs: tuple[Value, ...], sep: str) -> str:
    parts = [_scalar_text(x) for x in xs]
    check_len(budget, sum(len(p) for p in parts) + len(sep) * max(len(parts) - 1, 0), "string")
    return sep.join(parts)


def _check_str(c: CallCheck) -> Type:
    t = c.args[0]
    if isinstance(t, IntType):
        return StrType(1, digits_len(t), DIGITS)
    if isinstance(t, BoolType):
        return StrType(4, 5, _BOOL_ALPHABET)
    if isinstance(t, StrType):
        return t
    if is_poison(t):
        return StrType()
    return c.error(0, f'str() takes an int, bool or str, got {describe(t)}; to turn a list into text use join(xs, " ")')


def _str(budget: Budget, x: Value) -> str:
    return _scalar_text(x)


def _check_int(c: CallCheck) -> Type:
    t = c.args[0]
    if len(c.args) == 2:
        base = c.expect_int(1)
        if base is not None:
            _check_base_range(c, 1, base, "int()")
        if not isinstance(t, StrType) and not is_poison(t):
            return c.error(0, f"int() with a base takes a str, got {describe(t)}")
        return IntType()
    if isinstance(t, IntType):
        return t
    if isinstance(t, BoolType):
        return IntType(0, 1)
    if isinstance(t, StrType):
        if t.max_len is not None and t.alphabet is not None and t.alphabet <= DIGITS and t.max_len <= 1000:
            top = 10**t.max_len - 1
            return IntType(-top if "-" in t.alphabet else 0, top)
        return IntType()
    if is_poison(t):
        return IntType()
    return c.error(0, f"int() takes a str, bool or int, got {describe(t)}")


def _check_base_range(c: CallCheck, i: int, base: IntType, what: str) -> None:
    if (base.hi is not None and base.hi < 2) or (base.lo is not None and base.lo > 36):
        c.error(i, f"{what} needs a base from 2 to 36")
    elif (base.lo is not None and base.lo < 2) or (base.hi is not None and base.hi > 36):
        c.warn(i, f"{what} needs a base from 2 to 36; this one may be outside that range")


def _int(budget: Budget, x: Value, base: int | None = None) -> int:
    if isinstance(x, str):
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
    return int(x)  # type: ignore[arg-type]  # int or bool, by the checker


def _check_ord(c: CallCheck) -> Type:
    t = c.args[0]
    if is_poison(t):
        return IntType(0, 0x10FFFF)
    if not isinstance(t, StrType):
        return c.error(0, f"ord() takes a one-character str, got {describe(t)}")
    if t.min_len > 1 or t.max_len == 0:
        return c.error(0, "ord() takes a single character; this string never has exactly one")
    if t.alphabet:
        codes = [ord(ch) for ch in t.alphabet]
        return IntType(min(codes), max(codes))
    return IntType(0, 0x10FFFF)


def _ord(budget: Budget, s: str) -> int:
    if len(s) != 1:
        raise EvalFailure(f"ord() takes a single character, got a string of length {len(s)}")
    return ord(s)


def _check_chr(c: CallCheck) -> Type:
    t = c.expect_int(0)
    if t is not None and ((t.hi is not None and t.hi < 0) or (t.lo is not None and t.lo > 0x10FFFF)):
        c.error(0, "chr() takes a code point from 0 to 0x10FFFF")
    return StrType(1, 1)


def _chr(budget: Budget, n: int) -> str:
    if not 0 <= n <= 0x10FFFF or 0xD800 <= n <= 0xDFFF:
        raise EvalFailure(f"chr(): {n} is not a valid character code")
    return chr(n)


def _check_base(c: CallCheck) -> Type:
    n = c.expect_int(0)
    b = c.expect_int(1)
    width = c.expect_int(2) if len(c.args) == 3 else IntType(0, 0)
    if b is not None:
        _check_base_range(c, 1, b, "base()")
    if width is not None and width.lo is not None and width.lo > MAX_STR_LEN:
        c.error(2, f"base() width is larger than the string limit of {MAX_STR_LEN:,}")
    max_len = None
    if n is not None and n.lo is not None and n.hi is not None and b is not None and b.lo is not None and b.lo >= 2:
        biggest = max(abs(n.lo), abs(n.hi))
        digits = max(1, math.ceil((biggest.bit_length() + 1) / math.log2(b.lo)))
        if width is not None and width.hi is not None:
            max_len = max(digits + (n.lo < 0), width.hi)
    top = b.hi if b is not None and b.hi is not None and 2 <= b.hi <= 36 else 36
    return StrType(1, max_len, frozenset(_DIGIT_CHARS[:top]) | {"-"})


def _base(budget: Budget, n: int, b: int, width: int = 0) -> str:
    if not 2 <= b <= 36:
        raise EvalFailure(f"base() needs a base from 2 to 36, got {b}")
    if width > MAX_STR_LEN:
        raise EvalFailure(f"base() width {width:,} is larger than the string limit of {MAX_STR_LEN:,}")
    digits = _digits(abs(n), b)
    budget.charge(len(digits) + max(width, 0))
    sign = "-" if n < 0 else ""
    return sign + digits.rjust(max(width - len(sign), 0), "0")


def _digits(n: int, b: int) -> str:
    if b == 10:
        return str(n)
    if b in (2, 8, 16):
        return format(n, {2: "b", 8: "o", 16: "x"}[b])
    out = []
    while True:
        n, r = divmod(n, b)
        out.append(_DIGIT_CHARS[r])
        if n == 0:
            return "".join(reversed(out))


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


def _sorted(budget: Budget, xs: tuple[Value, ...]) -> tuple[Value, ...]:
    budget.charge(len(xs))
    return tuple(sorted(xs))


def _check_same_seq(c: CallCheck) -> Type:
    t = _seq(c, 0)
    return t if t is not None else ERROR


def _reversed(budget: Budget, x: str | tuple[Value, ...]) -> str | tuple[Value, ...]:
    budget.charge(len(x))
    return x[::-1]


def _check_list(c: CallCheck) -> Type:
    t = _seq(c, 0)
    if isinstance(t, StrType):
        return ListType(StrType(1, 1, t.alphabet), t.min_len, t.max_len)
    return t if t is not None else ERROR


def _list(budget: Budget, x: str | tuple[Value, ...]) -> tuple[Value, ...]:
    budget.charge(len(x))
    return tuple(x)


def _check_range(c: CallCheck) -> Type:
    ints = [c.expect_int(i) for i in range(len(c.args))]
    if any(t is None for t in ints):
        return ListType(IntType())
    bounds: list[IntType] = [t for t in ints if t is not None]
    if len(bounds) == 1:
        start, stop, step = IntType(0, 0), bounds[0], IntType(1, 1)
    else:
        start, stop = bounds[0], bounds[1]
        step = bounds[2] if len(bounds) == 3 else IntType(1, 1)
    if step.lo == 0 and step.hi == 0:
        return c.error(2, "range() step cannot be 0")
    if step.lo is not None and step.hi is not None and step.lo <= 0 <= step.hi:
        c.warn(2, "range() step may be 0 for some inputs")
    lengths = _range_lengths(start, stop, step)
    lo_elem = None if start.lo is None or stop.lo is None else min(start.lo, stop.lo)
    hi_elem = None if start.hi is None or stop.hi is None else max(start.hi, stop.hi)
    if lengths is None:
        return ListType(IntType(lo_elem, hi_elem))
    min_len, max_len = lengths
    if min_len > MAX_LIST_LEN:
        return c.error(None, f"range() would have {min_len:,} elements (lists are limited to {MAX_LIST_LEN:,})")
    if max_len is not None and max_len > MAX_LIST_LEN:
        c.warn(None, f"range() may have more than {MAX_LIST_LEN:,} elements for some inputs")
        max_len = None
    return ListType(IntType(lo_elem, hi_elem), min_len, max_len)


def _range_lengths(start: IntType, stop: IntType, step: IntType) -> tuple[int, int | None] | None:
    """(min, max) number of elements, when the step's sign is known."""
    if step.lo is not None and step.lo > 0:
        lo = _count_range(start.hi, stop.lo, step.hi) if step.hi is not None else 0
        hi = _count_range(start.lo, stop.hi, step.lo)
        return lo or 0, hi
    if step.hi is not None and step.hi < 0:
        lo = _count_range(stop.hi, start.lo, -step.lo) if step.lo is not None else 0
        hi = _count_range(stop.lo, start.hi, -step.hi)
        return lo or 0, hi
    return None


def _count_range(start: int | None, stop: int | None, step: int) -> int | None:
    """len(range(start, stop, step)) for step > 0, or None when a bound is unknown."""
    if start is None or stop is None:
        return None
    return max(0, -((start - stop) // step))


def _range(budget: Budget, *args: int) -> tuple[Value, ...]:
    if len(args) == 1:
        start, stop, step = 0, args[0], 1
    else:
        start, stop = args[0], args[1]
        step = args[2] if len(args) == 3 else 1
    if step == 0:
        raise EvalFailure("range() step cannot be 0")
    length = _count_range(start, stop, step) if step > 0 else _count_range(stop, start, -step)
    check_len(budget, length or 0, "list")
    return tuple(range(start, stop, step))


def _check_bools(c: CallCheck) -> Type:
    t = c.args[0]
    if is_poison(t) or (isinstance(t, ListType) and isinstance(t.elem, (BoolType, EmptyType, ErrorType))):
        return BOOL
    hint = " (compare the elements, e.g. [x > 0 for x in xs])" if isinstance(t, ListType) else ""
    return c.error(0, f"{c.name}() takes a list of bools, got {describe(t)}{hint}")


def _any(budget: Budget, xs: tuple[Value, ...]) -> bool:
    budget.charge(len(xs))
    return any(xs)


def _all(budget: Budget, xs: tuple[Value, ...]) -> bool:
    budget.charge(len(xs))
    return all(xs)


def _check_pow(c: CallCheck) -> Type:
    ints = [c.expect_int(i) for i in range(len(c.args))]
    if len(c.args) == 2:
        if ints[0] is None or ints[1] is None:
            return IntType()
        result, issues = intervals.power(ints[0], ints[1])
        c.issues(issues)
        return result
    m = ints[2]
    if m is None:
        return IntType()
    if m.lo == 0 and m.hi == 0:
        return c.error(2, "pow() modulus cannot be 0")
    if m.lo is not None and m.hi is not None:
        if m.lo <= 0 <= m.hi:
            c.warn(2, "pow() modulus may be 0 for some inputs")
        return IntType(min(m.lo + 1, 0), max(m.hi - 1, 0))
    return IntType()


def _pow(budget: Budget, a: int, b: int, m: int | None = None) -> int:
    if m is None:
        return int_pow(a, b)
    if m == 0:
        raise EvalFailure("pow() modulus cannot be 0")
    budget.charge(b.bit_length())
    try:
        return pow(a, b, m)
    except ValueError:
        raise EvalFailure(f"pow(): {a} has no inverse modulo {m}") from None


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function("len", 1, 1, "len(x: str | list) -> int", _check_len, _len),
        Function("sum", 1, 1, "sum(xs: list[int]) -> int", _check_sum, _sum),
        Function("min", 1, 64, "min(xs: list) / min(a, b, ...)", _check_extreme, _min),
        Function("max", 1, 64, "max(xs: list) / max(a, b, ...)", _check_extreme, _max),
        Function("abs", 1, 1, "abs(n: int) -> int", _check_abs, _abs),
        Function("count", 2, 2, "count(xs: list | str, x) -> int", _check_search, _count),
        Function("index", 2, 2, "index(xs: list | str, x) -> int", _check_search, _index),
        Function("join", 2, 2, "join(xs: list, sep: str) -> str", _check_join, _join),
        Function("str", 1, 1, "str(x: int | bool | str) -> str", _check_str, _str),
        Function("int", 1, 2, "int(x: str | bool | int[, base: int]) -> int", _check_int, _int),
        Function("ord", 1, 1, "ord(c: str) -> int", _check_ord, _ord),
        Function("chr", 1, 1, "chr(n: int) -> str", _check_chr, _chr),
        Function("base", 2, 3, "base(n: int, b: int[, width: int]) -> str", _check_base, _base),
        Function("sorted", 1, 1, "sorted(xs: list) -> list", _check_sorted, _sorted),
        Function("reversed", 1, 1, "reversed(x: str | list) -> str | list", _check_same_seq, _reversed),
        Function("list", 1, 1, "list(x: str | list) -> list", _check_list, _list),
        Function("range", 1, 3, "range([start,] stop[, step]) -> list[int]", _check_range, _range),
        Function("any", 1, 1, "any(xs: list[bool]) -> bool", _check_bools, _any),
        Function("all", 1, 1, "all(xs: list[bool]) -> bool", _check_bools, _all),
        Function("pow", 2, 3, "pow(a: int, b: int[, m: int]) -> int", _check_pow, _pow),
    )
}
"""Every function a theory may call, by name."""
