"""The theory side panel: an editor with diagnostics as you type, a comparison with its progress,
agreement per slice, and counterexamples that load into the step view when chosen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.color import Color, ColorParseError
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Button, DataTable, ProgressBar, Static, TextArea

from tui_interp.model.tokenizer import display_text
from tui_interp.theory import Diagnostic, format_input
from tui_interp.tui.messages import CompareRequested, CounterexampleChosen, TheoryEdited
from tui_interp.tui.text import clip

if TYPE_CHECKING:
    from tui_interp.engine.compare import CompareResult, Progress

CHECK_DELAY_S = 0.15  # diagnostics run this long after the last key press
MAX_DIAGNOSTICS_SHOWN = 4


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


class TheoryPanel(Vertical):
    BORDER_TITLE = "Theory"

    file_name: reactive[str] = reactive("")
    modified: reactive[bool] = reactive(False)

    def compose(self) -> ComposeResult:
        yield TheoryEditor("", id="theory-editor", show_line_numbers=True, soft_wrap=False, tab_behavior="focus")
        yield Static("", id="diagnostics")
        with Horizontal(id="compare-row"):
            yield Button("Compare ^r", id="compare-button", compact=True)
            yield Static("", id="compare-phase")
            yield ProgressBar(id="compare-progress", show_eta=False)
        yield Static("", id="agreement")
        table: DataTable[str | Text] = DataTable(id="counterexamples", cursor_type="row", zebra_stripes=True)
        yield table

    def on_mount(self) -> None:
        table = self.query_one("#counterexamples", DataTable)
        table.add_columns("input", "expect", "got", "p(exp)")
        table.display = False
        self.query_one("#compare-progress", ProgressBar).display = False
        self.query_one("#agreement", Static).display = False

    # ---- attributes the screen sets

    @property
    def editor(self) -> TheoryEditor:
        return self.query_one(TheoryEditor)

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

    def show_progress(self, info: Progress) -> None:
        bar = self.query_one("#compare-progress", ProgressBar)
        bar.display = True
        bar.update(total=max(info.total, 1), progress=info.done)
        phase = {"prepare": "preparing", "compare": "comparing", "search": "searching", "claims": "claims",
                 "done": "done"}.get(info.phase, info.phase)
        self.query_one("#compare-phase", Static).update(phase)

    def comparing(self, running: bool) -> None:
        self.set_class(running, "-running")
        button = self.query_one("#compare-button", Button)
        button.label = "Cancel esc" if running else "Compare ^r"
        bar = self.query_one("#compare-progress", ProgressBar)
        self.query_one("#compare-phase", Static).update("starting" if running else "")
        if running:
            bar.display = True
            bar.update(total=None, progress=0)
        else:
            bar.display = False

    def show_result(self, result: CompareResult | None) -> None:
        agreement = self.query_one("#agreement", Static)
        table = self.query_one("#counterexamples", DataTable)
        agreement.display = True
        if result is None:
            agreement.update(Text("comparison cancelled", style="dim"))
            return
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
            if c.value is not None:
                text.append(f": {c.value:.3g}", style="bold")
            if c.status == "unchecked" and c.detail:
                text.append(f" ({clip(display_text(c.detail), 60)})", style="dim")
        n_search = sum(cx.found_by == "search" for cx in result.counterexamples)
        if result.counterexamples:
            found = f", {n_search} more found by search" if n_search else ""
            text.append(
                f"\n{len(result.counterexamples) - n_search} counterexamples{found}; enter loads one as the prompt",
                style="dim",
            )
        elif result.searched:
            text.append(f"\nno counterexample; the search tried {result.searched:,} more inputs", style="dim")
        agreement.update(text)
        table.clear()
        for i, cx in enumerate(result.counterexamples):
            table.add_row(
                Text(clip(display_text(format_input(cx.input)), 24) + ("*" if cx.found_by == "search" else "")),
                Text(clip(display_text(cx.expected), 10)),
                Text(clip(display_text(cx.got or ""), 10)),
                f"{cx.p_expected:.3f}" if cx.p_expected >= 0.001 else f"{cx.p_expected:.0e}",
                key=str(i),
            )
        table.display = bool(result.counterexamples)
        self._prompts = [cx.prompt for cx in result.counterexamples]

    _prompts: list[str] = []

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = event.row_key.value
        if key is not None and int(key) < len(self._prompts):
            self.post_message(CounterexampleChosen(self._prompts[int(key)]))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "compare-button":
            self.post_message(CompareRequested())
