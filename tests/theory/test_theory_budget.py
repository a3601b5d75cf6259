"""Bounded work: every operation charges the step budget for the work it does, before doing it;
the cost estimate; rejected lines that still name their directive; huge integer literals."""

from __future__ import annotations

import time

import pytest
from theory_testlib import BASE, DATA

from tui_interp.errors import TheoryError
from tui_interp.theory import TheoryEvalError, check_theory, load_theory, parse_theory
from tui_interp.theory.limits import COST_SAFETY_FACTOR, MAX_STEPS
from tui_interp.theory.runtime import Budget, size_of, text_size

HEAD = 'theory "budget"\ninput a: int in 0..9\ninput s: str of "ab" len 0..4\nprompt "{a}"\n'
X = {"a": 3, "s": "ab"}
BIG = "[range(100000)] * 1000"  # cheap to build (1,000 references to one list), costly to use

HOSTILE = [
    # (expect expression, what must fail: the marked span)
    (f"len(«sorted({BIG})»)", "sorted: n·log n comparisons of whole lists"),
    (f"«max({BIG})»", "max of a list of lists"),
    (f"len(«min({BIG}, {BIG})»)", "min of several arguments"),
    (f"«count({BIG}, range(3))»", "count in a list of lists"),
    (f"«index({BIG}, [1])»", "index in a list of lists"),
    (f"«[1] in {BIG}»", "`in` scans the list"),
    (f"«{BIG} == {BIG}»", "== compares element by element"),
    (f"«{BIG} < {BIG}»", "< compares element by element"),
    ("len(«[pow(2 ** 4000 + i, 2 ** 4000 + 1, 2 ** 4095 + 3) for i in range(100)]»)", "modular powers of big ints"),
    ("len(«[(2 ** 2000 + i) * (2 ** 2000 + i) for i in range(100000)]»)", "multiplying big ints"),
    ("len(«[(2 ** 4000 + i) // (2 ** 2000 + 1) for i in range(100000)]»)", "dividing big ints"),
    ("len(«[str(2 ** 4000 + i) for i in range(100000)]»)", "rendering big ints"),
    ("len(«[base(2 ** 4000 + i, 3) for i in range(100000)]»)", "digits of big ints"),
    ('len(«[int("1" * 1000) for i in range(100000)]»)', "parsing long strs"),
    ('len(«[join(["ab"] * 50000, "") for i in range(100)]»)', "joining"),
    (f"len(«[len(reversed({BIG})) for i in range(10000)]»)", "reversed in a loop"),
    ("len(«[sum(range(100000)) for i in range(100)]»)", "sum in a loop"),
    ("len(«[[" + ", ".join(["a"] * 1000) + "] for i in range(100000)]»)", "a big loop body"),
]


@pytest.mark.parametrize("marked, what", HOSTILE, ids=[h[1] for h in HOSTILE])
def test_hostile_expressions_fail_fast_on_the_step_budget(marked: str, what: str) -> None:
    expr = marked.replace("«", "").replace("»", "")
    theory = parse_theory(HEAD + f"expect {expr}\n")
    t0 = time.perf_counter()
    with pytest.raises(TheoryEvalError) as info:
        theory.evaluate(X)
    assert time.perf_counter() - t0 < 5.0, what  # a sanity bound: each is well under a second alone
    e = info.value
    assert e.message.startswith(f"evaluation is too long: more than {MAX_STEPS:,} steps"), e.message
    # the innermost expression that crossed the budget: inside the marked one
    start, end = len("expect ") + marked.index("«") + 1, len("expect ") + marked.index("»")
    assert e.line == 5 and start <= e.col < e.end_col <= end, e


def test_the_issue_example() -> None:
    theory = parse_theory(HEAD + "expect len(sorted([range(100000)] * 1000))\n")
    t0 = time.perf_counter()
    with pytest.raises(TheoryEvalError, match="evaluation is too long") as info:
        theory.expected(X)
    assert time.perf_counter() - t0 < 1.0
    assert (info.value.col, info.value.end_col) == (12, 42)  # sorted(...)


def test_rendering_a_huge_value_is_refused_before_it_is_built() -> None:
    theory = parse_theory(HEAD.replace('prompt "{a}"', 'prompt "{[2 ** 4000 + i for i in range(1000)]}"') + "expect a\n")
    with pytest.raises(TheoryEvalError, match=r"string too long: 1,20\d,\d+ elements"):
        theory.render_prompt(X)
    expect = parse_theory(HEAD + 'expect [s * 50000, s * 50000, "x"]\n')
    with pytest.raises(TheoryEvalError, match="string too long: 200,003 elements"):
        expect.evaluate(X)


def test_sizes_are_measured_no_further_than_needed() -> None:
    flat = tuple(range(1000))
    nested = (flat,) * 100
    assert size_of(flat) == 1000 and size_of("abc") == 3 and size_of(7) == 1
    assert size_of(nested) == 100 + 100 * 1000
    assert 1000 < size_of(nested, limit=5000) < 10000  # stopped early
    assert text_size((1, 22, "abc", True)) >= len("1 22 abc True")
    assert text_size(2**4000) >= len(str(2**4000))
    budget = Budget()
    budget.charge_size(nested, times=2)
    assert budget.steps == 2 * size_of(nested)


# --- the step count and the cost estimate ------------------------------------------------------


def test_evaluation_reports_its_steps() -> None:
    theory = load_theory(DATA / "sort.theory")
    x = {"xs": [5, 3, 9, 1, 7, 2, 8, 6]}
    ev = theory.evaluate(x)
    assert ev.steps > 8 * 3  # at least n·log2(n) for the sort
    assert theory.evaluate(x).steps == ev.steps  # deterministic
    cheap = parse_theory(HEAD + "expect a\n").evaluate(X)
    assert 0 < cheap.steps < ev.steps


def test_cost_estimate_names_the_costliest_expression() -> None:
    theory = parse_theory(
        HEAD + "expect a + 1\n" + 'slice "loop": len([i for i in range(1000 * a)]) > 3\nslice a > 1\n'
    )
    estimate = theory.cost_estimate()
    assert estimate.expression == "len([i for i in range(1000 * a)]) > 3"
    assert (estimate.span.line, estimate.span.col) == (6, 15)
    single = max(theory.evaluate({"a": a, "s": ""}).steps for a in range(10))
    assert single <= estimate.steps_per_input <= COST_SAFETY_FACTOR * 2 * single


def test_cost_estimate_counts_where_and_survives_failures() -> None:
    theory = parse_theory(
        'theory "w"\ninput a: int in 0..9\nwhere len([i for i in range(10000)]) > 10 // a\nprompt "{a}"\n'
        "expect 10 // (a - 5)\n"
    )
    estimate = theory.cost_estimate()  # where fails on a=0, expect on a=5: no exception
    assert estimate.expression == "len([i for i in range(10000)]) > 10 // a"
    assert estimate.steps_per_input >= COST_SAFETY_FACTOR * 10000


def test_cost_estimate_of_a_hostile_theory_is_fast_and_over_the_budget() -> None:
    theory = parse_theory(HEAD + "expect len([i for i in range(100000) for j in range(100)])\n")
    t0 = time.perf_counter()
    estimate = theory.cost_estimate()
    assert time.perf_counter() - t0 < 10.0
    assert estimate.steps_per_input >= COST_SAFETY_FACTOR * MAX_STEPS
    assert estimate.expression == "len([i for i in range(100000) for j in range(100)])"


def test_cost_estimate_of_shipped_examples_and_questions() -> None:
    for path in sorted(DATA.glob("*.theory")):
        if path.name != "broken.theory":
            estimate = load_theory(path).cost_estimate()
            assert 0 < estimate.steps_per_input < MAX_STEPS and estimate.expression
    question = parse_theory('theory "q"\ninput a: int in 0..9\nprompt "{a * a}"\n')
    assert question.cost_estimate().expression == "a * a"
    assert parse_theory('theory "c"\nprompt "x"\nexpect 1\n').cost_estimate().expression == "1"


# --- rejected lines keep their directive; huge integers ----------------------------------------


@pytest.mark.parametrize(
    "line, message",
    [
        ("expect " + "a + " * 1100 + "a", "line is too long (4,408 characters; the limit is 4,096)"),
        ("expect a +\x00 b", "NUL character in the file"),
        ('prompt "' + "x" * 5000 + '"', "line is too long (5,009 characters; the limit is 4,096)"),
        ('prompt "{a}\x00"', "NUL character in the file"),
    ],
    ids=["long expect", "NUL in expect", "long prompt", "NUL in prompt"],
)
def test_a_rejected_line_is_the_only_error_and_its_directive_is_not_missing(line: str, message: str) -> None:
    lines = BASE.rstrip("\n").split("\n")
    index = 6 if line.startswith("expect") else 5
    lines[index] = line
    text = "\n".join(lines) + "\n"
    found = check_theory(text)
    assert [(d.line, d.message.split(" (")[0]) for d in found] == [(index + 1, message.split(" (")[0])]
    assert message in found[0].message
    with pytest.raises(TheoryError) as info:
        parse_theory(text)
    assert info.value.line == index + 1


@pytest.mark.parametrize(
    "text, col",
    [
        (HEAD + "expect a + " + "9" * 4000 + "\n", 12),
        (HEAD.replace("0..9", "0.." + "9" * 4000) + "expect a\n", 20),
        (HEAD + 'expect "{a}"\nslice a > ' + "1" * 3000 + "\n", 11),
        (HEAD + "claim attends L0.H0 from " + "9" * 4000 + " to a\n", 1),
    ],
    ids=["literal", "range bound", "slice literal", "claim index"],
)
def test_integers_with_thousands_of_digits_are_one_line_errors(text: str, col: int) -> None:
    if "claim" in text:  # a token index: a number, however long, parses (the engine bounds it)
        assert [d for d in check_theory(text) if d.is_error] == []
        return
    (d,) = [d for d in check_theory(text) if d.is_error]
    assert d.col == col and d.message == "integer literal is too large (ints are limited to 4,096 bits)"
    with pytest.raises(TheoryError, match="integer literal is too large"):
        parse_theory(text)


def test_evaluate_expression_with_a_huge_literal() -> None:
    theory = parse_theory(HEAD + "expect a\n")
    with pytest.raises(TheoryError) as info:
        theory.evaluate_expression("a + " + "7" * 5000, X)
    assert (info.value.line, info.value.col) == (1, 5)
    assert info.value.message == "integer literal is too large (ints are limited to 4,096 bits)"
