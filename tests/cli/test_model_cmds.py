from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from typer.testing import CliRunner

from tui_interp.cli import app
from tui_interp.model import load_model, open_checkpoint

runner = CliRunner()


def run_json(*args: object) -> dict:
    result = runner.invoke(app, [str(a) for a in args] + ["--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def test_inspect_json(hf_dirs: dict[str, Path]) -> None:
    doc = run_json("inspect", hf_dirs["llama"])
    assert {k: doc[k] for k in ("architecture", "n_layers", "n_heads", "n_kv_heads", "d_model", "d_head", "d_mlp", "vocab_size", "n_ctx")} == {
        "architecture": "llama", "n_layers": 3, "n_heads": 4, "n_kv_heads": 2, "d_model": 32, "d_head": 8, "d_mlp": 48,
        "vocab_size": 97, "n_ctx": 64}
    assert doc["dtype"] == "float32" and len(doc["fingerprint"]) == 16 and doc["n_params"] > 0


@pytest.mark.parametrize("family", ["gpt2", "llama", "mistral", "qwen2", "gpt_neox"])
def test_inspect_and_run_every_family(family: str, hf_dirs: dict[str, Path]) -> None:
    assert run_json("inspect", hf_dirs[family])["architecture"] == family
    doc = run_json("run", hf_dirs[family], "--tokens", "4,5,6", "--top-k", "3")
    assert len(doc["top_k"]) == 3 and len(doc["logit_lens"]) == open_checkpoint(hf_dirs[family]).config.n_layers + 1
    # the last logit-lens row is the model's own prediction
    assert doc["logit_lens"][-1]["top"][0]["id"] == doc["top_k"][0]["id"]


def test_inspect_reads_no_tensor_data(hf_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import tui_interp.model.checkpoint as ck

    def forbidden(*a, **k):
        raise AssertionError("inspect must not open tensors")

    monkeypatch.setattr(ck, "safe_open", forbidden)
    assert run_json("inspect", hf_dirs["gpt2"])["architecture"] == "gpt2"


def test_run_human_output(gpt2_dir: Path) -> None:
    result = runner.invoke(app, ["run", str(gpt2_dir), "--prompt", "w1 w2 [bold]w3"])
    assert result.exit_code == 0, result.output
    assert "next token" in result.stdout and "logit lens" in result.stdout
    assert "'<unk>'" in result.stdout  # "[bold]w3" is not a word: the tokenizer's unk, shown as text


def test_run_json_matches_model(gpt2_dir: Path) -> None:
    doc = run_json("run", gpt2_dir, "--prompt", "w3 w4 w5", "--top-k", "4")
    assert [t["id"] for t in doc["tokens"]] == [6, 7, 8] and [t["text"] for t in doc["tokens"]] == ["w3", "w4", "w5"]
    assert doc["bos"] == "tokenizer"
    lm = load_model(gpt2_dir, device="cpu")
    probs = torch.softmax(lm.model(torch.tensor([[6, 7, 8]]))[0, -1], -1)
    top = torch.topk(probs, 4)
    assert [r["id"] for r in doc["top_k"]] == top.indices.tolist()
    assert [r["prob"] for r in doc["top_k"]] == pytest.approx(top.values.tolist(), abs=1e-6)


def test_bos_is_never_silent(llama_bos_dir: Path, gpt2_dir: Path) -> None:
    # the tokenizer's post-processor prepends <s> (id 1)
    assert [t["id"] for t in run_json("run", llama_bos_dir, "--prompt", "w1 w2")["tokens"]] == [1, 4, 5]
    off = run_json("run", llama_bos_dir, "--prompt", "w1 w2", "--no-bos")
    assert [t["id"] for t in off["tokens"]] == [4, 5] and off["bos"] == "forced off"
    # a tokenizer without a post-processor: --bos adds the config's bos_token_id
    on = run_json("run", gpt2_dir, "--prompt", "w1", "--bos")
    assert [t["id"] for t in on["tokens"]] == [1, 4] and on["bos"] == "forced on"


def test_save_cache_is_a_readable_safetensors_file(gpt2_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cache.safetensors"
    doc = run_json("run", gpt2_dir, "--tokens", "3,4,5,6", "--save-cache", out, "--hooks", "blocks.*.attn.hook_pattern")
    assert doc["saved_cache"]["n_tensors"] == 3
    with safe_open(str(out), framework="pt") as f:
        assert sorted(f.keys()) == ["blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern", "logits"]
        assert f.get_tensor("blocks.1.attn.hook_pattern").shape == (1, 4, 4, 4)
        assert f.get_tensor("logits").shape == (1, 4, 97)
        meta = f.metadata()
    assert json.loads(meta["tokens"]) == [3, 4, 5, 6] and meta["fingerprint"] == open_checkpoint(gpt2_dir).fingerprint


def test_save_cache_all_hooks(gpt2_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.safetensors"
    run_json("run", gpt2_dir, "--tokens", "3,4", "--save-cache", out)
    lm = load_model(gpt2_dir, device="cpu")
    with safe_open(str(out), framework="pt") as f:
        assert set(f.keys()) == set(lm.model.hook_names())
        resid = f.get_tensor("blocks.1.hook_resid_post")
    _, cache = lm.model.run_with_cache(torch.tensor([[3, 4]]), "blocks.1.hook_resid_post")
    torch.testing.assert_close(resid, cache["blocks.1.hook_resid_post"])


@pytest.mark.parametrize("family", ["gpt2", "llama", "mistral", "qwen2", "gpt_neox"])
def test_verify_passes(family: str, hf_dirs: dict[str, Path]) -> None:
    doc = run_json("verify", hf_dirs[family])
    assert doc["ok"] is True and doc["max_abs_logit_diff"] <= 1e-4
    assert all(len(p["resid_diffs"]) == open_checkpoint(hf_dirs[family]).config.n_layers + 1 for p in doc["prompts"])


def test_verify_catches_a_mismatch(gpt2_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # break our implementation on purpose: verify must notice and exit 1
    from tui_interp.model import transformer

    monkeypatch.setattr(transformer.Norm, "forward", lambda self, x: self.hook_normalized(x))
    result = runner.invoke(app, ["verify", str(gpt2_dir)])
    assert result.exit_code == 1
    assert "MISMATCH" in result.stdout


def test_verify_without_transformers(gpt2_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tui_interp.model import verify

    monkeypatch.setattr(verify, "transformers_available", lambda: False)
    result = runner.invoke(app, ["verify", str(gpt2_dir)])
    assert result.exit_code == 2 and "pip install" in result.stderr


def test_version_and_help() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "inspect" in result.stdout and "verify" in result.stdout
