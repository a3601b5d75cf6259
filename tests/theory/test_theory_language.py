"""Every construct of the expression language and every function, evaluated on one input."""

from __future__ import annotations

import pytest

from tui_interp.errors import TheoryError
from tui_interp.theory import Value, parse_theory

HEAD = """theory "constructs"
input a: int in -20..20
input b: int in 1..9
input s: str of "01ab" len 0..6
input xs: list[int in 0..63] len 8
input flag: bool
input grid: list[list[int in 0..3] len 2] len 2
prompt "{a}"
"""
X = {"a": 7, "b": 3, "s": "0110", "xs": [5, 3, 9, 1, 7, 2, 8, 6], "flag": True, "grid": [[1, 2], [3, 0]]}


THEORY = parse_theory(HEAD + "expect a\n")


def value(expr: str, x: dict | None = None) -> Value:
    """The value of an expression on x, through `expect` when it renders, else directly."""
    try:
        theory = parse_theory(HEAD + f"expect {expr}\n")
    except TheoryError as e:
        if "cannot turn" not in e.message:
            raise
        return THEORY.evaluate_expression(expr, x or X)
    assert theory.warnings == (), theory.warnings
    return theory.expected(x or X)


CASES: list[tuple[str, Value]] = [
    # literals and names
    ("42", 42),
    ("0x1f + 0b101 + 0o7 + 1_000", 31 + 5 + 7 + 1000),
    ('"text"', "text"),
    ("'single'", "single"),
    ('"tab\\tquote\\"nl\\n\\x41\\u00e9\\U0001F600"', 'tab\tquote"nl\nA\u00e9\U0001f600'),
    ("True", True),
    ("False", False),
    ("a", 7),
    ("flag", True),
    ("[1, 2, 3]", (1, 2, 3)),
    ("(1, 2)", (1, 2)),
    ("[]", ()),
    ("[[1], [2, 3]]", ((1,), (2, 3))),
    ("grid", ((1, 2), (3, 0))),
    ('"a" "b"', "ab"),
    # arithmetic (Python semantics: floor division and modulo follow the divisor's sign)
    ("a + b", 10),
    ("a - b", 4),
    ("a * b", 21),
    ("a // b", 2),
    ("-a // b", -3),
    ("a % b", 1),
    ("-a % b", 2),
    ("a % -b", -2),
    ("a ** b", 343),
    ("2 ** 100", 2**100),
    ("(-2) ** 3", -8),
    ("a << b", 56),
    ("a >> 1", 3),
    ("a & b", 3),
    ("a | b", 7),
    ("a ^ b", 4),
    ("~a", -8),
    ("-a", -7),
    ("+a", 7),
    ("a + b * 2 ** 2 - 1", 18),
    ("(a + b) % 113", 10),
    # strings and lists
    ('s + "x"', "0110x"),
    ("s * 2", "01100110"),
    ("2 * s", "01100110"),
    ("s * -1", ""),
    ("xs + [0]", (5, 3, 9, 1, 7, 2, 8, 6, 0)),
    ("[0] * 3", (0, 0, 0)),
    ("s[0]", "0"),
    ("s[-1]", "0"),
    ("xs[2]", 9),
    ("xs[-1]", 6),
    ("grid[1][0]", 3),
    ("s[1:3]", "11"),
    ("s[::-1]", "0110"),
    ("xs[1:7:2]", (3, 1, 2)),
    ("xs[:3]", (5, 3, 9)),
    ("xs[5:]", (2, 8, 6)),
    ("xs[10:]", ()),
    ("xs[::-3]", (6, 7, 3)),
    # comparisons and logic
    ("a == 7", True),
    ("a != 7", False),
    ("a < b", False),
    ("a > b", True),
    ("a <= 7", True),
    ("a >= 8", False),
    ("0 < b < a < 10", True),
    ("0 < a < b", False),
    ('"01" in s', True),
    ('"00" not in s', True),
    ("9 in xs", True),
    ("4 not in xs", True),
    ('s < "1"', True),
    ("xs < [5, 4]", True),
    ("[1, 2] == [1, 2]", True),
    ("grid == [[1, 2], [3, 0]]", True),
    ("[] == []", True),
    ("flag and a > 0", True),
    ("flag and a < 0", False),
    ("not flag or a > 0", True),
    ("not flag", False),
    ("a > 100 or b > 100 or s == '0110'", True),
    ("a if flag else b", 7),
    ("a if not flag else b", 3),
    ("'big' if a > 5 else 'small'", "big"),
    # comprehensions
    ("[x * 2 for x in xs]", (10, 6, 18, 2, 14, 4, 16, 12)),
    ("[x for x in xs if x % 2 == 0]", (2, 8, 6)),
    ("[x for x in xs if x > 2 if x < 8]", (5, 3, 7, 6)),
    ("[c for c in s]", ("0", "1", "1", "0")),
    ("[i * j for i in range(3) for j in range(i)]", (0, 0, 2)),
    ("[[x for x in row if x > 0] for row in grid]", ((1, 2), (3,))),
    ("sum(x for x in xs)", 41),
    ("any(x > 8 for x in xs)", True),
    ("all(x > 1 for x in xs)", False),
    ("[x for x in []]", ()),
    ("[y + 1 for x in xs for y in [x]]", (6, 4, 10, 2, 8, 3, 9, 7)),
    # functions
    ("len(s)", 4),
    ("len(xs)", 8),
    ("len([])", 0),
    ("sum(xs)", 41),
    ("sum([])", 0),
    ("sum([True, False, True])", 2),
    ("min(xs)", 1),
    ("max(xs)", 9),
    ("min(a, b)", 3),
    ("max(a, b, 10)", 10),
    ('min("b", "ab")', "ab"),
    ("max(grid)", (3, 0)),
    ("abs(-a)", 7),
    ("abs(a - 10)", 3),
    ('count(s, "1")', 2),
    ('count(s, "")', 5),
    ("count(xs, 9)", 1),
    ("count(grid, [1, 2])", 1),
    ("index(xs, 9)", 2),
    ('index(s, "1")', 1),
    ('index(s, "10")', 2),
    ('join(xs, ",")', "5,3,9,1,7,2,8,6"),
    ('join(list(s), "-")', "0-1-1-0"),
    ('join([True, False], " ")', "True False"),
    ('join([], ",")', ""),
    ("str(a)", "7"),
    ("str(-a)", "-7"),
    ("str(flag)", "True"),
    ("str(s)", "0110"),
    ('int("42")', 42),
    ('int(" -42 ")', -42),
    ("int(s, 2)", 6),
    ('int("ff", 16)', 255),
    ("int(flag)", 1),
    ("int(a)", 7),
    ('ord("A")', 65),
    ("chr(65 + a)", "H"),
    ("base(a, 2)", "111"),
    ("base(a, 2, 8)", "00000111"),
    ("base(-a, 2, 5)", "-0111"),
    ("base(255, 16)", "ff"),
    ("base(35, 36)", "z"),
    ("base(100, 3)", "10201"),
    ("base(0, 7)", "0"),
    ("sorted(xs)", (1, 2, 3, 5, 6, 7, 8, 9)),
    ("sorted(list(s))", ("0", "0", "1", "1")),
    ("reversed(xs)", (6, 8, 2, 7, 1, 9, 3, 5)),
    ("reversed(s)", "0110"),
    ('reversed("abc")', "cba"),
    ("list(s)", ("0", "1", "1", "0")),
    ("list(xs) == xs", True),
    ("range(4)", (0, 1, 2, 3)),
    ("range(2, 5)", (2, 3, 4)),
    ("range(10, 0, -4)", (10, 6, 2)),
    ("range(-3)", ()),
    ("any([])", False),
    ("all([])", True),
    ("any([x == 9 for x in xs])", True),
    ("pow(a, b)", 343),
    ("pow(a, b, 5)", 3),
    ("pow(3, -1, 7)", 5),
]


@pytest.mark.parametrize("expr, expected", CASES, ids=[c[0] for c in CASES])
def test_construct(expr: str, expected: Value) -> None:
    got = value(expr)
    assert got == expected
    assert type(got) is type(expected)


def test_bool_results_stay_bools_and_ints_stay_ints() -> None:
    assert value("a > 1") is True
    assert type(value("sum([True, True])")) is int
    assert type(value("int(flag)")) is int


def test_same_python_semantics_over_a_range_of_inputs() -> None:
    """Arithmetic agrees with Python on every a, b in the domain."""
    theory = parse_theory(HEAD + "expect [a // b, a % b, a ** 2, a * b - a, -a >> 1, a & 5, a | b, a ^ b]\n")
    for a in range(-20, 21):
        for b in range(1, 10):
            x = dict(X, a=a, b=b)
            assert theory.expected(x) == (a // b, a % b, a**2, a * b - a, -a >> 1, a & 5, a | b, a ^ b)


def test_and_or_short_circuit_guards_errors() -> None:
    theory = parse_theory(HEAD + "where b == 3\nexpect len(s) > 0 and s[0] == '0' or len(s) == 0\n")
    assert theory.expected(dict(X, s="")) is True
    assert theory.expected(dict(X, s="10")) is False
    guarded = parse_theory(HEAD + "expect a > 0 and xs[a] > 0 if a < 8 else False\n")
    assert guarded.expected(dict(X, a=-3)) is False


def test_if_else_evaluates_only_the_branch_taken() -> None:
    theory = parse_theory(HEAD + "expect xs[a] if a < 8 and a >= 0 else -1\n")
    assert theory.expected(dict(X, a=20)) == -1
    assert theory.expected(dict(X, a=2)) == 9


def test_comprehension_variables_do_not_leak_and_may_shadow_each_other() -> None:
    expr = "[[x for x in range(x)] for x in range(3)]"
    assert THEORY.evaluate_expression(expr, X) == ((), (0,), (0, 1))
    # the environment is untouched afterwards: a second evaluation is identical
    assert THEORY.evaluate_expression(expr, X) == ((), (0,), (0, 1))


def test_evaluate_expression_checks_before_running() -> None:
    with pytest.raises(TheoryError) as info:
        THEORY.evaluate_expression('a + "x"', X)
    assert (info.value.line, info.value.col, info.value.end_col) == (1, 1, 8)
    with pytest.raises(TheoryError) as info:
        THEORY.evaluate_expression("a +", X)
    assert info.value.message == "incomplete expression"


def test_inputs_may_be_given_as_lists_or_tuples() -> None:
    theory = parse_theory(HEAD + "expect xs\n")
    assert theory.expected(dict(X, xs=tuple(X["xs"]))) == tuple(X["xs"])
    assert theory.expected(dict(X, grid=((1, 2), (3, 0)))) == theory.expected(X)
