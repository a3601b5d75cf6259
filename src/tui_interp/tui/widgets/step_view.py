"""The step view: what the model has computed so far, at the current step of the pass.

From top to bottom: the next-token prediction (and, with interventions, how it changed), the
step's own picture (the selected head's attention pattern at an attention step, the top neurons
at an MLP step), then one row per position: the token, the residual-stream norm after this
step, and the logit lens's top predictions at this depth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import HorizontalScroll, VerticalScroll
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from tui_interp.engine.workbench import StepView
from tui_interp.labels import Label
from tui_interp.model.tokenizer import display_text
from tui_interp.tui.text import clip, token_label
from tui_interp.tui.widgets.heatmap import AttentionHeatmap

if TYPE_CHECKING:
    from tui_interp.engine.lens import TokenScore

BAR_WIDTH = 10
EIGHTHS = " ▏▎▍▌▋▊▉█"
LENS_MAX = 5  # lens predictions per position, as many as fit


def bar(value: float, top: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar of `width` cells, full at `top`, in eighths of a cell."""
    if top <= 0 or value <= 0:
        return " " * width
    eighths = int(round(min(1.0, value / top) * width * 8))
    full, part = divmod(eighths, 8)
    return ("█" * full + (EIGHTHS[part] if part else "")).ljust(width)


def tok(p: TokenScore, width: int = 10) -> str:
    return clip(token_label(p.text), width)


def pct(p: float) -> str:
    return f"{100 * p:.1f}%" if p >= 0.001 else f"{100 * p:.2f}%"


class StepScroll(VerticalScroll, inherit_bindings=False):
    """Scrolls up and down only: left and right step through the pass instead."""

    BINDINGS = [
        Binding("up", "scroll_up", "Scroll up", show=False),
        Binding("down", "scroll_down", "Scroll down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
    ]


class StepPanel(StepScroll):
    """Set `view` (and `labels`) and it redraws; it computes nothing itself."""

    BORDER_TITLE = "Step"

    view: reactive[StepView | None] = reactive(None, always_update=True)
    labels: reactive[dict[str, Label]] = reactive(dict, always_update=True)

    def compose(self) -> ComposeResult:
        yield Static("Type a prompt above and press enter.", id="summary")
        yield Static("", id="focus-title", classes="section-title")
        with HorizontalScroll(id="heatmap-wrap"):
            yield AttentionHeatmap(id="heatmap")
        yield Static("", id="neurons")
        yield Static("", id="positions-title", classes="section-title")
        yield PositionsTable(id="positions")

    def watch_view(self) -> None:
        self._render_all()

    def watch_labels(self) -> None:
        self._render_all()

    def _render_all(self) -> None:
        if not self.is_mounted:
            return
        v = self.view
        summary = self.query_one("#summary", Static)
        focus_title = self.query_one("#focus-title", Static)
        wrap = self.query_one("#heatmap-wrap")
        heatmap = self.query_one(AttentionHeatmap)
        neurons = self.query_one("#neurons", Static)
        positions_title = self.query_one("#positions-title", Static)
        positions = self.query_one(PositionsTable)
        if v is None:
            summary.update("Type a prompt above and press enter.")
            for w in (focus_title, wrap, neurons, positions_title, positions):
                w.display = False
            return
        self.border_title = f"Step {v.index + 1}/{len(v.steps)}: {v.name}"
        summary.update(self._summary(v))
        if v.attention is not None:
            a = v.attention
            label = self.labels.get(f"L{a.layer}.H{a.head}")
            extra = f" — {clip(display_text(label.name), 30)}" if label else ""
            focus_title.update(Text(f"Attention L{a.layer}.H{a.head}{extra}  (query ↓ key →, [ ] head)"))
            heatmap.tokens = v.tokens
            heatmap.attention = a
            focus_title.display = wrap.display = True
            neurons.display = False
        elif v.neurons:
            focus_title.update(Text(f"Top neurons of {v.name} at position {v.position} ({clip(token_label(v.tokens[v.position]), 12)})"))
            neurons.update(self._neurons(v))
            focus_title.display = neurons.display = True
            wrap.display = False
        else:
            focus_title.display = wrap.display = neurons.display = False
        depth = "after " + v.name if v.name != "unembed" else "final"
        positions_title.update(Text(f"‖resid‖ and logit lens {depth}"))
        positions.view = v
        positions_title.display = positions.display = True

    def _summary(self, v: StepView) -> Text:
        text = Text()
        text.append("Next: ", style="bold")
        for i, p in enumerate(v.prediction[:3]):
            if i:
                text.append("   ")
            text.append(tok(p, 12), style="bold" if i == 0 else "")
            text.append(f" {pct(p.prob)}", style="dim")
        e = v.effect
        if e is not None:
            text.append("\nWith ", style="bold")
            text.append(", ".join(e.interventions), style="reverse")
            text.append("\n  ")
            text.append(tok(e.target, 12), style="bold")
            text.append(f" {pct(e.target.prob)} → {pct(e.target_ablated.prob)}  ")
            sign = "+" if e.metric_change >= 0 else "−"
            text.append(f"Δlogit {sign}{abs(e.metric_change):.3f}", style="bold")
            new_top = e.ablated_top[0]
            if new_top.id != e.target.id:
                text.append("\n  now predicts ")
                text.append(tok(new_top, 12), style="bold")
                text.append(f" {pct(new_top.prob)}")
            else:
                text.append("  same top", style="dim")
        return text

    def _neurons(self, v: StepView) -> Table:
        table = Table(box=None, show_header=True, header_style="bold", pad_edge=False, expand=False)
        table.add_column("neuron")
        table.add_column("act", justify="right")
        table.add_column("", no_wrap=True)
        table.add_column("label", overflow="ellipsis", no_wrap=True)
        top = max((n.activation for n in v.neurons), default=0.0)
        for n in v.neurons:
            label = self.labels.get(n.component)
            table.add_row(n.component, f"{n.activation:.3f}", bar(n.activation, top), Text(display_text(label.name)) if label else "")
        return table


class PositionsTable(Widget):
    """One row per position: token, residual norm (number and bar), logit-lens top predictions.

    Fixed-width columns sized to the widget: as many lens predictions as fit (1 to LENS_MAX)."""

    DEFAULT_CSS = """
    PositionsTable { height: auto; }
    """

    view: reactive[StepView | None] = reactive(None, always_update=True)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:  # type: ignore[override]
        return 1 + (len(self.view.tokens) if self.view else 0)

    def watch_view(self, old: StepView | None, new: StepView | None) -> None:
        self._strips = None
        def rows(v):
            return (len(v.tokens) if v else -1)
        self.refresh(layout=rows(old) != rows(new))  # as many rows as before: no new layout

    _strips: list[Strip] | None = None
    _strips_key: tuple[object, ...] = ()

    def render_line(self, y: int) -> Strip:
        key = (self.size.width, self.rich_style)
        if self._strips is None or key != self._strips_key:
            self._strips = self._build(self.size.width or 80)
            self._strips_key = key
        if 0 <= y < len(self._strips):
            return self._strips[y].adjust_cell_length(self.size.width, self.rich_style)
        return Strip.blank(self.size.width, self.rich_style)

    def _build(self, width: int) -> list[Strip]:
        v = self.view
        if v is None:
            return []
        base = self.rich_style
        bold, dim = base + Style(bold=True), base + Style(dim=True)
        token_w, norm_w, bar_w, tok_w = 7, 6, 4, 5
        entry_w = tok_w + 4  # "w26  .52 "
        fixed = 4 + token_w + 1 + norm_w + 1
        n_lens = max(1, min(LENS_MAX, (width - fixed - bar_w - 1) // entry_w))
        show_bar = width - fixed - n_lens * entry_w >= bar_w + 1
        head = f"{'pos':>3} {'token':<{token_w}} {'‖resid‖':>{norm_w}} " + (" " * (bar_w + 1) if show_bar else "")
        strips = [Strip([Segment(head + f"lens top {n_lens}", bold)])]
        top = max(v.resid_norms, default=0.0)
        for i, token in enumerate(v.tokens):
            norm = v.resid_norms[i]
            segments = [
                Segment(f"{i:>3} ", dim),
                Segment(clip(token_label(token), token_w).ljust(token_w) + " ", bold),
                Segment(f"{norm:>{norm_w}.2f} " if norm < 1000 else f"{norm:>{norm_w}.0f} ", base),
            ]
            if show_bar:
                segments.append(Segment(bar(norm, top, bar_w) + " ", base))
            for p in v.lens[i][:n_lens]:
                segments.append(Segment(clip(token_label(p.text), tok_w).ljust(tok_w), base))
                segments.append(Segment(short_prob(p.prob) + " ", dim))
            strips.append(Strip(Segment.simplify(segments)))
        return strips

    def text(self, width: int = 80) -> str:
        """The table as plain text at `width` cells."""
        return "\n".join(strip.text.rstrip() for strip in self._build(width))


def short_prob(p: float) -> str:
    """A probability in 3 cells: .52, .05, 1.0."""
    if p >= 0.995:
        return "1.0"
    return f"{p:.2f}"[1:]
