"""An attention pattern as a heatmap: queries down, keys across, a position cursor on both.
At an MLP step the same place shows the top neurons at the cursor's position instead, so the
table below stays put from one step to the next (no new layout while stepping).

Each cell is a shade ramp ( ░▒▓█), so the picture reads in monochrome and NO_COLOR terminals
too; in colour the shade is also tinted from the theme's `heatmap-cold` to `heatmap-hot`. Two
header lines: the key tokens (short) and their full indices. The widget fills the height it is
given and shows the rows and columns around the cursor that fit (see grid.py); the cursor's row
and column are marked, and the row's label, index and most-attended key stay on screen.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.color import Color, ColorParseError
from textual.strip import Strip

from tui_interp.engine.workbench import AttentionPattern, Neuron
from tui_interp.labels import Label
from tui_interp.model.tokenizer import display_text
from tui_interp.tui.text import clip, token_label
from tui_interp.tui.widgets.grid import Windowed, bar, follow, index_width, more_marks

SHADES = " ░▒▓█"
ROW_LABEL_WIDTH = 8
TAIL_TOKEN = 6  # "→ token 0.00" after each row: the key it attends to most
HEADER_ROWS = 2  # key tokens, key indices


def shade_level(v: float) -> int:
    level = min(len(SHADES) - 1, int(v * (len(SHADES) - 1) + 0.5))
    return 1 if level == 0 and v > 0.02 else level  # visible attention never renders as blank


class AttentionHeatmap(Windowed):
    DEFAULT_CSS = """
    AttentionHeatmap { width: 1fr; height: auto; }
    """

    attention: AttentionPattern | None = None
    tokens: tuple[str, ...] = ()
    neurons: tuple[tuple[Neuron, ...], ...] = ()  # [position][k], shown instead of an attention pattern
    labels: dict[str, Label] = {}
    first_col = 0
    first_row = 0

    def show(self, attention: AttentionPattern | None, tokens: tuple[str, ...]) -> None:
        rows = self._rows()
        self.attention, self.tokens, self.neurons = attention, tokens, ()
        self.changed(layout=rows != self._rows())

    def show_neurons(self, neurons: tuple[tuple[Neuron, ...], ...], tokens: tuple[str, ...], labels: dict[str, Label]) -> None:
        rows = self._rows()
        self.attention, self.tokens, self.neurons, self.labels = None, tokens, neurons, labels
        self.changed(layout=rows != self._rows())

    def _rows(self) -> int:
        """As tall for neurons as for the pattern of the same prompt: stepping needs no new layout."""
        if not self.tokens:
            return 0
        k = max((len(row) for row in self.neurons), default=0)
        return max(HEADER_ROWS + len(self.tokens), 1 + k)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:  # type: ignore[override]
        return self._rows()

    def _key(self) -> tuple[object, ...]:
        return (id(self.attention), id(self.neurons), self.tokens, id(self.labels))

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

    def _build(self, width: int, height: int, *, everything: bool = False) -> list[Strip]:
        """The lines that fit in width x height around the cursor (all of them with `everything`)."""
        if self.neurons:
            return self._build_neurons(width)
        att = self.attention
        if att is None:
            return []
        base = self.rich_style
        bold, dim = base + Style(bold=True), base + Style(dim=True)
        mark = base + Style(reverse=True, bold=True)
        ramp = self._ramp()
        shade_styles = [base] + [
            base + Style(color=ramp[0].blend(ramp[1], 0.35 + 0.65 * level / (len(SHADES) - 1)).rich_color) if ramp else base
            for level in range(1, len(SHADES))
        ]
        n = len(att.pattern)
        iw = index_width(n)
        cw = max(3, iw + 1)  # a cell: shade characters and a space; wide enough for the full index
        cells = [shade * (cw - 1) + " " for shade in SHADES]
        tokens = [token_label(t) for t in self.tokens]
        gutter = iw + 1 + ROW_LABEL_WIDTH + 1
        tail_w = 2 + TAIL_TOKEN + 5
        cursor = min(max(self.cursor, 0), n - 1)
        if everything:
            fit_cols, fit_rows = n, n
        else:
            fit_cols = (width - gutter - tail_w) // cw
            if fit_cols < min(n, 16):  # narrow: the cells matter more than the tail
                tail_w = 0
                fit_cols = (width - gutter) // cw
                if fit_cols < n:
                    fit_cols = (width - gutter - 4) // cw  # room for the " 12›" of the columns off to the right
            fit_cols = max(1, fit_cols)
            fit_rows = max(1, height - HEADER_ROWS)
        first_col = self.first_col = follow(self.first_col, cursor, n, fit_cols)
        first_row = self.first_row = follow(self.first_row, cursor, n, fit_rows)
        cols = range(first_col, min(n, first_col + fit_cols))
        rows = range(first_row, min(n, first_row + fit_rows))

        def tok(i: int) -> str:
            return tokens[i] if i < len(tokens) else "?"

        before, after = more_marks(base, first_col, len(cols), n)
        head_tokens = [Segment(clip("keys →", gutter).ljust(gutter), dim)]
        head_index = [Segment((before.text if before else "").rjust(gutter - 1) + " ", dim)]
        for k in cols:
            label = tok(k)[: cw - 1].replace(" ", "·").ljust(cw)  # the first characters; the index says which
            index = f"{k:<{cw}}"
            head_tokens.append(Segment(label, mark if k == cursor else bold))
            head_index.append(Segment(index, mark if k == cursor else dim))
        if after:
            head_index.append(after)
        strips = [Strip(Segment.simplify(head_tokens)), Strip(Segment.simplify(head_index))]
        for q in rows:
            row = att.pattern[q]
            here = q == cursor
            segments = [
                Segment(f"{q:>{iw}} ", mark if here else dim),
                Segment(clip(tok(q), ROW_LABEL_WIDTH).ljust(ROW_LABEL_WIDTH), mark if here else bold),
                Segment(" ", base),
            ]
            run_level, run = -1, []  # consecutive cells of one shade become one segment
            for k in cols:
                level = shade_level(row[k]) if k < len(row) else 0
                if level != run_level and run:
                    segments.append(Segment("".join(run), shade_styles[run_level]))
                    run = []
                run_level = level
                run.append(cells[level])
            if run:
                segments.append(Segment("".join(run), shade_styles[run_level]))
            if tail_w and row:
                top = max(range(len(row)), key=lambda k: row[k])
                segments.append(Segment(f"→ {clip(tok(top), TAIL_TOKEN)} {row[top]:.2f}", dim))
            strips.append(Strip(segments))
        return strips

    def _build_neurons(self, width: int) -> list[Strip]:
        """The top neurons at the cursor's position: id, activation, a bar, its label."""
        base = self.rich_style
        bold = base + Style(bold=True)
        p = min(max(self.cursor, 0), len(self.neurons) - 1)
        row = self.neurons[p]
        id_w = max((len(n.component) for n in row), default=6) + 1
        strips = [Strip([Segment("neuron".ljust(id_w) + "    act" + " " * 12 + "label", bold)])]
        top = max((n.activation for n in row), default=0.0)
        for n in row:
            label = self.labels.get(n.component)
            segments = [
                Segment(n.component.ljust(id_w), bold),
                Segment(f"{n.activation:>7.3f} ", base),
                Segment(bar(n.activation, top) + " ", base),
            ]
            if label is not None:
                segments.append(Segment(clip(display_text(label.name), max(0, width - id_w - 20)), base + Style(italic=True)))
            strips.append(Strip(segments))
        return strips

    def text(self) -> str:
        """The whole heatmap as plain text (every row and column, without colours)."""
        return "\n".join(strip.text.rstrip() for strip in self._build(0, 0, everything=True))
