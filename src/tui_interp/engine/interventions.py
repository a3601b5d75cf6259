"""Interventions on components: zero, mean and resample ablation, activation patching, steering.

An intervention names a component (`L0.H3`, `L1.mlp`, `L1.N7`, a glob expands to several) and
a mode. Each becomes forward hooks on the component's site:

    head L.Hh    blocks.L.attn.hook_z[:, pos, h]        [batch, pos, head, d_head]
    attn L.attn  blocks.L.hook_attn_out                 [batch, pos, d_model]
    mlp  L.mlp   blocks.L.hook_mlp_out                  [batch, pos, d_model]
    neuron L.Nn  blocks.L.mlp.hook_post[:, pos, n]      [batch, pos, d_mlp]
    block L      both attn and mlp outputs of layer L
    embed / pos_embed   hook_embed / hook_pos_embed

mean: the component's mean activation over a reference batch (all its positions), at every
position. resample: the activation of another input from the reference batch (same length),
chosen with a seed. patch: the activation from a given source run (clean -> corrupted).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch

from tui_interp.components import Component, resolve_components
from tui_interp.errors import ComponentError, InputError
from tui_interp.model.config import ModelConfig
from tui_interp.model.transformer import HookFn, Transformer

MODES = ("zero", "mean", "resample", "patch")


@dataclass(frozen=True)
class Site:
    """Where a component lives: a hook and, for heads and neurons, an index into it."""

    hook: str
    index: int | None = None  # head (dim 2 of hook_z) or neuron (last dim of hook_post)

    def select(self, x: torch.Tensor, positions: torch.Tensor | slice) -> tuple:
        """Index tuple selecting this site's slice of activation x at the given positions."""
        if self.index is None:
            return (slice(None), positions)
        return (slice(None), positions, self.index)


def sites_of(c: Component, cfg: ModelConfig) -> list[Site]:
    l = c.layer
    if c.kind == "embed":
        return [Site("hook_embed")]
    if c.kind == "pos_embed":
        if cfg.positional != "learned":
            raise ComponentError("pos_embed: this model has rotary positions, no positional embedding to intervene on")
        return [Site("hook_pos_embed")]
    if c.kind == "head":
        return [Site(f"blocks.{l}.attn.hook_z", c.index)]
    if c.kind == "attn":
        return [Site(f"blocks.{l}.hook_attn_out")]
    if c.kind in ("mlp", "neuron") and cfg.d_mlp == 0:
        raise ComponentError(f"{c}: this model has no MLPs")
    if c.kind == "mlp":
        return [Site(f"blocks.{l}.hook_mlp_out")]
    if c.kind == "neuron":
        return [Site(f"blocks.{l}.mlp.hook_post", c.index)]
    if c.kind == "block":
        out = [Site(f"blocks.{l}.hook_attn_out")]
        if cfg.d_mlp:
            out.append(Site(f"blocks.{l}.hook_mlp_out"))
        return out
    raise ComponentError(f"{c}: cannot intervene on {c.kind} (choose embed, a head, attn, mlp, neuron or block)")


@dataclass(frozen=True)
class Intervention:
    """One component under one mode. `value` holds what mean/resample/patch write, per site hook."""

    component: Component
    mode: str = "zero"
    positions: tuple[int, ...] | None = None  # None: every position
    value: dict[str, torch.Tensor] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"unknown intervention mode {self.mode!r} (choose {', '.join(MODES)})")

    def __str__(self) -> str:
        where = "" if self.positions is None else "@" + ",".join(map(str, self.positions))
        return f"{self.component}{where}:{self.mode}"

    @property
    def needs_reference(self) -> bool:
        return self.mode in ("mean", "resample", "patch") and not self.value

    def hook_names(self, cfg: ModelConfig) -> list[str]:
        return [s.hook for s in sites_of(self.component, cfg)]

    def hooks(self, cfg: ModelConfig) -> list[tuple[str, HookFn]]:
        if self.needs_reference:
            raise InputError(f"{self}: {self.mode} ablation needs reference activations (call prepare first)")
        return [(site.hook, self._hook(site)) for site in sites_of(self.component, cfg)]

    def _hook(self, site: Site) -> HookFn:
        mode, value = self.mode, self.value.get(site.hook)
        positions = self.positions

        def fn(x: torch.Tensor, *, hook: object) -> torch.Tensor:
            pos = slice(None) if positions is None else torch.tensor(positions, device=x.device)
            if positions is not None and max(positions) >= x.shape[1]:
                raise InputError(f"{self}: position {max(positions)} is past the end of the prompt ({x.shape[1]} tokens)")
            sel = site.select(x, pos)
            x = x.clone()
            if mode == "zero":
                x[sel] = 0
            elif value is None:  # unreachable: hooks() refuses interventions that need a reference
                raise InputError(f"{self}: no {mode} values for {site.hook}")
            elif mode == "mean":
                x[sel] = value.to(x.dtype)  # [d] for the site: broadcasts over batch and positions
            else:  # resample, patch: a full activation of the same shape (batch 1 broadcasts)
                if value.shape[1:] != x.shape[1:]:
                    raise InputError(f"{self}: source activations have shape {tuple(value.shape)}, the run has {tuple(x.shape)}")
                src = value.to(x.dtype).expand_as(x) if value.shape[0] == 1 else value.to(x.dtype)
                x[sel] = src[sel]
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
            try:
                positions = tuple(int(p) for p in pos_text.split(","))
            except ValueError:
                raise InputError(f"{spec!r}: positions after @ must be integers, e.g. L0.H3@2,5:zero") from None
            if any(p < 0 for p in positions):
                raise InputError(f"{spec!r}: positions must be >= 0")
        for c in resolve_components(target.strip(), cfg):
            sites_of(c, cfg)  # validates that the component can be intervened on
            out.append(Intervention(c, mode, positions))
    return out


def hooks_for(interventions: Sequence[Intervention | Steering], cfg: ModelConfig) -> list[tuple[str, HookFn]]:
    return [h for iv in interventions for h in iv.hooks(cfg)]


@torch.inference_mode()
def prepare(
    interventions: Sequence[Intervention],
    model: Transformer,
    *,
    reference: torch.Tensor | None = None,
    source_cache: dict[str, torch.Tensor] | None = None,
    seed: int = 0,
) -> list[Intervention]:
    """Fill in what mean/resample/patch interventions write.

    reference: token batch [n, pos] for mean and resample. source_cache: activations of a
    source run (hook name -> tensor) for patch.
    """
    need = [iv for iv in interventions if iv.needs_reference]
    if not need:
        return list(interventions)
    hooks = sorted({s.hook for iv in need for s in sites_of(iv.component, model.cfg)})
    ref_cache: dict[str, torch.Tensor] = {}
    if any(iv.mode in ("mean", "resample") for iv in need):
        if reference is None:
            raise InputError("mean and resample ablation need reference inputs")
        _, ref_cache = model.run_with_cache(reference, hooks)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for iv in interventions:
        if not iv.needs_reference:
            out.append(iv)
            continue
        values: dict[str, torch.Tensor] = {}
        for site in sites_of(iv.component, model.cfg):
            if iv.mode == "patch":
                if source_cache is None or site.hook not in source_cache:
                    raise InputError(f"{iv}: patching needs the source run's {site.hook}")
                values[site.hook] = source_cache[site.hook]
            elif iv.mode == "mean":
                act = ref_cache[site.hook]  # [n, pos, ...]
                act = act.flatten(0, 1).mean(0)  # mean over inputs and positions: [head, d_head] / [d_model] / [d_mlp]
                values[site.hook] = act if site.index is None else act[site.index]
            else:  # resample: one reference input, chosen with the seed
                act = ref_cache[site.hook]
                row = int(torch.randint(0, act.shape[0], (1,), generator=gen))
                values[site.hook] = act[row : row + 1]
        out.append(Intervention(iv.component, iv.mode, iv.positions, values))
    return out


def random_reference(cfg: ModelConfig, length: int, *, n: int = 64, seed: int = 0, device: torch.device | str = "cpu") -> torch.Tensor:
    """A seeded batch of uniformly random token sequences: the default reference distribution."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, cfg.vocab_size, (n, length), generator=g).to(device)
