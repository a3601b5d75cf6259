"""Every usage error, from every command, is one line on stderr and exit 2 (issue 13)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tui_interp.cli import app


def commands() -> list[list[str]]:
    """Every command path: top-level commands and the commands of each group."""
    from typer.main import get_command

    root = get_command(app)
    out = []
    for name, cmd in root.commands.items():  # type: ignore[attr-defined]
        sub = getattr(cmd, "commands", None)
        out += [[name, s] for s in sub] if sub else [[name]]
    return out


# an unknown option; a bad value (or an unknown option); no arguments at all (`open` alone is valid)
CASES = [
    (path, extra)
    for path in commands()
    for extra in (["--no-such-option"], ["--json", "--seed", "x"], [])
    if extra or path != ["open"]
]


@pytest.mark.parametrize(("path", "extra"), CASES, ids=lambda p: " ".join(p))
def test_usage_errors_are_one_line(path: list[str], extra: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, *extra])
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr


def test_the_console_script_prints_one_line_too() -> None:
    out = subprocess.run([sys.executable, "-m", "tui_interp", "run", "--top-k", "x"], capture_output=True, text=True)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "--top-k" in out.stderr


def test_emoji_codes_and_markup_in_user_text_print_as_typed(tmp_path) -> None:  # noqa: ANN001
    missing = tmp_path / ":smile: [bold]x[/bold]"
    result = CliRunner().invoke(app, ["inspect", str(missing)])
    assert result.exit_code == 2 and ":smile: [bold]x[/bold]" in result.stderr


def test_version() -> None:
    from tui_interp import __version__

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"tui-interp {__version__}"
