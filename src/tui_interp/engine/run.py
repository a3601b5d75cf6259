"""Run one prompt: its tokens, the next-token prediction and the logit lens, under interventions.

`run_prompt` runs token ids (with ablations and steering vectors) and returns a `RunResult`
whose `to_json()` is the `tui-interp run --json` document.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tui_interp.engine.cache import save_cache as write_cache
from tui_interp.engine.interventions import Intervention, Steering, hooks_for, parse_interventions, prepare, reference_batch
from tui_interp.engine.lens import LensRow, TokenScore, logit_lens, top_k
from tui_interp.engine.tokens import model_json, score_json, token_json
from tui_interp.model.loader import LoadedModel


@dataclass(frozen=True)
class RunResult:
    """One prompt run: what `tui-interp run` prints."""

    lm: LoadedModel
    ids: tuple[int, ...]
    bos: str
    interventions: tuple[str, ...]
    reference: str | None  # what mean/resample ablation drew from, in words
    top: tuple[TokenScore, ...]  # the next-token prediction at the last position
    lens: tuple[LensRow, ...]  # the logit lens at the last position, after each layer
    saved_cache: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        lm = self.lm
        return {
            "model": model_json(lm),
            "device": str(lm.device),
            "dtype": str(lm.dtype).removeprefix("torch."),
            "bos": self.bos,
            "tokens": [token_json(lm, i) for i in self.ids],
            "interventions": list(self.interventions),
            "reference": self.reference,
            "top_k": [score_json(s) for s in self.top],
            "logit_lens": [{"after": row.label, "top": [score_json(s) for s in row.top]} for row in self.lens],
            "saved_cache": self.saved_cache,
        }


@torch.inference_mode()
def run_prompt(
    lm: LoadedModel,
    ids: Sequence[int],
    *,
    top_k_count: int = 5,
    ablate: Sequence[str] = (),
    steer: Sequence[Steering] = (),
    seed: int = 0,
    save_cache: Path | None = None,
    hooks: str = "*",
    bos: str = "as given",
) -> RunResult:
    """Run token `ids` with the ablations (`C[:mode]` specs) and steering vectors given."""
    tokens = torch.tensor([list(ids)], device=lm.device)
    ivs: list[Intervention | Steering] = list(parse_interventions(ablate, lm.config))
    reference = None
    if any(iv.needs_reference for iv in ivs):
        ref = reference_batch(lm, len(ids), seed=seed)
        reference = ref.description
        ivs = list(prepare([iv for iv in ivs if isinstance(iv, Intervention)], lm.model, reference=ref, seed=seed, length=len(ids)))
    ivs += steer
    patterns = ["blocks.0.hook_resid_pre", "blocks.*.hook_resid_post"]
    if save_cache is not None:
        patterns.append(hooks)
        lm.model.match_hooks(hooks)  # a glob that matches nothing is an error before running
    logits, cache = lm.model.run_with_cache(tokens, patterns, hooks=hooks_for(ivs, lm.config))
    lens = logit_lens(lm.model, cache, k=top_k_count, names=lm.token_text)
    saved = None
    if save_cache is not None:
        saved = write_cache(save_cache, lm, list(ids), logits, cache, hooks, interventions=[str(iv) for iv in ivs])
    return RunResult(
        lm=lm,
        ids=tuple(ids),
        bos=bos,
        interventions=tuple(str(iv) for iv in ivs),
        reference=reference,
        top=tuple(top_k(logits[0, -1], top_k_count, lm.token_text)),
        lens=tuple(lens),
        saved_cache=saved,
    )
