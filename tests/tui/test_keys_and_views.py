"""Issue 17: no lost keys, one focus model, readable results, windowed tables that follow a
position cursor, and the lens, patching, neuron and reference views, by keys alone."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import pytest
import torch
from textual import events
from textual.widgets import DataTable, Input, TextArea
from tui_pilot import hold_loading, press, settle, submit_prompt
from typer.testing import CliRunner

from tui_interp.engine.workbench import Workbench
from tui_interp.tui.screens.dialogs import AblateDialog, KeysDialog, LabelDialog, PatchDialog, ReferenceDialog, SuggestDialog
from tui_interp.tui.screens.main import MainScreen
from tui_interp.tui.stepqueue import StepQueue
from tui_interp.tui.widgets.component_tree import ComponentTree
from tui_interp.tui.widgets.heatmap import AttentionHeatmap
from tui_interp.tui.widgets.interventions import InterventionList
from tui_interp.tui.widgets.keybar import KeyBar, is_typed
from tui_interp.tui.widgets.lens_view import LensGrid, LensPanel
from tui_interp.tui.widgets.patch_view import PatchGrid, short_signed
from tui_interp.tui.widgets.step_view import PositionsTable, StepPanel
from tui_interp.tui.widgets.stepbar import StepBar
from tui_interp.tui.widgets.theory_panel import TheoryPanel, result_text

SMALL, LARGE = (80, 24), (160, 48)


def main(app) -> MainScreen:
    screen = app.screen
    assert isinstance(screen, MainScreen)
    return screen


def burst(app, *keys: str) -> None:
    """Keys as a terminal delivers them when typed fast or held: all queued at once."""
    characters = {"space": " ", "enter": "\r", "comma": ",", "full_stop": "."}
    for key in keys:
        app.post_message(events.Key(key, key if len(key) == 1 else characters.get(key)))


def bar_text(screen) -> str:
    return str(screen.query_one(KeyBar).render())


# ---- 1. keys are never lost


def test_the_step_queue_folds_moves_and_keeps_other_calls_in_order() -> None:
    q = StepQueue()
    assert q.move(1, "L0.H1") is True  # the first push starts a worker
    assert q.move(1, None) is False and q.move(-1, "L0.H2") is False  # it is running: no second worker
    assert q.call(lambda: "prompt") is False
    assert q.move(1, None) is False
    job = q.take()
    assert job is not None and job.moves == [1, 1, -1] and job.focus == "L0.H2" and job.call is None
    job = q.take()
    assert job is not None and job.call is not None and job.call() == "prompt"
    job = q.take()
    assert job is not None and job.moves == [1]
    assert q.take() is None  # empty: the worker stops ...
    assert q.move(1, None) is True  # ... and the next press starts another


async def test_a_burst_of_keys_moves_as_many_steps(make_app, monkeypatch) -> None:
    walks: list[list[object]] = []
    real_walk = Workbench.walk

    def slow_walk(self, moves, *, focus=None):
        walks.append(list(moves))
        time.sleep(0.05)  # a slow model: keys arrive while a step is computed
        return real_walk(self, moves, focus=focus)

    monkeypatch.setattr(Workbench, "walk", slow_walk)
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, "w1 w2 w3")
        screen = main(app)
        burst(app, "n", "n", "n")
        await settle(pilot)
        assert screen.view.index == 3 and screen.query_one(StepBar).index == 3
        assert len(walks) < 3  # folded: three presses, fewer computations
        burst(app, "p", "p", "p", "p")
        await settle(pilot)
        assert screen.view.index == 0
        burst(app, *["right"] * 7)  # clamped at the last step, as presses one at a time would be
        await settle(pilot)
        assert screen.view.index == 5
        burst(app, "p", "n", "n", "p", "p")  # clamping happens press by press: 5 4 5 5 4 3
        await settle(pilot)
        assert screen.view.index == 3


async def test_holding_n_steps_through_the_pass(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, "w1 w2 w3 w4")
        screen = main(app)
        for _ in range(8):  # key repeat: a press every 30 ms, faster than some steps
            burst(app, "n")
            await asyncio.sleep(0.03)
        await settle(pilot)
        assert screen.view.index == 5 and screen.view.name == "unembed"


async def test_keys_typed_while_a_prompt_runs_are_kept(make_app, monkeypatch) -> None:
    real = Workbench.set_prompt

    def slow_prompt(self, text, *, focus=None):
        time.sleep(0.2)
        return real(self, text, focus=focus)

    monkeypatch.setattr(Workbench, "set_prompt", slow_prompt)
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        screen = main(app)
        await submit_prompt(pilot, "w1 w2")
        prompt = screen.query_one("#prompt", Input)
        prompt.value = "w5 w6 w7"
        prompt.focus()
        await pilot.press("enter")
        burst(app, "n", "n")  # pressed before the new prompt's first view arrives
        await settle(pilot)
        assert screen.view.tokens == ("w5", "w6", "w7") and screen.view.index == 2


# ---- 2. one focus model


async def test_letters_type_in_the_prompt_and_the_key_bar_says_so(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        screen = main(app)
        assert isinstance(app.focused, Input)  # at startup: type a prompt
        shown = bar_text(screen)
        assert "enter Run prompt" in shown and "esc Workbench" in shown and "^t Theory" in shown
        for key, *_ in screen.query_one(KeyBar).entries():
            assert len(key) > 1, key  # no key that would be typed into the box (t, ?, n ...)
        assert is_typed("t") and is_typed("question_mark") and not is_typed("ctrl+t") and not is_typed("f1")
        await pilot.press("t", "question_mark")
        assert screen.query_one("#prompt", Input).value == "t?"
        assert not screen.has_class("-theory") and isinstance(app.screen, MainScreen)
        await press(pilot, "f1")  # the keys panel from a text box
        assert isinstance(app.screen, KeysDialog)
        text = str(app.screen.query_one("#keys-text").render())
        assert "How focus works" in text and "back to the workbench" in text
        await press(pilot, "escape")
        await press(pilot, "escape")  # leaves the prompt
        assert isinstance(app.focused, ComponentTree)
        assert "n Next" in bar_text(screen) and "? Keys" in bar_text(screen)


async def test_enter_while_loading_returns_to_the_workbench(make_app, monkeypatch) -> None:
    release = hold_loading(monkeypatch)
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause(0.2)
        screen = main(app)
        # typed in one burst while the weights load: the keys behind enter are already on their
        # way to the prompt box when enter runs; they must act on the workbench instead
        burst(app, "w", "1", "space", "w", "2", "enter", "n", "n", "t")
        await pilot.pause(0.3)
        assert screen.query_one("#prompt", Input).value == "w1 w2"
        assert screen.has_class("-theory") and isinstance(app.focused, TextArea)  # t opened the theory
        release.set()
        await settle(pilot)
        assert screen.view is not None and screen.view.tokens == ("w1", "w2")
        assert screen.view.index == 2  # the two n pressed while loading, after the prompt


async def test_enter_on_an_empty_prompt_stays_and_keeps_typing(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        screen = main(app)
        burst(app, "enter", "w", "3")
        await settle(pilot)
        assert isinstance(app.focused, Input) and screen.query_one("#prompt", Input).value == "w3"


async def test_escape_leaves_the_theory_editor_and_q_quits(make_app, theory_file: Path) -> None:
    app = make_app(theory_path=theory_file)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        screen = main(app)
        await press(pilot, "escape")
        await press(pilot, "t")
        assert isinstance(app.focused, TextArea)
        await press(pilot, "escape")
        assert not isinstance(app.focused, TextArea) and not screen.has_class("-theory")  # 80 columns: back to the tree
        await pilot.press("q")
        await pilot.pause()
        assert screen.query_one(TheoryPanel).text == theory_file.read_text()  # no "q" typed
        assert app._exit


async def test_escape_at_160_columns_keeps_the_theory_panel(make_app, theory_file: Path) -> None:
    app = make_app(theory_path=theory_file)
    async with app.run_test(size=LARGE) as pilot:
        await settle(pilot)
        screen = main(app)
        await press(pilot, "ctrl+t")
        assert isinstance(app.focused, TextArea)
        await press(pilot, "escape")
        assert isinstance(app.focused, ComponentTree) and screen.has_class("-theory")


# ---- 3. theory results


async def test_results_take_focus_enter_loads_and_f_maximises(make_app, theory_file: Path) -> None:
    app = make_app(theory_path=theory_file)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        screen = main(app)
        await submit_prompt(pilot, "w1 w2")
        await press(pilot, "ctrl+r")
        panel = screen.query_one(TheoryPanel)
        table = panel.table
        assert app.focused is table and table.row_count > 0  # no tab, tab, down
        await press(pilot, "f")
        assert screen.maximized is panel.results and table.size.height >= 15  # the whole screen
        await press(pilot, "escape")
        assert screen.maximized is None
        await press(pilot, "down")
        chosen = panel._prompts[1]
        await press(pilot, "enter")
        assert screen.view.prompt == chosen and not screen.has_class("-theory")  # 80 columns: the step view
        assert isinstance(app.focused, ComponentTree)


async def test_compare_progress_moves_and_no_stale_message(make_app, theory_file: Path, monkeypatch) -> None:
    import tui_interp.engine.compare as engine_compare

    release = threading.Event()

    def slow_iter_compare(lm, theory, **options):
        done = 0
        while not release.wait(0.01):
            if options["cancel"]():
                raise engine_compare.Cancelled("cancelled")
            done += 100
            yield engine_compare.Progress("compare", done, 12_769, done, 0, 0.5)
        raise engine_compare.Cancelled("cancelled")

    monkeypatch.setattr(engine_compare, "iter_compare", slow_iter_compare)
    app = make_app(theory_path=theory_file)
    async with app.run_test(size=LARGE) as pilot:
        await settle(pilot)
        screen = main(app)
        await pilot.press("ctrl+r")
        await pilot.pause(0.3)
        phase = str(screen.query_one("#compare-phase").render())
        assert "comparing" in phase and "/12,769" in phase and "/s" in phase and " s" in phase
        screen.query_one(ComponentTree).focus()
        await press(pilot, "escape")  # cancels
        agreement = screen.query_one("#agreement")
        assert "cancelled" in str(agreement.render()) and not screen.comparing
        await pilot.press("ctrl+r")  # a new comparison: the old message goes
        await pilot.pause(0.1)
        assert not screen.query_one(TheoryPanel).results.display
        release.set()
        await settle(pilot)


async def test_compare_says_why_it_cannot_run(make_app, tmp_path: Path) -> None:
    question = tmp_path / "q.theory"
    question.write_text('input a: int in 0..3\nprompt "w{a}"\n')
    app = make_app(theory_path=question)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await press(pilot, "escape", "ctrl+r")
        assert not main(app).comparing
        assert any("is a question" in str(n.message) for n in app._notifications)


def test_result_text_reads_well() -> None:
    from tui_interp.engine.compare import CompareResult, Outcome, SliceResult

    outcome = Outcome({"a": 1}, "w1 w2", "w3", "w9", False, 0.01, -1.0, ())
    result = CompareResult("t", "m", "f", 12_769, True, "all 12,769 inputs", 0.4955, [SliceResult("train", 3_831, 0.5),
                           SliceResult("not train", 8_938, None)], [outcome] * 3, 6_441)
    text = result_text(result).plain
    assert "6,441 counterexamples" in text and "3 listed" in text
    assert "train: 50.00% of 3,831" in text and "not train: empty" in text


async def test_splits_are_shown_with_their_sizes_and_slices(make_app, tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text("".join(json.dumps({"a": a}) + "\n" for a in (0, 2, 4)))
    theory = tmp_path / "split.theory"
    theory.write_text('input a: int in 0..9\nprompt "w{a} w{a + 1}"\nexpect "w" + str(a + 2)\nsplit train from "train.jsonl"\n')
    app = make_app(theory_path=theory)
    async with app.run_test(size=LARGE) as pilot:
        await settle(pilot)
        screen = main(app)
        info = str(screen.query_one("#theory-info").render())
        assert "split train 3 inputs (train.jsonl)" in info
        await press(pilot, "ctrl+r")
        text = str(screen.query_one("#agreement").render())
        assert "train: " in text and "of 3" in text and "not train: " in text and "of 7" in text


# ---- 4. the heatmap and tables follow a position cursor


async def test_the_cursor_and_windows_are_kept_across_steps(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, " ".join(f"w{i}" for i in range(30)))
        screen = main(app)
        table = screen.query_one(PositionsTable)
        assert screen.cursor == 29 and table.first_row > 0  # the last position is on screen, no scrolling
        await press(pilot, *["comma"] * 4, "n")
        assert screen.cursor == 25
        first = table.first_row
        await press(pilot, "n", "n", "n")  # mlp, attn, mlp: the picture and the table stay put
        assert screen.cursor == 25 and table.first_row == first
        rows = [line.split() for line in table.window_text().splitlines()[1:]]
        assert any(r[:2] == ["25", "w25"] for r in rows)
        # the panel itself never needs scrolling: both tables fit in it
        panel = screen.query_one(StepPanel)
        assert panel.max_scroll_y == 0


async def test_up_and_down_in_the_step_view_move_the_cursor(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, "w1 w2 w3 w4")
        screen = main(app)
        screen.query_one(StepPanel).focus()
        await press(pilot, "up", "up")
        assert screen.cursor == 1
        await press(pilot, "down")
        assert screen.cursor == 2


async def test_the_mlp_step_shows_the_neurons_at_the_cursor(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, "w1 w2 w3 w4")
        screen = main(app)
        await press(pilot, "n", "n")
        heatmap = screen.query_one(AttentionHeatmap)
        view = screen.view
        assert view.name == "L0.mlp"
        first = view.neurons_at[3][0].component
        assert first in heatmap.window_text()
        await press(pilot, "less_than_sign")
        assert screen.cursor == 0 and view.neurons_at[0][0].component in heatmap.window_text()
        assert "at 0 (w1)" in str(screen.query_one("#focus-title").render())


# ---- 5. views: lens and patching


async def test_the_lens_view_matches_the_engine(make_app, tui_model: Path) -> None:
    from tui_interp.engine.lens import lens_report
    from tui_interp.model.loader import load_model

    lm = load_model(tui_model)
    ids = lm.tokenizer.encode("w3 w4 w5")
    expected = lens_report(lm, ids, k=3)
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, "w3 w4 w5")
        screen = main(app)
        await press(pilot, "2")
        panel = screen.query_one(LensPanel)
        assert panel.display and panel.lens is not None
        assert panel.lens.rows == tuple(tuple(tuple(r.top) for r in row) for row in expected.rows)
        grid = screen.query_one(LensGrid).text()
        assert grid.splitlines()[2].startswith("embed") and "w5" in grid
        await press(pilot, "comma")
        assert "At 1" in str(panel.query_one("#lens-detail").render())
        await press(pilot, "1")
        assert screen.query_one(StepPanel).display


async def test_patching_from_keys_matches_the_engine(make_app, tui_model: Path) -> None:
    from tui_interp.engine.patching import patch_prompts
    from tui_interp.model.loader import load_model

    lm = load_model(tui_model)
    expected = patch_prompts(lm, lm.tokenizer.encode("w1 w2 w3"), lm.tokenizer.encode("w1 w9 w3"), per_position=True)
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, "w1 w2 w3")
        screen = main(app)
        await press(pilot, "3")
        assert isinstance(app.screen, PatchDialog)
        app.screen.query_one("#patch-corrupt", Input).value = "w1 w9 w3"
        await press(pilot, "enter")
        assert isinstance(app.screen, MainScreen)
        patch = screen.patch
        assert patch is not None and patch.components == tuple(expected.result.components)
        got = torch.tensor([[v if v is not None else float("nan") for v in row] for row in patch.effect])
        torch.testing.assert_close(got, expected.result.effect.float(), equal_nan=True)
        text = screen.query_one(PatchGrid).text()
        assert "L0.H0" in text and "L1.mlp" in text and short_signed(patch.effect[-1][-1]).strip() in text
        # e edits it again, with the last input kept
        await press(pilot, "e")
        assert app.screen.query_one("#patch-corrupt", Input).value == "w1 w9 w3"
        await press(pilot, "escape")


# ---- 6. neurons in the tree, the ablation reference, dialogs


async def test_neurons_are_listed_under_the_mlp_and_can_be_labelled(make_app, labels_file: Path) -> None:
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, "w1 w2 w3")
        screen = main(app)
        tree = screen.query_one(ComponentTree)
        tree.select_component("L0.mlp")
        await press(pilot, "space")  # expand
        neurons = screen.workbench.top_neurons(0)
        assert neurons and all(n.component in tree._by_id for n in neurons)
        tree.select_component(neurons[0].component)
        await settle(pilot)
        assert screen.selected == neurons[0].component
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, LabelDialog)
        await pilot.press(*"fires on w", "enter")
        await settle(pilot)
        [label] = json.loads(labels_file.read_text())["labels"]
        assert label["component"] == neurons[0].component and label["name"] == "fires on w"
        assert "fires on w" in tree._by_id[neurons[0].component].label.plain


async def test_the_ablation_reference_is_chosen_and_shown(make_app, theory_file: Path) -> None:
    app = make_app(theory_path=theory_file)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, "w1 w2 w3")
        screen = main(app)
        screen.query_one(ComponentTree).select_component("L0.H1")
        await pilot.pause()
        await press(pilot, "a")
        assert isinstance(app.screen, AblateDialog)
        assert "random token sequences" in str(app.screen.query_one("#reference").render())
        assert "z Zero" in str(app.screen.query_one(KeyBar).render())  # the dialog's own keys
        assert "n Next" not in str(app.screen.query_one(KeyBar).render())
        await press(pilot, "c")  # change the reference
        assert isinstance(app.screen, ReferenceDialog)
        await press(pilot, "t")  # the theory's inputs
        assert "inputs of theory 'next word'" in screen.reference
        assert isinstance(app.screen, AblateDialog)  # back to ablating, with it
        assert "next word" in str(app.screen.query_one("#reference").render())
        await press(pilot, "m")
        assert screen.view.interventions == ("L0.H1:mean",)
        assert "next word" in screen.view.effect.reference
        assert "next word" in str(screen.query_one("#summary").render())
        assert "next word" in screen.query_one(InterventionList).border_subtitle


async def test_a_prompts_file_as_the_reference(make_app, tmp_path: Path) -> None:
    prompts = tmp_path / "ref.txt"
    prompts.write_text("w1 w5 w9\nw2 w6 w8\n")
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, "w1 w2 w3")
        screen = main(app)
        await press(pilot, "R")
        assert isinstance(app.screen, ReferenceDialog)
        await press(pilot, "f")
        app.screen.query_one("#reference-path", Input).value = str(prompts)
        await press(pilot, "enter")
        assert screen.reference == "2 reference prompts"
        screen.query_one(ComponentTree).select_component("L1.mlp")
        await pilot.pause()
        await press(pilot, "a", "r")  # resample draws from the 3-token reference prompts
        assert screen.view.interventions == ("L1.mlp:resample",)


async def test_the_suggest_dialog_is_centred_below_the_header(tmp_path: Path) -> None:
    from tui_interp.tui.app import create_app

    model = Path(__file__).resolve().parents[2] / "sample_models" / "induction-2l"
    app = create_app(model, labels_path=tmp_path / "labels.json")
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await press(pilot, "escape", "s")
        assert isinstance(app.screen, SuggestDialog)
        dialog = app.screen.query_one("#dialog")
        assert dialog.region.y >= 1 and dialog.region.right <= 80
        assert "esc Close" in str(app.screen.query_one(KeyBar).render())


# ---- 7. numbering, the key bar


async def test_step_numbers_are_the_clis(make_app, tui_model: Path) -> None:
    from tui_interp.cli import app as cli

    result = CliRunner().invoke(cli, ["step", str(tui_model), "--prompt", "w1 w2", "--to", "3"])
    assert result.exit_code == 0, result.output
    cli_line = next(line for line in result.stdout.splitlines() if line.startswith("step "))
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, "w1 w2")
        await press(pilot, "n", "n", "n")
        shown = str(main(app).query_one(StepBar).render())
        assert shown.startswith(cli_line.split(":")[0])  # "step 3/5" in both


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
async def test_the_key_bar_fits_and_keeps_the_keys_panel(make_app, size) -> None:
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, "w1 w2")
        screen = main(app)
        text = bar_text(screen)
        assert len(text) <= size[0] and text.rstrip().endswith("? Keys")
        for needed in ("n Next", "p Prev", "a Ablate", "l Label", "t Theory", "^r Compare", "q Quit"):
            assert needed in text, needed
        if size == LARGE:
            assert "f Full" in text and "^s Save" in text


async def test_every_dialog_has_its_own_key_bar() -> None:
    from tui_interp.tui.screens import dialogs

    for name in ("LabelDialog", "AblateDialog", "ReferenceDialog", "PatchDialog", "DLADialog", "SuggestDialog",
                 "SaveAsDialog", "ConfirmDialog", "KeysDialog", "RecoverDialog", "PathDialog"):
        cls = getattr(dialogs, name)
        assert "KeyBar(" in __import__("inspect").getsource(cls.compose), name
        for b in cls.BINDINGS:
            assert b.description, f"{name}: {b.key}"


async def test_the_results_table_keys(make_app, theory_file: Path) -> None:
    app = make_app(theory_path=theory_file)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await press(pilot, "escape", "ctrl+r")
        assert isinstance(app.focused, DataTable)
        text = bar_text(main(app))
        assert "esc Close theory" in text and "f Full" in text and "n Next" not in text


async def test_f_fills_the_screen_with_the_pane_in_focus(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, " ".join(f"w{i}" for i in range(20)))
        screen = main(app)
        await press(pilot, "n")
        panel = screen.query_one(StepPanel)
        heatmap = screen.query_one(AttentionHeatmap)
        rows_before = heatmap.size.height
        panel.focus()
        await press(pilot, "f")
        assert screen.maximized is panel and heatmap.size.height > rows_before  # more rows of the pattern
        assert "esc Restore" in bar_text(screen)
        await press(pilot, "escape")
        assert screen.maximized is None and app.focused is panel
        await press(pilot, "2", "f")  # the lens view the same way
        assert screen.maximized is screen.query_one(LensPanel)
        await press(pilot, "f")
        assert screen.maximized is None
