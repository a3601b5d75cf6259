"""Materialise a Checkpoint into a Transformer on a device, in a dtype.

The Transformer is built on the meta device (no allocation), then each parameter is read from
the memory-mapped checkpoint, converted and placed. `--device auto` picks CUDA when present.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from tui_interp.errors import CheckpointError, DeviceError
from tui_interp.model.checkpoint import Checkpoint, open_checkpoint
from tui_interp.model.tokenizer import Tokenizer
from tui_interp.model.transformer import Transformer

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class LoadedModel:
    """A checkpoint with its weights on a device, and its tokenizer (None when absent)."""

    checkpoint: Checkpoint
    model: Transformer
    tokenizer: Tokenizer | None
    device: torch.device
    dtype: torch.dtype

    @property
    def config(self):  # noqa: ANN201 -- ModelConfig, re-exported for convenience
        return self.model.cfg

    @property
    def name(self) -> str:
        return self.checkpoint.name

    def token_text(self, token_id: int) -> str:
        """A token's raw text (escape before display): the id itself without a tokenizer (prompts
        are typed as ids then), `<id>` for an id past the tokenizer's vocabulary (padding rows)."""
        if self.tokenizer is None:
            return str(token_id)
        if not 0 <= token_id < self.tokenizer.vocab_size:
            return f"<{token_id}>"
        return self.tokenizer.token_text(token_id)

    def need_tokenizer(self) -> Tokenizer:
        from tui_interp.errors import TokenizerError

        if self.tokenizer is None:
            raise TokenizerError(f"{self.checkpoint.root}: no tokenizer.json; pass token ids instead (--tokens 1,2,3)")
        return self.tokenizer


def resolve_device(device: str = "auto") -> torch.device:
    device = (device or "auto").strip().lower()
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {device}: CUDA is not available on this machine (use --device cpu or auto)")
        try:
            dev = torch.device(device)
        except RuntimeError as e:
            raise DeviceError(f"--device {device}: {e}") from e
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) present")
        return dev
    raise DeviceError(f"--device {device}: expected auto, cpu, cuda or cuda:N")


def resolve_dtype(dtype: str, device: torch.device, stored: str) -> torch.dtype:
    """auto: float32 on CPU (half precision is slow and lossy there); the stored dtype on CUDA."""
    dtype = (dtype or "auto").strip().lower()
    if dtype == "auto":
        if device.type == "cpu":
            return torch.float32
        return DTYPES.get(stored, torch.float32)
    if dtype not in DTYPES:
        raise DeviceError(f"--dtype {dtype}: expected auto, float32, bfloat16 or float16")
    return DTYPES[dtype]


def load_model(
    source: str | os.PathLike[str] | Checkpoint,
    *,
    device: str = "auto",
    dtype: str = "auto",
    stream: bool = False,
) -> LoadedModel:
    """Load weights onto the device. stream=True keeps only the embeddings and the final norm
    resident and brings each block's weights in from the memory-mapped checkpoint while it runs
    (peak device memory ~ one block + embeddings + activations)."""
    ckpt = source if isinstance(source, Checkpoint) else open_checkpoint(Path(source))
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev, ckpt.dtype)
    with torch.device("meta"):
        model = Transformer(ckpt.config)
    if stream:
        resident = [n for n in ckpt.plan if not n.startswith("blocks.")]
        load_weights(model, ckpt, dev, dt, names=resident)
        model.streamer = BlockStreamer(model, ckpt, dev, dt)
    else:
        load_weights(model, ckpt, dev, dt)
    model.eval()
    model.requires_grad_(False)
    tokenizer = None
    if ckpt.tokenizer_path is not None:
        tokenizer = Tokenizer.from_file(ckpt.tokenizer_path, bos_id=ckpt.config.bos_token_id)
    return LoadedModel(ckpt, model, tokenizer, dev, dt)


def load_weights(
    model: Transformer, ckpt: Checkpoint, device: torch.device, dtype: torch.dtype, *, names: list[str] | None = None
) -> None:
    """Fill the parameters of a (meta) Transformer from the checkpoint, one tensor at a time."""
    for canonical in ckpt.plan if names is None else names:
        value = ckpt.load_param(canonical).to(device=device, dtype=dtype)
        owner, attr = _owner(model, canonical)
        setattr(owner, attr, torch.nn.Parameter(value, requires_grad=False))
    leftover = [n for n, p in model.named_parameters() if p.is_meta] if names is None else []
    if leftover:
        raise CheckpointError(f"{ckpt.path}: internal: parameters not loaded: {', '.join(leftover[:5])}")


_TOP_LEVEL = {"embed.W_E": "W_E", "pos_embed.W_pos": "W_pos", "unembed.W_U": "W_U"}


def _owner(model: Transformer, canonical: str) -> tuple[torch.nn.Module, str]:
    """The module and attribute name a checkpoint-plan name (architectures.weight_plan) loads into."""
    owner, _, attr = _TOP_LEVEL.get(canonical, canonical).rpartition(".")
    return (model.get_submodule(owner) if owner else model), attr


class BlockStreamer:
    """Brings one block's weights onto the device for the duration of a `with`, then frees them."""

    def __init__(self, model: Transformer, ckpt: Checkpoint, device: torch.device, dtype: torch.dtype) -> None:
        self.model, self.ckpt, self.device, self.dtype = model, ckpt, device, dtype
        self.loads = 0  # how many times a block was brought in (for tests and benchmarks)

    @contextmanager
    def __call__(self, layer: int) -> Iterator[None]:
        prefix = f"blocks.{layer}."
        names = [n for n in self.ckpt.plan if n.startswith(prefix)]
        load_weights(self.model, self.ckpt, self.device, self.dtype, names=names)
        self.loads += 1
        try:
            yield
        finally:
            for n in names:
                owner, attr = _owner(self.model, n)
                old = getattr(owner, attr)
                setattr(owner, attr, torch.nn.Parameter(torch.empty(old.shape, dtype=old.dtype, device="meta"), requires_grad=False))
            del old
            if self.device.type == "cpu":
                _release_freed_memory()


def _release_freed_memory() -> None:
    """Give freed heap memory back to the OS (glibc keeps it otherwise, so a streamed run on
    the CPU would grow by a block's worth of fragments per block)."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return
    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return
