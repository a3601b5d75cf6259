"""`tui-interp open` and `tui-interp` alone: arguments reach the app; bad input exits 2; no
terminal exits 2 before anything is drawn."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tui_interp.cli import app as cli
from tui_interp.cli import open_cmd
from tui_interp.tui import resources
from tui_interp.tui.app import InterpApp

runner = CliRunner()


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[InterpApp]:
    """Apps the CLI would run (captured instead of taking over the terminal)."""
    apps: list[InterpApp] = []
    monkeypatch.setattr(InterpApp, "run", lambda self, *a, **k: apps.append(self))
    monkeypatch.setattr(open_cmd, "has_terminal", lambda: True)  # CliRunner's streams are not a terminal
    return apps


def test_open_passes_everything_to_the_app(launched, tui_model: Path, tmp_path: Path) -> None:
    theory, labels = tmp_path / "t.theory", tmp_path / "labels.json"
    theory.write_text('input a: int in 0..3\nprompt "w{a}"\nexpect "w1"\n')
    result = runner.invoke(cli, ["open", str(tui_model), "--theory", str(theory), "--labels", str(labels),
                                 "--theme", "light", "--device", "cpu", "--dtype", "float32"])
    assert result.exit_code == 0, result.output
    [app] = launched
    s = app.workbench
    assert s.checkpoint is not None and s.checkpoint.name == "tiny-gpt2"  # headers read by the CLI
    assert s.theory_path == theory and s.labels_path == labels
    assert (s.device, s.dtype) == ("cpu", "float32")
    assert app.theme == "light"
    assert s.lm is None  # the weights are read by the app, after its first screen


def test_no_argument_opens_the_bundled_model_and_theory(launched, tui_model: Path, tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "home"
    model = home / "sample_models" / resources.DEFAULT_MODEL
    shutil.copytree(tui_model, model)
    (model / resources.DEFAULT_THEORY).write_text('input a: int in 0..3\nprompt "w{a}"\nexpect "w1"\n')
    monkeypatch.setenv(resources.HOME_ENV, str(home))
    result = runner.invoke(cli, [])
    assert result.exit_code == 0, result.output
    [app] = launched
    assert app.workbench.model_path == model
    assert app.workbench.theory_path == model / resources.DEFAULT_THEORY


def test_the_real_default_model_is_found_from_the_package() -> None:
    # the default model ships in the repository: it must be found, not skipped
    model, theory = resources.default_model()
    assert model.name == resources.DEFAULT_MODEL and theory is not None and theory.name == resources.DEFAULT_THEORY


def test_missing_default_model_is_a_clear_error(launched, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(resources, "_roots", lambda: [tmp_path])
    result = runner.invoke(cli, [])
    assert result.exit_code == 2 and not launched
    assert "modadd-grokked" in result.stderr and "tui-interp train modadd" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["open", "/no/such/model"], "no such file or directory"),
        (["open", "{model}", "--theme", "no-such-theme"], "no such theme"),
        (["open", "{model}", "--theory", "{tmp}"], "is a directory"),
        (["open", "{model}", "--dtype", "float8"], "float8"),
    ],
)
def test_bad_input_exits_2(launched, tui_model: Path, tmp_path: Path, args: list[str], message: str) -> None:
    argv = [a.format(model=tui_model, tmp=tmp_path) for a in args]
    result = runner.invoke(cli, argv)
    assert result.exit_code == 2 and not launched
    assert message in result.stderr


def test_without_a_terminal_open_refuses(monkeypatch: pytest.MonkeyPatch, tui_model: Path) -> None:
    apps: list[InterpApp] = []
    monkeypatch.setattr(InterpApp, "run", lambda self, *a, **k: apps.append(self))
    for argv in (["open", str(tui_model)], []):  # CliRunner's stdout is a pipe, as in a script
        result = runner.invoke(cli, argv)
        assert result.exit_code == 2 and not apps
        assert result.stdout == ""
        [line] = result.stderr.strip().splitlines()  # one line
        assert "needs a terminal" in line and "--json" in line


def test_has_terminal_needs_all_three_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    class Stream:
        def __init__(self, tty: bool) -> None:
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

    for stdin, stdout, stderr, expected in [(1, 1, 1, True), (1, 0, 1, False), (0, 1, 1, False), (1, 1, 0, False)]:
        monkeypatch.setattr("sys.stdin", Stream(bool(stdin)))
        monkeypatch.setattr("sys.stdout", Stream(bool(stdout)))
        monkeypatch.setattr("sys.stderr", Stream(bool(stderr)))
        assert open_cmd.has_terminal() is expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--theory", "{tmp}/missing.theory"], "no such file (to start a new theory there, use --new-theory"),
        (["--theory", "{tmp}/binary.theory"], "not UTF-8"),
        (["--new-theory", "{tmp}/exists.theory"], "exists already"),
        (["--new-theory", "{tmp}/no/such/dir/x.theory"], "no such directory"),
        (["--theory", "{tmp}/exists.theory", "--new-theory", "{tmp}/n.theory"], "not both"),
    ],
)
def test_theory_files_are_checked_before_the_app_starts(launched, tui_model: Path, tmp_path: Path, args, message) -> None:
    (tmp_path / "binary.theory").write_bytes(b"\xff\xfe theory")
    (tmp_path / "exists.theory").write_text("input a: int in 0..3\n")
    result = runner.invoke(cli, ["open", str(tui_model), *[a.format(tmp=tmp_path) for a in args]])
    assert result.exit_code == 2 and not launched
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_new_theory_opens_an_empty_editor_saved_there(launched, tui_model: Path, tmp_path: Path) -> None:
    target = tmp_path / "mine.theory"
    result = runner.invoke(cli, ["open", str(tui_model), "--new-theory", str(target)])
    assert result.exit_code == 0, result.output
    [app] = launched
    assert app.workbench.theory_path == target and app.workbench.read_theory() == ""
    assert not target.exists()  # written on the first save


def test_help_lists_open() -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0 and "open" in result.stdout
