"""Issues 14, 15 and 16 in the workbench: rule recovery (ctrl+g), the generalisation audit (A)
and a second model to diff with (`--diff B`), each by keys alone, on the shipped modadd pair
and on the tiny GPT-2 with one head edited."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from pathlib import Path

import pytest
from conftest import EDITED_HEAD
from tui_pilot import THEORY, press, settle, submit_prompt
from typer.testing import CliRunner

from tui_interp.engine.workbench import Workbench
from tui_interp.tui.screens.dialogs import PathDialog, RecoverDialog
from tui_interp.tui.screens.main import MainScreen
from tui_interp.tui.widgets.audit_view import AuditPanel, SignalBars
from tui_interp.tui.widgets.component_tree import ComponentTree
from tui_interp.tui.widgets.header import ModelHeader
from tui_interp.tui.widgets.keybar import KeyBar
from tui_interp.tui.widgets.step_view import StepPanel
from tui_interp.tui.widgets.theory_panel import TheoryPanel

SMALL, LARGE = (80, 24), (160, 48)
SAMPLES = Path(__file__).resolve().parents[2] / "sample_models"


def main(app) -> MainScreen:
    screen = app.screen if isinstance(app.screen, MainScreen) else app.screen_stack[1]
    assert isinstance(screen, MainScreen)
    return screen


def rendered(widget) -> str:
    return str(widget.render())


def bar_text(screen) -> str:
    return str(screen.query_one(KeyBar).render())


async def until(pilot, condition, timeout: float = 60.0) -> None:
    """Wait (workers included) until `condition()` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await settle(pilot)
        await pilot.pause(0.1)


async def palette(pilot, title: str) -> None:
    """Run a command by its title from the command palette (ctrl+p)."""
    await pilot.press("ctrl+p")
    await pilot.pause()
    await pilot.press(*title)
    await pilot.pause(0.5)
    await pilot.press("enter")
    await pilot.pause()


def question_copy(tmp_path: Path, model: str) -> Path:
    """A sample model's question and its train split, copied (nothing is written under sample_models/)."""
    for name in ("modadd.question", "train.jsonl"):
        shutil.copy(SAMPLES / model / name, tmp_path / name)
    return tmp_path / "modadd.question"


def expect_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith("expect")]


# ---- issue 14: recover


async def test_recover_fills_the_expect_line_and_compares(tmp_path: Path, labels_file: Path) -> None:
    from tui_interp.tui.app import create_app

    question = question_copy(tmp_path, "modadd-grokked")
    app = create_app(SAMPLES / "modadd-grokked", theory_path=question, labels_path=labels_file)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        screen = main(app)
        assert not expect_lines(screen.query_one(TheoryPanel).text)  # a question
        await pilot.press("ctrl+t", "ctrl+g")
        await until(pilot, lambda: isinstance(app.screen, RecoverDialog))
        dialog = app.screen
        assert rendered(dialog.query_one("#recover-headline")).startswith("Explained: expect (a + b) % 113 agrees on 100.00%")
        panel = screen.query_one(TheoryPanel)
        assert "Explained" in rendered(panel.query_one("#agreement"))
        await pilot.press("enter")  # the best candidate, highlighted first
        await until(pilot, lambda: not screen.comparing and "Agreement" in rendered(panel.query_one("#agreement")))
        text = panel.text
        assert expect_lines(text) == ["expect (a + b) % 113"]
        lines = text.splitlines()
        assert lines.index("expect (a + b) % 113") == next(i for i, l in enumerate(lines) if l.startswith("prompt")) + 1
        assert "Agreement 100.00%" in rendered(panel.query_one("#agreement"))
        assert screen.diagnostics == [] or not any(d.is_error for d in screen.diagnostics)
        assert panel.modified  # the filled-in line is an edit, saved with ctrl+s


async def test_recover_replaces_the_expect_line_and_says_not_explained(make_app, theory_file: Path) -> None:
    app = make_app(theory_path=theory_file)
    async with app.run_test(size=LARGE) as pilot:
        await settle(pilot)
        screen = main(app)
        screen.recover_seconds = 2.0
        await pilot.press("escape", "ctrl+g")  # the theory panel opens
        assert screen.has_class("-theory")
        await until(pilot, lambda: isinstance(app.screen, RecoverDialog))
        dialog = app.screen
        result = dialog.result
        assert not result.explained  # a random tiny model computes no rule of the theory's inputs
        headline = rendered(dialog.query_one("#recover-headline"))
        assert headline.startswith("Not explained: the best candidate expect") and "below 95%" in headline
        assert "Not explained" in rendered(screen.query_one(TheoryPanel).query_one("#agreement"))
        best = result.candidates[0].expect
        await pilot.press("enter")
        await until(pilot, lambda: not screen.comparing and "Agreement" in rendered(screen.query_one("#agreement")))
        assert expect_lines(screen.query_one(TheoryPanel).text) == [f"expect {best}"]  # in place of the old one


async def test_recover_shows_progress_and_is_cancelled_by_escape_or_its_key(make_app, theory_file: Path, monkeypatch) -> None:
    from tui_interp.engine.recover import SearchProgress

    gate = threading.Event()

    def slow_recover(self, text, *, progress=None, cancelled=None, seconds=0.0):
        for tried in range(1, 10_000):
            if cancelled():
                return None
            progress(SearchProgress(size=2, max_size=7, tried=tried * 100, distinct=tried, best="a + 1", best_agreement=0.25,
                                    best_size=3, seconds=tried * 0.05))
            gate.wait(0.05)
        return None

    monkeypatch.setattr(Workbench, "recover", slow_recover)
    app = make_app(theory_path=theory_file)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        screen = main(app)
        panel = screen.query_one(TheoryPanel)
        await pilot.press("ctrl+t", "ctrl+g")
        await pilot.pause(0.4)
        phase = rendered(panel.query_one("#compare-phase"))
        assert "tried" in phase and " s" in phase
        assert "best so far: expect a + 1" in rendered(panel.query_one("#agreement"))
        await pilot.pause(0.6)
        assert rendered(panel.query_one("#compare-phase")) != phase  # it moves
        assert "esc Cancel recover" in bar_text(screen)
        await press(pilot, "escape")  # from the editor: cancels first
        assert not screen.recovering and "recovery cancelled" in rendered(panel.query_one("#agreement"))
        assert rendered(panel.query_one("#compare-phase")) == ""  # no stale progress
        await pilot.press("ctrl+g")
        await pilot.pause(0.3)
        assert screen.recovering
        await press(pilot, "ctrl+g")  # the same key cancels
        assert not screen.recovering
        gate.set()


async def test_recover_says_why_it_cannot_run(make_app, tmp_path: Path) -> None:
    bad = tmp_path / "bad.theory"
    bad.write_text('input a: int in 0..3\nprompt "w{a}"\nexpect a + "x"\n')
    app = make_app(theory_path=bad)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        screen = main(app)
        await press(pilot, "ctrl+g")
        assert not screen.recovering
        assert any("fix the theory's errors first" in str(n.message) for n in app._notifications)


# ---- issue 15: audit


async def test_audit_shows_both_verdicts_on_the_modadd_pair(tmp_path: Path, labels_file: Path) -> None:
    from tui_interp.tui.app import create_app

    question = question_copy(tmp_path, "modadd-memorized")
    app = create_app(SAMPLES / "modadd-memorized", theory_path=question, labels_path=labels_file,
                     compare_with=SAMPLES / "modadd-grokked")
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        screen = main(app)
        await pilot.press("escape", "A")
        panel = screen.query_one(AuditPanel)
        assert screen.auditing and screen.mode == "audit" and app.focused is panel
        assert "Auditing A modadd-memorized and B modadd-grokked" in rendered(panel.query_one("#audit-status"))
        assert "esc Cancel audit" in bar_text(screen)
        await until(pilot, lambda: not screen.auditing, timeout=120)
        result = panel.result
        assert result is not None
        verdicts = {m.model: m.generalises for m in result.models}
        assert verdicts == {"modadd-memorized": False, "modadd-grokked": True}
        assert result.ranking == ["modadd-grokked", "modadd-memorized"]
        shown = rendered(panel.query_one("#audit-verdicts"))
        lines = shown.splitlines()
        assert lines[0].startswith("A modadd-memorized  score") and lines[1] == "  ✗ does not generalise"
        assert lines[2].startswith("B modadd-grokked  score") and lines[3] == "  ✓ generalises"
        assert "Ranking: 1. B  2. A" in shown
        train = rendered(panel.query_one("#audit-train"))
        assert "Rule: expect (a + b) % 113" in train and "swap(a, b)" in train
        bars = panel.query_one(SignalBars)
        rule_line = next(str(line) for line in bars.lines(50) if str(line).startswith("rule"))
        assert "A " in rule_line and "B ██████" in rule_line and "1.00" in rule_line  # side by side, in 50 columns
        assert all(len(str(line)) <= 50 for line in bars.lines(50))
        await press(pilot, "f")
        assert screen.maximized is panel
        await press(pilot, "escape")
        assert screen.maximized is None and screen.mode == "audit"
        assert "esc Close audit" in bar_text(screen) and "A Audit again" in bar_text(screen)
        await press(pilot, "escape")
        assert screen.mode == "step" and screen.query_one("#views").current == "step"


async def test_audit_needs_a_train_split_with_answers(make_app, theory_file: Path) -> None:
    app = make_app(theory_path=theory_file)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        screen = main(app)
        await press(pilot, "escape", "A")
        assert not screen.auditing and screen.mode == "audit"
        note = rendered(screen.query_one("#audit-status"))
        assert note.startswith("Cannot audit: the audit needs a theory with `split train from \"FILE\"`")
        assert "\n" not in note


async def test_audit_with_a_model_from_the_palette_and_escape_cancels(make_app, tmp_path: Path, edited_model: Path,
                                                                      monkeypatch) -> None:
    (tmp_path / "train.jsonl").write_text("".join(f'{{"a": {a}, "answer": "w{a}"}}\n' for a in range(6)))
    theory = tmp_path / "t.theory"
    theory.write_text(THEORY.replace("expect", 'split train from "train.jsonl"\nexpect'))
    started = threading.Event()
    release = threading.Event()
    real = Workbench.audit

    def held_audit(self, text, peers=(), *, progress=None, cancelled=None):
        started.set()
        while not cancelled() and not release.is_set():
            time.sleep(0.02)
        return None if cancelled() else real(self, text, peers, progress=progress, cancelled=cancelled)

    monkeypatch.setattr(Workbench, "audit", held_audit)
    app = make_app(theory_path=theory)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        screen = main(app)
        screen.query_one(ComponentTree).focus()
        await palette(pilot, "Audit with a second model")
        assert isinstance(app.screen, PathDialog)
        app.screen.query_one("#model-path").value = str(edited_model)
        await pilot.press("enter")
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        assert screen.auditing and screen.peer is not None
        await press(pilot, "escape")
        assert not screen.auditing and "cancelled" in rendered(screen.query_one("#audit-status"))
        release.set()
        await press(pilot, "A")
        await until(pilot, lambda: not screen.auditing)
        result = screen.query_one(AuditPanel).result
        assert result is not None and [m.model for m in result.models] == ["tiny-gpt2", "tiny-gpt2-edited"]
        assert rendered(screen.query_one("#audit-verdicts")).startswith("A tiny-gpt2  score")


# ---- issue 16: diff


def one_layer_copy(model: Path, tmp_path: Path) -> Path:
    """The tiny GPT-2 without its second block: a consistent checkpoint of other shapes."""
    import json

    from safetensors.torch import load_file, save_file

    other = tmp_path / "one-layer"
    shutil.copytree(model, other)
    tensors = {k: v for k, v in load_file(other / "model.safetensors").items() if ".h.1." not in k}
    save_file(tensors, str(other / "model.safetensors"), metadata={"format": "pt"})
    cfg = json.loads((other / "config.json").read_text())
    cfg["n_layer"] = 1
    (other / "config.json").write_text(json.dumps(cfg))
    return other


async def test_diff_marks_the_edited_head_first_and_b_follows_a(make_app, labelled_b: Path) -> None:
    app = make_app(diff_with=labelled_b)
    async with app.run_test(size=SMALL) as pilot:
        screen = main(app)
        await until(pilot, lambda: screen.diff_result is not None)
        tree = screen.query_one(ComponentTree)
        assert tree.diff_marks[0] == EDITED_HEAD
        assert screen.diff_result.components[0].component.__str__() == EDITED_HEAD
        assert "▲" in str(tree._by_id[EDITED_HEAD].label) and "▲" in tree.border_subtitle
        assert "▲" not in str(tree._by_id["L1.H1"].label)
        assert "B tiny-gpt2-edited" in rendered(screen.query_one(ModelHeader))
        assert "A: –  B: B's own name" in str(tree._by_id["L0.H1"].label)  # B's label where A has none
        await submit_prompt(pilot, "w1 w2 w3 w4")
        await press(pilot, "n", "n", "n")
        await until(pilot, lambda: screen.other_view is not None and screen.other_view.index == 3)
        b, shown = screen.query_one("#step-b", StepPanel), screen.query_one("#other-view")
        assert not shown.display  # 80 columns: A's step view; b switches
        assert "b Show B" in bar_text(screen)
        await press(pilot, "b")
        assert shown.display and not screen.query_one("#views").display and app.focused is b
        assert b.view.prompt == "w1 w2 w3 w4" and b.view.name == "L1.attn"
        assert b.border_title.startswith("B tiny-gpt2-edited · Step 3/5")
        assert "1 of " in rendered(b.query_one("#banner")) and EDITED_HEAD in rendered(b.query_one("#banner"))
        a_norms = screen.view.resid_norms
        assert b.view.resid_norms != a_norms  # the edited head writes something else
        await press(pilot, "b")
        assert not shown.display and app.focused is screen.query_one("#step")


async def test_diff_side_by_side_at_160_columns(make_app, edited_model: Path) -> None:
    app = make_app(diff_with=edited_model)
    async with app.run_test(size=LARGE) as pilot:
        screen = main(app)
        await until(pilot, lambda: screen.diff_result is not None)
        await submit_prompt(pilot, "w1 w2 w3")
        await press(pilot, "n")
        await until(pilot, lambda: screen.other_view is not None and screen.other_view.index == 1)
        a, b = screen.query_one("#step", StepPanel), screen.query_one("#step-b", StepPanel)
        shown = screen.query_one("#other-view")
        assert shown.display and screen.has_class("-pair")
        assert a.region.y == b.region.y and a.region.right <= b.region.x
        assert b.view.attention is not None and b.view.attention.layer == 0
        await press(pilot, "t")  # the theory panel takes the room: one model at a time
        assert not shown.display
        await press(pilot, "escape", "t")
        await press(pilot, "D")  # the diff again
        await until(pilot, lambda: not screen.diffing)
        assert screen.query_one(ComponentTree).diff_marks[0] == EDITED_HEAD


async def test_diff_refuses_another_architecture_from_the_palette(make_app, tmp_path: Path, tui_model: Path) -> None:
    other = one_layer_copy(tui_model, tmp_path)
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        screen = main(app)
        await palette(pilot, "Diff with a second model")
        assert isinstance(app.screen, PathDialog)
        app.screen.query_one("#model-path").value = str(other)
        await press(pilot, "enter")
        await settle(pilot)
        assert screen.other is None and not screen.has_class("-diff")
        assert any("not the same architecture" in str(n.message) for n in app._notifications)


# ---- the CLI


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list:
    from tui_interp.cli import open_cmd
    from tui_interp.tui.app import InterpApp

    apps: list = []
    monkeypatch.setattr(InterpApp, "run", lambda self, *a, **k: apps.append(self))
    monkeypatch.setattr(open_cmd, "has_terminal", lambda: True)
    return apps


def test_open_with_a_second_model(launched, tui_model: Path, edited_model: Path) -> None:
    from tui_interp.cli import app as cli

    result = CliRunner().invoke(cli, ["open", str(tui_model), "--compare-with", str(edited_model), "--diff", str(edited_model)])
    assert result.exit_code == 0, result.output
    [app] = launched
    assert app.peer.model_path == edited_model and app.other.model_path == edited_model
    assert app.other.checkpoint is not None  # opened header-only by the CLI


@pytest.mark.parametrize("option", ["--compare-with", "--diff"])
def test_a_missing_second_model_exits_2_in_one_line(launched, tui_model: Path, tmp_path: Path, option: str) -> None:
    from tui_interp.cli import app as cli

    result = CliRunner().invoke(cli, ["open", str(tui_model), option, str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and not launched
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {option} ")


def test_diff_with_other_shapes_exits_2_in_one_line(launched, tui_model: Path, tmp_path: Path) -> None:

    from tui_interp.cli import app as cli

    other = one_layer_copy(tui_model, tmp_path)
    result = CliRunner().invoke(cli, ["open", str(tui_model), "--diff", str(other)])
    assert result.exit_code == 2 and not launched
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "not the same architecture" in lines[0] and "n_layers 2 in A, 1 in B" in lines[0]
