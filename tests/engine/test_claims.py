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
    needs, absolute = claims(lm, "claim needs L0.mlp", "claim needs L0.mlp below 0.005")
    assert needs["status"] == "holds" and needs["baseline"] == 1.0 and needs["value"] < 0.5
    assert needs["threshold"] == "below 0.5 x baseline (0.500)" and needs["ablated"] == needs["value"]
    assert "over all 12,769 inputs" in needs["detail"]
    assert absolute["threshold"] == "below 0.005" and absolute["status"] == "fails"  # an explicit bound is absolute


def test_needs_is_judged_against_the_baseline_on_a_weak_model() -> None:
    """On a model that agrees on half the inputs, `needs` passes only if ablation loses half of that."""
    weak = load_model(ROOT / "sample_models" / "modadd-memorized", device="cpu")
    theory = parse_theory(HEADER + "claim needs L0.H0 using zero\nclaim needs L0.mlp\n")
    head, mlp = compare(weak, theory, search=False).claims
    assert head.baseline is not None and 0.4 < head.baseline < 0.6
    assert mlp.status == "holds" and mlp.value is not None and mlp.value < 0.5 * mlp.baseline
    assert head.status == ("holds" if head.value < 0.5 * head.baseline else "fails")  # type: ignore[operator]


def test_claim_values_equal_what_transformers_measures_over_the_whole_domain(lm) -> None:
    """needs (zero ablation of the MLP) and attends, measured independently with transformers."""
    import torch
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(MODADD, attn_implementation="eager").eval()
    tok = lm.tokenizer
    rows = [(a, b) for a in range(113) for b in range(113)]
    ids = torch.tensor([tok.encode(f"{a} {b} =") for a, b in rows])
    answers = torch.tensor([tok.encode(str((a + b) % 113), bos=False)[0] for a, b in rows])
    handle = hf.transformer.h[0].mlp.register_forward_hook(lambda mod, args, out: torch.zeros_like(out))
    with torch.no_grad():
        ablated = hf(ids).logits[:, -1].argmax(-1)
    handle.remove()
    with torch.no_grad():
        attentions = hf(ids, output_attentions=True).attentions[0]  # [batch, head, query, key]
    hf_needs = float((ablated == answers).float().mean())
    hf_attends = float(attentions[:, 2, -1, 1].mean())  # head 2, from "=" (last) to b (position 1)
    needs, attends = claims(lm, "claim needs L0.mlp using zero", "claim attends L0.H2 from -1 to b above 0.0")
    assert needs["value"] == pytest.approx(hf_needs, abs=1e-9)
    assert attends["value"] == pytest.approx(hf_attends, abs=1e-5)
    assert "12,769 inputs" in attends["detail"]


def test_claims_on_a_sample_say_so(lm) -> None:
    theory = parse_theory(HEADER + "claim needs L0.mlp\n")
    (c,) = compare(lm, theory, search=False, claim_limit=500).claims
    assert "a uniform random sample of 500 of all 12,769 inputs (seed 0)" in c.detail


def test_a_claim_on_a_component_the_model_lacks_is_bad_input(tmp_path: Path) -> None:
    f = tmp_path / "bad.theory"
    f.write_text(HEADER + "claim needs L0.mlp\nclaim needs L7.mlp\n")
    result = CliRunner().invoke(app, ["compare", str(MODADD), str(f)])
    assert result.exit_code == 2
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and f"{f}:7:" in err and "L7" in err


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
    result = runner.invoke(app, ["compare", str(model), str(f), "--json", "--record-evidence"])
    assert result.exit_code == 1, result.output  # agreement is fine, but a claim fails: exit 1 without --min-agreement
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
