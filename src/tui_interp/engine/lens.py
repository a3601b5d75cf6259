"""Logit lens: what the residual stream predicts at each depth, through ln_final + unembed."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tui_interp.model.transformer import Transformer


@dataclass(frozen=True)
class TokenScore:
    id: int
    logit: float
    prob: float


@dataclass(frozen=True)
class LensRow:
    """Top-k predictions of the residual stream after `label` (e.g. "embed", "L0", "L1")."""

    label: str
    top: list[TokenScore]


def top_k(logits: torch.Tensor, k: int) -> list[TokenScore]:
    """logits [vocab] -> the k most likely tokens with logit and probability."""
    logits = logits.float()
    probs = torch.softmax(logits, dim=-1)
    k = max(1, min(k, logits.shape[-1]))
    values, ids = torch.topk(logits, k)
    return [TokenScore(int(i), float(v), float(probs[i])) for v, i in zip(values, ids)]


@torch.inference_mode()
def logit_lens(model: Transformer, cache: dict[str, torch.Tensor], *, position: int = -1, batch: int = 0, k: int = 5) -> list[LensRow]:
    """Top-k through the final norm and unembedding after the embedding and after every block.

    Needs `blocks.{l}.hook_resid_pre` of block 0 and `blocks.{l}.hook_resid_post` of every block
    in `cache`; the last row equals the model's own prediction.
    """
    rows: list[LensRow] = []
    stages = [("embed", "blocks.0.hook_resid_pre")]
    stages += [(f"L{l}", f"blocks.{l}.hook_resid_post") for l in range(model.cfg.n_layers)]
    resid = torch.stack([cache[name][batch, position] for _, name in stages])  # [stage, d_model]
    logits = torch.nn.functional.linear(model.ln_final(resid[None]), model.unembed_weight)[0]  # [stage, vocab]
    for (label, _), row in zip(stages, logits):
        rows.append(LensRow(label, top_k(row, k)))
    return rows
