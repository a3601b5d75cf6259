"""The header bar: which model is open, how big, on which device and in which dtype."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Static

from tui_interp.engine.workbench import Header
from tui_interp.tui.text import human_bytes, human_count, plain


class ModelHeader(Static):
    """One line: model name, architecture, shape, size, device and dtype, then a status word;
    with a second model (a diff), `other` names it right after the first."""

    header: reactive[Header | None] = reactive(None)
    status: reactive[str] = reactive("opening…")
    other: reactive[str] = reactive("")

    def _line(self) -> str:
        h = self.header
        if h is None:
            return f"[b]tui-interp[/]  [dim]{plain(self.status)}[/]"
        layers = f"{h.n_layers}L×{h.n_heads}H d{h.d_model}"
        device = plain(h.device) if h.device else "[dim]—[/]"
        dtype = plain(h.dtype) if h.dtype else plain(h.stored_dtype)
        name = f"[b $accent]{plain(h.name)}[/]"
        if self.other:
            name = f"A {name} [dim]vs[/] B [b]{plain(self.other)}[/]"
        parts = [
            name,
            f"{plain(h.architecture)}",
            layers,
            f"{human_count(h.n_params)} params",
            human_bytes(h.size_bytes),
            f"{device} {dtype}",
        ]
        line = "  ".join(parts)
        if self.status:
            line += f"  [dim]{plain(self.status)}[/]"
        return line

    def watch_header(self) -> None:
        self.update(self._line())

    def watch_status(self) -> None:
        self.update(self._line())

    def watch_other(self) -> None:
        self.update(self._line())
