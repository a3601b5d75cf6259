"""The one decoder-only transformer: every supported architecture is this module plus a config.

Hook points (identity modules) sit at every activation, named as in TransformerLens
(`blocks.3.attn.hook_pattern`, ...). A hook is `fn(x, *, hook) -> Tensor | None`; returning a
tensor replaces the activation. Temporary hooks go through `Transformer.hooks(...)`, which
removes them even on error. Parameters are kept in nn.Linear layout [out, in], as views of the
checkpoint where it stores them otherwise (GPT-2's Conv1D [in, out] is a transposed view), so
loading copies nothing: q, k and v are one fused matrix where the checkpoint fuses them and
three where it does not (see `Attention`).

A forward pass can continue from a `KVCache` (keys and values of the positions already run):
`model(new_tokens, cache=cache)` runs only the new positions, and every hook fires on them
([batch, new, ...]; attention scores and patterns are [batch, head, new, all keys]).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from tui_interp.components import Step
from tui_interp.errors import HookError, InputError
from tui_interp.model.config import ModelConfig, RopeConfig

HookFn = Callable[..., "torch.Tensor | None"]


class HookPoint(nn.Module):
    """Identity at an activation site. Calls its hook functions in order; any may replace x."""

    def __init__(self) -> None:
        super().__init__()
        self.name = ""
        self.fns: list[HookFn] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for fn in tuple(self.fns):
            out = fn(x, hook=self)
            if out is not None:
                if not isinstance(out, torch.Tensor) or out.shape != x.shape:
                    got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                    raise HookError(f"hook on {self.name} returned {got}, expected a tensor of shape {tuple(x.shape)}")
                x = out
        return x

    def extra_repr(self) -> str:
        return self.name


# ---------------------------------------------------------------------------------------------
# Building blocks


def activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "gelu":
        return F.gelu
    if name == "relu":
        return F.relu
    if name == "silu":
        return F.silu
    if name == "quick_gelu":
        return lambda x: x * torch.sigmoid(1.702 * x)
    raise ValueError(name)  # ModelConfig validated the name already


class Norm(nn.Module):
    """LayerNorm or RMSNorm over the last dimension, computed in float32 and cast back.

    RMSNorm applies its weight the way the family's HuggingFace code does (cfg.norm_style):
    Llama casts first and multiplies in the model's dtype, Gemma multiplies by (1 + w) and OLMo 2
    by w in float32. `w` is the checkpoint's tensor as stored; `weight` the effective multiplier.
    hook_normalized is the output (absent for the q/k norms, whose outputs are the attention's
    hook_q_normed / hook_k_normed).
    """

    def __init__(self, cfg: ModelConfig, dim: int | None = None, *, hooked: bool = True) -> None:
        super().__init__()
        dim = cfg.d_model if dim is None else dim
        self.kind = cfg.norm
        self.style = cfg.norm_style
        self.eps = cfg.norm_eps
        self.w = nn.Parameter(torch.ones(dim))
        self.b = nn.Parameter(torch.zeros(dim)) if cfg.norm == "layernorm" and cfg.norm_bias else None
        if hooked:
            self.hook_normalized = HookPoint()

    @property
    def weight(self) -> torch.Tensor:
        """The multiplier this norm applies, in float32: [dim]."""
        w = self.w.float()
        return w + 1.0 if self.kind == "rmsnorm" and self.style == "gemma" else w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x [..., dim]
        if x.device != self.w.device and not self.w.is_meta:  # a model spread over devices (ln_final after the last block)
            x = x.to(self.w.device)
        dtype = x.dtype
        if self.kind == "layernorm":
            b = self.b.float() if self.b is not None else None
            y = F.layer_norm(x.float(), (x.shape[-1],), self.w.float(), b, self.eps).to(dtype)
        else:
            x32 = x.float()
            x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
            if self.style == "llama":
                y = self.w * x32.to(dtype)
            elif self.style == "gemma":
                y = (x32 * (1.0 + self.w.float())).to(dtype)
            else:  # olmo
                y = (self.w.float() * x32).to(dtype)
        hook = getattr(self, "hook_normalized", None)
        return hook(y) if hook is not None else y

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """The per-position divisor this norm applies: [..., 1] (for direct logit attribution)."""
        x32 = x.float()
        if self.kind == "layernorm":
            x32 = x32 - x32.mean(-1, keepdim=True)
        return torch.sqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)


# ---------------------------------------------------------------------------------------------
# Rotary embeddings


def rope_frequencies(rope: RopeConfig, seq_len: int) -> tuple[torch.Tensor, float]:
    """Inverse frequencies [rotary_dim / 2] and the factor on cos/sin, as HuggingFace computes them
    (modeling_rope_utils.py) for a forward whose positions end at `seq_len` (dynamic and longrope
    depend on it; HF's dynamic rope also remembers the longest length seen, we do not)."""
    dim, base = rope.rotary_dim, rope.theta
    exponents = torch.arange(0, dim, 2, dtype=torch.int64).float() / dim
    if rope.scaling == "dynamic":
        trained = rope.original_max_position_embeddings
        seq = torch.maximum(torch.tensor(seq_len), torch.tensor(trained))
        base_t = base * ((rope.factor * seq / trained) - (rope.factor - 1)) ** (dim / (dim - 2))
        return 1.0 / (base_t ** exponents), 1.0
    if rope.scaling == "longrope":
        factors = rope.long_factor if seq_len > rope.original_max_position_embeddings else rope.short_factor
        return 1.0 / (torch.tensor(factors, dtype=torch.float32) * base**exponents), rope.attention_factor
    if rope.scaling == "yarn":
        return _yarn(rope), rope.attention_factor
    inv = 1.0 / (base**exponents)
    if rope.scaling == "linear":
        inv = inv / rope.factor
    elif rope.scaling == "llama3":
        old = rope.original_max_position_embeddings
        low_wavelen = old / rope.low_freq_factor
        high_wavelen = old / rope.high_freq_factor
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > low_wavelen, inv / rope.factor, inv)
        smooth = (old / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor)
        smoothed = (1 - smooth) * scaled / rope.factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        inv = torch.where(medium, smoothed, scaled)
    return inv, 1.0


def _yarn(rope: RopeConfig) -> torch.Tensor:
    dim, base, original = rope.rotary_dim, rope.theta, rope.original_max_position_embeddings

    def correction_dim(rotations: float) -> float:
        return (dim * math.log(original / (rotations * 2 * math.pi))) / (2 * math.log(base))

    low, high = correction_dim(rope.beta_fast), correction_dim(rope.beta_slow)
    if rope.truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001  # as transformers: prevent a division by zero
    pos_freqs = base ** (torch.arange(0, dim, 2).to(dtype=torch.float) / dim)
    extrapolation = 1.0 / pos_freqs
    interpolation = 1.0 / (rope.factor * pos_freqs)
    ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
    extrapolation_factor = 1 - ramp
    return interpolation * (1 - extrapolation_factor) + extrapolation * extrapolation_factor


def rope_inv_freq(cfg: ModelConfig) -> torch.Tensor:
    """Inverse frequencies of the model's (global) rotary embedding at its full context."""
    if cfg.rope is None:
        raise ValueError("model has no rotary embedding")
    return rope_frequencies(cfg.rope, cfg.n_ctx)[0]


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the first rotary_dim features of each head. x [batch, pos, head, d_head]."""
    rd = cos.shape[-1]
    c, s = cos[None, :, None, :].to(x.dtype), sin[None, :, None, :].to(x.dtype)
    if rd == x.shape[-1]:
        return x * c + _rotate_half(x) * s
    x_rot, x_pass = x[..., :rd], x[..., rd:]
    return torch.cat((x_rot * c + _rotate_half(x_rot) * s, x_pass), dim=-1)


# ---------------------------------------------------------------------------------------------
# Shared inputs of one forward pass, and the key/value cache


class KVCache:
    """Keys and values of the positions run so far, per layer: [batch, kv_heads, positions, d_head]
    (after q/k norms and rotary), in buffers of `capacity` positions that grow when needed."""

    def __init__(self, n_layers: int, capacity: int = 0) -> None:
        self.keys: list[torch.Tensor | None] = [None] * n_layers
        self.values: list[torch.Tensor | None] = [None] * n_layers
        self.length = 0  # positions every layer holds (advanced when a forward reaches the last layer)
        self.capacity = capacity

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the new positions' k, v [batch, kv_heads, new, d_head]; return all positions' keys and values."""
        start, end = self.length, self.length + k.shape[2]
        K, V = self.keys[layer], self.values[layer]
        if K is None or V is None or K.shape[2] < end or K.shape[0] != k.shape[0] or K.device != k.device or K.dtype != k.dtype:
            size = max(end, self.capacity)
            newK = k.new_empty(k.shape[0], k.shape[1], size, k.shape[3])
            newV = v.new_empty(v.shape[0], v.shape[1], size, v.shape[3])
            if K is not None and V is not None and start:
                newK[:, :, :start] = K[:, :, :start].to(k.device, k.dtype)
                newV[:, :, :start] = V[:, :, :start].to(v.device, v.dtype)
            K, V = newK, newV
            self.keys[layer], self.values[layer] = K, V
        K[:, :, start:end] = k
        V[:, :, start:end] = v
        return K[:, :, :end], V[:, :, :end]

    def prefix(self, length: int, batch: int, layers: Iterable[int] | None = None) -> KVCache:
        """A new cache holding the first `length` positions of this one, for `batch` runs that share them."""
        out = KVCache(len(self.keys), max(self.capacity, length))
        for l in range(len(self.keys)) if layers is None else layers:
            K, V = self.keys[l], self.values[l]
            if K is None or V is None:
                continue
            size = max(out.capacity, K.shape[2])
            out.keys[l] = K.new_empty(batch, K.shape[1], size, K.shape[3])
            out.values[l] = V.new_empty(batch, V.shape[1], size, V.shape[3])
            out.keys[l][:, :, :length] = K[:, :, :length]  # type: ignore[index]
            out.values[l][:, :, :length] = V[:, :, :length]  # type: ignore[index]
        out.length = length
        return out


@dataclass
class ForwardContext:
    """Inputs shared by every block of one forward pass, computed once (and once per device)."""

    positions: torch.Tensor  # [pos] absolute positions of the tokens being run
    cos: torch.Tensor | None  # [pos, rotary_dim], full-attention layers
    sin: torch.Tensor | None
    mask: torch.Tensor | None  # [pos, keys] bool, True = may attend; None = plain causal, no past
    eager: bool = False  # force the eager attention path in every layer
    past: int = 0  # positions already in the cache (keys = past + pos)
    cache: KVCache | None = None
    local_cos: torch.Tensor | None = None  # sliding-window layers, when their rotary parameters differ
    local_sin: torch.Tensor | None = None
    sliding_mask: torch.Tensor | None = None  # [pos, keys] for sliding-window layers; None: as `mask`
    _bias: dict[tuple[bool, torch.dtype], torch.Tensor] = field(default_factory=dict)
    _moved: dict[torch.device, ForwardContext] = field(default_factory=dict)

    def rotary(self, sliding: bool = False) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if sliding and self.local_cos is not None:
            return self.local_cos, self.local_sin
        return self.cos, self.sin

    def attn_mask(self, sliding: bool = False) -> torch.Tensor | None:
        """[query, key] bool (True = may attend), or None for plain causal attention without a past."""
        if sliding and self.sliding_mask is not None:
            return self.sliding_mask
        return self.mask

    def attn_bias(self, dtype: torch.dtype, sliding: bool = False) -> torch.Tensor:
        """Additive mask [query, key]: 0 where attention is allowed, -inf elsewhere (built once per dtype)."""
        key = (sliding, dtype)
        if key not in self._bias:
            allowed = self.attn_mask(sliding)
            if allowed is None:
                allowed = _causal(self.positions.shape[0], self.positions.device)
            bias = torch.zeros(allowed.shape, dtype=dtype, device=self.positions.device)
            self._bias[key] = bias.masked_fill_(~allowed, float("-inf"))
        return self._bias[key]

    def to(self, device: torch.device) -> ForwardContext:
        """This context with its tensors on `device` (for blocks placed on another device)."""
        if self.positions.device == device:
            return self
        if device not in self._moved:

            def mv(t: torch.Tensor | None) -> torch.Tensor | None:
                return None if t is None else t.to(device)

            self._moved[device] = ForwardContext(
                self.positions.to(device), mv(self.cos), mv(self.sin), mv(self.mask), self.eager, self.past, self.cache,
                mv(self.local_cos), mv(self.local_sin), mv(self.sliding_mask),
            )
        moved = self._moved[device]
        moved.eager = self.eager
        return moved


def _causal(pos: int, device: torch.device) -> torch.Tensor:
    return torch.ones(pos, pos, dtype=torch.bool, device=device).tril()


# ---------------------------------------------------------------------------------------------
# Attention, MLP, block


class Attention(nn.Module):
    """Multi-head (grouped-query) attention.

    `layout` is how q, k and v are stored, as the checkpoint stores them (so loading is a view):
      "fused"     W_qkv [(h + 2kv) * d_head, d_model], rows q then k then v (also what a model
                  built from a config has, e.g. a freshly trained one)
      "neox"      W_qkv with rows interleaved per head: [head, (q|k|v), d_head] (GPT-NeoX)
      "separate"  W_q [h * d_head, d_model], W_k, W_v [kv * d_head, d_model] (Llama and most others)
    `qkv_weights()` / `qkv_biases()` give q, k, v in one form whatever the layout.
    """

    def __init__(self, cfg: ModelConfig, layer: int = 0, layout: str = "fused") -> None:
        super().__init__()
        if layout not in ("fused", "neox", "separate"):
            raise ValueError(f"unknown attention layout {layout!r}")
        self.cfg = cfg
        self.layer = layer
        self.layout = layout
        h, kv, dh, d = cfg.n_heads, cfg.n_kv_heads, cfg.d_head, cfg.d_model
        if layout == "separate":
            self.W_q = nn.Parameter(torch.empty(h * dh, d))
            self.W_k = nn.Parameter(torch.empty(kv * dh, d))
            self.W_v = nn.Parameter(torch.empty(kv * dh, d))
            self.b_q = nn.Parameter(torch.zeros(h * dh)) if cfg.qkv_bias else None
            self.b_k = nn.Parameter(torch.zeros(kv * dh)) if cfg.qkv_bias else None
            self.b_v = nn.Parameter(torch.zeros(kv * dh)) if cfg.qkv_bias else None
        else:
            self.W_qkv = nn.Parameter(torch.empty((h + 2 * kv) * dh, d))
            self.b_qkv = nn.Parameter(torch.zeros((h + 2 * kv) * dh)) if cfg.qkv_bias else None
        self.W_O = nn.Parameter(torch.empty(d, h * dh))
        self.b_O = nn.Parameter(torch.zeros(d)) if cfg.attn_out_bias else None
        self.q_norm = self.k_norm = None
        if cfg.qk_norm:
            per_head = cfg.qk_norm == "head"
            self.q_norm = Norm(cfg, dh if per_head else h * dh, hooked=False)
            self.k_norm = Norm(cfg, dh if per_head else kv * dh, hooked=False)
        self.scale = cfg.attn_scale if cfg.attn_scale is not None else 1.0 / math.sqrt(dh)
        self.softcap = cfg.attn_softcap
        self.sliding = cfg.is_sliding(layer)
        self.hook_q, self.hook_k, self.hook_v = HookPoint(), HookPoint(), HookPoint()  # [batch, pos, head, d_head]
        if cfg.qk_norm:
            self.hook_q_normed, self.hook_k_normed = HookPoint(), HookPoint()  # after the q/k norms, before rotary
        self.hook_rot_q, self.hook_rot_k = HookPoint(), HookPoint()  # after rotary (rotary models only)
        self.hook_attn_scores = HookPoint()  # [batch, head, query, key], masked with -inf
        self.hook_pattern = HookPoint()  # [batch, head, query, key]
        self.hook_z = HookPoint()  # [batch, pos, head, d_head]

    # ---- q, k, v in one form, whatever the storage

    def qkv_weights(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """W_q [h * d_head, d_model], W_k and W_v [kv * d_head, d_model] (views where the layout allows)."""
        cfg = self.cfg
        h, kv, dh = cfg.n_heads, cfg.n_kv_heads, cfg.d_head
        if self.layout == "separate":
            return self.W_q, self.W_k, self.W_v
        if self.layout == "fused":
            q, k, v = self.W_qkv.split((h * dh, kv * dh, kv * dh), dim=0)
            return q, k, v
        w = self.W_qkv.view(h, 3, dh, -1)
        q, k, v = (w[:, i].reshape(h * dh, -1) for i in range(3))
        return q, k, v

    def qkv_biases(self) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        cfg = self.cfg
        h, kv, dh = cfg.n_heads, cfg.n_kv_heads, cfg.d_head
        if self.layout == "separate":
            return self.b_q, self.b_k, self.b_v
        if self.b_qkv is None:
            return None, None, None
        if self.layout == "fused":
            q, k, v = self.b_qkv.split((h * dh, kv * dh, kv * dh))
            return q, k, v
        b = self.b_qkv.view(h, 3, dh)
        q, k, v = (b[:, i].reshape(h * dh) for i in range(3))
        return q, k, v

    def _project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        batch, pos, _ = x.shape
        h, kv, dh = cfg.n_heads, cfg.n_kv_heads, cfg.d_head
        if self.layout == "separate":
            q = F.linear(x, self.W_q, self.b_q)
            k = F.linear(x, self.W_k, self.b_k)
            v = F.linear(x, self.W_v, self.b_v)
        else:
            qkv = F.linear(x, self.W_qkv, self.b_qkv)  # [batch, pos, (h + 2kv) * d_head]
            if self.layout == "neox":
                per_head = qkv.view(batch, pos, h, 3, dh)
                return per_head[..., 0, :], per_head[..., 1, :], per_head[..., 2, :]
            q, k, v = qkv.split((h * dh, kv * dh, kv * dh), dim=-1)
        if self.q_norm is not None and self.k_norm is not None and self.cfg.qk_norm == "all":
            return q, k, v  # OLMo 2 normalises all heads at once: reshaped after the norm
        return q.view(batch, pos, h, dh), k.view(batch, pos, kv, dh), v.view(batch, pos, kv, dh)

    def forward(self, x: torch.Tensor, ctx: ForwardContext, *, last_only: bool = False) -> torch.Tensor:
        """x [batch, pos, d_model] -> [batch, pos, d_model]; with last_only, the output of the last
        position only ([batch, 1, d_model]): every position's keys and values, one query."""
        cfg = self.cfg
        batch, pos, _ = x.shape  # x [batch, pos, d_model]
        h, kv, dh = cfg.n_heads, cfg.n_kv_heads, cfg.d_head
        q, k, v = self._project(x)
        if self.q_norm is not None and self.k_norm is not None:
            if cfg.qk_norm == "all":
                q = self.hook_q(q.view(batch, pos, h, dh))
                k = self.hook_k(k.view(batch, pos, kv, dh))
                v = self.hook_v(v.view(batch, pos, kv, dh))
                q = self.q_norm(q.reshape(batch, pos, h * dh)).view(batch, pos, h, dh)
                k = self.k_norm(k.reshape(batch, pos, kv * dh)).view(batch, pos, kv, dh)
            else:
                q, k, v = self.hook_q(q), self.hook_k(k), self.hook_v(v)
                q, k = self.q_norm(q), self.k_norm(k)
            q, k = self.hook_q_normed(q), self.hook_k_normed(k)
        else:
            q, k, v = self.hook_q(q), self.hook_k(k), self.hook_v(v)
        cos, sin = ctx.rotary(self.sliding)
        if cos is not None and sin is not None:
            q = self.hook_rot_q(apply_rope(q, cos, sin))
            k = self.hook_rot_k(apply_rope(k, cos, sin))
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [batch, head, pos, d_head]
        rows = slice(None)
        if last_only and pos > 1:
            q, rows, pos = q[:, :, -1:], slice(-1, None), 1
        if ctx.cache is not None:
            k, v = ctx.cache.update(self.layer, k, v)  # [batch, kv, past + pos, d_head]
        if kv != h:
            k = k.repeat_interleave(h // kv, dim=1)
            v = v.repeat_interleave(h // kv, dim=1)
        keys = k.shape[2]
        if ctx.eager or self.softcap is not None or self.hook_attn_scores.fns or self.hook_pattern.fns:
            bias = ctx.attn_bias(q.dtype, self.sliding)[rows]  # [query, key]: 0 where attention is allowed, -inf elsewhere
            if self.softcap is not None:  # Gemma 2: cap before the mask
                scores = torch.matmul(q, k.transpose(2, 3)) * self.scale
                scores = torch.tanh(scores / self.softcap) * self.softcap + bias
            else:  # one kernel: bias + scale * q @ k^T
                scores = torch.baddbmm(
                    bias.expand(batch * h, pos, keys), q.reshape(batch * h, pos, dh), k.reshape(batch * h, keys, dh).transpose(1, 2),
                    alpha=self.scale,
                ).view(batch, h, pos, keys)  # [batch, head, query, key]
            scores = self.hook_attn_scores(scores)
            pattern = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
            pattern = self.hook_pattern(pattern)
            z = torch.matmul(pattern, v)  # [batch, head, pos, d_head]
        else:
            mask = ctx.attn_mask(self.sliding)
            if mask is not None:
                z = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[rows], scale=self.scale)
            elif rows.start is None:
                z = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
            else:  # the last query of a causal pass sees every key
                z = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        z = self.hook_z(z.transpose(1, 2))  # [batch, pos, head, d_head]
        return F.linear(z.reshape(batch, pos, h * dh), self.W_O, self.b_O)  # [batch, pos, d_model]


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d, m = cfg.d_model, cfg.d_mlp
        self.gated = cfg.gated_mlp
        self.W_in = nn.Parameter(torch.empty(m, d))
        self.b_in = nn.Parameter(torch.zeros(m)) if cfg.mlp_bias else None
        self.W_gate = nn.Parameter(torch.empty(m, d)) if cfg.gated_mlp else None
        self.b_gate = nn.Parameter(torch.zeros(m)) if cfg.gated_mlp and cfg.mlp_bias else None
        self.W_out = nn.Parameter(torch.empty(d, m))
        self.b_out = nn.Parameter(torch.zeros(d)) if cfg.mlp_bias else None
        self.act = activation(cfg.act_fn)
        self.hook_pre = HookPoint()  # [batch, pos, d_mlp]; the gate pre-activation for gated MLPs
        self.hook_pre_linear = HookPoint()  # gated MLPs: the up projection
        self.hook_post = HookPoint()  # [batch, pos, d_mlp]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.W_gate is not None:
            pre = self.hook_pre(F.linear(x, self.W_gate, self.b_gate))
            lin = self.hook_pre_linear(F.linear(x, self.W_in, self.b_in))
            post = self.hook_post(self.act(pre) * lin)
        else:
            pre = self.hook_pre(F.linear(x, self.W_in, self.b_in))
            post = self.hook_post(self.act(pre))
        return F.linear(post, self.W_out, self.b_out)  # [batch, pos, d_model]


class Block(nn.Module):
    """One layer. `attn_half` and `mlp_half` are the two steps of the stepper.

    Norms: ln1 / ln2 before attention and MLP (absent in OLMo 2), ln1_post / ln2_post on their
    outputs (Gemma 2/3, OLMo 2), so hook_attn_out and hook_mlp_out are always what is added to
    the residual stream, as in TransformerLens. `device`: where this block's weights live when
    the model is spread over several devices (inputs are moved there); None otherwise.
    """

    def __init__(self, cfg: ModelConfig, layer: int = 0, qkv_layout: str = "fused") -> None:
        super().__init__()
        self.parallel = cfg.parallel_attn_mlp
        self.has_mlp = cfg.d_mlp > 0
        self.device: torch.device | None = None
        self.hook_resid_pre = HookPoint()
        self.ln1 = Norm(cfg) if cfg.pre_norms else None
        self.attn = Attention(cfg, layer, qkv_layout)
        self.ln1_post = Norm(cfg) if cfg.post_norms else None
        self.hook_attn_out = HookPoint()
        self.hook_resid_mid = HookPoint()
        self.ln2 = Norm(cfg) if self.has_mlp and cfg.pre_norms else None
        self.mlp = MLP(cfg) if self.has_mlp else None
        self.ln2_post = Norm(cfg) if self.has_mlp and cfg.post_norms else None
        self.hook_mlp_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def _here(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.device is None or x.device == self.device else x.to(self.device)

    def attn_half(self, resid_pre: torch.Tensor, ctx: ForwardContext, *, last_only: bool = False) -> torch.Tensor:
        """resid_pre [batch, pos, d_model] -> resid_mid (resid_pre + attention output); with
        last_only, of the last position only (the others still give their keys and values)."""
        if self.device is not None:
            resid_pre, ctx = self._here(resid_pre), ctx.to(self.device)
        resid_pre = self.hook_resid_pre(resid_pre)
        x = self.ln1(resid_pre) if self.ln1 is not None else resid_pre
        out = self.attn(x, ctx, last_only=last_only)
        if self.ln1_post is not None:
            out = self.ln1_post(out)
        attn_out = self.hook_attn_out(out)
        return self.hook_resid_mid((resid_pre[:, -1:] if last_only else resid_pre) + attn_out)

    def mlp_half(self, resid_mid: torch.Tensor, resid_pre: torch.Tensor) -> torch.Tensor:
        """resid_mid -> resid_post. Parallel blocks (GPT-NeoX) feed the MLP from resid_pre."""
        resid_mid = self._here(resid_mid)
        if self.mlp is None:
            return self.hook_resid_post(resid_mid)
        mlp_in = self._here(resid_pre) if self.parallel else resid_mid
        x = self.ln2(mlp_in) if self.ln2 is not None else mlp_in
        out = self.mlp(x)
        if self.ln2_post is not None:
            out = self.ln2_post(out)
        mlp_out = self.hook_mlp_out(out)
        return self.hook_resid_post(resid_mid + mlp_out)

    def forward(self, resid_pre: torch.Tensor, ctx: ForwardContext, *, last_only: bool = False) -> torch.Tensor:
        if last_only:
            return self.mlp_half(self.attn_half(resid_pre, ctx, last_only=True), resid_pre[:, -1:])
        return self.mlp_half(self.attn_half(resid_pre, ctx), resid_pre)


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig, *, qkv_layout: str = "fused") -> None:
        super().__init__()
        self.cfg = cfg
        self.W_E = nn.Parameter(torch.empty(cfg.vocab_size, cfg.d_model))
        self.W_pos = nn.Parameter(torch.empty(cfg.n_ctx, cfg.d_model)) if cfg.positional == "learned" else None
        self.hook_embed = HookPoint()  # [batch, pos, d_model] (Gemma: already scaled by sqrt(d_model))
        self.hook_pos_embed = HookPoint()  # [batch, pos, d_model]
        self.blocks = nn.ModuleList(Block(cfg, l, qkv_layout) for l in range(cfg.n_layers))
        self.ln_final = Norm(cfg)
        self.W_U = None if cfg.tie_word_embeddings else nn.Parameter(torch.empty(cfg.vocab_size, cfg.d_model))
        self.logits = HookPoint()  # hook name "logits": [batch, pos, vocab]
        self.hook_points: dict[str, HookPoint] = {}
        for name, module in self.named_modules():
            if isinstance(module, HookPoint):
                module.name = name
                self.hook_points[name] = module
        for l in range(cfg.n_layers):
            if cfg.positional == "learned":
                for n in ("attn.hook_rot_q", "attn.hook_rot_k"):
                    self.hook_points.pop(f"blocks.{l}.{n}")
            if cfg.d_mlp == 0:
                self.hook_points.pop(f"blocks.{l}.hook_mlp_out")
            if not cfg.gated_mlp:
                self.hook_points.pop(f"blocks.{l}.mlp.hook_pre_linear", None)
        if cfg.positional != "learned":
            self.hook_points.pop("hook_pos_embed")
        self._inv_freq: dict[tuple[RopeConfig, int, torch.device], tuple[torch.Tensor, float]] = {}
        # "auto": the fused kernel (scaled_dot_product_attention) unless a hook reads or writes
        # the scores or pattern, then the eager path. "eager": always the eager path, so that
        # runs with and without pattern hooks are bit-identical (the stepper and tests use it).
        self.attn_impl = "auto"
        # With --stream, a callable that puts block l's weights on the device for the duration
        # of a `with` and frees them after (see loader.BlockStreamer); None: all weights resident.
        self.streamer: Callable[[int], AbstractContextManager[object]] | None = None

    def block_weights(self, layer: int) -> AbstractContextManager[object]:
        """Context in which block `layer`'s weights are present (a no-op unless streaming)."""
        return self.streamer(layer) if self.streamer is not None else nullcontext()

    # ---- weights in canonical names (see architectures.weight_plan)

    @property
    def unembed_weight(self) -> torch.Tensor:
        return self.W_E if self.W_U is None else self.W_U  # [vocab, d_model]

    # ---- hooks

    def hook_names(self) -> list[str]:
        return list(self.hook_points)

    def step_of_hook(self, name: str) -> Step:
        """The step of the forward pass whose computation contains hook point `name`."""
        if not name.startswith("blocks."):
            return Step("unembed" if name.startswith(("ln_final", "logits")) else "embed")
        _, layer, rest = name.split(".", 2)
        mlp_half = rest.startswith(("ln2.", "ln2_post.", "mlp.", "hook_mlp_out", "hook_resid_post"))
        return Step("mlp" if mlp_half else "attn", int(layer))

    def match_hooks(self, pattern: str | Callable[[str], bool]) -> list[HookPoint]:
        """Hook points by exact name, glob (`blocks.*.hook_resid_post`) or predicate."""
        if callable(pattern):
            found = [p for n, p in self.hook_points.items() if pattern(n)]
            if not found:
                raise HookError("the hook filter matches no hook point")
            return found
        if pattern in self.hook_points:
            return [self.hook_points[pattern]]
        found = [p for n, p in self.hook_points.items() if fnmatch.fnmatchcase(n, pattern)]
        if not found:
            raise HookError(f"no hook point matches {pattern!r} (e.g. blocks.0.hook_resid_post, blocks.*.attn.hook_pattern)")
        return found

    @contextmanager
    def hooks(self, hooks: Iterable[tuple[str | Callable[[str], bool], HookFn]]) -> Iterator[Transformer]:
        """Add hooks for the duration of a `with` block; they are removed even on error."""
        added: list[tuple[HookPoint, HookFn]] = []
        try:
            for pattern, fn in hooks:
                for point in self.match_hooks(pattern):
                    point.fns.append(fn)
                    added.append((point, fn))
            yield self
        finally:
            for point, fn in reversed(added):
                for i in range(len(point.fns) - 1, -1, -1):
                    if point.fns[i] is fn:
                        del point.fns[i]
                        break

    def run_with_cache(
        self,
        tokens: torch.Tensor,
        names: str | Sequence[str] | Callable[[str], bool] = "*",
        *,
        hooks: Iterable[tuple[str | Callable[[str], bool], HookFn]] = (),
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Forward pass that keeps (detached) the activations whose hook names match."""
        cache: dict[str, torch.Tensor] = {}

        def save(x: torch.Tensor, *, hook: HookPoint) -> None:
            cache[hook.name] = x.detach()

        patterns = [names] if isinstance(names, str) or callable(names) else list(names)
        with self.hooks(list(hooks)), self.hooks([(p, save) for p in patterns]):
            logits = self(tokens)
        ordered = {n: cache[n] for n in self.hook_points if n in cache}
        return logits, ordered

    # ---- forward, in half-open pieces (the stepper composes them)

    def _rotary(self, rope: RopeConfig, positions: torch.Tensor, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        key_len = seq_len if rope.scaling in ("dynamic", "longrope") else 0  # the others do not depend on the length
        key = (rope, key_len, positions.device)
        if key not in self._inv_freq:
            inv, factor = rope_frequencies(rope, seq_len)
            self._inv_freq[key] = (inv.to(positions.device), factor)
        inv, factor = self._inv_freq[key]
        freqs = torch.outer(positions.float(), inv)  # [pos, rotary_dim / 2]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        if factor != 1.0:
            cos, sin = cos * factor, sin * factor
        return cos, sin

    def context(self, pos: int, device: torch.device, *, cache: KVCache | None = None) -> ForwardContext:
        """Rotary tables and masks for `pos` new positions after the cache's (computed once per forward)."""
        cfg = self.cfg
        past = cache.length if cache is not None else 0
        total = past + pos
        positions = torch.arange(past, total, device=device)
        cos = sin = local_cos = local_sin = None
        if cfg.positional == "rotary" and cfg.rope is not None:
            cos, sin = self._rotary(cfg.rope, positions, total)
            if cfg.rope_local is not None and cfg.rope_local != cfg.rope:
                local_cos, local_sin = self._rotary(cfg.rope_local, positions, total)
        mask = sliding_mask = None
        i, j = positions[:, None], torch.arange(total, device=device)[None, :]
        if past:
            mask = j <= i
        window = cfg.sliding_window
        if window is not None and total > window:
            windowed = (j <= i) & (i - j < window)
            if cfg.layer_types and "full_attention" in cfg.layer_types:
                sliding_mask = windowed
            else:
                mask = windowed  # every layer slides (Mistral, Phi-3)
        return ForwardContext(positions, cos, sin, mask, eager=self.attn_impl == "eager", past=past, cache=cache,
                              local_cos=local_cos, local_sin=local_sin, sliding_mask=sliding_mask)

    def check_tokens(self, tokens: torch.Tensor, *, past: int = 0) -> None:
        if tokens.dim() != 2:
            raise InputError(f"tokens must be [batch, pos], got shape {tuple(tokens.shape)}")
        if tokens.shape[1] == 0:
            raise InputError("no tokens to run")
        if past + tokens.shape[1] > self.cfg.n_ctx:
            raise InputError(f"prompt is {past + tokens.shape[1]} tokens, longer than the model's context ({self.cfg.n_ctx})")
        if tokens.numel():
            lo, hi = int(tokens.min()), int(tokens.max())
            if lo < 0 or hi >= self.cfg.vocab_size:
                bad = lo if lo < 0 else hi
                raise InputError(f"token id {bad} is outside the vocabulary (0..{self.cfg.vocab_size - 1})")

    def embed(self, tokens: torch.Tensor, ctx: ForwardContext) -> torch.Tensor:
        """tokens [batch, pos] -> resid_pre of block 0 [batch, pos, d_model]."""
        emb = F.embedding(tokens, self.W_E)
        if self.cfg.embed_scale:  # Gemma: sqrt(d_model), rounded to the model's dtype as transformers does
            emb = emb * torch.tensor(self.cfg.d_model**0.5, dtype=torch.float32).to(emb.dtype)
        resid = self.hook_embed(emb)
        if self.W_pos is not None:
            pos_embed = self.hook_pos_embed(self.W_pos[ctx.positions].unsqueeze(0).expand_as(resid))
            resid = resid + pos_embed
        return resid

    def unembed(self, resid: torch.Tensor) -> torch.Tensor:
        """Final residual [batch, pos, d_model] -> logits [batch, pos, vocab]."""
        if resid.device != self.ln_final.w.device and not self.ln_final.w.is_meta:
            resid = resid.to(self.ln_final.w.device)
        logits = F.linear(self.ln_final(resid), self.unembed_weight)
        if self.cfg.final_softcap is not None:
            cap = self.cfg.final_softcap
            logits = torch.tanh(logits / cap) * cap
        return self.logits(logits)

    def forward(
        self,
        tokens: torch.Tensor,
        *,
        start_at_layer: int = 0,
        stop_at_layer: int | None = None,
        residual: torch.Tensor | None = None,
        cache: KVCache | None = None,
        last_only: bool = False,
    ) -> torch.Tensor:
        """Logits [batch, pos, vocab]. With layer bounds, runs blocks [start, stop) only and
        returns the residual stream after them (or logits when stop is None). With a cache, the
        tokens are the positions after the cached ones; their keys and values are added to it.
        last_only: the last block computes the last position only (its earlier positions give
        keys and values, and its hooks after them see one position): the result is [batch, 1, ...]."""
        self.check_tokens(tokens, past=cache.length if cache is not None else 0)
        ctx = self.context(tokens.shape[1], tokens.device, cache=cache)
        if start_at_layer == 0 and residual is None:
            resid = self.embed(tokens, ctx)
        elif residual is None:
            raise InputError("starting after layer 0 needs the residual stream to start from")
        else:
            resid = residual
        stop = self.cfg.n_layers if stop_at_layer is None else stop_at_layer
        for l in range(start_at_layer, stop):
            with self.block_weights(l):
                resid = self.blocks[l](resid, ctx, last_only=last_only and l == stop - 1)
        if cache is not None and stop == self.cfg.n_layers:
            cache.length += tokens.shape[1]
        if stop_at_layer is not None:
            return resid
        return self.unembed(resid)
