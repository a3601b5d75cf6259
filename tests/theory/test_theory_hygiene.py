"""The theory language is core: it imports no face (textual, typer, rich) and no torch."""

from __future__ import annotations

import json
import subprocess
import sys

MODULES = [
    "tui_interp.theory",
    "tui_interp.theory.theory",
    "tui_interp.theory.parser",
    "tui_interp.theory.checker",
    "tui_interp.theory.evaluator",
    "tui_interp.theory.domain",
    "tui_interp.theory.claims",
    "tui_interp.theory.splits",
]


def test_theory_imports_no_face_and_no_torch() -> None:
    code = (
        "\n".join(f"import {m}" for m in MODULES)
        + "\nfrom tui_interp.theory import parse_theory"
        + '\nparse_theory(\'theory "t"\\ninput a: int in 0..3\\nprompt "{a}"\\nexpect a\\nclaim needs L0.mlp\\n\')'
        + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    loaded = {name.split(".")[0] for name in json.loads(out.strip().splitlines()[-1])}
    assert loaded & {"textual", "typer", "rich", "torch", "transformers", "numpy"} == set()
