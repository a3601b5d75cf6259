"""The Typer CLI: one thin face on the core. Every command takes --json.

Sub-command groups live in sibling modules and are registered here.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="tui-interp",
    help="A terminal workbench for understanding transformer models.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _register() -> None:
    # Each module adds its commands to `app` (or an `add_typer` group) on import.
    from tui_interp.cli import compare_cmd, engine_cmds, model_cmds, train  # noqa: F401
    from tui_interp.cli.label import label_app

    app.add_typer(label_app, name="label")
    from tui_interp.cli import open_cmd  # noqa: F401


@app.callback(invoke_without_command=True)
def _no_command(ctx: typer.Context) -> None:
    # `tui-interp` alone opens the workbench on the bundled sample model and its theory.
    if ctx.invoked_subcommand is None:
        from tui_interp.cli.open_cmd import launch

        launch(None)


_register()


def main() -> None:
    app()
