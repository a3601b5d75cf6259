"""The type checker: the types and bounds it proves, and the warnings it gives."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from theory_testlib import BASE, warnings, with_line

from tui_interp.theory import intervals
from tui_interp.theory.checker import Checker
from tui_interp.theory.domain import IntRange, ListSpec, StrSpec
from tui_interp.theory.expressions import parse_expression
from tui_interp.theory.lexer import ColumnMap
from tui_interp.theory.types import (
    BOOL,
    DIGITS,
    EMPTY,
    ERROR,
    BoolType,
    IntType,
    ListType,
    StrType,
    Type,
    describe,
    join,
)

ENV: dict[str, Type] = {
    "a": IntRange(0, 112).type,
    "b": IntRange(-5, 5).type,
    "s": StrSpec("01", 1, 12).type,
    "xs": ListSpec(IntRange(0, 63), 8, 8).type,
    "flag": BOOL,
}


def type_of(text: str) -> tuple[Type, list[tuple[str, bool]]]:
    reports: list[tuple[str, bool]] = []
    checker = Checker(ENV, lambda span, message, is_error: reports.append((message, is_error)))
    return checker.check(parse_expression(text, ColumnMap(1, 0))), reports


TYPES = [
    ("a", IntType(0, 112)),
    ("a + 1", IntType(1, 113)),
    ("a - b", IntType(-5, 117)),
    ("a * b", IntType(-560, 560)),
    ("(a + a) % 113", IntType(0, 112)),
    ("a % 200", IntType(0, 112)),
    ("a % -7", IntType(-6, 0)),
    ("a // 2", IntType(0, 56)),
    ("-a", IntType(-112, 0)),
    ("~a", IntType(-113, -1)),
    ("abs(b)", IntType(0, 5)),
    ("a ** 2", IntType(0, 12544)),
    ("b ** 3", IntType(-125, 125)),
    ("2 ** 10", IntType(1024, 1024)),
    ("a << 2", IntType(0, 448)),
    ("a >> 3", IntType(0, 14)),
    ("a & 7", IntType(0, 7)),
    ("a | 1", IntType(0, 127)),
    ("len(s)", IntType(1, 12)),
    ("len(xs)", IntType(8, 8)),
    ("sum(xs)", IntType(0, 504)),
    ("sum([flag, flag])", IntType(0, 2)),
    ("min(xs)", IntType(0, 63)),
    ("max(a, b)", IntType(-5, 112)),
    ("count(s, '1')", IntType(0, 13)),
    ("index(xs, 3)", IntType(0, 7)),
    ("ord(s[0])", IntType(48, 49)),
    ("int(flag)", IntType(0, 1)),
    ("int(s)", IntType(0, 999999999999)),
    ("pow(a, b, 7)", IntType(0, 6)),
    ("flag", BOOL),
    ("a < b", BOOL),
    ("not flag and a > 3", BOOL),
    ("any([flag])", BOOL),
    ("s", StrType(1, 12, frozenset("01"))),
    ("s + 'x'", StrType(2, 13, frozenset("01x"))),
    ("s * 2", StrType(2, 24, frozenset("01"))),
    ("s[0]", StrType(1, 1, frozenset("01"))),
    ("s[1:]", StrType(0, 12, frozenset("01"))),
    ("str(a)", StrType(1, 3, DIGITS)),
    ("str(b)", StrType(1, 2, DIGITS)),
    ("str(flag)", StrType(4, 5, frozenset("TrueFals"))),
    ("reversed(s)", StrType(1, 12, frozenset("01"))),
    ("xs", ListType(IntType(0, 63), 8, 8)),
    ("xs[0]", IntType(0, 63)),
    ("xs[1:3]", ListType(IntType(0, 63), 0, 8)),
    ("xs + [a]", ListType(IntType(0, 112), 9, 9)),
    ("[a, b]", ListType(IntType(-5, 112), 2, 2)),
    ("sorted(xs)", ListType(IntType(0, 63), 8, 8)),
    ("list(s)", ListType(StrType(1, 1, frozenset("01")), 1, 12)),
    ("range(a)", ListType(IntType(0, 112), 0, 112)),
    ("range(2, 10, 3)", ListType(IntType(2, 10), 3, 3)),
    ("range(10, 0, -4)", ListType(IntType(0, 10), 3, 3)),
    ("[x * 2 for x in xs]", ListType(IntType(0, 126), 8, 8)),
    ("[x for x in xs if x > 3]", ListType(IntType(0, 63), 0, 8)),
    ("[c for c in s for d in s]", ListType(StrType(1, 1, frozenset("01")), 1, 144)),
    ("a if flag else b", IntType(-5, 112)),
    ("[[1], []]", ListType(ListType(IntType(1, 1), 0, 1), 2, 2)),
    ("[]", ListType(EMPTY, 0, 0)),
    ("[] + xs", ListType(IntType(0, 63), 8, 8)),
    ("join(xs, ',')", StrType(0, 8 * 2 + 7, DIGITS | {","})),
    ("base(a, 2)", StrType(1, 8, frozenset("01-"))),  # 112 has 7 binary digits: the bound is loose by one
    ("base(a, 2, 8)", StrType(1, 8, frozenset("01-"))),
]


@pytest.mark.parametrize("text, expected", TYPES, ids=[t[0] for t in TYPES])
def test_types_and_bounds(text: str, expected: Type) -> None:
    got, reports = type_of(text)
    assert reports == []
    assert got == expected


def test_describe_names_types_plainly() -> None:
    assert [describe(t) for t in (IntType(0, 3), BOOL, StrType(), ListType(ListType(StrType())))] == [
        "int",
        "bool",
        "str",
        "list[list[str]]",
    ]


def test_join_of_types() -> None:
    assert join(IntType(0, 3), IntType(5, 9)) == IntType(0, 9)
    assert join(IntType(0, 3), IntType()) == IntType(None, None)
    assert join(IntType(), StrType()) is None
    assert join(BoolType(), BoolType()) == BOOL
    assert join(ListType(IntType(1, 1), 1, 1), ListType(IntType(2, 2), 3, 3)) == ListType(IntType(1, 2), 1, 3)


def test_errors_silence_follow_on_errors() -> None:
    got, reports = type_of("(c + 1) * 2 + len(c)")
    assert got == ERROR
    assert [m for m, _ in reports] == ["unknown name `c`; the inputs are a, b, s, xs, flag"] * 2


WARNINGS = [
    ("expect a % b", "modulo by zero for inputs where the divisor is 0"),
    ("expect a // (b - 1)", "division by zero for inputs where the divisor is 0"),
    ("expect 2 ** (a * 1000)", "this power may exceed the limit of 4,096 bits for some inputs"),
    ("expect 1 << (a * 1000)", "this shift may exceed the limit of 4,096 bits for some inputs"),
    (
        "expect 2 ** (a - 3)",
        "the exponent (powers with negative exponents are not whole numbers) may be negative for some inputs",
    ),
    ("expect a << (a - 3)", "the shift count may be negative for some inputs"),
    ("expect (a * 10**1230) * (a * 10**1230)", "this int may exceed the limit of 4,096 bits for some inputs"),
    ("expect s * (a * 10000)", "this string may be longer than the limit of 100,000 for some inputs"),
    ("expect xs * (a * 10000)", "this list may be longer than the limit of 100,000 for some inputs"),
    ("expect range(a * 100000)", "range() may have more than 100,000 elements for some inputs"),
    ("expect range(0, 10, a - 3)", "range() step may be 0 for some inputs"),
    ("expect int(s, a)", "int() needs a base from 2 to 36; this one may be outside that range"),
    ("expect base(a, a)", "base() needs a base from 2 to 36; this one may be outside that range"),
    ("expect pow(a, b, a - 3)", "pow() modulus may be 0 for some inputs"),
]


@pytest.mark.parametrize("line, message", WARNINGS, ids=[w[0] for w in WARNINGS])
def test_possible_problems_are_warnings_at_the_expression(line: str, message: str) -> None:
    text = with_line(7, line)
    found = warnings(text)
    assert [d.message for d in found] == [message]
    assert found[0].line == 7 and found[0].col >= 8


def test_no_warnings_on_safe_arithmetic() -> None:
    text = with_line(7, "expect (a * b + len(s)) % 113 + sum(xs) // 8 + b % (a + 1)")
    assert warnings(text) == []
    assert warnings(BASE) == []


# --- interval arithmetic is sound: every result lies within the computed bounds -------------

_BINARY_OPS = {
    "+": (intervals.add, lambda x, y: x + y),
    "-": (intervals.sub, lambda x, y: x - y),
    "*": (intervals.mul, lambda x, y: x * y),
    "//": (intervals.floordiv, lambda x, y: x // y),
    "%": (intervals.mod, lambda x, y: x % y),
    "**": (intervals.power, lambda x, y: x**y),
    "<<": (intervals.lshift, lambda x, y: x << y),
    ">>": (intervals.rshift, lambda x, y: x >> y),
    "&": (lambda a, b: intervals.bitwise("&", a, b), lambda x, y: x & y),
    "|": (lambda a, b: intervals.bitwise("|", a, b), lambda x, y: x | y),
    "^": (lambda a, b: intervals.bitwise("^", a, b), lambda x, y: x ^ y),
}


@st.composite
def interval_and_point(draw: st.DrawFn, lo: int = -60, hi: int = 60) -> tuple[IntType, int]:
    a = draw(st.integers(lo, hi))
    b = draw(st.integers(a, hi))
    return IntType(a, b), draw(st.integers(a, b))


@settings(max_examples=800, deadline=None, database=None)
@given(st.sampled_from(sorted(_BINARY_OPS)), st.data())
def test_interval_arithmetic_is_sound(op: str, data: st.DataObject) -> None:
    a, x = data.draw(interval_and_point())
    b, y = data.draw(interval_and_point(0, 12) if op in ("**", "<<", ">>") else interval_and_point())
    if op in ("//", "%") and y == 0:
        return
    bound, fn = _BINARY_OPS[op]
    result, issues = bound(a, b)
    assert not any(i.certain for i in issues)
    value = fn(x, y)
    assert result.lo is None or result.lo <= value, (op, a, b, x, y, value, result)
    assert result.hi is None or value <= result.hi, (op, a, b, x, y, value, result)


@settings(max_examples=500, deadline=None, database=None)
@given(interval_and_point())
def test_unary_intervals_are_sound(left: tuple[IntType, int]) -> None:
    a, x = left
    for bound, value in ((intervals.neg, -x), (intervals.invert, ~x), (intervals.absolute, abs(x))):
        result, _ = bound(a)
        assert (result.lo is None or result.lo <= value) and (result.hi is None or value <= result.hi)
