"""Mechanistic claims checked by intervention, on the shipped modular-addition model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tui_interp.cli import app
from tui_interp.engine.compare import compare
from tui_interp.labels import LabelStore
from tui_interp.model import load_model
from tui_interp.theory import parse_theory

ROOT = Path(__file__).resolve().parents[2]
MODADD = ROOT / "sample_models" / "modadd-grokked"

HEADER = '''theory "modular addition"
input a: int in 0..112
input b: int in 0..112
prompt "{a} {b} ="
expect (a + b) % 113
'''


@pytest.fixture(scope="module")
def lm():
    return load_model(MODADD, device="cpu")


def claims(lm, *lines: str, labels=None) -> list[dict]:
    theory = parse_theory(HEADER + "\n".join(lines) + "\n")
    return [c.to_json() for c in compare(lm, theory, labels=labels, search=False).claims]


def test_needs_the_mlp(lm) -> None:
    (needs,) = claims(lm, "claim needs L0.mlp")
    assert needs["status"] == "holds" and needs["value"] < 0.5 and needs["threshold"] == "below 0.5"


def test_suffices_with_the_full_set_holds_and_without_the_embedding_fails(lm) -> None:
    full, no_embed = claims(lm, "claim suffices embed, pos_embed, L0.H*, L0.mlp", "claim suffices pos_embed, L0.H*, L0.mlp")
    assert full["status"] == "holds" and full["value"] == 1.0
    assert no_embed["status"] == "fails" and no_embed["value"] < 0.9


def test_ablation_modes_are_stated_and_differ(lm) -> None:
    zero, mean, resample = claims(lm, "claim needs L0.mlp using zero", "claim needs L0.mlp using mean", "claim needs L0.mlp using resample")
    assert "zero-ablating L0.mlp" in zero["detail"] and "mean-ablating" in mean["detail"] and "resample-ablating" in resample["detail"]
    assert all(c["status"] == "holds" for c in (zero, mean, resample))


def test_attends_measures_attention_mass(lm) -> None:
    (a, b, impossible) = claims(lm, 'claim attends L0.H0 from "=" to a above 0.0', "claim attends L0.H0 from -1 to b above 0.0",
                                "claim attends L0.H0 from -1 to -1 above 0.999")
    assert 0 < a["value"] < 1 and 0 < b["value"] < 1
    assert impossible["status"] == "fails"


def test_label_claims_and_recorded_evidence(lm, tmp_path: Path) -> None:
    store = LabelStore.for_checkpoint(lm.checkpoint, tmp_path / "labels.json")
    (missing,) = claims(lm, 'claim label L0.mlp "lookup table"', labels=store)
    assert missing["status"] == "fails" and "no label" in missing["detail"]
    store.add("L0.mlp", "lookup table")
    (present,) = claims(lm, 'claim label L0.mlp "Lookup Table"', labels=store)
    assert present["status"] == "holds"


def test_cli_reports_claims_and_fails_on_them(tmp_path: Path) -> None:
    model = tmp_path / "modadd"
    shutil.copytree(MODADD, model)
    f = tmp_path / "c.theory"
    f.write_text(HEADER + "claim needs L0.mlp\nclaim needs L0.H0 using zero below 0.01\n")
    runner = CliRunner()
    runner.invoke(app, ["label", "add", str(model), "L0.mlp", "the lookup table"])
    result = runner.invoke(app, ["compare", str(model), str(f), "--json", "--min-agreement", "0.9", "--record-evidence"])
    assert result.exit_code == 1, result.output  # agreement is fine, but a claim fails
    doc = json.loads(result.stdout)
    assert [c["status"] for c in doc["claims"]] == ["holds", "fails"]
    assert doc["evidence_recorded"] == 1
    label = json.loads((model / "labels.json").read_text())["labels"][0]
    assert label["component"] == "L0.mlp" and label["evidence"][0]["claim"] == "needs L0.mlp"
    f.write_text(HEADER + "claim needs L0.mlp\n")
    assert runner.invoke(app, ["compare", str(model), str(f), "--min-agreement", "0.9"]).exit_code == 0


def test_memorised_model_counterexamples_are_real_and_answered() -> None:
    """The context (3 tokens) is full at the answer: the answer is still generated and rechecked."""
    import torch

    memorised = load_model(ROOT / "sample_models" / "modadd-memorized", device="cpu")
    result = compare(memorised, parse_theory(HEADER), search=False)
    assert result.agreement < 0.7 and result.n_failures > 3000
    for o in result.counterexamples[:20]:
        ids = memorised.tokenizer.encode(o.prompt)
        got = memorised.tokenizer.decode([int(memorised.model(torch.tensor([ids]))[0, -1].argmax())])
        assert o.got == got != o.expected
