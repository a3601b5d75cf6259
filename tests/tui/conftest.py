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


EDITED_HEAD = "L1.H2"


@pytest.fixture(scope="session")
def edited_model(tui_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny GPT-2 with one head edited (L1.H2: its rows of the attention output matrix get
    seeded noise), same architecture, shapes and tokenizer: model B of a diff."""
    import torch
    from safetensors.torch import load_file, save_file

    d = tmp_path_factory.mktemp("tui-edited") / "tiny-gpt2-edited"
    shutil.copytree(tui_model, d)
    tensors = load_file(d / "model.safetensors")
    name = "transformer.h.1.attn.c_proj.weight"  # Conv1D: [n_heads * d_head, d_model]
    w = tensors[name].clone()
    d_head = w.shape[0] // 4
    rows = slice(2 * d_head, 3 * d_head)  # head 2
    w[rows] += torch.randn(w[rows].shape, generator=torch.Generator().manual_seed(1)) * 2.0
    tensors[name] = w
    save_file(tensors, str(d / "model.safetensors"), metadata={"format": "pt"})
    return d


@pytest.fixture
def labelled_b(edited_model: Path, tmp_path: Path) -> Path:
    """A copy of the edited model whose own label file (beside it) names L0.H1 and L1.H2."""
    from tui_interp.labels import LabelStore
    from tui_interp.model.checkpoint import open_checkpoint

    d = tmp_path / "b" / edited_model.name
    shutil.copytree(edited_model, d)
    store = LabelStore.for_checkpoint(open_checkpoint(d))
    store.add("L0.H1", "B's own name")
    store.add("L1.H2", "edited")
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
