"""Interventions on components: zero, mean and resample ablation, activation patching, steering.

An intervention names a component (`L0.H3`, `L1.mlp`, `L1.N7`; a glob expands to several) and
a mode. Each becomes forward hooks on the component's sites (`Component.sites`: the hook point
and the head or neuron index into it). `write_site` is the one function that writes an
activation at a site; ablation, patching and claims all go through it.

What each mode writes, at every position (or at the given positions):

    zero      0
    mean      the component's mean activation over a reference set (all inputs, all positions)
    resample  the component's activation on another input drawn from the reference set, with
              a seeded generator (`resample_rows`): on one prompt, one reference input; when
              the reference set is the batch being run (claims), a seeded permutation that
              moves every input (so no input keeps its own activation)
    patch     the activation from a given source run (clean -> corrupted)

The reference set (`Reference`) is the theory's inputs, a list of prompts, or seeded random
token sequences; it says what it is in words, and every face shows that.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from tui_interp.components import INTERVENTION_MODES, Component, Site, resolve_components
from tui_interp.errors import InputError
from tui_interp.fileio import regular_file
from tui_interp.model.config import ModelConfig
from tui_interp.model.transformer import HookFn, Transformer

if TYPE_CHECKING:
    from tui_interp.model.loader import LoadedModel
    from tui_interp.theory import Theory

REFERENCE_SIZE = 64  # inputs in a reference set drawn at random (tokens or theory inputs)

Index = int | torch.Tensor | slice | None


def write_site(
    x: torch.Tensor,
    *,
    index: Index = None,
    positions: Index = None,
    rows: Index = None,
    value: torch.Tensor | float | None = None,
    source: torch.Tensor | None = None,
) -> None:
    """Write, in place, `x[rows, positions, index]` (each None selects everything).

    `value` broadcasts into the selection (0 for zero ablation, a mean vector); `source` is a
    full activation of x's layout with batch 1 or x's batch, read at the same selection
    (resample, patch). `index` is the head or neuron (dimension 2 of every site's activation).
    """
    sel: tuple[Any, ...] = (
        slice(None) if rows is None else rows,
        slice(None) if positions is None else positions,
    )
    if index is not None:
        sel += (index,)
    if source is not None:
        if source.shape[1:] != x.shape[1:] or source.shape[0] not in (1, x.shape[0]):
            raise InputError(f"source activations have shape {tuple(source.shape)}, the run has {tuple(x.shape)}")
        x[sel] = source.to(x.device, x.dtype).expand_as(x)[sel]
    else:
        x[sel] = value.to(x.device, x.dtype) if isinstance(value, torch.Tensor) else (value or 0.0)


def resample_rows(n_run: int, n_reference: int, generator: torch.Generator, *, same_batch: bool = False) -> torch.Tensor:
    """For each of `n_run` inputs, the reference input whose activation it gets: [n_run] int64.

    With `same_batch` (the reference set is the run itself) a random cyclic permutation, so
    every input gets another's activation; otherwise independent draws."""
    if same_batch:
        if n_run <= 1:
            return torch.zeros(n_run, dtype=torch.long)
        order = torch.randperm(n_run, generator=generator)
        out = torch.empty(n_run, dtype=torch.long)
        out[order] = order.roll(-1)
        return out
    return torch.randint(0, n_reference, (n_run,), generator=generator)


@dataclass(frozen=True)
class Reference:
    """Reference inputs for mean and resample ablation, bucketed by length, and what they are."""

    batches: tuple[torch.Tensor, ...]  # each [n, pos]
    description: str

    def of_length(self, length: int) -> torch.Tensor | None:
        """The reference inputs of exactly `length` tokens (what resample needs), or None."""
        rows = [b for b in self.batches if b.shape[1] == length]
        return torch.cat(rows) if rows else None


def random_reference(cfg: ModelConfig, length: int, *, n: int = REFERENCE_SIZE, seed: int = 0, device: torch.device | str = "cpu") -> torch.Tensor:
    """A seeded batch of uniformly random token sequences: [n, length]."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, cfg.vocab_size, (n, length), generator=g).to(device)


def reference_batch(
    lm: LoadedModel,
    length: int,
    *,
    prompts: Sequence[str] | None = None,
    theory: Theory | None = None,
    n: int = REFERENCE_SIZE,
    seed: int = 0,
) -> Reference:
    """The reference set: the given prompts, else `n` inputs of the theory (seeded), else `n`
    seeded random token sequences of `length` tokens (the prompt's length)."""
    if prompts:
        tok = lm.need_tokenizer()
        rows = [tok.encode(p) for p in prompts]
        if any(not r for r in rows):
            raise InputError("a reference prompt encodes to no tokens")
        return Reference(_bucket(rows, lm.device), f"{len(rows):,} reference prompts")
    if theory is not None:
        tok = lm.need_tokenizer()
        inputs = theory.domain.sample(n, seed=seed)
        if not inputs:
            raise InputError(f"theory {theory.name!r}: the domain is empty, nothing to average over")
        rows = tok.encode_batch([theory.render_prompt(x) for x in inputs])
        return Reference(_bucket(rows, lm.device), f"{len(rows):,} inputs of theory {theory.name!r} (seed {seed})")
    tokens = random_reference(lm.config, length, n=n, seed=seed, device=lm.device)
    return Reference((tokens,), f"{n} random token sequences of length {length} (seed {seed})")


def _bucket(rows: Sequence[list[int]], device: torch.device) -> tuple[torch.Tensor, ...]:
    by_len: dict[int, list[list[int]]] = {}
    for r in rows:
        by_len.setdefault(len(r), []).append(r)
    return tuple(torch.tensor(group, device=device) for _, group in sorted(by_len.items()))


@dataclass(frozen=True)
class Intervention:
    """One component under one mode. `value` holds what mean/resample/patch write, per site hook."""

    component: Component
    mode: str = "zero"
    positions: tuple[int, ...] | None = None  # None: every position
    value: dict[str, torch.Tensor] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in INTERVENTION_MODES:
            raise InputError(f"unknown intervention mode {self.mode!r} (choose {', '.join(INTERVENTION_MODES)})")

    def __str__(self) -> str:
        where = "" if self.positions is None else "@" + ",".join(map(str, self.positions))
        return f"{self.component}{where}:{self.mode}"

    @property
    def needs_reference(self) -> bool:
        return self.mode in ("mean", "resample", "patch") and not self.value

    def hook_names(self, cfg: ModelConfig) -> list[str]:
        return [s.hook for s in self.component.sites(cfg)]

    def hooks(self, cfg: ModelConfig) -> list[tuple[str, HookFn]]:
        if self.needs_reference:
            raise InputError(f"{self}: {self.mode} ablation needs reference activations (call prepare first)")
        return [(site.hook, self._hook(site)) for site in self.component.sites(cfg)]

    def _hook(self, site: Site) -> HookFn:
        mode, value = self.mode, self.value.get(site.hook)
        positions = self.positions

        def fn(x: torch.Tensor, *, hook: object) -> torch.Tensor:
            pos = None if positions is None else torch.tensor(positions, device=x.device)
            if positions is not None and max(positions) >= x.shape[1]:
                raise InputError(f"{self}: position {max(positions)} is past the end of the prompt ({x.shape[1]} tokens)")
            x = x.clone()
            if mode == "zero":
                write_site(x, index=site.index, positions=pos, value=0.0)
            elif value is None:  # unreachable: hooks() refuses interventions that need a reference
                raise InputError(f"{self}: no {mode} values for {site.hook}")
            elif mode == "mean":  # [d] for the site: broadcasts over batch and positions
                write_site(x, index=site.index, positions=pos, value=value)
            else:  # resample, patch: a full activation of the same shape (batch 1 broadcasts)
                write_site(x, index=site.index, positions=pos, source=value)
            return x

        return fn


@dataclass(frozen=True)
class Steering:
    """Add `coefficient * vector` to the activation at `hook` (at `positions`, or everywhere).

    The vector has the size of the hook's last dimension (d_model for the residual stream)."""

    hook: str
    vector: torch.Tensor = field(compare=False, hash=False, repr=False)
    coefficient: float = 1.0
    positions: tuple[int, ...] | None = None
    needs_reference = False

    def __str__(self) -> str:
        where = "" if self.positions is None else "@" + ",".join(map(str, self.positions))
        return f"steer {self.hook}{where} x{self.coefficient:g}"

    def hook_names(self, cfg: ModelConfig) -> list[str]:
        return [self.hook]

    def hooks(self, cfg: ModelConfig) -> list[tuple[str, HookFn]]:
        vector, coefficient, positions = self.vector, self.coefficient, self.positions

        def fn(x: torch.Tensor, *, hook: object) -> torch.Tensor:
            if vector.shape != x.shape[-1:]:
                raise InputError(f"{self}: the vector has shape {tuple(vector.shape)}, the hook's last dimension is {x.shape[-1]}")
            add = (coefficient * vector).to(x.device, x.dtype)
            if positions is None:
                return x + add
            x = x.clone()
            x[:, list(positions)] += add
            return x

        return [(self.hook, fn)]


def parse_steering(spec: str, model: Transformer) -> Steering:
    """`HOOK=FILE.safetensors[*COEF]` -> a Steering (the file holds exactly one tensor)."""
    from safetensors import SafetensorError, safe_open

    hook, sep, rest = spec.partition("=")
    if not sep or not hook or not rest:
        raise InputError(f"--steer {spec!r}: expected HOOK=FILE.safetensors[*COEF]")
    path, _, coef_text = rest.partition("*")
    try:
        coefficient = float(coef_text) if coef_text else 1.0
    except ValueError:
        raise InputError(f"--steer {spec!r}: the coefficient after * must be a number") from None
    if not math.isfinite(coefficient):
        raise InputError(f"--steer {spec!r}: the coefficient must be finite")
    model.match_hooks(hook)
    regular_file(path, "steering vector file (.safetensors)", error=InputError)
    try:
        with safe_open(path, framework="pt") as f:
            keys = list(f.keys())
            if len(keys) != 1:
                raise InputError(f"{path}: a steering file holds exactly one tensor, found {len(keys)}")
            vector = f.get_tensor(keys[0])
    except (SafetensorError, OSError) as e:
        raise InputError(f"{path}: cannot read steering vector: {e}") from e
    return Steering(hook, vector.flatten() if vector.dim() > 1 and vector.shape[0] == 1 else vector, coefficient)


def parse_interventions(specs: Iterable[str], cfg: ModelConfig, *, default_mode: str = "zero") -> list[Intervention]:
    """`L0.H3`, `L0.H3:mean`, `L*.H*:zero`, `L1.mlp@2,3:zero` -> interventions (globs expanded)."""
    out: list[Intervention] = []
    for spec in specs:
        text = spec.strip()
        target, _, mode = text.partition(":")
        mode = mode.strip() or default_mode
        target, _, pos_text = target.partition("@")
        positions = None
        if pos_text:
            parts = [p.strip() for p in pos_text.split(",")]
            if not all(p.isascii() and p.isdigit() and len(p) <= 9 for p in parts):
                raise InputError(f"{spec!r}: positions after @ must be non-negative integers, e.g. L0.H3@2,5:zero")
            positions = tuple(int(p) for p in parts)
        for c in resolve_components(target.strip(), cfg):
            c.sites(cfg)  # validates that the component can be intervened on
            out.append(Intervention(c, mode, positions))
    return out


def hooks_for(interventions: Sequence[Intervention | Steering], cfg: ModelConfig) -> list[tuple[str, HookFn]]:
    return [h for iv in interventions for h in iv.hooks(cfg)]


@torch.inference_mode()
def prepare(
    interventions: Sequence[Intervention],
    model: Transformer,
    *,
    reference: Reference | torch.Tensor | None = None,
    source_cache: dict[str, torch.Tensor] | None = None,
    seed: int = 0,
    length: int | None = None,
) -> list[Intervention]:
    """Fill in what mean/resample/patch interventions write.

    reference: the reference set (or a token batch [n, pos]) for mean and resample; resample
    draws from its inputs of `length` tokens (the run's length; default: the longest).
    source_cache: activations of a source run (hook name -> tensor) for patch.
    """
    need = [iv for iv in interventions if iv.needs_reference]
    if not need:
        return list(interventions)
    if isinstance(reference, torch.Tensor):
        reference = Reference((reference,), f"{reference.shape[0]} reference inputs")
    hooks = sorted({s.hook for iv in need for s in iv.component.sites(model.cfg)})
    means: dict[str, torch.Tensor] = {}
    caches: list[dict[str, torch.Tensor]] = []
    if any(iv.mode in ("mean", "resample") for iv in need):
        if reference is None:
            raise InputError("mean and resample ablation need reference inputs")
        caches = [model.run_with_cache(batch, hooks)[1] for batch in reference.batches]
        means = _means(caches, hooks)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for iv in interventions:
        if not iv.needs_reference:
            out.append(iv)
            continue
        values: dict[str, torch.Tensor] = {}
        for site in iv.component.sites(model.cfg):
            if iv.mode == "patch":
                if source_cache is None or site.hook not in source_cache:
                    raise InputError(f"{iv}: patching needs the source run's {site.hook}")
                values[site.hook] = source_cache[site.hook]
            elif iv.mode == "mean":
                mean = means[site.hook]
                values[site.hook] = mean if site.index is None else mean[site.index]
            else:  # resample: one reference input of the run's length, drawn with the seed
                acts = _of_length(reference, caches, site.hook, length)  # type: ignore[arg-type]
                row = int(resample_rows(1, acts.shape[0], gen)[0])
                values[site.hook] = acts[row : row + 1]
        out.append(Intervention(iv.component, iv.mode, iv.positions, values))
    return out


@torch.inference_mode()
def hook_means(
    model: Transformer, batches: Iterable[torch.Tensor], hooks: Sequence[str], hooks_during: Sequence[tuple[str, HookFn]] = ()
) -> dict[str, torch.Tensor]:
    """Mean activation at each hook over every token of every batch: [head, d_head] / [d_model] / [d_mlp]."""
    return _means([model.run_with_cache(b, list(hooks), hooks=hooks_during)[1] for b in batches], hooks)


def _means(caches: Sequence[dict[str, torch.Tensor]], hooks: Sequence[str]) -> dict[str, torch.Tensor]:
    count = sum(c[hooks[0]].shape[0] * c[hooks[0]].shape[1] for c in caches) if hooks else 0
    return {h: sum(c[h].float().flatten(0, 1).sum(0) for c in caches) / count for h in hooks}  # type: ignore[misc]


def _of_length(reference: Reference, caches: list[dict[str, torch.Tensor]], hook: str, length: int | None) -> torch.Tensor:
    """The activations at `hook` of the reference inputs that are `length` tokens long."""
    lengths = [b.shape[1] for b in reference.batches]
    want = max(lengths) if length is None else length
    if want not in lengths:
        raise InputError(f"resample needs reference inputs of {want} tokens (the prompt's length); {reference.description} has none")
    return caches[lengths.index(want)][hook]
