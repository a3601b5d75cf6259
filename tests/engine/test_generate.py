"""`generate`: greedy equals transformers' greedy generate; the KV cache changes nothing but the
cost; interventions apply at every generated position; the CLI prints the documented JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from hf_models import build_hf_model, load_hf, rewrite_config
from safetensors.torch import save_file
from typer.testing import CliRunner

from tui_interp.cli import app
from tui_interp.engine.generate import generate, generate_ids, localise
from tui_interp.engine.interventions import Steering, hooks_for, parse_interventions, prepare, reference_batch
from tui_interp.model import load_model

runner = CliRunner()
PROMPT = [5, 9, 2, 7, 7, 1, 3]


def hf_greedy(hf, prompt: list[int], n: int, eos: int | None) -> list[int]:
    out = hf.generate(torch.tensor([prompt]), max_new_tokens=n, do_sample=False, eos_token_id=eos, pad_token_id=0)
    return out[0, len(prompt) :].tolist()


@pytest.mark.parametrize("family", ["gpt2", "llama", "mistral", "gpt_neox", "gemma", "gemma2", "gemma3_text", "qwen3", "phi3", "olmo2"])
def test_greedy_equals_transformers(family: str, hf_dirs: dict[str, Path]) -> None:
    lm = load_model(hf_dirs[family], device="cpu")
    hf = load_hf(hf_dirs[family])
    for prompt in (PROMPT, [3] * 12):
        new, stopped = generate_ids(lm.model, prompt, max_new_tokens=12, eos=lm.config.eos_token_id)
        assert new == hf_greedy(hf, prompt, 12, lm.config.eos_token_id), (family, prompt)
        assert stopped == ("eos" if new[-1] == lm.config.eos_token_id else "max_new_tokens")


@pytest.mark.parametrize(
    "overrides",
    [
        dict(max_position_embeddings=16, rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0}),
        dict(rope_parameters={"rope_type": "longrope", "short_factor": [1.0, 1.1, 1.5, 2.0], "long_factor": [1.0, 2.0, 4.0, 8.0],
                              "original_max_position_embeddings": 10, "rope_theta": 10000.0}),
    ],
    ids=["dynamic", "longrope"],
)
def test_greedy_across_the_trained_length(overrides: dict, tmp_path: Path) -> None:
    """The rope frequencies change mid-generation (cached keys keep theirs), as in transformers."""
    hf = build_hf_model("llama", tmp_path, **overrides)
    lm = load_model(tmp_path, device="cpu")
    new, _ = generate_ids(lm.model, PROMPT, max_new_tokens=14, eos=None)
    assert new == hf_greedy(hf, PROMPT, 14, None) and len(new) == 14


def test_the_cache_runs_each_position_once(hf_dirs: dict[str, Path]) -> None:
    lm = load_model(hf_dirs["llama"], device="cpu")
    seen: list[int] = []
    with lm.model.hooks([("hook_embed", lambda x, hook: seen.append(x.shape[1]))]):
        new, _ = generate_ids(lm.model, PROMPT, max_new_tokens=6, eos=None)
    assert seen == [len(PROMPT)] + [1] * (len(new) - 1)


def naive(lm, prompt: list[int], n: int, ivs) -> list[int]:
    """One full forward per new token (no cache), the interventions on every position."""
    ids = list(prompt)
    for _ in range(n):
        local = [x for iv in ivs if (x := localise(iv, 0, len(ids))) is not None]
        with torch.inference_mode(), lm.model.hooks(hooks_for(local, lm.config)):
            ids.append(int(lm.model(torch.tensor([ids]))[0, -1].argmax()))
    return ids[len(prompt) :]


@pytest.mark.parametrize("spec", ["L0.attn:zero", "L*.H1:mean", "L1.mlp:resample", "L0.H0@9,11:zero", "L0.N3@2:mean"])
def test_interventions_apply_to_every_generated_position(spec: str, hf_dirs: dict[str, Path]) -> None:
    lm = load_model(hf_dirs["gemma2"], device="cpu")
    n = 8
    result = generate(lm, PROMPT, max_new_tokens=n, ablate=[spec], stop_at_eos=False)
    reach = len(PROMPT) + n
    ivs = parse_interventions([spec], lm.config)
    if any(iv.needs_reference for iv in ivs):
        ivs = prepare(ivs, lm.model, reference=reference_batch(lm, reach, seed=0), seed=0, length=reach)
    assert list(result.new_ids) == naive(lm, PROMPT, n, ivs)
    # and it did something at a generated position
    ids = torch.tensor([PROMPT + list(result.new_ids)])
    local = [x for iv in ivs if (x := localise(iv, 0, ids.shape[1])) is not None]
    with torch.inference_mode(), lm.model.hooks(hooks_for(local, lm.config)):
        ablated = lm.model(ids)
    assert not torch.allclose(ablated[0, 12:], lm.model(ids)[0, 12:])
    assert result.interventions and (result.reference is not None) == any(m in spec for m in ("mean", "resample"))


def test_steering_applies_to_every_generated_position(hf_dirs: dict[str, Path]) -> None:
    lm = load_model(hf_dirs["olmo2"], device="cpu")
    vector = torch.randn(lm.config.d_model, generator=torch.Generator().manual_seed(0))
    steer = Steering("blocks.0.hook_resid_post", vector, 4.0)
    result = generate(lm, PROMPT, max_new_tokens=6, steer=[steer], stop_at_eos=False)
    assert list(result.new_ids) == naive(lm, PROMPT, 6, [steer])
    assert list(result.new_ids) != naive(lm, PROMPT, 6, [])


def test_stops_at_eos_and_at_the_context(hf_dirs: dict[str, Path], tmp_path: Path) -> None:
    lm = load_model(hf_dirs["llama"], device="cpu")
    first = generate_ids(lm.model, PROMPT, max_new_tokens=1)[0][0]
    d = tmp_path / "m"
    shutil.copytree(hf_dirs["llama"], d)
    rewrite_config(d, eos_token_id=first)
    assert generate(load_model(d, device="cpu"), PROMPT, max_new_tokens=10).stopped == "eos"
    n_ctx = lm.config.n_ctx
    new, stopped = generate_ids(lm.model, [1] * (n_ctx - 2), max_new_tokens=10)
    assert len(new) == 2 and stopped == "context"


def test_sampling_is_seeded(hf_dirs: dict[str, Path]) -> None:
    lm = load_model(hf_dirs["qwen3"], device="cpu")
    a = generate_ids(lm.model, PROMPT, max_new_tokens=10, temperature=1.5, seed=3)[0]
    assert a == generate_ids(lm.model, PROMPT, max_new_tokens=10, temperature=1.5, seed=3)[0]
    assert any(generate_ids(lm.model, PROMPT, max_new_tokens=10, temperature=1.5, seed=s)[0] != a for s in range(4, 8))


# ---- the command


def test_cli_json(gpt2_dir: Path) -> None:
    result = runner.invoke(app, ["generate", str(gpt2_dir), "--prompt", "w1 w2 w3", "--max-new-tokens", "5", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc) == {"prompt_tokens", "new_tokens", "text"}
    lm = load_model(gpt2_dir, device="cpu")
    assert doc["prompt_tokens"] == [4, 5, 6]
    assert doc["new_tokens"] == generate_ids(lm.model, [4, 5, 6], max_new_tokens=5, eos=lm.config.eos_token_id)[0]
    assert doc["text"] == lm.tokenizer.decode(doc["new_tokens"])


def test_cli_interventions_and_human_output(gpt2_dir: Path, tmp_path: Path) -> None:
    vec = tmp_path / "v.safetensors"
    save_file({"v": torch.ones(32)}, vec)
    args = ["generate", str(gpt2_dir), "--tokens", "4,5,6", "--max-new-tokens", "4", "--ablate", "L0.H1:mean", "--steer",
            f"blocks.0.hook_resid_post={vec}*2", "--temperature", "0.7", "--seed", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "interventions: L0.H1:mean" in result.stdout and "steer blocks.0.hook_resid_post x2" in result.stdout
    again = runner.invoke(app, [*args, "--json"])
    assert len(json.loads(again.stdout)["new_tokens"]) <= 4


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--tokens", ",".join(["1"] * 64)], "fills the model's context"),
        (["--tokens", "1", "--ablate", "L9.H0"], "L9.H0"),
        (["--tokens", "1", "--ablate", "L0.H0@99:zero", "--max-new-tokens", "3"], "past the end of the generation"),
        (["--tokens", "1", "--steer", "nothing=x.safetensors"], "nothing"),
    ],
)
def test_cli_errors_are_one_line(gpt2_dir: Path, args: list[str], fragment: str) -> None:
    result = runner.invoke(app, ["generate", str(gpt2_dir), *args])
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and fragment in err, err
