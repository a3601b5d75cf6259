"""Fuzzing the parser, checker and evaluator: never an unhandled exception, never a hang.

Three generators: arbitrary text; grammar-shaped theories built from the language's own
pieces (mostly almost right, which reaches deep into the checker); and character edits of
the shipped examples. For theories that check, evaluation on sampled inputs must either
return a value of the checked type or raise TheoryEvalError:
that ties the checker's claims to what the evaluator does.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from theory_testlib import DATA

from tui_interp.errors import TheoryError
from tui_interp.theory import Diagnostic, TheoryEvalError, check_theory, parse_theory
from tui_interp.theory.functions import FUNCTIONS
from tui_interp.theory.types import BoolType, EmptyType, ErrorType, IntType, ListType, StrType, Type

FUZZ = settings(
    max_examples=250,
    deadline=3000,  # ms per example: a slow example fails the test rather than passing late
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.fixture(autouse=True)
def hard_timeout() -> Iterator[None]:
    """A hang (which a per-example deadline cannot catch) fails the test after 120 s."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError("fuzz test hung")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(120)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def assert_well_formed(text: str, diagnostics: list[Diagnostic]) -> None:
    lines = text.split("\n")
    for d in diagnostics:
        assert d.severity in ("error", "warning")
        assert d.message and "\n" not in d.message
        assert 1 <= d.line <= max(len(lines), 1), d
        line = lines[d.line - 1].rstrip("\r") if lines else ""
        assert 1 <= d.col <= len(line) + 1, (d, line)
        assert d.col < d.end_col <= len(line) + 2, (d, line)


def check_everything(text: str) -> None:
    t0 = time.perf_counter()
    diagnostics = check_theory(text)
    assert_well_formed(text, diagnostics)
    try:
        parse_theory(text)
    except TheoryError as e:
        assert any(d.is_error and (d.line, d.col, d.message) == (e.line, e.col, e.message) for d in diagnostics)
    else:
        assert not any(d.is_error for d in diagnostics)
    assert time.perf_counter() - t0 < 2.0


# --- arbitrary text ----------------------------------------------------------------------------

ALPHABET = st.sampled_from(
    list("abxsy01 9_-+*/%<>=!&|^~()[]{}:,.\"'\\#\n\t\r\x00é€") + ["\ud800", "input ", "expect ", "prompt "]
)


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    check_everything(text)


@FUZZ
@given(st.lists(ALPHABET, max_size=120).map("".join))
def test_arbitrary_text_from_theory_characters(text: str) -> None:
    check_everything(text)


# --- grammar-shaped theories -------------------------------------------------------------------

HEAD = """theory "fuzz"
input a: int in -20..40
input b: int in 0..9
input s: str of "01a" len 0..5
input xs: list[int in 0..63] len 0..6
input flag: bool
"""
NAMES = ["a", "b", "s", "xs", "flag", "c"]
LITERALS = [
    "0",
    "1",
    "2",
    "7",
    "-3",
    "100",
    '"0"',
    '"ab"',
    '""',
    "True",
    "False",
    "[]",
    "[1, 2]",
    "[[1], [2]]",
    "10**10",
    '"x" * 3',
]
BINARY = [
    "+",
    "-",
    "*",
    "//",
    "%",
    "**",
    "<<",
    ">>",
    "&",
    "|",
    "^",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "not in",
    "and",
    "or",
]
FUNCS = sorted(FUNCTIONS) + ["foo"]

atoms = st.sampled_from(NAMES + LITERALS)


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda op, e: f"{op}{e}", st.sampled_from(["-", "not ", "~", "+"]), children),
        st.builds(lambda left, op, right: f"({left} {op} {right})", children, st.sampled_from(BINARY), children),
        st.builds(lambda f, args: f"{f}({', '.join(args)})", st.sampled_from(FUNCS), st.lists(children, max_size=3)),
        st.builds(lambda e, i: f"{e}[{i}]", children, children),
        st.builds(
            lambda e, lo, hi, step: f"{e}[{lo}:{hi}{':' + step if step else ''}]",
            children,
            st.sampled_from(["", "1", "a", "-2"]),
            st.sampled_from(["", "3", "b", "-1"]),
            st.sampled_from(["", "2", "-1", "0"]),
        ),
        st.builds(lambda t, x, y: f"({x} if {t} else {y})", children, children, children),
        st.builds(lambda items: f"[{', '.join(items)}]", st.lists(children, max_size=3)),
        st.builds(
            lambda body, seq, cond: f"[{body} for v in {seq}{' if ' + cond if cond else ''}]",
            st.sampled_from(["v", "v * 2", "v + 1", "str(v)", "[v]"]),
            children,
            st.sampled_from(["", "v > 3", "v == '1'", "v"]),
        ),
    )


expressions = st.recursive(atoms, _extend, max_leaves=10)


@st.composite
def theories(draw: st.DrawFn) -> str:
    lines = [HEAD.rstrip("\n")]
    for _ in range(draw(st.integers(0, 2))):
        lines.append(f"where {draw(expressions)}")
    placeholders = draw(st.lists(expressions, max_size=3))
    template = " ".join("{" + p.replace('"', "'") + "}" for p in placeholders)
    lines.append(f'prompt "{template} ="')
    lines.append(f"expect {draw(expressions)}")
    for i in range(draw(st.integers(0, 2))):
        lines.append(f'slice "s{i}": {draw(expressions)}')
    claim = draw(
        st.sampled_from(
            [
                "",
                "claim needs L0.mlp",
                "claim suffices embed, L0.H0 using resample above 80%",
                'claim attends L0.H1 from "=" to a',
                'claim label L0.H0 "x"',
                "claim needs L9.q below 2",
            ]
        )
    )
    if claim:
        lines.append(claim)
    return "\n".join(lines) + "\n"


def conforms(value: object, t: Type) -> bool:
    """Whether a run-time value has the checked type."""
    if isinstance(t, (ErrorType, EmptyType)):
        return True
    if isinstance(t, BoolType):
        return isinstance(value, bool)
    if isinstance(t, IntType):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(t, StrType):
        return isinstance(value, str)
    if isinstance(t, ListType):
        return isinstance(value, tuple) and all(conforms(v, t.elem) for v in value)
    return False


@FUZZ
@given(theories())
def test_grammar_shaped_theories(text: str) -> None:
    check_everything(text)


# Well-typed expressions (mostly): a generator by type, so that most theories check and the
# evaluator runs on them.
SMALL = st.sampled_from(["0", "1", "2", "3", "-1", "b", "(b % 4)"])


@st.composite
def typed(draw: st.DrawFn, kind: str, depth: int = 3, loop: str | None = None) -> str:
    ints = ["a", "b", "7", "-3", "0", "112"] + ([loop] if loop else [])
    leaves = {
        "int": ints,
        "bool": ["flag", "True", "False"],
        "str": ["s", '"01"', '""', '"a"'],
        "list": ["xs", "[]", "[1, 2, 3]", "[b]"],
    }
    if depth <= 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(leaves[kind]))

    def sub(k: str, lp: str | None = loop) -> str:
        return draw(typed(k, depth - 1, lp))

    def sub_loop(k: str) -> str:
        return draw(typed(k, depth - 1, "v"))

    rule = draw(st.integers(0, 7))
    if kind == "int":
        options = [
            lambda: f"({sub('int')} {draw(st.sampled_from(['+', '-', '*', '//', '%', '&', '|', '^']))} {sub('int')})",
            lambda: f"({sub('int')} ** {draw(SMALL)})",
            lambda: f"({sub('int')} << {draw(SMALL)})",
            lambda: f"({sub('int')} >> {draw(SMALL)})",
            lambda: f"{draw(st.sampled_from(['len', 'sum', 'min', 'max']))}({sub('list')})",
            lambda: f"{draw(st.sampled_from(['-', '~', 'abs']))}({sub('int')})",
            lambda: f"({sub('int')} if {sub('bool')} else {sub('int')})",
            lambda: f"{sub('list')}[{sub('int')}]",
            lambda: f"count({sub('str')}, {sub('str')})",
            lambda: f"int({sub('bool')})",
            lambda: f"pow({sub('int')}, {sub('int')}, {sub('int')})",
            lambda: f"len({sub('str')})",
        ]
    elif kind == "bool":
        options = [
            lambda: f"({sub('int')} {draw(st.sampled_from(['<', '<=', '==', '!=', '>', '>=']))} {sub('int')})",
            lambda: f"({sub('str')} in {sub('str')})",
            lambda: f"({sub('int')} not in {sub('list')})",
            lambda: f"(not {sub('bool')})",
            lambda: f"({sub('bool')} {draw(st.sampled_from(['and', 'or']))} {sub('bool')})",
            lambda: f"any([{draw(typed('bool', depth - 1, 'v'))} for v in {sub('list')}])",
            lambda: f"({sub('list')} == sorted({sub('list')}))",
            lambda: f"({sub('str')} < {sub('str')})",
        ]
    elif kind == "str":
        options = [
            lambda: f"str({sub('int')})",
            lambda: f"({sub('str')} + {sub('str')})",
            lambda: f"({sub('str')} * {draw(SMALL)})",
            lambda: f"{sub('str')}[{draw(SMALL)}:{draw(SMALL)}]",
            lambda: f"base({sub('int')}, {draw(st.sampled_from(['2', '3', '16']))}, {draw(SMALL)})",
            lambda: f'join({sub("list")}, ",")',
            lambda: f"reversed({sub('str')})",
            lambda: f"{sub('str')}[{sub('int')}]",
            lambda: f"str({sub('bool')})",
        ]
    else:
        options = [
            lambda: f"({sub('list')} + {sub('list')})",
            lambda: f"sorted({sub('list')})",
            lambda: f"reversed({sub('list')})",
            lambda: f"range({draw(SMALL)}, {sub('int')})",
            lambda: f"[{draw(typed('int', depth - 1, 'v'))} for v in {sub('list')} if {sub_loop('bool')}]",
            lambda: f"{sub('list')}[{draw(SMALL)}::{draw(st.sampled_from(['1', '2', '-1']))}]",
            lambda: f"({sub('list')} * {draw(SMALL)})",
            lambda: f"[{sub('int')}, {sub('int')}]",
        ]
    return options[rule % len(options)]()


@st.composite
def typed_theories(draw: st.DrawFn) -> str:
    lines = [HEAD.rstrip("\n")]
    if draw(st.booleans()):
        lines.append(f"where {draw(typed('bool', 2))}")
    lines.append('prompt "{' + draw(typed(draw(st.sampled_from(["int", "str", "list"])), 2)).replace('"', "'") + '} ="')
    lines.append(f"expect {draw(typed(draw(st.sampled_from(['int', 'bool', 'str', 'list']))))}")
    lines.append(f"slice {draw(typed('bool', 2))}")
    return "\n".join(lines) + "\n"


@settings(FUZZ, max_examples=120)
@given(typed_theories())
def test_typed_theories_check_cleanly_or_explain(text: str) -> None:
    check_everything(text)


@settings(FUZZ, max_examples=150)
@given(st.one_of(typed_theories(), theories()), st.integers(0, 2**32))
def test_checked_theories_evaluate_to_their_type(text: str, seed: int) -> None:
    try:
        theory = parse_theory(text)
    except TheoryError:
        return
    try:
        inputs = theory.domain.sample(5, seed=seed)
    except TheoryError:  # a where that fails or rejects everything
        return
    for x in inputs:
        try:
            ev = theory.evaluate(x)
        except TheoryEvalError as e:
            assert 1 <= e.line <= text.count("\n") and e.col >= 1
            continue
        assert conforms(ev.expected, theory.expect_type), (ev.expected, theory.expect_type)
        assert isinstance(ev.prompt, str) and isinstance(ev.expected_text, str)
        assert all(isinstance(v, bool) for v in ev.slices)


# --- edits of the shipped examples -------------------------------------------------------------

EXAMPLES = [p.read_text() for p in sorted(DATA.glob("*.theory"))]
EDIT_CHARS = st.sampled_from(list('"{}()[]#\\:,.=+-*/%<>!01aqxL') + ["\n", " ", "\t", "é", "**", "..", "10**10**10"])


@st.composite
def edited_examples(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(EXAMPLES))
    for _ in range(draw(st.integers(1, 4))):
        if not text:
            break
        i = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        if op == "insert":
            text = text[:i] + draw(EDIT_CHARS) + text[i:]
        elif op == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 5)) :]
        else:
            text = text[:i] + draw(EDIT_CHARS) + text[i + 1 :]
    return text


@FUZZ
@given(edited_examples())
def test_edited_examples(text: str) -> None:
    check_everything(text)
