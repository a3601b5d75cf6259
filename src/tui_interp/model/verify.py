"""Fidelity as a one-command fact: run HuggingFace transformers on the same weights and compare.

`transformers` is optional (a test/dev extra); without it `verify` says how to install it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

import torch

from tui_interp.errors import TuiInterpError
from tui_interp.model.loader import LoadedModel

DEFAULT_PROMPTS = ("The quick brown fox jumps over the lazy dog.", "1 2 3 4 5 6 7 8", "def f(x):\n    return x")


class VerifyUnavailable(TuiInterpError):
    """transformers is not installed, or cannot build this checkpoint."""


@dataclass
class PromptReport:
    tokens: list[int]
    max_abs_logit_diff: float
    resid_diffs: list[float]  # per layer: max |Δ| of the residual stream entering it, then the final normed stream
    pattern_diffs: list[float]  # per layer: max |Δ| of the attention pattern


@dataclass
class VerifyReport:
    transformers_version: str
    dtype: str
    tolerance: float
    prompts: list[PromptReport] = field(default_factory=list)

    @property
    def max_abs_logit_diff(self) -> float:
        return max((p.max_abs_logit_diff for p in self.prompts), default=0.0)

    @property
    def ok(self) -> bool:
        return self.max_abs_logit_diff <= self.tolerance

    def to_json(self) -> dict[str, object]:
        return {
            "transformers_version": self.transformers_version,
            "dtype": self.dtype,
            "tolerance": self.tolerance,
            "ok": self.ok,
            "max_abs_logit_diff": self.max_abs_logit_diff,
            "prompts": [
                {
                    "tokens": p.tokens,
                    "max_abs_logit_diff": p.max_abs_logit_diff,
                    "resid_diffs": p.resid_diffs,
                    "pattern_diffs": p.pattern_diffs,
                }
                for p in self.prompts
            ],
        }


def transformers_available() -> bool:
    return importlib.util.find_spec("transformers") is not None


def default_tolerance(dtype: torch.dtype) -> float:
    return 1e-4 if dtype == torch.float32 else 5e-2


@torch.inference_mode()
def verify(lm: LoadedModel, token_lists: list[list[int]], *, tolerance: float | None = None) -> VerifyReport:
    """Compare our logits, residual streams and attention patterns with HuggingFace's eager implementation."""
    if not transformers_available():
        raise VerifyUnavailable(
            "verify needs HuggingFace transformers to compare against: pip install 'tui-interp[test]' (or: pip install transformers)"
        )
    import transformers

    transformers.logging.set_verbosity_error()  # its warnings and progress bars would pollute --json runs
    transformers.logging.disable_progress_bar()
    try:
        hf = transformers.AutoModelForCausalLM.from_pretrained(
            str(lm.checkpoint.root), dtype=lm.dtype, attn_implementation="eager"
        )
    except (OSError, ValueError, KeyError) as e:
        raise VerifyUnavailable(f"{lm.checkpoint.root}: transformers cannot load this checkpoint: {e}") from e
    hf = hf.to(lm.device).eval()
    tol = default_tolerance(lm.dtype) if tolerance is None else tolerance
    report = VerifyReport(transformers.__version__, str(lm.dtype).removeprefix("torch."), tol)
    n = lm.config.n_layers
    for ids in token_lists:
        tokens = torch.tensor([ids], device=lm.device)
        out = hf(tokens, output_hidden_states=True, output_attentions=True)
        logits, cache = lm.model.run_with_cache(tokens, ["blocks.*.hook_resid_pre", "blocks.*.attn.hook_pattern", "ln_final.hook_normalized"])
        resid = [_diff(out.hidden_states[l], cache[f"blocks.{l}.hook_resid_pre"]) for l in range(n)]
        # transformers returns the final hidden state after the final norm
        resid.append(_diff(out.hidden_states[n], cache["ln_final.hook_normalized"]))
        patterns = [_diff(out.attentions[l], cache[f"blocks.{l}.attn.hook_pattern"]) for l in range(n)]
        report.prompts.append(PromptReport(list(ids), _diff(out.logits, logits), resid, patterns))
    return report


def _diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max())
