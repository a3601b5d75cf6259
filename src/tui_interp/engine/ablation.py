"""The effect of interventions on a prompt's next-token prediction: what `ablate` and the TUI show.

`effect` compares two final logit rows (clean and intervened); `ablation_effect` runs both
passes for a prompt. The workbench computes the rows with its steppers and calls `effect`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from tui_interp.engine.interventions import Intervention, Reference, hooks_for, prepare, reference_batch
from tui_interp.engine.lens import TokenScore, score, top_k
from tui_interp.engine.tokens import model_json, parse_target, score_json, token_json
from tui_interp.model.loader import LoadedModel


@dataclass(frozen=True)
class Effect:
    """What interventions did to the prediction at the last position.

    The metric is the logit of `target` (minus `other`'s when given); `target` is followed
    through the intervention (`target_ablated`) whatever the ablated run predicts."""

    interventions: tuple[str, ...]
    target: TokenScore  # in the clean run
    target_ablated: TokenScore  # the same token in the ablated run
    other: TokenScore | None
    clean_metric: float
    ablated_metric: float
    clean_top: tuple[TokenScore, ...]
    ablated_top: tuple[TokenScore, ...]
    reference: str | None  # what mean/resample drew from, in words

    @property
    def metric_change(self) -> float:
        return self.ablated_metric - self.clean_metric

    def to_json(self, lm: LoadedModel, ids: Sequence[int]) -> dict[str, Any]:
        """The `tui-interp ablate --json` document."""
        return {
            "model": model_json(lm),
            "tokens": [token_json(lm, i) for i in ids],
            "interventions": list(self.interventions),
            "reference": self.reference,
            "target": token_json(lm, self.target.id),
            "other": None if self.other is None else token_json(lm, self.other.id),
            "clean": {"metric": self.clean_metric, "prob": self.target.prob, "top_k": [score_json(s) for s in self.clean_top]},
            "ablated": {"metric": self.ablated_metric, "prob": self.target_ablated.prob, "top_k": [score_json(s) for s in self.ablated_top]},
            "metric_change": self.metric_change,
        }


def effect(
    clean: torch.Tensor,
    ablated: torch.Tensor,
    *,
    interventions: Sequence[object],
    target: int | None = None,
    other: int | None = None,
    names: LoadedModel | None = None,
    k: int = 5,
    reference: str | None = None,
) -> Effect:
    """The Effect between two logit rows [vocab]; the target defaults to the clean top token."""
    clean, ablated = clean.float(), ablated.float()
    tgt = int(clean.argmax()) if target is None else target
    text = names.token_text if names is not None else None

    def metric(row: torch.Tensor) -> float:
        return float(row[tgt] - (row[other] if other is not None else 0.0))

    return Effect(
        interventions=tuple(str(iv) for iv in interventions),
        target=score(clean, tgt, text),
        target_ablated=score(ablated, tgt, text),
        other=None if other is None else score(clean, other, text),
        clean_metric=metric(clean),
        ablated_metric=metric(ablated),
        clean_top=tuple(top_k(clean, k, text)),
        ablated_top=tuple(top_k(ablated, k, text)),
        reference=reference,
    )


@torch.inference_mode()
def ablation_effect(
    lm: LoadedModel,
    ids: Sequence[int],
    interventions: Sequence[Intervention],
    *,
    target: str | int | None = None,
    other: str | int | None = None,
    reference: Reference | None = None,
    seed: int = 0,
    k: int = 5,
) -> Effect:
    """Run token `ids` clean and with `interventions`; mean/resample draw from `reference`
    (default: seeded random token sequences of the prompt's length)."""
    model = lm.model
    tokens = torch.tensor([list(ids)], device=lm.device)  # [1, pos]
    clean = model(tokens)[0, -1]
    tgt = None if target is None else (target if isinstance(target, int) else parse_target(lm, target))
    oth = None if other is None else (other if isinstance(other, int) else parse_target(lm, other))
    description = None
    if any(iv.needs_reference and iv.mode in ("mean", "resample") for iv in interventions):
        reference = reference or reference_batch(lm, tokens.shape[1], seed=seed)
        description = reference.description
        interventions = prepare(interventions, model, reference=reference, seed=seed, length=tokens.shape[1])
    with model.hooks(hooks_for(interventions, model.cfg)):
        ablated = model(tokens)[0, -1]
    return effect(clean, ablated, interventions=interventions, target=tgt, other=oth, names=lm, k=k, reference=description)
