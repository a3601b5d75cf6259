"""The theory side panel: an editor with diagnostics as you type, the theory's splits, a
comparison with its progress (phase, done/total, rate, time), and its results: agreement per
slice and split, claims, and the counterexamples, which load into the step view when chosen.
The results can take the whole screen (f); after a comparison the counterexample table has focus."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.color import Color, ColorParseError
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Button, DataTable, ProgressBar, Static, TextArea

from tui_interp.model.tokenizer import display_text
from tui_interp.theory import Diagnostic, format_input
from tui_interp.tui.messages import CompareRequested, CounterexampleChosen, TheoryEdited
from tui_interp.tui.text import clip

if TYPE_CHECKING:
    from tui_interp.engine.compare import CompareResult, Progress
    from tui_interp.engine.recover import RecoverResult, SearchProgress
    from tui_interp.engine.workbench import TheoryInfo

CHECK_DELAY_S = 0.15  # diagnostics run this long after the last key press
MAX_DIAGNOSTICS_SHOWN = 4
PHASES = {  # short: the line also holds done/total, the rate and the time at 80 columns
    "prepare": "preparing", "compare": "comparing", "answers": "answering",
    "search": "searching", "claims": "claims", "done": "done",
}


class TheoryEditor(TextArea):
    """The theory source. Posts TheoryEdited shortly after the user stops typing, and
    underlines the spans its diagnostics point at (errors and warnings)."""

    _timer: Timer | None = None
    _marks: dict[int, list[tuple[int, int, bool]]] = {}  # line index -> (start, end, is_error)

    def mark(self, diagnostics: list[Diagnostic]) -> None:
        marks: dict[int, list[tuple[int, int, bool]]] = {}
        for d in diagnostics:
            marks.setdefault(d.line - 1, []).append((d.col - 1, max(d.end_col - 1, d.col), d.is_error))
        if marks != self._marks:
            self._marks = marks
            self.refresh()

    def get_line(self, line_index: int) -> Text:
        line = super().get_line(line_index)
        marks = self._marks.get(line_index)
        if marks:
            variables = self.app.theme_variables
            for start, end, is_error in marks:
                colour = variables.get("error" if is_error else "warning")
                style = Style(underline=True, bold=is_error)
                if colour:
                    try:
                        style += Style(color=Color.parse(colour).rich_color)
                    except ColorParseError:
                        pass
                if start >= len(line.plain):  # a span at the end of the line: mark its last character
                    start, end = max(0, len(line.plain) - 1), len(line.plain)
                line.stylize(style, start, end)
        return line

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(CHECK_DELAY_S, self._edited)

    def _edited(self) -> None:
        self._timer = None
        self.post_message(TheoryEdited(self.text))


class TheoryResults(Vertical):
    """Agreement, slices, claims and the counterexample table: can take the whole screen (f)."""

    ALLOW_MAXIMIZE = True
    BORDER_TITLE = "Results"


class TheoryPanel(Vertical):
    BORDER_TITLE = "Theory"

    file_name: reactive[str] = reactive("")
    modified: reactive[bool] = reactive(False)

    _prompts: list[str] = []
    _started: float | None = None
    _last: Progress | SearchProgress | None = None
    _phase: tuple[str, float, int] = ("", 0.0, 0)  # the phase on screen, when it began, done then
    _ticker: Timer | None = None

    def compose(self) -> ComposeResult:
        yield TheoryEditor("", id="theory-editor", show_line_numbers=True, soft_wrap=False, tab_behavior="focus")
        yield Static("", id="diagnostics")
        yield Static("", id="theory-info")
        with Horizontal(id="compare-row"):
            button = Button("Compare ^r", id="compare-button", compact=True)
            button.can_focus = False  # tab goes from the editor to the results, never to a button enter re-runs
            yield button
            yield Static("", id="compare-phase")
            yield ProgressBar(id="compare-progress", show_eta=False)
        with TheoryResults(id="results"):
            with VerticalScroll(id="agreement-scroll"):
                yield Static("", id="agreement")
            table: DataTable[str | Text] = DataTable(id="counterexamples", cursor_type="row", zebra_stripes=True)
            yield table

    def on_mount(self) -> None:
        table = self.query_one("#counterexamples", DataTable)
        table.add_columns("input", "expect", "got", "p(got)")
        table.display = False
        self.query_one("#compare-progress", ProgressBar).display = False
        self.query_one("#theory-info", Static).display = False
        self.query_one(TheoryResults).display = False

    # ---- attributes the screen sets

    @property
    def editor(self) -> TheoryEditor:
        return self.query_one(TheoryEditor)

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#counterexamples", DataTable)

    @property
    def results(self) -> TheoryResults:
        return self.query_one(TheoryResults)

    @property
    def text(self) -> str:
        return self.editor.text

    def load_text(self, text: str) -> None:
        self.editor.load_text(text)
        self.modified = False

    def watch_file_name(self) -> None:
        self._retitle()

    def watch_modified(self) -> None:
        self._retitle()

    def _retitle(self) -> None:
        name = display_text(self.file_name) if self.file_name else "unsaved"
        self.border_title = f"Theory: {clip(name, 30)}" + (" ●" if self.modified else "")

    def show_diagnostics(self, diagnostics: list[Diagnostic]) -> None:
        self.editor.mark(diagnostics)
        widget = self.query_one("#diagnostics", Static)
        errors = [d for d in diagnostics if d.is_error]
        self.set_class(bool(errors), "-errors")
        if not self.text.strip():
            widget.update(Text("Write a theory: input, prompt, expect (see LANGUAGE.md).", style="dim"))
            return
        if not diagnostics:
            widget.update(Text("✓ no problems", style="bold"))
            return
        text = Text()
        for i, d in enumerate(diagnostics[:MAX_DIAGNOSTICS_SHOWN]):
            if i:
                text.append("\n")
            mark = "✗" if d.is_error else "!"
            text.append(f"{mark} {d.line}:{d.col} ", style="bold")
            text.append(display_text(d.message))
        more = len(diagnostics) - MAX_DIAGNOSTICS_SHOWN
        if more > 0:
            text.append(f"\n… {more} more", style="dim")
        widget.update(text)

    def show_info(self, info: TheoryInfo | None) -> None:
        """The theory's splits with their sizes, and whether it is a question."""
        widget = self.query_one("#theory-info", Static)
        text = Text()
        if info is not None:
            if info.is_question:
                text.append("a question (no expect): compare needs an expected answer", style="dim")
            for s in info.splits:
                if text:
                    text.append("\n")
                text.append("split ", style="dim")
                text.append(clip(display_text(s.name), 20), style="bold")
                text.append(f" {s.size:,} inputs", style="")
                answers = ", with answers" if s.has_answers else ""
                text.append(f" ({clip(display_text(s.file), 24)}{answers})", style="dim")
        widget.display = bool(text)
        widget.update(text)

    # ---- comparing

    def comparing(self, running: bool) -> None:
        self._set_running(running)
        if running:
            self.results.display = False  # no stale result or "cancelled" while a new one runs

    def recovering(self, running: bool) -> None:
        """The rule search runs: its progress on the compare row, the best so far in the results."""
        self._set_running(running)
        if running:
            self._show_text(Text("Recovering the expect: the model answers the theory's inputs first…", style="dim"))

    def _set_running(self, running: bool) -> None:
        self.set_class(running, "-running")
        button = self.query_one("#compare-button", Button)
        button.label = "Cancel esc" if running else "Compare ^r"
        bar = self.query_one("#compare-progress", ProgressBar)
        if running:
            self._started, self._last = time.monotonic(), None
            self.query_one("#compare-phase", Static).update("starting…")
            bar.display = True
            bar.update(total=None, progress=0)
            if self._ticker is None:
                self._ticker = self.set_interval(0.5, self._tick)
            else:
                self._ticker.resume()
        else:
            if self._ticker is not None:
                self._ticker.pause()
            self._started = None
            self.query_one("#compare-phase", Static).update("")
            bar.display = False

    def _tick(self) -> None:
        if self._started is not None:
            self._show_phase()

    def show_progress(self, info: Progress | SearchProgress) -> None:
        if info.phase != self._phase[0]:
            self._phase = (info.phase, time.monotonic(), info.done)
        self._last = info
        bar = self.query_one("#compare-progress", ProgressBar)
        bar.display = True
        if info.total:
            bar.update(total=max(info.total, 1), progress=info.done)
        else:
            bar.update(total=None)
        self._show_phase()

    def _show_phase(self) -> None:
        info = self._last
        elapsed = time.monotonic() - self._started if self._started is not None else 0.0
        if info is None:
            self.query_one("#compare-phase", Static).update(f"starting… {elapsed:.0f} s")
            return
        words = PHASES.get(info.phase, info.phase)
        line = words
        if info.total:
            line += f" {info.done:,}/{info.total:,}"
        elif info.done:
            line += f" {info.done:,} tried"  # the rule search: expressions, no total
        _, since, done_then = self._phase  # the rate of this phase, not since the comparison began
        seconds = time.monotonic() - since
        rate = (info.done - done_then) / seconds if seconds >= 0.5 else 0.0
        if rate and info.phase not in ("done", "claims"):
            line += f" · {rate:,.0f}/s"
        line += f" · {elapsed:.0f} s"
        self.query_one("#compare-phase", Static).update(line)

    def _show_text(self, text: Text) -> None:
        """Words in the results area, without the counterexample table."""
        self.results.display = True
        self.query_one("#agreement", Static).update(text)
        self.table.display = False
        self.results.set_class(False, "-table")
        self._prompts = []

    def show_recover_progress(self, info: SearchProgress) -> None:
        """The best candidate so far and how far the search is."""
        text = Text("Recovering the expect", style="bold")
        text.append(f"  size {info.size} of at most {info.max_size}, {info.distinct:,} behaviours kept", style="dim")
        text.append("\nbest so far: ")
        if info.best is None:
            text.append("none yet", style="dim")
        else:
            text.append(f"expect {clip(display_text(info.best), 60)}", style="bold")
            if info.best_agreement is not None:
                text.append(f"  agrees on {info.best_agreement:.1%}")
            if info.best_size is not None:
                text.append(f" (size {info.best_size})", style="dim")
        text.append("\nesc or ^g cancels", style="dim")
        self._show_text(text)

    def show_recover_result(self, result: RecoverResult | None, note: str = "") -> None:
        if result is None:
            self._show_text(Text(note or "recovery cancelled", style="dim"))
            return
        text = recover_headline(result)
        text.append(f"\n{result.searched:,} expressions tried; {display_text(result.stop_note)}", style="dim")
        if result.candidates:
            text.append("\n^g searches again; the candidates were offered in a list (enter fills the expect line)", style="dim")
        self._show_text(text)

    def show_result(self, result: CompareResult | None, note: str = "") -> None:
        """The comparison's result; None with a note (cancelled, failed)."""
        agreement = self.query_one("#agreement", Static)
        table = self.table
        self.results.display = True
        if result is None:
            agreement.update(Text(note or "comparison cancelled", style="dim"))
            table.display = False
            self.results.set_class(False, "-table")
            self._prompts = []
            return
        agreement.update(result_text(result))
        table.clear()
        for i, cx in enumerate(result.counterexamples):
            p = cx.p_got if getattr(cx, "p_got", None) is not None else None
            mark = {"search": "*", "split": "†"}.get(getattr(cx, "found_by", "sample"), "")
            table.add_row(
                Text(clip(display_text(format_input(cx.input)), 24) + mark),
                Text(clip(display_text(cx.expected), 10)),
                Text(clip(display_text(cx.got or ""), 10)),
                probability(p) if p is not None else "",
                key=str(i),
            )
        table.display = bool(result.counterexamples)
        self.results.set_class(table.display, "-table")
        self._prompts = [cx.prompt for cx in result.counterexamples]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = event.row_key.value
        if key is not None and int(key) < len(self._prompts):
            self.post_message(CounterexampleChosen(self._prompts[int(key)]))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "compare-button":
            self.post_message(CompareRequested())


def recover_headline(result: RecoverResult) -> Text:
    """Explained or not, in words: the best candidate and its agreement against the threshold."""
    best = result.best
    text = Text()
    if best is None:
        text.append("Not explained: ", style="bold reverse")
        text.append("no expression of the theory language renders any of the model's answers")
        return text
    if result.explained:
        text.append("Explained: ", style="bold")
    else:
        text.append("Not explained: ", style="bold reverse")
        text.append("the best candidate ")
    text.append(f"expect {display_text(best.expect)}", style="bold")
    text.append(f" agrees on {best.agreement:.2%} of {display_text(result.table)} (size {best.size})")
    if not result.explained:
        text.append(f", below {result.min_agreement:.0%}")
    return text


def probability(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.0e}"


def result_text(result: CompareResult) -> Text:
    """Agreement, slices and splits, claims, counterexample counts and the search, in words."""
    text = Text()
    text.append(f"Agreement {100 * result.agreement:.2f}%", style="bold")
    text.append(f" on {display_text(result.selection)}")
    for sl in result.slices:
        text.append(f"\n  {clip(display_text(sl.name), 28)}: ")
        if sl.agreement is None:
            text.append("empty", style="dim")
        else:
            text.append(f"{100 * sl.agreement:.2f}%", style="bold")
        text.append(f" of {sl.n:,}", style="dim")
    if result.claims:
        holding = sum(c.status == "holds" for c in result.claims)
        text.append(f"\nClaims: {holding} of {len(result.claims)} hold", style="bold")
    for c in result.claims:
        mark = {"holds": "✓", "fails": "✗"}.get(c.status, "?")
        text.append(f"\n  {mark} ", style="bold")
        text.append(clip(display_text(c.text.removeprefix("claim ")), 48))
        value, baseline = c.value, getattr(c, "baseline", None)
        if value is not None:
            text.append(f": {value:.3g}", style="bold")
        threshold = getattr(c, "threshold", None)
        said = [f"baseline {baseline:.3g}"] if baseline is not None else []
        if threshold and c.status != "unchecked":
            said.append(clip(display_text(str(threshold)), 40))
        if said:
            text.append(f" ({'; '.join(said)})", style="dim")
        if c.status == "unchecked" and c.detail:
            text.append(f" ({clip(display_text(c.detail), 60)})", style="dim")
    listed = len(result.counterexamples)
    n_search = sum(getattr(cx, "found_by", "") == "search" for cx in result.counterexamples)
    n_split = sum(getattr(cx, "found_by", "") == "split" for cx in result.counterexamples)
    n_failures = getattr(result, "n_failures", listed - n_search - n_split)
    if listed:
        line = f"\n{n_failures:,} counterexample{'s' if n_failures != 1 else ''}"
        if n_search:
            line += f", {n_search:,} more found by search (*)"
        if n_split:
            line += f", {n_split:,} more in a split outside the sample (†)"
        if listed < n_failures + n_search + n_split:
            line += f"; {listed:,} listed"
        text.append(line + "; enter loads one as the prompt", style="dim")
    elif result.searched:
        text.append(f"\nno counterexample; the search tried {result.searched:,} more inputs", style="dim")
    for hint in getattr(result, "hints", None) or ():
        text.append(f"\nhint: {clip(display_text(str(hint)), 120)}", style="dim")
    return text
