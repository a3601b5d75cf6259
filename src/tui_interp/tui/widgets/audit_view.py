"""The generalisation audit view: which of the open model (A) and a second one (B) generalise
beyond the theory's train split, and why.

From top to bottom: the progress while it runs (phase, model, time), then each model's verdict
and score, the ranking, the train set's rule and symmetries, a small plot of every signal's
value per model side by side (bars of text blocks, so it reads in monochrome and NO_COLOR
terminals; models are told apart by their letters, never by colour alone), and each model's
evidence as a table (signal, value, what it says). It computes nothing itself.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Static

from tui_interp.model.tokenizer import display_text
from tui_interp.tui.text import clip
from tui_interp.tui.widgets.grid import UpDownScroll, bar
from tui_interp.tui.widgets.step_view import set_text

if TYPE_CHECKING:
    from tui_interp.engine.audit import AuditResult
    from tui_interp.engine.compare import Progress

BOUNDED = frozenset({"rule", "symmetry", "ablation", "noise", "fourier", "rank"})  # values in 0..1: bars full at 1
LABEL_WIDTH = 14
VALUE_WIDTH = 5
PHASES = {"loading": "loading B's weights", "rule": "searching the train set's rule", "answers": "answering the domain:",
          "signals": "measuring the signals:", "done": "done"}


def tags(n: int) -> list[str]:
    """The models' letters: A is the open model, B the second."""
    return [chr(ord("A") + i) for i in range(n)]


def value_text(value: float | None, signal: str = "") -> str:
    """A signal's value in at most 5 cells: 0.30 (0..1 signals), 0.024, -0.23, 4.68, -9.8, 12.3, 1234, 2e-03."""
    if value is None:
        return "–"
    if signal in BOUNDED:
        return f"{value:.2f}"
    size = abs(value)
    if size == 0:
        return "0"
    if size < 0.01 or size >= 10_000:
        return f"{value:.0e}"
    digits = 3 if size < 1 else 2 if size < 10 else 1 if size < 100 else 0
    return f"{value:.{max(0, digits - (value < 0))}f}"


class SignalBars(Widget):
    """Each signal's value per model, side by side when they fit, else one row per model."""

    DEFAULT_CSS = """
    SignalBars { height: auto; }
    """

    result: AuditResult | None = None

    def show(self, result: AuditResult | None) -> None:
        self.result = result
        self.refresh(layout=True)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:  # type: ignore[override]
        return len(self.lines(width))

    def render(self) -> Text:
        text = Text("\n").join(self.lines(self.size.width))
        text.no_wrap = True
        text.overflow = "ellipsis"
        return text

    def lines(self, width: int) -> list[Text]:
        result = self.result
        if result is None or not result.models:
            return []
        width = width or 80
        models = result.models
        letters = tags(len(models))
        signals: list[str] = []
        for m in models:
            for e in m.evidence:
                if e.signal not in signals:
                    signals.append(e.signal)
        values = {(i, e.signal): e.value for i, m in enumerate(models) for e in m.evidence}
        n = len(models)
        per_model = 2 + 1 + VALUE_WIDTH  # "A " bar " 1.00"
        side = (width - LABEL_WIDTH - 2 * (n - 1) - n * per_model) // n
        stacked = side < 6
        bar_w = max(4, min(24, (width - LABEL_WIDTH - per_model) if stacked else side))
        lines = [Text("Signals per model", style="bold"), Text("bars 0 to 1: higher looks like it generalises", style="dim")]
        scaled = negative = False
        for signal in signals:
            row_values = [values.get((i, signal)) for i in range(n)]
            if signal in BOUNDED:
                top = 1.0
            else:
                top = max((abs(v) for v in row_values if v is not None), default=0.0)
                scaled = True
            name = clip(signal + ("" if signal in BOUNDED else " *"), LABEL_WIDTH - 1).ljust(LABEL_WIDTH)
            cells = []
            for letter, v in zip(letters, row_values, strict=True):
                cell = Text(f"{letter} ", style="bold")
                if v is None:
                    cell.append("n/a".ljust(bar_w), style="dim")
                elif v < 0:  # drawn in the light shade: a negative value, as long as its size
                    negative = True
                    cells_n = round(min(1.0, -v / top) * bar_w) if top > 0 else 0
                    cell.append(("░" * max(1, cells_n)).ljust(bar_w), style="dim")
                else:
                    cell.append(bar(v, top, bar_w))
                cell.append(" " + value_text(v, signal).rjust(VALUE_WIDTH))
                cells.append(cell)
            if stacked:
                for i, cell in enumerate(cells):
                    line = Text(name if i == 0 else " " * LABEL_WIDTH, style="bold" if i == 0 else "")
                    lines.append(line + cell)
            else:
                line = Text(name, style="bold")
                for i, cell in enumerate(cells):
                    if i:
                        line.append("  ")
                    line.append_text(cell)
                lines.append(line)
        if scaled:
            lines.append(Text("* bars scaled to the largest size", style="dim"))
        if negative:
            lines.append(Text("░ a negative value (the bar: its size)", style="dim"))
        return lines


class AuditPanel(UpDownScroll, can_focus=True):
    """Set with `running`, `show_progress`, `show_result` and `show_note`."""

    BORDER_TITLE = "Generalisation audit"
    ALLOW_MAXIMIZE = True

    result: AuditResult | None = None
    names: list[str] = []  # the models audited, A first
    _started: float | None = None
    _last: Progress | None = None
    _ticker: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text("Press A to audit the theory's train split: which model generalises beyond it?", style="dim"),
                     id="audit-status")
        yield Static("", id="audit-verdicts")
        yield SignalBars(id="audit-bars")
        yield Static("", id="audit-train")
        yield Static("", id="audit-evidence")

    def running(self, names: list[str]) -> None:
        """An audit of these models started: no stale result while it runs."""
        self.names = names
        self.result = None
        self._started, self._last = time.monotonic(), None
        self._clear()
        self._status()
        if self._ticker is None:
            self._ticker = self.set_interval(0.5, self._status)
        else:
            self._ticker.resume()

    def _stop(self) -> None:
        self._started = None
        if self._ticker is not None:
            self._ticker.pause()

    def show_progress(self, info: Progress) -> None:
        self._last = info
        self._status()

    def _status(self) -> None:
        if self._started is None:
            return
        info = self._last
        elapsed = time.monotonic() - self._started
        line = Text("Auditing ", style="bold")
        line.append(" and ".join(f"{t} {clip(display_text(n), 24)}" for t, n in zip(tags(len(self.names)), self.names, strict=False)))
        line.append("\n")
        if info is None:
            line.append("starting…")
        else:
            words = PHASES.get(info.phase, info.phase)
            line.append(words)
            if info.phase in ("answers", "signals") and info.total:
                i = min(info.done, len(self.names) - 1)
                line.append(f" {tags(len(self.names))[i]} ({info.done + 1} of {info.total})")
        line.append(f" · {elapsed:.0f} s", style="dim")
        line.append("\nesc cancels", style="dim")
        set_text(self.query_one("#audit-status", Static), line)

    def show_note(self, note: str) -> None:
        """Cancelled, failed, or why it cannot run: one line, in place of any result."""
        self._stop()
        self.result = None
        set_text(self.query_one("#audit-status", Static), Text(note))
        self._clear()

    def _clear(self) -> None:
        for name in ("#audit-verdicts", "#audit-train", "#audit-evidence"):
            widget = self.query_one(name, Static)
            widget.update("")
            widget.display = False
        self.query_one(SignalBars).show(None)

    def show_result(self, result: AuditResult) -> None:
        self._stop()
        self.result = result
        letters = tags(len(result.models))
        letter_of = {m.model: t for t, m in zip(letters, result.models, strict=True)}
        set_text(self.query_one("#audit-status", Static), Text("Generalisation beyond the train split", style="bold"))
        verdicts = Text()
        for i, m in enumerate(result.models):
            if i:
                verdicts.append("\n")
            verdicts.append(f"{letters[i]} {display_text(m.model)}", style="bold")
            verdicts.append(f"  score {m.score:.2f} · train {m.train_agreement:.1%}\n  ", style="dim")
            verdicts.append("✓ generalises" if m.generalises else "✗ does not generalise", style="bold" if m.generalises else "bold reverse")
        verdicts.append("\nRanking: ", style="bold")
        verdicts.append("  ".join(f"{i + 1}. {letter_of.get(name, '?')}" for i, name in enumerate(result.ranking)))
        verdicts.append("  (best first)", style="dim")
        self.query_one(SignalBars).show(result)

        train = Text()
        train.append("Train: ", style="bold")
        train.append(display_text(result.train))
        train.append("; the models answered ", style="dim")
        train.append(display_text(result.inputs), style="dim")
        train.append("\nRule: ", style="bold")
        if result.rule is not None:
            train.append(f"expect {display_text(result.rule)}")
            train.append(f" (size {result.rule_size})", style="dim")
        else:
            train.append("none of the theory language fits the train answers", style="dim")
        train.append("\nSymmetries: ", style="bold")
        train.append(", ".join(display_text(s) for s in result.symmetries) if result.symmetries else "none seen in the train answers",
                     style="" if result.symmetries else "dim")
        for name, content in (("#audit-verdicts", verdicts), ("#audit-train", train)):
            widget = self.query_one(name, Static)
            widget.update(content)
            widget.display = True

        tables: list[Table | Text] = []
        for letter, m in zip(letters, result.models, strict=True):
            verdict = "generalises" if m.generalises else "does not generalise"
            table = Table(title=Text(f"{letter} {display_text(m.model)}: {verdict} (score {m.score:.2f})", style="bold"),
                          title_justify="left", box=box.SIMPLE_HEAD, expand=True, pad_edge=False, show_edge=False)
            table.add_column("signal", no_wrap=True, style="bold")
            table.add_column("value", justify="right", no_wrap=True)
            table.add_column("what it says", ratio=1)
            for e in m.evidence:
                table.add_row(Text(display_text(e.signal)), value_text(e.value, e.signal), Text(display_text(e.note)))
            if tables:
                tables.append(Text(""))
            tables.append(table)
        evidence = self.query_one("#audit-evidence", Static)
        evidence.update(Group(*tables))
        evidence.display = True
