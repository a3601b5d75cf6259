"""The screen's thread workers: every call into the core runs here, off the UI thread, and
posts its result (or a user-facing error) back as a message. Torch never runs on the UI thread.

A mixin of MainScreen, which owns the state these read (`workbench`, `steps`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from textual import work
from textual.worker import get_current_worker

from tui_interp.engine.workbench import LabelsView, StepView, Workbench
from tui_interp.errors import TuiInterpError
from tui_interp.tui import messages as m
from tui_interp.tui.screens.dialogs import PatchInput
from tui_interp.tui.stepqueue import Latest, StepQueue

if TYPE_CHECKING:
    from pathlib import Path

    from textual.screen import Screen

    _Base = Screen[None]
else:
    _Base = object


class CoreWorkers(_Base):
    workbench: Workbench
    steps: StepQueue
    other: Workbench | None  # model B of a diff
    follower: Latest  # where B must be: (prompt, step index, focus), the newest only
    recover_seconds: float

    if TYPE_CHECKING:

        def _theory_saved(self, text: str, path: Path) -> None: ...  # the screen's: shows the saved file

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

    def _queue_move(self, move: int | str | None) -> None:
        if self.steps.move(move, self.selected):
            self.drain_steps()

    def _queue_call(self, call: Callable[[], StepView]) -> None:
        if self.steps.call(call):
            self.drain_steps()

    @work(thread=True, group="steps", exit_on_error=False)
    def drain_steps(self) -> None:
        """The one step worker: takes queued requests (a burst of moves folded into one) until
        none is left. Never cancelled: a press is never dropped."""
        finished = False
        try:
            while (job := self.steps.take()) is not None:
                try:
                    view = job.call() if job.call is not None else self.workbench.walk(job.moves, focus=job.focus)
                except TuiInterpError as e:
                    self.post_message(m.CoreError(str(e)))
                    continue
                self.post_message(m.StepReady(view))
            finished = True
        finally:
            if not finished:
                self.steps.stopped()

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

    @work(thread=True, group="neurons", exit_on_error=False)
    def run_neurons(self, layer: int, run: int) -> None:
        try:
            self.post_message(m.NeuronsReady(layer, self.workbench.top_neurons(layer), run))
        except TuiInterpError as e:
            self.post_message(m.CoreError(str(e)))

    @work(thread=True, exclusive=True, group="lens", exit_on_error=False)
    def run_lens(self) -> None:
        try:
            self.post_message(m.LensReady(self.workbench.lens_table()))
        except TuiInterpError as e:
            self.post_message(m.CoreError(str(e), title="Lens"))

    @work(thread=True, exclusive=True, group="patch", exit_on_error=False)
    def run_patch(self, given: PatchInput) -> None:
        try:
            patch = self.workbench.patch(given.corrupt, target=given.target or None, other=given.other or None)
        except TuiInterpError as e:
            self.post_message(m.PatchReady(None, str(e)))
            return
        self.post_message(m.PatchReady(patch))

    @work(thread=True, exclusive=True, group="reference", exit_on_error=False)
    def run_reference(self, kind: str, path: str | None, theory_text: str, focus: str | None) -> None:
        try:
            description, view = self.workbench.set_reference(kind, theory_text=theory_text, prompts_path=path, focus=focus)
        except TuiInterpError as e:
            self.post_message(m.CoreError(str(e), title="Ablation reference"))
            return
        self.post_message(m.ReferenceSet(description, view))

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
        info = None if any(d.is_error for d in diagnostics) else self.workbench.theory_info(text)
        if not worker.is_cancelled:
            self.post_message(m.DiagnosticsReady(text, diagnostics, info))

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
            self.post_message(m.CompareDone(None, f"comparison failed: {e}"))
            return
        self.post_message(m.CompareDone(None if worker.is_cancelled else result))

    @work(thread=True, group="save", exit_on_error=False)
    def run_save_theory(self, text: str, path: str | None) -> None:
        try:
            saved = self.workbench.save_theory(text, path)
        except TuiInterpError as e:
            self.post_message(m.CoreError(str(e), title="Theory"))
            return
        self.app.call_from_thread(self._theory_saved, text, saved)

    # ---- discovery: recover, audit, diff

    @work(thread=True, exclusive=True, group="recover", exit_on_error=False)
    def run_recover(self, text: str) -> None:
        worker = get_current_worker()
        try:
            result = self.workbench.recover(
                text,
                progress=lambda info: self.post_message(m.RecoverProgress(info)),
                cancelled=lambda: worker.is_cancelled,
                seconds=self.recover_seconds,
            )
        except TuiInterpError as e:
            self.post_message(m.RecoverDone(None, f"recovery failed: {e}"))
            return
        self.post_message(m.RecoverDone(None if worker.is_cancelled else result, "recovery cancelled"))

    @work(thread=True, exclusive=True, group="audit", exit_on_error=False)
    def run_audit(self, text: str, peers: list[Workbench]) -> None:
        from tui_interp.engine.compare import Progress

        worker = get_current_worker()
        try:
            for i, peer in enumerate(peers):
                if not peer.loaded:
                    self.post_message(m.AuditProgress(Progress("loading", i, len(peers))))
                    peer.open()
                    peer.load()
            result = self.workbench.audit(
                text,
                peers,
                progress=lambda info: self.post_message(m.AuditProgress(info)),
                cancelled=lambda: worker.is_cancelled,
            )
        except TuiInterpError as e:
            self.post_message(m.AuditDone(None, f"audit failed: {e}"))
            return
        self.post_message(m.AuditDone(None if worker.is_cancelled else result, "audit cancelled"))

    @work(thread=True, exclusive=True, group="other", exit_on_error=False)
    def open_other(self, other: Workbench) -> None:
        """Model B of a diff: headers (refused unless A's architecture and shapes), labels, weights."""
        try:
            header = other.open()
            self.workbench.check_compatible(other)
        except TuiInterpError as e:
            self.post_message(m.OtherFailed(str(e)))
            return
        labels = None
        try:
            labels = other.read_labels()
        except TuiInterpError as e:
            self.post_message(m.CoreError(f"labels of B: {e}", title="Labels"))
        self.post_message(m.OtherOpened(header, labels))
        try:
            self.post_message(m.OtherOpened(other.load(), labels, loaded=True))
        except TuiInterpError as e:
            self.post_message(m.OtherFailed(str(e)))

    def _follow(self, prompt: str, index: int, focus: str | None) -> None:
        """Bring B to A's prompt and step (the newest request wins)."""
        if self.follower.put((prompt, index, focus)):
            self.run_other_steps()

    @work(thread=True, group="other-steps", exit_on_error=False)
    def run_other_steps(self) -> None:
        finished = False
        try:
            while (target := self.follower.take()) is not None:
                other = self.other
                if other is None:
                    continue
                prompt, index, focus = target
                try:
                    view = other.follow(prompt, index, focus=focus)
                except TuiInterpError as e:
                    self.post_message(m.CoreError(f"B: {e}", title="Model B"))
                    continue
                self.post_message(m.OtherStepReady(view))
            finished = True
        finally:
            if not finished:
                self.follower.stopped()

    @work(thread=True, exclusive=True, group="diff", exit_on_error=False)
    def run_diff(self, text: str) -> None:
        worker = get_current_worker()
        other = self.other
        if other is None:
            return
        try:
            result = self.workbench.diff(
                other,
                text,
                progress=lambda info: self.post_message(m.DiffProgressed(info)),
                cancelled=lambda: worker.is_cancelled,
            )
        except TuiInterpError as e:
            self.post_message(m.DiffDone(None, f"diff failed: {e}"))
            return
        self.post_message(m.DiffDone(None if worker.is_cancelled else result, "diff cancelled"))
