"""Suggested labels and attends claims on the shipped induction model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tui_interp.cli import app
from tui_interp.engine.compare import compare
from tui_interp.engine.suggest import suggest_head_labels
from tui_interp.labels import LabelStore
from tui_interp.model import load_model
from tui_interp.theory import load_theory, parse_theory

ROOT = Path(__file__).resolve().parents[2]
INDUCTION = ROOT / "sample_models" / "induction-2l"


@pytest.fixture(scope="module")
def lm():
    return load_model(INDUCTION, device="cpu")


def test_suggestions_find_the_previous_token_and_induction_heads(lm) -> None:
    found = suggest_head_labels(lm)
    best: dict[str, str] = {}
    for s in found:  # best first
        best.setdefault(s.component, s.name)
    assert best["L0.H2"] == "previous-token head"
    assert {c for c, n in best.items() if n == "induction head"} == {"L1.H0", "L1.H1", "L1.H2", "L1.H3"}
    # and they agree with the labels shipped with the model
    shipped = {l["component"]: l["name"] for l in json.loads((INDUCTION / "labels.json").read_text())["labels"]}
    assert all(best[c] == name for c, name in shipped.items())


def test_shipped_theory_claims_hold(lm) -> None:
    store = LabelStore.for_checkpoint(lm.checkpoint)
    result = compare(lm, load_theory(INDUCTION / "induction.theory"), limit=500, search=False, labels=store)
    assert result.agreement >= 0.99
    assert [c.status for c in result.claims] == ["holds"] * len(result.claims)


def test_a_wrong_attends_claim_fails(lm) -> None:
    text = (INDUCTION / "induction.theory").read_text().split("# [BOS]")[0]
    text += "claim attends L0.H2 from -1 to 1 above 0.5\nclaim attends L1.H0 from -1 to -2 above 0.5\n"
    result = compare(lm, parse_theory(text), limit=300, search=False)
    assert [c.status for c in result.claims] == ["fails", "fails"]
    assert all(c.value is not None and c.value < 0.1 for c in result.claims)


def test_cli_suggest_accepts_into_the_label_file(tmp_path: Path) -> None:
    model = tmp_path / "m"
    shutil.copytree(INDUCTION, model)
    (model / "labels.json").unlink()
    result = CliRunner().invoke(app, ["suggest", str(model), "--accept", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc["accepted"]) == {"L0.H2", "L1.H0", "L1.H1", "L1.H2", "L1.H3"}
    labels = {l["component"]: l for l in json.loads((model / "labels.json").read_text())["labels"]}
    assert labels["L0.H2"]["name"] == "previous-token head" and labels["L0.H2"]["evidence"][0]["value"] > 0.5


def test_every_score_is_listed_and_min_score_is_honoured(lm) -> None:
    from tui_interp.engine.suggest import head_pattern_scores

    scores = head_pattern_scores(lm)
    heads = {f"L{l}.H{h}" for l in range(2) for h in range(4)}
    patterns = {"previous-token head", "induction head", "first-token head", "self-attention head"}
    assert {(s.component, s.name) for s in scores} == {(c, p) for c in heads for p in patterns}
    everything = suggest_head_labels(lm, scores=scores, min_score=0.0)
    assert len(everything) == len(scores)
    strict = suggest_head_labels(lm, scores=scores, min_score=0.95)
    assert strict and all(s.score >= 0.95 for s in strict)
    induction = [s for s in suggest_head_labels(lm, scores=scores, min_score=0.9) if s.name == "induction head"]
    assert all(s.score >= 0.9 for s in induction)  # the explicit bound replaces the induction default too
    result = CliRunner().invoke(app, ["suggest", str(INDUCTION), "--json", "--min-score", "0.9"])
    doc = json.loads(result.stdout)
    assert len(doc["scores"]) == len(scores) and all(s["score"] >= 0.9 for s in doc["suggestions"])


def test_the_probe_draws_from_the_ordinary_vocabulary_or_the_theory() -> None:
    from tui_interp.engine.suggest import probe_candidates

    charlm = load_model(ROOT / "sample_models" / "charlm-4l", device="cpu")
    ids, words = probe_candidates(charlm)
    texts = {charlm.tokenizer.decode([i]) for i in ids.tolist()}
    assert "\n" not in texts and "[UNK]" not in texts and "a" in texts and "ordinary" in words
    modadd = load_model(ROOT / "sample_models" / "modadd-grokked", device="cpu")
    theory = parse_theory('theory "t"\ninput a: int in 0..9\nprompt "{a} 1 ="\nexpect a\n')
    ids, words = probe_candidates(modadd, theory)
    assert sorted(modadd.tokenizer.decode([i]) for i in ids.tolist()) == sorted([str(d) for d in range(10)] + ["="])
    assert "theory" in words
