from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tui_interp.errors import HookError, InputError
from tui_interp.model import load_model

TOKENS = torch.tensor([[5, 9, 2, 7, 7, 1, 3]])


@pytest.fixture(scope="module")
def lm(hf_dirs: dict[str, Path]):
    return load_model(hf_dirs["llama"], device="cpu")


def test_every_documented_hook_exists(lm) -> None:
    names = set(lm.model.hook_names())
    expected = {"hook_embed", "ln_final.hook_normalized", "logits"}
    for l in range(lm.config.n_layers):
        b = f"blocks.{l}."
        expected |= {b + n for n in (
            "hook_resid_pre", "ln1.hook_normalized", "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_rot_q",
            "attn.hook_rot_k", "attn.hook_attn_scores", "attn.hook_pattern", "attn.hook_z", "hook_attn_out",
            "hook_resid_mid", "ln2.hook_normalized", "mlp.hook_pre", "mlp.hook_pre_linear", "mlp.hook_post",
            "hook_mlp_out", "hook_resid_post")}
    assert names == expected


def test_gpt2_has_pos_embed_and_no_rotary_hooks(hf_dirs: dict[str, Path]) -> None:
    names = set(load_model(hf_dirs["gpt2"], device="cpu").model.hook_names())
    assert "hook_pos_embed" in names and not any("rot_" in n for n in names)


def test_cache_shapes(lm) -> None:
    cfg = lm.config
    _, cache = lm.model.run_with_cache(TOKENS)
    p = TOKENS.shape[1]
    assert cache["blocks.0.attn.hook_q"].shape == (1, p, cfg.n_heads, cfg.d_head)
    assert cache["blocks.0.attn.hook_k"].shape == (1, p, cfg.n_kv_heads, cfg.d_head)
    assert cache["blocks.0.attn.hook_pattern"].shape == (1, cfg.n_heads, p, p)
    assert cache["blocks.0.attn.hook_z"].shape == (1, p, cfg.n_heads, cfg.d_head)
    assert cache["blocks.0.mlp.hook_post"].shape == (1, p, cfg.d_mlp)
    assert cache["blocks.1.hook_resid_post"].shape == (1, p, cfg.d_model)
    assert cache["logits"].shape == (1, p, cfg.vocab_size)
    assert not any(t.requires_grad for t in cache.values())


def test_cache_only_what_is_asked(lm) -> None:
    _, cache = lm.model.run_with_cache(TOKENS, "blocks.*.hook_resid_post")
    assert list(cache) == [f"blocks.{l}.hook_resid_post" for l in range(lm.config.n_layers)]
    _, cache = lm.model.run_with_cache(TOKENS, ["hook_embed", "logits"])
    assert list(cache) == ["hook_embed", "logits"]


def test_noop_hook_changes_nothing(lm) -> None:
    lm.model.attn_impl = "eager"
    try:
        clean = lm.model(TOKENS)
        with lm.model.hooks([("*", lambda x, hook: None)]):
            torch.testing.assert_close(lm.model(TOKENS), clean, atol=0, rtol=0)
        with lm.model.hooks([("*", lambda x, hook: x.clone())]):
            torch.testing.assert_close(lm.model(TOKENS), clean, atol=0, rtol=0)
    finally:
        lm.model.attn_impl = "auto"
    # "auto" picks the fused kernel when nothing observes the pattern: same result to float eps
    torch.testing.assert_close(lm.model(TOKENS), clean, atol=1e-6, rtol=0)


def test_replacing_hook_changes_output_and_is_removed(lm) -> None:
    clean = lm.model(TOKENS)

    def zero_head(x: torch.Tensor, *, hook) -> torch.Tensor:
        x = x.clone()
        x[:, :, 1] = 0
        return x

    with lm.model.hooks([("blocks.0.attn.hook_z", zero_head)]):
        _, cache = lm.model.run_with_cache(TOKENS, "blocks.0.attn.hook_z")
        ablated = lm.model(TOKENS)
    assert torch.all(cache["blocks.0.attn.hook_z"][:, :, 1] == 0)  # the cache sees the replaced value
    assert not torch.allclose(ablated, clean)
    torch.testing.assert_close(lm.model(TOKENS), clean, atol=0, rtol=0)
    assert all(not p.fns for p in lm.model.hook_points.values())


def test_hooks_removed_on_error(lm) -> None:
    def boom(x, *, hook):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        with lm.model.hooks([("blocks.1.hook_resid_mid", boom)]):
            lm.model(TOKENS)
    assert all(not p.fns for p in lm.model.hook_points.values())


def test_wrong_shape_from_hook_is_a_clear_error(lm) -> None:
    with lm.model.hooks([("blocks.0.hook_attn_out", lambda x, hook: x[:, :1])]):
        with pytest.raises(HookError, match="blocks.0.hook_attn_out returned"):
            lm.model(TOKENS)


def test_unknown_hook_name(lm) -> None:
    with pytest.raises(HookError, match="no hook point matches"):
        with lm.model.hooks([("blocks.9.hook_nothing", lambda x, hook: None)]):
            pass


def test_half_open_layer_ranges_compose(lm) -> None:
    full = lm.model(TOKENS)
    mid = lm.model(TOKENS, stop_at_layer=1)
    torch.testing.assert_close(lm.model(TOKENS, start_at_layer=1, residual=mid), full, atol=0, rtol=0)
    with pytest.raises(InputError):
        lm.model(TOKENS, start_at_layer=1)


def test_input_checks(lm) -> None:
    with pytest.raises(InputError, match="outside the vocabulary"):
        lm.model(torch.tensor([[0, 1000]]))
    with pytest.raises(InputError, match="longer than the model's context"):
        lm.model(torch.zeros(1, lm.config.n_ctx + 1, dtype=torch.long))
