"""Typed theories: a small, safe language for what a model is believed to compute.

A theory file names inputs and their domains, a prompt template, and the answer expected::

    theory "modular addition"
    input a: int in 0..112
    input b: int in 0..112
    where a != b
    prompt "{a} {b} ="
    expect (a + b) % 113
    slice "wraps": a + b >= 113
    claim needs L0.mlp below 0.5

The public API (see theory.py, domain.py, nodes.py and LANGUAGE.md):

- `check_theory(text, path=None)` -> list of Diagnostic (every error and warning; never raises)
- `parse_theory(text, path=None)` -> Theory (raises the first error as TheoryError)
- `load_theory(path)` -> Theory
- `Theory`: name, inputs, domain, render_prompt, expected, render_expected, evaluate,
  prompt_pieces, slices, splits, is_question, cost_estimate, claims, source, warnings
- `Split`: name, path, span, size, inputs, contains, answer, has_answers
- `Domain`: raw_size, size, enumerate, sample, select, contains, mutate

This package is core: it imports neither the faces (textual, typer, rich) nor torch.
"""

from tui_interp.errors import TheoryError
from tui_interp.theory.diagnostics import Diagnostic, TheoryEvalError, describe_error, format_caret
from tui_interp.theory.domain import (
    Assignment,
    BoolSpec,
    Domain,
    IntRange,
    ListSpec,
    Selection,
    Spec,
    SpecError,
    StrSpec,
)
from tui_interp.theory.functions import FUNCTIONS
from tui_interp.theory.limits import DEFAULT_ENUMERATION_LIMIT
from tui_interp.theory.nodes import (
    AttendsClaim,
    Claim,
    ComponentRef,
    LabelClaim,
    NeedsClaim,
    Position,
    Span,
    SufficesClaim,
    Threshold,
)
from tui_interp.theory.render import Value, format_input, format_value, render_value, to_json
from tui_interp.theory.splits import Split
from tui_interp.theory.theory import (
    CostEstimate,
    Evaluation,
    PromptPiece,
    Slice,
    Theory,
    check_theory,
    load_theory,
    parse_theory,
)

__all__ = [
    "DEFAULT_ENUMERATION_LIMIT",
    "FUNCTIONS",
    "Assignment",
    "AttendsClaim",
    "BoolSpec",
    "Claim",
    "ComponentRef",
    "CostEstimate",
    "Diagnostic",
    "Domain",
    "Evaluation",
    "IntRange",
    "LabelClaim",
    "ListSpec",
    "NeedsClaim",
    "Position",
    "PromptPiece",
    "Selection",
    "Slice",
    "Span",
    "Split",
    "Spec",
    "SpecError",
    "StrSpec",
    "SufficesClaim",
    "Theory",
    "TheoryError",
    "TheoryEvalError",
    "Threshold",
    "Value",
    "check_theory",
    "describe_error",
    "format_caret",
    "format_input",
    "format_value",
    "load_theory",
    "parse_theory",
    "render_value",
    "to_json",
]
