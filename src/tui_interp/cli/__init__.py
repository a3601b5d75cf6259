"""The Typer CLI: one thin face on the core. Every command takes --json.

Sub-command groups live in sibling modules and are registered here.
"""

from __future__ import annotations

from typing import IO, Any

import typer
from typer.core import TyperGroup

try:  # recent typer parses with its own copy of click
    from typer._click.core import Context
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import Context, UsageError  # type: ignore[assignment]


class _OneLineUsageError(UsageError):
    """A usage error printed as one line on stderr (`error: ... (see tui-interp X --help)`), exit 2."""

    def show(self, file: IO[Any] | None = None) -> None:
        where = self.ctx.command_path if self.ctx is not None else "tui-interp"
        message = " ".join(self.format_message().split())
        typer.echo(f"error: {message} (see `{where} --help`)", err=True)


class _Group(TyperGroup):
    """The top-level group: every usage error from parsing any command becomes one line."""

    def make_context(self, *args: Any, **kwargs: Any) -> Context:
        try:
            return super().make_context(*args, **kwargs)
        except UsageError as e:
            raise _one_line(e) from None

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as e:
            raise _one_line(e) from None


def _one_line(e: UsageError) -> UsageError:
    if isinstance(e, _OneLineUsageError):
        return e
    return _OneLineUsageError(e.format_message(), e.ctx)


app = typer.Typer(
    cls=_Group,
    name="tui-interp",
    help="A terminal workbench for understanding transformer models.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _register() -> None:
    # Each module adds its commands to `app` (or an `add_typer` group) on import.
    # in the order `--help` lists them: look, run, theories, discovery, labels, train, the workbench
    from tui_interp.cli import model_cmds, engine_cmds, generate_cmd  # noqa: F401, I001
    from tui_interp.cli import compare_cmd, recover_cmd, audit_cmd, diff_cmd  # noqa: F401
    from tui_interp.cli import train, open_cmd  # noqa: F401
    from tui_interp.cli.label import label_app

    app.add_typer(label_app, name="label")


def _version(value: bool) -> None:
    if value:
        from tui_interp import __version__

        typer.echo(f"tui-interp {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _no_command(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    # `tui-interp` alone opens the workbench on the bundled sample model and its theory.
    if ctx.invoked_subcommand is None:
        from tui_interp.cli.open_cmd import launch

        launch(None)


_register()


def main() -> None:
    app()
