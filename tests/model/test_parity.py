"""Our one Transformer against HuggingFace transformers on the same weights (float32, eager)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hf_models import FAMILIES, build_hf_model, compare, load_hf, rewrite_config
from safetensors.torch import load_file, save_file

from tui_interp.model import load_model, open_checkpoint

TOL = dict(atol=1e-4, rtol=0)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_parity_with_transformers(family: str, hf_dirs: dict[str, Path]) -> None:
    compare(load_hf(hf_dirs[family]), hf_dirs[family])


def test_mistral_sliding_window_is_applied(hf_dirs: dict[str, Path]) -> None:
    # window 6 < 17 tokens: parity above covers it; here we check the mask really bites
    lm = load_model(hf_dirs["mistral"], device="cpu")
    _, cache = lm.model.run_with_cache(torch.arange(17)[None], "blocks.0.attn.hook_pattern")
    pattern = cache["blocks.0.attn.hook_pattern"][0]  # [head, q, k]
    assert torch.all(pattern[:, 16, :11] == 0)
    assert torch.all(pattern[:, 16, 11:] > 0)


@pytest.mark.parametrize(
    ("family", "overrides"),
    [
        ("gpt2", dict(n_inner=40, tie_word_embeddings=False, activation_function="relu")),
        ("llama", dict(num_key_value_heads=1, attention_bias=True, mlp_bias=True, tie_word_embeddings=True)),
        ("llama", dict(num_key_value_heads=4, rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0})),
        ("llama", dict(rope_parameters={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                        "original_max_position_embeddings": 16, "rope_theta": 500000.0})),
        ("gpt_neox", dict(use_parallel_residual=False, attention_bias=False)),
        ("qwen2", dict(tie_word_embeddings=False, hidden_act="gelu")),
    ],
    ids=["gpt2-untied-relu", "llama-mqa-bias-tied", "llama-mha-linear-rope", "llama3-rope", "neox-sequential-nobias", "qwen2-untied-gelu"],
)
def test_variants(family: str, overrides: dict, tmp_path: Path) -> None:
    hf = build_hf_model(family, tmp_path, **overrides)
    compare(hf, tmp_path, lengths=(9,))


def test_transformers4_config_dialect_llama(tmp_path: Path) -> None:
    """Checkpoints saved by transformers 4 say rope_theta + rope_scaling, not rope_parameters."""
    scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 16}
    hf = build_hf_model("llama", tmp_path, rope_parameters={**scaling, "rope_theta": 50000.0})
    rewrite_config(tmp_path, rope_parameters=None, rope_theta=50000.0, rope_scaling={**scaling, "type": "llama3"}, dtype=None,
                   torch_dtype="float32", transformers_version="4.44.2")
    rope = open_checkpoint(tmp_path).config.rope
    assert (rope.theta, rope.scaling, rope.factor, rope.original_max_position_embeddings) == (50000.0, "llama3", 8.0, 16)
    compare(hf, tmp_path, lengths=(12,))


def test_transformers4_config_dialect_neox(tmp_path: Path) -> None:
    hf = build_hf_model("gpt_neox", tmp_path, rope_parameters={"rope_type": "default", "rope_theta": 777.0, "partial_rotary_factor": 0.25})
    rewrite_config(tmp_path, rope_parameters=None, rotary_pct=0.25, rotary_emb_base=777, transformers_version="4.40.0")
    cfg = open_checkpoint(tmp_path).config
    assert (cfg.rope.theta, cfg.rope.rotary_dim) == (777.0, 2)
    compare(hf, tmp_path, lengths=(12,))


def test_transformers4_gpt2_n_inner_null(tmp_path: Path) -> None:
    hf = build_hf_model("gpt2", tmp_path)
    rewrite_config(tmp_path, n_inner=None)
    assert open_checkpoint(tmp_path).config.d_mlp == 4 * 32
    compare(hf, tmp_path, lengths=(4,))


def test_sharded_checkpoint(tmp_path: Path) -> None:
    hf = build_hf_model("llama", tmp_path / "src")
    hf.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    files = sorted(p.name for p in (tmp_path / "sharded").glob("*.safetensors"))
    assert len(files) > 1 and (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    compare(hf, tmp_path / "sharded", lengths=(6,))


def test_bare_safetensors_with_sibling_config(tmp_path: Path) -> None:
    hf = build_hf_model("gpt2", tmp_path)
    (tmp_path / "model.safetensors").rename(tmp_path / "weights.safetensors")
    ckpt = open_checkpoint(tmp_path / "weights.safetensors")
    assert ckpt.name == "weights" and ckpt.root == tmp_path
    lm = load_model(tmp_path / "weights.safetensors", device="cpu")
    tokens = torch.tensor([[1, 2, 3]])
    torch.testing.assert_close(lm.model(tokens), hf(tokens).logits, **TOL)


def test_bare_safetensors_with_config_in_metadata(tmp_path: Path) -> None:
    hf = build_hf_model("gpt2", tmp_path / "src")
    config = (tmp_path / "src" / "config.json").read_text()
    save_file(load_file(tmp_path / "src" / "model.safetensors"), tmp_path / "bare.safetensors", metadata={"config": config})
    lm = load_model(tmp_path / "bare.safetensors", device="cpu")
    tokens = torch.tensor([[5, 6, 7, 8]])
    torch.testing.assert_close(lm.model(tokens), hf(tokens).logits, **TOL)


def test_prefixless_checkpoint(tmp_path: Path) -> None:
    """A base model saved without the LM wrapper (`h.0...` instead of `transformer.h.0...`), tied."""
    hf = build_hf_model("gpt2", tmp_path / "src")
    sd = load_file(tmp_path / "src" / "model.safetensors")
    (tmp_path / "bare").mkdir()
    save_file({k.removeprefix("transformer."): v for k, v in sd.items()}, tmp_path / "bare" / "model.safetensors")
    (tmp_path / "bare" / "config.json").write_text((tmp_path / "src" / "config.json").read_text())
    lm = load_model(tmp_path / "bare", device="cpu")
    tokens = torch.tensor([[5, 6, 7, 8]])
    torch.testing.assert_close(lm.model(tokens), hf(tokens).logits, **TOL)


def test_half_precision_runs_close(hf_dirs: dict[str, Path]) -> None:
    lm32 = load_model(hf_dirs["llama"], device="cpu", dtype="float32")
    lm16 = load_model(hf_dirs["llama"], device="cpu", dtype="bfloat16")
    assert lm16.model.W_E.dtype == torch.bfloat16
    tokens = torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6]])
    torch.testing.assert_close(lm16.model(tokens).float(), lm32.model(tokens), atol=0.1, rtol=0.05)


def test_inspect_counts_match_transformers(hf_dirs: dict[str, Path]) -> None:
    for family, d in hf_dirs.items():
        hf = load_hf(d)
        ckpt = open_checkpoint(d)
        assert ckpt.n_params == sum(p.numel() for p in hf.parameters()), family
        assert ckpt.config.n_params == ckpt.n_params, family
        assert json.loads((d / "config.json").read_text())["model_type"] == ckpt.config.architecture
