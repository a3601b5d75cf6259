"""The workbench: prompt, step bar, component tree, step view and the theory side panel.

The screen is the one controller: it runs every core call in a thread worker (torch never runs
on the UI thread), receives results as messages, and hands them down to widgets as attributes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input
from textual.worker import Worker, WorkerState, get_current_worker

from tui_interp.components import parse_component
from tui_interp.engine.workbench import LabelsView, StepView, Workbench, can_ablate, step_of
from tui_interp.errors import TuiInterpError
from tui_interp.model.tokenizer import display_text
from tui_interp.theory import Diagnostic
from tui_interp.tui import messages as m
from tui_interp.tui.screens.dialogs import (
    AblateDialog,
    ConfirmDialog,
    DLADialog,
    KeysDialog,
    LabelDialog,
    LabelInput,
    SaveAsDialog,
    SuggestDialog,
)
from tui_interp.tui.text import plain
from tui_interp.tui.widgets.component_tree import ComponentTree
from tui_interp.tui.widgets.header import ModelHeader
from tui_interp.tui.widgets.interventions import InterventionList
from tui_interp.tui.widgets.prompt import PromptInput
from tui_interp.tui.widgets.step_view import StepPanel
from tui_interp.tui.widgets.stepbar import StepBar
from tui_interp.tui.widgets.theory_panel import TheoryPanel

log = logging.getLogger(__name__)

# (action, title, help): the command palette offers each one that makes sense at the moment.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("focus_prompt", "Edit the prompt", "Move the cursor to the prompt box (/)"),
    ("step(1)", "Next step", "Run the next step of the forward pass (n, →)"),
    ("step(-1)", "Previous step", "Go back one step (p, ←)"),
    ("goto('first')", "First step", "Go to the embedding step (g, home)"),
    ("goto('last')", "Last step", "Run to the end of the pass (G, end)"),
    ("head(1)", "Next head", "Show the next attention head of this layer (])"),
    ("head(-1)", "Previous head", "Show the previous attention head of this layer ([)"),
    ("ablate", "Ablate the selected component", "Zero, mean or resample ablation (a)"),
    ("undo_intervention", "Remove the last intervention", "Undo the most recent ablation (u)"),
    ("clear_interventions", "Remove all interventions", "Back to the clean model (U)"),
    ("label", "Label the selected component", "Name, note and tags, saved at once (l)"),
    ("dla", "Direct logit attribution", "Each component's direct effect on the prediction (d)"),
    ("suggest", "Suggest head labels", "Match each head's attention to known patterns; enter accepts one (s)"),
    ("toggle_theory", "Show or hide the theory panel", "The theory editor and comparison (t, ctrl+t)"),
    ("compare", "Compare the theory with the model", "Run the theory over its domain (ctrl+r)"),
    ("cancel_compare", "Cancel the comparison", "Stop the running comparison (escape)"),
    ("save_theory", "Save the theory", "Write the theory file (ctrl+s)"),
    ("show_keys", "Show the keys", "The key bindings of what has focus (?)"),
    ("quit", "Quit", "Leave tui-interp (q)"),
)


KEY_NAMES = {
    "right": "→", "left": "←", "right_square_bracket": "]", "left_square_bracket": "[",
    "question_mark": "?", "slash": "/", "escape": "esc", "home": "home", "end": "end",
}
OTHER_KEYS = (
    ("", "Elsewhere"),
    ("enter", "in the prompt: run it; in the tree: go to that component's step"),
    ("space", "in the tree: expand or collapse"),
    ("x, delete", "in the interventions list: remove the highlighted one"),
    ("enter", "on a counterexample: load it as the prompt"),
    ("tab", "next pane (shift+tab: previous)"),
    ("ctrl+p", "command palette: every action by name, themes"),
    ("ctrl+q", "quit at once"),
)


def _key_text(keys: str) -> str:
    return ", ".join(KEY_NAMES.get(k, k.replace("ctrl+", "^")) for k in keys.split(","))


def keys_table() -> list[tuple[str, str]]:
    """(keys, what they do) for the keys panel, from the bindings and the palette's help text."""
    by_action = {b.action: b for b in MainScreen.BINDINGS if isinstance(b, Binding)}
    rows: list[tuple[str, str]] = [("", "Workbench")]
    for action, title, _ in COMMANDS:
        binding = by_action.get(action)
        if binding is not None:
            rows.append((_key_text(binding.key), title))
    return rows + list(OTHER_KEYS)


class MainScreen(Screen[None]):
    HORIZONTAL_BREAKPOINTS = [(0, "-tiny"), (80, "-narrow"), (120, "-wide")]

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n,right", "step(1)", "Next", key_display="n"),
        Binding("p,left", "step(-1)", "Prev", key_display="p"),
        Binding("g,home", "goto('first')", "First step", show=False),
        Binding("G,end", "goto('last')", "Last step", show=False),
        Binding("right_square_bracket", "head(1)", "Next head", show=False),
        Binding("left_square_bracket", "head(-1)", "Previous head", show=False),
        Binding("a", "ablate", "Ablate"),
        Binding("u", "undo_intervention", "Undo ablation", show=False),
        Binding("U", "clear_interventions", "Clear ablations", show=False),
        Binding("l", "label", "Label"),
        Binding("d", "dla", "DLA"),
        Binding("s", "suggest", "Suggest labels", show=False),
        Binding("t,ctrl+t", "toggle_theory", "Theory", key_display="t"),  # ctrl+t works from the editor too
        Binding("ctrl+r", "compare", "Compare", key_display="^r"),
        Binding("ctrl+s", "save_theory", "Save theory", show=False),
        Binding("escape", "cancel_compare", "Cancel compare", show=False),
        Binding("slash", "focus_prompt", "Prompt", show=False),
        Binding("question_mark", "show_keys", "Keys", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, workbench: Workbench) -> None:
        super().__init__()
        self.workbench = workbench
        self.selected: str | None = None  # the component under the tree's cursor
        self.view: StepView | None = None
        self.labels = LabelsView()
        self.diagnostics: list[Diagnostic] = []
        self.theory_saved_text = ""
        self.comparing = False
        self.pending_prompt: str | None = None
        self.loaded = False
        self.failed = False

    # ---- layout

    def compose(self) -> ComposeResult:
        yield ModelHeader(id="header")
        yield PromptInput(placeholder="Prompt: type text and press enter", id="prompt", compact=True)
        yield StepBar(id="stepbar")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield ComponentTree(id="tree")
                yield InterventionList(id="interventions")
            yield StepPanel(id="step")
            yield TheoryPanel(id="theory")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(InterventionList).set_interventions(())
        header = self.query_one(ModelHeader)
        if self.workbench.checkpoint is not None:
            header.header = self.workbench.header()  # opened by the caller: no I/O here
        header.status = "loading weights…"
        if self.workbench.theory_path is not None:
            self.query_one(TheoryPanel).file_name = self.workbench.theory_path.name
        self.query_one("#prompt", Input).focus()
        self.open_model()

    # ---- workers: every core call runs here, off the UI thread

    @work(thread=True, exclusive=True, group="open", exit_on_error=False)
    def open_model(self) -> None:
        s = self.workbench
        try:
            self.post_message(m.HeaderReady(s.open()))
        except TuiInterpError as e:
            self.post_message(m.OpenFailed(str(e)))
            return
        try:
            self.post_message(m.LabelsReady(s.read_labels()))
        except TuiInterpError as e:
            self.post_message(m.CoreError(f"labels: {e}", title="Labels"))
        try:
            text = s.read_theory()
            self.post_message(m.TheoryText(text, s.example_prompt(text) if text else None))
        except TuiInterpError as e:
            self.post_message(m.CoreError(str(e), title="Theory"))
        try:
            self.post_message(m.ModelLoaded(s.load()))
        except TuiInterpError as e:
            self.post_message(m.OpenFailed(str(e)))

    @work(thread=True, exclusive=True, group="step", exit_on_error=False)
    def run_step(self, call: Callable[[], StepView]) -> None:
        worker = get_current_worker()
        try:
            view = call()
        except TuiInterpError as e:
            self.post_message(m.CoreError(str(e)))
            return
        if not worker.is_cancelled:
            self.post_message(m.StepReady(view))

    @work(thread=True, exclusive=True, group="prefetch", exit_on_error=False)
    def run_prefetch(self) -> None:
        """Compute the next steps' logit lens while the user reads this one."""
        worker = get_current_worker()
        self.workbench.prefetch(lambda: worker.is_cancelled)

    @work(thread=True, group="labels", exit_on_error=False)
    def run_labels(self, call: Callable[[], LabelsView], saved: str | None) -> None:
        try:
            self.post_message(m.LabelsReady(call(), saved))
        except TuiInterpError as e:
            self.post_message(m.CoreError(str(e), title="Labels"))

    @work(thread=True, exclusive=True, group="dla", exit_on_error=False)
    def run_dla(self) -> None:
        try:
            self.post_message(m.AttributionReady(self.workbench.dla()))
        except TuiInterpError as e:
            self.post_message(m.CoreError(str(e)))

    @work(thread=True, exclusive=True, group="suggest", exit_on_error=False)
    def run_suggest(self, theory_text: str) -> None:
        try:
            self.post_message(m.SuggestionsReady(self.workbench.suggest_labels(theory_text)))
        except TuiInterpError as e:
            self.post_message(m.CoreError(str(e), title="Suggestions"))

    @work(thread=True, exclusive=True, group="diagnostics", exit_on_error=False)
    def run_check(self, text: str) -> None:
        worker = get_current_worker()
        diagnostics = self.workbench.check_theory(text)
        if not worker.is_cancelled:
            self.post_message(m.DiagnosticsReady(text, diagnostics))

    @work(thread=True, exclusive=True, group="compare", exit_on_error=False)
    def run_compare(self, text: str) -> None:
        worker = get_current_worker()
        try:
            result = self.workbench.compare(
                text,
                progress=lambda info: self.post_message(m.CompareProgress(info)),
                cancelled=lambda: worker.is_cancelled,
            )
        except TuiInterpError as e:
            self.post_message(m.CoreError(str(e), title="Compare"))
            result = None
        self.post_message(m.CompareDone(None if worker.is_cancelled else result))

    @work(thread=True, group="save", exit_on_error=False)
    def run_save_theory(self, text: str, path: str | None) -> None:
        try:
            saved = self.workbench.save_theory(text, path)
        except TuiInterpError as e:
            self.post_message(m.CoreError(str(e), title="Theory"))
            return
        self.app.call_from_thread(self._theory_saved, text, saved)

    def _theory_saved(self, text: str, path: Path) -> None:
        self.theory_saved_text = text
        panel = self.query_one(TheoryPanel)
        panel.file_name = path.name
        panel.modified = panel.text != text
        self.notify(f"saved {plain(str(path))}", title="Theory")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            log.error("worker %s failed", event.worker.name, exc_info=error)
            self.notify(plain(f"{type(error).__name__}: {error}"), title="Internal error", severity="error", timeout=10)
            if event.worker.group == "compare":
                self._compare_finished()

    # ---- results coming back

    def on_header_ready(self, message: m.HeaderReady) -> None:
        self.query_one(ModelHeader).header = message.header
        self.query_one(ComponentTree).build(self.workbench.components())
        tree = self.query_one(ComponentTree)
        tree.set_labels(self.labels.labels)
        prompt = self.query_one("#prompt", Input)
        if not message.header.has_tokenizer:
            prompt.placeholder = "Prompt: token ids, e.g. 1, 2, 3 (this model has no tokenizer.json), then enter"

    def on_model_loaded(self, message: m.ModelLoaded) -> None:
        self.loaded = True
        header = self.query_one(ModelHeader)
        header.header = message.header
        header.status = ""
        if self.pending_prompt is not None:
            text, self.pending_prompt = self.pending_prompt, None
            self._submit_prompt(text)
        self.refresh_bindings()

    def on_open_failed(self, message: m.OpenFailed) -> None:
        self.failed = True
        self.query_one(ModelHeader).status = "failed to open"
        self.notify(plain(message.message), title="Cannot open the model", severity="error", timeout=30)
        self.query_one(StepPanel).query_one("#summary").update(f"[b]Cannot open the model[/]\n{plain(message.message)}")
        self.refresh_bindings()

    def on_step_ready(self, message: m.StepReady) -> None:
        self._show_view(message.view)

    def _show_view(self, view: StepView) -> None:
        previous, self.view = self.view, view
        if previous is None or previous.run != view.run:
            self.run_prefetch()  # a new prompt or new interventions: their steps are not computed yet
        bar = self.query_one(StepBar)
        bar.steps = view.steps
        bar.index = view.index
        panel = self.query_one(StepPanel)
        panel.labels = self.labels.labels
        panel.view = view
        self.query_one(InterventionList).set_interventions(view.interventions)
        self.query_one(ComponentTree).set_ablated(view.interventions)
        bindings_state = (view.attention is not None, bool(view.interventions))
        if previous is None or bindings_state != (previous.attention is not None, bool(previous.interventions)):
            self.refresh_bindings()  # the footer redraws itself: only when what is enabled changed

    def on_labels_ready(self, message: m.LabelsReady) -> None:
        self.labels = message.labels
        self.query_one(ComponentTree).set_labels(message.labels.labels)
        panel = self.query_one(StepPanel)
        panel.labels = message.labels.labels
        for warning in message.labels.warnings:
            self.notify(plain(warning), title="Labels", severity="warning", timeout=10)
        if message.saved:
            self.notify(f"{plain(message.saved)} saved to {plain(Path(message.labels.path).name)}", title="Labels")

    def on_theory_text(self, message: m.TheoryText) -> None:
        self.theory_saved_text = message.text
        panel = self.query_one(TheoryPanel)
        panel.load_text(message.text)
        if message.example:
            prompt = self.query_one("#prompt", Input)
            prompt.placeholder = f"Prompt, e.g. {display_text(message.example)} (enter runs it)"  # plain text, not markup
        if message.text:
            self.run_check(message.text)
        else:
            panel.show_diagnostics([])

    def on_diagnostics_ready(self, message: m.DiagnosticsReady) -> None:
        panel = self.query_one(TheoryPanel)
        if message.text != panel.text:
            return  # stale: the user typed since
        self.diagnostics = message.diagnostics
        panel.show_diagnostics(message.diagnostics)
        self.refresh_bindings()

    def on_compare_progress(self, message: m.CompareProgress) -> None:
        if self.comparing:
            self.query_one(TheoryPanel).show_progress(message.info)

    def on_compare_done(self, message: m.CompareDone) -> None:
        self._compare_finished()
        self.query_one(TheoryPanel).show_result(message.result)

    def _compare_finished(self) -> None:
        self.comparing = False
        self.query_one(TheoryPanel).comparing(False)
        self.refresh_bindings()

    def on_attribution_ready(self, message: m.AttributionReady) -> None:
        def chosen(component: str | None) -> None:
            if component:
                self._select(component, jump=True)

        self.app.push_screen(DLADialog(message.view, self.labels.labels), chosen)

    def on_suggestions_ready(self, message: m.SuggestionsReady) -> None:
        workbench = self.workbench

        def chosen(suggestion: Any) -> None:
            if suggestion is not None:
                self.run_labels(lambda: workbench.accept_suggestion(suggestion), suggestion.component)

        self.app.push_screen(SuggestDialog(message.suggestions, self.labels.labels), chosen)

    def on_core_error(self, message: m.CoreError) -> None:
        self.notify(plain(message.message), title=message.title, severity="error", timeout=8)

    # ---- what widgets report

    @on(Input.Submitted, "#prompt")
    def _prompt_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit_prompt(event.value)
        if self.loaded and event.value.strip():
            self.query_one(ComponentTree).focus()  # so that n, p, a, l work at once

    def _submit_prompt(self, text: str) -> None:
        if not text.strip():
            self.notify("type a prompt first", severity="warning")
            return
        if not self.loaded:
            self.pending_prompt = text
            self.notify("the model is still loading: the prompt runs as soon as it is ready")
            return
        self.query_one("#prompt", Input).value = text
        focus = self.selected
        self.run_step(lambda: self.workbench.set_prompt(text, focus=focus))

    def on_component_focused(self, message: m.ComponentFocused) -> None:
        self.selected = message.component
        self.refresh_bindings()
        if self.view is None:
            return
        if message.jump:
            self._jump_to(message.component)
        elif self._is_head_of_current_layer(message.component):
            component = message.component
            self.run_step(lambda: self.workbench.view(focus=component))

    def _is_head_of_current_layer(self, component: str) -> bool:
        view = self.view
        if view is None or view.attention is None:
            return False
        try:
            c = parse_component(component)
        except TuiInterpError:
            return False
        return c.kind == "head" and c.layer == view.attention.layer and c.index != view.attention.head

    def _jump_to(self, component: str) -> None:
        step = step_of(component)
        self.run_step(lambda: self.workbench.move(to=step, focus=component))

    def _select(self, component: str, *, jump: bool) -> None:
        tree = self.query_one(ComponentTree)
        if tree.select_component(component):
            tree.focus()
        self.selected = component
        if jump and self.view is not None:
            self._jump_to(component)

    def on_step_chosen(self, message: m.StepChosen) -> None:
        index, focus = message.index, self.selected
        if self.view is not None:
            self.run_step(lambda: self.workbench.move(to=index, focus=focus))

    def on_intervention_removed(self, message: m.InterventionRemoved) -> None:
        index, focus = message.index, self.selected
        self.run_step(lambda: self.workbench.remove_intervention(index, focus=focus))

    def on_theory_edited(self, message: m.TheoryEdited) -> None:
        panel = self.query_one(TheoryPanel)
        panel.modified = message.text != self.theory_saved_text
        self.run_check(message.text)

    def on_compare_requested(self, message: m.CompareRequested) -> None:
        if self.comparing:
            self.action_cancel_compare()
        else:
            self.action_compare()

    def on_counterexample_chosen(self, message: m.CounterexampleChosen) -> None:
        if not self.has_class("-wide"):
            self.remove_class("-theory")
        self._submit_prompt(message.prompt)
        self.query_one(StepPanel).focus()

    # ---- actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        has_view = self.view is not None
        if action in ("step", "goto"):
            return has_view or None
        if action == "head":
            return (has_view and self.view is not None and self.view.attention is not None) or None
        if action == "ablate":
            return (has_view and can_ablate(self.selected)) or None
        if action in ("undo_intervention", "clear_interventions"):
            return (has_view and self.view is not None and bool(self.view.interventions)) or None
        if action == "dla":
            return has_view or None
        if action == "suggest":
            return (self.loaded and self.workbench.store is not None) or None
        if action == "label":
            return (self.selected is not None and self.workbench.store is not None) or None
        if action == "compare":
            errors = any(d.is_error for d in self.diagnostics)
            return (self.loaded and not self.comparing and not errors and bool(self._theory_text().strip())) or None
        if action == "cancel_compare":
            return self.comparing
        return True

    def _theory_text(self) -> str:
        return self.query_one(TheoryPanel).text if self.is_mounted else ""

    def action_step(self, delta: int) -> None:
        focus = self.selected
        self.run_step(lambda: self.workbench.move(delta, focus=focus))

    def action_goto(self, where: str) -> None:
        if self.view is None:
            return
        to = 0 if where == "first" else len(self.view.steps) - 1
        focus = self.selected
        self.run_step(lambda: self.workbench.move(to=to, focus=focus))

    def action_head(self, delta: int) -> None:
        view = self.view
        if view is None or view.attention is None:
            return
        n_heads = self.workbench.config.n_heads
        head = (view.attention.head + delta) % n_heads
        self._select(f"L{view.attention.layer}.H{head}", jump=False)
        component = f"L{view.attention.layer}.H{head}"
        self.run_step(lambda: self.workbench.view(focus=component))

    def action_ablate(self) -> None:
        component = self.selected
        if not can_ablate(component):
            return
        assert component is not None

        def chosen(mode: str | None) -> None:
            if mode:
                self.run_step(lambda: self.workbench.ablate(component, mode, focus=component))

        self.app.push_screen(AblateDialog(component), chosen)

    def action_undo_intervention(self) -> None:
        if self.view is None or not self.view.interventions:
            return
        index, focus = len(self.view.interventions) - 1, self.selected
        self.run_step(lambda: self.workbench.remove_intervention(index, focus=focus))

    def action_clear_interventions(self) -> None:
        focus = self.selected
        self.run_step(lambda: self.workbench.clear_interventions(focus=focus))

    def action_label(self) -> None:
        component = self.selected
        if component is None:
            return

        def chosen(result: LabelInput | None) -> None:
            if result is None:
                return
            s = self.workbench
            if result.remove:
                self.run_labels(lambda: s.remove_label(result.component), None)
            else:
                self.run_labels(
                    lambda: s.save_label(result.component, result.name, note=result.note, tags=result.tags),
                    result.component,
                )

        self.app.push_screen(LabelDialog(component, self.labels.labels.get(component)), chosen)

    def action_dla(self) -> None:
        if self.view is not None:
            self.run_dla()

    def action_suggest(self) -> None:
        self.notify("measuring attention patterns...", timeout=2)
        self.run_suggest(self._theory_text())

    def action_toggle_theory(self) -> None:
        self.toggle_class("-theory")
        if self.has_class("-theory"):
            self.query_one(TheoryPanel).editor.focus()
        elif self.view is not None:
            self.query_one(ComponentTree).focus()
        else:
            self.query_one("#prompt", Input).focus()

    def action_compare(self) -> None:
        if not self.check_action("compare", ()):
            if any(d.is_error for d in self.diagnostics):
                self.notify("fix the theory's errors first", title="Compare", severity="warning")
            return
        panel = self.query_one(TheoryPanel)
        if not self.has_class("-theory"):
            self.add_class("-theory")
            if not self.has_class("-wide"):
                panel.editor.focus()  # what had focus is hidden now
        self.comparing = True
        panel.comparing(True)
        self.run_compare(panel.text)
        self.refresh_bindings()

    def action_cancel_compare(self) -> None:
        if self.comparing:
            self.workers.cancel_group(self, "compare")
            self._compare_finished()
            self.query_one(TheoryPanel).show_result(None)

    def action_save_theory(self) -> None:
        text = self._theory_text()
        if self.workbench.theory_path is not None:
            self.run_save_theory(text, None)
            return

        def chosen(path: str | None) -> None:
            if path:
                self.run_save_theory(text, path)

        self.app.push_screen(SaveAsDialog(f"{self.workbench.model_path.name}.theory"), chosen)

    def action_focus_prompt(self) -> None:
        self.query_one("#prompt", Input).focus()

    def action_show_keys(self) -> None:
        self.app.push_screen(KeysDialog(keys_table()))

    async def action_quit(self) -> None:
        panel = self.query_one(TheoryPanel)
        if panel.modified:

            def answer(yes: bool | None) -> None:
                if yes:
                    self.app.exit()

            self.app.push_screen(ConfirmDialog("The theory has unsaved changes. Quit anyway?"), answer)
            return
        self.app.exit()

    def commands(self) -> list[tuple[str, str, str]]:
        """The palette entries that make sense now: (action, title, help)."""
        out = []
        for action, title, help_text in COMMANDS:
            name = action.partition("(")[0]
            if self.check_action(name, ()):
                out.append((action, title, help_text))
        return out
