"""The prompt box. Enter runs the prompt (and returns focus to the workbench); escape returns
to the workbench without running it (the screen's escape). Every printable key types here."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Input


class PromptInput(Input):
    BINDINGS = [Binding("enter", "submit", "Run prompt")]
