from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from tui_interp.cli import app
from tui_interp.model import load_model

runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def run_json(*args: object) -> dict:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def test_step_json(gpt2_dir: Path) -> None:
    doc = run_json("step", gpt2_dir, "--prompt", "w1 w2 w3", "--to", "L1.attn")
    assert doc["at"] == {"index": 3, "name": "L1.attn"}
    assert doc["steps"] == ["embed", "L0.attn", "L0.mlp", "L1.attn", "L1.mlp", "unembed"]
    assert len(doc["resid_norms"]) == 3 and len(doc["lens"]) == 3
    assert set(doc["attention"]) == {f"L1.H{h}" for h in range(4)}
    assert doc["attention"]["L1.H0"][0][1] == 0.0  # causal
    mlp = run_json("step", gpt2_dir, "--tokens", "4,5", "--to", "2")
    assert mlp["at"]["name"] == "L0.mlp" and len(mlp["top_neurons"]) == 10
    end = run_json("step", gpt2_dir, "--tokens", "4,5", "--stream")
    assert end["at"]["name"] == "unembed"


def test_step_past_the_end(gpt2_dir: Path) -> None:
    result = invoke("step", gpt2_dir, "--tokens", "4,5", "--to", "9")
    assert result.exit_code == 2 and "past the end" in result.stderr


def test_ablate_json(gpt2_dir: Path) -> None:
    doc = run_json("ablate", gpt2_dir, "--prompt", "w1 w2 w3", "-c", "L1.H2", "--target", "w4")
    assert doc["interventions"] == ["L1.H2:zero"] and doc["target"]["text"] == "w4"
    lm = load_model(gpt2_dir, device="cpu")

    def zero(x, *, hook):
        x = x.clone()
        x[:, :, 2] = 0
        return x

    with lm.model.hooks([("blocks.1.attn.hook_z", zero)]):
        expected = float(lm.model(torch.tensor([[4, 5, 6]]))[0, -1, 7])
    assert doc["ablated"]["metric"] == pytest.approx(expected, abs=1e-5)
    mean = run_json("ablate", gpt2_dir, "--tokens", "4,5,6", "-c", "L0.*", "--mode", "mean")
    assert "random token sequences" in mean["reference"] and len(mean["interventions"]) == 6


def test_ablate_errors(gpt2_dir: Path) -> None:
    bad = invoke("ablate", gpt2_dir, "--tokens", "4,5", "-c", "L9.H0")
    assert bad.exit_code == 2 and "L9" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    two = invoke("ablate", gpt2_dir, "--tokens", "4,5", "-c", "L0.H0", "--target", "w1 w2")
    assert two.exit_code == 2 and "is 2 tokens" in two.stderr and "#123" in two.stderr


def test_patch_json(gpt2_dir: Path) -> None:
    doc = run_json("patch", gpt2_dir, "--clean", "w1 w2 w3", "--corrupt", "w1 w9 w3", "--per-position")
    assert len(doc["results"]) == 2 * 4 + 2 and len(doc["results"][0]["effect"]) == 3
    assert all(r["effect"][0] == pytest.approx(0.0, abs=1e-4) for r in doc["results"])  # before the corruption
    bad = invoke("patch", gpt2_dir, "--clean", "w1 w2", "--corrupt", "w1")
    assert bad.exit_code == 2 and "same length" in bad.stderr


def test_lens_with_attribution(gpt2_dir: Path) -> None:
    doc = run_json("lens", gpt2_dir, "--prompt", "w1 w2 w3", "--target", "w4", "--other", "w5")
    assert len(doc["lens"]) == 3 and [r["after"] for r in doc["lens"][0]] == ["embed", "L0", "L1"]
    a = doc["attribution"]
    assert a["sum"] == pytest.approx(a["logit"], abs=1e-4)
    assert set(a["contributions"]) == {"embed", "pos_embed", "L0.mlp", "L1.mlp"} | {f"L{l}.H{h}" for l in range(2) for h in range(4)}


def test_run_with_ablation_saves_the_ablated_cache(gpt2_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ablated.safetensors"
    doc = run_json("run", gpt2_dir, "--tokens", "4,5,6", "--ablate", "L0.H1", "--ablate", "L1.mlp:mean",
                   "--save-cache", out, "--hooks", "blocks.*")
    assert doc["interventions"] == ["L0.H1:zero", "L1.mlp:mean"]
    from safetensors import safe_open

    with safe_open(str(out), framework="pt") as f:
        assert torch.all(f.get_tensor("blocks.0.attn.hook_z")[:, :, 1] == 0)
        assert f.metadata()["interventions"] == '["L0.H1:zero", "L1.mlp:mean"]'


def test_run_with_steering(gpt2_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    save_file({"v": torch.ones(32)}, tmp_path / "v.safetensors")
    plain = run_json("run", gpt2_dir, "--tokens", "4,5,6")
    steered = run_json("run", gpt2_dir, "--tokens", "4,5,6", "--steer", f"blocks.1.hook_resid_pre={tmp_path / 'v.safetensors'}*5")
    assert steered["interventions"] == ["steer blocks.1.hook_resid_pre x5"]
    assert steered["top_k"] != plain["top_k"]
    bad = invoke("run", gpt2_dir, "--tokens", "4", "--steer", "blocks.1.hook_resid_pre=nope.safetensors")
    assert bad.exit_code == 2 and "nope.safetensors" in bad.stderr
