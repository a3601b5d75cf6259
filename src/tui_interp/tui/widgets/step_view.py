"""The step view: what the model has computed so far, at the current step of the pass.

From top to bottom: the next-token prediction (and, with interventions, how it changed and
what mean/resample averaged over), the step's own picture (the selected head's attention
pattern at an attention step, the top neurons at the cursor's position at an MLP step), then
one row per position: the token, the residual-stream norm after this step, and the logit
lens's top predictions at this depth. The picture and the table fill the panel and follow the
position cursor (`,` `.`), which stays where it is from one step to the next.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from tui_interp.engine.workbench import StepView
from tui_interp.labels import Label
from tui_interp.model.tokenizer import display_text
from tui_interp.tui.text import clip, token_label
from tui_interp.tui.widgets.grid import Windowed, bar, follow, index_width, more_marks
from tui_interp.tui.widgets.heatmap import AttentionHeatmap

if TYPE_CHECKING:
    from tui_interp.engine.lens import TokenScore

LENS_MAX = 5  # lens predictions per position, as many as fit


def tok(p: TokenScore, width: int = 10) -> str:
    return clip(token_label(p.text), width)


def pct(p: float) -> str:
    return f"{100 * p:.1f}%" if p >= 0.001 else f"{100 * p:.2f}%"


def set_text(widget: Static | Title, content: object) -> None:
    """Update a Static only when what it shows changed (an update costs a layout)."""
    key = content.plain if isinstance(content, Text) else content
    if getattr(widget, "_shown_key", None) != key or not isinstance(content, (Text, str)):
        widget._shown_key = key  # type: ignore[union-attr]
        widget.update(content)  # type: ignore[arg-type]


def show(widget: Widget, visible: bool) -> None:
    if widget.display != visible:
        widget.display = visible


class Title(Widget):
    """One line of text, cut to fit: a new text redraws it without a new layout (a Static's does)."""

    DEFAULT_CSS = """
    Title { height: 1; }
    """

    _text: Text = Text()

    def update(self, text: Text | str) -> None:
        self._text = text if isinstance(text, Text) else Text(text)
        self.refresh()

    def render(self) -> Text:
        text = self._text.copy()
        text.no_wrap = True
        text.overflow = "ellipsis"
        return text


class StepPanel(Vertical, can_focus=True):
    """Call `show_view(view, labels)` and it redraws; `set_cursor(position)` moves the cursor.
    It computes nothing itself."""

    BORDER_TITLE = "Step"
    ALLOW_MAXIMIZE = True
    BINDINGS = [
        Binding("up", "screen.cursor(-1)", "Position up", show=False),
        Binding("down", "screen.cursor(1)", "Position down", show=False),
        Binding("pageup", "screen.cursor(-10)", "Position up 10", show=False),
        Binding("pagedown", "screen.cursor(10)", "Position down 10", show=False),
    ]

    view: StepView | None = None
    labels: dict[str, Label] = {}
    cursor: int = 0
    title_prefix = ""  # "A model · " or "B model · " when two models are side by side
    waiting = "Type a prompt above and press enter."

    def compose(self) -> ComposeResult:
        yield Static("", id="banner")
        yield Static(self.waiting, id="summary")
        yield Title(id="focus-title", classes="section-title")
        yield AttentionHeatmap(id="heatmap")
        yield Title(id="positions-title", classes="section-title")
        yield PositionsTable(id="positions")

    def on_mount(self) -> None:
        self.query_one("#banner", Static).display = False
        self._render_all()

    def set_banner(self, text: Text | str) -> None:
        """A line or two above the prediction (B of a diff: what it is, the diff's state)."""
        banner = self.query_one("#banner", Static)
        set_text(banner, text)
        show(banner, bool(text.plain if isinstance(text, Text) else text))

    def set_waiting(self, text: str) -> None:
        """What the panel says before it has a view."""
        self.waiting = text
        if self.view is None and self.is_mounted:
            set_text(self.query_one("#summary", Static), text)

    def show_view(self, view: StepView | None, labels: dict[str, Label] | None = None) -> None:
        self.view = view
        if labels is not None:
            self.labels = labels
        self._render_all()

    def set_labels(self, labels: dict[str, Label]) -> None:
        self.labels = labels
        self._render_all()

    def set_cursor(self, cursor: int) -> None:
        self.cursor = cursor
        v = self.view
        if v is None:
            return
        self.query_one(AttentionHeatmap).set_cursor(cursor)
        self.query_one(PositionsTable).set_cursor(cursor)
        if v.neurons_at:
            self._neurons_title(v)

    def _render_all(self) -> None:
        if not self.is_mounted:
            return
        v = self.view
        summary = self.query_one("#summary", Static)
        focus_title = self.query_one("#focus-title", Title)
        heatmap = self.query_one(AttentionHeatmap)
        positions_title = self.query_one("#positions-title", Title)
        positions = self.query_one(PositionsTable)
        if v is None:
            set_text(summary, self.waiting)
            for w in (focus_title, heatmap, positions_title, positions):
                show(w, False)
            return
        self.cursor = min(self.cursor, len(v.tokens) - 1)
        self.border_title = f"{self.title_prefix}Step {v.index}/{len(v.steps) - 1}: {v.name}"
        set_text(summary, self._summary(v))
        if v.attention is not None:
            a = v.attention
            label = self.labels.get(f"L{a.layer}.H{a.head}")
            title = Text(f"Attention L{a.layer}.H{a.head}")
            if label:
                title.append(f" — {clip(display_text(label.name), 30)}", style="italic")
            title.append("   [ ] head", style="dim")
            set_text(focus_title, title)
            heatmap.cursor = self.cursor
            heatmap.show(a, v.tokens)
            show(focus_title, True)
            show(heatmap, True)
        elif v.neurons_at:
            self._neurons_title(v)
            heatmap.cursor = self.cursor
            heatmap.show_neurons(v.neurons_at, v.tokens, self.labels)
            show(focus_title, True)
            show(heatmap, True)
        else:
            show(focus_title, False)
            show(heatmap, False)
        depth = "after " + v.name if v.name != "unembed" else "final"
        title = Text(f"‖resid‖ and logit lens {depth}")
        title.append("  , . position", style="dim")
        set_text(positions_title, title)
        positions.cursor = self.cursor
        positions.show(v)
        show(positions_title, True)
        show(positions, True)

    def _neurons_title(self, v: StepView) -> None:
        p = min(self.cursor, len(v.neurons_at) - 1)
        title = Text(f"Top neurons of {v.name} at {p} ({clip(token_label(v.tokens[p]), 12)})")
        title.append("   , . position", style="dim")
        set_text(self.query_one("#focus-title", Title), title)

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
            reference = getattr(e, "reference", None)
            if reference:
                text.append("\n  mean/resample over ", style="dim")
                text.append(display_text(reference), style="dim")
        return text


class PositionsTable(Windowed):
    """One row per position: token, residual norm (number and bar), logit-lens top predictions.

    Fixed-width columns sized to the widget: as many lens predictions as fit (1 to LENS_MAX);
    as many rows as fit, around the cursor's row (marked)."""

    DEFAULT_CSS = """
    PositionsTable { height: 1fr; min-height: 2; }
    """

    view: StepView | None = None
    first_row = 0

    def show(self, view: StepView) -> None:
        self.view = view
        self.changed()

    def _key(self) -> tuple[object, ...]:
        return (id(self.view),)

    def _build(self, width: int, height: int, *, everything: bool = False) -> list[Strip]:
        v = self.view
        if v is None:
            return []
        width = width or 80
        base = self.rich_style
        bold, dim = base + Style(bold=True), base + Style(dim=True)
        mark = base + Style(reverse=True, bold=True)
        n = len(v.tokens)
        iw = max(3, index_width(n))
        token_w, norm_w, bar_w, tok_w = 7, 6, 4, 6
        entry_w = tok_w + 4  # "w26   .52 "
        fixed = iw + 1 + token_w + 1 + norm_w + 1
        n_lens = max(1, min(LENS_MAX, (width - fixed - bar_w - 1) // entry_w))
        show_bar = width - fixed - n_lens * entry_w >= bar_w + 1
        cursor = min(max(self.cursor, 0), n - 1)
        fit = n if everything else max(1, height - 1)
        first = self.first_row = follow(self.first_row, cursor, n, fit)
        rows = range(first, min(n, first + fit))
        head = f"{'pos':>{iw}} {'token':<{token_w}} {'‖resid‖':>{norm_w}} " + (" " * (bar_w + 1) if show_bar else "")
        head += f"lens top {n_lens}"
        before, after = more_marks(base, first, len(rows), n)
        marks = " ".join(m.text.strip() for m in (before, after) if m)
        strips = [Strip([Segment(head, bold), Segment(("  " + marks) if marks else "", dim)])]
        top = max(v.resid_norms, default=0.0)
        for i in rows:
            here = i == cursor
            norm = v.resid_norms[i]
            segments = [
                Segment(f"{i:>{iw}} ", mark if here else dim),
                Segment(clip(token_label(v.tokens[i]), token_w).ljust(token_w), mark if here else bold),
                Segment(" ", base),
                Segment(f"{norm:>{norm_w}.2f} " if norm < 1000 else f"{norm:>{norm_w}.0f} ", base),
            ]
            if show_bar:
                segments.append(Segment(bar(norm, top, bar_w) + " ", base))
            for p in v.lens[i][:n_lens]:
                segments.append(Segment(clip(token_label(p.text), tok_w - 1).ljust(tok_w), base))
                segments.append(Segment(short_prob(p.prob) + " ", dim))
            strips.append(Strip(Segment.simplify(segments)))
        return strips

    def text(self, width: int = 80) -> str:
        """The whole table (every row) as plain text at `width` cells."""
        return "\n".join(strip.text.rstrip() for strip in self._build(width, 0, everything=True))


def short_prob(p: float) -> str:
    """A probability in 3 cells: .52, .05, 1.0."""
    if p >= 0.995:
        return "1.0"
    return f"{p:.2f}"[1:]
