"""Step through the forward pass one block half at a time, go back for free, intervene anywhere.

Steps: `embed`, then per layer `L{l}.attn` and `L{l}.mlp`, then `unembed` (2·n_layers + 2).
The state after each step (residual stream and that step's activations) is kept, so `back()`
and `goto()` to a computed step cost nothing. Setting interventions drops only the states from
the first affected step on; they are recomputed from the kept state before it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from tui_interp.components import Step, all_steps, parse_step
from tui_interp.engine.interventions import Intervention, Steering, hooks_for
from tui_interp.engine.lens import TokenScore, top_k
from tui_interp.engine.tokens import model_json, score_json, token_json
from tui_interp.errors import ComponentError, InputError
from tui_interp.model.transformer import HookPoint, Transformer


@dataclass
class StepState:
    index: int
    step: Step  # embed, L0.attn, L0.mlp, ..., unembed
    resid: torch.Tensor  # residual stream after this step [batch, pos, d_model]
    cache: dict[str, torch.Tensor]  # the activations of this step's hook points
    logits: torch.Tensor | None = None  # [batch, pos, vocab], the unembed step only

    @property
    def name(self) -> str:
        return str(self.step)


class Stepper:
    def __init__(self, model: Transformer, tokens: torch.Tensor) -> None:
        model.check_tokens(tokens)
        self.model = model
        self.tokens = tokens  # [batch, pos]
        self.steps = all_steps(model.cfg.n_layers)
        self.ctx = model.context(tokens.shape[1], tokens.device)
        self.ctx.eager = True  # patterns are part of every attention step's state
        self._states: list[StepState | None] = [None] * len(self.steps)
        self._interventions: list[Intervention | Steering] = []
        self._hook_step: dict[str, int] = {}
        for name in model.hook_points:
            self._hook_step[name] = model.step_of_hook(name).index(model.cfg.n_layers)
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

    def goto(self, step: int | str | Step) -> StepState:
        i = self.resolve_step(step)
        self.index = i
        return self._ensure(i)

    def run_to_end(self) -> StepState:
        return self.goto(len(self.steps) - 1)

    def resolve_step(self, step: int | str | Step) -> int:
        """The number of a step given as a Step, a number or a name (`L0.mlp`, `3`)."""
        n = self.model.cfg.n_layers
        try:
            if isinstance(step, Step):
                return step.index(n)
            if isinstance(step, str):
                return parse_step(step, n).index(n)
            return Step.at(step, n).index(n)
        except ComponentError as e:
            raise InputError(str(e)) from None

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
        step = self.steps[i]
        model, cache = self.model, {}

        def save(x: torch.Tensor, *, hook: HookPoint) -> None:
            cache[hook.name] = x.detach()

        mine = [n for n, s in self._hook_step.items() if s == i]
        with model.hooks(hooks_for(self._interventions, model.cfg)), model.hooks([(lambda n, m=set(mine): n in m, save)] if mine else []):
            logits = None
            if step.kind == "embed":
                resid = model.embed(self.tokens, self.ctx)
            elif step.kind == "unembed":
                resid = self._states[i - 1].resid  # type: ignore[union-attr]
                logits = model.unembed(resid)
            else:
                l = step.layer
                block = model.blocks[l]
                prev = self._states[i - 1].resid  # type: ignore[union-attr]
                with model.block_weights(l):
                    if step.kind == "attn":
                        resid = block.attn_half(prev, self.ctx)
                    else:
                        resid_pre = self._states[i - 2].resid  # type: ignore[union-attr]
                        resid = block.mlp_half(prev, resid_pre)
        return StepState(i, step, resid, {n: cache[n] for n in model.hook_points if n in cache}, logits)

    def full_cache(self) -> dict[str, torch.Tensor]:
        """Every activation of the steps computed so far, in forward order."""
        out: dict[str, torch.Tensor] = {}
        for s in self._states[: self.index + 1]:
            if s is not None:
                out.update(s.cache)
        return out

    # ---- views on the current state

    @torch.inference_mode()
    def lens(self, k: int = 5, *, batch: int = 0, names: Callable[[int], str] | None = None) -> list[list[TokenScore]]:
        """Top-k next-token predictions at every position, read from the residual stream at this depth."""
        resid = self.state.resid[batch : batch + 1]  # [1, pos, d_model]
        logits = torch.nn.functional.linear(self.model.ln_final(resid), self.model.unembed_weight)[0]
        return [top_k(row, k, names) for row in logits]

    def resid_norms(self, *, batch: int = 0) -> torch.Tensor:
        """L2 norm of the residual stream at each position after this step: [pos]."""
        return self.state.resid[batch].float().norm(dim=-1)

    def attention(self, layer: int, head: int, *, batch: int = 0) -> torch.Tensor:
        """Attention pattern [query, key] of a head (its layer's attention step must have run)."""
        i = Step("attn", layer).index(self.model.cfg.n_layers)
        if i > self.index:
            raise InputError(f"L{layer}.attn has not run yet (now at {self.steps[self.index] if self.index >= 0 else 'start'})")
        if not 0 <= head < self.model.cfg.n_heads:
            raise InputError(f"L{layer}.H{head}: the model has {self.model.cfg.n_heads} heads per layer")
        return self._ensure(i).cache[f"blocks.{layer}.attn.hook_pattern"][batch, head]

    def top_neurons(self, layer: int, position: int, k: int = 10, *, batch: int = 0) -> list[tuple[int, float]]:
        """The k MLP neurons of `layer` with the largest activation at `position`: [(neuron, value)]."""
        i = Step("mlp", layer).index(self.model.cfg.n_layers)
        if i > self.index:
            raise InputError(f"L{layer}.mlp has not run yet")
        post = self._ensure(i).cache.get(f"blocks.{layer}.mlp.hook_post")
        if post is None:
            raise InputError("this model has no MLP neurons")
        acts = post[batch, position].float()
        values, ids = torch.topk(acts, min(k, acts.shape[0]))
        return [(int(n), float(v)) for n, v in zip(ids, values, strict=True)]


@dataclass(frozen=True)
class StepReport:
    """The state after one step, for `tui-interp step`: lens and residual norms per position,
    every head's pattern at an attention step, the top neurons at an MLP step."""

    lm: Any
    ids: tuple[int, ...]
    steps: tuple[Step, ...]
    step: Step
    index: int
    resid_norms: tuple[float, ...]
    lens: tuple[tuple[TokenScore, ...], ...]  # [position][k]
    attention: dict[str, list[list[float]]] | None = None  # head id -> [query][key]
    top_neurons: tuple[tuple[str, float], ...] | None = None  # at the last position

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "model": model_json(self.lm),
            "tokens": [token_json(self.lm, i) for i in self.ids],
            "steps": [str(s) for s in self.steps],
            "at": {"index": self.index, "name": str(self.step)},
            "resid_norms": list(self.resid_norms),
            "lens": [[score_json(s) for s in row] for row in self.lens],
        }
        if self.attention is not None:
            doc["attention"] = self.attention
        if self.top_neurons is not None:
            doc["top_neurons"] = [{"neuron": n, "activation": v} for n, v in self.top_neurons]
        return doc


def step_report(lm: Any, ids: Sequence[int], to: str | None = None, *, k: int = 3, neurons: int = 10) -> StepReport:
    """Step `ids` through the model to step `to` (a name or number; default: the end)."""
    tokens = torch.tensor([list(ids)], device=lm.device)
    stepper = Stepper(lm.model, tokens)
    state = stepper.goto(to) if to is not None else stepper.run_to_end()
    step, layer = state.step, state.step.layer
    attention = top = None
    if step.kind == "attn":
        attention = {f"L{layer}.H{h}": stepper.attention(layer, h).float().tolist() for h in range(lm.config.n_heads)}  # type: ignore[arg-type]
    if step.kind == "mlp" and lm.config.d_mlp:
        top = tuple((f"L{layer}.N{n}", v) for n, v in stepper.top_neurons(layer, len(ids) - 1, neurons))  # type: ignore[arg-type]
    return StepReport(
        lm=lm,
        ids=tuple(ids),
        steps=tuple(stepper.steps),
        step=step,
        index=state.index,
        resid_norms=tuple(stepper.resid_norms().tolist()),
        lens=tuple(tuple(row) for row in stepper.lens(k, names=lm.token_text)),
        attention=attention,
        top_neurons=top,
    )
