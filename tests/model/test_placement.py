"""Where weights go and in which dtype, tested on the CPU (no GPU here): the device map from
per-GPU free memory (figures injected), the block-boundary moves, and the float32 islands of
half-precision runs (norms, softmax)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tui_interp.errors import DeviceError
from tui_interp.model import load_model, open_checkpoint, resolve_dtype
from tui_interp.model.loader import auto_placement, block_bytes, plan_device_map
from tui_interp.model.transformer import Norm

GiB = 2**30


def test_plan_fills_the_gpus_in_order() -> None:
    blocks = [3 * GiB] * 8
    free = [("cuda:0", 10 * GiB), ("cuda:1", 20 * GiB), ("cuda:2", 20 * GiB)]
    # usable: 0.9 * free - 1 GiB = 8, 17, 17 GiB; cuda:0 also holds 2 GiB of embeddings
    plan = plan_device_map(blocks, 2 * GiB, free)
    assert plan == ["cuda:0", "cuda:0", "cuda:1", "cuda:1", "cuda:1", "cuda:1", "cuda:1", "cuda:2"]


def test_plan_refuses_what_does_not_fit() -> None:
    with pytest.raises(DeviceError, match="use --stream"):
        plan_device_map([4 * GiB] * 8, GiB, [("cuda:0", 10 * GiB), ("cuda:1", 10 * GiB)])
    with pytest.raises(DeviceError, match="cannot hold even the embeddings"):
        plan_device_map([GiB], 20 * GiB, [("cuda:0", 10 * GiB), ("cuda:1", 40 * GiB)])
    with pytest.raises(DeviceError):
        plan_device_map([GiB], 0, [])


def test_plan_without_reserve_is_exact() -> None:
    assert plan_device_map([5, 5, 5], 0, [("a", 10), ("b", 10)], headroom=1.0, reserve=0) == ["a", "a", "b"]


def test_auto_placement_uses_one_gpu_when_it_fits(hf_dirs: dict[str, Path]) -> None:
    ckpt = open_checkpoint(hf_dirs["llama"])
    blocks, resident = block_bytes(ckpt, torch.float32)
    assert sum(blocks) + resident == sum(p.numel() * 4 for p in load_model(ckpt, device="cpu").model.parameters())
    dev, plan = auto_placement(ckpt, torch.float32, [("cuda:0", 40 * GiB), ("cuda:1", 40 * GiB)])
    assert dev == torch.device("cuda:0") and plan is None
    # bf16 halves the bytes
    assert sum(block_bytes(ckpt, torch.bfloat16)[0]) * 2 == sum(blocks)


def test_a_spread_model_runs_like_a_placed_one(hf_dirs: dict[str, Path]) -> None:
    """The device map's plumbing (block.device, moves at block boundaries, unembed on the first
    device), with CPU "devices" so it runs here: the figures make block 0 overflow device 0."""
    ckpt = open_checkpoint(hf_dirs["llama"])
    blocks, resident = block_bytes(ckpt, torch.float32)
    usable = resident + blocks[0] + 1
    free = [("cpu", int((usable + (1 << 30)) / 0.9) + 1), ("cpu", 64 * GiB)]
    spread = load_model(ckpt, device="auto", gpu_free=free)
    assert spread.device_map is None  # both "devices" are the CPU: nothing to move
    dev, plan = auto_placement(ckpt, torch.float32, [("cuda:0", free[0][1]), ("cuda:1", 64 * GiB)])
    assert plan == [torch.device("cuda:0")] + [torch.device("cuda:1")] * (ckpt.config.n_layers - 1)
    # force a map onto the blocks, as the loader does on GPUs, and check nothing changes
    plain = load_model(ckpt, device="cpu")
    tokens = torch.tensor([[3, 1, 4, 1, 5]])
    before = plain.model(tokens)
    for block in plain.model.blocks:
        block.device = torch.device("cpu")
    torch.testing.assert_close(plain.model(tokens), before, atol=0, rtol=0)


def test_auto_dtype() -> None:
    assert resolve_dtype("auto", torch.device("cpu"), "bfloat16") == torch.float32
    assert resolve_dtype("auto", torch.device("cuda"), "bfloat16") == torch.bfloat16
    assert resolve_dtype("auto", torch.device("cuda"), "float64") == torch.float32
    assert resolve_dtype("float16", torch.device("cpu"), "float32") == torch.float16
    with pytest.raises(DeviceError):
        resolve_dtype("int8", torch.device("cpu"), "float32")


@pytest.mark.parametrize("style", ["llama", "gemma", "olmo"])
def test_half_precision_norms_compute_in_float32(hf_dirs: dict[str, Path], style: str) -> None:
    family = {"llama": "llama", "gemma": "gemma2", "olmo": "olmo2"}[style]
    lm = load_model(hf_dirs[family], device="cpu", dtype="bfloat16")
    norm: Norm = next(m for m in lm.model.modules() if isinstance(m, Norm) and m.w.shape[0] == lm.config.d_model)
    assert norm.style == style and norm.w.dtype == torch.bfloat16
    x = torch.randn(2, 5, lm.config.d_model, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    x32 = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + norm.eps)
    expected = {
        "llama": norm.w * x32.to(torch.bfloat16),  # transformers' Llama: cast, then multiply in bf16
        "gemma": (x32 * (1.0 + norm.w.float())).to(torch.bfloat16),  # Gemma: (1 + w) in float32
        "olmo": (norm.w.float() * x32).to(torch.bfloat16),  # OLMo 2: w in float32
    }[style]
    out = norm(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out, expected, atol=0, rtol=0)


def test_half_precision_softmax_in_float32(hf_dirs: dict[str, Path]) -> None:
    lm = load_model(hf_dirs["gemma2"], device="cpu", dtype="bfloat16")
    _, cache = lm.model.run_with_cache(torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6]]), ["blocks.0.attn.hook_attn_scores", "blocks.0.attn.hook_pattern"])
    scores, pattern = cache["blocks.0.attn.hook_attn_scores"], cache["blocks.0.attn.hook_pattern"]
    assert scores.dtype == pattern.dtype == torch.bfloat16
    torch.testing.assert_close(pattern, torch.softmax(scores, -1, dtype=torch.float32).to(torch.bfloat16), atol=0, rtol=0)
    lm32 = load_model(hf_dirs["gemma2"], device="cpu")
    tokens = torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6]])
    torch.testing.assert_close(lm.model(tokens).float(), lm32.model(tokens), atol=0.15, rtol=0.05)
