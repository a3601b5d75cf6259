"""`tui-interp open`: the workbench on a model. `tui-interp` alone opens the bundled sample model.

Only the checkpoint headers are read here (so a wrong path fails at once, with exit code 2);
the weights are read by the app once its first screen is up. The workbench needs a terminal:
without one (a pipe, a script, CI) it refuses with exit code 2 and points at the CLI commands.
A `--theory` file must exist and be readable text; a theory that does not exist yet is started
with `--new-theory FILE` (written on the first save). A second model, `--compare-with B` (audited
beside the first) or `--diff B` (stepped beside it, what changed marked), is opened header-only
here too; a `--diff` model of another architecture or other shapes is refused here, in one line.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tui_interp.cli import app
from tui_interp.cli.common import DeviceOpt, DtypeChoice, DtypeOpt, fail, user_errors
from tui_interp.errors import TuiInterpError

if TYPE_CHECKING:
    from tui_interp.model.checkpoint import Checkpoint

ModelArg = Annotated[
    Path | None,
    typer.Argument(
        help="Model directory (HuggingFace layout) or .safetensors file. Default: the bundled sample model and its theory.",
        show_default=False,
    ),
]
TheoryOpt = Annotated[
    Path | None,
    typer.Option("--theory", help="Theory file for the side panel (it must exist; see --new-theory).", show_default=False),
]
NewTheoryOpt = Annotated[
    Path | None,
    typer.Option("--new-theory", help="Start a new, empty theory, written to this file (which must not exist yet) on the first save.",
                 show_default=False),
]
LabelsOpt = Annotated[
    Path | None,
    typer.Option("--labels", help="Label file (default: beside the model when writable, else your data directory).", show_default=False),
]
CompareWithOpt = Annotated[
    Path | None,
    typer.Option("--compare-with", help="A second model to audit beside the first (the audit view: A in the workbench).",
                 show_default=False),
]
DiffOpt = Annotated[
    Path | None,
    typer.Option("--diff", help="Model B: same architecture and shapes; stepped beside the first, the components that changed marked.",
                 show_default=False),
]
ThemeOpt = Annotated[
    str | None,
    typer.Option("--theme", help="Colour theme: dark, light, high-contrast, ansi-16 (themes/), or a Textual theme.", show_default=False),
]


@app.command("open")
def open_(
    model: ModelArg = None,
    theory: TheoryOpt = None,
    new_theory: NewTheoryOpt = None,
    labels: LabelsOpt = None,
    compare_with: CompareWithOpt = None,
    diff: DiffOpt = None,
    theme: ThemeOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = DtypeChoice.auto,
) -> None:
    """Open the interactive workbench: step through the model, label components, check a theory."""
    launch(model, theory=theory, new_theory=new_theory, labels=labels, compare_with=compare_with, diff=diff, theme=theme,
           device=device, dtype=dtype.value)


def has_terminal() -> bool:
    """stdin, stdout and stderr are all a terminal: the workbench reads keys from stdin and draws
    on stderr, and output meant for a file or a pipe must not get its escape codes."""
    return all(stream is not None and stream.isatty() for stream in (sys.stdin, sys.stdout, sys.stderr))


def launch(
    model: Path | None,
    *,
    theory: Path | None = None,
    new_theory: Path | None = None,
    labels: Path | None = None,
    compare_with: Path | None = None,
    diff: Path | None = None,
    theme: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
) -> None:
    if not has_terminal():
        raise fail("the workbench needs a terminal (stdin, stdout and stderr are not all one): in scripts use the "
                   "CLI commands (run, step, ablate, patch, lens, compare, table, label), each with --json")
    with user_errors():
        from tui_interp.engine.workbench import read_theory_file
        from tui_interp.model.checkpoint import open_checkpoint
        from tui_interp.tui.resources import default_model

        if theory is not None and new_theory is not None:
            raise fail("give --theory (an existing file) or --new-theory (a file to create), not both")
        if model is None:
            model, default_theory = default_model()
            if theory is None and new_theory is None:
                theory = default_theory
        checkpoint = open_checkpoint(model)
        peer = _second(compare_with, "--compare-with") if compare_with is not None else None
        other = None
        if diff is not None:
            from tui_interp.engine.diff import check_compatible

            other = _second(diff, "--diff")
            try:
                check_compatible(checkpoint, other)
            except TuiInterpError as e:  # another architecture, other shapes or tokenizer: exit 2, one line
                raise fail(f"--diff {diff}: {e}") from None
        if theory is not None:
            if theory.is_dir():
                raise fail(f"--theory {theory}: is a directory, expected a theory file")
            if not theory.exists():
                raise fail(f"--theory {theory}: no such file (to start a new theory there, use --new-theory {theory})")
            read_theory_file(theory)  # readable UTF-8 text of a sane size, or exit 2 now
        if new_theory is not None:
            if new_theory.exists():
                raise fail(f"--new-theory {new_theory}: the file exists already; open it with --theory {new_theory}")
            parent = new_theory.expanduser().parent
            if not parent.is_dir():
                raise fail(f"--new-theory {new_theory}: no such directory {parent}")
            theory = new_theory
        if theme is not None:
            _check_theme(theme)
        from tui_interp.tui.app import create_app

        tui = create_app(checkpoint, theory_path=theory, labels_path=labels, theme=theme, device=device, dtype=dtype,
                         compare_with=peer, diff_with=other)
    tui.run()


def _second(path: Path, option: str) -> Checkpoint:
    """A second model, opened header-only; exit 2 with one line naming the option when it fails."""
    from tui_interp.model.checkpoint import open_checkpoint

    try:
        return open_checkpoint(path)
    except TuiInterpError as e:
        raise fail(f"{option} {path}: {e}") from None


def _check_theme(name: str) -> None:
    from textual.theme import BUILTIN_THEMES

    from tui_interp.tui.resources import themes_dir
    from tui_interp.tui.themes import load_themes

    names = {t.name for t in load_themes(themes_dir()).themes} | set(BUILTIN_THEMES)
    if name not in names:
        raise fail(f"--theme {name}: no such theme (choose from {', '.join(sorted(names))})")
