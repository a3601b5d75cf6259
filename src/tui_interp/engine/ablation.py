"""The effect of ablating components on a prompt's prediction: what `ablate` and the TUI show."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from tui_interp.engine.interventions import Intervention, hooks_for, prepare, random_reference
from tui_interp.engine.lens import TokenScore, top_k
from tui_interp.engine.targets import parse_target
from tui_interp.errors import InputError
from tui_interp.model.loader import LoadedModel


@dataclass
class AblationResult:
    target: int
    other: int | None
    clean_metric: float  # logit of target (minus other's) at the last position
    ablated_metric: float
    clean_prob: float
    ablated_prob: float
    clean_top: list[TokenScore]
    ablated_top: list[TokenScore]
    reference: str | None  # what mean/resample averaged over, in words


def reference_batch(
    lm: LoadedModel, length: int, prompts: Sequence[str] | None, *, seed: int = 0
) -> tuple[torch.Tensor, str]:
    """Reference inputs for mean/resample ablation: the given prompts, else seeded random tokens."""
    if prompts:
        tok = lm.need_tokenizer()
        rows = [tok.encode(p) for p in prompts]
        if any(len(r) != len(rows[0]) for r in rows):
            raise InputError("--reference prompts must all have the same number of tokens")
        return torch.tensor(rows, device=lm.device), f"{len(rows)} reference prompts"
    ref = random_reference(lm.config, length, n=64, seed=seed, device=lm.device)
    return ref, f"64 random token sequences of length {length} (seed {seed})"


@torch.inference_mode()
def ablation_effect(
    lm: LoadedModel,
    tokens: torch.Tensor,
    interventions: Sequence[Intervention],
    *,
    target: str | int | None = None,
    other: str | int | None = None,
    reference_prompts: Sequence[str] | None = None,
    seed: int = 0,
    k: int = 5,
) -> AblationResult:
    model = lm.model
    clean = model(tokens)[0, -1].float()  # [vocab]
    tgt = int(clean.argmax()) if target is None else (target if isinstance(target, int) else parse_target(lm, target))
    oth = None if other is None else (other if isinstance(other, int) else parse_target(lm, other))
    description = None
    if any(iv.needs_reference and iv.mode in ("mean", "resample") for iv in interventions):
        ref, description = reference_batch(lm, tokens.shape[1], reference_prompts, seed=seed)
        interventions = prepare(interventions, model, reference=ref, seed=seed)
    with model.hooks(hooks_for(interventions, model.cfg)):
        ablated = model(tokens)[0, -1].float()

    def m(logits: torch.Tensor) -> float:
        return float(logits[tgt] - (logits[oth] if oth is not None else 0.0))

    return AblationResult(
        tgt, oth, m(clean), m(ablated),
        float(torch.softmax(clean, -1)[tgt]), float(torch.softmax(ablated, -1)[tgt]),
        top_k(clean, k), top_k(ablated, k), description,
    )
