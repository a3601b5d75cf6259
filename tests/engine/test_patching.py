"""Batched activation patching, which reuses the corrupted run's keys and values and runs only the
positions a patch can change, against one full forward per patch, on every family."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hf_models import FAMILIES

from tui_interp.components import resolve_components
from tui_interp.engine.patching import activation_patching, activation_patching_loop
from tui_interp.model import load_model

CLEAN = torch.tensor([[5, 9, 2, 7, 7, 1, 3, 8, 4, 6]])


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("changed", [0, 4, 9], ids=["first", "middle", "last"])
def test_batched_equals_the_loop(family: str, changed: int, hf_dirs: dict[str, Path]) -> None:
    lm = load_model(hf_dirs[family], device="cpu")
    lm.model.attn_impl = "eager"
    corrupt = CLEAN.clone()
    corrupt[0, changed] = (corrupt[0, changed] + 11) % 97
    spec = "L*.H*,L*.mlp,L0.N1,embed,L0" + (",pos_embed" if lm.config.positional == "learned" else "")
    comps = resolve_components(spec, lm.config)
    for per_position in (True, False):
        r = activation_patching(lm.model, CLEAN, corrupt, 3, comps, other=4, per_position=per_position, batch_size=7)
        loop = activation_patching_loop(lm.model, CLEAN, corrupt, 3, comps, other=4, per_position=per_position)
        torch.testing.assert_close(r.raw, loop, atol=1e-5, rtol=0)
        if per_position:  # positions before the change cannot matter
            assert torch.all(r.raw[:, :changed] == r.corrupt)


def test_patching_everything_restores_the_clean_metric(hf_dirs: dict[str, Path]) -> None:
    lm = load_model(hf_dirs["gemma2"], device="cpu")
    corrupt = CLEAN.clone()
    corrupt[0, 4] = 50
    comps = resolve_components("embed", lm.config)  # the embedding carries everything that differs
    r = activation_patching(lm.model, CLEAN, corrupt, 3, comps, other=4)
    assert r.raw[0] == pytest.approx(r.clean, abs=1e-4)
    r = activation_patching(lm.model, CLEAN, corrupt, 3, comps, other=4, per_position=True)
    assert r.raw[0, 4] == pytest.approx(r.clean, abs=1e-4)
    torch.testing.assert_close(r.raw[0, 5:], torch.full((5,), r.corrupt), atol=1e-5, rtol=0)  # same token there: no change
