"""The workbench's discovery tools: rule recovery, the generalisation audit, and a second model
(B) to diff with. A mixin of MainScreen, which owns the state; the work runs in the thread
workers of workers.py and comes back here as messages.

- Recover (ctrl+g, in the theory panel): search the theory language for the `expect` the model
  computes on the editor's theory or question; progress on the compare row and the best so far
  in the results; then the candidates in a list, and enter fills the expect line, checks the
  theory and compares it. Escape or ctrl+g cancels.
- Audit (A): the audit view, of the open model and the one given with `--compare-with` (or
  chosen from the palette), on the editor's theory's train split. Escape cancels it, or
  closes the view.
- Diff (`--diff B`, or the palette): B opened header-only, refused unless A's architecture and
  shapes, its weights loaded in a worker; its step view follows A's prompt and step (side by
  side at 120 columns and more, else `b` switches between A and B); the diff marks the
  components that changed most in the tree (▲ and the score; D runs it again).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.widgets import ContentSwitcher

from tui_interp.engine.workbench import StepView, Workbench
from tui_interp.model.tokenizer import display_text
from tui_interp.tui import messages as m
from tui_interp.tui.screens.dialogs import PathDialog, RecoverDialog
from tui_interp.tui.text import clip, plain
from tui_interp.tui.widgets.audit_view import AuditPanel
from tui_interp.tui.widgets.component_tree import DIFF_MARK, ComponentTree, score_text
from tui_interp.tui.widgets.header import ModelHeader
from tui_interp.tui.widgets.step_view import StepPanel
from tui_interp.tui.widgets.theory_panel import TheoryPanel

if TYPE_CHECKING:
    from textual.screen import Screen

    from tui_interp.engine.diff import DiffResult
    from tui_interp.theory import Diagnostic
    from tui_interp.tui.screens.workers import CoreWorkers

    class _Base(CoreWorkers, Screen[None]):
        loaded: bool
        failed: bool
        comparing: bool
        mode: str
        cursor: int
        view: StepView | None
        diagnostics: list[Diagnostic]

        def _theory_text(self) -> str: ...
        def action_compare(self) -> None: ...
        def _to_workbench(self, *, close_theory: bool | None = None) -> None: ...
else:
    _Base = object

DIFF_MARKS = 5  # components marked in the tree: the highest diff scores (above 0)
WIDE = 120  # from this many columns, A and B are side by side


class Discovery(_Base):
    def _init_discovery(self, peer: Workbench | None, other: Workbench | None) -> None:
        self.peer = peer  # the model audited beside this one
        self.other = other  # model B of a diff
        self.recovering = False
        self.auditing = False
        self.diffing = False
        self.other_loaded = False
        self.show_b = False  # below WIDE columns: the step view shows B instead of A
        self.other_view: StepView | None = None
        self.other_labels: dict[str, Any] = {}
        self.diff_result: DiffResult | None = None
        self._mode_before_audit = "step"
        self._compare_after_check: str | None = None
        self._other_waits = False  # B waits for A's headers before it is opened

    # ---- shared

    def _why_not_run(self, what: str) -> str | None:
        """Why a theory job cannot start now (None: it can)."""
        if self.failed:
            return "the model could not be opened"
        if not self.loaded:
            return f"the model is still loading: {what} in a moment"
        if not self._theory_text().strip():
            return "write a theory or a question first (t opens the editor)"
        errors = [d for d in self.diagnostics if d.is_error]
        if errors:
            d = errors[0]
            return f"fix the theory's errors first: {d.line}:{d.col} {d.message}"
        return None

    def _open_theory_panel(self) -> TheoryPanel:
        panel = self.query_one(TheoryPanel)
        if not self.has_class("-theory"):
            self.add_class("-theory")
            self._arrange()
            if not self.has_class("-wide"):
                panel.editor.focus()  # what had focus is hidden now
        return panel

    # ---- recover

    def action_recover(self) -> None:
        if self.recovering:
            self.action_cancel_recover()
            return
        if self.comparing:
            self.notify("a comparison is running: esc cancels it", title="Recover")
            return
        why = self._why_not_run("press ctrl+g again")
        if why is not None:
            self.notify(plain(why), title="Cannot recover", severity="warning", timeout=8)
            return
        self.minimize()
        panel = self._open_theory_panel()
        self.recovering = True
        panel.recovering(True)
        self.run_recover(panel.text)
        self.refresh_bindings()

    def action_cancel_recover(self) -> None:
        if self.recovering:
            self.workers.cancel_group(self, "recover")
            self._recover_finished()
            self.query_one(TheoryPanel).show_recover_result(None, "recovery cancelled")

    def _recover_finished(self) -> None:
        self.recovering = False
        self.query_one(TheoryPanel).recovering(False)
        self.refresh_bindings()

    def on_recover_progress(self, message: m.RecoverProgress) -> None:
        if not self.recovering:
            return
        panel = self.query_one(TheoryPanel)
        panel.show_progress(message.info)
        if message.info.phase == "search":
            panel.show_recover_progress(message.info)  # type: ignore[arg-type]

    def on_recover_done(self, message: m.RecoverDone) -> None:
        if not self.recovering:
            return  # cancelled by the user: already said so
        self._recover_finished()
        panel = self.query_one(TheoryPanel)
        panel.show_recover_result(message.result, message.note)
        result = message.result
        if result is None:
            if message.note:
                self.notify(plain(message.note), title="Recover", severity="error", timeout=8)
            return
        if not result.candidates:
            self.notify("no candidate: nothing of the theory language renders the model's answers", title="Recover",
                        severity="warning", timeout=8)
            return

        def chosen(expect: str | None) -> None:
            if expect is not None:
                self._fill_expect(expect)

        self.app.push_screen(RecoverDialog(result), chosen)

    def _fill_expect(self, expect: str) -> None:
        """Put `expect EXPR` in the editor (in place of its expect line, or after the prompt
        line), then check the theory and, when it has no error, compare it."""
        panel = self.query_one(TheoryPanel)
        editor = panel.editor
        text = self.workbench.with_expect(editor.text, expect)
        editor.replace(text, (0, 0), editor.document.end)  # an edit: ctrl+z takes it back
        line = next((i for i, row in enumerate(text.splitlines()) if row.lstrip().startswith("expect")), 0)
        editor.move_cursor((line, 0))  # the filled-in line in view
        self._compare_after_check = text
        self.run_check(text)

    def _checked(self, text: str, diagnostics: list[Diagnostic]) -> None:
        """The check of `text` is back: compare it if a recovered expect was just filled in."""
        if self._compare_after_check != text:
            return
        self._compare_after_check = None
        if any(d.is_error for d in diagnostics):
            self.notify("the filled-in theory has errors: see the diagnostics", title="Recover", severity="warning")
            return
        self.action_compare()

    # ---- audit

    def _audit_names(self) -> list[str]:
        names = [self.workbench.model_path.name]
        if self.peer is not None:
            names.append(self.peer.model_path.name)
        return names

    def action_audit(self) -> None:
        panel = self.query_one(AuditPanel)
        self._show_audit_view()
        if self.auditing:
            self.notify("an audit is running: esc cancels it", title="Audit")
            return
        why = self._why_not_run("press A again")
        info = getattr(self, "theory_info", None)
        if why is None and info is not None and not any(s.name == "train" and s.has_answers for s in info.splits):
            why = 'the audit needs a theory with `split train from "FILE"` whose rows carry answers'
        if why is not None:
            panel.show_note(f"Cannot audit: {why}.")
            self.notify(plain(why), title="Cannot audit", severity="warning", timeout=8)
            return
        self.auditing = True
        panel.running(self._audit_names())
        self.run_audit(self._theory_text(), [self.peer] if self.peer is not None else [])
        self.refresh_bindings()

    def _show_audit_view(self) -> None:
        if self.mode != "audit":
            self._mode_before_audit = self.mode
        self.mode = "audit"
        self.query_one(ContentSwitcher).current = "audit"
        self.minimize()
        if self.has_class("-theory") and not self.has_class("-wide"):
            self.remove_class("-theory")  # the view is hidden behind the theory at 80 columns
        self._arrange()
        self.query_one(AuditPanel).focus()

    def action_close_audit(self) -> None:
        if self.mode != "audit":
            return
        had_focus = self.focused is self.query_one(AuditPanel)
        self.mode = self._mode_before_audit
        self.query_one(ContentSwitcher).current = self.mode
        self._arrange()
        if had_focus:
            self.query_one(f"#{self.mode}").focus()
        self.refresh_bindings()

    def action_cancel_audit(self) -> None:
        if self.auditing:
            self.workers.cancel_group(self, "audit")
            self.auditing = False
            self.query_one(AuditPanel).show_note("Audit cancelled. A runs it again.")
            self.refresh_bindings()

    def action_audit_with(self) -> None:
        def chosen(path: str | None) -> None:
            if path:
                s = self.workbench
                self.peer = Workbench(path, device=s.device, dtype=s.dtype)  # opened and loaded by the audit's worker
                self.action_audit()

        current = str(self.peer.model_path) if self.peer is not None else ""
        self.app.push_screen(PathDialog("Audit with a second model", "A model directory or .safetensors file, audited "
                                        "beside the open one on the theory's train split.", current), chosen)

    def on_audit_progress(self, message: m.AuditProgress) -> None:
        if self.auditing:
            self.query_one(AuditPanel).show_progress(message.info)

    def on_audit_done(self, message: m.AuditDone) -> None:
        if not self.auditing:
            return
        self.auditing = False
        panel = self.query_one(AuditPanel)
        if message.result is None:
            panel.show_note(message.note or "Audit cancelled.")
            if message.note and "failed" in message.note:
                self.notify(plain(message.note), title="Audit", severity="error", timeout=8)
                if self.peer is not None and not self.peer.loaded:
                    self.peer = None  # it could not be opened: the next audit is of the open model alone
        else:
            panel.show_result(message.result)
        self.refresh_bindings()

    # ---- diff: model B

    def action_diff_with(self) -> None:
        def chosen(path: str | None) -> None:
            if path:
                s = self.workbench
                self._start_other(Workbench(path, device=s.device, dtype=s.dtype))

        current = str(self.other.model_path) if self.other is not None else ""
        self.app.push_screen(PathDialog("Diff with a second model", "Model B: a directory or .safetensors file of the "
                                        "same architecture and shapes; stepped beside A, what changed marked ▲.",
                                        current), chosen)

    def _start_other(self, other: Workbench) -> None:
        if self.diffing:
            self.action_cancel_diff()
        self.other, self.other_loaded, self.other_view, self.diff_result = other, False, None, None
        self.other_labels = {}
        tree = self.query_one(ComponentTree)
        tree.set_diff({})
        tree.set_labels_b(None)
        tree.border_subtitle = ""
        self.query_one(ModelHeader).other = other.model_path.name
        b = self.query_one("#step-b", StepPanel)
        b.show_view(None)
        b.set_banner("")
        b.title_prefix = f"B {clip(display_text(other.model_path.name), 20)} · "
        b.border_title = f"B {clip(display_text(other.model_path.name), 30)}"
        b.set_waiting("B is opening…")
        self._arrange()
        self._other_waits = self.workbench.checkpoint is None
        if not self._other_waits:
            self.open_other(other)  # else once A's headers are read (on_header_ready)

    def on_other_opened(self, message: m.OtherOpened) -> None:
        if self.other is None:
            return
        b = self.query_one("#step-b", StepPanel)
        self.query_one(ModelHeader).other = message.header.name
        if message.labels is not None:
            self.other_labels = message.labels.labels
            self.query_one(ComponentTree).set_labels_b(self.other_labels)
            b.set_labels(self.other_labels)
        if not message.loaded:
            b.set_waiting("B: loading weights…")
            return
        self.other_loaded = True
        b.set_waiting("Type a prompt above and press enter: B follows A's prompt and step.")
        a = self.query_one("#step", StepPanel)
        a.title_prefix = f"A {clip(display_text(self.workbench.model_path.name), 20)} · "
        if self.view is not None:
            self._follow_view(self.view)
            a.show_view(self.view)
        if self.loaded:
            self._run_diff()
        self.refresh_bindings()

    def on_other_failed(self, message: m.OtherFailed) -> None:
        self.notify(plain(message.message), title="Cannot diff with B", severity="error", timeout=30)
        self.other, self.other_loaded, self.other_view = None, False, None
        self.query_one(ModelHeader).other = ""
        self.query_one(ComponentTree).set_labels_b(None)
        self.query_one("#step", StepPanel).title_prefix = ""
        self.show_b = False
        self._arrange()
        self.refresh_bindings()

    def _follow_view(self, view: StepView) -> None:
        """Bring B to A's prompt and step, and the head A shows."""
        if self.other is None or not self.other_loaded:
            return
        focus = f"L{view.attention.layer}.H{view.attention.head}" if view.attention is not None else None
        self._follow(view.prompt, view.index, focus)

    def on_other_step_ready(self, message: m.OtherStepReady) -> None:
        if self.other is None:
            return
        self.other_view = message.view
        b = self.query_one("#step-b", StepPanel)
        b.cursor = min(self.cursor, len(message.view.tokens) - 1)
        b.show_view(message.view, self.other_labels)
        self._banner()

    def action_toggle_other(self) -> None:
        if self.other is None:
            return
        self.minimize()
        if self.mode != "step":
            self.action_show_view("step")  # type: ignore[attr-defined]
        a, b = self.query_one("#step", StepPanel), self.query_one("#step-b", StepPanel)
        if self.has_class("-pair"):
            (a if self.focused is b else b).focus()
            return
        self.show_b = not self.show_b
        self._arrange()
        (b if self.show_b else a).focus()

    def _arrange(self) -> None:
        """Where B's step view goes: beside A's (wide, step view, no theory panel), in place of
        it (`b`), or nowhere."""
        step = self.other is not None and self.mode == "step"
        pair = step and self.size.width >= WIDE and not self.has_class("-theory")
        self.set_class(self.other is not None, "-diff")
        self.set_class(pair, "-pair")
        self.set_class(step and not pair and self.show_b, "-b-only")
        b = self.query_one("#step-b", StepPanel)
        if self.focused is b and not (pair or self.has_class("-b-only")):
            self.query_one("#step", StepPanel).focus()

    def on_resize(self) -> None:
        self._arrange()

    # ---- diff: the components that changed

    def action_diff(self) -> None:
        if self.other is None:
            self.action_diff_with()
            return
        if self.diffing:
            self.notify("the diff is running: esc cancels it", title="Diff")
            return
        if not (self.loaded and self.other_loaded):
            self.notify("the models are still loading: the diff runs once both are in", title="Diff")
            return
        self._run_diff()

    def _run_diff(self) -> None:
        if self.diffing or self.other is None:
            return
        self.diffing = True
        tree = self.query_one(ComponentTree)
        tree.border_subtitle = "diff: starting…"
        self._banner("diff: starting…")
        text = self._theory_text()
        errors = any(d.is_error for d in self.diagnostics)
        self.run_diff("" if errors else text)
        self.refresh_bindings()

    def action_cancel_diff(self) -> None:
        if self.diffing:
            self.workers.cancel_group(self, "diff")
            self.diffing = False
            self.query_one(ComponentTree).border_subtitle = "diff cancelled (D)"
            self._banner("diff cancelled: D runs it again")
            self.refresh_bindings()

    def on_diff_progressed(self, message: m.DiffProgressed) -> None:
        if not self.diffing:
            return
        info = message.info
        share = f" {info.done * 100 // info.total}%" if info.total and info.phase != "done" else ""
        line = f"diff: {info.phase}{share} · {info.seconds:.0f} s"
        self.query_one(ComponentTree).border_subtitle = line
        self._banner(line)

    def on_diff_done(self, message: m.DiffDone) -> None:
        if not self.diffing:
            return
        self.diffing = False
        tree = self.query_one(ComponentTree)
        result = message.result
        if result is None:
            tree.border_subtitle = "diff failed (D)" if "failed" in message.note else "diff cancelled (D)"
            self._banner(message.note)
            if "failed" in message.note:
                self.notify(plain(message.note), title="Diff", severity="error", timeout=10)
            self.refresh_bindings()
            return
        self.diff_result = result
        top = [c for c in result.components if c.score > 0][:DIFF_MARKS]
        tree.set_diff({str(c.component): c.score for c in top})
        tree.border_subtitle = f"{DIFF_MARK} changed most A→B" if top else "A = B: nothing changed"
        self._banner()
        self.refresh_bindings()

    def _banner(self, status: str | None = None) -> None:
        """B's panel: the diff's state, or its summary (one line each, cut to the panel's width)."""
        if self.other is None:
            return
        b = self.query_one("#step-b", StepPanel)
        text = Text(no_wrap=True, overflow="ellipsis")
        result = self.diff_result
        if status is not None:
            text.append(status, style="dim")
        elif result is not None:
            top = [c for c in result.components if c.score > 0][:DIFF_MARKS]
            text.append(DIFF_MARK + " ", style="bold")
            text.append(", ".join(f"{c.component} {score_text(c.score)}" for c in top) if top else "nothing changed")
            text.append(f"\n{len(result.changed):,} of {len(result.components):,} changed", style="bold")
            text.append(f" · {result.n_disagreements:,} of {result.n_inputs:,} inputs answered differently")
            text.append(f"\non {display_text(result.inputs)}", style="dim")
        if self.view is not None and self.view.interventions:
            text.append("\nB runs without A's interventions", style="dim")
        b.set_banner(text)
