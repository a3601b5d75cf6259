"""ModelConfig: the one frozen description of a model that every module is handed.

Architectures differ only by how their HuggingFace config.json translates into this
(see architectures.py) and by a weight-name map.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from tui_interp.errors import ConfigError

Norm = Literal["layernorm", "rmsnorm"]
Positional = Literal["learned", "rotary"]

ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "relu", "silu", "quick_gelu")


@dataclass(frozen=True)
class RopeConfig:
    """Rotary embedding parameters: theta, the rotated fraction of each head, and scaling."""

    theta: float = 10000.0
    rotary_dim: int = 0  # number of dims of each head that are rotated (even, <= d_head)
    scaling: str = "default"  # default | linear | llama3
    factor: float = 1.0
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_position_embeddings: int = 8192


@dataclass(frozen=True)
class ModelConfig:
    architecture: str  # HF model_type: gpt2, llama, mistral, qwen2, gpt_neox, ...
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
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        def need(cond: bool, what: str) -> None:
            if not cond:
                raise ConfigError(f"invalid {self.architecture} config: {what}")

        for name in ("n_layers", "d_model", "n_heads", "n_kv_heads", "d_head", "vocab_size", "n_ctx"):
            value = getattr(self, name)
            need(isinstance(value, int) and not isinstance(value, bool) and value > 0, f"{name} must be a positive integer, got {value!r}")
        need(isinstance(self.d_mlp, int) and self.d_mlp >= 0, f"d_mlp must be a non-negative integer, got {self.d_mlp!r}")
        need(self.n_heads % self.n_kv_heads == 0, f"n_heads ({self.n_heads}) must be a multiple of n_kv_heads ({self.n_kv_heads})")
        need(self.norm in ("layernorm", "rmsnorm"), f"unknown norm {self.norm!r}")
        need(self.positional in ("learned", "rotary"), f"unknown positional embedding {self.positional!r}")
        need(self.act_fn in ACTIVATIONS, f"unsupported activation {self.act_fn!r} (supported: {', '.join(ACTIVATIONS)})")
        need(self.norm_eps > 0, f"norm epsilon must be positive, got {self.norm_eps!r}")
        if self.positional == "rotary":
            if self.rope is None:
                raise ConfigError(f"invalid {self.architecture} config: rotary positions need rope parameters")
            need(0 < self.rope.rotary_dim <= self.d_head and self.rope.rotary_dim % 2 == 0,
                 f"rotary dim {self.rope.rotary_dim} must be even and in 1..d_head ({self.d_head})")
            need(self.rope.theta > 0, f"rope theta must be positive, got {self.rope.theta!r}")

    @property
    def n_params(self) -> int:
        """Parameters of the model this config describes (tied embeddings counted once)."""
        d, m = self.d_model, self.d_mlp
        norm = d * (2 if self.norm == "layernorm" and self.norm_bias else 1)
        qkv = d * self.d_head * (self.n_heads + 2 * self.n_kv_heads)
        if self.qkv_bias:
            qkv += self.d_head * (self.n_heads + 2 * self.n_kv_heads)
        out = self.n_heads * self.d_head * d + (d if self.attn_out_bias else 0)
        mlp = (3 if self.gated_mlp else 2) * d * m
        if self.mlp_bias:
            mlp += (2 * m if self.gated_mlp else m) + d
        block = 2 * norm + qkv + out + mlp
        embed = self.vocab_size * d * (1 if self.tie_word_embeddings else 2)
        pos = self.n_ctx * d if self.positional == "learned" else 0
        return self.n_layers * block + embed + pos + norm

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)
