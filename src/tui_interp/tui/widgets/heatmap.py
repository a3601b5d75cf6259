"""An attention pattern as a heatmap, token labels on both axes (queries down, keys across).

Each cell is two characters of a shade ramp ( ░▒▓█), so the picture reads in monochrome and
NO_COLOR terminals too; in colour the shade is also tinted from the theme's `heatmap-cold` to
`heatmap-hot`. The widget is as wide as the pattern needs; its container scrolls.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.color import Color, ColorParseError
from textual.reactive import reactive
from textual.widget import Widget

from tui_interp.model.tokenizer import display_text
from tui_interp.tui.session import Attention
from tui_interp.tui.text import clip

SHADES = " ░▒▓█"
COL_LABEL_ROWS = 6  # characters of each key token written down its column
ROW_LABEL_WIDTH = 10
GUTTER = 4 + ROW_LABEL_WIDTH + 1  # "pos " + label + " "
TAIL_TOKEN = 8  # "→ token 0.00" after each row: the key it attends to most


class AttentionHeatmap(Widget):
    DEFAULT_CSS = """
    AttentionHeatmap { width: auto; height: auto; }
    """

    attention: reactive[Attention | None] = reactive(None, layout=True)
    tokens: reactive[tuple[str, ...]] = reactive(tuple, layout=True)

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

    def render(self) -> Text:
        att = self.attention
        if att is None:
            return Text("")
        tokens = [display_text(t) for t in self.tokens]
        n = len(att.pattern)
        label_rows = self._label_rows()
        out = Text(no_wrap=True, overflow="crop")
        # key tokens written down their columns, then the key positions
        for r in range(label_rows):
            out.append(" " * GUTTER)
            for k in range(n):
                shown = clip(tokens[k] if k < len(tokens) else "?", label_rows).replace(" ", "·")
                out.append((shown[r] if r < len(shown) else " ").ljust(3), style="bold")
            out.append("\n")
        out.append(" " * GUTTER)
        for k in range(n):
            out.append(f"{k % 100:<3}", style="dim")
        out.append("\n")
        ramp = self._ramp()
        for q, row in enumerate(att.pattern):
            label = clip(tokens[q] if q < len(tokens) else "?", ROW_LABEL_WIDTH)
            out.append(f"{q:>3} ", style="dim")
            out.append(label.ljust(ROW_LABEL_WIDTH) + " ", style="bold")
            for v in row[:n]:
                level = min(len(SHADES) - 1, int(round(v * (len(SHADES) - 1))))
                if level == 0 and v > 0.02:
                    level = 1  # visible attention never renders as blank
                cell = SHADES[level] * 2 + " "
                if ramp is not None and level:
                    colour = ramp[0].blend(ramp[1], 0.35 + 0.65 * v)
                    out.append(cell, style=Style(color=colour.rich_color))
                else:
                    out.append(cell)
            if row:
                top = max(range(len(row)), key=lambda k: row[k])
                out.append(f"→ {clip(tokens[top], TAIL_TOKEN)} {row[top]:.2f}", style="dim")
            if q < n - 1:
                out.append("\n")
        return out
