"""The prompt box. Enter runs the prompt and returns focus to the workbench; escape returns to
the workbench without running it. Every printable key types here.

Keys typed right behind enter (a burst, or type-ahead while the app starts) are already on
their way to this box when enter is handled. They are held back until the screen has decided
where focus goes, then handed on in order: to the workbench when it left, typed here when it
stayed (an empty prompt). So `w1 w2` enter `n` runs the prompt and then steps, never `w1 w2n`.
"""

from __future__ import annotations

from textual import events
from textual.binding import Binding
from textual.widgets import Input

ENTER_KEYS = ("enter", "ctrl+j")  # ctrl+j: enter typed before the app had the terminal (cooked mode)


class PromptInput(Input):
    BINDINGS = [Binding("enter", "submit", "Run prompt")]

    _held: list[events.Key] | None = None  # keys behind enter, until `hand_over`
    _forward = False  # focus left on enter: keys still arriving here go on to the workbench

    async def _on_key(self, event: events.Key) -> None:
        if self._forward or self._held is not None:
            event.stop()
            event.prevent_default()
            if self._held is not None:
                self._held.append(event)
            else:
                self._replay([event])
            return
        if event.key in ENTER_KEYS:
            event.stop()
            event.prevent_default()
            self._held = []
            await self.action_submit()  # the screen answers with hand_over()
            return
        await super()._on_key(event)

    def hand_over(self, *, left: bool) -> None:
        """The screen handled enter: focus `left` this box (held keys go to where it is now)
        or stayed (they are typed here)."""
        held, self._held = self._held or [], None
        self._forward = left
        if left:
            self._replay(held)
            return
        for key in held:
            if key.is_printable and key.character:
                self.insert_text_at_cursor(key.character)

    def _replay(self, keys: list[events.Key]) -> None:
        """Deliver keys again, as the app delivers typed keys: to whatever has focus now. They
        are made in the app's own turn, so they are the app's (a key sent by the screen would
        stop bubbling at the screen and never reach the app's bindings)."""

        def deliver() -> None:
            for key in keys:
                self.app.post_message(events.Key(key.key, key.character))

        self.app.call_later(deliver)

    def _on_focus(self, event: events.Focus) -> None:
        self._forward = False
        super()._on_focus(event)
