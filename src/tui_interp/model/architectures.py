"""Architectures are data: a config translation and a weight-name map per family.

Each family turns a HuggingFace config.json dict into a ModelConfig and maps each parameter of
our one Transformer (canonical names, nn.Linear layout [out, in]) to the checkpoint tensor it
is read from, with at most a view-making transform (transpose, a block of rows): nothing is
copied, so a loaded model on the CPU in the checkpoint's dtype is the memory-mapped file itself.
Adding an architecture is one `Architecture(...)` entry in ARCHITECTURES.

Every value read from config.json goes through a typed reader (`_int`, `_float`, `_bool`,
`_str`): an integer is an int (not a bool, not 1.7, not 1e999), sizes are positive and bounded,
and the layer count cannot exceed the layers the checkpoint holds tensors for, so a hostile
config fails with one line before anything proportional to its numbers is built.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tui_interp.errors import ConfigError
from tui_interp.model.config import LAYER_TYPES, ModelConfig, RopeConfig

MAX_INT = 2**40  # no size, context or id of a real model is larger
MAX_LAYERS = 100_000


@dataclass(frozen=True)
class Source:
    """Where one canonical parameter comes from.

    transform: "" (as is), "t" (a transposed view of a Conv1D [in, out] weight), "rows" (the
    block of rows `rows` of a fused tensor, e.g. the gate half of Phi-3's gate_up_proj).
    Each is a view of the checkpoint tensor: loading copies nothing.
    """

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]  # expected shape of each source tensor
    transform: str = ""
    rows: tuple[int, int] | None = None


@dataclass(frozen=True)
class Architecture:
    model_type: str
    translate: Callable[..., ModelConfig]  # (hf_config, max_layers) -> ModelConfig
    prefixes: tuple[str, ...]  # tried in order; the one under which the embedding exists wins
    embed_name: str  # relative to the prefix
    names: Mapping[str, str]  # canonical role -> checkpoint name template (relative to prefix, {l} = layer)
    lm_head: str  # absolute name of the untied output matrix
    ignore: tuple[str, ...] = ()  # regexes of checkpoint tensors that are known but unused (buffers)
    # How q, k and v are stored: "separate" (q_proj, k_proj, v_proj), "fused" (one [q; k; v] matrix,
    # Phi-3), "conv1d" (GPT-2's c_attn, [in, out]), "neox" (one matrix interleaved per head).
    qkv: str = "separate"
    conv1d: bool = False  # weights stored [in, out] (GPT-2's Conv1D)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def attention_layout(self) -> str:
        """The Transformer's attention parameter layout for this family (see transformer.Attention)."""
        return {"conv1d": "fused", "fused": "fused", "neox": "neox"}.get(self.qkv, "separate")


# ---------------------------------------------------------------------------------------------
# Typed readers of config values: one line naming the key and the value on anything else

_MISSING = object()


def _lookup(cfg: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[str, Any]:
    """The first of `keys` present with a non-null value, and that value (or (keys[0], None))."""
    for k in keys:
        if k in cfg and cfg[k] is not None:
            return k, cfg[k]
    return keys[0], None


def _show(v: object) -> str:
    """A config value in an error message: short, one line, never a 4,000-digit number."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        if v.bit_length() > 64:
            return f"an integer of about {int(v.bit_length() * 0.30103) + 1} digits"
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return repr(v if len(v) <= 40 else v[:37] + "...")
    return f"a JSON {'array' if isinstance(v, list) else 'object' if isinstance(v, dict) else type(v).__name__}"


def _int(cfg: Mapping[str, Any], *keys: str, default: Any = _MISSING, minimum: int = 1, maximum: int = MAX_INT, what: str = "") -> int:
    key, v = _lookup(cfg, keys)
    if v is None:
        if default is _MISSING:
            raise ConfigError(f"no {' / '.join(keys)} (needed for {_family(cfg)})")
        return default
    if not isinstance(v, int) or isinstance(v, bool):
        raise ConfigError(f"{key} must be an integer, got {_show(v)}")
    if v < minimum or v > maximum:
        raise ConfigError(f"{key} must be in {minimum}..{maximum:,}{what}, got {_show(v)}")
    return v


def _float(
    cfg: Mapping[str, Any], *keys: str, default: Any = _MISSING, positive: bool = True, maximum: float | None = None
) -> float:
    key, v = _lookup(cfg, keys)
    if v is None:
        if default is _MISSING:
            raise ConfigError(f"no {' / '.join(keys)} (needed for {_family(cfg)})")
        return default
    return _number(key, v, positive=positive, maximum=maximum)


def _number(key: str, v: object, *, positive: bool = True, maximum: float | None = None) -> float:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        raise ConfigError(f"{key} must be a number, got {_show(v)}")
    try:
        x = float(v)
    except OverflowError:
        raise ConfigError(f"{key} must be a finite number, got {_show(v)}") from None
    if not math.isfinite(x):
        raise ConfigError(f"{key} must be a finite number, got {_show(v)}")
    if positive and x <= 0:
        raise ConfigError(f"{key} must be positive, got {_show(v)}")
    if maximum is not None and x > maximum:
        raise ConfigError(f"{key} must be at most {maximum:g}, got {_show(v)}")
    return x


def _present(cfg: Mapping[str, Any], key: str, default: Any) -> Any:
    """`default` when `key` is absent; None when it is null (transformers' "switched off")."""
    return cfg[key] if key in cfg else default


def _bool(cfg: Mapping[str, Any], *keys: str, default: bool) -> bool:
    key, v = _lookup(cfg, keys)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise ConfigError(f"{key} must be true or false, got {_show(v)}")
    return v


def _str(cfg: Mapping[str, Any], *keys: str, default: str) -> str:
    key, v = _lookup(cfg, keys)
    if v is None:
        return default
    if not isinstance(v, str):
        raise ConfigError(f"{key} must be a string, got {_show(v)}")
    return v


def _mapping(cfg: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    v = cfg.get(key)
    if v is None:
        return None
    if not isinstance(v, Mapping):
        raise ConfigError(f"{key} must be a JSON object, got {_show(v)}")
    return v


def _family(cfg: Mapping[str, Any]) -> str:
    t = cfg.get("model_type")
    return t if isinstance(t, str) else "this model"


def _dtype(cfg: Mapping[str, Any]) -> str:
    return _str(cfg, "dtype", "torch_dtype", default="float32").removeprefix("torch.")


def _ids(cfg: Mapping[str, Any], vocab_size: int) -> dict[str, int | None]:
    """bos/eos token ids (the first of a list); ids outside the vocabulary are ignored, as unusable."""

    def one(v: Any) -> int | None:
        if isinstance(v, list):
            v = v[0] if v else None
        ok = isinstance(v, int) and not isinstance(v, bool) and 0 <= v < vocab_size
        return v if ok else None

    return {"bos_token_id": one(cfg.get("bos_token_id")), "eos_token_id": one(cfg.get("eos_token_id"))}


def _layer_count(cfg: Mapping[str, Any], *keys: str, max_layers: int | None) -> int:
    """The layer count, bounded by the layers the checkpoint holds tensors for (when known)."""
    n = _int(cfg, *keys)
    if max_layers is not None and n > max_layers:
        raise ConfigError(f"{_lookup(cfg, keys)[0]} is {_show(n)} but the checkpoint holds tensors for {max_layers} layer(s)")
    if n > MAX_LAYERS:
        raise ConfigError(f"{_lookup(cfg, keys)[0]} must be in 1..{MAX_LAYERS:,}, got {_show(n)}")
    return n


# ---------------------------------------------------------------------------------------------
# Rotary embeddings, in both config dialects


def _rope_dicts(cfg: Mapping[str, Any], layer_type: str = "full_attention") -> tuple[dict[str, Any], bool]:
    """The merged rope parameters for `layer_type`, and whether they came from a per-layer-type dict.

    transformers 5 writes `rope_parameters` {rope_type, rope_theta, partial_rotary_factor, ...}
    (or one such dict per layer type); transformers 4 wrote `rope_theta` + `rope_scaling`
    {type|rope_type, factor, ...}, and GPT-NeoX `rotary_emb_base` + `rotary_pct`.
    """
    params = _mapping(cfg, "rope_parameters")
    nested = params is not None and any(k in params for k in LAYER_TYPES)
    if nested and params is not None:
        params = params.get(layer_type)
        if params is not None and not isinstance(params, Mapping):
            raise ConfigError(f"rope_parameters.{layer_type} must be a JSON object, got {_show(params)}")
    merged: dict[str, Any] = {}
    scaling = _mapping(cfg, "rope_scaling")
    if scaling is not None and layer_type == "full_attention":
        merged.update(scaling)
    if params is not None:
        merged.update(params)
    return merged, nested


def _rope(
    cfg: Mapping[str, Any],
    d_head: int,
    max_positions: int,
    *,
    default_partial: float = 1.0,
    default_theta: float = 10000.0,
    theta_keys: tuple[str, ...] = ("rope_theta", "rotary_emb_base"),
    original_default: int | None = None,
    layer_type: str = "full_attention",
    scalings: tuple[str, ...] = ("default", "linear", "llama3", "yarn", "dynamic", "longrope"),
    aliases: Mapping[str, str] | None = None,
) -> RopeConfig:
    """Rotary parameters as transformers 5 resolves them (modeling_rope_utils.py)."""
    merged, nested = _rope_dicts(cfg, layer_type)
    theta = _float(merged, "rope_theta", default=None)
    if theta is None:
        theta = _float(cfg, *theta_keys, default=default_theta)
    partial = _float(merged, "partial_rotary_factor", default=None, maximum=1.0)
    if partial is None:
        partial = _float(cfg, "partial_rotary_factor", "rotary_pct", default=default_partial, maximum=1.0)
    kind = _str(merged, "rope_type", "type", default="default")
    kind = (aliases or {}).get(kind, kind)
    if kind not in scalings:
        raise ConfigError(f"rope scaling {kind!r} is not supported for {_family(cfg)} (supported: {', '.join(scalings)})")
    rotary_dim = int(d_head * partial)
    fields: dict[str, Any] = {"theta": theta, "rotary_dim": rotary_dim, "scaling": kind}
    if kind == "default":
        return RopeConfig(**fields)
    if kind in ("llama3", "yarn", "longrope"):
        if original_default is not None:  # Phi-3: the top-level field (default 4096) always wins
            original = _int(cfg, "original_max_position_embeddings", default=original_default)
        elif "original_max_position_embeddings" in cfg and not nested:  # a top-level value wins, as in transformers
            original = _int(cfg, "original_max_position_embeddings")
        else:
            original = _int(merged, "original_max_position_embeddings", default=max_positions)
        fields["original_max_position_embeddings"] = original
    if kind == "linear":
        fields["factor"] = _float(merged, "factor")
    elif kind == "llama3":
        fields["factor"] = _float(merged, "factor")
        fields["low_freq_factor"] = _float(merged, "low_freq_factor")
        fields["high_freq_factor"] = _float(merged, "high_freq_factor")
        if fields["high_freq_factor"] <= fields["low_freq_factor"]:
            raise ConfigError(f"llama3 rope needs low_freq_factor < high_freq_factor, got {fields['low_freq_factor']} and {fields['high_freq_factor']}")
    elif kind == "dynamic":
        fields["factor"] = _float(merged, "factor")
        fields["original_max_position_embeddings"] = max_positions  # transformers uses max_position_embeddings
        if rotary_dim <= 2:
            raise ConfigError(f"dynamic rope needs more than 2 rotary dimensions, got {rotary_dim}")
    elif kind == "yarn":
        original = fields["original_max_position_embeddings"]
        factor = _float(merged, "factor", default=None)
        if factor is None:
            factor = max_positions / original
        if theta <= 1:
            raise ConfigError(f"yarn rope needs rope_theta > 1, got {theta!r}")
        attention = _float(merged, "attention_factor", default=None)
        if attention is None:
            mscale = _float(merged, "mscale", default=None, positive=False)
            mscale_all = _float(merged, "mscale_all_dim", default=None, positive=False)
            if mscale and mscale_all:
                attention = _yarn_mscale(factor, mscale) / _yarn_mscale(factor, mscale_all)
            else:
                attention = _yarn_mscale(factor, 1.0)
        beta_fast = _float(merged, "beta_fast", default=None, positive=False) or 32.0  # transformers: 0 means the default
        beta_slow = _float(merged, "beta_slow", default=None, positive=False) or 1.0
        if beta_fast < 0 or beta_slow < 0:
            raise ConfigError(f"yarn rope needs positive beta_fast and beta_slow, got {beta_fast:g} and {beta_slow:g}")
        fields.update(
            factor=factor,
            attention_factor=_number("attention_factor", attention),
            beta_fast=beta_fast,
            beta_slow=beta_slow,
            # transformers reads `truncate` from the top-level rope dict (never a per-layer-type one)
            truncate=True if nested else _bool(merged, "truncate", default=True),
        )
    elif kind == "longrope":
        original = fields["original_max_position_embeddings"]
        factor = _float(merged, "factor", default=None)
        if factor is None:
            factor = max_positions / original
        attention = _float(merged, "attention_factor", default=None)
        if attention is None:
            if factor <= 1.0:
                attention = 1.0
            elif original < 2:
                raise ConfigError(f"longrope needs original_max_position_embeddings >= 2, got {original}")
            else:
                attention = math.sqrt(1 + math.log(factor) / math.log(original))
        fields.update(factor=factor, attention_factor=attention,
                      short_factor=_factors(merged, "short_factor", rotary_dim), long_factor=_factors(merged, "long_factor", rotary_dim))
    return RopeConfig(**fields)


def _yarn_mscale(scale: float, mscale: float) -> float:
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def _factors(merged: Mapping[str, Any], key: str, rotary_dim: int) -> tuple[float, ...]:
    v = merged.get(key)
    if not isinstance(v, list) or len(v) != rotary_dim // 2:
        raise ConfigError(f"longrope {key} must be a list of {rotary_dim // 2} numbers (rotary dim / 2), got {_show(v)}")
    return tuple(_number(f"{key}[{i}]", x) for i, x in enumerate(v))


def _rope_context(rope: RopeConfig, max_positions: int) -> int:
    """The context a rope scaling is meant to reach: yarn and dynamic extend the trained length."""
    if rope.scaling in ("yarn", "dynamic"):
        reach = math.ceil(rope.original_max_position_embeddings * rope.factor)
        if reach > MAX_INT:
            raise ConfigError(f"rope factor {rope.factor:g} extends the context past {MAX_INT:,} positions")
        return max(max_positions, reach)
    return max_positions


# ---------------------------------------------------------------------------------------------
# Families


def _translate_gpt2(cfg: Mapping[str, Any], max_layers: int | None = None) -> ModelConfig:
    if _bool(cfg, "scale_attn_by_inverse_layer_idx", default=False):
        raise ConfigError("gpt2 with scale_attn_by_inverse_layer_idx=true is not supported yet")
    if not _bool(cfg, "scale_attn_weights", default=True):
        raise ConfigError("gpt2 with scale_attn_weights=false is not supported yet")
    d_model = _int(cfg, "n_embd", "hidden_size")
    n_heads = _int(cfg, "n_head", "num_attention_heads")
    if d_model % n_heads:
        raise ConfigError(f"gpt2 config: n_embd ({d_model}) is not a multiple of n_head ({n_heads})")
    vocab = _int(cfg, "vocab_size")
    return ModelConfig(
        architecture="gpt2",
        n_layers=_layer_count(cfg, "n_layer", "num_hidden_layers", max_layers=max_layers),
        d_model=d_model,
        n_heads=n_heads,
        n_kv_heads=n_heads,
        d_head=d_model // n_heads,
        d_mlp=_int(cfg, "n_inner", default=4 * d_model),
        vocab_size=vocab,
        n_ctx=_int(cfg, "n_positions", "n_ctx", "max_position_embeddings", default=1024),
        norm="layernorm",
        norm_eps=_float(cfg, "layer_norm_epsilon", default=1e-5),
        positional="learned",
        act_fn=_str(cfg, "activation_function", default="gelu_new"),
        qkv_bias=True,
        attn_out_bias=True,
        mlp_bias=True,
        tie_word_embeddings=_bool(cfg, "tie_word_embeddings", default=True),
        dtype=_dtype(cfg),
        **_ids(cfg, vocab),
    )


@dataclass(frozen=True)
class _Switches:
    """What a Llama-like family changes (the defaults are Llama's)."""

    qkv_bias: bool | None = None  # None: attention_bias decides
    mlp_bias_key: bool = False  # mlp_bias read from the config (Llama)
    sliding: str = ""  # "" none, "all" (Mistral, Phi-3: every layer when set), "types" (layer_types)
    norm_style: str = "llama"
    pre_norms: bool = True
    post_norms: bool = False
    qk_norm: str = ""
    gemma: bool = False  # embeddings scaled by sqrt(d_model), GeGLU by default, head_dim 256 by default
    act_keys: tuple[str, ...] = ("hidden_act",)
    default_act: str = "silu"
    default_eps: float = 1e-6
    default_positions: int = 2048
    default_tie: bool = False
    softcaps: str = ""  # "" none, "both" (Gemma 2), "final" (Gemma 3: transformers ignores the attention cap)
    query_pre_attn_scalar: bool = False
    local_rope: bool = False  # Gemma 3: sliding layers have their own rotary base
    scalings: tuple[str, ...] = ("default", "linear", "llama3", "yarn", "dynamic", "longrope")
    rope_aliases: Mapping[str, str] = field(default_factory=dict)


def _translate_llama_like(family: str, switches: _Switches | None = None) -> Callable[..., ModelConfig]:
    sw = switches or _Switches()

    def translate(cfg: Mapping[str, Any], max_layers: int | None = None) -> ModelConfig:
        d_model = _int(cfg, "hidden_size")
        n_heads = _int(cfg, "num_attention_heads")
        n_kv = _int(cfg, "num_key_value_heads", default=n_heads)
        if sw.gemma:
            d_head = _int(cfg, "head_dim", default=256)
        else:
            d_head = _int(cfg, "head_dim", default=None) or _whole(d_model, n_heads, "hidden_size", "num_attention_heads")
        n_layers = _layer_count(cfg, "num_hidden_layers", max_layers=max_layers)
        vocab = _int(cfg, "vocab_size")
        max_positions = _int(cfg, "max_position_embeddings", default=sw.default_positions)
        attention_bias = _bool(cfg, "attention_bias", default=False)
        if _bool(cfg, "use_bidirectional_attention", default=False):
            raise ConfigError(f"{family} with use_bidirectional_attention=true is not a causal language model")
        act = _str(cfg, *sw.act_keys, default=sw.default_act)
        if family == "gemma" and act == "gelu":
            act = "gelu_pytorch_tanh"  # transformers: the legacy value of the official releases means the tanh approximation
        sliding, layer_types = _sliding(cfg, family, sw, n_layers)
        rope = _rope(cfg, d_head, max_positions, default_theta=1_000_000.0 if sw.local_rope else 10000.0,
                     scalings=sw.scalings, aliases=sw.rope_aliases, original_default=4096 if family == "phi3" else None)
        rope_local = None
        if sw.local_rope:  # sliding layers: their own dict (transformers 5) or rope_local_base_freq (4), never rope_scaling
            rope_local = _rope(cfg, d_head, max_positions, layer_type="sliding_attention", theta_keys=("rope_local_base_freq",),
                               scalings=sw.scalings)
        softcap = final_softcap = None
        if sw.softcaps == "both":
            softcap = _present(cfg, "attn_logit_softcapping", 50.0)
            softcap = None if softcap is None else _number("attn_logit_softcapping", softcap)
        if sw.softcaps:
            final_softcap = _present(cfg, "final_logit_softcapping", 30.0 if family == "gemma2" else None)
            final_softcap = None if final_softcap is None else _number("final_logit_softcapping", final_softcap)
        attn_scale = None
        if sw.query_pre_attn_scalar:
            attn_scale = _float(cfg, "query_pre_attn_scalar", default=256.0) ** -0.5
        return ModelConfig(
            architecture=family,
            n_layers=n_layers,
            d_model=d_model,
            n_heads=n_heads,
            n_kv_heads=n_kv,
            d_head=d_head,
            d_mlp=_int(cfg, "intermediate_size"),
            vocab_size=vocab,
            n_ctx=_rope_context(rope, max_positions),
            norm="rmsnorm",
            norm_eps=_float(cfg, "rms_norm_eps", default=sw.default_eps),
            norm_bias=False,
            positional="rotary",
            rope=rope,
            act_fn=act,
            gated_mlp=True,
            qkv_bias=attention_bias if sw.qkv_bias is None else sw.qkv_bias,
            attn_out_bias=attention_bias if sw.qkv_bias is None else False,
            mlp_bias=_bool(cfg, "mlp_bias", default=False) if sw.mlp_bias_key else False,
            tie_word_embeddings=_bool(cfg, "tie_word_embeddings", default=sw.default_tie),
            sliding_window=sliding,
            dtype=_dtype(cfg),
            norm_style=sw.norm_style,
            pre_norms=sw.pre_norms,
            post_norms=sw.post_norms,
            qk_norm=sw.qk_norm,
            embed_scale=sw.gemma,
            attn_scale=attn_scale,
            attn_softcap=softcap,
            final_softcap=final_softcap,
            layer_types=layer_types,
            rope_local=rope_local,
            **_ids(cfg, vocab),
        )

    return translate


def _whole(a: int, b: int, a_name: str, b_name: str) -> int:
    if a % b:
        raise ConfigError(f"{a_name} ({a}) is not a multiple of {b_name} ({b})")
    return a // b


def _sliding(cfg: Mapping[str, Any], family: str, sw: _Switches, n_layers: int) -> tuple[int | None, tuple[str, ...]]:
    """The sliding window and which layers use it, as each family's transformers config decides."""
    if sw.sliding == "":
        if family == "qwen2" and _bool(cfg, "use_sliding_window", default=False):
            raise ConfigError("qwen2 with use_sliding_window=true is not supported yet")
        return None, ()
    if sw.sliding == "all":
        window = _int(cfg, "sliding_window", default=None)
        return window, ()
    # per layer type
    if family == "qwen3":
        if not _bool(cfg, "use_sliding_window", default=False):
            return None, ()
        window = _present(cfg, "sliding_window", 4096)
        window = None if window is None else _int(cfg, "sliding_window")
        first = _int(cfg, "max_window_layers", default=28, minimum=0)
        default = tuple("sliding_attention" if i >= first else "full_attention" for i in range(n_layers))
    else:
        window = _present(cfg, "sliding_window", 4096)
        window = None if window is None else _int(cfg, "sliding_window")
        if family == "gemma2":
            pattern = 2
        else:
            pattern = _int(cfg, "sliding_window_pattern", "_sliding_window_pattern", default=6)
        default = tuple("sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(n_layers))
    types = cfg.get("layer_types")
    if types is None:
        layer_types = default
    elif not isinstance(types, list) or len(types) != n_layers or not all(t in LAYER_TYPES for t in types):
        raise ConfigError(f"layer_types must list {n_layers} of {' / '.join(LAYER_TYPES)}, got {_show(types)}")
    else:
        layer_types = tuple(types)
    if window is None or "sliding_attention" not in layer_types:
        return None, ()
    return window, layer_types


def _translate_gpt_neox(cfg: Mapping[str, Any], max_layers: int | None = None) -> ModelConfig:
    d_model = _int(cfg, "hidden_size")
    n_heads = _int(cfg, "num_attention_heads")
    d_head = _whole(d_model, n_heads, "hidden_size", "num_attention_heads")
    bias = _bool(cfg, "attention_bias", default=True)
    vocab = _int(cfg, "vocab_size")
    max_positions = _int(cfg, "max_position_embeddings", default=2048)
    rope = _rope(cfg, d_head, max_positions, default_partial=0.25)
    return ModelConfig(
        architecture="gpt_neox",
        n_layers=_layer_count(cfg, "num_hidden_layers", max_layers=max_layers),
        d_model=d_model,
        n_heads=n_heads,
        n_kv_heads=n_heads,
        d_head=d_head,
        d_mlp=_int(cfg, "intermediate_size", default=4 * d_model),
        vocab_size=vocab,
        n_ctx=_rope_context(rope, max_positions),
        norm="layernorm",
        norm_eps=_float(cfg, "layer_norm_eps", default=1e-5),
        positional="rotary",
        rope=rope,
        act_fn=_str(cfg, "hidden_act", default="gelu"),
        parallel_attn_mlp=_bool(cfg, "use_parallel_residual", default=True),
        qkv_bias=bias,
        attn_out_bias=bias,
        mlp_bias=True,
        tie_word_embeddings=_bool(cfg, "tie_word_embeddings", default=False),
        dtype=_dtype(cfg),
        **_ids(cfg, vocab),
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
_QK_NORM_NAMES = {"q_norm.w": "layers.{l}.self_attn.q_norm.weight", "k_norm.w": "layers.{l}.self_attn.k_norm.weight"}
_GEMMA2_NAMES = {
    **_LLAMA_NAMES,
    "ln1_post.w": "layers.{l}.post_attention_layernorm.weight",
    "ln2.w": "layers.{l}.pre_feedforward_layernorm.weight",
    "ln2_post.w": "layers.{l}.post_feedforward_layernorm.weight",
}
_OLMO2_NAMES = {
    **{k: v for k, v in _LLAMA_NAMES.items() if k not in ("ln1.w", "ln2.w")},
    **_QK_NORM_NAMES,
    "ln1_post.w": "layers.{l}.post_attention_layernorm.weight",
    "ln2_post.w": "layers.{l}.post_feedforward_layernorm.weight",
}
_PHI3_NAMES = {
    "embed": "embed_tokens.weight",
    "ln1.w": "layers.{l}.input_layernorm.weight",
    "ln2.w": "layers.{l}.post_attention_layernorm.weight",
    "qkv.w": "layers.{l}.self_attn.qkv_proj.weight",
    "o.w": "layers.{l}.self_attn.o_proj.weight",
    "gate_up.w": "layers.{l}.mlp.gate_up_proj.weight",
    "out.w": "layers.{l}.mlp.down_proj.weight",
    "ln_final.w": "norm.weight",
}
_LLAMA_IGNORE = (r"(^|\.)rotary_emb\.inv_freq$",)

_GEMMA = dict(gemma=True, norm_style="gemma", default_positions=8192, default_tie=True, act_keys=("hidden_activation",),
              default_act="gelu_pytorch_tanh")


def _llama_arch(model_type: str, switches: _Switches | None = None, names: Mapping[str, str] = _LLAMA_NAMES, **kw: Any) -> Architecture:
    return Architecture(
        model_type=model_type,
        translate=_translate_llama_like(model_type, switches),
        prefixes=("model.", ""),
        embed_name="embed_tokens.weight",
        names=names,
        lm_head="lm_head.weight",
        ignore=_LLAMA_IGNORE,
        **kw,
    )


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
        qkv="conv1d",
        conv1d=True,
    ),
    "llama": _llama_arch("llama", _Switches(mlp_bias_key=True)),
    "mistral": _llama_arch("mistral", _Switches(sliding="all")),
    "qwen2": _llama_arch("qwen2", _Switches(qkv_bias=True)),
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
        qkv="neox",
    ),
    "gemma": _llama_arch("gemma", _Switches(**{**_GEMMA, "act_keys": ("hidden_act",)})),
    "gemma2": _llama_arch(
        "gemma2",
        _Switches(**_GEMMA, post_norms=True, sliding="types", softcaps="both", query_pre_attn_scalar=True),
        _GEMMA2_NAMES,
    ),
    "gemma3_text": _llama_arch(
        "gemma3_text",
        _Switches(**{**_GEMMA, "default_positions": 131_072}, post_norms=True, qk_norm="head", sliding="types", softcaps="final",
                  query_pre_attn_scalar=True, local_rope=True),
        {**_GEMMA2_NAMES, **_QK_NORM_NAMES},
    ),
    "qwen3": _llama_arch("qwen3", _Switches(qk_norm="head", sliding="types", default_positions=32768), {**_LLAMA_NAMES, **_QK_NORM_NAMES}),
    "phi3": _llama_arch(
        "phi3",
        _Switches(qkv_bias=False, sliding="all", default_eps=1e-5, default_positions=4096, scalings=("default", "longrope"),
                  rope_aliases={"su": "longrope", "yarn": "longrope"}),
        _PHI3_NAMES,
        qkv="fused",
    ),
    "olmo2": _llama_arch(
        "olmo2",
        _Switches(norm_style="olmo", pre_norms=False, post_norms=True, qk_norm="all", default_eps=1e-5),
        _OLMO2_NAMES,
    ),
}


_FIRST_FAMILIES = ("gpt2", "gpt_neox", "llama", "mistral", "qwen2")


def supported() -> str:
    """The supported model types: the first five families, then the newer ones (each group sorted)."""
    newer = sorted(set(ARCHITECTURES) - set(_FIRST_FAMILIES))
    return ", ".join([*_FIRST_FAMILIES, *newer])


def get_architecture(model_type: object, where: str = "config.json") -> Architecture:
    if not isinstance(model_type, str) or not model_type:
        raise ConfigError(f"{where}: no model_type (supported: {supported()})")
    arch = ARCHITECTURES.get(model_type)
    if arch is None:
        raise ConfigError(f"{where}: unsupported model_type {_show(model_type)} (supported: {supported()})")
    return arch


def translate_config(
    hf_config: Mapping[str, Any], where: str = "config.json", *, max_layers: int | None = None
) -> tuple[Architecture, ModelConfig]:
    """The family and ModelConfig of a config.json document. `max_layers`: the layers the
    checkpoint holds tensors for (a config asking for more is refused before any per-layer work)."""
    arch = get_architecture(hf_config.get("model_type"), where)
    try:
        config = arch.translate(hf_config, max_layers)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from e
    return arch, config


def detect_prefix(arch: Architecture, tensor_names: set[str]) -> str:
    for prefix in arch.prefixes:
        if prefix + arch.embed_name in tensor_names:
            return prefix
    return arch.prefixes[0]


def layers_present(arch: Architecture, tensor_names: set[str]) -> int:
    """How many distinct layer indices the checkpoint holds tensors for (bounded by the headers)."""
    template = arch.names["o.w"]
    head = template.split("{l}", 1)[0]
    pattern = re.compile("^(?:" + "|".join(re.escape(p) for p in arch.prefixes) + ")" + re.escape(head) + r"([0-9]{1,9})\.")
    return len({m.group(1) for n in tensor_names if (m := pattern.match(n))})


def weight_plan(arch: Architecture, config: ModelConfig, tensor_names: set[str]) -> tuple[dict[str, Source], set[str]]:
    """Map every canonical parameter to its checkpoint source.

    Returns the plan and the set of checkpoint tensors that are allowed but unused.
    """
    p = detect_prefix(arch, tensor_names)
    d, h, kv, dh, m, V = config.d_model, config.n_heads, config.n_kv_heads, config.d_head, config.d_mlp, config.vocab_size
    names = arch.names
    plan: dict[str, Source] = {}

    def lin(out_dim: int, in_dim: int) -> tuple[int, int]:
        return (in_dim, out_dim) if arch.conv1d else (out_dim, in_dim)

    def w(role: str, l: int | None, shape: tuple[int, ...], transform: str = "", rows: tuple[int, int] | None = None) -> Source:
        return Source((p + names[role].format(l=l),), (shape,), transform, rows)

    tf = "t" if arch.conv1d else ""
    plan["embed.W_E"] = w("embed", None, (V, d))
    if config.positional == "learned":
        plan["pos_embed.W_pos"] = w("pos_embed", None, (config.n_ctx, d))
    qkv_rows = (h + 2 * kv) * dh
    layernorm_bias = config.norm == "layernorm" and config.norm_bias
    for l in range(config.n_layers):
        b = f"blocks.{l}."
        norms = []
        if config.pre_norms:
            norms += ["ln1", "ln2"] if m else ["ln1"]
        if config.post_norms:
            norms += ["ln1_post", "ln2_post"] if m else ["ln1_post"]
        for ln in norms:
            plan[b + ln + ".w"] = w(ln + ".w", l, (d,))
            if layernorm_bias:
                plan[b + ln + ".b"] = w(ln + ".b", l, (d,))
        if arch.qkv == "separate":
            for r, rows in (("q", h * dh), ("k", kv * dh), ("v", kv * dh)):
                plan[b + f"attn.W_{r}"] = w(f"{r}.w", l, (rows, d))
                if config.qkv_bias:
                    plan[b + f"attn.b_{r}"] = w(f"{r}.b", l, (rows,))
        else:
            plan[b + "attn.W_qkv"] = w("qkv.w", l, lin(qkv_rows, d), tf)
            if config.qkv_bias:
                plan[b + "attn.b_qkv"] = w("qkv.b", l, (qkv_rows,))
        if config.qk_norm:
            per_head = config.qk_norm == "head"
            plan[b + "attn.q_norm.w"] = w("q_norm.w", l, (dh if per_head else h * dh,))
            plan[b + "attn.k_norm.w"] = w("k_norm.w", l, (dh if per_head else kv * dh,))
        plan[b + "attn.W_O"] = w("o.w", l, lin(d, h * dh), tf)
        if config.attn_out_bias:
            plan[b + "attn.b_O"] = w("o.b", l, (d,))
        if m:
            if "gate_up.w" in names:  # Phi-3: one [gate; up] matrix
                plan[b + "mlp.W_gate"] = w("gate_up.w", l, (2 * m, d), "rows", (0, m))
                plan[b + "mlp.W_in"] = w("gate_up.w", l, (2 * m, d), "rows", (m, 2 * m))
            else:
                plan[b + "mlp.W_in"] = w("in.w", l, lin(m, d), tf)
                if config.gated_mlp:
                    plan[b + "mlp.W_gate"] = w("gate.w", l, lin(m, d), tf)
            plan[b + "mlp.W_out"] = w("out.w", l, lin(d, m), tf)
            if config.mlp_bias:
                plan[b + "mlp.b_in"] = w("in.b", l, (m,))
                plan[b + "mlp.b_out"] = w("out.b", l, (d,))
                if config.gated_mlp:
                    plan[b + "mlp.b_gate"] = w("gate.b", l, (m,))
    plan["ln_final.w"] = w("ln_final.w", None, (d,))
    if layernorm_bias:
        plan["ln_final.b"] = w("ln_final.b", None, (d,))

    ignored = {n for n in tensor_names if any(re.search(rx, n) for rx in arch.ignore)}
    if config.tie_word_embeddings:
        if arch.lm_head in tensor_names:
            ignored.add(arch.lm_head)  # some savers write the tied copy; HF ignores it too
    else:
        plan["unembed.W_U"] = Source((arch.lm_head,), ((V, d),))
    return plan, ignored
