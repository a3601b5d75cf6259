"""Suggested labels for attention heads: each head's pattern matched against known patterns.

Patterns (score = mean attention mass on the pattern's positions):
  previous-token head   from each position to the one before it   (repeated-random-token probe)
  induction head        from a repeated token to the token after its earlier occurrence (probe)
  first-token head      from each position to position 0 (an attention sink)
  self-attention head   from each position to itself
  attends to <input>    from the last position to the tokens of one theory input
The first two are measured on the standard probe of tasks.heads; the others on the theory's
prompts when a theory is given, else on the probe.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import torch

from tui_interp.errors import InputError
from tui_interp.model.loader import LoadedModel
from tui_interp.tasks.heads import head_scores, probe_for
from tui_interp.theory import Theory

MIN_SCORE = 0.5
INDUCTION_MIN_SCORE = 0.4
THEORY_PROMPTS = 256


@dataclass(frozen=True)
class Suggestion:
    component: str
    name: str
    score: float
    metric: str
    inputs: str  # what the score was measured on

    def evidence(self, command: str) -> dict[str, Any]:
        return {"kind": "attention", "metric": self.metric, "value": round(self.score, 4), "probe": self.inputs, "command": command}


@torch.inference_mode()
def suggest_head_labels(lm: LoadedModel, theory: Theory | None = None, *, seed: int = 0, min_score: float = MIN_SCORE) -> list[Suggestion]:
    """Every (head, pattern) whose score passes its threshold, best first."""
    model, cfg = lm.model, lm.config
    bos = cfg.bos_token_id if cfg.bos_token_id is not None and cfg.bos_token_id < cfg.vocab_size else None
    candidates = None
    if lm.tokenizer is not None:
        specials = {lm.tokenizer.token_to_id(t) for t in ("[UNK]", "[BOS]", "[PAD]", "<unk>", "<s>", "</s>", "<pad>")}
        ids = [i for i in range(cfg.vocab_size) if i not in specials and i != bos]
        candidates = torch.tensor(ids) if len(ids) >= 4 else None
    out: list[Suggestion] = []
    probe: torch.Tensor | None = None
    probe_words = ""
    if (cfg.n_ctx - (1 if bos is not None else 0)) // 2 >= 2:  # room for a run of 2 tokens, twice
        probe, half, probe_words = probe_for(model, bos=bos, candidates=candidates)
        probe = probe.to(lm.device)
        scores = head_scores(model, probe, half, probe=probe_words)
        for l in range(cfg.n_layers):
            for h in range(cfg.n_heads):
                c = f"L{l}.H{h}"
                out.append(Suggestion(c, "previous-token head", float(scores.prev_token[l, h]), "mean attention to the previous token", probe_words))
                out.append(Suggestion(c, "induction head", float(scores.induction[l, h]),
                                      "mean attention to the token after the earlier occurrence of the current token", probe_words))
    if theory is None and probe is None:
        raise InputError(f"the model's context ({cfg.n_ctx} tokens) is too short for the repeated-token probe: give a --theory to measure on")
    patterns, words, variables = _patterns_on(lm, theory, probe, probe_words, seed)
    for l in range(cfg.n_layers):
        p = patterns[l]  # [batch, head, query, key]
        q = torch.arange(1, p.shape[-1], device=p.device)
        first = p[:, :, 1:, 0].mean(dim=(0, 2))  # [head]
        self_ = p[:, :, q, q].mean(dim=(0, 2))
        for h in range(cfg.n_heads):
            c = f"L{l}.H{h}"
            out.append(Suggestion(c, "first-token head", float(first[h]), "mean attention to position 0", words))
            out.append(Suggestion(c, "self-attention head", float(self_[h]), "mean attention to the same position", words))
            for name, mask in variables.items():
                mass = float((p[:, h, -1] * mask).sum(-1).mean())
                out.append(Suggestion(c, f"attends to {name}", mass, f"mean attention from the last position to input {name}", words))
    kept = [s for s in out if s.score >= (INDUCTION_MIN_SCORE if s.name == "induction head" else min_score)]
    return sorted(kept, key=lambda s: (-s.score, s.component))


def _patterns_on(lm: LoadedModel, theory: Theory | None, probe: torch.Tensor | None, probe_words: str, seed: int):
    """Attention patterns [batch, head, q, k] per layer on the theory's prompts (one length), or the probe;
    plus, per theory input, a [batch, key] mask of the positions its placeholder rendered to."""
    model = lm.model
    variables: dict[str, torch.Tensor] = {}
    tokens, words = probe, probe_words
    if theory is not None and lm.tokenizer is not None:
        inputs = theory.domain.sample(THEORY_PROMPTS, seed=seed)
        rows: dict[int, list[tuple[list[int], list[tuple[int, int]], Any]]] = defaultdict(list)
        for x in inputs:
            ids, offsets = lm.tokenizer.encode_with_offsets(theory.render_prompt(x))
            rows[len(ids)].append((ids, offsets, x))
        length, group = max(rows.items(), key=lambda kv: len(kv[1]))
        tokens = torch.tensor([r[0] for r in group], device=lm.device)
        words = f"{len(group)} prompts of theory {theory.name!r} ({length} tokens each, seed {seed})"
        for name in theory.input_names:
            mask = torch.zeros(len(group), length, device=lm.device)
            for i, (_, offsets, x) in enumerate(group):
                spans = [(pc.start, pc.end) for pc in theory.prompt_pieces(x) if name in pc.inputs]
                for k, (s, e) in enumerate(offsets):
                    if e > s and any(s < pe and ps < e for ps, pe in spans):
                        mask[i, k] = 1
            if mask.any():
                variables[name] = mask
    if tokens is None:
        raise InputError("nothing to measure attention on")
    _, cache = model.run_with_cache(tokens, "blocks.*.attn.hook_pattern")
    patterns = [cache[f"blocks.{l}.attn.hook_pattern"].float() for l in range(model.cfg.n_layers)]
    return patterns, words, variables
