"""The core never imports the faces (textual, typer, rich); `--help` stays light."""

from __future__ import annotations

import json
import subprocess
import sys

CORE = [
    "tui_interp.model",
    "tui_interp.model.checkpoint",
    "tui_interp.model.transformer",
    "tui_interp.model.loader",
    "tui_interp.model.tokenizer",
    "tui_interp.model.verify",
    "tui_interp.engine.lens",
    "tui_interp.engine.cache",
    "tui_interp.engine.stepper",
    "tui_interp.engine.interventions",
    "tui_interp.engine.patching",
    "tui_interp.engine.ablation",
    "tui_interp.engine.compare",
    "tui_interp.engine.claims",
    "tui_interp.engine.suggest",
    "tui_interp.components",
    "tui_interp.theory",
    "tui_interp.labels",
    "tui_interp.tasks",
]


def loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        check=True, capture_output=True, text=True,
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_core_does_not_import_faces() -> None:
    modules = loaded_after("\n".join(f"import {m}" for m in CORE))
    faces = {m.split(".")[0] for m in modules} & {"textual", "typer", "rich", "transformers"}
    assert faces == set()


def test_cli_help_does_not_import_torch_or_textual() -> None:
    modules = loaded_after("from tui_interp.cli import app")
    assert "torch" not in modules and "textual" not in modules
