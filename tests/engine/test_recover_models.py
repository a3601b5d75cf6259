"""Rule recovery on the shipped models and through the CLI: the grokked modadd model's rule comes
first and equals (a + b) % 113 on the whole domain; the memorising one is not explained; the
generalising sorting model sorts; the induction model copies (a string task with a `where`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tui_interp.cli import app
from tui_interp.engine.recover import RecoverResult, SearchProgress, iter_recover, recover, with_expect
from tui_interp.model import load_model
from tui_interp.theory import load_theory, parse_theory

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "sample_models"
GROKKED = MODELS / "modadd-grokked"
MEMORIZED = MODELS / "modadd-memorized"
SORTING_QUESTION = MODELS / "sorting-memorised" / "sorting.question"
INDUCTION_QUESTION = """theory "induction (question)"
input s: str of "abcdefghijklmnopqrstuvwxyz" len 6
where all(count(s, c) == 1 for c in s)
prompt "{join(list(s), ' ')} {join(list(s[:5]), ' ')}"
"""
runner = CliRunner()


def equal_on(question_path: Path, expect: str, rule: str, inputs: list[dict]) -> bool:
    """Whether two expects render the same answer on every one of these inputs (the theory evaluator decides)."""
    source = question_path.read_text()
    a = parse_theory(with_expect(source, expect), question_path)
    b = parse_theory(with_expect(source, rule), question_path)
    return all(a.render_expected(x) == b.render_expected(x) for x in inputs)


@pytest.fixture(scope="module")
def grokked() -> RecoverResult:
    return recover(load_model(GROKKED, device="cpu"), load_theory(GROKKED / "modadd.question"), seconds=30)


def test_grokked_modadd_recovers_its_rule_first(grokked: RecoverResult) -> None:
    best = grokked.best
    assert grokked.explained and best is not None and best.agreement == 1.0 and best.size == 5
    domain = list(load_theory(GROKKED / "modadd.question").domain.select().inputs)
    assert len(domain) == grokked.n_rows == 12769
    assert equal_on(GROKKED / "modadd.question", best.expect, "(a + b) % 113", domain)
    assert grokked.stopped == "exact" and grokked.search_seconds < 10
    assert {s.name: s.agreement for s in best.slices} == {"train": 1.0, "not train": 1.0}
    theory = parse_theory(grokked.theory, GROKKED / "modadd.question")  # ready to save: parses, has the expect
    assert theory.expect is not None and theory.expect.source == best.expect
    assert grokked.model_name == "modadd-grokked" and grokked.question == "modadd (question)"


def test_memorized_modadd_is_not_explained() -> None:
    lm = load_model(MEMORIZED, device="cpu")
    result = recover(lm, load_theory(MEMORIZED / "modadd.question"), seconds=60, max_size=5)  # all of sizes 1..5: a few seconds
    assert not result.explained and result.best is not None and result.best.agreement < 0.95
    slices = {s.name: s.agreement for s in result.best.slices}
    assert slices["train"] == 1.0 and slices["not train"] < 0.5  # it fits what it was trained on, and only that


def test_sorting_generalising_sorts() -> None:
    lm = load_model(MODELS / "sorting-generalising", device="cpu")
    question = load_theory(SORTING_QUESTION)
    events = list(iter_recover(lm, question, sample=200, seconds=20))
    result = events[-1]
    assert isinstance(result, RecoverResult) and result.explained and result.best is not None
    assert any(isinstance(e, SearchProgress) for e in events)
    sample = list(question.domain.select(limit=200).inputs)
    assert equal_on(SORTING_QUESTION, result.best.expect, "sorted(xs)", sample)
    assert result.best.agreement >= 0.99
    assert any("sample of 200" in n for n in result.notes)
    train = {s.name: s for s in result.best.slices}["train"]
    assert train.n == 64  # the split's inputs were added to measure it, outside the sample


def test_induction_copies_the_letter_after_the_earlier_occurrence(tmp_path: Path) -> None:
    path = tmp_path / "induction.question"
    path.write_text(INDUCTION_QUESTION)
    question = load_theory(path)
    result = recover(load_model(MODELS / "induction-2l", device="cpu"), question, sample=300, seconds=20)
    assert result.explained and result.best is not None and result.best.agreement == 1.0
    assert equal_on(path, result.best.expect, "s[5]", list(question.domain.select(limit=300).inputs))


def test_cli_json_explained_and_saved(tmp_path: Path) -> None:
    saved = tmp_path / "modadd.theory"
    t0 = time.perf_counter()
    out = runner.invoke(app, ["recover", str(GROKKED), str(GROKKED / "modadd.question"), "--json", "--top", "3", "--save", str(saved)])
    assert out.exit_code == 0, out.output
    assert time.perf_counter() - t0 < 30
    doc = json.loads(out.stdout)
    assert doc["explained"] is True and doc["searched"] > 0 and doc["seconds"] > 0
    assert len(doc["candidates"]) == 3
    first = doc["candidates"][0]
    assert set(first) >= {"expect", "agreement", "size", "slices"} and first["agreement"] == 1.0
    assert [s["name"] for s in first["slices"]] == ["train", "not train"]
    assert saved.read_text() == doc["theory"] and f"expect {first['expect']}" in doc["theory"]


def test_cli_not_explained_and_full_theory_and_bad_input() -> None:
    out = runner.invoke(app, ["recover", str(MEMORIZED), str(MEMORIZED / "modadd.theory"), "--budget", "60", "--max-size", "5", "--top", "2"])
    assert out.exit_code == 1, out.output
    text = " ".join(out.stdout.split())
    assert "NOT EXPLAINED" in text and "expect (a + b) % 113` was ignored" in text
    assert "fits split 'train' (100.00%) but not the rest" in text
    missing = runner.invoke(app, ["recover", str(GROKKED), str(GROKKED / "nope.question")])
    assert missing.exit_code == 2
    bad = runner.invoke(app, ["recover", str(GROKKED), str(GROKKED / "modadd.question"), "--top", "0"])
    assert bad.exit_code == 2


@pytest.mark.slow
def test_parity_trained_here_is_explained_by_a_parity_rule(tmp_path: Path) -> None:
    """`tui-interp train parity` (6 bits, 3/4 of the strings; about a minute), then recover on
    the question it writes: the best rule is the parity of the count (of ones, or of zeros: for
    6 bits the same), and it agrees at least as well as the model's own accuracy implies."""
    out = tmp_path / "parity-6"
    trained = runner.invoke(app, ["train", "parity", "--out", str(out), "--task-option", "n_bits=6", "--train-frac", "0.75", "--seed", "0",
                                  "--threads", "1"])
    assert trained.exit_code == 0, trained.output
    question = load_theory(out / "parity.question")
    result = recover(load_model(out, device="cpu"), question, seconds=20)
    assert result.explained and result.best is not None and result.best.agreement >= 0.95
    assert equal_on(out / "parity.question", result.best.expect, 'count(s, "1") % 2', list(question.domain.select().inputs))
