"""Architectures are data: a config translation and a weight-name map per family.

Each family turns a HuggingFace config.json dict into a ModelConfig and maps each parameter of
our one Transformer (canonical names, nn.Linear layout [out, in]) to the checkpoint tensors it
is made of, with at most a small named transform (transpose, concatenate, reorder a fused
projection). Adding an architecture is one `Architecture(...)` entry in ARCHITECTURES.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tui_interp.errors import ConfigError
from tui_interp.model.config import ModelConfig, RopeConfig


@dataclass(frozen=True)
class Source:
    """Where one canonical parameter comes from.

    transform: "" (as is), "t" (transpose a Conv1D [in, out] weight), "cat" (concatenate along
    dim 0, e.g. q/k/v projections into one), "neox_qkv" (un-interleave GPT-NeoX's fused
    [head, (q|k|v), d_head] rows into [(q|k|v), head, d_head]).
    """

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]  # expected shape of each source tensor
    transform: str = ""


@dataclass(frozen=True)
class Architecture:
    model_type: str
    translate: Callable[[Mapping[str, Any]], ModelConfig]
    prefixes: tuple[str, ...]  # tried in order; the one under which the embedding exists wins
    embed_name: str  # relative to the prefix
    names: Mapping[str, str]  # canonical role -> checkpoint name template (relative to prefix, {l} = layer)
    lm_head: str  # absolute name of the untied output matrix
    ignore: tuple[str, ...] = ()  # regexes of checkpoint tensors that are known but unused (buffers)
    fused_qkv: str = ""  # "" (separate q/k/v), "conv1d" (GPT-2 c_attn), "neox" (interleaved per head)
    conv1d: bool = False  # weights stored [in, out] (GPT-2's Conv1D)
    extra: Mapping[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Config translation helpers


def _get(cfg: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    for k in keys:
        if k in cfg and cfg[k] is not None:
            return cfg[k]
    return default


def _req(cfg: Mapping[str, Any], *keys: str) -> Any:
    value = _get(cfg, *keys)
    if value is None:
        raise ConfigError(f"config.json has no {' / '.join(keys)} (needed for {cfg.get('model_type')})")
    return value


def _dtype(cfg: Mapping[str, Any]) -> str:
    value = _get(cfg, "dtype", "torch_dtype", default="float32")
    return str(value).removeprefix("torch.")


def _rope(cfg: Mapping[str, Any], d_head: int, *, default_partial: float = 1.0) -> RopeConfig:
    """Read rotary parameters from either config dialect.

    transformers 5 writes `rope_parameters` {rope_type, rope_theta, partial_rotary_factor, ...};
    transformers 4 wrote `rope_theta` + `rope_scaling` {type|rope_type, factor, ...}, and GPT-NeoX
    `rotary_emb_base` + `rotary_pct`.
    """
    params = cfg.get("rope_parameters")
    if isinstance(params, Mapping) and "full_attention" in params and isinstance(params["full_attention"], Mapping):
        params = params["full_attention"]  # per-layer-type dialect; all our layers are full attention
    scaling = cfg.get("rope_scaling")
    merged: dict[str, Any] = {}
    if isinstance(scaling, Mapping):
        merged.update(scaling)
    if isinstance(params, Mapping):
        merged.update(params)
    theta = _get(merged, "rope_theta", default=None)
    if theta is None:
        theta = _get(cfg, "rope_theta", "rotary_emb_base", default=10000.0)
    partial = _get(merged, "partial_rotary_factor", default=None)
    if partial is None:
        partial = _get(cfg, "partial_rotary_factor", "rotary_pct", default=default_partial)
    kind = str(_get(merged, "rope_type", "type", default="default"))
    if kind not in ("default", "linear", "llama3"):
        raise ConfigError(
            f"rope scaling {kind!r} is not supported yet (supported: default, linear, llama3)"
        )
    rotary_dim = int(d_head * float(partial))
    return RopeConfig(
        theta=float(theta),
        rotary_dim=rotary_dim,
        scaling=kind,
        factor=float(_get(merged, "factor", default=1.0)),
        low_freq_factor=float(_get(merged, "low_freq_factor", default=1.0)),
        high_freq_factor=float(_get(merged, "high_freq_factor", default=4.0)),
        original_max_position_embeddings=int(_get(merged, "original_max_position_embeddings", default=8192)),
    )


def _ids(cfg: Mapping[str, Any]) -> dict[str, int | None]:
    def one(v: Any) -> int | None:
        if isinstance(v, list):
            v = v[0] if v else None
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    return {"bos_token_id": one(cfg.get("bos_token_id")), "eos_token_id": one(cfg.get("eos_token_id"))}


def _translate_gpt2(cfg: Mapping[str, Any]) -> ModelConfig:
    if _get(cfg, "scale_attn_by_inverse_layer_idx", default=False):
        raise ConfigError("gpt2 with scale_attn_by_inverse_layer_idx=true is not supported yet")
    if not _get(cfg, "scale_attn_weights", default=True):
        raise ConfigError("gpt2 with scale_attn_weights=false is not supported yet")
    d_model = int(_req(cfg, "n_embd", "hidden_size"))
    n_heads = int(_req(cfg, "n_head", "num_attention_heads"))
    if d_model % n_heads:
        raise ConfigError(f"gpt2 config: n_embd ({d_model}) is not a multiple of n_head ({n_heads})")
    return ModelConfig(
        architecture="gpt2",
        n_layers=int(_req(cfg, "n_layer", "num_hidden_layers")),
        d_model=d_model,
        n_heads=n_heads,
        n_kv_heads=n_heads,
        d_head=d_model // n_heads,
        d_mlp=int(_get(cfg, "n_inner", default=4 * d_model)),
        vocab_size=int(_req(cfg, "vocab_size")),
        n_ctx=int(_get(cfg, "n_positions", "n_ctx", "max_position_embeddings", default=1024)),
        norm="layernorm",
        norm_eps=float(_get(cfg, "layer_norm_epsilon", default=1e-5)),
        positional="learned",
        act_fn=str(_get(cfg, "activation_function", default="gelu_new")),
        qkv_bias=True,
        attn_out_bias=True,
        mlp_bias=True,
        tie_word_embeddings=bool(_get(cfg, "tie_word_embeddings", default=True)),
        dtype=_dtype(cfg),
        **_ids(cfg),
    )


def _translate_llama_like(family: str, *, qkv_bias: bool | None = None) -> Callable[[Mapping[str, Any]], ModelConfig]:
    def translate(cfg: Mapping[str, Any]) -> ModelConfig:
        d_model = int(_req(cfg, "hidden_size"))
        n_heads = int(_req(cfg, "num_attention_heads"))
        d_head = int(_get(cfg, "head_dim", default=0) or 0) or d_model // n_heads
        attention_bias = bool(_get(cfg, "attention_bias", default=False))
        sliding = None
        if family == "mistral":
            sliding = _get(cfg, "sliding_window", default=None)
        elif family == "qwen2" and _get(cfg, "use_sliding_window", default=False):
            raise ConfigError("qwen2 with use_sliding_window=true is not supported yet")
        return ModelConfig(
            architecture=family,
            n_layers=int(_req(cfg, "num_hidden_layers")),
            d_model=d_model,
            n_heads=n_heads,
            n_kv_heads=int(_get(cfg, "num_key_value_heads", default=n_heads)),
            d_head=d_head,
            d_mlp=int(_req(cfg, "intermediate_size")),
            vocab_size=int(_req(cfg, "vocab_size")),
            n_ctx=int(_get(cfg, "max_position_embeddings", default=2048)),
            norm="rmsnorm",
            norm_eps=float(_get(cfg, "rms_norm_eps", default=1e-6)),
            norm_bias=False,
            positional="rotary",
            rope=_rope(cfg, d_head),
            act_fn=str(_get(cfg, "hidden_act", default="silu")),
            gated_mlp=True,
            qkv_bias=attention_bias if qkv_bias is None else qkv_bias,
            attn_out_bias=attention_bias,
            mlp_bias=bool(_get(cfg, "mlp_bias", default=False)),
            tie_word_embeddings=bool(_get(cfg, "tie_word_embeddings", default=False)),
            sliding_window=int(sliding) if sliding else None,
            dtype=_dtype(cfg),
            **_ids(cfg),
        )

    return translate


def _translate_gpt_neox(cfg: Mapping[str, Any]) -> ModelConfig:
    d_model = int(_req(cfg, "hidden_size"))
    n_heads = int(_req(cfg, "num_attention_heads"))
    if d_model % n_heads:
        raise ConfigError(f"gpt_neox config: hidden_size ({d_model}) is not a multiple of num_attention_heads ({n_heads})")
    d_head = d_model // n_heads
    bias = bool(_get(cfg, "attention_bias", default=True))
    return ModelConfig(
        architecture="gpt_neox",
        n_layers=int(_req(cfg, "num_hidden_layers")),
        d_model=d_model,
        n_heads=n_heads,
        n_kv_heads=n_heads,
        d_head=d_head,
        d_mlp=int(_get(cfg, "intermediate_size", default=4 * d_model)),
        vocab_size=int(_req(cfg, "vocab_size")),
        n_ctx=int(_get(cfg, "max_position_embeddings", default=2048)),
        norm="layernorm",
        norm_eps=float(_get(cfg, "layer_norm_eps", default=1e-5)),
        positional="rotary",
        rope=_rope(cfg, d_head, default_partial=0.25),
        act_fn=str(_get(cfg, "hidden_act", default="gelu")),
        parallel_attn_mlp=bool(_get(cfg, "use_parallel_residual", default=True)),
        qkv_bias=bias,
        attn_out_bias=bias,
        mlp_bias=True,
        tie_word_embeddings=bool(_get(cfg, "tie_word_embeddings", default=False)),
        dtype=_dtype(cfg),
        **_ids(cfg),
    )


_LLAMA_NAMES = {
    "embed": "embed_tokens.weight",
    "ln1.w": "layers.{l}.input_layernorm.weight",
    "ln2.w": "layers.{l}.post_attention_layernorm.weight",
    "q.w": "layers.{l}.self_attn.q_proj.weight",
    "k.w": "layers.{l}.self_attn.k_proj.weight",
    "v.w": "layers.{l}.self_attn.v_proj.weight",
    "q.b": "layers.{l}.self_attn.q_proj.bias",
    "k.b": "layers.{l}.self_attn.k_proj.bias",
    "v.b": "layers.{l}.self_attn.v_proj.bias",
    "o.w": "layers.{l}.self_attn.o_proj.weight",
    "o.b": "layers.{l}.self_attn.o_proj.bias",
    "gate.w": "layers.{l}.mlp.gate_proj.weight",
    "gate.b": "layers.{l}.mlp.gate_proj.bias",
    "in.w": "layers.{l}.mlp.up_proj.weight",
    "in.b": "layers.{l}.mlp.up_proj.bias",
    "out.w": "layers.{l}.mlp.down_proj.weight",
    "out.b": "layers.{l}.mlp.down_proj.bias",
    "ln_final.w": "norm.weight",
}
_LLAMA_IGNORE = (r"(^|\.)rotary_emb\.inv_freq$",)

ARCHITECTURES: dict[str, Architecture] = {
    "gpt2": Architecture(
        model_type="gpt2",
        translate=_translate_gpt2,
        prefixes=("transformer.", ""),
        embed_name="wte.weight",
        names={
            "embed": "wte.weight",
            "pos_embed": "wpe.weight",
            "ln1.w": "h.{l}.ln_1.weight",
            "ln1.b": "h.{l}.ln_1.bias",
            "ln2.w": "h.{l}.ln_2.weight",
            "ln2.b": "h.{l}.ln_2.bias",
            "qkv.w": "h.{l}.attn.c_attn.weight",
            "qkv.b": "h.{l}.attn.c_attn.bias",
            "o.w": "h.{l}.attn.c_proj.weight",
            "o.b": "h.{l}.attn.c_proj.bias",
            "in.w": "h.{l}.mlp.c_fc.weight",
            "in.b": "h.{l}.mlp.c_fc.bias",
            "out.w": "h.{l}.mlp.c_proj.weight",
            "out.b": "h.{l}.mlp.c_proj.bias",
            "ln_final.w": "ln_f.weight",
            "ln_final.b": "ln_f.bias",
        },
        lm_head="lm_head.weight",
        ignore=(r"(^|\.)attn\.(bias|masked_bias)$",),
        fused_qkv="conv1d",
        conv1d=True,
    ),
    "llama": Architecture(
        model_type="llama",
        translate=_translate_llama_like("llama"),
        prefixes=("model.", ""),
        embed_name="embed_tokens.weight",
        names=_LLAMA_NAMES,
        lm_head="lm_head.weight",
        ignore=_LLAMA_IGNORE,
    ),
    "mistral": Architecture(
        model_type="mistral",
        translate=_translate_llama_like("mistral"),
        prefixes=("model.", ""),
        embed_name="embed_tokens.weight",
        names=_LLAMA_NAMES,
        lm_head="lm_head.weight",
        ignore=_LLAMA_IGNORE,
    ),
    "qwen2": Architecture(
        model_type="qwen2",
        translate=_translate_llama_like("qwen2", qkv_bias=True),
        prefixes=("model.", ""),
        embed_name="embed_tokens.weight",
        names=_LLAMA_NAMES,
        lm_head="lm_head.weight",
        ignore=_LLAMA_IGNORE,
    ),
    "gpt_neox": Architecture(
        model_type="gpt_neox",
        translate=_translate_gpt_neox,
        prefixes=("gpt_neox.", ""),
        embed_name="embed_in.weight",
        names={
            "embed": "embed_in.weight",
            "ln1.w": "layers.{l}.input_layernorm.weight",
            "ln1.b": "layers.{l}.input_layernorm.bias",
            "ln2.w": "layers.{l}.post_attention_layernorm.weight",
            "ln2.b": "layers.{l}.post_attention_layernorm.bias",
            "qkv.w": "layers.{l}.attention.query_key_value.weight",
            "qkv.b": "layers.{l}.attention.query_key_value.bias",
            "o.w": "layers.{l}.attention.dense.weight",
            "o.b": "layers.{l}.attention.dense.bias",
            "in.w": "layers.{l}.mlp.dense_h_to_4h.weight",
            "in.b": "layers.{l}.mlp.dense_h_to_4h.bias",
            "out.w": "layers.{l}.mlp.dense_4h_to_h.weight",
            "out.b": "layers.{l}.mlp.dense_4h_to_h.bias",
            "ln_final.w": "final_layer_norm.weight",
            "ln_final.b": "final_layer_norm.bias",
        },
        lm_head="embed_out.weight",
        ignore=(r"(^|\.)attention\.(bias|masked_bias)$", r"(^|\.)rotary_emb\.inv_freq$"),
        fused_qkv="neox",
    ),
}


def supported() -> str:
    return ", ".join(sorted(ARCHITECTURES))


def get_architecture(model_type: object, where: str = "config.json") -> Architecture:
    if not isinstance(model_type, str) or not model_type:
        raise ConfigError(f"{where}: no model_type (supported: {supported()})")
    arch = ARCHITECTURES.get(model_type)
    if arch is None:
        raise ConfigError(f"{where}: unsupported model_type {model_type!r} (supported: {supported()})")
    return arch


def translate_config(hf_config: Mapping[str, Any], where: str = "config.json") -> tuple[Architecture, ModelConfig]:
    arch = get_architecture(hf_config.get("model_type"), where)
    try:
        config = arch.translate(hf_config)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from e
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: invalid value in {arch.model_type} config: {e}") from e
    return arch, config


def detect_prefix(arch: Architecture, tensor_names: set[str]) -> str:
    for prefix in arch.prefixes:
        if prefix + arch.embed_name in tensor_names:
            return prefix
    return arch.prefixes[0]


def weight_plan(arch: Architecture, config: ModelConfig, tensor_names: set[str]) -> tuple[dict[str, Source], set[str]]:
    """Map every canonical parameter to its checkpoint source(s).

    Returns the plan and the set of checkpoint tensors that are allowed but unused.
    """
    p = detect_prefix(arch, tensor_names)
    d, h, kv, dh, m, V = config.d_model, config.n_heads, config.n_kv_heads, config.d_head, config.d_mlp, config.vocab_size
    names = arch.names
    plan: dict[str, Source] = {}

    def lin(out_dim: int, in_dim: int) -> tuple[int, int]:
        return (in_dim, out_dim) if arch.conv1d else (out_dim, in_dim)

    def w(role: str, l: int | None, shape: tuple[int, ...], transform: str = "") -> Source:
        return Source((p + names[role].format(l=l),), (shape,), transform)

    tf = "t" if arch.conv1d else ""
    plan["embed.W_E"] = w("embed", None, (V, d))
    if config.positional == "learned":
        plan["pos_embed.W_pos"] = w("pos_embed", None, (config.n_ctx, d))
    qkv_rows = (h + 2 * kv) * dh
    for l in range(config.n_layers):
        b = f"blocks.{l}."
        norms = ("ln1", "ln2") if m else ("ln1",)
        for ln in norms:
            plan[b + ln + ".w"] = w(ln + ".w", l, (d,))
            if config.norm == "layernorm" and config.norm_bias:
                plan[b + ln + ".b"] = w(ln + ".b", l, (d,))
        if arch.fused_qkv == "conv1d":
            plan[b + "attn.W_qkv"] = w("qkv.w", l, (d, qkv_rows), "t")
            if config.qkv_bias:
                plan[b + "attn.b_qkv"] = w("qkv.b", l, (qkv_rows,))
        elif arch.fused_qkv == "neox":
            plan[b + "attn.W_qkv"] = w("qkv.w", l, (qkv_rows, d), "neox_qkv")
            if config.qkv_bias:
                plan[b + "attn.b_qkv"] = w("qkv.b", l, (qkv_rows,), "neox_qkv")
        else:
            plan[b + "attn.W_qkv"] = Source(
                tuple(p + names[r].format(l=l) for r in ("q.w", "k.w", "v.w")),
                ((h * dh, d), (kv * dh, d), (kv * dh, d)),
                "cat",
            )
            if config.qkv_bias:
                plan[b + "attn.b_qkv"] = Source(
                    tuple(p + names[r].format(l=l) for r in ("q.b", "k.b", "v.b")),
                    ((h * dh,), (kv * dh,), (kv * dh,)),
                    "cat",
                )
        plan[b + "attn.W_O"] = w("o.w", l, lin(d, h * dh), tf)
        if config.attn_out_bias:
            plan[b + "attn.b_O"] = w("o.b", l, (d,))
        if m:
            plan[b + "mlp.W_in"] = w("in.w", l, lin(m, d), tf)
            plan[b + "mlp.W_out"] = w("out.w", l, lin(d, m), tf)
            if config.gated_mlp:
                plan[b + "mlp.W_gate"] = w("gate.w", l, lin(m, d), tf)
            if config.mlp_bias:
                plan[b + "mlp.b_in"] = w("in.b", l, (m,))
                plan[b + "mlp.b_out"] = w("out.b", l, (d,))
                if config.gated_mlp:
                    plan[b + "mlp.b_gate"] = w("gate.b", l, (m,))
    plan["ln_final.w"] = w("ln_final.w", None, (d,))
    if config.norm == "layernorm" and config.norm_bias:
        plan["ln_final.b"] = w("ln_final.b", None, (d,))

    ignored = {n for n in tensor_names if any(re.search(rx, n) for rx in arch.ignore)}
    if config.tie_word_embeddings:
        if arch.lm_head in tensor_names:
            ignored.add(arch.lm_head)  # some savers write the tied copy; HF ignores it too
    else:
        plan["unembed.W_U"] = Source((arch.lm_head,), ((V, d),))
    return plan, ignored
