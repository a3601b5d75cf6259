"""Rule recovery (engine/recover.py): the enumerator on synthetic answer tables with known
rules (ints, bools, strs, lists; several sizes; noise), its budget, cancellation and progress;
every candidate re-checked here through the theory machinery."""

from __future__ import annotations

import logging
import pickle
import random
from pathlib import Path

import pytest

from tui_interp.engine.answers import Cancelled
from tui_interp.engine.recover import (
    AnswerTable,
    Grammar,
    RecoverResult,
    SearchBudget,
    SearchProgress,
    iter_search,
    search_rules,
    with_expect,
)
from tui_interp.errors import InputError
from tui_interp.theory import Theory, parse_theory

ROOT = Path(__file__).resolve().parents[2]
INTS = 'theory "ints"\ninput a: int in 0..20\ninput b: int in 0..20\nprompt "{a} {b} ="\n'
STRS = 'theory "bits"\ninput s: str of "01" len 1..6\nprompt "{s} ="\n'
LISTS = 'theory "lists"\ninput xs: list[int in 0..9] len 1..3\nprompt "{xs} >"\n'
SOURCES = {"ints": INTS, "strs": STRS, "lists": LISTS}


def answers_of(source: str, rule: str) -> tuple[Theory, list[dict], list[str]]:
    """The question, its inputs, and the answers the rule gives (rendered by the theory)."""
    theory = parse_theory(source)
    truth = parse_theory(with_expect(source, rule))
    inputs = list(theory.domain.select().inputs)
    return theory, inputs, [truth.render_expected(x) for x in inputs]


def renders(source: str, expr: str, inputs: list[dict], path: object = None) -> list[str]:
    """What the theory machinery renders for `expect expr` on each input."""
    theory = parse_theory(with_expect(source, expr), path)
    return [theory.render_expected(x) for x in inputs]


def search(source: str, rule: str, *, max_size: int = 7, seconds: float = 20.0, **kw: object) -> tuple[RecoverResult, list[dict], list[str]]:
    theory, inputs, answers = answers_of(source, rule)
    table = AnswerTable.from_answers(theory, inputs, answers, description="the domain")
    result = search_rules(table, Grammar.for_theory(theory, table, max_size=max_size), SearchBudget(seconds=seconds), **kw)
    return result, inputs, answers


def recheck(source: str, result: RecoverResult, inputs: list[dict], answers: list[str]) -> None:
    """Every candidate parses in the question, and its agreement is what the theory evaluator says."""
    for c in result.candidates:
        got = renders(source, c.expect, inputs)
        assert c.n_agree == sum(g == a for g, a in zip(got, answers, strict=True))
        assert c.agreement == pytest.approx(c.n_agree / len(inputs))


@pytest.mark.parametrize(
    ("kind", "rule", "size"),
    [
        ("ints", "a + b", 3),
        ("ints", "a * b", 3),
        ("ints", "max(a, b)", 4),
        ("ints", "a // 3", 3),
        ("ints", "(a + b) % 7", 5),
        ("ints", "a * a + b", 5),
        ("ints", "a - b if a > b else b - a", 4),  # abs(a - b): the smaller expression of the same function
        ("ints", "(a - b) % 17", 5),  # 17 is no grammar constant: the answers' range gives it (0..16 -> 17)
        ("ints", "a < b", 3),  # bools render True/False
        ("ints", "a % 3 == 0", 5),
        ("strs", 'count(s, "1") % 2', 5),
        ("strs", "s[::-1]", 2),  # found as reversed(s)
        ("strs", "s[0]", 3),
        ("strs", "len(s)", 2),
        ("strs", "int(s, 2)", 3),
        ("strs", 's + "0"', 3),
        ("lists", "sorted(xs)", 2),
        ("lists", "max(xs)", 2),
        ("lists", "xs[-1]", 4),
        ("lists", "sum(xs) % 10", 5),
        ("lists", "xs[1:]", 4),
        ("lists", 'join(xs, "")', 4),
        ("lists", "count(xs, max(xs))", 4),
        ("lists", "[x * 2 for x in xs]", 5),
        ("lists", "sum([x > 3 for x in xs])", 6),
        ("lists", "[x for x in xs if x > 3]", 6),
    ],
)
def test_known_rules_are_recovered_first(kind: str, rule: str, size: int, caplog: pytest.LogCaptureFixture) -> None:
    source = SOURCES[kind]
    caplog.set_level(logging.WARNING, logger="tui_interp.engine.recover")
    result, inputs, answers = search(source, rule)
    best = result.best
    assert best is not None and best.agreement == 1.0 and result.explained
    assert renders(source, best.expect, inputs) == answers  # equal to the rule on every input
    assert best.size <= size
    assert result.stopped == "exact" and result.rejected == 0
    recheck(source, result, inputs, answers)
    assert not caplog.records  # no candidate failed the check, no size disagreed with the parser's


def test_noise_leaves_the_rule_first_and_explained() -> None:
    theory, inputs, answers = answers_of(INTS, "(a + b) % 7")
    rng = random.Random(0)
    noisy = list(answers)
    flipped = rng.sample(range(len(noisy)), k=len(noisy) * 3 // 100)
    for i in flipped:
        noisy[i] = str((int(noisy[i]) + 1) % 7)
    table = AnswerTable.from_answers(theory, inputs, noisy)
    result = search_rules(table, Grammar.for_theory(theory, table, max_size=5), SearchBudget(seconds=20))
    best = result.best
    assert best is not None and renders(INTS, best.expect, inputs) == answers
    assert best.n_agree == len(inputs) - len(flipped)
    assert result.explained and result.stopped == "max-size" and result.complete_size == 5
    recheck(INTS, result, inputs, noisy)
    strict = search_rules(table, Grammar.for_theory(theory, table, max_size=5), SearchBudget(seconds=20), min_agreement=0.99)
    assert not strict.explained and strict.best is not None and strict.best.expect == best.expect


def test_random_answers_are_not_explained() -> None:
    theory, inputs, _ = answers_of(INTS, "a")
    rng = random.Random(1)
    table = AnswerTable.from_answers(theory, inputs, [str(rng.randrange(21)) for _ in inputs])
    result = search_rules(table, Grammar.for_theory(theory, table, max_size=4), SearchBudget(seconds=20))
    assert not result.explained and result.best is not None and result.best.agreement < 0.2
    assert result.stopped == "max-size" and "up to size 4" in result.stop_note


def test_str_answers_from_few_texts() -> None:
    result, inputs, answers = search(INTS, '"big" if a > 10 else "small"')
    assert result.best is not None and renders(INTS, result.best.expect, inputs) == answers


def test_candidates_are_distinct_behaviours_best_first() -> None:
    result, inputs, answers = search(INTS, "(a + b) % 7")
    texts = [tuple(renders(INTS, c.expect, inputs)) for c in result.candidates]
    assert len(set(texts)) == len(texts) == 5
    keys = [(-c.n_agree, c.size) for c in result.candidates]
    assert keys == sorted(keys)
    assert result.theory is not None and "expect (a + b) % 7" in result.theory
    assert parse_theory(result.theory).expect.source == "(a + b) % 7"


def test_slices_and_splits_are_reported(tmp_path) -> None:  # noqa: ANN001
    (tmp_path / "train.jsonl").write_text("".join(f'{{"a": {a}, "b": 0, "answer": "{a}"}}\n' for a in range(21)))
    source = INTS + 'slice "wraps": a + b >= 7\nsplit train from "train.jsonl"\n'
    theory = parse_theory(source, tmp_path / "q.theory")
    truth = parse_theory(with_expect(source, "(a + b) % 7"), tmp_path / "q.theory")
    inputs = list(theory.domain.select().inputs)
    table = AnswerTable.from_answers(theory, inputs, [truth.render_expected(x) for x in inputs])
    result = search_rules(table, Grammar.for_theory(theory, table), SearchBudget(seconds=20), top=2)
    assert [c.expect for c in result.candidates][:1] == ["(a + b) % 7"]
    second = {s.name: s for s in result.candidates[1].slices}
    assert set(second) == {"wraps", "not (wraps)", "train", "not train"}
    assert second["train"].n == 21 and second["not train"].n == len(inputs) - 21
    wraps = [x for x in inputs if x["a"] + x["b"] >= 7]
    assert second["wraps"].n == len(wraps)
    got = renders(source, result.candidates[1].expect, wraps, tmp_path / "q.theory")
    assert second["wraps"].agreement == pytest.approx(sum(g == str((x["a"] + x["b"]) % 7) for g, x in zip(got, wraps, strict=True)) / len(wraps))


def test_from_split_recovers_the_train_answers_without_a_model() -> None:
    from tui_interp.theory import load_theory

    theory = load_theory(ROOT / "sample_models" / "modadd-grokked" / "modadd.question")
    table = AnswerTable.from_split(theory, "train")
    assert table.n_counted == 3831 and "train" in table.description
    result = search_rules(table, Grammar.for_theory(theory, table), SearchBudget(seconds=20))
    assert result.best is not None and result.best.expect == "(a + b) % 113" and result.best.agreement == 1.0
    with pytest.raises(InputError, match="no split 'test'"):
        AnswerTable.from_split(theory, "test")


def test_subset_and_pickle() -> None:
    theory, inputs, answers = answers_of(INTS, "a * b")
    table = AnswerTable.from_answers(theory, inputs, answers)
    half = table.subset(range(0, len(inputs), 2))
    assert half.n_counted == (len(inputs) + 1) // 2
    grammar = Grammar.for_theory(theory, half)
    shipped_table, shipped_grammar = pickle.loads(pickle.dumps((half, grammar)))
    a = search_rules(half, grammar, SearchBudget(seconds=20))
    b = search_rules(shipped_table, shipped_grammar, SearchBudget(seconds=20))
    assert [c.expect for c in a.candidates] == [c.expect for c in b.candidates] and a.best.expect == "a * b"


def test_expression_budget_time_budget_cancel_and_progress() -> None:
    theory, inputs, _ = answers_of(INTS, "a")
    rng = random.Random(2)
    table = AnswerTable.from_answers(theory, inputs, [str(rng.randrange(1000)) for _ in inputs])
    grammar = Grammar.for_theory(theory, table, max_size=9)
    result = search_rules(table, grammar, SearchBudget(seconds=30, expressions=300))
    assert result.stopped == "expressions" and result.searched == 300 and "expression budget (300)" in result.stop_note
    events: list[SearchProgress] = []
    timed = search_rules(table, grammar, SearchBudget(seconds=0.3), progress=events.append)
    assert timed.stopped == "time" and "time budget (0.3 s) ran out" in timed.stop_note
    assert timed.search_seconds < 3.0
    assert events and events[-1].tried >= events[0].tried and any(e.best is not None for e in events)
    with pytest.raises(Cancelled):
        search_rules(table, grammar, SearchBudget(seconds=30), cancel=lambda: True)
    final = list(iter_search(table, grammar, SearchBudget(seconds=30, expressions=200)))
    assert isinstance(final[-1], RecoverResult) and all(isinstance(e, SearchProgress) for e in final[:-1])


def test_bad_input() -> None:
    theory, inputs, answers = answers_of(INTS, "a")
    table = AnswerTable.from_answers(theory, inputs, answers)
    with pytest.raises(InputError):
        SearchBudget(seconds=0)
    with pytest.raises(InputError):
        Grammar.for_theory(theory, table, max_size=0)
    with pytest.raises(InputError):
        search_rules(table, Grammar.for_theory(theory, table), top=0)
    with pytest.raises(InputError):
        AnswerTable.from_answers(theory, inputs, answers[:-1])
    nobody = AnswerTable.from_answers(theory, inputs, answers, counted=[False] * len(inputs))
    with pytest.raises(InputError, match="no row"):
        search_rules(nobody, Grammar.for_theory(theory, nobody))


def test_with_expect_replaces_or_inserts() -> None:
    assert with_expect(INTS, "a").splitlines()[-1] == "expect a"
    question = INTS.replace('prompt "{a} {b} ="\n', 'prompt "{a} {b} ="\nexpect ?\nslice a > 3\n')
    out = with_expect(question, "a + b", "recovered")
    assert "expect ?" not in out and out.splitlines()[4] == "expect a + b    # recovered"
    full = INTS + "expect a - b   # old\n# expect this comment stays\n"
    out = with_expect(full, "b")
    assert "expect a - b" not in out and "expect b" in out and "# expect this comment stays" in out
    assert parse_theory(out).expect.source == "b"
