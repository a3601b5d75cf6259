"""The type checker: the type of every expression, and nothing about values."""

from __future__ import annotations

import pytest
from theory_testlib import BASE, warnings

from tui_interp.theory.checker import Checker
from tui_interp.theory.domain import IntRange, ListSpec, StrSpec
from tui_interp.theory.expressions import parse_expression
from tui_interp.theory.lexer import ColumnMap
from tui_interp.theory.types import (
    BOOL,
    EMPTY,
    ERROR,
    INT,
    STR,
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


def type_of(text: str) -> tuple[Type, list[str]]:
    reports: list[str] = []
    checker = Checker(ENV, lambda span, message: reports.append(message))
    return checker.check(parse_expression(text, ColumnMap(1, 0))), reports


TYPES = [
    ("a", INT),
    ("a + 1", INT),
    ("a * b", INT),
    ("(a + a) % 113", INT),
    ("~a", INT),
    ("abs(b)", INT),
    ("a ** 2", INT),
    ("len(s)", INT),
    ("sum(xs)", INT),
    ("sum([flag, flag])", INT),
    ("min(xs)", INT),
    ("max(a, b)", INT),
    ("count(s, '1')", INT),
    ("index(xs, 3)", INT),
    ("ord(s[0])", INT),
    ("int(flag)", INT),
    ("int(s)", INT),
    ("pow(a, b, 7)", INT),
    ("flag", BOOL),
    ("a < b", BOOL),
    ("not flag and a > 3", BOOL),
    ("any([flag])", BOOL),
    ("s", STR),
    ("s + 'x'", STR),
    ("s * 2", STR),
    ("2 * s", STR),
    ("s[0]", STR),
    ("s[1:]", STR),
    ("str(a)", STR),
    ("str(flag)", STR),
    ("reversed(s)", STR),
    ("chr(a)", STR),
    ("base(a, 2, 8)", STR),
    ("join(xs, ',')", STR),
    ("xs", ListType(INT)),
    ("xs[0]", INT),
    ("xs[1:3]", ListType(INT)),
    ("xs + [a]", ListType(INT)),
    ("[a, b]", ListType(INT)),
    ("sorted(xs)", ListType(INT)),
    ("list(s)", ListType(STR)),
    ("range(a)", ListType(INT)),
    ("[x * 2 for x in xs]", ListType(INT)),
    ("[x for x in xs if x > 3]", ListType(INT)),
    ("[c for c in s for d in s]", ListType(STR)),
    ("a if flag else b", INT),
    ("[[1], []]", ListType(ListType(INT))),
    ("[]", ListType(EMPTY)),
    ("[] + xs", ListType(INT)),
    ("max([[1], [2, 3]])", ListType(INT)),
]


@pytest.mark.parametrize("text, expected", TYPES, ids=[t[0] for t in TYPES])
def test_types_and_bounds(text: str, expected: Type) -> None:
    got, reports = type_of(text)
    assert reports == []
    assert got == expected


def test_describe_names_types_plainly() -> None:
    assert [describe(t) for t in (INT, BOOL, STR, ListType(ListType(STR)), ListType(EMPTY))] == [
        "int",
        "bool",
        "str",
        "list[list[str]]",
        "list",
    ]


def test_join_of_types() -> None:
    assert join(IntType(), IntType()) == INT
    assert join(IntType(), StrType()) is None
    assert join(BoolType(), BoolType()) == BOOL
    assert join(ListType(EMPTY), ListType(INT)) == ListType(INT)
    assert join(ListType(INT), ListType(STR)) is None
    assert join(ERROR, INT) == ERROR


def test_errors_silence_follow_on_errors() -> None:
    got, reports = type_of("(c + 1) * 2 + len(c)")
    assert got == ERROR
    assert reports == ["unknown name `c`; the inputs are a, b, s, xs, flag"] * 2


def test_value_dependent_problems_are_left_to_the_evaluator() -> None:
    """Division by zero, indices, sizes: the checker repeats no run-time limit, so no warnings."""
    for expr in ("a % b", "a // (b - 1)", "2 ** (a * 1000)", "xs[9]", 's * 10**9', "range(0, 10, a - 3)", "int(s, a)"):
        got, reports = type_of(expr)
        assert reports == [], expr
        assert got in (INT, STR, ListType(INT))
    assert warnings(BASE) == []
