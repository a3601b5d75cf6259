"""The workbench: prompt, step bar, component tree, the step / lens / patching views, and the
theory side panel.

The screen is the one controller: it runs every core call in a thread worker (torch never runs
on the UI thread), receives results as messages, and hands them down to widgets as attributes.

Keys are never lost: step requests go through a StepQueue that one worker drains, folding a
burst of moves into one computation. Focus follows one model (see FOCUS_HELP): in a text box
every printable key types and escape returns to the workbench; elsewhere single-letter keys act.
The discovery tools (rule recovery, the audit view, model B of a diff) are in discovery.py.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import ContentSwitcher, Input
from textual.worker import Worker, WorkerState

from tui_interp.components import parse_component
from tui_interp.engine.workbench import (
    RECOVER_SECONDS,
    LabelsView,
    LensView,
    PatchView,
    StepView,
    TheoryInfo,
    Workbench,
    can_ablate,
    step_of,
)
from tui_interp.errors import TuiInterpError
from tui_interp.model.tokenizer import display_text
from tui_interp.theory import Diagnostic
from tui_interp.tui import messages as m
from tui_interp.tui.keys import COMMANDS, VIEW_TITLES, VIEWS
from tui_interp.tui.keys import keys_table as _keys_table
from tui_interp.tui.keys import keys_text as _key_text
from tui_interp.tui.screens.dialogs import (
    CHANGE_REFERENCE,
    AblateDialog,
    ConfirmDialog,
    DLADialog,
    KeysDialog,
    LabelDialog,
    LabelInput,
    PatchDialog,
    PatchInput,
    ReferenceDialog,
    SaveAsDialog,
    SuggestDialog,
)
from tui_interp.tui.screens.discovery import Discovery
from tui_interp.tui.screens.workers import CoreWorkers
from tui_interp.tui.stepqueue import Latest, StepQueue
from tui_interp.tui.text import plain
from tui_interp.tui.widgets.audit_view import AuditPanel
from tui_interp.tui.widgets.component_tree import ComponentTree
from tui_interp.tui.widgets.header import ModelHeader
from tui_interp.tui.widgets.interventions import InterventionList
from tui_interp.tui.widgets.keybar import KeyBar, is_typing
from tui_interp.tui.widgets.lens_view import LensPanel
from tui_interp.tui.widgets.patch_view import PatchPanel
from tui_interp.tui.widgets.prompt import PromptInput
from tui_interp.tui.widgets.step_view import StepPanel
from tui_interp.tui.widgets.stepbar import StepBar
from tui_interp.tui.widgets.theory_panel import TheoryPanel, TheoryResults

log = logging.getLogger(__name__)


def keys_table() -> list[tuple[str, str]]:
    """The keys panel's rows for the workbench."""
    return _keys_table(MainScreen.BINDINGS)


class MainScreen(Discovery, CoreWorkers, Screen[None]):
    HORIZONTAL_BREAKPOINTS = [(0, "-tiny"), (80, "-narrow"), (120, "-wide")]
    ALLOW_IN_MAXIMIZED_VIEW = "KeyBar"

    # In the order of the key bar's priority: at 80 columns the last ones are left out.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n,right", "step(1)", "Next"),
        Binding("p,left", "step(-1)", "Prev"),
        Binding("a", "ablate", "Ablate"),
        Binding("l", "label", "Label"),
        Binding("d", "dla", "DLA"),
        Binding("b", "toggle_other", "A/B"),  # on the bar only with a model B
        Binding("t", "toggle_theory", "Theory"),
        Binding("ctrl+t", "toggle_theory", "Theory"),  # works from the editor and the prompt too
        Binding("ctrl+r", "compare", "Compare"),
        Binding("ctrl+g", "recover", "Recover"),  # on the bar with the theory panel
        Binding("escape", "escape", "Back"),
        Binding("q", "quit", "Quit"),
        Binding("f", "maximize_pane", "Full"),
        Binding("ctrl+s", "save_theory", "Save"),
        Binding("A", "audit", "Audit"),
        Binding("D", "diff", "Diff"),  # on the bar only with a model B
        Binding("g,home", "goto('first')", "First step", show=False),
        Binding("G,end", "goto('last')", "Last step", show=False),
        Binding("right_square_bracket", "head(1)", "Next head", show=False),
        Binding("left_square_bracket", "head(-1)", "Previous head", show=False),
        Binding("full_stop", "cursor(1)", "Position →", show=False),
        Binding("comma", "cursor(-1)", "Position ←", show=False),
        Binding("less_than_sign", "cursor_to('first')", "First position", show=False),
        Binding("greater_than_sign", "cursor_to('last')", "Last position", show=False),
        Binding("1", "show_view('step')", "Step view", show=False),
        Binding("2", "show_view('lens')", "Lens view", show=False),
        Binding("3", "show_view('patch')", "Patching view", show=False),
        Binding("e", "patch_setup", "Patching", show=False),
        Binding("u", "undo_intervention", "Undo ablation", show=False),
        Binding("U", "clear_interventions", "Clear ablations", show=False),
        Binding("R", "reference", "Ablation reference", show=False),
        Binding("s", "suggest", "Suggest labels", show=False),
        Binding("slash", "focus_prompt", "Prompt", show=False),
        Binding("question_mark", "show_keys", "Keys"),
        Binding("f1", "show_keys", "Keys", show=False),
    ]

    recover_seconds = RECOVER_SECONDS

    def __init__(self, workbench: Workbench, *, peer: Workbench | None = None, other: Workbench | None = None) -> None:
        """`peer`: a model audited beside this one; `other`: model B of a diff (both not yet opened)."""
        super().__init__()
        self.workbench = workbench
        self.selected: str | None = None  # the component under the tree's cursor
        self.view: StepView | None = None
        self.labels = LabelsView()
        self.diagnostics: list[Diagnostic] = []
        self.theory_info: TheoryInfo | None = None
        self.theory_saved_text = ""
        self.comparing = False
        self.pending_prompt: str | None = None
        self.loaded = False
        self.failed = False
        self.steps = StepQueue()
        self.cursor = 0  # the position cursor: a token of the prompt, kept across steps
        self.mode = "step"
        self.lens: LensView | None = None
        self.patch: PatchView | None = None
        self.patch_input: PatchInput | None = None
        self.reference = workbench.reference_description
        self._home: Widget | None = None  # where escape returns to: the last workbench pane with focus
        self._prompt_queued = False  # a first prompt is on its way: steps pressed meanwhile follow it
        self._after_load: list[int] = []  # steps pressed while the model loads, behind a pending prompt
        self._ablate_after_reference: str | None = None
        self.follower = Latest()
        self.quitting = False
        self._init_discovery(peer, other)

    # ---- layout

    def compose(self) -> ComposeResult:
        yield ModelHeader(id="header")
        yield PromptInput(placeholder="Prompt: type text and press enter", id="prompt", compact=True)
        yield StepBar(id="stepbar")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield ComponentTree(id="tree")
                yield InterventionList(id="interventions")
            with ContentSwitcher(id="views", initial="step"):
                yield StepPanel(id="step")
                yield LensPanel(id="lens")
                yield PatchPanel(id="patch")
                yield AuditPanel(id="audit")
            with Vertical(id="other-view"):  # as deep as A's: a query for the StepPanel finds A's first
                yield StepPanel(id="step-b")
            yield TheoryPanel(id="theory")
        yield KeyBar(id="keys")

    def on_mount(self) -> None:
        self.query_one(InterventionList).set_interventions(())
        header = self.query_one(ModelHeader)
        if self.workbench.checkpoint is not None:
            header.header = self.workbench.header()  # opened by the caller: no I/O here
        header.status = "loading weights…"
        if self.workbench.theory_path is not None:
            self.query_one(TheoryPanel).file_name = self.workbench.theory_path.name
        self._retitle_views()
        self.query_one("#prompt", Input).focus()
        self.open_model()
        if self.other is not None:
            self._start_other(self.other)

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
            group = event.worker.group
            if group == "compare":
                self._compare_finished()
                self.query_one(TheoryPanel).show_result(None, f"comparison failed: {type(error).__name__}")
            elif group in ("recover", "audit", "diff"):  # the job's state, as if it had failed with a message
                done = {"recover": m.RecoverDone, "audit": m.AuditDone, "diff": m.DiffDone}[group]
                self.post_message(done(None, f"{group} failed: {type(error).__name__}"))

    # ---- results coming back

    def on_header_ready(self, message: m.HeaderReady) -> None:
        self.query_one(ModelHeader).header = message.header
        tree = self.query_one(ComponentTree)
        tree.build(self.workbench.components())
        tree.set_labels(self.labels.labels)
        if self.other is not None and self._other_waits:
            self._other_waits = False
            self.open_other(self.other)
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
            moves, self._after_load = self._after_load, []
            for delta in moves:
                self._queue_move(delta)
        if self.other_loaded:
            self._run_diff()
        self.refresh_bindings()

    def on_open_failed(self, message: m.OpenFailed) -> None:
        self.failed = True
        self.pending_prompt = None
        self.query_one(ModelHeader).status = "failed to open"
        self.notify(plain(message.message), title="Cannot open the model", severity="error", timeout=30)
        self.query_one("#step", StepPanel).query_one("#summary").update(f"[b]Cannot open the model[/]\n{plain(message.message)}")
        self.refresh_bindings()

    def on_step_ready(self, message: m.StepReady) -> None:
        self._show_view(message.view)

    def _show_view(self, view: StepView) -> None:
        previous, self.view = self.view, view
        self._prompt_queued = False
        new_run = previous is None or previous.run != view.run
        if new_run:
            self.run_prefetch()  # a new prompt or new interventions: their steps are not computed yet
            tree = self.query_one(ComponentTree)
            for layer in tree.expanded_mlps:
                self.run_neurons(layer, view.run)
        if previous is None or previous.tokens != view.tokens:
            self.cursor = len(view.tokens) - 1  # a new prompt: the cursor on its last token
        bar = self.query_one(StepBar)
        bar.steps = view.steps
        bar.index = view.index
        panel = self.query_one("#step", StepPanel)
        panel.cursor = self.cursor
        panel.show_view(view, self.labels.labels)
        self._follow_view(view)
        if previous is None or bool(previous.interventions) != bool(view.interventions):
            self._banner()
        listing = self.query_one(InterventionList)
        listing.set_interventions(view.interventions)
        self._show_reference()
        self.query_one(ComponentTree).set_ablated(view.interventions)
        if previous is None or previous.prompt != view.prompt:
            self.lens = None
            if self.mode == "lens":
                self._load_lens()
        bindings_state = (view.attention is not None, bool(view.interventions))
        if previous is None or bindings_state != (previous.attention is not None, bool(previous.interventions)):
            self.refresh_bindings()  # the key bar redraws itself: only when what is enabled changed

    def _show_reference(self) -> None:
        view = self.view
        uses = view is not None and any(spec.endswith((":mean", ":resample")) for spec in view.interventions)
        listing = self.query_one(InterventionList)
        subtitle = f"over {self.reference}" if uses else ""
        if listing.border_subtitle != subtitle:
            listing.border_subtitle = subtitle

    def on_labels_ready(self, message: m.LabelsReady) -> None:
        self.labels = message.labels
        self.query_one(ComponentTree).set_labels(message.labels.labels)
        self.query_one("#step", StepPanel).set_labels(message.labels.labels)
        for warning in message.labels.warnings:
            self.notify(plain(warning), title="Labels", severity="warning", timeout=10)
        if message.saved:
            self.notify(f"{plain(message.saved)} saved to {plain(Path(message.labels.path).name)}", title="Labels")

    def on_neurons_wanted(self, message: m.NeuronsWanted) -> None:
        if self.view is None:
            self.query_one(ComponentTree).set_neurons(message.layer, (), "type a prompt to list its top neurons")
        else:
            self.run_neurons(message.layer, self.view.run)

    def on_neurons_ready(self, message: m.NeuronsReady) -> None:
        if self.view is not None and message.run == self.view.run:
            self.query_one(ComponentTree).set_neurons(message.layer, message.neurons)

    def on_lens_ready(self, message: m.LensReady) -> None:
        if self.view is not None and message.lens.prompt != self.view.prompt:
            return  # stale: the prompt changed since
        self.lens = message.lens
        panel = self.query_one(LensPanel)
        panel.cursor = self.cursor
        note = "the clean model: interventions are not applied here" if self.view is not None and self.view.interventions else ""
        panel.show_lens(message.lens, note)

    def on_patch_ready(self, message: m.PatchReady) -> None:
        panel = self.query_one(PatchPanel)
        if message.patch is None:
            self.notify(plain(message.error), title="Patching", severity="error", timeout=8)
            panel.show_patch(self.patch, "" if self.patch is not None else f"Patching failed: {message.error}\nPress e to try again.")
            return
        self.patch = message.patch
        panel.cursor = min(self.cursor, len(message.patch.clean_tokens) - 1)
        panel.show_patch(message.patch)

    def on_reference_set(self, message: m.ReferenceSet) -> None:
        self.reference = message.description
        self.notify(f"mean and resample ablation now use {plain(message.description)}", title="Ablation reference")
        if message.view is not None:
            self._show_view(message.view)
        self._show_reference()
        component, self._ablate_after_reference = self._ablate_after_reference, None
        if component is not None:
            self._open_ablate(component)

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
        self.theory_info = message.info
        panel.show_diagnostics(message.diagnostics)
        panel.show_info(message.info)
        self.refresh_bindings()
        self._checked(message.text, message.diagnostics)

    def on_compare_progress(self, message: m.CompareProgress) -> None:
        if self.comparing:
            self.query_one(TheoryPanel).show_progress(message.info)

    def on_compare_done(self, message: m.CompareDone) -> None:
        if not self.comparing:
            return  # cancelled by the user: already said so
        self._compare_finished()
        panel = self.query_one(TheoryPanel)
        panel.show_result(message.result, message.note)
        if message.result is not None and message.result.counterexamples:
            panel.table.focus()  # enter loads the highlighted counterexample at once
            panel.table.move_cursor(row=0)
        else:
            panel.query_one("#agreement-scroll").focus()  # out of the editor: f, esc and the letters work

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

        def accept(suggestion: Any) -> None:
            self.run_labels(lambda: workbench.accept_suggestion(suggestion), suggestion.component)

        self.app.push_screen(SuggestDialog(message.suggestions, self.labels.labels, accept))

    def on_core_error(self, message: m.CoreError) -> None:
        self.notify(plain(message.message), title=message.title, severity="error", timeout=8)

    # ---- what widgets report

    @on(Input.Submitted, "#prompt")
    def _prompt_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        left = self._submit_prompt(event.value)
        if left:
            self._to_workbench()  # so that n, p, a, l work at once, also while the model loads
        self.query_one(PromptInput).hand_over(left=left)  # keys typed behind enter follow focus

    def _submit_prompt(self, text: str) -> bool:
        if not text.strip():
            self.notify("type a prompt first", severity="warning")
            return False
        if self.failed:
            self.notify("the model could not be opened: nothing to run the prompt on", severity="error")
            return False
        if not self.loaded:
            self.pending_prompt = text
            self.notify("the model is still loading: the prompt runs as soon as it is ready")
            return True
        self.query_one("#prompt", Input).value = text
        focus = self.selected
        self._prompt_queued = True
        self._queue_call(lambda: self.workbench.set_prompt(text, focus=focus))
        self.refresh_bindings()
        return True

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        widget = event.widget
        if widget is None or is_typing(widget):
            return
        if any(isinstance(a, TheoryPanel) for a in widget.ancestors_with_self):
            return
        self._home = widget

    def on_component_focused(self, message: m.ComponentFocused) -> None:
        self.selected = message.component
        self.refresh_bindings()
        if self.view is None:
            return
        if message.jump:
            self._jump_to(message.component)
        elif self._is_head_of_current_layer(message.component):
            self._queue_move(None)

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
        self._queue_move(str(step_of(component)))

    def _select(self, component: str, *, jump: bool) -> None:
        tree = self.query_one(ComponentTree)
        if tree.select_component(component):
            tree.focus()
        self.selected = component
        if jump and self.view is not None:
            self._jump_to(component)

    def on_step_chosen(self, message: m.StepChosen) -> None:
        if self.view is not None:
            self._queue_move(self.view.steps[message.index])

    def on_intervention_removed(self, message: m.InterventionRemoved) -> None:
        index, focus = message.index, self.selected
        self._queue_call(lambda: self.workbench.remove_intervention(index, focus=focus))

    def on_theory_edited(self, message: m.TheoryEdited) -> None:
        panel = self.query_one(TheoryPanel)
        panel.modified = message.text != self.theory_saved_text
        self.run_check(message.text)

    def on_compare_requested(self, message: m.CompareRequested) -> None:
        if self.recovering:
            self.action_cancel_recover()
        elif self.comparing:
            self.action_cancel_compare()
        else:
            self.action_compare()

    def on_counterexample_chosen(self, message: m.CounterexampleChosen) -> None:
        self.minimize()
        if self._submit_prompt(message.prompt):
            self._to_workbench(close_theory=not self.has_class("-wide"))

    # ---- the focus model

    def _theory_covers(self) -> bool:
        """The theory panel is shown in place of the workbench (below 120 columns)."""
        return self.has_class("-theory") and not self.has_class("-wide")

    def _to_workbench(self, *, close_theory: bool | None = None) -> None:
        """Focus back on the workbench: the pane that last had it (the tree at first)."""
        if close_theory if close_theory is not None else self._theory_covers():
            self.remove_class("-theory")
        home = self._home
        if home is None or not home.is_attached:
            home = self.query_one(ComponentTree)
        if isinstance(home.parent, ContentSwitcher) and home.id != self.mode:
            home = self.query_one(f"#{self.mode}")
        if not all(node.display for node in home.ancestors_with_self if isinstance(node, Widget)):
            home = self.query_one("#step-b" if self.has_class("-b-only") else f"#{self.mode}")  # hidden: A or B switched
        self.set_focus(home)  # now, not after the messages already queued (keys typed ahead)

    def key_description(self, action: str) -> str | None:
        """How the key bar words a key at this moment ("": not on the bar now, though it works)."""
        action = action.partition("(")[0]
        hidden = self._theory_covers() or self.maximized is not None or self.mode == "audit"
        if action in ("step", "ablate", "label", "dla") and hidden:
            return ""  # the step view is not on screen: room for the keys of what is
        if action == "escape":
            if self.maximized is not None:
                return "Restore"
            if self.recovering:
                return "Cancel recover"
            if is_typing(self.focused):
                return "Workbench"
            if self._theory_covers():
                return "Close theory"
            if self.auditing:
                return "Cancel audit"
            if self.mode == "audit":
                return "Close audit"
            if self.comparing:
                return "Cancel compare"
            return "Cancel diff" if self.diffing else "Back"
        if action == "maximize_pane" and self.maximized is not None:
            return "Restore"
        if action == "recover":
            if self.recovering:
                return "Cancel"
            return None if self.has_class("-theory") else ""  # a theory-panel key
        if action == "audit":
            return "Audit again" if self.mode == "audit" and not self.auditing else None
        if action == "save_theory" and self.mode == "audit" and not self.has_class("-theory"):
            return ""  # room for the audit's keys
        if action == "quit" and self._theory_covers():
            return ""  # room for the theory's keys (^s, ^g) at 80 columns; q and ^q still quit
        if action in ("toggle_other", "diff") and self.other is None:
            return ""
        if action == "toggle_other":
            if self.has_class("-pair"):
                return "Focus A" if self.focused is self.query_one("#step-b") else "Focus B"
            return "Show A" if self.show_b else "Show B"
        return None

    def action_escape(self) -> None:
        if self.maximized is not None:
            self.minimize()
        elif self.recovering:
            self.action_cancel_recover()
        elif is_typing(self.focused) or self._theory_covers():
            self._to_workbench()
        elif self.auditing:
            self.action_cancel_audit()
        elif self.mode == "audit":
            self.action_close_audit()
        elif self.comparing:
            self.action_cancel_compare()
        elif self.diffing:
            self.action_cancel_diff()

    # ---- actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.quitting:
            return False
        has_view = self.view is not None
        if action == "step":  # also right behind a first prompt: the step follows it
            return (has_view or self._prompt_queued or self.pending_prompt is not None) or None
        if action in ("goto", "cursor", "cursor_to", "patch_setup"):
            return has_view or None
        if action == "head":
            return (has_view and self.view is not None and self.view.attention is not None) or None
        if action == "ablate":
            return (has_view and can_ablate(self.selected)) or None
        if action in ("undo_intervention", "clear_interventions"):
            return (has_view and self.view is not None and bool(self.view.interventions)) or None
        if action == "dla":
            return has_view or None
        if action == "reference":
            return self.loaded or None
        if action == "suggest":
            return (self.loaded and self.workbench.store is not None) or None
        if action == "label":
            return (self.selected is not None and self.workbench.store is not None) or None
        if action == "compare":
            return not self.comparing or None  # when it cannot run, pressing it says why
        if action == "cancel_compare":
            return self.comparing
        if action in ("recover", "audit", "audit_with", "diff_with"):
            return True  # when one cannot run, pressing it says why
        if action == "cancel_recover":
            return self.recovering
        if action == "cancel_audit":
            return self.auditing
        if action == "close_audit":
            return self.mode == "audit"
        if action in ("toggle_other", "diff"):
            return (self.other is not None) or None
        if action == "cancel_diff":
            return self.diffing
        if action == "escape":
            return (is_typing(self.focused) or self.maximized is not None or self._theory_covers() or self.comparing
                    or self.recovering or self.auditing or self.mode == "audit" or self.diffing)
        return True

    def _theory_text(self) -> str:
        return self.query_one(TheoryPanel).text if self.is_mounted else ""

    def action_step(self, delta: int) -> None:
        if self.view is None and self.pending_prompt is not None:
            self._after_load.append(delta)  # the prompt runs once the weights are in; then this
        elif self.view is not None or self._prompt_queued:
            self._queue_move(delta)

    def action_goto(self, where: str) -> None:
        if self.view is None:
            return
        self._queue_move(self.view.steps[0] if where == "first" else self.view.steps[-1])

    def action_head(self, delta: int) -> None:
        view = self.view
        if view is None or view.attention is None:
            return
        n_heads = self.workbench.config.n_heads
        head = (view.attention.head + delta) % n_heads
        self._select(f"L{view.attention.layer}.H{head}", jump=False)
        self._queue_move(None)

    def action_cursor(self, delta: int) -> None:
        if self.view is not None:
            self._set_cursor(self.cursor + delta)

    def action_cursor_to(self, where: str) -> None:
        if self.view is not None:
            self._set_cursor(0 if where == "first" else len(self.view.tokens) - 1)

    def _set_cursor(self, position: int) -> None:
        if self.view is None:
            return
        self.cursor = max(0, min(len(self.view.tokens) - 1, position))
        self.query_one("#step", StepPanel).set_cursor(self.cursor)
        if self.other_view is not None:
            self.query_one("#step-b", StepPanel).set_cursor(min(self.cursor, len(self.other_view.tokens) - 1))
        self.query_one(LensPanel).set_cursor(self.cursor)
        if self.patch is not None:
            self.query_one(PatchPanel).set_cursor(min(self.cursor, len(self.patch.clean_tokens) - 1))

    def action_show_view(self, name: str) -> None:
        if name not in VIEWS:
            return
        switcher = self.query_one(ContentSwitcher)
        had_focus = self.focused is not None and self.focused.id == self.mode
        self.mode = name
        switcher.current = name
        self._retitle_views()
        self._arrange()
        if name == "lens" and self.view is not None and (self.lens is None or self.lens.prompt != self.view.prompt):
            self._load_lens()
        if had_focus:
            self.query_one(f"#{name}").focus()
        if name == "patch" and self.patch is None and self.view is not None:
            self.action_patch_setup()

    def _retitle_views(self) -> None:
        for name in VIEWS:
            tabs = "  ".join(f"[{VIEW_TITLES[v]}]" if v == name else VIEW_TITLES[v] for v in VIEWS)
            self.query_one(f"#{name}").border_subtitle = tabs

    def _load_lens(self) -> None:
        self.query_one(LensPanel).show_lens(None, "computing the lens at every position…")
        self.run_lens()

    def action_patch_setup(self) -> None:
        view = self.view
        if view is None:
            return
        if self.mode != "patch":
            self.action_show_view("patch")
            if self.patch is None:
                return  # showing the view opened the dialog

        def chosen(given: PatchInput | None) -> None:
            if given is not None:
                self.patch_input = given
                self.query_one(PatchPanel).show_patch(self.patch, "patching every component at every position…")
                self.run_patch(given)

        self.app.push_screen(PatchDialog(view.prompt, len(view.tokens), self.patch_input), chosen)

    def action_ablate(self) -> None:
        component = self.selected
        if not can_ablate(component):
            return
        assert component is not None
        self._open_ablate(component)

    def _open_ablate(self, component: str) -> None:
        def chosen(mode: str | None) -> None:
            if mode == CHANGE_REFERENCE:
                self._ablate_after_reference = component
                self.action_reference()
            elif mode:
                self._queue_call(lambda: self.workbench.ablate(component, mode, focus=component))

        self.app.push_screen(AblateDialog(component, self.reference), chosen)

    def action_reference(self) -> None:
        theory_text, focus = self._theory_text(), self.selected

        def chosen(choice: tuple[str, str | None] | None) -> None:
            if choice is None:
                self._ablate_after_reference = None
                return
            kind, path = choice
            self.run_reference(kind, path, theory_text, focus)

        self.app.push_screen(ReferenceDialog(self.reference), chosen)

    def action_undo_intervention(self) -> None:
        if self.view is None or not self.view.interventions:
            return
        index, focus = len(self.view.interventions) - 1, self.selected
        self._queue_call(lambda: self.workbench.remove_intervention(index, focus=focus))

    def action_clear_interventions(self) -> None:
        focus = self.selected
        self._queue_call(lambda: self.workbench.clear_interventions(focus=focus))

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
        self.minimize()
        self.toggle_class("-theory")
        self._arrange()
        if self.has_class("-theory"):
            self.query_one(TheoryPanel).editor.focus()
        elif self.view is not None:
            self._to_workbench(close_theory=False)
        else:
            self.query_one("#prompt", Input).focus()

    def _why_not_compare(self) -> str | None:
        if self.failed:
            return "the model could not be opened"
        if not self.loaded:
            return "the model is still loading: press ctrl+r again in a moment"
        if not self._theory_text().strip():
            return "write a theory first (t opens the editor)"
        errors = [d for d in self.diagnostics if d.is_error]
        if errors:
            d = errors[0]
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            return f"fix the theory's errors first: {d.line}:{d.col} {d.message}{more}"
        if self.theory_info is not None and self.theory_info.is_question:
            return "this theory is a question (no expect): compare needs an expected answer (tui-interp recover proposes one)"
        return None

    def action_compare(self) -> None:
        if self.comparing:
            self.notify("a comparison is running: esc cancels it", title="Compare")
            return
        if self.recovering:
            self.notify("a recovery is running: esc cancels it", title="Compare")
            return
        why = self._why_not_compare()
        if why is not None:
            self.notify(plain(why), title="Cannot compare", severity="warning", timeout=8)
            return
        panel = self._open_theory_panel()
        self.comparing = True
        panel.comparing(True)
        self.run_compare(panel.text)
        self.refresh_bindings()

    def action_cancel_compare(self) -> None:
        if self.comparing:
            self.workers.cancel_group(self, "compare")
            self._compare_finished()
            self.query_one(TheoryPanel).show_result(None, "comparison cancelled")

    def action_maximize_pane(self) -> None:
        if self.maximized is not None:
            self.minimize()
            return
        focused = self.focused
        panel = self.query_one(TheoryPanel)
        results = panel.results
        if focused is not None and any(isinstance(a, TheoryPanel) for a in focused.ancestors_with_self):
            if results.display:
                self.maximize(results, container=False)
            return
        if focused is not None and focused.id in (*VIEWS, "audit", "step-b"):
            self.maximize(focused, container=False)
        elif results.display and self.has_class("-theory"):
            self.maximize(results, container=False)
        else:
            self.maximize(self.query_one(f"#{self.mode}"), container=False)

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
                    self._quit_now()

            self.app.push_screen(ConfirmDialog("The theory has unsaved changes. Quit anyway?"), answer)
            return
        self._quit_now()

    def _quit_now(self) -> None:
        self.quitting = True  # keys typed behind q act no more (a dialog opened while the app closes would fail)
        self.app.exit()

    def commands(self) -> list[tuple[str, str, str]]:
        """The palette entries that make sense now: (action, title, help)."""
        out = []
        for action, title, help_text in COMMANDS:
            name = action.partition("(")[0]
            if self.check_action(name, ()):
                out.append((action, title, help_text))
        return out


__all__ = ["COMMANDS", "MainScreen", "TheoryResults", "_key_text", "keys_table"]
