"""Snapshots of the main screens at 80×24 and 160×48 (pytest-textual-snapshot).

Deterministic: a tiny model built from a fixed seed, fixed prompts, no timings, no paths (the
theory and label files are named, never shown with their directories), toasts cleared."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_pilot import settle, submit_prompt

from tui_interp.tui.widgets.component_tree import ComponentTree

SMALL, LARGE = (80, 24), (160, 48)


async def _quiet(pilot) -> None:
    """No toasts, and text cursors that do not blink (a blink would make the picture timing-dependent)."""
    pilot.app.clear_notifications()
    for box in pilot.app.screen.query("Input, TextArea"):
        box.cursor_blink = False
    await pilot.pause()


def _at_attention_step(label_first: bool = False):
    async def run_before(pilot) -> None:
        await settle(pilot)
        await submit_prompt(pilot, "w1 w2 w3 w4 w5")
        await pilot.press("n")
        await settle(pilot)
        await _quiet(pilot)

    return run_before


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_attention_step(snap_compare, make_app, size) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=_at_attention_step())


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_opening_screen(snap_compare, make_app, size) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        await _quiet(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_mlp_step_with_ablation_and_label(snap_compare, make_app, labels_file: Path, size) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        screen = pilot.app.screen
        session = screen.workbench
        session.save_label("L0.H1", "copies [b]previous", note="", tags=())
        screen.run_labels(session.read_labels, None)
        await settle(pilot)
        await submit_prompt(pilot, "w1 w2 w3 w4 w5")
        tree = screen.query_one(ComponentTree)
        tree.select_component("L0.H1")
        await pilot.pause()
        await pilot.press("a", "z")
        await settle(pilot)
        await pilot.press("n", "n")
        await settle(pilot)
        await _quiet(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_theory_panel_after_compare(snap_compare, make_app, theory_file: Path, size) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        await submit_prompt(pilot, "w1 w2 w3")
        await pilot.press("ctrl+r")
        await settle(pilot)
        await _quiet(pilot)

    assert snap_compare(make_app(theory_path=theory_file), terminal_size=size, run_before=run_before)


def test_theory_with_an_error(snap_compare, make_app, theory_file: Path) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("ctrl+t")
        editor = pilot.app.screen.query_one("#theory-editor")
        editor.move_cursor((3, len(editor.document.get_line(3))))
        await pilot.press(*" + c")  # c is no input: an error at line 4
        await pilot.pause(0.3)
        await settle(pilot)
        await _quiet(pilot)

    assert snap_compare(make_app(theory_path=theory_file), terminal_size=SMALL, run_before=run_before)


def test_label_dialog(snap_compare, make_app) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        tree = pilot.app.screen.query_one(ComponentTree)
        tree.focus()
        tree.select_component("L1.H3")
        await pilot.pause()
        await pilot.press("l", *"induction?")
        await _quiet(pilot)

    assert snap_compare(make_app(), terminal_size=SMALL, run_before=run_before)


def test_attribution_dialog(snap_compare, make_app) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        await submit_prompt(pilot, "w1 w2 w3")
        await pilot.press("d")
        await settle(pilot)
        await _quiet(pilot)

    assert snap_compare(make_app(), terminal_size=SMALL, run_before=run_before)


@pytest.mark.parametrize("theme", ["light", "high-contrast", "ansi-16"])
def test_themes(snap_compare, make_app, theme: str) -> None:
    assert snap_compare(make_app(theme=theme), terminal_size=SMALL, run_before=_at_attention_step())


# ---- issue 17: the new views, the key bar, the cursor, the results on the whole screen


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_long_prompt_with_the_position_cursor_moved(snap_compare, make_app, size) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        await submit_prompt(pilot, " ".join(f"w{i}" for i in range(40)))
        await pilot.press("n", *["comma"] * 12)
        await settle(pilot)
        await _quiet(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_lens_view(snap_compare, make_app, size) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        await submit_prompt(pilot, " ".join(f"w{i}" for i in range(12)))
        await pilot.press("2")
        await settle(pilot)
        await _quiet(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_patching_view(snap_compare, make_app, size) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        await submit_prompt(pilot, "w1 w2 w3 w4 w5 w6")
        await pilot.press("3")
        await settle(pilot)
        pilot.app.screen.query_one("#patch-corrupt").value = "w1 w2 w9 w4 w5 w6"
        await pilot.press("enter")
        await settle(pilot)
        await _quiet(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_theory_results_on_the_whole_screen(snap_compare, make_app, theory_file: Path, size) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("escape", "ctrl+r")
        await settle(pilot)
        await pilot.press("f")
        await settle(pilot)
        await _quiet(pilot)

    assert snap_compare(make_app(theory_path=theory_file), terminal_size=size, run_before=run_before)


def test_keys_panel(snap_compare, make_app) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("escape", "question_mark")
        await _quiet(pilot)

    assert snap_compare(make_app(), terminal_size=SMALL, run_before=run_before)


def test_ablate_dialog_with_its_reference_and_keys(snap_compare, make_app) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        await submit_prompt(pilot, "w1 w2 w3")
        pilot.app.screen.query_one(ComponentTree).select_component("L0.mlp")
        await pilot.pause()
        await pilot.press("a")
        await _quiet(pilot)

    assert snap_compare(make_app(), terminal_size=SMALL, run_before=run_before)


def test_neurons_in_the_component_tree(snap_compare, make_app) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        await submit_prompt(pilot, "w1 w2 w3")
        tree = pilot.app.screen.query_one(ComponentTree)
        tree.select_component("L1.mlp")
        await pilot.pause()
        await pilot.press("space")
        await settle(pilot)
        await _quiet(pilot)

    assert snap_compare(make_app(), terminal_size=SMALL, run_before=run_before)


# ---- issues 14, 15, 16: recover, audit, diff


async def _until(pilot, condition, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await settle(pilot)
        await pilot.pause(0.1)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_recovered_candidates(snap_compare, tmp_path: Path, labels_file: Path, size) -> None:
    import shutil

    from tui_interp.tui.app import create_app
    from tui_interp.tui.screens.dialogs import RecoverDialog

    samples = Path(__file__).resolve().parents[2] / "sample_models" / "modadd-grokked"
    for name in ("modadd.question", "train.jsonl"):
        shutil.copy(samples / name, tmp_path / name)

    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("ctrl+t", "ctrl+g")
        await _until(pilot, lambda: isinstance(pilot.app.screen, RecoverDialog))
        for box in pilot.app.screen_stack[-2].query("Input, TextArea"):  # the editor shows behind the dialog
            box.cursor_blink = False
        await _quiet(pilot)

    app = create_app(samples, theory_path=tmp_path / "modadd.question", labels_path=labels_file)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_audit_view(snap_compare, make_app, tmp_path: Path, edited_model: Path, size) -> None:
    from tui_pilot import THEORY

    (tmp_path / "train.jsonl").write_text("".join(f'{{"a": {a}, "answer": "w{a}"}}\n' for a in range(6)))
    theory = tmp_path / "next.theory"
    theory.write_text(THEORY.replace("expect", 'split train from "train.jsonl"\nexpect'))

    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("escape", "A")
        await _until(pilot, lambda: not pilot.app.screen.auditing)
        await _quiet(pilot)

    assert snap_compare(make_app(theory_path=theory, compare_with=edited_model), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "160x48"])
def test_diff_with_model_b(snap_compare, make_app, labelled_b: Path, size) -> None:
    async def run_before(pilot) -> None:
        screen = pilot.app.screen
        await settle(pilot)
        screen.workbench.save_label("L0.H1", "A's name")
        screen.run_labels(screen.workbench.read_labels, None)
        await _until(pilot, lambda: screen.diff_result is not None)
        await submit_prompt(pilot, "w1 w2 w3 w4")
        await pilot.press("n", "n", "n")
        await _until(pilot, lambda: screen.other_view is not None and screen.other_view.index == 3)
        if size == SMALL:
            await pilot.press("b")  # B in place of A
        await settle(pilot)
        await _quiet(pilot)

    assert snap_compare(make_app(diff_with=labelled_b), terminal_size=size, run_before=run_before)
