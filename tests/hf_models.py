"""Tiny random HuggingFace models, built from config with `transformers` and saved as safetensors.

Parity with transformers' own outputs on these is the correctness anchor of the model core.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

VOCAB = 97
N_CTX = 64

# family -> (config class name, model class name, config kwargs)
FAMILIES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", dict(n_layer=3, n_head=4, n_embd=32, n_positions=N_CTX, activation_function="gelu_new")),
    "llama": ("LlamaConfig", "LlamaForCausalLM", dict(num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, hidden_size=32,
                                                      intermediate_size=48, max_position_embeddings=N_CTX, rope_theta=500000.0)),
    "mistral": ("MistralConfig", "MistralForCausalLM", dict(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1, hidden_size=32,
                                                            intermediate_size=48, max_position_embeddings=N_CTX, head_dim=8, sliding_window=6)),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", dict(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, hidden_size=32,
                                                      intermediate_size=48, max_position_embeddings=N_CTX, tie_word_embeddings=True)),
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM", dict(num_hidden_layers=2, num_attention_heads=4, hidden_size=32, intermediate_size=48,
                                                             max_position_embeddings=N_CTX, rotary_pct=0.5, hidden_act="gelu")),
    # head_dim independent of hidden_size / heads, multi-query attention
    "gemma": ("GemmaConfig", "GemmaForCausalLM", dict(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1, hidden_size=32,
                                                      head_dim=12, intermediate_size=48, max_position_embeddings=N_CTX, pad_token_id=0)),
    # soft-capping that bites (larger weights, small caps), alternating sliding windows of 5, query_pre_attn_scalar != head_dim
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM", dict(num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, hidden_size=32,
                                                         head_dim=8, intermediate_size=48, max_position_embeddings=N_CTX, sliding_window=5,
                                                         query_pre_attn_scalar=12, attn_logit_softcapping=2.0, final_logit_softcapping=3.0,
                                                         initializer_range=0.2, pad_token_id=0)),
    # q/k norms, a local rope base for sliding layers and a scaled global rope, a 1:1 local:global pattern
    "gemma3_text": ("Gemma3TextConfig", "Gemma3ForCausalLM", dict(
        num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, hidden_size=32, head_dim=8, intermediate_size=48,
        max_position_embeddings=N_CTX, sliding_window=4, layer_types=["sliding_attention", "full_attention", "sliding_attention"],
        rope_parameters={"full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 50000.0},
                         "sliding_attention": {"rope_type": "default", "rope_theta": 500.0}},
        query_pre_attn_scalar=16, final_logit_softcapping=5.0, initializer_range=0.1, pad_token_id=0)),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", dict(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, hidden_size=32,
                                                      head_dim=16, intermediate_size=48, max_position_embeddings=N_CTX)),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", dict(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, hidden_size=32,
                                                   intermediate_size=48, max_position_embeddings=N_CTX, original_max_position_embeddings=N_CTX,
                                                   pad_token_id=0)),
    "olmo2": ("Olmo2Config", "Olmo2ForCausalLM", dict(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, hidden_size=32,
                                                      intermediate_size=48, max_position_embeddings=N_CTX, pad_token_id=0)),
}
FIRST_FAMILIES = ("gpt2", "llama", "mistral", "qwen2", "gpt_neox")
NEW_FAMILIES = ("gemma", "gemma2", "gemma3_text", "qwen3", "phi3", "olmo2")


def build_hf_model(family: str, out: Path, *, seed: int = 0, **overrides: Any) -> Any:
    """Build a tiny random model of `family`, save it to `out` (safetensors), return the HF model."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    cfg_name, model_name, kwargs = FAMILIES[family]
    kwargs = {**kwargs, "vocab_size": VOCAB, "bos_token_id": 1, "eos_token_id": 2, **overrides}
    config = getattr(transformers, cfg_name)(**kwargs)
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = getattr(transformers, model_name)(config).eval()
    with torch.no_grad():  # random norms and biases, so a swapped or missing one cannot hide
        for name, p in model.named_parameters():
            if "norm" in name or "ln" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(out, safe_serialization=True)
    return model


PARITY = dict(atol=1e-4, rtol=0)


def compare(hf: Any, ours_dir: Path, *, lengths: tuple[int, ...] = (1, 5, 17)) -> float:
    """Our logits, every residual stream and every attention pattern against transformers' (eager,
    float32) on random tokens of each length (in this order: HF's dynamic rope remembers the
    longest length it saw). Returns the largest difference seen."""
    from tui_interp.model import load_model

    lm = load_model(ours_dir, device="cpu", dtype="float32")
    n = lm.config.n_layers
    g = torch.Generator().manual_seed(1)
    worst = 0.0

    def check(a: torch.Tensor, b: torch.Tensor) -> None:
        nonlocal worst
        torch.testing.assert_close(a, b, **PARITY)
        worst = max(worst, float((a - b).abs().max()))

    for length in lengths:
        tokens = torch.randint(0, VOCAB, (2, length), generator=g)
        with torch.no_grad():
            out = hf(tokens, output_hidden_states=True, output_attentions=True)
        logits, cache = lm.model.run_with_cache(tokens)
        check(logits, out.logits)
        for l in range(n):
            check(cache[f"blocks.{l}.hook_resid_pre"], out.hidden_states[l])
            check(cache[f"blocks.{l}.attn.hook_pattern"], out.attentions[l])
        check(cache["ln_final.hook_normalized"], out.hidden_states[n])
        # the fused path (no pattern hooks) gives the same logits as the eager one
        check(lm.model(tokens), logits)
    return worst


def load_hf(out: Path) -> Any:
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    return transformers.AutoModelForCausalLM.from_pretrained(out, attn_implementation="eager", dtype=torch.float32).eval()


def write_word_tokenizer(out: Path, words: list[str], *, bos: str | None = None) -> None:
    """A word-level tokenizer.json; with `bos`, its post-processor prepends that token."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {w: i for i, w in enumerate(words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if bos is not None:
        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, vocab[bos])])
    tok.save(str(out / "tokenizer.json"))


def rewrite_config(out: Path, **changes: Any) -> dict[str, Any]:
    cfg = json.loads((out / "config.json").read_text())
    for k, v in changes.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    return cfg
