"""The TransformerLens-style face on LoadedModel: token helpers, run_with_hooks, generate, and the
stacked weights ([layer, head, ...]) checked against the hooks they must reproduce."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hf_models import FAMILIES

from tui_interp.model import load_model

TOKENS = torch.tensor([[5, 9, 2, 7, 7, 1, 3, 8]])
TOL = dict(atol=2e-5, rtol=0)


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def lm(request, hf_dirs: dict[str, Path]):
    return load_model(hf_dirs[request.param], device="cpu")


def test_weight_shapes(lm) -> None:
    c = lm.config
    L, h, d, dh, m, V = c.n_layers, c.n_heads, c.d_model, c.d_head, c.d_mlp, c.vocab_size
    assert lm.W_E.shape == (V, d) and lm.W_U.shape == (d, V) and lm.b_U.shape == (V,)
    for name in ("W_Q", "W_K", "W_V"):
        assert getattr(lm, name).shape == (L, h, d, dh), name
    for name in ("b_Q", "b_K", "b_V"):
        assert getattr(lm, name).shape == (L, h, dh), name
    assert lm.W_O.shape == (L, h, dh, d) and lm.b_O.shape == (L, d)
    assert lm.W_in.shape == (L, d, m) and lm.W_out.shape == (L, m, d)
    assert lm.b_in.shape == (L, m) and lm.b_out.shape == (L, d)
    if c.gated_mlp:
        assert lm.W_gate.shape == (L, d, m)
    if c.positional == "learned":
        assert lm.W_pos.shape == (c.n_ctx, d)
    else:
        with pytest.raises(AttributeError, match="rotary"):
            _ = lm.W_pos


def test_weights_reproduce_the_hooks(lm) -> None:
    c = lm.config
    group = c.n_heads // c.n_kv_heads
    _, cache = lm.run_with_cache(TOKENS)
    W_Q, W_K, W_V, b_Q, b_K, b_V, W_O, b_O = lm.W_Q, lm.W_K, lm.W_V, lm.b_Q, lm.b_K, lm.b_V, lm.W_O, lm.b_O
    for l in range(c.n_layers):
        b = f"blocks.{l}."
        x = cache[b + "ln1.hook_normalized"] if c.pre_norms else cache[b + "hook_resid_pre"]  # [batch, pos, d_model]
        for head in range(c.n_heads):
            q = torch.einsum("bpd,de->bpe", x, W_Q[l, head]) + b_Q[l, head]
            torch.testing.assert_close(q, cache[b + "attn.hook_q"][:, :, head], **TOL)
            k = torch.einsum("bpd,de->bpe", x, W_K[l, head]) + b_K[l, head]
            torch.testing.assert_close(k, cache[b + "attn.hook_k"][:, :, head // group], **TOL)
            v = torch.einsum("bpd,de->bpe", x, W_V[l, head]) + b_V[l, head]
            torch.testing.assert_close(v, cache[b + "attn.hook_v"][:, :, head // group], **TOL)
        out = torch.einsum("bphe,hed->bpd", cache[b + "attn.hook_z"], W_O[l]) + b_O[l]
        if c.post_norms:
            out = lm.model.blocks[l].ln1_post(out)
        torch.testing.assert_close(out, cache[b + "hook_attn_out"], **TOL)
        mlp_in = cache[b + "ln2.hook_normalized"] if c.pre_norms else cache[b + "hook_resid_mid"]
        up = torch.einsum("bpd,dm->bpm", mlp_in, lm.W_in[l]) + lm.b_in[l]
        pre_name = "mlp.hook_pre_linear" if c.gated_mlp else "mlp.hook_pre"
        torch.testing.assert_close(up, cache[b + pre_name], **TOL)
        if c.gated_mlp:
            torch.testing.assert_close(torch.einsum("bpd,dm->bpm", mlp_in, lm.W_gate[l]), cache[b + "mlp.hook_pre"], **TOL)
        mlp_out = torch.einsum("bpm,md->bpd", cache[b + "mlp.hook_post"], lm.W_out[l]) + lm.b_out[l]
        if c.post_norms:
            mlp_out = lm.model.blocks[l].ln2_post(mlp_out)
        torch.testing.assert_close(mlp_out, cache[b + "hook_mlp_out"], **TOL)
    logits = cache["ln_final.hook_normalized"] @ lm.W_U + lm.b_U
    if c.final_softcap is not None:
        logits = torch.tanh(logits / c.final_softcap) * c.final_softcap
    torch.testing.assert_close(logits, cache["logits"], **TOL)


def test_run_with_hooks_takes_transformerlens_hook_functions(lm) -> None:
    clean = lm(TOKENS)

    def zero_head_1(z, hook):  # TL's signature: (activation, hook)
        z = z.clone()
        z[:, :, 1] = 0
        return z

    ablated = lm.run_with_hooks(TOKENS, fwd_hooks=[("blocks.0.attn.hook_z", zero_head_1)])
    assert not torch.allclose(ablated, clean)
    torch.testing.assert_close(lm(TOKENS), clean, atol=0, rtol=0)
    assert all(not p.fns for p in lm.model.hook_points.values())


def test_token_helpers_and_generate(gpt2_dir: Path) -> None:
    lm = load_model(gpt2_dir, device="cpu")
    tokens = lm.to_tokens("w1 w2 w3")
    assert tokens.tolist() == [[4, 5, 6]] and tokens.device == lm.device
    assert lm.to_tokens("w1 w2", prepend_bos=True).tolist() == [[1, 4, 5]]
    assert lm.to_str_tokens("w1 w2 w3") == ["w1", "w2", "w3"] == lm.to_str_tokens(tokens)
    assert lm.to_string(tokens[0]) == "w1 w2 w3" and lm.to_string(tokens) == ["w1 w2 w3"]
    assert lm.to_single_token("w7") == 10
    torch.testing.assert_close(lm("w1 w2 w3"), lm.model(tokens), atol=0, rtol=0)
    logits, cache = lm.run_with_cache("w1 w2 w3", names_filter=lambda n: n.endswith("hook_resid_post"))
    assert list(cache) == ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"]
    text = lm.generate("w1 w2 w3", max_new_tokens=4)
    assert isinstance(text, str) and text.startswith("w1 w2 w3")
    ids = lm.generate(tokens, max_new_tokens=4, stop_at_eos=False)
    assert ids.shape == (1, 7) and ids[0, :3].tolist() == [4, 5, 6]
    assert lm.to_string(ids[0]) == text or lm.config.eos_token_id in ids[0].tolist()
