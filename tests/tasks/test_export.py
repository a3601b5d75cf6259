"""save_checkpoint: our Transformer written back as a HuggingFace directory.

Round trips (ours -> disk -> ours gives identical logits), tensor-for-tensor equality with the
checkpoint a model was loaded from (so every transform is inverted exactly), and HuggingFace
transformers loading what we wrote and computing the same logits.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hf_models import FAMILIES, VOCAB, build_hf_model, load_hf
from safetensors import safe_open
from safetensors.torch import load_file

from tui_interp.errors import CheckpointError, ConfigError
from tui_interp.model import load_model, open_checkpoint
from tui_interp.model.config import ModelConfig, RopeConfig
from tui_interp.model.export import hf_config, save_checkpoint
from tui_interp.model.transformer import Transformer
from tui_interp.tasks.trainer import init_weights
from tui_interp.tasks.vocab import word_level_tokenizer

TOL = dict(atol=1e-4, rtol=0)


def _tokens(vocab: int, n_ctx: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    return torch.randint(0, vocab, (3, min(n_ctx, 19)), generator=g)


def _fresh(cfg: ModelConfig, seed: int = 0) -> Transformer:
    model = Transformer(cfg)
    init_weights(model, std=0.3, seed=seed)  # large weights: a swapped tensor cannot hide
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:  # random norms and biases too
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(name))) * 0.2)
    return model.eval()


GPT2 = ModelConfig(architecture="gpt2", n_layers=2, d_model=32, n_heads=4, n_kv_heads=4, d_head=8, d_mlp=48,
                   vocab_size=40, n_ctx=24, act_fn="relu", qkv_bias=True, attn_out_bias=True, mlp_bias=True,
                   tie_word_embeddings=False)
LLAMA = ModelConfig(architecture="llama", n_layers=2, d_model=32, n_heads=4, n_kv_heads=2, d_head=8, d_mlp=40,
                    vocab_size=40, n_ctx=24, norm="rmsnorm", norm_eps=1e-5, norm_bias=False, positional="rotary",
                    rope=RopeConfig(theta=10000.0, rotary_dim=8), act_fn="silu", gated_mlp=True)


@pytest.mark.parametrize("cfg", [GPT2, GPT2.replace(tie_word_embeddings=True, act_fn="gelu_new"), LLAMA,
                                 LLAMA.replace(tie_word_embeddings=True, n_kv_heads=4)], ids=["gpt2", "gpt2-tied", "llama", "llama-tied"])
def test_round_trip_and_transformers_reproduce_a_fresh_model(cfg: ModelConfig, tmp_path: Path) -> None:
    model = _fresh(cfg)
    out = save_checkpoint(model, tmp_path / "m", tokenizer_json=word_level_tokenizer([f"w{i}" for i in range(39)]),
                          model_type=cfg.architecture, name="fresh")
    ckpt = open_checkpoint(out)
    assert ckpt.config == cfg  # config.json reads back to an equal ModelConfig
    assert ckpt.metadata == {"format": "pt", "name": "fresh"}
    tokens = _tokens(cfg.vocab_size, cfg.n_ctx)
    with torch.no_grad():
        want = model(tokens)
        got = load_model(out, device="cpu", dtype="float32").model(tokens)
        torch.testing.assert_close(got, want, atol=0, rtol=0)  # bit-identical weights, same code
        hf = load_hf(out)(tokens).logits
    torch.testing.assert_close(hf, want, **TOL)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_saving_a_loaded_checkpoint_writes_the_same_tensors(family: str, hf_dirs: dict[str, Path], tmp_path: Path) -> None:
    src = hf_dirs[family]
    lm = load_model(src, device="cpu", dtype="float32")
    out = save_checkpoint(lm.model, tmp_path / family, tokenizer_json=None, model_type=family)
    original = load_file(str(src / "model.safetensors"))
    written = load_file(str(out / "model.safetensors"))
    ckpt = open_checkpoint(src)
    used = {n for s in ckpt.plan.values() for n in s.names}
    assert set(written) == used  # no buffers, no tied copy, nothing missing
    for name, tensor in written.items():
        torch.testing.assert_close(tensor, original[name].float(), atol=0, rtol=0, msg=name)
    assert open_checkpoint(out).config == ckpt.config.replace(dtype="float32")
    tokens = _tokens(VOCAB, 64)
    with torch.no_grad():
        torch.testing.assert_close(load_hf(out)(tokens).logits, lm.model(tokens), **TOL)


def test_neox_fused_rows_are_reinterleaved(tmp_path: Path) -> None:
    # a GPT-NeoX checkpoint whose q/k/v rows are distinguishable per head
    build_hf_model("gpt_neox", tmp_path / "src")
    lm = load_model(tmp_path / "src", device="cpu")
    out = save_checkpoint(lm.model, tmp_path / "out", tokenizer_json=None)
    with safe_open(str(out / "model.safetensors"), "pt") as f, safe_open(str(tmp_path / "src" / "model.safetensors"), "pt") as g:
        name = "gpt_neox.layers.0.attention.query_key_value.weight"
        assert torch.equal(f.get_tensor(name), g.get_tensor(name))


def test_float16_weights_and_dtype_in_config(tmp_path: Path) -> None:
    out = save_checkpoint(_fresh(GPT2), tmp_path / "h", tokenizer_json=None, dtype=torch.float16)
    doc = json.loads((out / "config.json").read_text())
    assert doc["dtype"] == "float16" and doc["model_type"] == "gpt2" and doc["architectures"] == ["GPT2LMHeadModel"]
    assert "torch_dtype" not in doc  # the transformers-5 dialect
    assert open_checkpoint(out).dtype == "float16"
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}


def test_llama_config_uses_rope_parameters() -> None:
    doc = hf_config(LLAMA)
    assert doc["rope_parameters"] == {"rope_type": "default", "rope_theta": 10000.0}
    assert "rope_theta" not in doc and "rope_scaling" not in doc
    assert doc["head_dim"] == 8 and doc["num_key_value_heads"] == 2


def test_a_family_that_cannot_express_the_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot save this model as gpt2"):
        save_checkpoint(_fresh(LLAMA), tmp_path / "x", tokenizer_json=None, model_type="gpt2")
    with pytest.raises(ConfigError, match="supported"):
        save_checkpoint(_fresh(GPT2), tmp_path / "x", tokenizer_json=None, model_type="t5")
    assert not (tmp_path / "x").exists()


def test_existing_directory_is_kept_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "m"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="not empty"):
        save_checkpoint(_fresh(GPT2), out, tokenizer_json=None)
    assert (out / "notes.txt").read_text() == "mine"
    save_checkpoint(_fresh(GPT2), out, tokenizer_json=None, files={"README.md": "# card\n"}, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary directories left behind


def test_failure_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="tokenizer"):
        save_checkpoint(_fresh(GPT2), tmp_path / "m", tokenizer_json="{not json")
    with pytest.raises(CheckpointError, match="more than the model's vocabulary"):
        save_checkpoint(_fresh(GPT2), tmp_path / "m", tokenizer_json=word_level_tokenizer([f"w{i}" for i in range(60)]))
    with pytest.raises(CheckpointError, match="extra file"):
        save_checkpoint(_fresh(GPT2), tmp_path / "m", tokenizer_json=None, files={"../escape": "x"})
    assert list(tmp_path.iterdir()) == []


def test_extra_config_keys_are_written_but_cannot_override(tmp_path: Path) -> None:
    out = save_checkpoint(_fresh(GPT2), tmp_path / "m", tokenizer_json=None, extra_config={"tui_interp_task": "modadd"})
    assert json.loads((out / "config.json").read_text())["tui_interp_task"] == "modadd"
    with pytest.raises(ConfigError, match="overwrite"):
        save_checkpoint(_fresh(GPT2), tmp_path / "n", tokenizer_json=None, extra_config={"n_layer": 5})


def test_transformers_tokenizer_loads_the_saved_tokenizer(tmp_path: Path) -> None:
    import transformers

    tok_json = word_level_tokenizer([str(i) for i in range(39)])
    out = save_checkpoint(_fresh(GPT2), tmp_path / "m", tokenizer_json=tok_json)
    tok = transformers.AutoTokenizer.from_pretrained(out)
    assert tok("3 12 =")["input_ids"] == [3, 12, 39]  # "=" is not in the vocabulary: [UNK] (id 39)
