"""An attention pattern as a heatmap, token labels on both axes (queries down, keys across).

Each cell is two characters of a shade ramp ( ░▒▓█), so the picture reads in monochrome and
NO_COLOR terminals too; in colour the shade is also tinted from the theme's `heatmap-cold` to
`heatmap-hot`. The widget is as wide as the pattern needs; its container scrolls.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.color import Color, ColorParseError
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from tui_interp.engine.workbench import AttentionPattern
from tui_interp.model.tokenizer import display_text
from tui_interp.tui.text import clip, token_label

SHADES = " ░▒▓█"
CELLS = [shade * 2 + " " for shade in SHADES]
COL_LABEL_ROWS = 6  # characters of each key token written down its column
ROW_LABEL_WIDTH = 10
GUTTER = 4 + ROW_LABEL_WIDTH + 1  # "pos " + label + " "
TAIL_TOKEN = 8  # "→ token 0.00" after each row: the key it attends to most


class AttentionHeatmap(Widget):
    DEFAULT_CSS = """
    AttentionHeatmap { width: auto; height: auto; }
    """

    attention: reactive[AttentionPattern | None] = reactive(None)
    tokens: reactive[tuple[str, ...]] = reactive(tuple)

    def get_content_width(self, container: object, viewport: object) -> int:  # type: ignore[override]
        n = len(self.attention.pattern) if self.attention else 0
        longest = max((len(display_text(t)) for t in self.tokens[:n]), default=1)
        return GUTTER + 3 * n + 2 + min(TAIL_TOKEN, longest) + 5

    def get_content_height(self, container: object, viewport: object, width: int) -> int:  # type: ignore[override]
        if self.attention is None:
            return 1
        return self._label_rows() + 1 + len(self.attention.pattern)

    def _label_rows(self) -> int:
        return max(1, min(COL_LABEL_ROWS, max((len(display_text(t)) for t in self.tokens), default=1)))

    def _ramp(self) -> tuple[Color, Color] | None:
        """The cold and hot colours of the theme, or None for ANSI themes (shades only)."""
        app = self.app
        theme = app.current_theme
        if theme is None or theme.ansi:
            return None
        variables = app.theme_variables
        try:
            cold = Color.parse(variables.get("heatmap-cold", variables.get("background", "black")))
            hot = Color.parse(variables.get("heatmap-hot", variables.get("accent", "white")))
        except ColorParseError:
            return None
        return cold, hot

    def watch_attention(self, old: AttentionPattern | None, new: AttentionPattern | None) -> None:
        self._strips = None
        old_n = len(old.pattern) if old else -1
        self.refresh(layout=old_n != (len(new.pattern) if new else -1))  # same size: no new layout

    def watch_tokens(self, old: tuple[str, ...], new: tuple[str, ...]) -> None:
        self._strips = None
        self.refresh(layout=len(old) != len(new))

    _strips: list[Strip] | None = None
    _strips_key: tuple[object, ...] = ()

    def render_line(self, y: int) -> Strip:
        key = (self.app.theme, self.size.width, self.rich_style)
        if self._strips is None or key != self._strips_key:
            self._strips = self._build()
            self._strips_key = key
        if 0 <= y < len(self._strips):
            return self._strips[y].adjust_cell_length(self.size.width, self.rich_style)
        return Strip.blank(self.size.width, self.rich_style)

    def _build(self) -> list[Strip]:
        """Every line of the heatmap as segments: a few styles, reused (fast for 64×64)."""
        att = self.attention
        base = self.rich_style
        if att is None:
            return []
        bold, dim = base + Style(bold=True), base + Style(dim=True)
        ramp = self._ramp()
        shade_styles = [base] + [
            base + Style(color=ramp[0].blend(ramp[1], 0.35 + 0.65 * level / (len(SHADES) - 1)).rich_color) if ramp else base
            for level in range(1, len(SHADES))
        ]
        tokens = [token_label(t) for t in self.tokens]
        n = len(att.pattern)
        label_rows = self._label_rows()
        pad = Segment(" " * GUTTER, base)
        strips: list[Strip] = []
        for r in range(label_rows):  # key tokens written down their columns
            cells = []
            for k in range(n):
                shown = clip(tokens[k] if k < len(tokens) else "?", label_rows).replace(" ", "·")  # spaces inside a token
                cells.append((shown[r] if r < len(shown) else " ").ljust(3))
            strips.append(Strip([pad, Segment("".join(cells), bold)]))
        strips.append(Strip([pad, Segment("".join(f"{k % 100:<3}" for k in range(n)), dim)]))
        for q, row in enumerate(att.pattern):
            label = clip(tokens[q] if q < len(tokens) else "?", ROW_LABEL_WIDTH)
            segments = [Segment(f"{q:>3} ", dim), Segment(label.ljust(ROW_LABEL_WIDTH) + " ", bold)]
            run_level, run = -1, []  # consecutive cells of one shade become one segment
            for v in row[:n]:
                level = min(len(SHADES) - 1, int(v * (len(SHADES) - 1) + 0.5))
                if level == 0 and v > 0.02:
                    level = 1  # visible attention never renders as blank
                if level != run_level and run:
                    segments.append(Segment("".join(run), shade_styles[run_level]))
                    run = []
                run_level = level
                run.append(CELLS[level])
            if run:
                segments.append(Segment("".join(run), shade_styles[run_level]))
            if row:
                top = max(range(len(row)), key=lambda k: row[k])
                segments.append(Segment(f"→ {clip(tokens[top], TAIL_TOKEN)} {row[top]:.2f}", dim))
            strips.append(Strip(segments))
        return strips

    def text(self) -> str:
        """The heatmap as plain text (what the terminal shows, without colours)."""
        return "\n".join(strip.text.rstrip() for strip in self._build())
