"""The seed's benchmark in one theory file: a train split, train vs held-out agreement, the
answer for every input, and many prompts in one process. Checked against transformers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from tui_interp.cli import app
from tui_interp.engine.compare import compare
from tui_interp.engine.table import answer_table
from tui_interp.model import load_model
from tui_interp.theory import load_theory, parse_theory

ROOT = Path(__file__).resolve().parents[2]
MEMORISED = ROOT / "sample_models" / "modadd-memorized"
runner = CliRunner()


@pytest.fixture(scope="module")
def hf_answers() -> dict[tuple[int, int], int]:
    """transformers' argmax after "a b =" for every pair: the reference."""
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(MEMORISED).eval()
    lm = load_model(MEMORISED, device="cpu")
    pairs = [(a, b) for a in range(113) for b in range(113)]
    ids = torch.tensor([lm.tokenizer.encode(f"{a} {b} =") for a, b in pairs])
    with torch.no_grad():
        top = hf(ids).logits[:, -1].argmax(-1).tolist()
    return {pair: int(lm.tokenizer.decode([t])) for pair, t in zip(pairs, top, strict=True)}


def test_split_slices_equal_the_brute_force_count(hf_answers: dict[tuple[int, int], int]) -> None:
    lm = load_model(MEMORISED, device="cpu")
    theory = load_theory(MEMORISED / "modadd.theory")
    result = compare(lm, theory, search=False, claims=False)
    train = {(r["a"], r["b"]) for r in map(json.loads, (MEMORISED / "train.jsonl").read_text().splitlines())}
    right = {pair for pair, got in hf_answers.items() if got == (pair[0] + pair[1]) % 113}
    slices = {s.name: s for s in result.slices}
    assert slices["train"].n == len(train) == 3831 and slices["not train"].n == 12769 - 3831
    assert slices["train"].agreement == pytest.approx(len(right & train) / len(train)) == 1.0  # it fits its train set
    assert slices["not train"].agreement == pytest.approx(len(right - train) / (12769 - 3831))
    assert slices["not train"].agreement < 0.4  # and fails to generalise


def test_table_equals_transformers_argmax_for_every_input(hf_answers: dict[tuple[int, int], int]) -> None:
    lm = load_model(MEMORISED, device="cpu")
    info, rows = answer_table(lm, load_theory(MEMORISED / "modadd.question"))
    assert info.enumerated and info.n_inputs == len(rows) == 12769
    assert all(int(r.got) == hf_answers[(r.input["a"], r.input["b"])] for r in rows)
    in_train = [r for r in rows if r.splits == ("train",)]
    assert len(in_train) == 3831 and all(r.answer == str((r.input["a"] + r.input["b"]) % 113) for r in in_train)
    assert all(r.expected is None and 0.0 < r.p_got <= 1.0 for r in rows)


def test_table_cli_jsonl_and_csv(tmp_path: Path) -> None:
    theory = MEMORISED / "modadd.theory"
    result = runner.invoke(app, ["table", str(MEMORISED), str(theory), "--limit", "20000"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 12769
    first = json.loads(lines[0])
    assert set(first) >= {"input", "prompt", "got", "p_got", "expected", "splits"} and first["input"] == {"a": 0, "b": 0}
    out = tmp_path / "t.csv"
    assert runner.invoke(app, ["table", str(MEMORISED), str(theory), "--format", "csv", "--out", str(out)]).exit_code == 0
    header, row = out.read_text().splitlines()[:2]
    assert header == "a,b,prompt,got,p_got,expected,splits,answer" and row.startswith("0,0,0 0 =,")
    assert not list(tmp_path.glob(".*tmp"))  # written atomically


def test_a_question_is_refused_by_compare_and_answered_by_table(tmp_path: Path) -> None:
    result = runner.invoke(app, ["compare", str(MEMORISED), str(MEMORISED / "modadd.question")])
    assert result.exit_code == 2 and "is a question" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_sorting_question_answers_span_the_split_answers_length() -> None:
    sorting = ROOT / "sample_models" / "sorting-generalising"
    lm = load_model(sorting, device="cpu")
    theory = load_theory(ROOT / "sample_models" / "sorting-memorised" / "sorting.question")
    info, rows = answer_table(lm, theory, limit=50, seed=1)
    assert "8 tokens" in info.answer_tokens
    assert all(r.got == " ".join(map(str, sorted(r.input["xs"]))) for r in rows)  # the generaliser sorts


def test_run_many_prompts_in_one_process(tmp_path: Path) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text("17 99 =\n\n1 2 =\n100 12 =\n")
    result = runner.invoke(app, ["run", str(MEMORISED), "--prompts", str(prompts), "--json", "--top-k", "1"])
    assert result.exit_code == 0, result.output
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [d["prompt"] for d in docs] == ["17 99 =", "1 2 =", "100 12 ="]
    single = json.loads(runner.invoke(app, ["run", str(MEMORISED), "--prompt", "1 2 =", "--json", "--top-k", "1"]).stdout)
    assert single["top_k"] == docs[1]["top_k"]
    prompts.write_text("1 2 =\n3 4 =\n")
    bad = runner.invoke(app, ["run", str(MEMORISED), "--prompts", str(prompts), "--save-cache", str(tmp_path / "c.safetensors")])
    assert bad.exit_code == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_hints_say_why_answers_disagree_in_form(gpt2_dir: Path) -> None:
    lm = load_model(gpt2_dir, device="cpu")
    theory = parse_theory('theory "two"\ninput x: int in 0..9\nprompt "w{x}"\nexpect ["w" + str(x), "w" + str(x)]\n')
    result = compare(lm, theory)
    assert result.answer_tokens == (2, 2)
    assert any("expected answers are 2 tokens" in h and "greedy continuation" in h for h in result.hints)


def test_work_budget_refuses_before_starting(tmp_path: Path) -> None:
    f = tmp_path / "heavy.theory"
    f.write_text('theory "heavy"\ninput a: int in 0..199999\nprompt "{a}"\nexpect sum(range(a * 4))\n')
    result = runner.invoke(app, ["compare", str(MEMORISED), str(f)])
    assert result.exit_code == 2
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and f"{f}:4:" in err and "sum(range(a * 4))" in err and "--max-work" in err


def test_failed_claims_and_usage_errors_exit_codes(tmp_path: Path) -> None:
    f = tmp_path / "c.theory"
    f.write_text((MEMORISED / "modadd.theory").read_text().split("# Mechanistic")[0] + "claim attends L0.H0 from -1 to -1 above 0.999\n")
    result = runner.invoke(app, ["compare", str(MEMORISED), str(f), "--claim-sample", "300"])
    assert result.exit_code == 1 and "FAIL" in result.stdout
    usage = runner.invoke(app, ["compare", str(MEMORISED)])
    assert usage.exit_code == 2 and len(usage.stderr.strip().splitlines()) == 1 and usage.stderr.startswith("error:")
