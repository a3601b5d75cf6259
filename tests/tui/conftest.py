"""Fixtures for the TUI tests: one tiny GPT-2 with a word tokenizer whose vocabulary holds
hostile tokens (Rich markup, a terminal escape), a theory for it, and helpers to drive the app."""

from __future__ import annotations

import asyncio
import inspect
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hf_models import write_word_tokenizer

sys.path.insert(0, str(Path(__file__).parent))  # tui_pilot

from tui_pilot import THEORY, WORDS  # noqa: E402


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run `async def` tests in a fresh event loop (Pilot needs one; no plugin required)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**args))
    return True


@pytest.fixture(scope="session")
def tui_model(gpt2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lead's tiny 2-layer GPT-2 (fixed seed), renamed `tiny-gpt2`, with our vocabulary."""
    d = tmp_path_factory.mktemp("tui") / "tiny-gpt2"
    d.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(gpt2_dir / name, d / name)
    write_word_tokenizer(d, WORDS)
    return d


@pytest.fixture
def theory_file(tmp_path: Path) -> Path:
    p = tmp_path / "next.theory"
    p.write_text(THEORY, encoding="utf-8")
    return p


@pytest.fixture
def labels_file(tmp_path: Path) -> Path:
    return tmp_path / "labels.json"


@pytest.fixture
def make_app(tui_model: Path, labels_file: Path) -> Callable[..., object]:
    from tui_interp.tui.app import create_app

    def make(**kwargs: object) -> object:
        kwargs.setdefault("labels_path", labels_file)
        return create_app(kwargs.pop("model_path", tui_model), **kwargs)  # type: ignore[arg-type]

    return make
