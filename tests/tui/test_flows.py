"""Pilot tests of what a user does, one flow at a time (issue 7's numbered list)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch
from textual.widgets import DataTable, Input, TextArea
from tui_pilot import ESCAPE_TOKEN, MARKUP_TOKEN, hold_loading, press, settle, submit_prompt

from tui_interp.tui.screens.dialogs import AblateDialog, DLADialog, LabelDialog
from tui_interp.tui.screens.main import MainScreen
from tui_interp.tui.widgets.component_tree import ComponentTree
from tui_interp.tui.widgets.header import ModelHeader
from tui_interp.tui.widgets.heatmap import AttentionHeatmap
from tui_interp.tui.widgets.interventions import InterventionList
from tui_interp.tui.widgets.step_view import PositionsTable, StepPanel
from tui_interp.tui.widgets.stepbar import StepBar
from tui_interp.tui.widgets.theory_panel import TheoryPanel

SIZE = (80, 24)


def main(app) -> MainScreen:
    screen = app.screen
    assert isinstance(screen, MainScreen)
    return screen


def rendered(widget) -> str:
    return str(widget.render())


# ---- 1. opening


async def test_header_shows_before_the_weights_are_read(make_app, monkeypatch) -> None:
    release = hold_loading(monkeypatch)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        header = main(app).query_one(ModelHeader)
        assert header.header is not None, "the header must come from the checkpoint headers alone"
        line = header._line()
        assert "tiny-gpt2" in line and "gpt2" in line and "2L×4H" in line and "30.6K params" in line
        assert header.header.device is None and "loading weights" in line
        assert main(app).check_action("step", ()) is None  # nothing to step yet
        # a prompt typed while loading runs once the weights are in
        main(app).query_one("#prompt", Input).value = "w1 w2"
        main(app).query_one("#prompt", Input).focus()
        await pilot.press("enter")
        release.set()
        await settle(pilot)
        assert header.header.device == "cpu" and header.header.dtype == "float32"
        assert "loading" not in header._line() and "cpu float32" in header._line()
        assert main(app).view is not None and main(app).view.tokens == ("w1", "w2")


async def test_bad_checkpoint_is_reported_not_fatal(tmp_path: Path, make_app) -> None:
    bad = tmp_path / "broken"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    app = make_app(model_path=bad)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = main(app)
        assert screen.failed
        assert "failed" in screen.query_one(ModelHeader).status
        assert any("no .safetensors weights" in str(n.message) for n in app._notifications)
        await pilot.press("n", "t", "question_mark")  # keys still work; nothing crashes
        assert app.is_running


async def test_bad_device_is_reported(make_app) -> None:
    app = make_app(device="cuda:7" if torch.cuda.is_available() else "cuda")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert main(app).failed
        assert any("cuda" in str(n.message).lower() for n in app._notifications)


# ---- 2. prompt and steps


async def test_prompt_then_step_forward_and_back(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, "w1 w2 w3 w4")
        screen = main(app)
        view = screen.view
        assert view is not None and view.index == 0 and view.name == "embed"
        assert view.tokens == ("w1", "w2", "w3", "w4")
        assert len(view.resid_norms) == 4 and all(n > 0 for n in view.resid_norms)
        assert len(view.lens) == 4 and len(view.lens[0]) == 5
        bar = screen.query_one(StepBar)
        assert bar.index == 0 and bar.steps == ("embed", "L0.attn", "L0.mlp", "L1.attn", "L1.mlp", "unembed")
        assert "step 0/5" in str(bar.render())  # numbered as `tui-interp step` numbers them
        assert screen.query_one(StepPanel).border_title == "Step 0/5: embed"
        # enter moved focus to the tree, so the step keys work at once
        assert isinstance(app.focused, ComponentTree)
        await press(pilot, "n")
        assert screen.view.name == "L0.attn" and screen.view.attention is not None
        await press(pilot, "right")
        assert screen.view.name == "L0.mlp" and screen.view.neurons
        await press(pilot, "p")
        assert screen.view.name == "L0.attn"
        await press(pilot, "left")
        assert screen.view.name == "embed"
        await press(pilot, "p")  # clamped at the first step
        assert screen.view.index == 0
        await press(pilot, "G")
        assert screen.view.name == "unembed" and screen.query_one(StepBar).index == 5
        # at the end the lens equals the model's own prediction
        assert screen.view.lens[-1][0].id == screen.view.prediction[0].id
        await press(pilot, "g")
        assert screen.view.name == "embed"


async def test_clicking_a_step_goes_there(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, "w1 w2")
        bar = main(app).query_one(StepBar)
        start, end, index = next(span for span in bar._spans if span[2] == 3)
        await pilot.click(StepBar, offset=(1 + start + 1, 0))  # 1: the bar's left padding
        await settle(pilot)
        assert main(app).view.name == "L1.attn"


async def test_step_view_matches_the_model(make_app, tui_model: Path) -> None:
    """What the step view shows is the model's own computation (norms, lens, prediction)."""
    from tui_interp.model.loader import load_model

    lm = load_model(tui_model)
    ids = lm.tokenizer.encode("w5 w6 w7")
    logits, cache = lm.model.run_with_cache(torch.tensor([ids]))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, "w5 w6 w7")
        await press(pilot, "n", "n")  # after L0.mlp
        view = main(app).view
        expected = cache["blocks.0.hook_resid_post"][0].norm(dim=-1)
        torch.testing.assert_close(torch.tensor(view.resid_norms), expected, rtol=1e-5, atol=1e-5)
        top = int(logits[0, -1].argmax())
        assert view.prediction[0].id == top
        assert view.prediction[0].text == lm.tokenizer.token_text(top)
        table = main(app).query_one(PositionsTable).text()
        assert "w5" in table and "w7" in table and f"{view.resid_norms[0]:.2f}" in table


async def test_attention_heatmap_labels_are_escaped(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, f"w1 {MARKUP_TOKEN} {ESCAPE_TOKEN} w2")
        await press(pilot, "n")
        screen = main(app)
        heatmap = screen.query_one(AttentionHeatmap)
        text = heatmap.text()
        assert MARKUP_TOKEN in text  # shown literally, not as bold markup
        assert "\x1b" not in text and "\\x1b" in text  # the escape is made visible
        pattern = screen.view.attention.pattern
        assert len(pattern) == 4 and all(abs(sum(row) - 1) < 1e-4 for row in pattern)
        assert all(v == 0 for q, row in enumerate(pattern) for v in row[q + 1 :])  # causal
        # the component tree, step table and header never see raw control characters
        assert "\x1b" not in screen.query_one(PositionsTable).text()


async def test_long_prompt_heatmap_follows_the_position_cursor(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, " ".join(f"w{i}" for i in range(40)))
        await press(pilot, "n")
        screen = main(app)
        heatmap = screen.query_one(AttentionHeatmap)
        lines = heatmap.window_text().splitlines()
        # two header lines (short tokens, then full indices: 39, never a cut 9), then the rows
        assert "w39" not in lines[0] and "39" in lines[1].split()
        assert lines[-1].split()[:2] == ["39", "w39"]  # the cursor starts on the last position
        assert heatmap.first_col > 0 and "‹" in lines[1]  # columns 0.. are off to the left
        assert len(lines) <= heatmap.size.height
        # the cursor moves left: the window follows it, by as little as it can
        await press(pilot, *["comma"] * 39)
        assert screen.cursor == 0 and heatmap.first_col == 0 and heatmap.first_row == 0
        lines = heatmap.window_text().splitlines()
        assert lines[1].split()[0] == "0" and lines[2].split()[:2] == ["0", "w0"]
        # and stays where it is across steps
        await press(pilot, *["full_stop"] * 5, "n", "n")
        assert screen.view.name == "L1.attn" and screen.cursor == 5 and heatmap.first_col == 0
        await press(pilot, "greater_than_sign")
        assert screen.cursor == 39 and heatmap.window_text().splitlines()[-1].split()[0] == "39"


async def test_head_keys_and_tree_selection_choose_the_head(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, "w1 w2 w3")
        screen = main(app)
        await press(pilot, "n")
        assert (screen.view.attention.layer, screen.view.attention.head) == (0, 0)
        await press(pilot, "right_square_bracket")
        assert screen.view.attention.head == 1 and screen.selected == "L0.H1"
        await press(pilot, "left_square_bracket", "left_square_bracket")
        assert screen.view.attention.head == 3  # wraps around
        # enter on a head in the tree takes the step view to that head's layer
        tree = screen.query_one(ComponentTree)
        tree.select_component("L1.H2")
        tree.focus()
        await press(pilot, "enter")
        assert screen.view.name == "L1.attn" and screen.view.attention.head == 2
        tree.select_component("L0.mlp")
        await press(pilot, "enter")
        assert screen.view.name == "L0.mlp"


async def test_step_keys_disabled_without_a_prompt(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = main(app)
        for action in ("step", "goto", "ablate", "dla", "head", "undo_intervention"):
            assert screen.check_action(action, ()) is None, action
        await submit_prompt(pilot, "w1")
        assert screen.check_action("step", ()) is True
        assert screen.check_action("head", ()) is None  # not an attention step


async def test_prompt_errors_are_notifications(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, " ".join(["w1"] * 100))  # longer than n_ctx = 64
        assert main(app).view is None
        assert any("longer than the model's context" in str(n.message) for n in app._notifications)
        assert app.is_running


# ---- 3. components, labels, attribution


async def test_label_a_component(make_app, labels_file: Path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = main(app)
        tree = screen.query_one(ComponentTree)
        tree.focus()
        tree.select_component("L0.H2")
        await pilot.pause()
        assert screen.selected == "L0.H2"
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, LabelDialog)
        await pilot.press(*"prev [b]token")
        await pilot.press("tab")
        await pilot.press(*"attends to i-1")
        await pilot.press("tab")
        await pilot.press(*"positional, tested")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
        doc = json.loads(labels_file.read_text())
        [label] = doc["labels"]
        assert label["component"] == "L0.H2" and label["name"] == "prev [b]token"
        assert label["note"] == "attends to i-1" and label["tags"] == ["positional", "tested"]
        node_label = tree._by_id["L0.H2"].label
        assert "prev [b]token" in node_label.plain  # literal, markup not interpreted
        # editing keeps the dialog filled in; ctrl+d removes the label
        await pilot.press("l")
        await pilot.pause()
        assert app.screen.query_one("#label-name", Input).value == "prev [b]token"
        await pilot.press("ctrl+d")
        await settle(pilot)
        assert json.loads(labels_file.read_text())["labels"] == []


async def test_label_needs_a_name_and_escape_cancels(make_app, labels_file: Path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        tree = main(app).query_one(ComponentTree)
        tree.focus()
        tree.select_component("L1.mlp")
        await pilot.pause()
        await pilot.press("l", "enter")
        await pilot.pause()
        assert isinstance(app.screen, LabelDialog)
        assert "needs a name" in rendered(app.screen.query_one("#label-error"))
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen) and not labels_file.exists()


async def test_direct_logit_attribution(make_app, tui_model: Path) -> None:
    from tui_interp.engine.lens import DLA_HOOKS, direct_logit_attribution
    from tui_interp.model.loader import load_model

    lm = load_model(tui_model)
    ids = lm.tokenizer.encode("w3 w4 w5")
    logits, cache = lm.model.run_with_cache(torch.tensor([ids]), list(DLA_HOOKS))
    expected = direct_logit_attribution(lm.model, cache, int(logits[0, -1].argmax()))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, "w3 w4 w5")
        await press(pilot, "d")
        dialog = app.screen
        assert isinstance(dialog, DLADialog)
        shown = dict(dialog.view.rows)
        assert shown.keys() == expected.contributions.keys()
        for k, v in expected.contributions.items():
            assert shown[k] == pytest.approx(v, abs=1e-5)
        # largest effect first; enter selects it and the view jumps there
        first = dialog.view.rows[0][0]
        assert abs(dialog.view.rows[0][1]) == max(abs(v) for v in shown.values())
        table = dialog.query_one(DataTable)
        assert table.row_count == len(shown)
        await press(pilot, "enter")
        assert isinstance(app.screen, MainScreen)
        assert main(app).selected == first


# ---- 4. ablation


async def test_ablate_shows_the_changed_prediction(make_app, tui_model: Path) -> None:
    from tui_interp.model.loader import load_model

    lm = load_model(tui_model)
    ids = lm.tokenizer.encode("w7 w8 w9 w10")
    tokens = torch.tensor([ids])
    clean = lm.model(tokens)[0, -1]

    def zero_head(x, *, hook):
        x = x.clone()
        x[:, :, 1] = 0
        return x

    with lm.model.hooks([("blocks.0.attn.hook_z", zero_head)]):
        ablated = lm.model(tokens)[0, -1]
    target = int(clean.argmax())

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, "w7 w8 w9 w10")
        screen = main(app)
        tree = screen.query_one(ComponentTree)
        tree.select_component("L0.H1")
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, AblateDialog)
        await press(pilot, "z")
        effect = screen.view.effect
        assert effect is not None and effect.interventions == ("L0.H1:zero",)
        assert effect.target.id == target
        assert effect.metric_change == pytest.approx(float(ablated[target] - clean[target]), abs=1e-4)
        summary = rendered(screen.query_one("#summary"))
        assert "L0.H1:zero" in summary and "logit" in summary
        assert "✗zero" in tree._by_id["L0.H1"].label.plain
        # a second ablation, by mean, is listed too; then both are removed
        tree.select_component("L1.mlp")
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
        await press(pilot, "m")
        assert screen.view.interventions == ("L0.H1:zero", "L1.mlp:mean")
        listing = screen.query_one(InterventionList)
        assert listing.option_count == 2
        listing.focus()
        listing.highlighted = 0
        await press(pilot, "x")
        assert screen.view.interventions == ("L1.mlp:mean",)
        await press(pilot, "U")
        assert screen.view.interventions == () and screen.view.effect is None
        assert "✗" not in tree._by_id["L0.H1"].label.plain


async def test_ablate_is_greyed_out_where_it_makes_no_sense(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, "w1 w2")
        screen = main(app)
        tree = screen.query_one(ComponentTree)
        tree.select_component("unembed")
        await pilot.pause()
        assert screen.check_action("ablate", ()) is None
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)  # no dialog
        tree.select_component("L0.attn")
        await pilot.pause()
        assert screen.check_action("ablate", ()) is True


# ---- 5. theory


async def test_theory_diagnostics_compare_and_counterexample(make_app, theory_file: Path) -> None:
    app = make_app(theory_path=theory_file)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        screen = main(app)
        panel = screen.query_one(TheoryPanel)
        assert panel.text == theory_file.read_text()
        await press(pilot, "ctrl+t")  # the prompt has focus: t would be typed there
        assert screen.has_class("-theory") and isinstance(app.focused, TextArea)
        assert "no problems" in rendered(panel.query_one("#diagnostics"))
        # type an error: the diagnostic appears with its line and column
        editor = panel.editor
        editor.move_cursor((3, len(editor.document.get_line(3))))
        await pilot.press(*" + c")
        await pilot.pause(0.3)
        await settle(pilot)
        diag = rendered(panel.query_one("#diagnostics"))
        assert "4:" in diag and "c" in diag and panel.has_class("-errors")
        # and the span is underlined in the editor, where it is
        line = editor.get_line(3)
        col = line.plain.index(" c") + 1
        assert any(span.start <= col < span.end and "underline" in str(span.style) for span in line.spans)
        assert panel.modified
        # errors: ctrl+r says why it cannot run, and nothing runs
        await press(pilot, "ctrl+r")
        assert not screen.comparing
        assert any("fix the theory's errors first: 4:" in str(n.message) for n in app._notifications)
        for _ in range(4):
            await pilot.press("backspace")
        await pilot.pause(0.3)
        await settle(pilot)
        assert "no problems" in rendered(panel.query_one("#diagnostics"))
        await press(pilot, "ctrl+r")
        result_text = rendered(panel.query_one("#agreement"))
        assert "Agreement" in result_text and "all 10 inputs" in result_text
        assert "even" in result_text  # per-slice agreement
        table = panel.query_one("#counterexamples", DataTable)
        assert table.row_count == len(panel._prompts) > 0
        # choosing a counterexample loads its prompt into the step view
        table.focus()
        table.move_cursor(row=0)
        prompt = panel._prompts[0]
        await press(pilot, "enter")
        assert screen.view is not None and screen.view.prompt == prompt
        assert screen.query_one("#prompt", Input).value == prompt


async def test_theory_save(make_app, theory_file: Path, tmp_path: Path) -> None:
    app = make_app(theory_path=theory_file)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "ctrl+t")
        panel = main(app).query_one(TheoryPanel)
        await pilot.press(*"# note")
        await pilot.pause(0.3)
        await settle(pilot)
        assert panel.modified
        await press(pilot, "ctrl+s")
        assert theory_file.read_text().startswith("# note")
        assert not panel.modified


async def test_theory_save_as_when_no_file_was_given(make_app, tmp_path: Path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "ctrl+t")
        await pilot.press(*'input a: int in 0..3')
        await pilot.pause(0.3)
        await press(pilot, "ctrl+s")
        target = tmp_path / "mine.theory"
        dialog_input = app.screen.query_one(Input)
        dialog_input.value = str(target)
        await press(pilot, "enter")
        assert target.read_text() == "input a: int in 0..3"
        assert main(app).workbench.theory_path == target


async def test_keys_are_handled_while_a_slow_compare_runs(make_app, theory_file: Path, monkeypatch) -> None:
    import tui_interp.engine.compare as engine_compare

    started, release = threading.Event(), threading.Event()
    real = engine_compare.iter_compare

    def slow_iter_compare(lm, theory, **options):
        """Many slow batches, checking the cancel flag between them, as the real one does."""
        cancel = options["cancel"]
        done = 0
        while not release.wait(0.01):
            if cancel():
                raise engine_compare.Cancelled("cancelled")
            started.set()
            done += 1
            yield engine_compare.Progress("compare", done, 10**6)
        yield from real(lm, theory, **options)

    monkeypatch.setattr(engine_compare, "iter_compare", slow_iter_compare)
    app = make_app(theory_path=theory_file)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, "w1 w2 w3")
        screen = main(app)
        await pilot.press("ctrl+r")
        assert started.wait(5)
        await pilot.pause()
        assert screen.comparing
        # the compare worker is still running, and the UI answers keys: steps (the model is
        # shared between batches), the help panel, the theory panel
        screen.query_one(ComponentTree).focus()
        await pilot.press("n")
        for _ in range(100):
            await pilot.pause(0.02)
            if screen.view.index == 1:
                break
        assert screen.view.index == 1
        await pilot.press("question_mark")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "KeysDialog"
        await pilot.press("escape")
        await pilot.pause()
        assert screen.comparing and not release.is_set()
        # escape cancels the comparison
        await pilot.press("escape")
        await settle(pilot)
        assert not screen.comparing
        assert "cancelled" in rendered(screen.query_one("#agreement"))


# ---- 6. palette, keys, themes


async def test_command_palette_has_every_action(make_app) -> None:
    from tui_interp.tui.screens.main import COMMANDS

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, "w1 w2")
        screen = main(app)
        titles = {c.title for c in app.get_system_commands(screen)}
        bound = {b.action for b in MainScreen.BINDINGS}  # type: ignore[union-attr]
        assert {a for a, _, _ in COMMANDS} >= bound, "every key binding has a palette entry"
        # what makes no sense now is left out (no intervention to undo, no comparison running)
        assert "Next step" in titles and "Ablate the selected component" not in titles
        assert "Cancel the comparison" not in titles
        # run one through the palette
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Next step")
        await pilot.pause(0.5)
        await press(pilot, "enter")
        assert screen.view.index == 1


async def test_every_binding_has_a_description() -> None:
    from tui_interp.tui.screens import dialogs
    from tui_interp.tui.widgets.interventions import InterventionList
    from tui_interp.tui.widgets.prompt import PromptInput

    classes = [MainScreen, InterventionList, PromptInput, dialogs.LabelDialog, dialogs.AblateDialog,
               dialogs.DLADialog, dialogs.SaveAsDialog, dialogs.ConfirmDialog]
    for cls in classes:
        for b in cls.BINDINGS:
            assert b.description, f"{cls.__name__}: {b.key} has no description"  # type: ignore[union-attr]


async def test_question_mark_shows_every_key(make_app) -> None:
    from tui_interp.tui.screens.dialogs import KeysDialog
    from tui_interp.tui.screens.main import _key_text

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        main(app).query_one(ComponentTree).focus()
        await press(pilot, "question_mark")
        assert isinstance(app.screen, KeysDialog)
        text = rendered(app.screen.query_one("#keys-text"))
        for b in MainScreen.BINDINGS:  # every key of the workbench is listed
            assert _key_text(b.key) in text, b.key
        for needle in ("n, →", "Next step", "a  Ablate the selected component", "^r  Compare the theory", "U  Remove all"):
            assert needle in text, needle
        await press(pilot, "question_mark")
        assert isinstance(app.screen, MainScreen)


async def test_keyboard_only_tour(make_app, labels_file: Path) -> None:
    """Everything reachable with keys alone: prompt, tree, step, ablate, label, theory."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press(*"w1 w2 w3", "enter")
        await settle(pilot)
        screen = main(app)
        assert screen.view is not None
        await press(pilot, "down", "down", "down", "down", "down")  # embed, pos_embed, L0, attn, H0
        assert screen.selected is not None
        selected = screen.selected
        await press(pilot, "a", "z")
        assert screen.view.interventions and screen.view.interventions[0].startswith(selected)
        await pilot.press("l", *"named", "enter")
        await settle(pilot)
        assert json.loads(labels_file.read_text())["labels"][0]["component"] == selected
        await press(pilot, "slash")
        assert isinstance(app.focused, Input)
        await press(pilot, "escape")
        assert isinstance(app.focused, ComponentTree)
        await press(pilot, "t")
        assert isinstance(app.focused, TextArea)


async def test_quit_asks_about_an_unsaved_theory(make_app, theory_file: Path) -> None:
    app = make_app(theory_path=theory_file)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press(pilot, "ctrl+t")
        await pilot.press("x")
        await pilot.pause(0.3)
        await settle(pilot)
        main(app).query_one(ComponentTree).focus()
        await press(pilot, "q")
        assert app.is_running and app.screen.__class__.__name__ == "ConfirmDialog"
        await press(pilot, "n")
        assert app.is_running
        await pilot.press("q", "y")
        await pilot.pause()
        assert app._exit  # the app is on its way out


async def test_no_color_is_monochrome_and_still_readable(make_app, monkeypatch) -> None:
    import re

    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await submit_prompt(pilot, "w1 w2 w3 w4")
        await press(pilot, "n")
        assert app.no_color
        svg = app.export_screenshot()
        window_chrome = {"#ff5f57", "#febc2e", "#28c840", "#c5c8c6"}
        fills = set(re.findall(r'fill="#([0-9a-fA-F]{6})"', svg)) - {c[1:] for c in window_chrome}
        for fill in fills:
            r, g, b = (int(fill[i : i + 2], 16) for i in (0, 2, 4))
            assert r == g == b, f"colour #{fill} under NO_COLOR"
        # the attention pattern still reads: shades, not colours, carry the weights
        text = main(app).query_one(AttentionHeatmap).text()
        assert "██" in text and ("░░" in text or "▒▒" in text)


async def test_claims_are_checked_against_the_model_and_the_labels(make_app, tmp_path: Path) -> None:
    theory = tmp_path / "claims.theory"
    theory.write_text(
        'input a: int in 0..9\nprompt "w{a} w{a + 1}"\nexpect "w" + str(a + 2)\n'
        'claim label L0.H1 "copies"\n'
        'claim label L0.H2 "copies"\n'
        "claim attends L0.H0 from -1 to 0 above 0.0\n"
    )
    app = make_app(theory_path=theory)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        screen = main(app)
        screen.run_labels(lambda: screen.workbench.save_label("L0.H1", "copies"), "L0.H1")
        await settle(pilot)
        await press(pilot, "ctrl+r")
        text = rendered(screen.query_one("#agreement"))
        assert "Claims: 2 of 3 hold" in text
        assert '✓ label L0.H1 "copies"' in text  # read from the label store the app is bound to
        assert '✗ label L0.H2 "copies"' in text
        assert "✓ attends L0.H0 from -1 to 0 above 0.0" in text


# ---- suggested labels (issue 8): one key to accept


async def test_suggested_head_labels_are_accepted_in_one_key(tmp_path: Path) -> None:
    from tui_interp.tui.app import create_app
    from tui_interp.tui.screens.dialogs import SuggestDialog

    model = Path(__file__).resolve().parents[2] / "sample_models" / "induction-2l"
    labels = tmp_path / "labels.json"
    app = create_app(model, labels_path=labels)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        main(app).query_one(ComponentTree).focus()  # keys typed in the prompt box are text
        await pilot.press("s")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, SuggestDialog)
        best = dialog.suggestions[0]
        assert best.name == "induction head" and best.score > 0.9
        assert "previous-token head" in {s.name for s in dialog.suggestions}
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SuggestDialog)  # it stays open for the next one
        [label] = json.loads(labels.read_text())["labels"]
        assert (label["component"], label["name"]) == (best.component, "induction head")
        assert label["tags"] == ["suggested"] and label["evidence"][0]["value"] > 0.9
        second = dialog.suggestions[1]
        await pilot.press("enter")  # the cursor moved to the next suggestion
        await settle(pilot)
        assert {lab["component"] for lab in json.loads(labels.read_text())["labels"]} == {best.component, second.component}
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, MainScreen)
