"""The prompt box. Enter runs the prompt; escape leaves the box so the step keys work."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Input


class PromptInput(Input):
    BINDINGS = [Binding("escape", "leave", "Leave the prompt", show=False)]

    def action_leave(self) -> None:
        self.screen.focus_next()
