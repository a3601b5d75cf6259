"""What the windowed tables share: a window of rows or columns that follows a cursor.

The heatmap, the positions table, the lens and the patching tables are wider and taller than a
terminal at 64 tokens. Each draws only the rows and columns that fit, and the window moves as
little as it can to keep the position cursor in view, so it stays where the user left it from
one step to the next.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

BAR_WIDTH = 10
EIGHTHS = " ▏▎▍▌▋▊▉█"


def bar(value: float, top: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar of `width` cells, full at `top`, in eighths of a cell."""
    if top <= 0 or value <= 0:
        return " " * width
    eighths = int(round(min(1.0, value / top) * width * 8))
    full, part = divmod(eighths, 8)
    return ("█" * full + (EIGHTHS[part] if part else "")).ljust(width)


def follow(first: int, cursor: int, n: int, fit: int) -> int:
    """The first visible index of a window of `fit` over `n` items that shows `cursor`,
    moved as little as possible from `first`."""
    if fit <= 0 or n <= fit:
        return 0
    first = min(max(first, cursor - fit + 1), cursor)
    return max(0, min(first, n - fit))


def index_width(n: int) -> int:
    """Cells for the largest index of `n` items, full (never cut to one digit)."""
    return len(str(max(0, n - 1)))


class Windowed(Widget):
    """A widget drawn as a list of strips, rebuilt only when what it shows changes.

    Subclasses implement `_build(width, height)` and `_key()` (what the drawing depends on
    besides the size, the theme and the cursor)."""

    cursor: int = 0

    _base: Style = Style()
    _strips: list[Strip] | None = None
    _strips_key: tuple[object, ...] = ()

    def _key(self) -> tuple[object, ...]:
        return ()

    def _build(self, width: int, height: int) -> list[Strip]:
        raise NotImplementedError

    def set_cursor(self, cursor: int) -> None:
        if cursor != self.cursor:
            self.cursor = cursor
            self.refresh()

    def render_lines(self, crop: Region) -> list[Strip]:
        # What the drawing depends on, looked up once per paint (not once per line: a widget's
        # rich_style walks its ancestors' styles).
        width, height = self.size.width, self.size.height
        self._base = self.rich_style
        key = (self._key(), self.cursor, width, height, self.app.theme, self._base)
        if self._strips is None or key != self._strips_key:
            self._strips = [strip.adjust_cell_length(width, self._base) for strip in self._build(width, height)]
            self._strips_key = key
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        if self._strips is not None and 0 <= y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width, self._base)

    def window_text(self) -> str:
        """What is on screen now, as plain text."""
        return "\n".join(strip.text.rstrip() for strip in self._build(self.size.width, self.size.height))

    def changed(self, *, layout: bool = False) -> None:
        """What it shows changed: draw again (and lay out again when its size may have)."""
        self._strips = None
        self.refresh(layout=layout)


def more_marks(base: Style, first: int, shown: int, n: int) -> tuple[Segment | None, Segment | None]:
    """'‹3' and '12›' marks for items hidden before and after a window, or None."""
    dim = base + Style(dim=True)
    before = Segment(f"‹{first}", dim) if first > 0 else None
    after_n = n - first - shown
    after = Segment(f" {after_n}›", dim) if after_n > 0 else None
    return before, after


class UpDownScroll(VerticalScroll, inherit_bindings=False):
    """Scrolls up and down only: left and right step through the pass instead."""

    BINDINGS = [
        Binding("up", "scroll_up", "Scroll up", show=False),
        Binding("down", "scroll_down", "Scroll down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
    ]
