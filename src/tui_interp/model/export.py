"""Write a Transformer back out as a standard HuggingFace model directory.

The inverse of loading: a config.json in the transformers-5 dialect (`dtype`, `rope_parameters`)
that both HuggingFace and our own `open_checkpoint` read back to an equal ModelConfig,
model.safetensors with HuggingFace tensor names, and tokenizer.json. The tensor layout is not
written twice: `architectures.weight_plan` says where each canonical parameter comes from and
with which transform, and this module inverts those transforms generically (transpose back);
q, k and v are read in the target family's layout whatever the model's own (`_canonical`).
The newer families (gemma, gemma2, gemma3_text, qwen3, phi3, olmo2) are read, not written.

The directory is written atomically: everything goes into a temporary sibling directory,
which is then renamed into place, so a reader never sees half a checkpoint.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from tui_interp.errors import CheckpointError, ConfigError
from tui_interp.fileio import publish_dir
from tui_interp.model.architectures import Source, get_architecture, translate_config, weight_plan
from tui_interp.model.config import ModelConfig, RopeConfig
from tui_interp.model.loader import _owner
from tui_interp.model.transformer import Transformer

TRANSFORMERS_VERSION = "5.0.0"  # the config dialect we write (dtype, rope_parameters)

_DTYPE_NAMES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}

_ARCH_CLASSES = {
    "gpt2": "GPT2LMHeadModel",
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "gpt_neox": "GPTNeoXForCausalLM",
    "gemma": "GemmaForCausalLM",
    "gemma2": "Gemma2ForCausalLM",
    "gemma3_text": "Gemma3ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "phi3": "Phi3ForCausalLM",
    "olmo2": "Olmo2ForCausalLM",
}


# ---------------------------------------------------------------------------------------------
# config.json: one writer per family, each the inverse of its translation in architectures.py


def _need(cfg: ModelConfig, model_type: str, cond: bool, what: str) -> None:
    if not cond:
        raise ConfigError(f"cannot save this model as {model_type}: {what}")


def _common(cfg: ModelConfig) -> dict[str, Any]:
    return {
        "vocab_size": cfg.vocab_size,
        "bos_token_id": cfg.bos_token_id,
        "eos_token_id": cfg.eos_token_id,
        "tie_word_embeddings": cfg.tie_word_embeddings,
    }


def _gpt2_config(cfg: ModelConfig) -> dict[str, Any]:
    need = lambda cond, what: _need(cfg, "gpt2", cond, what)  # noqa: E731
    need(cfg.norm == "layernorm" and cfg.norm_bias, "gpt2 uses LayerNorm with a bias")
    need(cfg.positional == "learned", "gpt2 uses learned position embeddings")
    need(not cfg.gated_mlp and not cfg.parallel_attn_mlp, "gpt2 has a plain sequential MLP")
    need(cfg.n_kv_heads == cfg.n_heads, "gpt2 has no grouped-query attention")
    need(cfg.n_heads * cfg.d_head == cfg.d_model, "gpt2 needs n_heads * d_head == d_model")
    need(cfg.qkv_bias and cfg.attn_out_bias and cfg.mlp_bias, "gpt2 has biases on every linear map")
    need(cfg.d_mlp > 0, "gpt2 has an MLP in every block")
    need(cfg.sliding_window is None, "gpt2 has no sliding window")
    return {
        "model_type": "gpt2",
        "n_layer": cfg.n_layers,
        "n_embd": cfg.d_model,
        "n_head": cfg.n_heads,
        "n_inner": cfg.d_mlp,
        "n_positions": cfg.n_ctx,
        "activation_function": cfg.act_fn,
        "layer_norm_epsilon": cfg.norm_eps,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "attn_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "resid_pdrop": 0.0,
        "summary_first_dropout": 0.0,
        **_common(cfg),
    }


def _rope_parameters(cfg: ModelConfig, model_type: str, *, partial: bool, rope: RopeConfig | None = None) -> dict[str, Any]:
    rope = rope or cfg.rope
    _need(cfg, model_type, cfg.positional == "rotary" and rope is not None, f"{model_type} uses rotary positions")
    if rope is None:  # checked just above; narrows the type
        raise ConfigError(f"cannot save this model as {model_type}: no rope parameters")
    params: dict[str, Any] = {"rope_type": rope.scaling, "rope_theta": rope.theta}
    if partial:
        params["partial_rotary_factor"] = rope.rotary_dim / cfg.d_head
    else:
        _need(cfg, model_type, rope.rotary_dim == cfg.d_head, f"{model_type} rotates the whole head")
    _need(cfg, model_type, rope.scaling in ("default", "linear", "llama3"), f"{rope.scaling} rope scaling cannot be saved yet")
    if rope.scaling in ("linear", "llama3"):
        params["factor"] = rope.factor
    if rope.scaling == "llama3":
        params.update(
            low_freq_factor=rope.low_freq_factor,
            high_freq_factor=rope.high_freq_factor,
            original_max_position_embeddings=rope.original_max_position_embeddings,
        )
    return params


def _llama_like_config(family: str) -> Callable[[ModelConfig], dict[str, Any]]:
    def write(cfg: ModelConfig) -> dict[str, Any]:
        need = lambda cond, what: _need(cfg, family, cond, what)  # noqa: E731
        need(cfg.norm == "rmsnorm" and not cfg.norm_bias, f"{family} uses RMSNorm")
        need(cfg.gated_mlp and not cfg.parallel_attn_mlp, f"{family} has a gated sequential MLP")
        need(cfg.d_mlp > 0, f"{family} has an MLP in every block")
        doc: dict[str, Any] = {
            "model_type": family,
            "hidden_size": cfg.d_model,
            "intermediate_size": cfg.d_mlp,
            "num_hidden_layers": cfg.n_layers,
            "num_attention_heads": cfg.n_heads,
            "num_key_value_heads": cfg.n_kv_heads,
            "head_dim": cfg.d_head,
            "max_position_embeddings": cfg.n_ctx,
            "rms_norm_eps": cfg.norm_eps,
            "hidden_act": cfg.act_fn,
            "rope_parameters": _rope_parameters(cfg, family, partial=False),
            "attention_dropout": 0.0,
            **_common(cfg),
        }
        if family == "qwen2":
            need(cfg.qkv_bias and not cfg.attn_out_bias and not cfg.mlp_bias, "qwen2 has q/k/v biases only")
            need(cfg.sliding_window is None, "qwen2 sliding windows are not supported")
            doc["use_sliding_window"] = False
        else:
            need(cfg.qkv_bias == cfg.attn_out_bias, f"{family} has attention biases on q, k, v and o or on none")
            doc["attention_bias"] = cfg.qkv_bias
            if family == "llama":
                need(cfg.sliding_window is None, "llama has no sliding window")
                doc["mlp_bias"] = cfg.mlp_bias
            else:
                need(not cfg.mlp_bias, f"{family} has no MLP biases")
                doc["sliding_window"] = cfg.sliding_window
        return doc

    return write


def _gpt_neox_config(cfg: ModelConfig) -> dict[str, Any]:
    need = lambda cond, what: _need(cfg, "gpt_neox", cond, what)  # noqa: E731
    need(cfg.norm == "layernorm" and cfg.norm_bias, "gpt_neox uses LayerNorm with a bias")
    need(not cfg.gated_mlp and cfg.mlp_bias, "gpt_neox has a plain MLP with biases")
    need(cfg.n_kv_heads == cfg.n_heads, "gpt_neox has no grouped-query attention")
    need(cfg.n_heads * cfg.d_head == cfg.d_model, "gpt_neox needs n_heads * d_head == d_model")
    need(cfg.qkv_bias == cfg.attn_out_bias, "gpt_neox has attention biases on q, k, v and o or on none")
    need(cfg.d_mlp > 0, "gpt_neox has an MLP in every block")
    need(cfg.sliding_window is None, "gpt_neox has no sliding window")
    return {
        "model_type": "gpt_neox",
        "hidden_size": cfg.d_model,
        "intermediate_size": cfg.d_mlp,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "max_position_embeddings": cfg.n_ctx,
        "layer_norm_eps": cfg.norm_eps,
        "hidden_act": cfg.act_fn,
        "use_parallel_residual": cfg.parallel_attn_mlp,
        "attention_bias": cfg.qkv_bias,
        "rope_parameters": _rope_parameters(cfg, "gpt_neox", partial=True),
        "attention_dropout": 0.0,
        "hidden_dropout": 0.0,
        **_common(cfg),
    }


def _newer_config(family: str) -> Callable[[ModelConfig], dict[str, Any]]:
    """Writers of the newer families: the inverse of architectures._translate_llama_like with
    that family's switches (hf_config checks that the document reads back to an equal config)."""
    gemma = family.startswith("gemma")

    def write(cfg: ModelConfig) -> dict[str, Any]:
        need = lambda cond, what: _need(cfg, family, cond, what)  # noqa: E731
        need(cfg.norm == "rmsnorm" and cfg.gated_mlp and not cfg.parallel_attn_mlp and cfg.d_mlp > 0,
             f"{family} has RMSNorm and a gated sequential MLP in every block")
        need(not cfg.mlp_bias, f"{family} has no MLP biases")
        doc: dict[str, Any] = {
            "model_type": family,
            "hidden_size": cfg.d_model,
            "intermediate_size": cfg.d_mlp,
            "num_hidden_layers": cfg.n_layers,
            "num_attention_heads": cfg.n_heads,
            "num_key_value_heads": cfg.n_kv_heads,
            "max_position_embeddings": cfg.n_ctx,
            "rms_norm_eps": cfg.norm_eps,
            "attention_dropout": 0.0,
            "pad_token_id": None,  # else transformers puts its family default (Phi-3: 32000) past a small vocabulary
            **_common(cfg),
        }
        if family in ("phi3", "olmo2"):
            need(cfg.n_heads * cfg.d_head == cfg.d_model, f"{family} needs n_heads * d_head == d_model")
        else:
            doc["head_dim"] = cfg.d_head
        if family == "phi3":
            need(not cfg.qkv_bias and not cfg.attn_out_bias, "phi3 has no attention biases")
            doc["rope_parameters"] = _rope_parameters(cfg, family, partial=True)
            doc["original_max_position_embeddings"] = cfg.n_ctx
            doc["sliding_window"] = cfg.sliding_window
        else:
            need(cfg.qkv_bias == cfg.attn_out_bias, f"{family} has attention biases on q, k, v and o or on none")
            doc["attention_bias"] = cfg.qkv_bias
        if gemma:
            need(cfg.act_fn != "gelu" or family != "gemma", "gemma reads hidden_act gelu as its tanh approximation")
            doc["hidden_act" if family == "gemma" else "hidden_activation"] = cfg.act_fn
            doc["use_bidirectional_attention"] = False
        else:
            doc["hidden_act"] = cfg.act_fn
        if family in ("gemma2", "gemma3_text"):
            need(cfg.attn_scale is not None, f"{family} scales attention by query_pre_attn_scalar")
            scalar = round(cfg.attn_scale**-2, 6)  # type: ignore[operator]
            doc["query_pre_attn_scalar"] = int(scalar) if scalar == int(scalar) else scalar  # transformers 5 wants an int
            doc["attn_logit_softcapping"] = cfg.attn_softcap
            doc["final_logit_softcapping"] = cfg.final_softcap
        if family in ("gemma2", "gemma3_text", "qwen3"):
            need(cfg.sliding_window is None or bool(cfg.layer_types), f"{family} names the sliding-window layers (layer_types)")
            doc["sliding_window"] = cfg.sliding_window
            doc["layer_types"] = list(cfg.layer_types) or ["full_attention"] * cfg.n_layers
            if family == "qwen3":
                doc["use_sliding_window"] = cfg.sliding_window is not None
        if family == "gemma3_text":
            local = cfg.rope_local or cfg.rope
            doc["rope_parameters"] = {
                "full_attention": _rope_parameters(cfg, family, partial=False),
                "sliding_attention": _rope_parameters(cfg, family, partial=False, rope=local),
            }
        elif family != "phi3":
            doc["rope_parameters"] = _rope_parameters(cfg, family, partial=False)
        return doc

    return write


CONFIG_WRITERS: dict[str, Callable[[ModelConfig], dict[str, Any]]] = {
    "gpt2": _gpt2_config,
    "llama": _llama_like_config("llama"),
    "mistral": _llama_like_config("mistral"),
    "qwen2": _llama_like_config("qwen2"),
    "gpt_neox": _gpt_neox_config,
    **{family: _newer_config(family) for family in ("gemma", "gemma2", "gemma3_text", "qwen3", "phi3", "olmo2")},
}


def hf_config(cfg: ModelConfig, model_type: str | None = None, *, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """The config.json document for `cfg` saved as `model_type` (default: cfg.architecture).

    Raises ConfigError when the family cannot express the config, and when reading the
    document back would not give an equal ModelConfig (a guard against drift between this
    writer and the translation in architectures.py).
    """
    model_type = model_type or cfg.architecture
    writer = CONFIG_WRITERS.get(model_type)
    if writer is None:
        raise ConfigError(f"cannot save as {model_type!r}: supported: {', '.join(sorted(CONFIG_WRITERS))}")
    if dtype not in _DTYPE_NAMES:
        raise ConfigError(f"cannot save weights as {dtype}: use float32, float16 or bfloat16")
    doc = {"architectures": [_ARCH_CLASSES[model_type]], **writer(cfg)}
    doc["dtype"] = _DTYPE_NAMES[dtype]
    doc["transformers_version"] = TRANSFORMERS_VERSION
    _, back = translate_config(doc, "the written config")
    want = cfg.replace(architecture=model_type, dtype=doc["dtype"])
    if back != want:
        diff = [
            f"{f}: {getattr(want, f)!r} -> {getattr(back, f)!r}"
            for f in want.__dataclass_fields__
            if getattr(want, f) != getattr(back, f)
        ]
        raise ConfigError(f"cannot save as {model_type}: the config would not read back equal ({'; '.join(diff)})")
    return doc


# ---------------------------------------------------------------------------------------------
# Tensors: invert weight_plan's transforms


def _invert(src: Source, value: torch.Tensor) -> torch.Tensor:
    """Canonical parameter -> its checkpoint tensor (or, for "rows", that block of rows), undoing `src.transform`."""
    if src.transform in ("", "rows"):
        part = value
    elif src.transform == "t":
        part = value.t()
    else:
        raise CheckpointError(f"internal: cannot invert weight transform {src.transform!r}")
    shape = src.shapes[0] if src.rows is None else (src.rows[1] - src.rows[0], *src.shapes[0][1:])
    if tuple(part.shape) != tuple(shape):
        raise CheckpointError(f"internal: {src.names[0]} would be written as {list(part.shape)}, the plan needs {list(shape)}")
    return part


def _canonical(model: Transformer, canonical: str, layout: str) -> torch.Tensor | None:
    """The parameter `canonical` of the target family's plan, read from the model whatever its
    own attention layout (a model built from a config fuses q, k, v; Llama stores them apart)."""
    head, _, leaf = canonical.rpartition(".")
    if head.endswith(".attn") and leaf in ("W_q", "W_k", "W_v", "b_q", "b_k", "b_v", "W_qkv", "b_qkv"):
        attn = model.get_submodule(head)
        if attn.layout == layout:
            return getattr(attn, leaf)
        parts = attn.qkv_weights() if leaf.startswith("W") else attn.qkv_biases()
        if leaf in ("W_qkv", "b_qkv"):
            if any(p is None for p in parts):
                return None
            if layout == "neox":  # rows [head, (q|k|v), d_head]
                h, dh = model.cfg.n_heads, model.cfg.d_head
                return torch.stack([p.reshape(h, dh, *p.shape[1:]) for p in parts], dim=1).reshape(-1, *parts[0].shape[1:])  # type: ignore[union-attr]
            return torch.cat(parts, dim=0)  # type: ignore[arg-type]
        return parts["qkv".index(leaf[-1])]
    owner, attr = _owner(model, canonical)
    return getattr(owner, attr, None)


def state_dict_for(model: Transformer, model_type: str | None = None, *, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """The model's parameters under HuggingFace tensor names, contiguous, on the CPU, in `dtype`."""
    cfg = model.cfg
    arch = get_architecture(model_type or cfg.architecture, "save_checkpoint")
    config = cfg.replace(architecture=arch.model_type)
    plan, _ = weight_plan(arch, config, set())
    tensors: dict[str, torch.Tensor] = {}
    row_blocks: dict[str, list[tuple[int, torch.Tensor]]] = {}  # fused tensors written from row views (Phi-3's gate_up)
    for canonical, src in plan.items():
        param = _canonical(model, canonical, arch.attention_layout)
        if not isinstance(param, torch.Tensor):
            raise CheckpointError(f"internal: the model has no parameter for {canonical}")
        if param.is_meta:
            raise CheckpointError(f"cannot save {canonical}: it has no data (meta tensor)")
        value = _invert(src, param.detach().to(device="cpu", dtype=dtype))
        if src.rows is not None:
            row_blocks.setdefault(src.names[0], []).append((src.rows[0], value))
        else:
            tensors[src.names[0]] = value.contiguous().clone()
    for name, blocks in row_blocks.items():
        tensors[name] = torch.cat([b for _, b in sorted(blocks, key=lambda rb: rb[0])], dim=0).contiguous()
    return tensors


# ---------------------------------------------------------------------------------------------
# The directory


def save_checkpoint(
    model: Transformer,
    out_dir: str | os.PathLike[str],
    *,
    tokenizer_json: str | None,
    model_type: str | None = None,
    name: str | None = None,
    dtype: torch.dtype = torch.float32,
    extra_config: Mapping[str, Any] | None = None,
    files: Mapping[str, str | bytes] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write `model` as a HuggingFace model directory and return its path.

    `name`, when given, is stored in the safetensors metadata; the fingerprint hashes the
    headers, so the same weights saved under two names fingerprint differently: leave it out
    when copies should match.

    Writes config.json (transformers-5 dialect, plus `extra_config` keys), model.safetensors
    (HuggingFace names, `dtype`), tokenizer.json (when given) with a tokenizer_config.json so
    `AutoTokenizer` loads it too, and any further `files` (name -> text or bytes, e.g. a model
    card). Everything is written to a temporary sibling directory and renamed into place.
    An existing non-empty `out_dir` is replaced as a whole only with `overwrite=True`.
    """
    out = Path(out_dir).expanduser()
    model_type = model_type or model.cfg.architecture
    config_doc = hf_config(model.cfg, model_type, dtype=dtype)
    for key, value in (extra_config or {}).items():
        if key in config_doc:
            raise ConfigError(f"extra_config key {key!r} would overwrite a config field")
        config_doc[key] = value
    if tokenizer_json is not None:
        _check_tokenizer(tokenizer_json, model.cfg.vocab_size)
    for fname in files or {}:
        if not fname or "/" in fname or "\\" in fname or fname.startswith(".") or fname in _OWN_FILES:
            raise CheckpointError(f"cannot write extra file {fname!r}: give a plain file name other than {', '.join(_OWN_FILES)}")
    if out.exists():
        if not out.is_dir():
            raise CheckpointError(f"{out}: exists and is not a directory")
        if any(out.iterdir()) and not overwrite:
            raise CheckpointError(f"{out}: exists and is not empty (pass overwrite=True / --force to replace it)")
    tensors = state_dict_for(model, model_type, dtype=dtype)

    metadata = {"format": "pt"}
    if name:
        metadata["name"] = name

    def build(tmp: Path) -> None:
        save_file(tensors, str(tmp / "model.safetensors"), metadata=metadata)
        contents: dict[str, str | bytes] = {"config.json": json.dumps(config_doc, indent=2, sort_keys=True) + "\n"}
        if tokenizer_json is not None:
            contents["tokenizer.json"] = tokenizer_json
            contents["tokenizer_config.json"] = json.dumps(_tokenizer_config(tokenizer_json), indent=2) + "\n"
        contents.update(files or {})
        for fname, content in contents.items():
            (tmp / fname).write_bytes(content.encode("utf-8") if isinstance(content, str) else content)

    publish_dir(build, out, error=CheckpointError)
    return out


_OWN_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def _check_tokenizer(text: str, vocab_size: int) -> None:
    from tokenizers import Tokenizer as HFTokenizer

    try:
        tok = HFTokenizer.from_str(text)
    except Exception as e:
        if type(e) is not Exception:  # `tokenizers` reports a malformed document as a bare Exception
            raise
        raise CheckpointError(f"tokenizer_json is not a valid tokenizer: {str(e).splitlines()[0] if str(e) else e}") from e
    n = tok.get_vocab_size(with_added_tokens=True)
    if n > vocab_size:
        raise CheckpointError(f"the tokenizer has {n} tokens, more than the model's vocabulary ({vocab_size})")


def _tokenizer_config(text: str) -> dict[str, Any]:
    """A minimal tokenizer_config.json so transformers' AutoTokenizer can load tokenizer.json."""
    doc = json.loads(text)
    cfg: dict[str, Any] = {"tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False}
    model = doc.get("model") or {}
    unk = model.get("unk_token")
    if isinstance(unk, str):
        cfg["unk_token"] = unk
    for tok in doc.get("added_tokens") or []:
        content = tok.get("content") if isinstance(tok, dict) else None
        if content in ("[BOS]", "<s>", "<|bos|>"):
            cfg["bos_token"] = content
        elif content in ("[PAD]", "<pad>"):
            cfg["pad_token"] = content
        elif content in ("[EOS]", "</s>", "<|eos|>"):
            cfg["eos_token"] = content
    return cfg
