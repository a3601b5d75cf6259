"""Mechanistic claims of a theory, checked by intervening on the model.

    claim needs C, ...     ablating them together drops agreement below X (default 0.5)
    claim suffices C, ...  ablating every other head and MLP (and the embeddings) keeps
                           agreement above X (default 0.9)
    claim attends L.H from P to Q   mean attention of the head from P's positions to Q's
                           positions, over the domain, above X (default 0.5)
    claim label C "name"   the label store holds this label for the component

Ablations run over the theory's own inputs, which are also the reference set
(engine/interventions.py): mean ablation writes each component's mean activation over those
inputs (all positions); resample ablation writes the activation of another input of the same
batch (a seeded permutation that moves every input). Each result says what it measured.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from tui_interp.components import Component, Site, resolve_components
from tui_interp.engine.interventions import hook_means, resample_rows, write_site
from tui_interp.errors import TuiInterpError
from tui_interp.model.loader import LoadedModel
from tui_interp.model.transformer import HookFn
from tui_interp.theory import AttendsClaim, Claim, LabelClaim, NeedsClaim, Position, SufficesClaim, Theory

HookFactory = Callable[[int], list[tuple[str, HookFn]]]  # batch size -> hooks for that batch


@dataclass
class ClaimResult:
    claim: Claim
    status: str  # "holds" | "fails" | "unchecked"
    value: float | None = None  # what was measured
    threshold: str | None = None  # e.g. "below 0.5"
    detail: str = ""  # how it was measured, or why it could not be
    components: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.claim.text

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.claim.text,
            "line": self.claim.span.line,
            "status": self.status,
            "value": self.value,
            "threshold": self.threshold,
            "detail": self.detail,
        }


class _Unchecked(TuiInterpError):
    """A claim that cannot be checked on this model/theory (the reason is the message)."""


# ---------------------------------------------------------------------------------------------
# ablation hooks over a set of sites


def site_means(lm: LoadedModel, batches: Sequence[torch.Tensor], sites: Sequence[Site]) -> dict[Site, torch.Tensor]:
    """Mean activation of each site over every token of every batch: [d] per site."""
    means = hook_means(lm.model, batches, sorted({s.hook for s in sites}))
    return {s: means[s.hook] if s.index is None else means[s.hook][s.index] for s in sites}


def ablation_hooks(sites: Sequence[Site], mode: str, means: dict[Site, torch.Tensor] | None, seed: int) -> HookFactory:
    """A factory of hooks that ablate all `sites` for a batch: zero, the mean, or (resample)
    the activation of another input of the same batch (`resample_rows`, seeded per batch size)."""
    by_hook: dict[str, list[Site]] = defaultdict(list)
    for s in sites:
        by_hook[s.hook].append(s)

    def factory(batch: int) -> list[tuple[str, HookFn]]:
        rows = resample_rows(batch, batch, torch.Generator().manual_seed(seed + batch), same_batch=True)
        out = []
        for hook, group in by_hook.items():

            def fn(x: torch.Tensor, *, hook: object, group: list[Site] = group) -> torch.Tensor:
                source = x[rows.to(x.device)] if mode == "resample" else None
                x = x.clone()
                for site in group:
                    if mode == "zero":
                        write_site(x, index=site.index, value=0.0)
                    elif mode == "mean":
                        write_site(x, index=site.index, value=means[site])  # type: ignore[index]
                    else:
                        write_site(x, index=site.index, source=source)
                return x

            out.append((hook, fn))
        return out

    return factory


# ---------------------------------------------------------------------------------------------
# the claims


def _components(refs: Sequence[Any], lm: LoadedModel) -> list[Component]:
    out: list[Component] = []
    for ref in refs:
        for c in resolve_components(ref.text, lm.config):
            if c not in out:
                out.append(c)
    return out


def _ablatable_sites(components: Sequence[Component], lm: LoadedModel) -> list[Site]:
    sites: list[Site] = []
    for c in components:
        if c.kind in ("ln_final", "unembed"):
            raise _Unchecked(f"{c} cannot be ablated")
        for s in c.sites(lm.config):
            if s not in sites:
                sites.append(s)
    return sites


def complement_sites(kept: Sequence[Component], lm: LoadedModel) -> list[Site]:
    """Every head, MLP and embedding not covered by `kept` (the sites a `suffices` claim ablates)."""
    cfg = lm.config
    if any(c.kind == "neuron" for c in kept):
        raise _Unchecked("suffices works on heads, MLPs, blocks and embeddings, not single neurons")
    kept_set = set(kept)

    def covered(c: Component) -> bool:
        if c in kept_set:
            return True
        if c.kind == "head":
            return Component("attn", c.layer) in kept_set or Component("block", c.layer) in kept_set
        if c.kind == "mlp":
            return Component("block", c.layer) in kept_set
        return False

    candidates = [Component("embed")]
    if cfg.positional == "learned":
        candidates.append(Component("pos_embed"))
    for l in range(cfg.n_layers):
        candidates += [Component("head", l, h) for h in range(cfg.n_heads)]
        if cfg.d_mlp:
            candidates.append(Component("mlp", l))
    sites: list[Site] = []
    for c in candidates:
        if not covered(c):
            sites += c.sites(cfg)
    return sites


@dataclass
class ClaimContext:
    """What checking claims needs from the comparison: the model, the theory, and a function
    that measures agreement over the claim inputs with extra hooks."""

    lm: LoadedModel
    theory: Theory
    agreement: Callable[[HookFactory | None], float]
    token_batches: Callable[[], list[torch.Tensor]]  # the claim inputs' prompts+answers, bucketed
    prompts: Callable[[], list[tuple[list[int], list[tuple[int, int]], Any]]]  # (ids, offsets, input) per input
    n_inputs: int
    seed: int = 0
    labels: Any = None  # a LabelStore, or None


def check_claims(ctx: ClaimContext) -> list[ClaimResult]:
    results = []
    means_cache: dict[Site, torch.Tensor] = {}
    for claim in ctx.theory.claims:
        try:
            results.append(_check(claim, ctx, means_cache))
        except TuiInterpError as e:  # _Unchecked, or e.g. a component this model lacks
            results.append(ClaimResult(claim, "unchecked", detail=str(e)))
    return results


def _check(claim: Claim, ctx: ClaimContext, means_cache: dict[Site, torch.Tensor]) -> ClaimResult:
    lm = ctx.lm
    if isinstance(claim, (NeedsClaim, SufficesClaim)):
        comps = _components(claim.components, lm)
        if isinstance(claim, NeedsClaim):
            sites = _ablatable_sites(comps, lm)
            what = f"{claim.ablation}-ablating {', '.join(map(str, comps))}"
        else:
            sites = complement_sites(comps, lm)
            what = f"{claim.ablation}-ablating the {len(sites)} other heads, MLPs and embeddings"
        means = None
        if claim.ablation == "mean" and sites:
            missing = [s for s in sites if s not in means_cache]
            if missing:
                means_cache.update(site_means(lm, ctx.token_batches(), missing))
            means = {s: means_cache[s] for s in sites}
        value = ctx.agreement(ablation_hooks(sites, claim.ablation, means, ctx.seed) if sites else None)
        status = "holds" if claim.threshold.holds(value) else "fails"
        return ClaimResult(claim, status, value, str(claim.threshold), f"agreement {value:.2%} when {what} (over {ctx.n_inputs:,} inputs)",
                           [str(c) for c in comps])
    if isinstance(claim, AttendsClaim):
        heads = resolve_components(claim.head.text, lm.config)
        head = heads[0]
        if len(heads) != 1 or head.kind != "head":
            raise _Unchecked(f"{claim.head.text} is not an attention head")
        value, n = _attention_between(ctx, head, claim.source, claim.target)
        status = "holds" if claim.threshold.holds(value) else "fails"
        return ClaimResult(claim, status, value, str(claim.threshold),
                           f"mean attention of {head} from {_pos_text(claim.source)} to {_pos_text(claim.target)} over {n:,} inputs",
                           [str(head)])
    if isinstance(claim, LabelClaim):
        components = resolve_components(claim.component.text, lm.config)
        if len(components) != 1:
            raise _Unchecked(f"{claim.component.text} names {len(components)} components; a label claim names one")
        c = components[0]
        if ctx.labels is None:
            raise _Unchecked("no label store")
        label = ctx.labels.read().get(c)
        if label is None:
            return ClaimResult(claim, "fails", detail=f"{c} has no label", components=[str(c)])
        ok = label.name.strip().casefold() == claim.label.strip().casefold()
        detail = f"{c} is labelled {label.name!r}"
        return ClaimResult(claim, "holds" if ok else "fails", detail=detail, components=[str(c)])
    raise _Unchecked(f"unknown claim {claim.text!r}")


def _pos_text(p: Position) -> str:
    return repr(p.value) if p.kind == "text" else (f"input {p.value}" if p.kind == "input" else f"position {p.value}")


def _positions(p: Position, ids: list[int], offsets: list[tuple[int, int]], x: Any, ctx: ClaimContext) -> list[int]:
    n = len(ids)
    if p.kind == "index":
        i = int(p.value)
        i = i + n if i < 0 else i
        return [i] if 0 <= i < n else []
    if p.kind == "text":
        tok = ctx.lm.need_tokenizer()
        want = str(p.value).strip()
        return [i for i, t in enumerate(ids) if tok.token_text(t).strip() == want]
    spans = [(piece.start, piece.end) for piece in ctx.theory.prompt_pieces(x) if p.value in piece.inputs]
    return [i for i, (s, e) in enumerate(offsets) if e > s and any(s < pe and ps < e for ps, pe in spans)]


def _attention_between(ctx: ClaimContext, head: Component, source: Position, target: Position) -> tuple[float, int]:
    lm = ctx.lm
    hook = f"blocks.{head.layer}.attn.hook_pattern"
    rows = ctx.prompts()
    by_len: dict[int, list[int]] = defaultdict(list)
    for i, (ids, _, _) in enumerate(rows):
        by_len[len(ids)].append(i)
    total, n = 0.0, 0
    with torch.inference_mode():
        for _length, idxs in by_len.items():
            for start in range(0, len(idxs), 512):
                chunk = idxs[start : start + 512]
                tokens = torch.tensor([rows[i][0] for i in chunk], device=lm.device)
                _, cache = lm.model.run_with_cache(tokens, hook)
                pattern = cache[hook][:, head.index].float()  # [batch, query, key]
                for row, i in enumerate(chunk):
                    ids, offsets, x = rows[i]
                    qs = _positions(source, ids, offsets, x, ctx)
                    ks = _positions(target, ids, offsets, x, ctx)
                    if not qs or not ks:
                        continue
                    total += float(pattern[row][qs][:, ks].sum(-1).mean())
                    n += 1
    if n == 0:
        raise _Unchecked(f"no input has both {_pos_text(source)} and {_pos_text(target)} in its prompt")
    return total / n, n


def record_evidence(results: Sequence[ClaimResult], store: Any, *, command: str) -> int:
    """Write each checked claim into the labels of the single components it is about (only
    components that already have a label). Returns how many labels were updated."""
    snapshot = store.read()
    updated = 0
    for r in results:
        if r.status == "unchecked" or r.value is None and not isinstance(r.claim, LabelClaim):
            continue
        for comp in r.components if len(r.components) == 1 else []:
            label = snapshot.get(comp)
            if label is None:
                continue
            evidence = {"kind": "claim", "claim": r.claim.text, "status": r.status, "detail": r.detail, "command": command}
            if r.value is not None:
                evidence.update(value=round(r.value, 6), threshold=r.threshold)
            store.add(comp, label.name, evidence=[evidence])
            updated += 1
    return updated


def sample_for_claims(n: int, limit: int, seed: int) -> list[int]:
    """Indices of the inputs claims are checked on: all when n <= limit, else a seeded sample."""
    if n <= limit:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), limit))
