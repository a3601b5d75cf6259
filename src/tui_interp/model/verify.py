"""Fidelity as a one-command fact: run HuggingFace transformers on the same weights and compare.

`transformers` is optional (a test/dev extra); without it `verify` says how to install it.
"""

from __future__ import annotations

import importlib.util
import math
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
    nonfinite_logits: int = 0  # our logits that are NaN or infinite (NaN/Inf weights)
    nonfinite_reference: int = 0  # transformers' logits that are


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
    def nonfinite_logits(self) -> int:
        return sum(p.nonfinite_logits for p in self.prompts)

    @property
    def ok(self) -> bool:
        """Finite logits within tolerance of transformers' (NaN compares false: never ok)."""
        return self.nonfinite_logits == 0 and self.max_abs_logit_diff <= self.tolerance

    @property
    def verdict(self) -> str:
        """One line saying why the check failed (or that it passed)."""
        if self.nonfinite_logits:
            theirs = sum(p.nonfinite_reference for p in self.prompts)
            also = f"; transformers' has {theirs}" if theirs else ""
            return f"{self.nonfinite_logits} of our logits are NaN or infinite (non-finite weights?){also}"
        if not self.ok:
            return f"logits differ from transformers by {self.max_abs_logit_diff:.2e} > {self.tolerance:.0e}"
        return f"max |Δlogit| {self.max_abs_logit_diff:.2e} within {self.tolerance:.0e}"

    def to_json(self) -> dict[str, object]:
        """The --json document; non-finite differences are null (JSON has no NaN)."""
        return {
            "transformers_version": self.transformers_version,
            "dtype": self.dtype,
            "tolerance": self.tolerance,
            "ok": self.ok,
            "verdict": self.verdict,
            "max_abs_logit_diff": _finite(self.max_abs_logit_diff),
            "nonfinite_logits": self.nonfinite_logits,
            "prompts": [
                {
                    "tokens": p.tokens,
                    "max_abs_logit_diff": _finite(p.max_abs_logit_diff),
                    "resid_diffs": [_finite(x) for x in p.resid_diffs],
                    "pattern_diffs": [_finite(x) for x in p.pattern_diffs],
                    "nonfinite_logits": p.nonfinite_logits,
                }
                for p in self.prompts
            ],
        }


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


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
        nonfinite = int((~torch.isfinite(logits)).sum())
        reference = int((~torch.isfinite(out.logits)).sum())
        report.prompts.append(PromptReport(list(ids), _diff(out.logits, logits), resid, patterns, nonfinite, reference))
    return report


def _diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b|; NaN when either holds a NaN (or both an infinity at the same place)."""
    return float((a.float() - b.float().to(a.device)).abs().max())
