"""Mechanistic claims of a theory, checked by intervening on the model.

    claim needs C, ...     ablating them together loses agreement: by default agreement falls
                           below half the unablated agreement on the same inputs (the
                           baseline); `below X` asks for an absolute agreement below X
    claim suffices C, ...  ablating every other head and MLP (and the embeddings) keeps
                           agreement: by default above 0.9 x the baseline; `above X`: absolute
    claim attends L.H from P to Q   mean attention of the head from P's positions to Q's
                           positions, over the claim inputs, above X (default 0.5)
    claim label C "name"   the label store holds this label for the component

Claims are measured on the claim inputs the comparison hands over: every input of an
enumerated domain (or a seeded uniform sample of them when asked), the uniform sample of a
sampled one; never a sorted prefix. The claim inputs are also the reference set
(engine/interventions.py): mean ablation writes each component's mean activation over them
(all positions); resample ablation writes the activation of another input of the same batch
(a seeded permutation that moves every input). Each result says what it measured and on what.

`validate_claims` checks every claim against the model before anything runs: a claim on a
component the model lacks is a TheoryError at the claim's line and column (exit 2).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from tui_interp.components import Component, Site, resolve_components
from tui_interp.engine.answers import Cancelled, HookFactory, score
from tui_interp.engine.interventions import hook_means, resample_rows, write_site
from tui_interp.errors import ComponentError, TheoryError, TuiInterpError
from tui_interp.model.config import ModelConfig
from tui_interp.model.loader import LoadedModel
from tui_interp.model.transformer import HookFn
from tui_interp.theory import AttendsClaim, Claim, ComponentRef, LabelClaim, NeedsClaim, Position, SufficesClaim, Theory

NEEDS_FRACTION = 0.5  # default `needs`: ablated agreement below this fraction of the baseline
SUFFICES_FRACTION = 0.9  # default `suffices`: ablated agreement above this fraction of the baseline
ATTENDS_BATCH = 512


@dataclass
class ClaimResult:
    claim: Claim
    status: str  # "holds" | "fails" | "unchecked"
    value: float | None = None  # what was measured (ablated agreement, attention mass)
    threshold: str | None = None  # e.g. "below 0.5 x baseline (0.445)"
    detail: str = ""  # how it was measured, or why it could not be
    components: list[str] = field(default_factory=list)
    baseline: float | None = None  # unablated agreement on the same inputs (needs/suffices)

    @property
    def text(self) -> str:
        return self.claim.text

    def to_json(self) -> dict[str, Any]:
        ablation = isinstance(self.claim, (NeedsClaim, SufficesClaim))
        return {
            "text": self.claim.text,
            "line": self.claim.span.line,
            "col": self.claim.span.col,
            "status": self.status,
            "value": self.value,
            "baseline": self.baseline,
            "ablated": self.value if ablation else None,
            "threshold": self.threshold,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class ClaimInputs:
    """The inputs claims are measured on: prompt and expected-answer tokens, the evaluations
    (for prompt positions), and what they are in words."""

    prompts: list[list[int]]
    expected: list[list[int]]
    evaluations: list[Any]  # theory Evaluations, same order
    description: str  # "all 12,769 inputs", "a uniform random sample of 4,096 inputs (seed 0)"

    def __len__(self) -> int:
        return len(self.prompts)


class _Unchecked(TuiInterpError):
    """A claim that cannot be checked on this model or these inputs (the reason is the message)."""


# ---------------------------------------------------------------------------------------------
# checked before anything runs


def _at(ref: ComponentRef | Claim, message: str, theory: Theory) -> TheoryError:
    span = ref.span
    return TheoryError(message, line=span.line, col=span.col, end_col=span.end_col, path=theory.path)


def _resolve(ref: ComponentRef, config: ModelConfig, theory: Theory) -> list[Component]:
    try:
        return resolve_components(ref.text, config)
    except ComponentError as e:
        raise _at(ref, str(e), theory) from None


def validate_claims(theory: Theory, config: ModelConfig) -> None:
    """Raise a TheoryError at the claim's line and column for any claim this model cannot have:
    a component it lacks, a component that cannot be ablated, an attends claim on something
    other than one head, a label claim on several components."""
    for claim in theory.claims:
        if isinstance(claim, (NeedsClaim, SufficesClaim)):
            for ref in claim.components:
                for c in _resolve(ref, config, theory):
                    if isinstance(claim, NeedsClaim) and not c.ablatable:
                        raise _at(ref, f"{c} cannot be ablated (needs takes embeddings, heads, attn, MLPs, neurons or blocks)", theory)
                    if isinstance(claim, SufficesClaim) and c.kind in ("neuron",):
                        raise _at(ref, "suffices works on heads, MLPs, blocks and embeddings, not single neurons", theory)
        elif isinstance(claim, AttendsClaim):
            heads = _resolve(claim.head, config, theory)
            if len(heads) != 1 or heads[0].kind != "head":
                raise _at(claim.head, f"{claim.head.text} is not one attention head (write L<layer>.H<head>)", theory)
        elif isinstance(claim, LabelClaim):
            found = _resolve(claim.component, config, theory)
            if len(found) != 1:
                raise _at(claim.component, f"{claim.component.text} names {len(found)} components; a label claim names one", theory)


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


def _components(refs: Sequence[ComponentRef], config: ModelConfig) -> list[Component]:
    out: list[Component] = []
    for ref in refs:
        for c in resolve_components(ref.text, config):
            if c not in out:
                out.append(c)
    return out


def _sites(components: Sequence[Component], config: ModelConfig) -> list[Site]:
    sites: list[Site] = []
    for c in components:
        for s in c.sites(config):
            if s not in sites:
                sites.append(s)
    return sites


def complement_sites(kept: Sequence[Component], config: ModelConfig) -> list[Site]:
    """Every head, MLP and embedding not covered by `kept` (the sites a `suffices` claim ablates)."""
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
    if config.positional == "learned":
        candidates.append(Component("pos_embed"))
    for l in range(config.n_layers):
        candidates += [Component("head", l, h) for h in range(config.n_heads)]
        if config.d_mlp:
            candidates.append(Component("mlp", l))
    return [s for c in candidates if not covered(c) for s in c.sites(config)]


# ---------------------------------------------------------------------------------------------
# the claims


class _Checker:
    def __init__(
        self,
        lm: LoadedModel,
        theory: Theory,
        inputs: ClaimInputs,
        *,
        seed: int,
        labels: Any,
        cancel: Callable[[], bool],
        bos: bool | None,
    ) -> None:
        self.lm, self.theory, self.inputs = lm, theory, inputs
        self.seed, self.labels, self.cancel, self.bos = seed, labels, cancel, bos
        self._means: dict[Site, torch.Tensor] = {}
        self._baseline: float | None = None

    def agreement(self, hooks: HookFactory | None) -> float:
        agree = sum(s.agree for batch in score(self.lm, self.inputs.prompts, self.inputs.expected, cancel=self.cancel, hooks=hooks)
                    for _, s in batch)
        return agree / len(self.inputs)

    @property
    def baseline(self) -> float:
        if self._baseline is None:
            self._baseline = self.agreement(None)
        return self._baseline

    def token_batches(self) -> list[torch.Tensor]:
        """The claim inputs as the model reads them (prompt + answer but its last token), by length."""
        groups: dict[int, list[list[int]]] = defaultdict(list)
        for p, e in zip(self.inputs.prompts, self.inputs.expected, strict=True):
            row = p + e[:-1]
            groups[len(row)].append(row)
        out = []
        for rows in groups.values():
            step = max(1, 65_536 // len(rows[0]))
            out += [torch.tensor(rows[i : i + step], device=self.lm.device) for i in range(0, len(rows), step)]
        return out

    def means(self, sites: Sequence[Site]) -> dict[Site, torch.Tensor]:
        missing = [s for s in sites if s not in self._means]
        if missing:
            self._means.update(site_means(self.lm, self.token_batches(), missing))
        return {s: self._means[s] for s in sites}

    def check(self, claim: Claim) -> ClaimResult:
        cfg = self.lm.config
        if isinstance(claim, (NeedsClaim, SufficesClaim)):
            comps = _components(claim.components, cfg)
            if isinstance(claim, NeedsClaim):
                sites = _sites(comps, cfg)
                what = f"{claim.ablation}-ablating {', '.join(map(str, comps))}"
            else:
                sites = complement_sites(comps, cfg)
                what = f"{claim.ablation}-ablating the {len(sites)} other heads, MLPs and embeddings"
            means = self.means(sites) if claim.ablation == "mean" and sites else None
            value = self.agreement(ablation_hooks(sites, claim.ablation, means, self.seed) if sites else None)
            baseline = self.baseline
            t = claim.threshold
            if t.explicit:
                holds, threshold = t.holds(value), f"{t.op} {t.value:g}"
            else:
                fraction = NEEDS_FRACTION if isinstance(claim, NeedsClaim) else SUFFICES_FRACTION
                bound = fraction * baseline
                holds = value < bound if isinstance(claim, NeedsClaim) else value > bound
                threshold = f"{'below' if isinstance(claim, NeedsClaim) else 'above'} {fraction:g} x baseline ({bound:.3f})"
            detail = f"agreement {baseline:.2%} -> {value:.2%} when {what} (over {self.inputs.description})"
            return ClaimResult(claim, "holds" if holds else "fails", value, threshold, detail, [str(c) for c in comps], baseline)
        if isinstance(claim, AttendsClaim):
            head = resolve_components(claim.head.text, cfg)[0]
            value, n = self.attention_between(head, claim.source, claim.target)
            t = claim.threshold
            detail = f"mean attention of {head} from {_pos_text(claim.source)} to {_pos_text(claim.target)} over {n:,} inputs"
            if n < len(self.inputs):
                detail += f" of {self.inputs.description} (the others lack one of the positions)"
            else:
                detail += f" ({self.inputs.description})"
            return ClaimResult(claim, "holds" if t.holds(value) else "fails", value, f"{t.op} {t.value:g}", detail, [str(head)])
        if isinstance(claim, LabelClaim):
            c = resolve_components(claim.component.text, cfg)[0]
            if self.labels is None:
                raise _Unchecked("no label store")
            label = self.labels.read().get(c)
            if label is None:
                return ClaimResult(claim, "fails", detail=f"{c} has no label", components=[str(c)])
            ok = label.name.strip().casefold() == claim.label.strip().casefold()
            return ClaimResult(claim, "holds" if ok else "fails", detail=f"{c} is labelled {label.name!r}", components=[str(c)])
        raise _Unchecked(f"unknown claim {claim.text!r}")

    @torch.inference_mode()
    def attention_between(self, head: Component, source: Position, target: Position) -> tuple[float, int]:
        """Mean attention mass from `source` positions to `target` positions, over every claim
        input whose prompt has both."""
        lm, hook = self.lm, f"blocks.{head.layer}.attn.hook_pattern"
        tok = lm.need_tokenizer()
        by_len: dict[int, list[int]] = defaultdict(list)
        encoded = []
        for i, ev in enumerate(self.inputs.evaluations):
            ids, offsets = tok.encode_with_offsets(ev.prompt, bos=self.bos)
            encoded.append((ids, offsets, ev.input))
            by_len[len(ids)].append(i)
        total, n = 0.0, 0
        for idxs in by_len.values():
            for start in range(0, len(idxs), ATTENDS_BATCH):
                if self.cancel():
                    raise Cancelled("cancelled")
                chunk = idxs[start : start + ATTENDS_BATCH]
                tokens = torch.tensor([encoded[i][0] for i in chunk], device=lm.device)
                _, cache = lm.model.run_with_cache(tokens, hook)
                pattern = cache[hook][:, head.index].float()  # [batch, query, key]
                for row, i in enumerate(chunk):
                    ids, offsets, x = encoded[i]
                    qs = self.positions(source, ids, offsets, x)
                    ks = self.positions(target, ids, offsets, x)
                    if qs and ks:
                        total += float(pattern[row][qs][:, ks].sum(-1).mean())
                        n += 1
        if n == 0:
            raise _Unchecked(f"no input has both {_pos_text(source)} and {_pos_text(target)} in its prompt")
        return total / n, n

    def positions(self, p: Position, ids: list[int], offsets: list[tuple[int, int]], x: Any) -> list[int]:
        n = len(ids)
        if p.kind == "index":
            i = int(p.value)
            i = i + n if i < 0 else i
            return [i] if 0 <= i < n else []
        if p.kind == "text":
            tok = self.lm.need_tokenizer()
            want = str(p.value).strip()
            return [i for i, t in enumerate(ids) if tok.token_text(t).strip() == want]
        spans = [(piece.start, piece.end) for piece in self.theory.prompt_pieces(x) if p.value in piece.inputs]
        return [i for i, (s, e) in enumerate(offsets) if e > s and any(s < pe and ps < e for ps, pe in spans)]


def check_claims(
    lm: LoadedModel,
    theory: Theory,
    inputs: ClaimInputs,
    *,
    seed: int = 0,
    labels: Any = None,
    cancel: Callable[[], bool] = lambda: False,
    bos: bool | None = None,
) -> list[ClaimResult]:
    """Check every claim of the theory on `inputs` (validate_claims first)."""
    checker = _Checker(lm, theory, inputs, seed=seed, labels=labels, cancel=cancel, bos=bos)
    results = []
    for claim in theory.claims:
        try:
            results.append(checker.check(claim))
        except _Unchecked as e:
            results.append(ClaimResult(claim, "unchecked", detail=str(e)))
    return results


def _pos_text(p: Position) -> str:
    return repr(p.value) if p.kind == "text" else (f"input {p.value}" if p.kind == "input" else f"position {p.value}")


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
            if r.baseline is not None:
                evidence.update(baseline=round(r.baseline, 6))
            store.add(comp, label.name, evidence=[evidence])
            updated += 1
    return updated
