"""Run-time failures and limits: a TheoryEvalError at the failing expression, never a hang."""

from __future__ import annotations

import time

import pytest

from tui_interp.errors import InputError, TheoryError
from tui_interp.theory import TheoryEvalError, check_theory, parse_theory
from tui_interp.theory.limits import MAX_INT_BITS, MAX_STEPS, MAX_STR_LEN

HEAD = """theory "runtime"
input a: int in 0..9
input s: str of "01x" len 0..4
input xs: list[int in 0..63] len 0..8
prompt "{a}"
"""
X = {"a": 9, "s": "0x1", "xs": [1, 2, 3]}


def failure(expect: str, x: dict | None = None) -> TheoryEvalError:
    theory = parse_theory(HEAD + f"expect {expect}\n")
    with pytest.raises(TheoryEvalError) as info:
        theory.expected(x or X)
    return info.value


RUNTIME = [
    # (expect expression with the failing span marked, message, input overrides)
    ("«xs[a]»", "index 9 is out of range for a list of length 3", {}),
    ("«s[a]»", "index 9 is out of range for a string of length 3", {}),
    ("«a // (a - 9)»", "division by zero", {}),
    ("«a % (a - 9)»", "modulo by zero", {}),
    ("«min([x for x in xs if x > 100])»", "min() of an empty list", {}),
    ("«max(xs)»", "max() of an empty list", {"xs": []}),
    ("«int(s)»", 'int(): "0x1" is not a whole number', {}),
    ("«int(s, 2)»", 'int(): "0x1" is not a whole number in base 2', {}),
    ("«index(xs, 7)»", "index(): 7 is not in the list [1, 2, 3]", {}),
    ('«index(s, "11")»', 'index(): "11" is not in the string "0x1"', {}),
    ("«pow(a, -1, 3)»", "pow(): 9 has no inverse modulo 3", {}),
    ("«chr(55296 + a)»", "chr(): 55305 is not a valid character code", {}),
    ("«ord(s)»", "ord() takes a single character, got a string of length 3", {}),
    ("«range(0, 5, a - 9)»", "range() step cannot be 0", {}),
    ("«xs[::a - 9]»", "slice step cannot be 0", {}),
    ("«base(a, a)»", "base() needs a base from 2 to 36, got 1", {"a": 1}),
    ("«int(s, a)»", "int() base must be from 2 to 36, got 1", {"a": 1}),
    ("«2 ** (a * 1000)»", f"int too large: 9,001 bits (ints are limited to {MAX_INT_BITS:,} bits)", {}),
    ("«1 << (a * 1000)»", "int too large: 9,001 bits", {}),
    ("«(2 ** 4000) * (2 ** (a * 20))»", "int too large: 4,181 bits", {}),
    ("«s * (a * 100000)»", f"string too long: 2,700,000 elements (the limit is {MAX_STR_LEN:,})", {}),
    ("«xs * (a * 100000)»", "list too long: 2,700,000 elements", {}),
    ("«range(a * 100000)»", "list too long: 900,000 elements", {}),
    ('«join([s * 30000 for i in range(a)], "")»', "string too long: 810,000 elements", {}),
]


@pytest.mark.parametrize("marked, message, overrides", RUNTIME, ids=[c[0] for c in RUNTIME])
def test_runtime_error_points_at_the_failing_expression(marked: str, message: str, overrides: dict) -> None:
    expr = marked.replace("«", "").replace("»", "")
    col = len("expect ") + marked.index("«") + 1
    end_col = len("expect ") + marked.index("»")
    x = dict(X, **overrides)
    e = failure(expr, x)
    assert (e.line, e.col, e.end_col) == (6, col, end_col), e
    assert e.message.startswith(message), e.message
    assert e.input == {k: tuple(v) if isinstance(v, list) else v for k, v in x.items()}
    assert "(input: a=" in e.message


def test_the_innermost_failing_expression_is_reported() -> None:
    e = failure("len(s) + xs[a] * 2")
    assert (e.col, e.end_col) == (len("expect len(s) + ") + 1, len("expect len(s) + xs[a]") + 1)


def test_step_limit_stops_long_loops_quickly() -> None:
    theory = parse_theory(HEAD + "expect len([i for i in range(100000) for j in range(a * 3)])\n")
    t0 = time.perf_counter()
    with pytest.raises(TheoryEvalError) as info:
        theory.expected(X)
    assert time.perf_counter() - t0 < 10
    assert f"more than {MAX_STEPS:,} steps" in info.value.message
    # the same theory is fine where the loop is short
    assert theory.expected(dict(X, a=0)) == 0


def test_comparisons_of_big_values_count_as_work() -> None:
    theory = parse_theory(HEAD + "expect len([1 for i in range(100000) if [0] * 50000 == [0] * (50000 + a)])\n")
    t0 = time.perf_counter()
    with pytest.raises(TheoryEvalError) as info:
        theory.expected(X)
    assert time.perf_counter() - t0 < 10
    assert "steps" in info.value.message


@pytest.mark.parametrize(
    "expect",
    [
        "10**10**10",
        "10**10**10**10",
        "(10**1000)**(10**1000)",
        '"x" * 10**9',
        '"x" * 10**10**10',
        "[0] * 10**9",
        "range(10**9)",
        "len(range(10**18))",
        "1 << 10**9",
        "pow(10, 10**9)",
        "[i for i in range(100000) for j in range(100000)]",
        "sum(range(10**100))",
    ],
)
def test_huge_work_checks_and_is_refused_fast_at_run_time(expect: str) -> None:
    assert [d for d in check_theory(HEAD + f"expect {expect}\n") if d.is_error] == []
    theory = parse_theory(HEAD + f"expect {expect}\n")
    t0 = time.perf_counter()
    with pytest.raises(TheoryEvalError) as info:
        theory.expected(X)
    assert time.perf_counter() - t0 < 5.0  # a sanity bound: the loops stop at the step budget
    assert info.value.line == 6


@pytest.mark.parametrize(
    "expect, message",
    [
        ("2 ** (a * 1000)", "int too large"),
        ("10 ** (10 ** a)", "int too large"),
        ('"x" * (10 ** a)', "string too long"),
        ("range(10 ** a)", "list too long"),
        ("1 << (10 ** a)", "int too large"),
        ("pow(2, 10 ** a)", "int too large"),
    ],
)
def test_possible_overflow_is_a_fast_runtime_error(expect: str, message: str) -> None:
    theory = parse_theory(HEAD + f"expect {expect}\n")
    assert theory.warnings == ()  # the checker repeats no run-time limit
    t0 = time.perf_counter()
    with pytest.raises(TheoryEvalError) as info:
        theory.expected(X)
    assert time.perf_counter() - t0 < 0.5
    assert message in info.value.message


def test_a_where_that_fails_names_the_input() -> None:
    theory = parse_theory('theory "w"\ninput a: int in 0..9\nwhere 10 // a > 1\nprompt "{a}"\nexpect a\n')
    with pytest.raises(TheoryEvalError) as info:
        list(theory.domain.enumerate())
    e = info.value
    assert e.message == "`where` failed: division by zero (input: a=0)"
    assert (e.line, e.col, e.end_col) == (3, 7, 14)
    assert e.input is not None and e.input["a"] == 0


def test_a_slice_that_fails_names_the_slice() -> None:
    theory = parse_theory(HEAD + 'expect a\nslice "first": xs[0] > 1\n')
    with pytest.raises(TheoryEvalError) as info:
        theory.evaluate(dict(X, xs=[]))
    assert "index 0 is out of range for a list of length 0" in info.value.message
    (s,) = theory.slices
    with pytest.raises(TheoryEvalError) as info:
        s.predicate(dict(X, xs=[]))
    assert info.value.message.startswith("slice 'first' failed: index 0 is out of range")


def test_a_prompt_placeholder_that_fails() -> None:
    theory = parse_theory(HEAD.replace('prompt "{a}"', 'prompt "{xs[a]} ="') + "expect a\n")
    with pytest.raises(TheoryEvalError) as info:
        theory.render_prompt(X)
    assert (info.value.line, info.value.col, info.value.end_col) == (5, 10, 15)


def test_malformed_inputs_are_input_errors() -> None:
    theory = parse_theory(HEAD + "expect a\n")
    with pytest.raises(InputError, match="missing input 's'"):
        theory.expected({"a": 1, "xs": []})
    with pytest.raises(InputError, match="unknown input 'q'"):
        theory.expected(dict(X, q=1))
    with pytest.raises(InputError, match="input 'a': expected an int, got str"):
        theory.expected(dict(X, a="1"))
    with pytest.raises(InputError, match="input 'a': expected an int, got bool"):
        theory.expected(dict(X, a=True))
    with pytest.raises(InputError, match="input 'xs': expected a list, got str"):
        theory.expected(dict(X, xs="12"))
    with pytest.raises(InputError, match="input 'xs': expected an int, got str"):
        theory.expected(dict(X, xs=[1, "2"]))
    with pytest.raises(InputError, match="an input is a mapping"):
        theory.expected([1, 2])  # type: ignore[arg-type]


def test_inputs_outside_the_domain_still_evaluate_within_limits() -> None:
    theory = parse_theory(HEAD + "expect a * a\n")
    assert theory.expected(dict(X, a=1000)) == 1000000
    with pytest.raises(TheoryEvalError, match="int too large"):
        parse_theory(HEAD + "expect a ** a\n").expected(dict(X, a=10**6))


def test_theory_eval_error_is_a_theory_error() -> None:
    assert issubclass(TheoryEvalError, TheoryError)
