"""Making untrusted text safe before it reaches Textual markup.

Token text comes from the model's vocabulary, label names and notes from a shared file, theory
source and file paths from the user's disk: any of it may hold terminal control characters or
Rich markup (``[bold]``, ``[@click=...]``). Everything shown goes through one of these.
"""

from __future__ import annotations

from rich.markup import escape

from tui_interp.display import visible
from tui_interp.model.tokenizer import display_text


def plain(text: str) -> str:
    """Label, path or message text: control and bidi characters made visible, markup escaped."""
    return escape(visible(display_text(text)))


def token_label(text: str) -> str:
    """Token text as the tables show it: terminal-safe, and a token of only spaces as ␣ (a blank
    cell would hide it). Not escaped: for Text objects and segments, which are never markup."""
    shown = display_text(text)
    if shown and not shown.strip(" "):
        return "␣" * len(shown)
    return shown


def clip(text: str, width: int) -> str:
    """Shorten `text` (unescaped) to `width` cells with an ellipsis."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    return text[: max(0, width - 1)] + "…"


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"  # pragma: no cover - loop always returns


def human_count(n: int) -> str:
    if n >= 1_000_000_000:
        return f"{n / 1e9:.1f}B"
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M"
    if n >= 1_000:
        return f"{n / 1e3:.1f}K"
    return str(n)
