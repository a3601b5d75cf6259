"""What reaches the screen: untrusted text is shown literally and cannot drive the terminal."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st
from rich.text import Text
from textual.content import Content

from tui_interp.tui.text import clip, human_bytes, human_count, plain, token_label


@given(st.text())
def test_plain_is_literal_under_rich_and_textual_markup(s: str) -> None:
    shown = plain(s)
    rich_plain = Text.from_markup(shown).plain
    assert Content.from_markup(shown).plain == rich_plain
    for ch in rich_plain:  # nothing that moves the cursor, colours or reorders text survives
        assert unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp"), repr(ch)


def test_plain_examples() -> None:
    assert Text.from_markup(plain("[bold]x[/bold]")).plain == "[bold]x[/bold]"
    assert Text.from_markup(plain("a\x1b[31mb")).plain == "a\\x1b[31mb"
    assert Text.from_markup(plain("[@click=app.quit]go[/]")).plain == "[@click=app.quit]go[/]"


def test_token_label() -> None:
    assert token_label(" ") == "␣" and token_label("  ") == "␣␣"
    assert token_label(" the") == " the"
    assert token_label("\n") == "\\n" and token_label("\x1b") == "\\x1b"


def test_clip_and_sizes() -> None:
    assert clip("abcdef", 4) == "abc…" and clip("abc", 4) == "abc" and clip("abc", 0) == ""
    assert human_bytes(999) == "999 B" and human_bytes(497_774_208) == "497.8 MB"
    assert human_count(124_439_808) == "124.4M" and human_count(30_624) == "30.6K" and human_count(12) == "12"
