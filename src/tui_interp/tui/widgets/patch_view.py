"""Activation patching as a table: components down, positions across (around the position
cursor); each cell how much of the clean run's metric patching that component at that position
restores (0: the corrupted run, 1: the clean run)."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.strip import Strip
from textual.widgets import Static

from tui_interp.engine.workbench import PatchView
from tui_interp.tui.text import clip, token_label
from tui_interp.tui.widgets.grid import UpDownScroll, Windowed, follow, index_width, more_marks
from tui_interp.tui.widgets.step_view import set_text

CELL = 5  # "+.52 "


def short_signed(v: float | None) -> str:
    """An effect in 4 cells: +.52, −.10, +1.0, +12 (· when undefined)."""
    if v is None:
        return "   ·"
    a = abs(v)
    if a < 0.005:
        return " .00"
    sign = "+" if v >= 0 else "−"
    if a < 0.995:
        return f"{sign}{a:.2f}"[0] + f"{a:.2f}"[1:]
    if a < 9.95:
        return f"{sign}{a:.1f}"
    return f"{sign}{min(a, 999):.0f}".rjust(4)


class PatchGrid(Windowed):
    DEFAULT_CSS = """
    PatchGrid { height: auto; width: 1fr; }
    """

    patch: PatchView | None = None
    first_col = 0

    def show(self, patch: PatchView | None) -> None:
        self.patch = patch
        self.changed(layout=True)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:  # type: ignore[override]
        return 2 + (len(self.patch.components) if self.patch else 0)

    def _key(self) -> tuple[object, ...]:
        return (id(self.patch),)

    def _build(self, width: int, height: int, *, everything: bool = False) -> list[Strip]:
        pv = self.patch
        if pv is None or not pv.components:
            return []
        base = self.rich_style
        bold, dim = base + Style(bold=True), base + Style(dim=True)
        mark = base + Style(reverse=True, bold=True)
        n = len(pv.clean_tokens)
        cw = max(CELL, index_width(n) + 1)
        label_w = max(len(c) for c in pv.components) + 1
        gutter = label_w + CELL + 1  # component, its largest effect, a space
        cursor = min(max(self.cursor, 0), n - 1)
        fit = n if everything else max(1, (width - gutter) // cw)
        first = self.first_col = follow(self.first_col, cursor, n, fit)
        cols = range(first, min(n, first + fit))
        before, after = more_marks(base, first, len(cols), n)
        head_tokens = [Segment("".ljust(label_w) + "max".rjust(CELL - 1) + "  ", bold)]
        head_index = [Segment((before.text if before else "").rjust(gutter - 1) + " ", dim)]
        for p in cols:
            head_tokens.append(Segment(clip(token_label(pv.clean_tokens[p]), cw - 1).replace(" ", "·").ljust(cw),
                                       mark if p == cursor else bold))
            head_index.append(Segment(f"{p:<{cw}}", mark if p == cursor else dim))
        if after:
            head_index.append(after)
        strips = [Strip(head_tokens), Strip(head_index)]
        for c, component in enumerate(pv.components):
            row = pv.effect[c]
            defined = [v for v in row if v is not None]
            peak = max(defined, key=abs) if defined else None
            segments = [
                Segment(component.ljust(label_w), bold),
                Segment(short_signed(peak) + "  ", self._style(peak, base)),
            ]
            for p in cols:
                v = row[p] if p < len(row) else None
                style = self._style(v, base)
                if p == cursor:
                    style = style + Style(underline=True)
                segments.append(Segment(short_signed(v).ljust(cw), style))
            strips.append(Strip(Segment.simplify(segments)))
        return strips

    @staticmethod
    def _style(v: float | None, base: Style) -> Style:
        if v is None or abs(v) < 0.1:
            return base + Style(dim=True)
        if abs(v) >= 0.5:
            return base + Style(bold=True, reverse=abs(v) >= 0.8)
        return base

    def text(self) -> str:
        return "\n".join(strip.text.rstrip() for strip in self._build(0, 0, everything=True))


class PatchPanel(UpDownScroll, can_focus=True):
    """Set with `show_patch`; `set_cursor` moves the position cursor."""

    BORDER_TITLE = "Patching"
    ALLOW_MAXIMIZE = True

    patch: PatchView | None = None
    cursor: int = 0

    def compose(self) -> ComposeResult:
        yield Static(self._empty(), id="patch-summary")
        yield PatchGrid(id="patch-grid")

    @staticmethod
    def _empty() -> Text:
        return Text(
            "Activation patching: each component's activations, position by position, copied from the "
            "prompt on view (clean) into a corrupted prompt of the same length, and how much of the clean "
            "prediction that restores.\nPress e to give the corrupted prompt and the target token.",
            style="dim",
        )

    def show_patch(self, patch: PatchView | None, note: str = "") -> None:
        self.patch = patch
        summary = self.query_one("#patch-summary", Static)
        if patch is None:
            set_text(summary, Text(note, style="dim") if note else self._empty())
            self.query_one(PatchGrid).show(None)
            return
        self.cursor = min(self.cursor, len(patch.clean_tokens) - 1)
        text = Text()
        text.append("clean   ", style="bold")
        text.append(clip(token_label(patch.clean_prompt), 60))
        text.append("\ncorrupt ", style="bold")
        text.append(clip(token_label(patch.corrupt_prompt), 60))
        text.append("\nmetric  ", style="bold")
        target = clip(token_label(patch.target), 12)
        if patch.other is not None:
            text.append(f"logit({target}) − logit({clip(token_label(patch.other), 12)})")
        else:
            text.append(f"logit({target})")
        text.append(f" at the last position: clean {patch.clean:.3f}, corrupt {patch.corrupt:.3f}", style="dim")
        text.append("\ncells: 0 = corrupt, 1 = clean   , . position   e edit", style="dim")
        set_text(summary, text)
        grid = self.query_one(PatchGrid)
        grid.cursor = self.cursor
        grid.show(patch)

    def set_cursor(self, cursor: int) -> None:
        self.cursor = cursor
        if self.patch is not None:
            self.query_one(PatchGrid).set_cursor(cursor)
