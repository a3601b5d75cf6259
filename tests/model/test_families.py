"""Issue 18: the newer families and rope scalings against transformers, in both config dialects;
their hooks, the stepper's halves, the KV cache, and loading without copies."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from hf_models import FAMILIES, NEW_FAMILIES, build_hf_model, compare, rewrite_config

from tui_interp.engine.stepper import Stepper
from tui_interp.model import load_model, open_checkpoint
from tui_interp.model.transformer import KVCache

TOKENS = torch.tensor([[5, 9, 2, 7, 7, 1, 3, 8, 4, 4, 6, 11, 12, 3, 9, 9, 10]])

# transformers-4 spelling of each new family's tiny config (tests/hf_models.py builds them in the 5 dialect)
T4_DIALECT: dict[str, dict] = {
    "gemma": dict(rope_parameters=None, rope_theta=10000.0, hidden_act="gelu", hidden_activation=None),
    "gemma2": dict(rope_parameters=None, rope_theta=10000.0, layer_types=None, hidden_act="gelu_pytorch_tanh"),
    "gemma3_text": dict(rope_parameters=None, layer_types=None, _sliding_window_pattern=None, rope_theta=50000.0,
                        rope_local_base_freq=500.0, rope_scaling={"rope_type": "linear", "factor": 2.0}, sliding_window_pattern=2),
    "qwen3": dict(rope_parameters=None, rope_theta=10000.0, rope_scaling=None, layer_types=None),
    "phi3": dict(rope_parameters=None, rope_theta=10000.0, rope_scaling=None),
    "olmo2": dict(rope_parameters=None, rope_theta=10000.0, rope_scaling=None),
}


@pytest.mark.parametrize("family", NEW_FAMILIES)
def test_transformers4_dialect(family: str, tmp_path: Path) -> None:
    hf = build_hf_model(family, tmp_path)
    before = open_checkpoint(tmp_path).config
    rewrite_config(tmp_path, dtype=None, torch_dtype="float32", transformers_version="4.50.0", **T4_DIALECT[family])
    assert open_checkpoint(tmp_path).config == before
    compare(hf, tmp_path, lengths=(17,))


ROPE_VARIANTS = {
    "yarn": ("llama", dict(rope_parameters={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16, "rope_theta": 10000.0}),
             {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16}, (9, 20)),
    "yarn-mscale": ("llama", dict(rope_parameters={"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 8, "mscale": 0.9,
                                                   "mscale_all_dim": 0.5, "beta_fast": 16, "beta_slow": 2, "rope_theta": 5000.0}),
                    {"type": "yarn", "factor": 8.0, "original_max_position_embeddings": 8, "mscale": 0.9, "mscale_all_dim": 0.5,
                     "beta_fast": 16, "beta_slow": 2}, (20,)),
    "dynamic": ("llama", dict(max_position_embeddings=16, rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0}),
                {"type": "dynamic", "factor": 2.0}, (9, 20, 30)),
    "longrope": ("llama", dict(rope_parameters={"rope_type": "longrope", "short_factor": [1.0, 1.1, 1.5, 2.0], "long_factor": [1.0, 2.0, 4.0, 8.0],
                                                "original_max_position_embeddings": 8, "rope_theta": 10000.0}),
                 {"type": "longrope", "short_factor": [1.0, 1.1, 1.5, 2.0], "long_factor": [1.0, 2.0, 4.0, 8.0], "original_max_position_embeddings": 8},
                 (5, 12)),
    "phi3-longrope": ("phi3", dict(original_max_position_embeddings=8, rope_parameters={
        "rope_type": "longrope", "short_factor": [1.0, 1.2, 1.4, 3.0], "long_factor": [1.5, 2.5, 5.0, 9.0], "rope_theta": 10000.0}),
        {"type": "su", "short_factor": [1.0, 1.2, 1.4, 3.0], "long_factor": [1.5, 2.5, 5.0, 9.0]}, (6, 14)),
    "phi3-partial-longrope": ("phi3", dict(original_max_position_embeddings=8, partial_rotary_factor=0.5, rope_parameters={
        "rope_type": "longrope", "short_factor": [1.0, 2.0], "long_factor": [3.0, 4.0], "rope_theta": 10000.0, "partial_rotary_factor": 0.5}),
        {"type": "longrope", "short_factor": [1.0, 2.0], "long_factor": [3.0, 4.0]}, (6, 14)),
}


@pytest.mark.parametrize("dialect", ["transformers5", "transformers4"])
@pytest.mark.parametrize("variant", sorted(ROPE_VARIANTS))
def test_rope_scalings(variant: str, dialect: str, tmp_path: Path) -> None:
    family, overrides, t4_scaling, lengths = ROPE_VARIANTS[variant]
    hf = build_hf_model(family, tmp_path, **overrides)
    rope = open_checkpoint(tmp_path).config.rope
    assert rope.scaling == variant.split("-")[-1] if "mscale" not in variant else rope.scaling == "yarn"
    if dialect == "transformers4":
        theta = overrides["rope_parameters"]["rope_theta"]
        extra = {"partial_rotary_factor": 0.5} if "partial" in variant else {}
        rewrite_config(tmp_path, rope_parameters=None, rope_theta=theta, rope_scaling=t4_scaling, transformers_version="4.45.0", **extra)
        assert open_checkpoint(tmp_path).config.rope == rope
    compare(hf, tmp_path, lengths=lengths)


def test_dynamic_rope_extends_the_context(tmp_path: Path) -> None:
    build_hf_model("llama", tmp_path, max_position_embeddings=16, rope_parameters={"rope_type": "dynamic", "factor": 2.5, "rope_theta": 1e4})
    assert open_checkpoint(tmp_path).config.n_ctx == 40


# ---- hooks, steps and the cache, per family


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def lm(request, hf_dirs: dict[str, Path]):
    return load_model(hf_dirs[request.param], device="cpu")


def test_new_hook_points_and_their_steps(lm) -> None:
    cfg, model = lm.config, lm.model
    names = set(model.hook_names())
    for l in range(cfg.n_layers):
        b = f"blocks.{l}."
        assert (b + "ln1.hook_normalized" in names) == cfg.pre_norms
        assert (b + "ln1_post.hook_normalized" in names) == (b + "ln2_post.hook_normalized" in names) == cfg.post_norms
        assert (b + "attn.hook_q_normed" in names) == (b + "attn.hook_k_normed" in names) == bool(cfg.qk_norm)
        for n in ("hook_resid_pre", "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_pattern", "attn.hook_z", "hook_attn_out",
                  "hook_resid_mid", "mlp.hook_pre", "mlp.hook_post", "hook_mlp_out", "hook_resid_post"):
            assert b + n in names
        assert str(model.step_of_hook(b + "ln2_post.hook_normalized")) == f"L{l}.mlp"
        assert str(model.step_of_hook(b + "ln1_post.hook_normalized")) == f"L{l}.attn"
        assert str(model.step_of_hook(b + "attn.hook_q_normed")) == f"L{l}.attn"
    _, cache = model.run_with_cache(TOKENS)
    p = TOKENS.shape[1]
    assert cache["blocks.0.attn.hook_q"].shape == (1, p, cfg.n_heads, cfg.d_head)
    assert cache["blocks.0.attn.hook_k"].shape == (1, p, cfg.n_kv_heads, cfg.d_head)
    if cfg.qk_norm:
        assert cache["blocks.0.attn.hook_k_normed"].shape == (1, p, cfg.n_kv_heads, cfg.d_head)
    assert cache["blocks.0.hook_attn_out"].shape == (1, p, cfg.d_model)
    if cfg.post_norms:  # hook_attn_out is what the residual stream gets: the post-norm's output
        torch.testing.assert_close(cache["blocks.0.hook_attn_out"], cache["blocks.0.ln1_post.hook_normalized"], atol=0, rtol=0)
        torch.testing.assert_close(cache["blocks.0.hook_mlp_out"], cache["blocks.0.ln2_post.hook_normalized"], atol=0, rtol=0)


def test_stepping_equals_the_forward_exactly(lm) -> None:
    lm.model.attn_impl = "eager"
    try:
        logits, cache = lm.model.run_with_cache(TOKENS)
        s = Stepper(lm.model, TOKENS)
        state = s.run_to_end()
        torch.testing.assert_close(state.logits, logits, atol=0, rtol=0)
        for name, value in s.full_cache().items():
            torch.testing.assert_close(value, cache[name], atol=0, rtol=0, msg=name)
    finally:
        lm.model.attn_impl = "auto"


def test_noop_hooks_change_nothing(lm) -> None:
    lm.model.attn_impl = "eager"
    try:
        clean = lm.model(TOKENS)
        with lm.model.hooks([("*", lambda x, hook: x.clone())]):
            torch.testing.assert_close(lm.model(TOKENS), clean, atol=0, rtol=0)
    finally:
        lm.model.attn_impl = "auto"


def test_kv_cache_continues_the_forward(lm) -> None:
    """Prefix, then one token at a time: every position's logits as the full forward's; hooks see the new positions."""
    model, cfg = lm.model, lm.config
    full = model(TOKENS)
    cache = KVCache(cfg.n_layers, capacity=TOKENS.shape[1])
    out = [model(TOKENS[:, :6], cache=cache)]
    for i in range(6, TOKENS.shape[1]):
        step_cache: dict[str, torch.Tensor] = {}

        def keep(x, *, hook, store=step_cache):
            store[hook.name] = x

        with model.hooks([("blocks.0.attn.hook_pattern", keep), ("blocks.0.hook_resid_post", keep)]):
            out.append(model(TOKENS[:, i : i + 1], cache=cache))
        assert step_cache["blocks.0.attn.hook_pattern"].shape == (1, cfg.n_heads, 1, i + 1)
        assert step_cache["blocks.0.hook_resid_post"].shape == (1, 1, cfg.d_model)
    assert cache.length == TOKENS.shape[1]
    torch.testing.assert_close(torch.cat(out, dim=1), full, atol=2e-5, rtol=0)


def test_kv_cache_respects_the_context(lm) -> None:
    from tui_interp.errors import InputError

    cache = KVCache(lm.config.n_layers)
    lm.model(torch.zeros(1, lm.config.n_ctx, dtype=torch.long), cache=cache)
    with pytest.raises(InputError, match="longer than the model's context"):
        lm.model(torch.zeros(1, 1, dtype=torch.long), cache=cache)


# ---- loading holds the model once


def _file_ranges(path: Path) -> list[tuple[int, int]]:
    target = str(path.resolve())
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[5] == target:
                a, b = (int(x, 16) for x in parts[0].split("-"))
                out.append((a, b))
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_loading_in_the_checkpoint_dtype_copies_nothing(family: str, hf_dirs: dict[str, Path]) -> None:
    """On the CPU in the checkpoint's dtype every parameter is a view of the memory-mapped file."""
    lm = load_model(hf_dirs[family], device="cpu", dtype="float32")
    ranges = _file_ranges(hf_dirs[family] / "model.safetensors")
    outside = [n for n, p in lm.model.named_parameters() if not any(a <= p.data_ptr() < b for a, b in ranges)]
    assert ranges and not outside


def test_converting_the_dtype_copies_once(hf_dirs: dict[str, Path]) -> None:
    lm = load_model(hf_dirs["phi3"], device="cpu", dtype="bfloat16")
    assert all(p.dtype == torch.bfloat16 for p in lm.model.parameters())
    # Phi-3's fused gate_up_proj: each half converted once
    mlp = lm.model.blocks[0].mlp
    assert mlp.W_gate.shape == mlp.W_in.shape == (lm.config.d_mlp, lm.config.d_model)
    ref = load_model(hf_dirs["phi3"], device="cpu", dtype="float32")
    torch.testing.assert_close(mlp.W_in.float(), ref.model.blocks[0].mlp.W_in.to(torch.bfloat16).float(), atol=0, rtol=0)
