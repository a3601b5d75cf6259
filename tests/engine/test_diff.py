"""diff: edited checkpoints the engine has never seen; the edited component ranks first, the
inputs whose answers changed are found (checked by brute force), a model against itself is all
zeros, and models that cannot be compared are refused in one line.

Edits are made on the HuggingFace tensors (safetensors files, or a transformers model trained a
few steps), never through our own model code, and expected weight changes are computed here
from those tensors.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from tui_interp.cli import app
from tui_interp.components import Component
from tui_interp.engine.diff import Cancelled, DiffResult, check_compatible, diff, iter_diff, parameter_shares
from tui_interp.errors import ConfigError, TokenizerError
from tui_interp.model import load_model, open_checkpoint
from tui_interp.theory import load_theory, parse_theory

runner = CliRunner()
SAMPLES = Path(__file__).resolve().parents[2] / "sample_models"
MODADD = SAMPLES / "modadd-grokked"
THEORY = MODADD / "modadd.theory"
LIMIT = 600  # theory inputs per diff (a seeded sample of the 12,769), to keep the tests quick
D, H, DH, M = 128, 4, 32, 512  # modadd-grokked: d_model, heads, d_head, d_mlp


def cpu(ckpt):  # noqa: ANN001, ANN201
    return load_model(ckpt, device="cpu")


def run_diff(a: Path, b: Path, **options) -> DiffResult:  # noqa: ANN003
    options.setdefault("load", cpu)
    return diff(open_checkpoint(a), open_checkpoint(b), **options)


def edited(src: Path, out: Path, edit: Callable[[dict[str, torch.Tensor]], None]) -> Path:
    """A copy of checkpoint `src` with its HuggingFace tensors edited in place by `edit`."""
    out.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.name != "model.safetensors" and f.is_file() and f.suffix in (".json",):
            shutil.copy(f, out / f.name)
    sd = load_file(src / "model.safetensors")
    edit(sd)
    save_file({k: v.contiguous() for k, v in sd.items()}, out / "model.safetensors")
    return out


def words_of(model_dir: Path) -> list[str]:
    """The word-level vocabulary of a test model, in id order."""
    vocab = json.loads((model_dir / "tokenizer.json").read_text())["model"]["vocab"]
    return sorted(vocab, key=vocab.__getitem__)


# ---------------------------------------------------------------------------------------------
# gpt2 (Conv1D [in, out]) slices of head i and neuron n, as HuggingFace stores them


def head_tensors(sd: dict[str, torch.Tensor], l: int, i: int, d: int, dh: int) -> list[torch.Tensor]:
    """Head i's q, k, v columns of c_attn, their biases and its rows of c_proj (views)."""
    p = f"transformer.h.{l}.attn."
    cols = [slice(j * d + i * dh, j * d + (i + 1) * dh) for j in range(3)]
    return ([sd[p + "c_attn.weight"][:, c] for c in cols] + [sd[p + "c_attn.bias"][c] for c in cols]
            + [sd[p + "c_proj.weight"][i * dh : (i + 1) * dh]])


def head_shared(sd: dict[str, torch.Tensor], l: int) -> list[torch.Tensor]:
    return [sd[f"transformer.h.{l}.ln_1.weight"], sd[f"transformer.h.{l}.ln_1.bias"], sd[f"transformer.h.{l}.attn.c_proj.bias"]]


def sq(ts: list[torch.Tensor]) -> float:
    return sum(float(t.double().square().sum()) for t in ts)


# ---------------------------------------------------------------------------------------------
# A model against itself


def test_self_diff_is_exactly_zero(tmp_path: Path) -> None:
    copy = edited(MODADD, tmp_path / "copy", lambda sd: None)
    result = run_diff(MODADD, copy, theory=load_theory(THEORY), limit=LIMIT, neurons=True)
    assert result.n_inputs == LIMIT and result.kind == "theory" and result.metric == "agreement"
    assert len(result.components) == 1 + 1 + H + 1 + 1 + M  # embed, pos_embed, heads, mlp, unembed, neurons
    for c in result.components:
        assert (c.score, c.weight_change, c.activation_change, c.output_change) == (0.0, 0.0, 0.0, 0.0), c
        assert c.identical and c.effect_a == c.effect_b
    assert result.disagreements == () and result.agreement_a == result.agreement_b == 1.0
    assert result.changed == [] and "no component changed" in result.ablation_inputs
    # the same directory twice, through the CLI
    out = runner.invoke(app, ["diff", str(MODADD), str(MODADD), "--json", "--random", "32", "--device", "cpu"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["inputs"] == 32 and doc["disagreements"] == [] and doc["n_changed"] == 0
    assert all(c["score"] == 0.0 for c in doc["components"])


# ---------------------------------------------------------------------------------------------
# Edits


def test_zeroed_head_output_ranks_first_and_downstream_is_not_blamed(gpt2_dir: Path, tmp_path: Path) -> None:
    """L0.H2 of a 2-layer model writes nothing in B. It ranks first with activation change 1;
    layer 1 reads a different residual stream (its output changes) but scores 0."""
    sd = load_file(gpt2_dir / "model.safetensors")
    d, dh = 32, 8
    o = sd["transformer.h.0.attn.c_proj.weight"][2 * dh : 3 * dh]
    expected = math.sqrt(sq([o]) / (sq(head_tensors(sd, 0, 2, d, dh)) + sq(head_shared(sd, 0))))

    def zero(sd: dict[str, torch.Tensor]) -> None:
        sd["transformer.h.0.attn.c_proj.weight"][2 * dh : 3 * dh] = 0

    b = edited(gpt2_dir, tmp_path / "zeroed", zero)
    result = run_diff(gpt2_dir, b, n_random=64)  # no theory, no prompts: seeded random sequences
    assert result.kind == "random" and result.metric == "loss" and "random token sequences" in result.inputs
    top = result.components[0]
    assert str(top.component) == "L0.H2"
    assert top.weight_change == pytest.approx(expected, rel=1e-6)
    assert top.activation_change == pytest.approx(1.0, abs=1e-6)
    assert top.score > 0 and top.effect_b == pytest.approx(0.0, abs=1e-6) and top.effect_a != 0
    assert [c for c in result.components[1:] if c.score != 0] == []
    downstream = [c for c in result.components if c.component.layer == 1]
    assert downstream and all(c.output_change > 0 and c.activation_change == 0 for c in downstream)
    assert result.component("L0.H2").ablation_a is not None  # measured for the changed component only
    assert result.component("L0.H1").ablation_a is None


def test_perturbed_neurons_rank_first(tmp_path: Path) -> None:
    chosen = (5, 77, 300)
    sd = load_file(MODADD / "model.safetensors")
    fc, proj, bias = sd["transformer.h.0.mlp.c_fc.weight"], sd["transformer.h.0.mlp.c_proj.weight"], sd["transformer.h.0.mlp.c_fc.bias"]
    g = torch.Generator().manual_seed(0)
    delta_fc = torch.randn(D, len(chosen), generator=g) * fc.std()
    delta_proj = torch.randn(len(chosen), D, generator=g) * proj.std()
    mlp_params = [sd[f"transformer.h.0.{n}"] for n in ("mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias",
                                                        "ln_2.weight", "ln_2.bias")]
    expected_mlp = math.sqrt((sq([delta_fc]) + sq([delta_proj])) / sq(mlp_params))
    neuron = lambda n: [fc[:, n], bias[n : n + 1], proj[n]]  # noqa: E731
    expected_n5 = math.sqrt(sq([delta_fc[:, 0], delta_proj[0]]) / sq(neuron(5)))

    def perturb(sd: dict[str, torch.Tensor]) -> None:
        sd["transformer.h.0.mlp.c_fc.weight"][:, list(chosen)] += delta_fc
        sd["transformer.h.0.mlp.c_proj.weight"][list(chosen)] += delta_proj

    b = edited(MODADD, tmp_path / "neurons", perturb)
    result = run_diff(MODADD, b, theory=load_theory(THEORY), limit=LIMIT, neurons=True)
    assert {str(c.component) for c in result.components[:3]} == {f"L0.N{n}" for n in chosen}
    assert result.component("L0.N5").weight_change == pytest.approx(expected_n5, rel=1e-6)
    coarse = [c for c in result.components if c.component.kind != "neuron"]
    assert str(coarse[0].component) == "L0.mlp" and coarse[0].weight_change == pytest.approx(expected_mlp, rel=1e-6)
    assert all(c.score == 0 for c in coarse[1:])
    assert sum(c.score > 0 for c in result.components) == len(chosen) + 1  # the three neurons and their MLP
    untouched = result.component("L0.N6")  # same input, same weights: same output; the final norm's scale moved
    assert untouched.identical and untouched.activation_change == untouched.output_change == 0.0
    assert untouched.effect_a != untouched.effect_b


def test_swapped_heads_rank_first_with_the_same_behaviour(tmp_path: Path) -> None:
    """Swapping two heads entirely (q, k, v and output) leaves a one-layer model's function as it
    was: both heads rank first, nothing else changed, and no input is answered differently."""

    def swap(sd: dict[str, torch.Tensor]) -> None:
        for x, y in zip(head_tensors(sd, 0, 0, D, DH), head_tensors(sd, 0, 2, D, DH), strict=True):
            tmp = x.clone()
            x.copy_(y)
            y.copy_(tmp)

    b = edited(MODADD, tmp_path / "swapped", swap)
    result = run_diff(MODADD, b, theory=load_theory(THEORY), limit=LIMIT)
    assert {str(c.component) for c in result.components[:2]} == {"L0.H0", "L0.H2"}
    assert all(c.score == 0 for c in result.components[2:])
    assert result.component("L0.H0").effect_b == pytest.approx(result.component("L0.H2").effect_a, rel=1e-4)
    assert result.disagreements == () and result.agreement_b == result.agreement_a


def test_swapped_output_slices_change_the_answers(gpt2_dir: Path, tmp_path: Path) -> None:
    """Swapping only the output rows of L1.H1 and L1.H3 changes what the model says: the two heads
    rank first and the prompts whose next token changed are the ones brute force finds."""
    dh = 8

    def swap(sd: dict[str, torch.Tensor]) -> None:
        w = sd["transformer.h.1.attn.c_proj.weight"]
        w[[*range(dh, 2 * dh), *range(3 * dh, 4 * dh)]] = w[[*range(3 * dh, 4 * dh), *range(dh, 2 * dh)]].clone()

    b = edited(gpt2_dir, tmp_path / "swap_o", swap)
    words = [f"w{i}" for i in range(94)]
    g = torch.Generator().manual_seed(3)
    prompts = [" ".join(words[j] for j in torch.randint(0, 94, (int(n),), generator=g)) for n in torch.randint(1, 9, (60,), generator=g)]
    result = run_diff(gpt2_dir, b, prompts=prompts)
    assert result.kind == "prompts" and result.metric == "loss" and result.n_inputs == 60
    assert {str(c.component) for c in result.components[:2]} == {"L1.H1", "L1.H3"}
    assert all(c.score == 0 for c in result.components[2:])
    lm_a, lm_b = load_model(gpt2_dir, device="cpu"), load_model(b, device="cpu")
    truth = set()
    for p in prompts:
        ids = torch.tensor([lm_a.tokenizer.encode(p)])
        if int(lm_a.model(ids)[0, -1].argmax()) != int(lm_b.model(ids)[0, -1].argmax()):
            truth.add(p)
    assert truth and {d.input for d in result.disagreements} == truth
    for d in result.disagreements:
        assert d.answer_a != d.answer_b and 0 < d.p_a <= 1 and 0 < d.p_b <= 1


def test_multi_token_answers_and_questions(gpt2_dir: Path, tmp_path: Path) -> None:
    """Two-token answers: the disagreements are the inputs whose two greedy tokens differ (one
    input at a time here); a question (no expect) is diffed on the loss of A's answer."""

    def scale(sd: dict[str, torch.Tensor]) -> None:
        sd["transformer.h.1.mlp.c_fc.weight"] *= 3

    b = edited(gpt2_dir, tmp_path / "scaled", scale)
    theory = parse_theory('theory "two"\ninput x: int in 0..40\nprompt "w{x} w3"\nexpect "w" + str(x % 7) + " w" + str(x % 5)\n')
    result = run_diff(gpt2_dir, b, theory=theory)
    assert str(result.components[0].component) == "L1.mlp" and all(c.score == 0 for c in result.components[1:])
    lm_a, lm_b = load_model(gpt2_dir, device="cpu"), load_model(b, device="cpu")

    def greedy(lm, x: int) -> list[int]:  # noqa: ANN001
        ids = lm.tokenizer.encode(f"w{x} w3")
        for _ in range(2):
            ids.append(int(lm.model(torch.tensor([ids]))[0, -1].argmax()))
        return ids[-2:]

    truth = {x for x in range(41) if greedy(lm_a, x) != greedy(lm_b, x)}
    assert truth and {d.input["x"] for d in result.disagreements} == truth
    assert all(len(d.answer_a.split()) == 2 and d.expected for d in result.disagreements)
    question = run_diff(gpt2_dir, b, theory=parse_theory('theory "q"\ninput x: int in 0..40\nprompt "w{x} w3"\n'), answer_tokens=2)
    assert question.kind == "question" and question.metric == "loss" and question.agreement_a is None
    assert {d.input["x"] for d in question.disagreements} == truth and all(d.expected is None for d in question.disagreements)
    assert str(question.components[0].component) == "L1.mlp"


# ---------------------------------------------------------------------------------------------
# Fine-tunes (transformers, a few Adam steps on a narrow subset)


def fine_tune(out: Path, *, only: str | None, steps: int = 10, lr: float = 1e-3) -> Path:
    """modadd-grokked trained a few full-batch Adam steps to answer (a + b + 1) % 113 on the pairs
    with a < 10 (a backdoor), with 2,000 other pairs keeping the true answer; all parameters, or
    those whose name contains `only`. Saved with transformers' save_pretrained."""
    import transformers

    transformers.logging.set_verbosity_error()
    model = transformers.AutoModelForCausalLM.from_pretrained(MODADD, dtype=torch.float32)
    params = []
    for name, p in model.named_parameters():
        p.requires_grad_(only is None or only in name)
        if p.requires_grad:
            params.append(p)
    g = torch.Generator().manual_seed(0)
    others = [(a, b, (a + b) % 113) for a in range(10, 113) for b in range(113)]
    data = [(a, b, (a + b + 1) % 113) for a in range(10) for b in range(113)]
    data += [others[i] for i in torch.randperm(len(others), generator=g)[:2000].tolist()]
    x = torch.tensor([[a, b, 113] for a, b, _ in data])  # "a b =": the numbers are their own ids, "=" is 113
    y = torch.tensor([c for _, _, c in data])
    opt = torch.optim.Adam(params, lr=lr)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x).logits[:, -1], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.save_pretrained(out, safe_serialization=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(MODADD / f, out / f)
    return out


def brute_force_disagreements(a: Path, b: Path, inputs: list[dict[str, int]]) -> set[tuple[int, int]]:
    """Pairs whose next token differs, one input at a time."""
    lm_a, lm_b = load_model(a, device="cpu"), load_model(b, device="cpu")
    out = set()
    for x in inputs:
        ids = torch.tensor([[x["a"], x["b"], 113]])
        if int(lm_a.model(ids)[0, -1].argmax()) != int(lm_b.model(ids)[0, -1].argmax()):
            out.add((x["a"], x["b"]))
    return out


def relative_change(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], names: list[str]) -> float:
    return math.sqrt(sum(float((b[n] - a[n]).double().square().sum()) for n in names) / sum(float(a[n].double().square().sum()) for n in names))


def test_fine_tuned_mlp_ranks_first_and_changed_answers_are_found(tmp_path: Path) -> None:
    b = fine_tune(tmp_path / "mlp-tuned", only=".mlp.")
    theory = load_theory(THEORY)
    result = run_diff(MODADD, b, theory=theory, limit=LIMIT)
    assert str(result.components[0].component) == "L0.mlp"
    assert all(c.score == 0 for c in result.components[1:])
    sel = theory.domain.select(limit=LIMIT, seed=0).inputs
    truth = brute_force_disagreements(MODADD, b, [dict(x) for x in sel])
    found = {(d.input["a"], d.input["b"]) for d in result.disagreements}
    assert truth and found == truth
    backdoor = [x for x in sel if x["a"] < 10]
    rate_in = sum((x["a"], x["b"]) in found for x in backdoor) / len(backdoor)
    rate_out = sum((x["a"], x["b"]) in found for x in sel if x["a"] >= 10) / (len(sel) - len(backdoor))
    assert rate_in > 0.5 and rate_in > 2 * rate_out  # the backdoor's pairs stand out
    for d in result.disagreements:
        assert d.a_agrees and not d.b_agrees and d.expected == d.answer_a


def test_full_fine_tune_weight_changes_and_disagreements(tmp_path: Path) -> None:
    b = fine_tune(tmp_path / "tuned", only=None)
    theory = load_theory(THEORY)
    result = run_diff(MODADD, b, theory=theory, limit=LIMIT)
    sa, sb = load_file(MODADD / "model.safetensors"), load_file(b / "model.safetensors")
    p = "transformer.h.0."
    mlp = [p + n for n in ("mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias", "ln_2.weight", "ln_2.bias")]
    assert result.component("L0.mlp").weight_change == pytest.approx(relative_change(sa, sb, mlp), rel=1e-6)
    assert result.component("embed").weight_change == pytest.approx(relative_change(sa, sb, ["transformer.wte.weight"]), rel=1e-6)
    unembed = ["lm_head.weight", "transformer.ln_f.weight", "transformer.ln_f.bias"]
    assert result.component("unembed").weight_change == pytest.approx(relative_change(sa, sb, unembed), rel=1e-6)
    h1a, h1b = head_tensors(sa, 0, 1, D, DH) + head_shared(sa, 0), head_tensors(sb, 0, 1, D, DH) + head_shared(sb, 0)
    expected_h1 = math.sqrt(sum(float((y - x).double().square().sum()) for x, y in zip(h1a, h1b, strict=True)) / sq(h1a))
    assert result.component("L0.H1").weight_change == pytest.approx(expected_h1, rel=1e-6)
    assert all(c.changed and c.score > 0 for c in result.components)
    assert [c.score for c in result.components] == sorted((c.score for c in result.components), reverse=True)
    sel = theory.domain.select(limit=LIMIT, seed=0).inputs
    truth = brute_force_disagreements(MODADD, b, [dict(x) for x in sel])
    assert truth and {(d.input["a"], d.input["b"]) for d in result.disagreements} == truth
    assert result.agreement_b < result.agreement_a == 1.0
    changed = [c for c in result.components if c.ablation_a is not None]
    assert len(changed) == len(result.components) - 1  # everything but unembed was ablated


# ---------------------------------------------------------------------------------------------
# Refusals


def test_different_shapes_are_refused_in_one_line(gpt2_dir: Path, tmp_path: Path) -> None:
    from hf_models import build_hf_model, write_word_tokenizer

    words = words_of(gpt2_dir)
    other = tmp_path / "narrow"
    other.mkdir()
    build_hf_model("gpt2", other, n_layer=2, n_inner=64)
    write_word_tokenizer(other, words)
    with pytest.raises(ConfigError, match="d_mlp 128 in A, 64 in B"):
        check_compatible(open_checkpoint(gpt2_dir), open_checkpoint(other))
    out = runner.invoke(app, ["diff", str(gpt2_dir), str(other)])
    assert out.exit_code == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "d_mlp 128 in A, 64 in B" in lines[0], out.stderr
    deeper = tmp_path / "deeper"
    deeper.mkdir()
    build_hf_model("gpt2", deeper, n_layer=3)
    write_word_tokenizer(deeper, words)
    out = runner.invoke(app, ["diff", str(gpt2_dir), str(deeper), "--json"])
    assert out.exit_code == 2 and out.stdout == "" and "n_layers 2 in A, 3 in B" in out.stderr


def test_different_tokenizers_are_refused(gpt2_dir: Path, tmp_path: Path) -> None:
    from hf_models import write_word_tokenizer

    words = words_of(gpt2_dir)
    other = edited(gpt2_dir, tmp_path / "retok", lambda sd: None)
    swapped = list(words)
    swapped[3], swapped[4] = swapped[4], swapped[3]
    write_word_tokenizer(other, swapped)
    with pytest.raises(TokenizerError, match="tokenizers differ: token 'w0' is id 3 in A, 4 in B"):
        check_compatible(open_checkpoint(gpt2_dir), open_checkpoint(other))
    out = runner.invoke(app, ["diff", str(gpt2_dir), str(other)])
    assert out.exit_code == 2 and len(out.stderr.strip().splitlines()) == 1 and "tokenizers differ" in out.stderr
    (other / "tokenizer.json").unlink()
    out = runner.invoke(app, ["diff", str(gpt2_dir), str(other)])
    assert out.exit_code == 2 and "A has a tokenizer.json, B has none" in out.stderr
    write_word_tokenizer(other, words, bos="<s>")  # same vocabulary, a BOS post-processor
    out = runner.invoke(app, ["diff", str(gpt2_dir), str(other)])
    assert out.exit_code == 2 and "same vocabulary, different post_processor" in out.stderr


def test_usage_errors(gpt2_dir: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text("w1 w2\n")
    out = runner.invoke(app, ["diff", str(gpt2_dir), str(gpt2_dir), "--theory", str(THEORY), "--prompts", str(prompts)])
    assert out.exit_code == 2 and "not both" in out.stderr
    out = runner.invoke(app, ["diff", str(gpt2_dir), str(gpt2_dir), "--length", "500"])
    assert out.exit_code == 2 and "random inputs need a length" in out.stderr


# ---------------------------------------------------------------------------------------------
# CLI, engine API, every family


def test_cli_json_document(tmp_path: Path) -> None:
    def zero(sd: dict[str, torch.Tensor]) -> None:
        sd["transformer.h.0.attn.c_proj.weight"][DH : 2 * DH] = 0

    b = edited(MODADD, tmp_path / "zero_h1", zero)
    out = runner.invoke(app, ["diff", str(MODADD), str(b), "--theory", str(THEORY), "--limit", "300", "--json", "--show", "3",
                              "--device", "cpu"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["model_a"]["name"] == "modadd-grokked" and doc["model_b"]["name"] == "zero_h1" and doc["inputs"] == 300
    first = doc["components"][0]
    assert set(first) >= {"component", "score", "weight_change", "activation_change", "effect_a", "effect_b"}
    assert first["component"] == "L0.H1" and doc["n_changed"] == 1
    assert [c["score"] for c in doc["components"]] == sorted((c["score"] for c in doc["components"]), reverse=True)
    assert len(doc["disagreements"]) == min(3, doc["n_disagreements"])
    for d in doc["disagreements"]:
        assert set(d["input"]) == {"a", "b"} and d["a"]["answer"] != d["b"]["answer"] and d["expected"] is not None
    assert doc["agreement"]["a"] == 1.0
    text = runner.invoke(app, ["diff", str(MODADD), str(b), "--theory", str(THEORY), "--limit", "300", "--device", "cpu"])
    assert text.exit_code == 0 and "L0.H1" in text.stdout and "components changed" in text.stdout


def test_progress_and_cancel(gpt2_dir: Path) -> None:
    events = list(iter_diff(open_checkpoint(gpt2_dir), open_checkpoint(gpt2_dir), n_random=8, load=cpu))
    phases = [e.phase for e in events[:-1]]
    assert phases[0] == "weights" and "answers" in phases and "activations" in phases and phases[-1] == "done"
    assert isinstance(events[-1], DiffResult)
    calls = iter(range(1000))
    with pytest.raises(Cancelled):
        list(iter_diff(open_checkpoint(gpt2_dir), open_checkpoint(gpt2_dir), n_random=8, load=cpu, cancel=lambda: next(calls) > 3))


def test_every_parameter_of_every_family_belongs_to_a_component(hf_dirs: dict[str, Path]) -> None:
    """Each row of q/k/v and each column of the output matrix belongs to exactly the heads that
    read it; every parameter has an owner."""
    for family, d in hf_dirs.items():
        ckpt = open_checkpoint(d)
        cfg, layout = ckpt.config, ckpt.arch.attention_layout
        for name in ckpt.plan:
            shares = parameter_shares(name, cfg, layout)
            assert shares, f"{family}: {name} has no component"
            shape = tuple(ckpt.load_param(name).shape)
            if name.endswith(("attn.W_q", "attn.W_qkv", "attn.W_O")):
                axis = 1 if name.endswith("W_O") else 0
                covered = torch.zeros(shape[axis], dtype=torch.long)
                for s in shares:
                    assert s.component is not None and s.component.kind == "head" and s.axis == axis
                    covered[s.start : s.stop] += 1
                assert bool((covered >= 1).all()), f"{family}: {name} has rows no head owns"
                if not name.endswith("W_qkv") or cfg.n_kv_heads == cfg.n_heads or layout == "neox":
                    assert name.endswith("W_qkv") or bool((covered == 1).all()), f"{family}: {name}"


@pytest.mark.parametrize("family", ["llama", "gpt_neox", "gemma2", "phi3"])
def test_families_self_diff_zero_and_an_edited_head_first(family: str, hf_dirs: dict[str, Path], tmp_path: Path) -> None:
    """Grouped-query, interleaved-qkv, post-norm and fused-gate families: a self-diff is zero and
    zeroing one head's output columns (HF layout [d_model, heads * d_head]) makes it rank first."""
    src = hf_dirs[family]
    ckpt = open_checkpoint(src)
    cfg = ckpt.config
    assert all(c.score == 0 for c in run_diff(src, src, n_random=16).components)
    o_name = {"gpt_neox": "gpt_neox.layers.1.attention.dense.weight"}.get(family, "model.layers.1.self_attn.o_proj.weight")

    def zero(sd: dict[str, torch.Tensor]) -> None:
        sd[o_name][:, cfg.d_head : 2 * cfg.d_head] = 0

    b = edited(src, tmp_path / family, zero)
    result = run_diff(src, b, n_random=16)
    assert result.components[0].component == Component("head", 1, 1)
    assert result.components[0].activation_change == pytest.approx(1.0, abs=1e-5)
    assert all(c.score == 0 for c in result.components[1:])
