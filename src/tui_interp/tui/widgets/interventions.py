"""The interventions in force, one per line; delete or x removes the highlighted one."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tui_interp.tui.messages import InterventionRemoved


class InterventionList(OptionList):
    BORDER_TITLE = "Interventions"
    BINDINGS = [
        Binding("x,delete,backspace", "remove", "Remove intervention"),
    ]

    _shown: tuple[str, ...] | None = None

    def set_interventions(self, interventions: tuple[str, ...]) -> None:
        if interventions == self._shown:
            return
        self._shown = interventions
        highlighted = self.highlighted
        self.clear_options()
        if not interventions:
            self.add_option(Option(Text("none (a ablates)", style="dim"), disabled=True))
        for i, spec in enumerate(interventions):
            self.add_option(Option(Text(f"{i + 1}. {spec}"), id=str(i)))
        if interventions:
            self.highlighted = min(highlighted or 0, len(interventions) - 1)
        self.set_class(bool(interventions), "-active")

    def action_remove(self) -> None:
        if self.highlighted is None:
            return
        option = self.get_option_at_index(self.highlighted)
        if option.id is not None and not option.disabled:
            self.post_message(InterventionRemoved(int(option.id)))
