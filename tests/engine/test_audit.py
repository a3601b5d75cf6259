"""The generalisation audit: it names the generalising model of a pair from the train split
alone, and never reads an answer outside that split."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from tui_interp.cli import app
from tui_interp.engine import audit as A
from tui_interp.engine.audit import AuditResult, iter_audit
from tui_interp.model import load_model
from tui_interp.theory import load_theory, parse_theory

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_models"


def run(models, theory, **options) -> AuditResult:  # noqa: ANN001
    for event in iter_audit(models, theory, **options):
        if isinstance(event, AuditResult):
            return event
    raise AssertionError("no result")


def test_the_shipped_modadd_pair_is_named_right_from_the_train_split() -> None:
    models = [(name, load_model(SAMPLES / name, device="cpu")) for name in ("modadd-memorized", "modadd-grokked")]
    result = run(models, load_theory(SAMPLES / "modadd-memorized" / "modadd.question"))
    assert result.ranking == ["modadd-grokked", "modadd-memorized"]
    by_name = {m.model: m for m in result.models}
    assert by_name["modadd-grokked"].generalises and not by_name["modadd-memorized"].generalises
    assert result.rule == "(a + b) % 113" and result.symmetries == ["swap(a, b)"]
    assert all(m.train_agreement == 1.0 for m in result.models)  # both fit the train set
    rule = {m.model: next(e for e in m.evidence if e.signal == "rule") for m in result.models}
    assert rule["modadd-grokked"].value == 1.0 and rule["modadd-memorized"].value < 0.4  # the held-out accuracies, unseen


def test_no_answer_outside_train_is_read(gpt2_dir: Path, tmp_path: Path) -> None:
    """An `expect` is ignored, and the rule search is handed the train rows only."""
    rows = [{"x": x, "y": y, "answer": f"w{(x + y) % 10}"} for x in range(10) for y in range(10) if (x * 7 + y) % 3 == 0]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    body = 'theory "t"\ninput x: int in 0..9\ninput y: int in 0..9\nprompt "w{x} w{y}"\nsplit train from "train.jsonl"\n'
    seen: list[A.TrainSet] = []

    def spy(theory, train, cancel):  # noqa: ANN001, ANN202
        seen.append(train)
        assert theory.is_question
        return None

    lm = load_model(gpt2_dir, device="cpu")
    with_expect = run([("m", lm)], parse_theory(body + 'expect "w0"\n', tmp_path / "a.theory"), rule_search=spy)
    question = run([("m", lm)], parse_theory(body, tmp_path / "b.theory"), rule_search=spy)
    assert len(seen[0].inputs) == len(rows) and sorted(seen[0].answers) == sorted(r["answer"] for r in rows)
    strip = lambda r: [(e.signal, e.value) for m in r.models for e in m.evidence]  # noqa: E731
    assert strip(with_expect) == strip(question)


def test_signals_on_known_structure() -> None:
    n = 31
    values = torch.arange(n, dtype=torch.float32)
    waves = torch.stack([torch.cos(2 * math.pi * 3 * values / n), torch.sin(2 * math.pi * 3 * values / n)], dim=1)
    assert A.fourier_concentration(waves) > 0.99  # one frequency carries everything
    noise = torch.randn(n, 64, generator=torch.Generator().manual_seed(0))
    assert A.fourier_concentration(noise) < 0.5
    order = A.discrete_log_order(7)
    assert order is not None and sorted(order) == list(range(1, 7)) and order[0] == 1
    assert A.discrete_log_order(8) is None
    theory = parse_theory('theory "t"\ninput a: int in 0..9\ninput b: int in 0..9\nprompt "{a} {b} ="\nexpect ?\n')
    pairs = [(a, b) for a in range(10) for b in range(10)]
    commutes = A.TrainSet([{"a": a, "b": b} for a, b in pairs], [str(a + b) for a, b in pairs], "")
    assert A.swap_symmetries(theory, commutes) == [("a", "b")]
    not_commutes = A.TrainSet(commutes.inputs, [str(a - b) for a, b in pairs], "")
    assert A.swap_symmetries(theory, not_commutes) == []


def test_cli_errors(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["audit", str(SAMPLES / "modadd-grokked"), str(SAMPLES / "modadd-grokked" / "modadd.theory").replace(
        "modadd.theory", "nope.question")])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    no_split = tmp_path / "q.question"
    no_split.write_text('theory "q"\ninput a: int in 0..112\ninput b: int in 0..112\nprompt "{a} {b} ="\n')
    result = CliRunner().invoke(app, ["audit", str(SAMPLES / "modadd-grokked"), str(no_split)])
    assert result.exit_code == 2 and "split train" in result.stderr


@pytest.mark.slow
def test_the_shipped_sorting_pair_is_named_right() -> None:
    models = [(name, load_model(SAMPLES / name, device="cpu")) for name in ("sorting-memorised", "sorting-generalising")]
    result = run(models, load_theory(SAMPLES / "sorting-memorised" / "sorting.question"))
    assert result.ranking[0] == "sorting-generalising" and result.rule == "sorted(xs)"
    assert [m.generalises for m in result.models] == [False, True]
