"""ModelConfig: the one frozen description of a model that every module is handed.

Architectures differ only by how their HuggingFace config.json translates into this
(see architectures.py) and by a weight-name map. Every field has the value that leaves the
original GPT-2 / Llama computation unchanged as its default, so a family switches on only
what it needs (Gemma's (1 + w) norms, post-norms, q/k norms, soft-capping, ...).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from tui_interp.errors import ConfigError

Norm = Literal["layernorm", "rmsnorm"]
Positional = Literal["learned", "rotary"]

ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "relu", "silu", "quick_gelu")
ROPE_SCALINGS = ("default", "linear", "llama3", "yarn", "dynamic", "longrope")
# How an RMSNorm applies its weight (HuggingFace differs by family, and it matters in half precision):
#   llama: w * normalized.to(dtype)         gemma: (normalized * (1 + w)).to(dtype), in float32
#   olmo:  (w * normalized).to(dtype), in float32
NORM_STYLES = ("llama", "gemma", "olmo")
QK_NORMS = ("", "head", "all")  # none; over each head's d_head (Qwen3, Gemma 3); over all heads at once (OLMo 2)
LAYER_TYPES = ("full_attention", "sliding_attention")


@dataclass(frozen=True)
class RopeConfig:
    """Rotary embedding parameters: theta, the rotated fraction of each head, and scaling.

    Fields a scaling does not use stay at their defaults, so two configs that compute the same
    frequencies compare equal.
    """

    theta: float = 10000.0
    rotary_dim: int = 0  # number of dims of each head that are rotated (even, <= d_head)
    scaling: str = "default"  # one of ROPE_SCALINGS
    factor: float = 1.0
    low_freq_factor: float = 1.0  # llama3
    high_freq_factor: float = 4.0  # llama3
    original_max_position_embeddings: int = 8192  # llama3, yarn, longrope; dynamic: the trained length
    attention_factor: float = 1.0  # yarn, longrope: scales cos and sin (already resolved from factor/mscale)
    beta_fast: float = 32.0  # yarn
    beta_slow: float = 1.0  # yarn
    truncate: bool = True  # yarn
    short_factor: tuple[float, ...] = ()  # longrope, rotary_dim / 2 each
    long_factor: tuple[float, ...] = ()


@dataclass(frozen=True)
class ModelConfig:
    architecture: str  # HF model_type: gpt2, llama, mistral, qwen2, gpt_neox, gemma, ...
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    d_head: int
    d_mlp: int
    vocab_size: int
    n_ctx: int
    norm: Norm = "layernorm"
    norm_eps: float = 1e-5
    positional: Positional = "learned"
    rope: RopeConfig | None = None
    act_fn: str = "gelu_new"
    gated_mlp: bool = False
    parallel_attn_mlp: bool = False
    qkv_bias: bool = False
    attn_out_bias: bool = False
    mlp_bias: bool = False
    norm_bias: bool = True  # LayerNorm has a bias; RMSNorm never does
    tie_word_embeddings: bool = False
    sliding_window: int | None = None
    dtype: str = "float32"  # the checkpoint's declared dtype
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    # ---- switches of the newer families (defaults: off)
    norm_style: str = "llama"  # RMSNorm only: see NORM_STYLES
    pre_norms: bool = True  # ln1 before attention and ln2 before the MLP (OLMo 2 has none)
    post_norms: bool = False  # ln1_post / ln2_post on the attention and MLP outputs (Gemma 2/3, OLMo 2)
    qk_norm: str = ""  # see QK_NORMS
    embed_scale: bool = False  # multiply the embedding by sqrt(d_model), in the model's dtype (Gemma)
    attn_scale: float | None = None  # multiplier of q.k; None: 1/sqrt(d_head)
    attn_softcap: float | None = None  # scores -> cap * tanh(scores / cap) before the mask (Gemma 2)
    final_softcap: float | None = None  # the same on the logits (Gemma 2/3)
    layer_types: tuple[str, ...] = ()  # per layer "full_attention" | "sliding_attention"; () = every layer
    rope_local: RopeConfig | None = None  # rotary parameters of sliding-window layers, when they differ (Gemma 3)
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        def need(cond: bool, what: str) -> None:
            if not cond:
                raise ConfigError(f"invalid {self.architecture} config: {what}")

        for name in ("n_layers", "d_model", "n_heads", "n_kv_heads", "d_head", "vocab_size", "n_ctx"):
            value = getattr(self, name)
            need(_is_int(value) and value > 0, f"{name} must be a positive integer, got {value!r}")
        need(_is_int(self.d_mlp) and self.d_mlp >= 0, f"d_mlp must be a non-negative integer, got {self.d_mlp!r}")
        need(self.n_heads % self.n_kv_heads == 0, f"n_heads ({self.n_heads}) must be a multiple of n_kv_heads ({self.n_kv_heads})")
        need(self.norm in ("layernorm", "rmsnorm"), f"unknown norm {self.norm!r}")
        need(self.positional in ("learned", "rotary"), f"unknown positional embedding {self.positional!r}")
        need(self.act_fn in ACTIVATIONS, f"unsupported activation {self.act_fn!r} (supported: {', '.join(ACTIVATIONS)})")
        need(_positive(self.norm_eps), f"norm epsilon must be a positive finite number, got {self.norm_eps!r}")
        need(self.norm_style in NORM_STYLES, f"unknown norm style {self.norm_style!r}")
        need(self.qk_norm in QK_NORMS, f"unknown q/k norm {self.qk_norm!r}")
        need(self.pre_norms or self.post_norms, "a model needs norms before or after its sublayers")
        need(self.sliding_window is None or (_is_int(self.sliding_window) and self.sliding_window > 0),
             f"sliding window must be a positive integer, got {self.sliding_window!r}")
        for name in ("attn_scale", "attn_softcap", "final_softcap"):
            value = getattr(self, name)
            need(value is None or _positive(value), f"{name} must be a positive finite number, got {value!r}")
        need(all(t in LAYER_TYPES for t in self.layer_types), f"layer types must be {' or '.join(LAYER_TYPES)}")
        need(not self.layer_types or len(self.layer_types) == self.n_layers,
             f"{len(self.layer_types)} layer types for {self.n_layers} layers")
        if self.positional == "rotary":
            if self.rope is None:
                raise ConfigError(f"invalid {self.architecture} config: rotary positions need rope parameters")
            for rope in (self.rope, self.rope_local):
                if rope is not None:
                    _check_rope(rope, self.d_head, need)

    def is_sliding(self, layer: int) -> bool:
        """Whether `layer` attends through the sliding window (every layer when no layer types are given)."""
        if self.sliding_window is None:
            return False
        return not self.layer_types or self.layer_types[layer] == "sliding_attention"

    def rope_of(self, layer: int) -> RopeConfig | None:
        """The rotary parameters layer `layer` uses."""
        if self.rope_local is not None and self.is_sliding(layer):
            return self.rope_local
        return self.rope

    @property
    def n_params(self) -> int:
        """Parameters of the model this config describes (tied embeddings counted once)."""
        d, m = self.d_model, self.d_mlp
        norm = d * (2 if self.norm == "layernorm" and self.norm_bias else 1)
        qkv = d * self.d_head * (self.n_heads + 2 * self.n_kv_heads)
        if self.qkv_bias:
            qkv += self.d_head * (self.n_heads + 2 * self.n_kv_heads)
        if self.qk_norm == "head":
            qkv += 2 * self.d_head
        elif self.qk_norm == "all":
            qkv += self.d_head * (self.n_heads + self.n_kv_heads)
        out = self.n_heads * self.d_head * d + (d if self.attn_out_bias else 0)
        mlp = (3 if self.gated_mlp else 2) * d * m
        if self.mlp_bias:
            mlp += (2 * m if self.gated_mlp else m) + d
        sublayers = 2 if m else 1
        norms = norm * sublayers * (int(self.pre_norms) + int(self.post_norms))
        block = norms + qkv + out + mlp
        embed = self.vocab_size * d * (1 if self.tie_word_embeddings else 2)
        pos = self.n_ctx * d if self.positional == "learned" else 0
        return self.n_layers * block + embed + pos + norm

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _positive(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def _check_rope(rope: RopeConfig, d_head: int, need: Any) -> None:
    need(_is_int(rope.rotary_dim) and 0 < rope.rotary_dim <= d_head and rope.rotary_dim % 2 == 0,
         f"rotary dim {rope.rotary_dim} must be even and in 1..d_head ({d_head})")
    need(_positive(rope.theta), f"rope theta must be a positive finite number, got {rope.theta!r}")
    need(rope.scaling in ROPE_SCALINGS, f"rope scaling {rope.scaling!r} is not supported (supported: {', '.join(ROPE_SCALINGS)})")
    need(_positive(rope.factor), f"rope factor must be a positive finite number, got {rope.factor!r}")
    need(_positive(rope.attention_factor), f"rope attention factor must be a positive finite number, got {rope.attention_factor!r}")
    need(_is_int(rope.original_max_position_embeddings) and rope.original_max_position_embeddings > 0,
         f"original_max_position_embeddings must be a positive integer, got {rope.original_max_position_embeddings!r}")
    if rope.scaling == "llama3":
        need(_positive(rope.low_freq_factor) and _positive(rope.high_freq_factor) and rope.high_freq_factor > rope.low_freq_factor,
             f"llama3 rope needs 0 < low_freq_factor < high_freq_factor, got {rope.low_freq_factor!r} and {rope.high_freq_factor!r}")
    if rope.scaling == "yarn":
        need(_positive(rope.beta_fast) and _positive(rope.beta_slow), "yarn rope needs positive beta_fast and beta_slow")
    if rope.scaling == "dynamic":
        need(rope.rotary_dim > 2, "dynamic rope needs a rotary dim above 2")
    if rope.scaling == "longrope":
        half = rope.rotary_dim // 2
        for name in ("short_factor", "long_factor"):
            values = getattr(rope, name)
            need(len(values) == half and all(_positive(v) for v in values),
                 f"longrope {name} must be {half} positive numbers (rotary dim / 2), got {len(values)}")
