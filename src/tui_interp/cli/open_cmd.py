"""`tui-interp open`: the workbench on a model. `tui-interp` alone opens the bundled sample model.

Only the checkpoint headers are read here (so a wrong path fails at once, with exit code 2);
the weights are read by the app once its first screen is up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tui_interp.cli import app
from tui_interp.cli.common import DeviceOpt, DtypeChoice, DtypeOpt, fail, user_errors

ModelArg = Annotated[
    Path | None,
    typer.Argument(
        help="Model directory (HuggingFace layout) or .safetensors file. Default: the bundled sample model and its theory.",
        show_default=False,
    ),
]
TheoryOpt = Annotated[
    Path | None,
    typer.Option("--theory", help="Theory file for the side panel (created when you save, if it does not exist).", show_default=False),
]
LabelsOpt = Annotated[
    Path | None,
    typer.Option("--labels", help="Label file (default: beside the model when writable, else your data directory).", show_default=False),
]
ThemeOpt = Annotated[
    str | None,
    typer.Option("--theme", help="Colour theme: dark, light, high-contrast, ansi-16 (themes/), or a Textual theme.", show_default=False),
]


@app.command("open")
def open_(
    model: ModelArg = None,
    theory: TheoryOpt = None,
    labels: LabelsOpt = None,
    theme: ThemeOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = DtypeChoice.auto,
) -> None:
    """Open the interactive workbench: step through the model, label components, check a theory."""
    launch(model, theory=theory, labels=labels, theme=theme, device=device, dtype=dtype.value)


def launch(
    model: Path | None,
    *,
    theory: Path | None = None,
    labels: Path | None = None,
    theme: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
) -> None:
    with user_errors():
        from tui_interp.model.checkpoint import open_checkpoint
        from tui_interp.tui.resources import default_model

        if model is None:
            model, default_theory = default_model()
            if theory is None:
                theory = default_theory
        checkpoint = open_checkpoint(model)
        if theory is not None and theory.is_dir():
            raise fail(f"--theory {theory}: is a directory, expected a theory file")
        if theme is not None:
            _check_theme(theme)
        from tui_interp.tui.app import create_app

        tui = create_app(checkpoint, theory_path=theory, labels_path=labels, theme=theme, device=device, dtype=dtype)
    tui.run()


def _check_theme(name: str) -> None:
    from textual.theme import BUILTIN_THEMES

    from tui_interp.tui.resources import themes_dir
    from tui_interp.tui.themes import load_themes

    names = {t.name for t in load_themes(themes_dir()).themes} | set(BUILTIN_THEMES)
    if name not in names:
        raise fail(f"--theme {name}: no such theme (choose from {', '.join(sorted(names))})")
