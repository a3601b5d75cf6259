"""Activation patching: clean activations into a corrupted run, per component or per
(component, position), batched into a few forwards instead of one forward per patch.

A patch can change only what comes after it: the layers from the patched one on, and (per
position) the positions from the patched one on. So each batch of patches starts from the
corrupted run's residual stream entering its layer, runs only the positions from its patched
one, and reads the earlier positions' keys and values from the corrupted run's KV cache.
Patches that cannot change the measured logits (a position before the first token where the
prompts differ; a last-layer patch off the last position) are not run at all.

Metric: the logit difference target - other (or the target logit) at the last position,
normalised so that 0 is the corrupted run and 1 the clean run:
    (patched - corrupt) / (clean - corrupt)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from tui_interp.components import Component, Site, resolve_components
from tui_interp.engine.interventions import write_site
from tui_interp.engine.tokens import model_json, parse_target, token_json
from tui_interp.errors import InputError
from tui_interp.model.transformer import HookPoint, KVCache, Transformer


@dataclass
class PatchResult:
    components: list[str]
    per_position: bool
    effect: torch.Tensor  # normalised metric: [component] or [component, pos]
    raw: torch.Tensor  # the metric itself, same shape
    clean: float
    corrupt: float
    target: int
    other: int | None


def metric(logits: torch.Tensor, target: int, other: int | None) -> torch.Tensor:
    """logits [batch, pos, vocab] -> [batch]: target (minus other) logit at the last position."""
    last = logits[:, -1].float()
    return last[:, target] - (last[:, other] if other is not None else 0.0)


@torch.inference_mode()
def activation_patching(
    model: Transformer,
    clean: torch.Tensor,
    corrupt: torch.Tensor,
    target: int,
    components: Sequence[Component],
    *,
    other: int | None = None,
    per_position: bool = False,
    batch_size: int = 128,
) -> PatchResult:
    """Patch each component (at each position, with per_position) from clean into corrupt."""
    if clean.shape != corrupt.shape or clean.shape[0] != 1:
        raise InputError(
            f"clean and corrupted prompts must be single prompts of the same length, got {clean.shape[-1]} and {corrupt.shape[-1]} tokens"
        )
    cfg = model.cfg
    n_layers = cfg.n_layers
    sites = [c.sites(cfg) for c in components]
    hooks = sorted({s.hook for ss in sites for s in ss})
    clean_logits, clean_cache = model.run_with_cache(clean, hooks)
    # the corrupted run, keeping each layer's incoming residual stream and every layer's keys and values
    pos = clean.shape[1]
    kv = KVCache(n_layers, capacity=pos)
    resid_pre: dict[int, torch.Tensor] = {}

    def keep(x: torch.Tensor, *, hook: HookPoint) -> None:
        resid_pre[int(hook.name.split(".")[1])] = x

    with model.hooks([(f"blocks.{l}.hook_resid_pre", keep) for l in range(n_layers)]):
        corrupt_logits = model(corrupt, cache=kv)
    m_clean = float(metric(clean_logits, target, other)[0])
    m_corrupt = float(metric(corrupt_logits, target, other)[0])
    jobs: list[tuple[int, int | None]] = [(ci, p) for ci in range(len(components)) for p in (range(pos) if per_position else [None])]
    raw = torch.full((len(jobs),), m_corrupt)
    # Exact shortcuts: before the first token where the prompts differ, clean and corrupted
    # activations are the same, so such a patch changes nothing; a final-layer patch at a position
    # other than the last cannot reach the last position's logits.
    differs = (clean[0] != corrupt[0]).nonzero()
    first_diff = int(differs[0]) if len(differs) else pos
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)  # (first layer, first position) -> jobs
    for j, (ci, p) in enumerate(jobs):
        layer = _first_layer(sites[ci])
        if p is not None and p < first_diff:
            continue
        if layer == n_layers - 1 and p is not None and p != pos - 1 and _inside_block(sites[ci]):
            continue
        groups[(layer, 0 if p is None else p)].append(j)
    for (layer, start), job_ids in sorted(groups.items()):
        for first in range(0, len(job_ids), batch_size):
            chunk = job_ids[first : first + batch_size]
            rows = len(chunk)
            by_hook: dict[str, list[tuple[int, Site, int | None]]] = defaultdict(list)
            for row, j in enumerate(chunk):
                ci, p = jobs[j]
                for site in sites[ci]:
                    by_hook[site.hook].append((row, site, None if p is None else p - start))
            fns = [(hook, _patch_hook(entries, clean_cache[hook][0, start:])) for hook, entries in by_hook.items()]
            tokens = corrupt[:, start:].expand(rows, -1)  # the positions a patch at `start` can change
            past = kv.prefix(start, rows, range(max(layer, 0), n_layers)) if start else None
            # Only the last position is measured, so the last block computes it alone (last_only: it
            # holds no patch hook unless the patches are in it, and then they are at the last position or all).
            with model.hooks(fns):
                if layer < 0:  # the embeddings: every block, from the patched position on
                    resid = model(tokens, stop_at_layer=n_layers, cache=past, last_only=True)
                elif start == 0 or layer == n_layers - 1:
                    begin = resid_pre[layer][:, start:].expand(rows, -1, -1)
                    resid = model(tokens, start_at_layer=layer, stop_at_layer=n_layers, residual=begin, cache=past,
                                  last_only=layer < n_layers - 1)
                else:
                    # Within the patched block a patch at `start` (a head's z, an attention or MLP output,
                    # a neuron) changes that position only: run the block there alone, then the later
                    # blocks from `start` on, the later positions entering them as in the corrupted run.
                    begin = resid_pre[layer][:, start : start + 1].expand(rows, -1, -1)
                    changed = model(tokens[:, :1], start_at_layer=layer, stop_at_layer=layer + 1, residual=begin, cache=past)
                    rest = resid_pre[layer + 1][:, start + 1 :].expand(rows, -1, -1)
                    resid = model(tokens, start_at_layer=layer + 1, stop_at_layer=n_layers, residual=torch.cat([changed, rest], dim=1),
                                  cache=past, last_only=True)
                logits = model.unembed(resid[:, -1:])
            raw[chunk] = metric(logits, target, other).cpu()
    denom = m_clean - m_corrupt
    effect = (raw - m_corrupt) / denom if abs(denom) > 1e-12 else torch.full_like(raw, float("nan"))
    shape = (len(components), pos) if per_position else (len(components),)
    return PatchResult([str(c) for c in components], per_position, effect.view(shape), raw.view(shape), m_clean, m_corrupt, target, other)


def _first_layer(sites: list[Site]) -> int:
    """The first block a component's sites live in; -1 for the embeddings."""
    return min(-1 if s.layer is None else s.layer for s in sites)


def _inside_block(sites: list[Site]) -> bool:
    return all(s.layer is not None for s in sites)


def _patch_hook(entries: list[tuple[int, Site, int | None]], clean: torch.Tensor):
    """One hook that writes, for each batch row, its site's clean activation (at its position)."""
    rows = torch.tensor([r for r, _, _ in entries])
    idx = torch.tensor([s.index if s.index is not None else -1 for _, s, _ in entries])
    pos = torch.tensor([p if p is not None else -1 for _, _, p in entries])
    indexed = idx >= 0
    at_pos = pos >= 0

    def fn(x: torch.Tensor, *, hook: object) -> torch.Tensor:
        x = x.clone()
        src = clean.to(x.device, x.dtype)  # [pos, ...] the clean activation of this hook
        for sel_indexed in (False, True):
            for sel_pos in (False, True):
                mask = (indexed == sel_indexed) & (at_pos == sel_pos)
                if not mask.any():
                    continue
                r, i, p = rows[mask].to(x.device), idx[mask].to(x.device), pos[mask].to(x.device)
                # each row gets the clean activation of its own site: gather it per row
                if sel_indexed and sel_pos:
                    value = src[p, i]  # [n, ...]
                elif sel_indexed:
                    value = src[:, i].transpose(0, 1)  # [n, pos, ...]
                elif sel_pos:
                    value = src[p]  # [n, ...]
                else:
                    value = src.expand(len(r), *src.shape)
                write_site(x, rows=r, positions=p if sel_pos else None, index=i if sel_indexed else None, value=value)
        return x

    return fn


@torch.inference_mode()
def activation_patching_loop(
    model: Transformer,
    clean: torch.Tensor,
    corrupt: torch.Tensor,
    target: int,
    components: Sequence[Component],
    *,
    other: int | None = None,
    per_position: bool = False,
) -> torch.Tensor:
    """Reference implementation: one forward per patch (for tests and the benchmark baseline)."""
    cfg = model.cfg
    hooks = sorted({s.hook for c in components for s in c.sites(cfg)})
    _, clean_cache = model.run_with_cache(clean, hooks)
    out = []
    for c in components:
        for p in range(clean.shape[1]) if per_position else [None]:
            fns = []
            for site in c.sites(cfg):
                src = clean_cache[site.hook]

                def fn(x, *, hook, site=site, src=src, p=p):
                    x = x.clone()
                    write_site(x, index=site.index, positions=p, source=src)
                    return x

                fns.append((site.hook, fn))
            with model.hooks(fns):
                out.append(float(metric(model(corrupt), target, other)[0]))
    return torch.tensor(out).view(len(components), -1) if per_position else torch.tensor(out)


@dataclass(frozen=True)
class PatchReport:
    """Activation patching of two prompts, with the tokens and the metric's target."""

    lm: Any
    clean_ids: tuple[int, ...]
    corrupt_ids: tuple[int, ...]
    result: PatchResult

    @property
    def metric(self) -> str:
        if self.result.other is not None:
            return "logit(target) - logit(other) at the last position"
        return "logit(target) at the last position"

    def to_json(self) -> dict[str, Any]:
        lm, r = self.lm, self.result
        return {
            "model": model_json(lm),
            "clean_tokens": [token_json(lm, i) for i in self.clean_ids],
            "corrupt_tokens": [token_json(lm, i) for i in self.corrupt_ids],
            "target": token_json(lm, r.target),
            "other": None if r.other is None else token_json(lm, r.other),
            "metric": self.metric,
            "clean": r.clean,
            "corrupt": r.corrupt,
            "per_position": r.per_position,
            "results": [
                {"component": c, "effect": _nan_to_none(r.effect[i].tolist()), "metric": r.raw[i].tolist()}
                for i, c in enumerate(r.components)
            ],
        }


def _nan_to_none(x: Any) -> Any:
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    return None if x != x else x


@torch.inference_mode()
def patch_prompts(
    lm: Any,
    clean_ids: Sequence[int],
    corrupt_ids: Sequence[int],
    *,
    target: str | None = None,
    other: str | None = None,
    components: str = "L*.H*,L*.mlp",
    per_position: bool = False,
) -> PatchReport:
    """Patch `components` from the clean prompt into the corrupted one. The target defaults to
    the clean run's top token, `other` to the corrupted run's top token (when it differs)."""
    if len(clean_ids) != len(corrupt_ids):
        raise InputError(
            f"the clean prompt is {len(clean_ids)} tokens but the corrupted one is {len(corrupt_ids)}: patching needs prompts of the same length"
        )
    ct = torch.tensor([list(clean_ids)], device=lm.device)
    xt = torch.tensor([list(corrupt_ids)], device=lm.device)
    clean_top = int(lm.model(ct)[0, -1].argmax())
    corrupt_top = int(lm.model(xt)[0, -1].argmax())
    tgt = parse_target(lm, target) if target else clean_top
    oth = parse_target(lm, other) if other else (corrupt_top if corrupt_top != tgt else None)
    comps = resolve_components(components, lm.config)
    result = activation_patching(lm.model, ct, xt, tgt, comps, other=oth, per_position=per_position)
    return PatchReport(lm, tuple(clean_ids), tuple(corrupt_ids), result)
