"""The per-position logit lens: what the residual stream predicts after the embedding and after
every block (rows), at every position of the prompt (columns, around the position cursor), and
below it the top predictions at the cursor's position, stage by stage."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.strip import Strip
from textual.widgets import Static

from tui_interp.engine.workbench import LensView
from tui_interp.tui.text import clip, token_label
from tui_interp.tui.widgets.grid import UpDownScroll, Windowed, follow, index_width, more_marks
from tui_interp.tui.widgets.step_view import set_text, short_prob

CELL_TOKEN = 4  # characters of the top token in a cell: "tok .52"
STAGE_WIDTH = 6


class LensGrid(Windowed):
    """Stages down, positions across: each cell the top token after that stage and its probability."""

    DEFAULT_CSS = """
    LensGrid { height: auto; width: 1fr; }
    """

    lens: LensView | None = None
    first_col = 0

    def show(self, lens: LensView | None) -> None:
        self.lens = lens
        self.changed(layout=True)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:  # type: ignore[override]
        return 2 + (len(self.lens.stages) if self.lens else 0)

    def _key(self) -> tuple[object, ...]:
        return (id(self.lens),)

    def _build(self, width: int, height: int, *, everything: bool = False) -> list[Strip]:
        lens = self.lens
        if lens is None or not lens.rows:
            return []
        base = self.rich_style
        bold, dim = base + Style(bold=True), base + Style(dim=True)
        mark = base + Style(reverse=True, bold=True)
        n = len(lens.rows)
        cw = max(CELL_TOKEN + 5, index_width(n) + 1)
        cursor = min(max(self.cursor, 0), n - 1)
        fit = n if everything else max(1, (width - STAGE_WIDTH) // cw)
        first = self.first_col = follow(self.first_col, cursor, n, fit)
        cols = range(first, min(n, first + fit))
        before, after = more_marks(base, first, len(cols), n)
        head_tokens = [Segment("".ljust(STAGE_WIDTH), dim)]
        head_index = [Segment((before.text if before else "").ljust(STAGE_WIDTH), dim)]
        for p in cols:
            style = mark if p == cursor else bold
            head_tokens.append(Segment(clip(token_label(lens.tokens[p]), cw - 1).replace(" ", "·").ljust(cw), style))
            head_index.append(Segment(f"{p:<{cw}}", mark if p == cursor else dim))
        if after:
            head_index.append(after)
        strips = [Strip(head_tokens), Strip(head_index)]
        for s, stage in enumerate(lens.stages):
            segments = [Segment(clip(stage, STAGE_WIDTH - 1).ljust(STAGE_WIDTH), bold)]
            for p in cols:
                top = lens.rows[p][s][0] if lens.rows[p][s] else None
                if top is None:
                    segments.append(Segment(" " * cw, base))
                    continue
                cell = clip(token_label(top.text), CELL_TOKEN).ljust(CELL_TOKEN) + " " + short_prob(top.prob)
                style = bold if top.prob >= 0.5 else dim if top.prob < 0.1 else base
                if p == cursor:
                    style = style + Style(underline=True)
                segments.append(Segment(cell.ljust(cw), style))
            strips.append(Strip(Segment.simplify(segments)))
        return strips

    def text(self) -> str:
        return "\n".join(strip.text.rstrip() for strip in self._build(0, 0, everything=True))


class LensPanel(UpDownScroll, can_focus=True):
    """Set with `show_lens`; `set_cursor` moves the position cursor."""

    BORDER_TITLE = "Lens"
    ALLOW_MAXIMIZE = True

    lens: LensView | None = None
    cursor: int = 0

    def compose(self) -> ComposeResult:
        yield Static(Text("Type a prompt above and press enter: the lens of every position shows here.", style="dim"),
                     id="lens-summary")
        yield LensGrid(id="lens-grid")
        yield Static("", id="lens-detail")

    def show_lens(self, lens: LensView | None, note: str = "") -> None:
        self.lens = lens
        summary = self.query_one("#lens-summary", Static)
        if lens is None:
            set_text(summary, Text(note or "computing the lens…", style="dim"))
            self.query_one(LensGrid).show(None)
            self.query_one("#lens-detail", Static).update("")
            return
        self.cursor = min(self.cursor, len(lens.tokens) - 1)
        text = Text("Logit lens: top token after each stage, at each position", style="bold")
        text.append("   , . position", style="dim")
        if note:
            text.append("\n" + note, style="dim")
        set_text(summary, text)
        grid = self.query_one(LensGrid)
        grid.cursor = self.cursor
        grid.show(lens)
        self._detail()

    def set_cursor(self, cursor: int) -> None:
        self.cursor = cursor
        if self.lens is not None:
            self.query_one(LensGrid).set_cursor(cursor)
            self._detail()

    def _detail(self) -> None:
        lens = self.lens
        if lens is None:
            return
        p = min(self.cursor, len(lens.rows) - 1)
        text = Text()
        text.append(f"At {p} ", style="bold")
        text.append(clip(token_label(lens.tokens[p]), 16), style="bold reverse")
        text.append("  top 3 after each stage", style="dim")
        for s, stage in enumerate(lens.stages):
            text.append(f"\n{stage:<{STAGE_WIDTH}}", style="bold")
            for t in lens.rows[p][s]:
                text.append(clip(token_label(t.text), 6).ljust(6))
                text.append(f" {short_prob(t.prob)}  ", style="dim")
        self.query_one("#lens-detail", Static).update(text)
