"""Fixtures for the label tests: a model shape, a tiny real GPT-2 checkpoint, a store."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tui_interp.labels import LabelStore, ModelRef
from tui_interp.model.config import ModelConfig

CONFIG = ModelConfig(architecture="gpt2", n_layers=2, d_model=32, n_heads=4, n_kv_heads=4, d_head=8, d_mlp=128, vocab_size=64, n_ctx=32)
MODEL = ModelRef(name="tiny", fingerprint="f" * 16)


@pytest.fixture(autouse=True)
def private_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Label locks go to the user's cache dir: point it (and that of writer subprocesses) at a temp dir."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


@pytest.fixture
def config() -> ModelConfig:
    return CONFIG


@pytest.fixture
def store(tmp_path: Path) -> LabelStore:
    """A store for a 2-layer, 4-head, 128-neuron model in a fresh file."""
    return LabelStore(tmp_path / "labels.json", MODEL, config=CONFIG)


@pytest.fixture(scope="session")
def tiny_gpt2_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random GPT-2 saved by transformers as safetensors (built once per session)."""
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_head=4, n_embd=32, vocab_size=64, n_positions=32, bos_token_id=0, eos_token_id=0)
    directory = tmp_path_factory.mktemp("tiny_gpt2") / "tiny"
    transformers.GPT2LMHeadModel(config).save_pretrained(directory)
    return directory


@pytest.fixture
def tiny_gpt2(tiny_gpt2_template: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny GPT-2 directory, so labels written beside it stay in this test."""
    directory = tmp_path / "tiny"
    shutil.copytree(tiny_gpt2_template, directory)
    return directory


@pytest.fixture
def wide_console() -> Iterator[None]:
    """Render the CLI's rich output 1,000 columns wide, so table cells do not fold in assertions."""
    from tui_interp.cli import common

    saved = common.console._width
    common.console._width = 1000
    yield
    common.console._width = saved
