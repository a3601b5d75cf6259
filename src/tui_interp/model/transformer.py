"""The one decoder-only transformer: every supported architecture is this module plus a config.

Hook points (identity modules) sit at every activation, named as in TransformerLens
(`blocks.3.attn.hook_pattern`, ...). A hook is `fn(x, *, hook) -> Tensor | None`; returning a
tensor replaces the activation. Temporary hooks go through `Transformer.hooks(...)`, which
removes them even on error. Parameters are kept in nn.Linear layout [out, in] so one fused
q/k/v matmul serves every family.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tui_interp.components import Step
from tui_interp.errors import HookError, InputError
from tui_interp.model.config import ModelConfig

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
    """LayerNorm or RMSNorm, computed in float32 and cast back; hook_normalized is its output."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.kind = cfg.norm
        self.eps = cfg.norm_eps
        self.w = nn.Parameter(torch.ones(cfg.d_model))
        self.b = nn.Parameter(torch.zeros(cfg.d_model)) if cfg.norm == "layernorm" and cfg.norm_bias else None
        self.hook_normalized = HookPoint()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x [batch, pos, d_model]
        dtype = x.dtype
        if self.kind == "layernorm":
            b = self.b.float() if self.b is not None else None
            y = F.layer_norm(x.float(), (x.shape[-1],), self.w.float(), b, self.eps).to(dtype)
        else:
            x32 = x.float()
            x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
            y = self.w * x32.to(dtype)
        return self.hook_normalized(y)

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """The per-position divisor this norm applies: [..., 1] (for direct logit attribution)."""
        x32 = x.float()
        if self.kind == "layernorm":
            x32 = x32 - x32.mean(-1, keepdim=True)
        return torch.sqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)


@dataclass
class ForwardContext:
    """Inputs shared by every block of one forward pass, computed once."""

    positions: torch.Tensor  # [pos]
    cos: torch.Tensor | None  # [pos, rotary_dim]
    sin: torch.Tensor | None
    mask: torch.Tensor | None  # [pos, pos] bool, True = may attend; None = plain causal
    eager: bool = False  # force the eager attention path in every layer
    _bias: dict[torch.dtype, torch.Tensor] | None = None

    def attn_bias(self, dtype: torch.dtype) -> torch.Tensor:
        """Additive mask [query, key]: 0 where attention is allowed, -inf elsewhere (built once per dtype)."""
        if self._bias is None:
            self._bias = {}
        if dtype not in self._bias:
            pos = self.positions.shape[0]
            allowed = self.mask if self.mask is not None else _causal(pos, self.positions.device)
            bias = torch.zeros(pos, pos, dtype=dtype, device=self.positions.device)
            self._bias[dtype] = bias.masked_fill_(~allowed, float("-inf"))
        return self._bias[dtype]


def rope_inv_freq(cfg: ModelConfig) -> torch.Tensor:
    """Inverse frequencies as HuggingFace computes them (default, linear and llama3 scaling)."""
    rope = cfg.rope
    if rope is None:
        raise ValueError("model has no rotary embedding")
    dim = rope.rotary_dim
    inv = 1.0 / (rope.theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
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
    return inv


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


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        h, kv, dh, d = cfg.n_heads, cfg.n_kv_heads, cfg.d_head, cfg.d_model
        self.W_qkv = nn.Parameter(torch.empty((h + 2 * kv) * dh, d))
        self.b_qkv = nn.Parameter(torch.zeros((h + 2 * kv) * dh)) if cfg.qkv_bias else None
        self.W_O = nn.Parameter(torch.empty(d, h * dh))
        self.b_O = nn.Parameter(torch.zeros(d)) if cfg.attn_out_bias else None
        self.scale = 1.0 / math.sqrt(dh)
        self.hook_q, self.hook_k, self.hook_v = HookPoint(), HookPoint(), HookPoint()  # [batch, pos, head, d_head]
        self.hook_rot_q, self.hook_rot_k = HookPoint(), HookPoint()  # after rotary (rotary models only)
        self.hook_attn_scores = HookPoint()  # [batch, head, query, key], masked with -inf
        self.hook_pattern = HookPoint()  # [batch, head, query, key]
        self.hook_z = HookPoint()  # [batch, pos, head, d_head]

    def forward(self, x: torch.Tensor, ctx: ForwardContext) -> torch.Tensor:
        cfg = self.cfg
        batch, pos, _ = x.shape  # x [batch, pos, d_model]
        h, kv, dh = cfg.n_heads, cfg.n_kv_heads, cfg.d_head
        qkv = F.linear(x, self.W_qkv, self.b_qkv)  # [batch, pos, (h + 2kv) * d_head]
        q, k, v = qkv.split((h * dh, kv * dh, kv * dh), dim=-1)
        q = self.hook_q(q.view(batch, pos, h, dh))
        k = self.hook_k(k.view(batch, pos, kv, dh))
        v = self.hook_v(v.view(batch, pos, kv, dh))
        if ctx.cos is not None and ctx.sin is not None:
            q = self.hook_rot_q(apply_rope(q, ctx.cos, ctx.sin))
            k = self.hook_rot_k(apply_rope(k, ctx.cos, ctx.sin))
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [batch, head, pos, d_head]
        if kv != h:
            k = k.repeat_interleave(h // kv, dim=1)
            v = v.repeat_interleave(h // kv, dim=1)
        if ctx.eager or self.hook_attn_scores.fns or self.hook_pattern.fns:
            # one kernel: bias + scale * q @ k^T, the bias being 0 where attention is allowed, -inf elsewhere
            bias = ctx.attn_bias(q.dtype)  # [query, key]
            scores = torch.baddbmm(
                bias.expand(batch * h, pos, pos), q.reshape(batch * h, pos, dh), k.reshape(batch * h, pos, dh).transpose(1, 2),
                alpha=self.scale,
            ).view(batch, h, pos, pos)  # [batch, head, query, key]
            scores = self.hook_attn_scores(scores)
            pattern = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
            pattern = self.hook_pattern(pattern)
            z = torch.matmul(pattern, v)  # [batch, head, pos, d_head]
        elif ctx.mask is None:
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
        else:
            z = F.scaled_dot_product_attention(q, k, v, attn_mask=ctx.mask, scale=self.scale)
        z = self.hook_z(z.transpose(1, 2))  # [batch, pos, head, d_head]
        return F.linear(z.reshape(batch, pos, h * dh), self.W_O, self.b_O)  # [batch, pos, d_model]


def _causal(pos: int, device: torch.device) -> torch.Tensor:
    return torch.ones(pos, pos, dtype=torch.bool, device=device).tril()


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
    """One layer. `attn_half` and `mlp_half` are the two steps of the stepper."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.parallel = cfg.parallel_attn_mlp
        self.has_mlp = cfg.d_mlp > 0
        self.hook_resid_pre = HookPoint()
        self.ln1 = Norm(cfg)
        self.attn = Attention(cfg)
        self.hook_attn_out = HookPoint()
        self.hook_resid_mid = HookPoint()
        self.ln2 = Norm(cfg) if self.has_mlp else None
        self.mlp = MLP(cfg) if self.has_mlp else None
        self.hook_mlp_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def attn_half(self, resid_pre: torch.Tensor, ctx: ForwardContext) -> torch.Tensor:
        """resid_pre [batch, pos, d_model] -> resid_mid (resid_pre + attention output)."""
        resid_pre = self.hook_resid_pre(resid_pre)
        attn_out = self.hook_attn_out(self.attn(self.ln1(resid_pre), ctx))
        return self.hook_resid_mid(resid_pre + attn_out)

    def mlp_half(self, resid_mid: torch.Tensor, resid_pre: torch.Tensor) -> torch.Tensor:
        """resid_mid -> resid_post. Parallel blocks (GPT-NeoX) feed the MLP from resid_pre."""
        if self.mlp is None or self.ln2 is None:
            return self.hook_resid_post(resid_mid)
        mlp_in = resid_pre if self.parallel else resid_mid
        mlp_out = self.hook_mlp_out(self.mlp(self.ln2(mlp_in)))
        return self.hook_resid_post(resid_mid + mlp_out)

    def forward(self, resid_pre: torch.Tensor, ctx: ForwardContext) -> torch.Tensor:
        return self.mlp_half(self.attn_half(resid_pre, ctx), resid_pre)


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.W_E = nn.Parameter(torch.empty(cfg.vocab_size, cfg.d_model))
        self.W_pos = nn.Parameter(torch.empty(cfg.n_ctx, cfg.d_model)) if cfg.positional == "learned" else None
        self.hook_embed = HookPoint()  # [batch, pos, d_model]
        self.hook_pos_embed = HookPoint()  # [batch, pos, d_model]
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_final = Norm(cfg)
        self.W_U = None if cfg.tie_word_embeddings else nn.Parameter(torch.empty(cfg.vocab_size, cfg.d_model))
        self.logits = HookPoint()  # hook name "logits": [batch, pos, vocab]
        self.hook_points: dict[str, HookPoint] = {}
        for name, module in self.named_modules():
            if isinstance(module, HookPoint):
                module.name = name
                self.hook_points[name] = module
        if cfg.positional == "learned":
            for n in ("blocks.%d.attn.hook_rot_q", "blocks.%d.attn.hook_rot_k"):
                for l in range(cfg.n_layers):
                    self.hook_points.pop(n % l)
        else:
            self.hook_points.pop("hook_pos_embed")
        if cfg.d_mlp == 0:
            for l in range(cfg.n_layers):
                for n in ("ln2.hook_normalized", "hook_mlp_out"):
                    self.hook_points.pop(f"blocks.{l}.{n}")
        if not cfg.gated_mlp:
            for l in range(cfg.n_layers):
                self.hook_points.pop(f"blocks.{l}.mlp.hook_pre_linear", None)
        self._inv_freq: torch.Tensor | None = None
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
        mlp_half = rest.startswith(("ln2.", "mlp.", "hook_mlp_out", "hook_resid_post"))
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

    def context(self, pos: int, device: torch.device) -> ForwardContext:
        positions = torch.arange(pos, device=device)
        cos = sin = None
        if self.cfg.positional == "rotary":
            if self._inv_freq is None or self._inv_freq.device != device:
                self._inv_freq = rope_inv_freq(self.cfg).to(device)
            freqs = torch.outer(positions.float(), self._inv_freq)  # [pos, rotary_dim / 2]
            emb = torch.cat((freqs, freqs), dim=-1)
            cos, sin = emb.cos(), emb.sin()
        mask = None
        window = self.cfg.sliding_window
        if window is not None and pos > window:
            i = positions[:, None]
            j = positions[None, :]
            mask = (j <= i) & (i - j < window)
        return ForwardContext(positions, cos, sin, mask, eager=self.attn_impl == "eager")

    def check_tokens(self, tokens: torch.Tensor) -> None:
        if tokens.dim() != 2:
            raise InputError(f"tokens must be [batch, pos], got shape {tuple(tokens.shape)}")
        if tokens.shape[1] == 0:
            raise InputError("no tokens to run")
        if tokens.shape[1] > self.cfg.n_ctx:
            raise InputError(f"prompt is {tokens.shape[1]} tokens, longer than the model's context ({self.cfg.n_ctx})")
        if tokens.numel():
            lo, hi = int(tokens.min()), int(tokens.max())
            if lo < 0 or hi >= self.cfg.vocab_size:
                bad = lo if lo < 0 else hi
                raise InputError(f"token id {bad} is outside the vocabulary (0..{self.cfg.vocab_size - 1})")

    def embed(self, tokens: torch.Tensor, ctx: ForwardContext) -> torch.Tensor:
        """tokens [batch, pos] -> resid_pre of block 0 [batch, pos, d_model]."""
        resid = self.hook_embed(F.embedding(tokens, self.W_E))
        if self.W_pos is not None:
            pos_embed = self.hook_pos_embed(self.W_pos[ctx.positions].unsqueeze(0).expand_as(resid))
            resid = resid + pos_embed
        return resid

    def unembed(self, resid: torch.Tensor) -> torch.Tensor:
        """Final residual [batch, pos, d_model] -> logits [batch, pos, vocab]."""
        return self.logits(F.linear(self.ln_final(resid), self.unembed_weight))

    def forward(
        self,
        tokens: torch.Tensor,
        *,
        start_at_layer: int = 0,
        stop_at_layer: int | None = None,
        residual: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits [batch, pos, vocab]. With layer bounds, runs blocks [start, stop) only and
        returns the residual stream after them (or logits when stop is None)."""
        self.check_tokens(tokens)
        ctx = self.context(tokens.shape[1], tokens.device)
        if start_at_layer == 0 and residual is None:
            resid = self.embed(tokens, ctx)
        elif residual is None:
            raise InputError("starting after layer 0 needs the residual stream to start from")
        else:
            resid = residual
        stop = self.cfg.n_layers if stop_at_layer is None else stop_at_layer
        for l in range(start_at_layer, stop):
            with self.block_weights(l):
                resid = self.blocks[l](resid, ctx)
        if stop_at_layer is not None:
            return resid
        return self.unembed(resid)
