"""Generate a continuation with a KV cache, under the same interventions as `run`.

Greedy by default (equal to transformers' greedy `generate`); with a temperature, sampled with
a seeded generator. Each step runs only the new position(s) against the cached keys and values
(`Transformer` with a `KVCache`), so generation is linear in its length, and every hook fires on
the new positions: ablations (`--ablate C[:zero|mean|resample]`) and steering vectors apply to
the prompt and to every generated position. Mean and resample draw from `reference_batch` at the
length the generation can reach; an intervention limited to positions (`L0.H1@3:zero`) acts when
the run reaches them. Stops at the model's EOS token (when it has one) or at its context.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from tui_interp.engine.interventions import Intervention, Steering, parse_interventions, prepare, reference_batch
from tui_interp.errors import InputError
from tui_interp.model.loader import LoadedModel
from tui_interp.model.transformer import HookFn, KVCache, Transformer

StepHooks = Callable[[int, int], Sequence[tuple[Any, HookFn]]]  # (positions already run, new positions) -> hooks


@dataclass(frozen=True)
class GenerateResult:
    """A prompt and its continuation: what `tui-interp generate` prints."""

    lm: LoadedModel
    prompt_ids: tuple[int, ...]
    new_ids: tuple[int, ...]
    stopped: str  # "eos" | "max_new_tokens" | "context"
    interventions: tuple[str, ...]
    reference: str | None  # what mean/resample ablation drew from, in words

    @property
    def text(self) -> str | None:
        """The decoded continuation only (None without a tokenizer)."""
        return self.lm.tokenizer.decode(list(self.new_ids)) if self.lm.tokenizer is not None else None

    def to_json(self) -> dict[str, Any]:
        return {"prompt_tokens": list(self.prompt_ids), "new_tokens": list(self.new_ids), "text": self.text}


@torch.inference_mode()
def generate_ids(
    model: Transformer,
    prompt: Sequence[int],
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    seed: int = 0,
    eos: int | None = None,
    step_hooks: StepHooks | None = None,
) -> tuple[list[int], str]:
    """New token ids after `prompt`, and why generation stopped ("eos", "max_new_tokens", "context").

    `step_hooks(past, n)` gives the hooks for a forward over positions [past, past + n)."""
    cfg = model.cfg
    if max_new_tokens < 1:
        raise InputError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if not math.isfinite(temperature) or temperature < 0:
        raise InputError(f"temperature must be 0 (greedy) or a positive number, got {temperature}")
    prompt = list(prompt)
    if not prompt:
        raise InputError("no prompt tokens to continue")
    budget = min(max_new_tokens, cfg.n_ctx - len(prompt))
    device = model.W_E.device
    step = torch.tensor([prompt], device=device)
    model.check_tokens(step)
    if budget <= 0:
        raise InputError(f"the prompt is {len(prompt)} tokens and fills the model's context ({cfg.n_ctx}): nothing left to generate")
    cache = KVCache(cfg.n_layers, capacity=len(prompt) + budget)
    generator = torch.Generator().manual_seed(seed)
    new: list[int] = []
    while len(new) < budget:
        hooks = list(step_hooks(cache.length, step.shape[1])) if step_hooks is not None else []
        with model.hooks(hooks):
            resid = model(step, cache=cache, stop_at_layer=cfg.n_layers)  # [1, new, d_model]
            logits = model.unembed(resid[:, -1:])[0, -1].float()  # [vocab]: only the last position is needed
        token = _pick(logits, temperature, generator)
        new.append(token)
        if eos is not None and token == eos:
            return new, "eos"
        step = torch.tensor([[token]], device=device)
    return new, "context" if budget < max_new_tokens else "max_new_tokens"


def _pick(logits: torch.Tensor, temperature: float, generator: torch.Generator) -> int:
    if temperature == 0:
        return int(logits.argmax())
    probs = torch.softmax(logits.cpu() / temperature, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


def generate(
    lm: LoadedModel,
    ids: Sequence[int],
    *,
    max_new_tokens: int = 20,
    temperature: float = 0.0,
    seed: int = 0,
    ablate: Sequence[str] = (),
    steer: Sequence[Steering] = (),
    stop_at_eos: bool = True,
) -> GenerateResult:
    """Continue token `ids` with the ablations (`C[:mode]` specs) and steering vectors given."""
    cfg = lm.config
    reach = min(cfg.n_ctx, len(ids) + max(max_new_tokens, 0))  # the longest the sequence can get
    ivs: list[Intervention | Steering] = list(parse_interventions(ablate, cfg))
    reference = None
    if any(iv.needs_reference for iv in ivs):
        ref = reference_batch(lm, reach, seed=seed)
        reference = ref.description
        ivs = list(prepare([iv for iv in ivs if isinstance(iv, Intervention)], lm.model, reference=ref, seed=seed, length=reach))
    ivs += steer
    for iv in ivs:
        if iv.positions is not None and max(iv.positions) >= reach:
            raise InputError(f"{iv}: position {max(iv.positions)} is past the end of the generation ({reach} tokens at most)")

    def step_hooks(past: int, n: int) -> list[tuple[Any, HookFn]]:
        return [h for iv in ivs if (local := localise(iv, past, n)) is not None for h in local.hooks(cfg)]

    new, stopped = generate_ids(
        lm.model, ids, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
        eos=cfg.eos_token_id if stop_at_eos else None, step_hooks=step_hooks,
    )
    return GenerateResult(lm, tuple(ids), tuple(new), stopped, tuple(str(iv) for iv in ivs), reference)


def localise(iv: Intervention | Steering, past: int, n: int) -> Intervention | Steering | None:
    """`iv` for a forward over positions [past, past + n): its positions made relative to the
    chunk (None when none falls in it), and full-sequence activations (resample, patch) sliced
    to the chunk."""
    positions = iv.positions
    if positions is not None:
        positions = tuple(p - past for p in positions if past <= p < past + n)
        if not positions:
            return None
    if isinstance(iv, Steering):
        return dataclasses.replace(iv, positions=positions)
    value = iv.value
    if iv.mode in ("resample", "patch"):
        value = {hook: v[:, past : past + n] for hook, v in value.items()}
    return Intervention(iv.component, iv.mode, positions, value)
