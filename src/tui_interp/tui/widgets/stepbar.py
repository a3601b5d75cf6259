"""Where in the forward pass we are: embed › L0.attn › L0.mlp › … › unembed, the current step marked."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.reactive import reactive
from textual.widget import Widget

from tui_interp.tui.messages import StepChosen


class StepBar(Widget):
    """A one-line map of the steps. Long passes show a window around the current step."""

    DEFAULT_CSS = """
    StepBar { height: 1; }
    StepBar > .stepbar--current { text-style: bold reverse; }
    StepBar > .stepbar--done { }
    StepBar > .stepbar--todo { text-style: dim; }
    """
    COMPONENT_CLASSES = {"stepbar--current", "stepbar--done", "stepbar--todo"}

    steps: reactive[tuple[str, ...]] = reactive(tuple)
    index: reactive[int] = reactive(-1)

    _spans: list[tuple[int, int, int]] = []  # (first cell, end cell, step index) of what was drawn

    def render(self) -> Text:
        steps, index = self.steps, self.index
        self._spans = []
        if not steps:
            return Text("no prompt yet: type one above and press enter", style="dim")
        counter = f"step {index}/{len(steps) - 1}  " if index >= 0 else ""  # as `tui-interp step` counts
        width = max(10, self.size.width - len(counter))
        sep = " › "
        lo, hi = self._window(steps, index, width, len(sep))
        text = Text(counter)
        if lo > 0:
            text.append("… ", style=self.get_component_rich_style("stepbar--todo", partial=True))
        for i in range(lo, hi):
            if i > lo:
                text.append(sep, style=self.get_component_rich_style("stepbar--todo", partial=True))
            kind = "current" if i == index else "done" if i < index else "todo"
            style = self.get_component_rich_style(f"stepbar--{kind}", partial=True)
            start = text.cell_len
            text.append(f" {steps[i]} " if kind == "current" else steps[i], style=style)
            self._spans.append((start, text.cell_len, i))
        if hi < len(steps):
            text.append(" …", style=self.get_component_rich_style("stepbar--todo", partial=True))
        return text

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        for start, end, i in self._spans:
            if start <= offset.x < end:
                self.post_message(StepChosen(i))
                return

    @staticmethod
    def _window(steps: tuple[str, ...], index: int, width: int, sep: int) -> tuple[int, int]:
        """The widest run of steps around `index` that fits in `width` cells."""
        def cost(lo: int, hi: int) -> int:
            return sum(len(s) for s in steps[lo:hi]) + sep * max(0, hi - lo - 1) + 2 + (2 if lo > 0 else 0) + (2 if hi < len(steps) else 0)

        center = max(0, index)
        lo, hi = center, center + 1
        while True:
            grew = False
            if hi < len(steps) and cost(lo, hi + 1) <= width:
                hi += 1
                grew = True
            if lo > 0 and cost(lo - 1, hi) <= width:
                lo -= 1
                grew = True
            if not grew:
                return lo, hi
