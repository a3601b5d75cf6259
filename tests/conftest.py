from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from hf_models import FAMILIES, build_hf_model, write_word_tokenizer  # noqa: E402

WORDS = ["<unk>", "<s>", "</s>"] + [f"w{i}" for i in range(94)]


@pytest.fixture(scope="session", autouse=True)
def _private_user_dirs(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Label locks and user label files go to this session's temp dirs, not the real home."""
    import os

    base = tmp_path_factory.mktemp("home")
    for var, sub in (("XDG_CACHE_HOME", "cache"), ("XDG_DATA_HOME", "data")):
        os.environ[var] = str(base / sub)


@pytest.fixture(scope="session")
def hf_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny random checkpoint per supported family (built once per test session)."""
    out = {}
    for family in FAMILIES:
        d = tmp_path_factory.mktemp(family)
        build_hf_model(family, d)
        out[family] = d
    return out


@pytest.fixture(scope="session")
def gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GPT-2 with a word-level tokenizer (no BOS post-processor)."""
    d = tmp_path_factory.mktemp("gpt2tok")
    build_hf_model("gpt2", d, n_layer=2)
    write_word_tokenizer(d, WORDS)
    return d


@pytest.fixture(scope="session")
def llama_bos_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama whose tokenizer's post-processor prepends <s>."""
    d = tmp_path_factory.mktemp("llamatok")
    build_hf_model("llama", d, num_hidden_layers=2)
    write_word_tokenizer(d, WORDS, bos="<s>")
    return d
