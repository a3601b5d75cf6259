"""compare: agreement equals brute-force enumeration; counterexamples are real; search finds more."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from tui_interp.cli import app
from tui_interp.engine.compare import Cancelled, CompareResult, compare, iter_compare
from tui_interp.model import load_model
from tui_interp.theory import parse_theory

runner = CliRunner()


@pytest.fixture(scope="module")
def constant_dir(gpt2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny GPT-2 rewired to always answer w7: blocks write nothing, the final norm outputs
    a fixed vector along w7's (tied) embedding. A model whose rule we know exactly."""
    d = tmp_path_factory.mktemp("constant")
    for f in ("config.json", "tokenizer.json"):
        shutil.copy(gpt2_dir / f, d / f)
    sd = load_file(gpt2_dir / "model.safetensors")
    for k in list(sd):
        if k.endswith(("attn.c_proj.weight", "attn.c_proj.bias", "mlp.c_proj.weight", "mlp.c_proj.bias")):
            sd[k] = torch.zeros_like(sd[k])
    w7 = sd["transformer.wte.weight"][10]  # "w7" is id 10 (3 special tokens first)
    sd["transformer.ln_f.weight"] = torch.zeros_like(sd["transformer.ln_f.weight"])
    sd["transformer.ln_f.bias"] = 5000 * w7 / w7.norm()
    save_file(sd, d / "model.safetensors")
    lm = load_model(d, device="cpu")
    logits = lm.model(torch.tensor([[4, 5, 6]]))[0, -1]
    assert int(logits.argmax()) == 10 and float(torch.softmax(logits, -1)[10]) > 0.99
    return d


THEORY = """theory "pairs"
input x: int in 0..9
input y: int in 0..9
prompt "w{x} w{y}"
expect "w" + str(EXPECT)
slice "small": x < 5
"""


def brute_force(lm, theory) -> dict[tuple, str]:
    """Greedy continuation of every input, one prompt at a time, no batching: the reference."""
    tok = lm.tokenizer
    out = {}
    for x in theory.domain.enumerate():
        ev = theory.evaluate(x)
        ids = tok.encode(ev.prompt)
        n = len(tok.encode(ev.expected_text, bos=False))
        for _ in range(n):
            ids.append(int(lm.model(torch.tensor([ids]))[0, -1].argmax()))
        out[tuple(sorted(x.items()))] = tok.decode(ids[-n:])
    return out


def test_known_rule_agrees_exactly(constant_dir: Path) -> None:
    lm = load_model(constant_dir, device="cpu")
    always = compare(lm, parse_theory(THEORY.replace("EXPECT", "7")))
    assert always.agreement == 1.0 and always.n_inputs == 100 and always.enumerated and always.counterexamples == []
    copy = compare(lm, parse_theory(THEORY.replace("EXPECT", "x")))
    assert copy.agreement == pytest.approx(0.10)
    assert copy.n_failures == 90 and len(copy.counterexamples) == 90
    assert all(o.got == "w7" and o.expected == f"w{o.input['x']}" for o in copy.counterexamples)
    small, not_small = copy.slices
    assert (small.name, small.n, not_small.name, not_small.n) == ("small", 50, "not (small)", 50)
    assert small.agreement == 0.0 and not_small.agreement == pytest.approx(0.2)


def test_agreement_is_what_enumeration_says_on_a_random_model(gpt2_dir: Path) -> None:
    lm = load_model(gpt2_dir, device="cpu")
    theory = parse_theory(THEORY.replace("EXPECT", "(x + y) % 10"))
    reference = brute_force(lm, theory)
    result = compare(lm, theory)
    expected_agree = sum(reference[tuple(sorted(x.items()))] == theory.render_expected(x) for x in theory.domain.enumerate())
    assert result.agreement == pytest.approx(expected_agree / 100)
    assert result.n_failures == 100 - expected_agree
    for o in result.counterexamples:  # real: re-running the model gives the same wrong answer
        assert reference[tuple(sorted(o.input.items()))] == o.got != o.expected
    ps = [o.p_got for o in result.counterexamples]
    assert all(p is not None for p in ps) and ps == sorted(ps, reverse=True)  # most confidently wrong first


def test_multi_token_answers(gpt2_dir: Path) -> None:
    lm = load_model(gpt2_dir, device="cpu")
    theory = parse_theory('theory "two"\ninput x: int in 0..9\nprompt "w{x}"\nexpect ["w" + str(x), "w" + str(x)]\n')
    reference = brute_force(lm, theory)
    result = compare(lm, theory)
    agree = sum(reference[tuple(sorted(x.items()))] == theory.render_expected(x) for x in theory.domain.enumerate())
    assert result.agreement == pytest.approx(agree / 10)
    assert all(len(o.got.split()) == 2 for o in result.counterexamples)


def test_sampling_and_search(constant_dir: Path) -> None:
    lm = load_model(constant_dir, device="cpu")
    theory = parse_theory('theory "big"\ninput x: int in 0..9\ninput y: int in 0..9\ninput z: int in 0..99\n'
                          'prompt "w{x} w{y}"\nexpect "w" + str(7 if z != 31 else x)\n')
    events = list(iter_compare(lm, theory, limit=500, seed=1, search_budget=3000))
    result = events[-1]
    assert isinstance(result, CompareResult) and not result.enumerated and result.n_inputs == 500
    assert "sample" in result.selection
    sample_failures = result.n_failures
    assert result.found_by_search > 0 and result.searched <= 3000
    found = [o for o in result.counterexamples if o.found_by == "search"]
    assert all(o.input["z"] == 31 and o.input["x"] != 7 for o in found)
    # the search finds failures at a far higher rate than the uniform sample does
    assert result.found_by_search / result.searched > 2 * max(sample_failures, 1) / 500
    phases = [e.phase for e in events if not isinstance(e, CompareResult)]
    assert [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p] == ["prepare", "compare", "answers", "search", "done"]
    assert "budget 3,000 inputs" in result.search


def test_cancellation(constant_dir: Path) -> None:
    lm = load_model(constant_dir, device="cpu")
    theory = parse_theory(THEORY.replace("EXPECT", "x"))
    with pytest.raises(Cancelled):
        for _ in iter_compare(lm, theory, cancel=lambda: True):
            pass


def test_cli_compare(constant_dir: Path, tmp_path: Path) -> None:
    f = tmp_path / "copy.theory"
    f.write_text(THEORY.replace("EXPECT", "x"))
    result = runner.invoke(app, ["compare", str(constant_dir), str(f), "--json", "--show", "3"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["agreement"] == pytest.approx(0.1) and doc["n_inputs"] == 100 and doc["enumerated"] is True
    assert len(doc["counterexamples"]) == 3 and set(doc["counterexamples"][0]) >= {"input", "prompt", "expected", "got", "p_expected"}
    assert doc["slices"][0] == {"name": "small", "n": 50, "agreement": 0.0}
    failing = runner.invoke(app, ["compare", str(constant_dir), str(f), "--min-agreement", "0.5"])
    assert failing.exit_code == 1 and "FAIL" in failing.stdout
    passing = runner.invoke(app, ["compare", str(constant_dir), str(f), "--min-agreement", "0.1"])
    assert passing.exit_code == 0 and "PASS" in passing.stdout


def test_cli_compare_bad_theory(constant_dir: Path, tmp_path: Path) -> None:
    f = tmp_path / "bad.theory"
    f.write_text('theory "bad"\ninput x: int in 0..9\nprompt "w{x}"\nexpect x + "a"\n')
    result = runner.invoke(app, ["compare", str(constant_dir), str(f)])
    assert result.exit_code == 2
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and "bad.theory" in err and ":4:" in err
