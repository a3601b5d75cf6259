"""The face a TransformerLens user expects, on the loaded model (`LoadedModel`).

    lm = load_model("gpt2")                      # TL: model = HookedTransformer.from_pretrained("gpt2")
    tokens = lm.to_tokens("Hello world")         # [1, pos] on lm.device
    logits, cache = lm.run_with_cache(tokens)    # cache: {hook name: tensor}, TL's hook names
    logits = lm.run_with_hooks(tokens, fwd_hooks=[("blocks.0.attn.hook_z", fn)])
    lm.W_Q[l, h]                                 # [d_model, d_head], as TL stacks them

It lives on LoadedModel, not on the Transformer, because it needs the tokenizer and because the
Transformer's own parameters keep the checkpoint's layout (nn.Linear [out, in], fused q/k/v
where the checkpoint fuses them), which is what makes loading copy-free. The weight accessors
build TL's [layer, head, ...] stacks on demand (a copy each call: read them once).

Differences from TransformerLens, on purpose:
- `to_tokens` prepends BOS as the model's tokenizer does (TL always prepends by default);
  `prepend_bos=True/False` forces it either way.
- W_K / W_V (and b_K / b_V) of grouped-query models are repeated to every query head, as TL's
  accessors do; hook_k / hook_v stay [batch, pos, kv_heads, d_head].
- Gemma scales the embedding by sqrt(d_model) in the forward pass; W_E is the stored matrix.
- the cache is a plain dict (TL: ActivationCache).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from tui_interp.errors import InputError

if TYPE_CHECKING:
    from tui_interp.model.tokenizer import Tokenizer
    from tui_interp.model.transformer import Transformer

Input = str | Sequence[str] | torch.Tensor | Sequence[int]


class TransformerLensAPI:
    """Mixin: needs `model` (Transformer), `tokenizer`, `device` and `need_tokenizer()`."""

    model: Transformer
    tokenizer: Tokenizer | None
    device: torch.device

    def need_tokenizer(self) -> Tokenizer:  # pragma: no cover - provided by LoadedModel
        raise NotImplementedError

    # ---- tokens

    def to_tokens(self, text: str | Sequence[str], prepend_bos: bool | None = None) -> torch.Tensor:
        """Token ids [batch, pos] of a string (or of strings that encode to equal lengths)."""
        tok = self.need_tokenizer()
        texts = [text] if isinstance(text, str) else list(text)
        rows = tok.encode_batch(texts, bos=prepend_bos)
        if len({len(r) for r in rows}) != 1:
            raise InputError("to_tokens: the strings encode to different lengths; pass them one at a time")
        if not rows[0]:
            raise InputError("to_tokens: the text encodes to no tokens")
        return torch.tensor(rows, device=self.device)

    def to_str_tokens(self, tokens: Input, prepend_bos: bool | None = None) -> list[str]:
        """Each token's text, of a string or of token ids ([pos] or [1, pos])."""
        tok = self.need_tokenizer()
        ids = self._ids(tokens, prepend_bos)
        if ids and isinstance(ids[0], list):
            if len(ids) != 1:
                raise InputError("to_str_tokens: give one sequence, not a batch")
            ids = ids[0]
        return [tok.token_text(int(i)) for i in ids]  # type: ignore[arg-type]

    def to_string(self, tokens: torch.Tensor | Sequence[int] | Sequence[Sequence[int]]) -> str | list[str]:
        """Decoded text of token ids: a string for [pos], a list of strings for [batch, pos]."""
        tok = self.need_tokenizer()
        ids = tokens.tolist() if isinstance(tokens, torch.Tensor) else list(tokens)
        if ids and isinstance(ids[0], list):
            return [tok.decode(row) for row in ids]
        return tok.decode(ids)  # type: ignore[arg-type]

    def to_single_token(self, text: str) -> int:
        ids = self.need_tokenizer().encode(text, bos=False)
        if len(ids) != 1:
            raise InputError(f"to_single_token: {text!r} is {len(ids)} tokens")
        return ids[0]

    def _ids(self, tokens: Input, prepend_bos: bool | None) -> list[Any]:
        if isinstance(tokens, str):
            return self.need_tokenizer().encode(tokens, bos=prepend_bos)
        if isinstance(tokens, torch.Tensor):
            return tokens.tolist()
        return list(tokens)

    def _batch(self, tokens: Input) -> torch.Tensor:
        if isinstance(tokens, str) or (isinstance(tokens, Sequence) and tokens and isinstance(tokens[0], str)):
            return self.to_tokens(tokens)  # type: ignore[arg-type]
        t = tokens if isinstance(tokens, torch.Tensor) else torch.tensor(list(tokens))
        if t.dim() == 1:
            t = t[None]
        return t.to(self.device)

    # ---- running

    @torch.inference_mode()
    def __call__(self, tokens: Input) -> torch.Tensor:
        """Logits [batch, pos, vocab] of a string or token ids."""
        return self.model(self._batch(tokens))

    @torch.inference_mode()
    def run_with_hooks(self, tokens: Input, fwd_hooks: Iterable[tuple[str | Callable[[str], bool], Callable[..., Any]]] = ()) -> torch.Tensor:
        """Logits with hooks `(name or glob or predicate, fn(activation, hook))` in place for this run only."""
        with self.model.hooks(list(fwd_hooks)):
            return self.model(self._batch(tokens))

    @torch.inference_mode()
    def run_with_cache(
        self,
        tokens: Input,
        names_filter: str | Sequence[str] | Callable[[str], bool] | None = None,
        *,
        fwd_hooks: Iterable[tuple[str | Callable[[str], bool], Callable[..., Any]]] = (),
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits and the activations whose hook names match `names_filter` (default: all)."""
        return self.model.run_with_cache(self._batch(tokens), "*" if names_filter is None else names_filter, hooks=fwd_hooks)

    def generate(
        self,
        tokens: Input,
        max_new_tokens: int = 10,
        *,
        temperature: float = 0.0,
        seed: int = 0,
        stop_at_eos: bool = True,
        fwd_hooks: Iterable[tuple[str | Callable[[str], bool], Callable[..., Any]]] = (),
    ) -> str | torch.Tensor:
        """Greedy (temperature 0) or sampled continuation with a KV cache. A string in gives the
        string out (prompt + continuation, as TL); token ids in give ids out [1, prompt + new]."""
        from tui_interp.engine.generate import generate_ids

        batch = self._batch(tokens)
        if batch.shape[0] != 1:
            raise InputError("generate: one prompt at a time")
        hooks = list(fwd_hooks)
        new, _ = generate_ids(
            self.model, batch[0].tolist(), max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
            eos=self.model.cfg.eos_token_id if stop_at_eos else None, step_hooks=lambda past, n: hooks,
        )
        out = torch.tensor([batch[0].tolist() + new], device=self.device)
        if isinstance(tokens, str):
            return self.need_tokenizer().decode(out[0].tolist())
        return out

    # ---- weights, stacked as TransformerLens has them

    def _blocks(self) -> list[Any]:
        blocks = list(self.model.blocks)
        if any(p.is_meta for b in blocks for p in b.parameters()):
            raise InputError("the block weights are streamed from disk (--stream): load without streaming to read them")
        return blocks

    def _stack(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack([t.to(self.device) for t in tensors])

    def _attn(self, which: int) -> torch.Tensor:
        """W_Q / W_K / W_V: [n_layers, n_heads, d_model, d_head] (GQA keys/values repeated per query head)."""
        cfg = self.model.cfg
        out = []
        for b in self._blocks():
            w = b.attn.qkv_weights()[which]  # [heads * d_head, d_model]
            heads = w.shape[0] // cfg.d_head
            w = w.reshape(heads, cfg.d_head, cfg.d_model).transpose(1, 2)  # [heads, d_model, d_head]
            out.append(w.repeat_interleave(cfg.n_heads // heads, dim=0) if heads != cfg.n_heads else w)
        return self._stack(out)

    def _attn_bias(self, which: int) -> torch.Tensor:
        """b_Q / b_K / b_V: [n_layers, n_heads, d_head], zeros where the model has none."""
        cfg = self.model.cfg
        out = []
        for b in self._blocks():
            bias = b.attn.qkv_biases()[which]
            if bias is None:
                out.append(torch.zeros(cfg.n_heads, cfg.d_head, dtype=b.attn.W_O.dtype, device=b.attn.W_O.device))
                continue
            heads = bias.shape[0] // cfg.d_head
            bias = bias.reshape(heads, cfg.d_head)
            out.append(bias.repeat_interleave(cfg.n_heads // heads, dim=0) if heads != cfg.n_heads else bias)
        return self._stack(out)

    @property
    def W_E(self) -> torch.Tensor:
        """[d_vocab, d_model]."""
        return self.model.W_E

    @property
    def W_pos(self) -> torch.Tensor:
        """[n_ctx, d_model] (learned positions only)."""
        if self.model.W_pos is None:
            raise AttributeError(f"W_pos: this model uses {self.model.cfg.positional} positions, it has no position embedding matrix")
        return self.model.W_pos

    @property
    def W_U(self) -> torch.Tensor:
        """[d_model, d_vocab]."""
        return self.model.unembed_weight.T

    @property
    def b_U(self) -> torch.Tensor:
        """[d_vocab] (zeros: no supported family has an unembedding bias)."""
        w = self.model.unembed_weight
        return torch.zeros(w.shape[0], dtype=w.dtype, device=w.device)

    @property
    def W_Q(self) -> torch.Tensor:
        return self._attn(0)

    @property
    def W_K(self) -> torch.Tensor:
        return self._attn(1)

    @property
    def W_V(self) -> torch.Tensor:
        return self._attn(2)

    @property
    def b_Q(self) -> torch.Tensor:
        return self._attn_bias(0)

    @property
    def b_K(self) -> torch.Tensor:
        return self._attn_bias(1)

    @property
    def b_V(self) -> torch.Tensor:
        return self._attn_bias(2)

    @property
    def W_O(self) -> torch.Tensor:
        """[n_layers, n_heads, d_head, d_model]."""
        cfg = self.model.cfg
        return self._stack([b.attn.W_O.reshape(cfg.d_model, cfg.n_heads, cfg.d_head).permute(1, 2, 0) for b in self._blocks()])

    @property
    def b_O(self) -> torch.Tensor:
        """[n_layers, d_model]."""
        return self._stack([_or_zeros(b.attn.b_O, b.attn.W_O, 0) for b in self._blocks()])

    def _mlp(self, name: str, transpose: bool = True) -> torch.Tensor:
        out = []
        for b in self._blocks():
            if b.mlp is None:
                raise AttributeError(f"{name}: this model has no MLPs")
            w = getattr(b.mlp, name)
            if w is None:
                raise AttributeError(f"{name}: this model's MLPs have none")
            out.append(w.T if transpose else w)
        return self._stack(out)

    @property
    def W_in(self) -> torch.Tensor:
        """[n_layers, d_model, d_mlp] (gated MLPs: the up projection, hook_pre_linear)."""
        return self._mlp("W_in")

    @property
    def W_gate(self) -> torch.Tensor:
        """[n_layers, d_model, d_mlp] (gated MLPs: the gate, hook_pre)."""
        return self._mlp("W_gate")

    @property
    def W_out(self) -> torch.Tensor:
        """[n_layers, d_mlp, d_model]."""
        return self._mlp("W_out")

    @property
    def b_in(self) -> torch.Tensor:
        """[n_layers, d_mlp]."""
        return self._stack([_or_zeros(b.mlp.b_in, b.mlp.W_in, 0) for b in self._blocks() if b.mlp is not None])

    @property
    def b_out(self) -> torch.Tensor:
        """[n_layers, d_model]."""
        return self._stack([_or_zeros(b.mlp.b_out, b.mlp.W_out, 0) for b in self._blocks() if b.mlp is not None])


def _or_zeros(bias: torch.Tensor | None, weight: torch.Tensor, dim: int) -> torch.Tensor:
    if bias is not None:
        return bias
    return torch.zeros(weight.shape[dim], dtype=weight.dtype, device=weight.device)
