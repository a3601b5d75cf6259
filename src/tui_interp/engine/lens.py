"""Logit lens: what the residual stream predicts at each depth, through ln_final + unembed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from tui_interp.model.transformer import Transformer


@dataclass(frozen=True)
class TokenScore:
    """One token of a prediction. `text` is the token's raw text (escape it before display)."""

    id: int
    logit: float
    prob: float
    text: str = ""


@dataclass(frozen=True)
class LensRow:
    """Top-k predictions of the residual stream after `label` (e.g. "embed", "L0", "L1")."""

    label: str
    top: list[TokenScore]


def top_k(logits: torch.Tensor, k: int, names: Callable[[int], str] | None = None) -> list[TokenScore]:
    """logits [vocab] -> the k most likely tokens with logit, probability and (with `names`) text."""
    logits = logits.float()
    probs = torch.softmax(logits, dim=-1)
    k = max(1, min(k, logits.shape[-1]))
    values, ids = torch.topk(logits, k)
    return [score(logits, int(i), names, probs) for i in ids]


def score(logits: torch.Tensor, token: int, names: Callable[[int], str] | None = None, probs: torch.Tensor | None = None) -> TokenScore:
    """One token's logit and probability under logits [vocab]."""
    logits = logits.float()
    probs = torch.softmax(logits, dim=-1) if probs is None else probs
    return TokenScore(token, float(logits[token]), float(probs[token]), names(token) if names else "")


@torch.inference_mode()
def logit_lens(
    model: Transformer,
    cache: dict[str, torch.Tensor],
    *,
    position: int = -1,
    batch: int = 0,
    k: int = 5,
    names: Callable[[int], str] | None = None,
) -> list[LensRow]:
    """Top-k through the final norm and unembedding after the embedding and after every block.

    Needs `blocks.{l}.hook_resid_pre` of block 0 and `blocks.{l}.hook_resid_post` of every block
    in `cache`; the last row equals the model's own prediction.
    """
    rows: list[LensRow] = []
    stages = [("embed", "blocks.0.hook_resid_pre")]
    stages += [(f"L{l}", f"blocks.{l}.hook_resid_post") for l in range(model.cfg.n_layers)]
    resid = torch.stack([cache[name][batch, position] for _, name in stages])  # [stage, d_model]
    logits = torch.nn.functional.linear(model.ln_final(resid[None]), model.unembed_weight)[0]  # [stage, vocab]
    for (label, _), row in zip(stages, logits, strict=True):
        rows.append(LensRow(label, top_k(row, k, names)))
    return rows


# ---------------------------------------------------------------------------------------------
# Direct logit attribution

DLA_HOOKS = ("hook_embed", "hook_pos_embed", "blocks.*.attn.hook_z", "blocks.*.hook_attn_out", "blocks.*.hook_mlp_out", "blocks.*.hook_resid_post")


@dataclass(frozen=True)
class Attribution:
    """Direct effect of each component on one logit (or a logit difference) at one position.

    The final norm is linear once its scale is fixed; with the scale measured on this run's
    final residual stream, `sum(contributions) + bias == logit` holds exactly (up to float
    rounding). `bias` gathers the attention output biases and the final norm's bias.
    """

    target: int
    other: int | None
    position: int
    contributions: dict[str, float]  # component id -> direct effect, in forward order
    bias: float
    logit: float  # the model's final logit of target (minus other's)
    scale: float  # the final norm's divisor at this position

    @property
    def total(self) -> float:
        return sum(self.contributions.values()) + self.bias


def unembed_direction(model: Transformer, target: int, other: int | None = None) -> torch.Tensor:
    """W_U[target] - W_U[other]: [d_model], float32."""
    W_U = model.unembed_weight
    u = W_U[target].float()
    return u - W_U[other].float() if other is not None else u


@torch.inference_mode()
def direct_logit_attribution(
    model: Transformer,
    cache: dict[str, torch.Tensor],
    target: int,
    *,
    other: int | None = None,
    position: int = -1,
    batch: int = 0,
) -> Attribution:
    """Attribute the final logit of `target` (minus `other`) to embed, pos_embed, every head and
    every MLP, through the final norm with its scale frozen. `cache` needs DLA_HOOKS.

    Where a norm follows the attention output (Gemma 2/3, OLMo 2), the heads' writes are not
    additive, so the attribution goes to the whole attention output of each layer (`L3.attn`).
    Where the logits are soft-capped (Gemma 2/3), `logit` is the logit before the cap, which is
    what the contributions add up to."""
    cfg = model.cfg
    u = unembed_direction(model, target, other)  # [d_model]
    final = cache[f"blocks.{cfg.n_layers - 1}.hook_resid_post"][batch, position].float()  # [d_model]
    ln = model.ln_final
    u = u.to(final.device)
    scale = ln.scale(final.to(ln.w.device)).to(final.device)  # [1]
    direction = (ln.weight.to(final.device) * u) / scale  # what one unit of (centred) residual adds to the logit

    def effect(x: torch.Tensor) -> float:  # x [..., d_model] -> summed direct effect
        x = x.float().to(final.device)
        if ln.kind == "layernorm":
            x = x - x.mean(-1, keepdim=True)
        return float((x * direction).sum())

    out: dict[str, float] = {"embed": effect(cache["hook_embed"][batch, position])}
    if "hook_pos_embed" in cache:
        out["pos_embed"] = effect(cache["hook_pos_embed"][batch, position])
    bias = float(ln.b.float().to(final.device) @ u) if ln.b is not None else 0.0
    h, dh = cfg.n_heads, cfg.d_head
    for l, block in enumerate(model.blocks):
        if cfg.post_norms:
            out[f"L{l}.attn"] = effect(cache[f"blocks.{l}.hook_attn_out"][batch, position])
        else:
            z = cache[f"blocks.{l}.attn.hook_z"][batch, position].float()  # [head, d_head]
            W_O = block.attn.W_O.float().reshape(cfg.d_model, h, dh).to(z.device)  # [d_model, head, d_head]
            per_head = torch.einsum("hd,mhd->hm", z, W_O)  # [head, d_model]
            for head in range(h):
                out[f"L{l}.H{head}"] = effect(per_head[head])
            if block.attn.b_O is not None:
                bias += effect(block.attn.b_O)
        if block.mlp is not None:
            out[f"L{l}.mlp"] = effect(cache[f"blocks.{l}.hook_mlp_out"][batch, position])
    normed = ln(final[None, None].to(ln.w.device, ln.w.dtype))
    logits = torch.nn.functional.linear(normed, model.unembed_weight.to(normed.device))[0, 0].float()  # before any soft-cap
    logit = float(logits[target] - (logits[other] if other is not None else 0.0))
    return Attribution(target, other, position, out, bias, logit, float(scale))


@dataclass(frozen=True)
class LensReport:
    """The logit lens at every layer and position, and optionally direct logit attribution."""

    lm: Any
    ids: tuple[int, ...]
    rows: tuple[tuple[LensRow, ...], ...]  # [position][stage]
    attribution: Attribution | None = None

    def to_json(self) -> dict[str, Any]:
        from tui_interp.engine.tokens import model_json, score_json, token_json

        lm = self.lm
        doc: dict[str, Any] = {
            "model": model_json(lm),
            "tokens": [token_json(lm, i) for i in self.ids],
            "lens": [[{"after": r.label, "top": [score_json(s) for s in r.top]} for r in row] for row in self.rows],
        }
        a = self.attribution
        if a is not None:
            doc["attribution"] = {
                "target": token_json(lm, a.target),
                "other": None if a.other is None else token_json(lm, a.other),
                "position": len(self.ids) - 1,
                "contributions": a.contributions,
                "bias": a.bias,
                "sum": a.total,
                "logit": a.logit,
                "final_norm_scale": a.scale,
            }
        return doc


@torch.inference_mode()
def lens_report(lm: Any, ids: Sequence[int], *, k: int = 3, target: int | None = None, other: int | None = None) -> LensReport:
    """The lens after the embedding and every block at each position of `ids`; with `target`,
    the direct logit attribution of its logit (minus `other`'s) at the last position."""
    model = lm.model
    hooks = [h for h in DLA_HOOKS if h != "hook_pos_embed" or model.cfg.positional == "learned"] + ["blocks.0.hook_resid_pre"]
    _, cache = model.run_with_cache(torch.tensor([list(ids)], device=lm.device), hooks)
    rows = tuple(tuple(logit_lens(model, cache, position=p, k=k, names=lm.token_text)) for p in range(len(ids)))
    attribution = direct_logit_attribution(model, cache, target, other=other) if target is not None else None
    return LensReport(lm, tuple(ids), rows, attribution)
