"""Step through the forward pass one block half at a time, go back for free, intervene anywhere.

Steps: `embed`, then per layer `L{l}.attn` and `L{l}.mlp`, then `unembed` (2·n_layers + 2).
The state after each step (residual stream and that step's activations) is kept, so `back()`
and `goto()` to a computed step cost nothing. Setting interventions drops only the states from
the first affected step on; they are recomputed from the kept state before it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from tui_interp.engine.interventions import Intervention, Steering, hooks_for
from tui_interp.engine.lens import TokenScore, top_k
from tui_interp.errors import InputError
from tui_interp.model.transformer import HookPoint, Transformer


@dataclass
class StepState:
    index: int
    name: str  # "embed", "L0.attn", "L0.mlp", ..., "unembed"
    resid: torch.Tensor  # residual stream after this step [batch, pos, d_model]
    cache: dict[str, torch.Tensor]  # the activations of this step's hook points
    logits: torch.Tensor | None = None  # [batch, pos, vocab], the unembed step only


def step_names(n_layers: int) -> list[str]:
    names = ["embed"]
    for l in range(n_layers):
        names += [f"L{l}.attn", f"L{l}.mlp"]
    return names + ["unembed"]


def _step_of_hook(hook: str) -> str:
    """The step whose computation contains hook point `hook`."""
    m = re.match(r"blocks\.(\d+)\.(.*)$", hook)
    if not m:
        return "unembed" if hook.startswith(("ln_final", "logits")) else "embed"
    l, rest = m.group(1), m.group(2)
    if rest.startswith(("ln2.", "mlp.", "hook_mlp_out", "hook_resid_post")):
        return f"L{l}.mlp"
    return f"L{l}.attn"


class Stepper:
    def __init__(self, model: Transformer, tokens: torch.Tensor) -> None:
        model.check_tokens(tokens)
        self.model = model
        self.tokens = tokens  # [batch, pos]
        self.steps = step_names(model.cfg.n_layers)
        self.ctx = model.context(tokens.shape[1], tokens.device)
        self.ctx.eager = True  # patterns are part of every attention step's state
        self._states: list[StepState | None] = [None] * len(self.steps)
        self._interventions: list[Intervention | Steering] = []
        self._hook_step: dict[str, int] = {}
        for name in model.hook_points:
            self._hook_step[name] = self.steps.index(_step_of_hook(name))
        self.index = -1  # the last step shown; -1 before any

    # ---- navigation

    @property
    def state(self) -> StepState:
        if self.index < 0:
            raise InputError("no step has run yet: step() first")
        return self._ensure(self.index)

    @property
    def done(self) -> bool:
        return self.index == len(self.steps) - 1

    def step(self) -> StepState:
        if self.done:
            raise InputError(f"already at the last step ({self.steps[-1]})")
        self.index += 1
        return self._ensure(self.index)

    def back(self) -> StepState:
        if self.index <= 0:
            raise InputError("already at the first step (embed)")
        self.index -= 1
        return self._ensure(self.index)

    def goto(self, step: int | str) -> StepState:
        i = self.resolve_step(step)
        self.index = i
        return self._ensure(i)

    def run_to_end(self) -> StepState:
        return self.goto(len(self.steps) - 1)

    def resolve_step(self, step: int | str) -> int:
        if isinstance(step, str):
            if step.isdigit():
                step = int(step)
            elif step in self.steps:
                return self.steps.index(step)
            else:
                raise InputError(f"unknown step {step!r} (steps: embed, L0.attn, L0.mlp, ..., unembed)")
        if not 0 <= step < len(self.steps):
            raise InputError(f"step {step} is past the end (steps 0..{len(self.steps) - 1})")
        return step

    # ---- interventions

    @property
    def interventions(self) -> list[Intervention | Steering]:
        return list(self._interventions)

    def set_interventions(self, interventions: Sequence[Intervention | Steering]) -> None:
        """Replace the interventions; states from the first step they (or the old ones) touch are dropped."""
        cfg = self.model.cfg
        touched = []
        for iv in [*self._interventions, *interventions]:
            for name in iv.hook_names(cfg):
                if name not in self._hook_step:
                    raise InputError(f"{iv}: no hook point {name!r} in this model")
                touched.append(self._hook_step[name])
        for iv in interventions:
            iv.hooks(cfg)  # fail now (missing reference values) rather than mid-step
        self._interventions = list(interventions)
        if touched:
            first = min(touched)
            for i in range(first, len(self._states)):
                self._states[i] = None

    # ---- computing

    def _ensure(self, i: int) -> StepState:
        state = self._states[i]
        if state is None:
            first = i
            while first > 0 and self._states[first - 1] is None:
                first -= 1
            for j in range(first, i + 1):
                state = self._compute(j)
                self._states[j] = state
        return state

    @torch.inference_mode()
    def _compute(self, i: int) -> StepState:
        name = self.steps[i]
        model, cache = self.model, {}

        def save(x: torch.Tensor, *, hook: HookPoint) -> None:
            cache[hook.name] = x.detach()

        mine = [n for n, s in self._hook_step.items() if s == i]
        with model.hooks(hooks_for(self._interventions, model.cfg)), model.hooks([(lambda n, m=set(mine): n in m, save)] if mine else []):
            logits = None
            if name == "embed":
                resid = model.embed(self.tokens, self.ctx)
            elif name == "unembed":
                resid = self._states[i - 1].resid  # type: ignore[union-attr]
                logits = model.unembed(resid)
            else:
                l = int(name[1 : name.index(".")])
                block = model.blocks[l]
                prev = self._states[i - 1].resid  # type: ignore[union-attr]
                with model.block_weights(l):
                    if name.endswith(".attn"):
                        resid = block.attn_half(prev, self.ctx)
                    else:
                        resid_pre = self._states[i - 2].resid  # type: ignore[union-attr]
                        resid = block.mlp_half(prev, resid_pre)
        return StepState(i, name, resid, {n: cache[n] for n in model.hook_points if n in cache}, logits)

    def full_cache(self) -> dict[str, torch.Tensor]:
        """Every activation of the steps computed so far, in forward order."""
        out: dict[str, torch.Tensor] = {}
        for s in self._states[: self.index + 1]:
            if s is not None:
                out.update(s.cache)
        return out

    # ---- views on the current state

    @torch.inference_mode()
    def lens(self, k: int = 5, *, batch: int = 0) -> list[list[TokenScore]]:
        """Top-k next-token predictions at every position, read from the residual stream at this depth."""
        resid = self.state.resid[batch : batch + 1]  # [1, pos, d_model]
        logits = torch.nn.functional.linear(self.model.ln_final(resid), self.model.unembed_weight)[0]
        return [top_k(row, k) for row in logits]

    def resid_norms(self, *, batch: int = 0) -> torch.Tensor:
        """L2 norm of the residual stream at each position after this step: [pos]."""
        return self.state.resid[batch].float().norm(dim=-1)

    def attention(self, layer: int, head: int, *, batch: int = 0) -> torch.Tensor:
        """Attention pattern [query, key] of a head (its layer's attention step must have run)."""
        i = self.steps.index(f"L{layer}.attn")
        if i > self.index:
            raise InputError(f"L{layer}.attn has not run yet (now at {self.steps[self.index] if self.index >= 0 else 'start'})")
        if not 0 <= head < self.model.cfg.n_heads:
            raise InputError(f"L{layer}.H{head}: the model has {self.model.cfg.n_heads} heads per layer")
        return self._ensure(i).cache[f"blocks.{layer}.attn.hook_pattern"][batch, head]

    def top_neurons(self, layer: int, position: int, k: int = 10, *, batch: int = 0) -> list[tuple[int, float]]:
        """The k MLP neurons of `layer` with the largest activation at `position`: [(neuron, value)]."""
        i = self.steps.index(f"L{layer}.mlp")
        if i > self.index:
            raise InputError(f"L{layer}.mlp has not run yet")
        post = self._ensure(i).cache.get(f"blocks.{layer}.mlp.hook_post")
        if post is None:
            raise InputError("this model has no MLP neurons")
        acts = post[batch, position].float()
        values, ids = torch.topk(acts, min(k, acts.shape[0]))
        return [(int(n), float(v)) for n, v in zip(ids, values)]
