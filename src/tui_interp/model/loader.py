"""Materialise a Checkpoint into a Transformer on a device, in a dtype.

The Transformer is built on the meta device (no allocation), then each parameter is taken from
the memory-mapped checkpoint as a view in the checkpoint's own layout (see
architectures.weight_plan): on the CPU in the checkpoint's dtype nothing is copied at all, the
model *is* the mapped file; a dtype conversion copies each tensor once; on a GPU each tensor
goes to the device first and is converted there, so no host copy of a layer is ever made.

`--device auto` picks CUDA when present, and when one GPU cannot hold the model it places the
blocks across the GPUs it finds (`plan_device_map`, from each GPU's free memory); the
activations move between devices at block boundaries.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from tui_interp.errors import CheckpointError, DeviceError
from tui_interp.model.checkpoint import Checkpoint, open_checkpoint
from tui_interp.model.tl_api import TransformerLensAPI
from tui_interp.model.tokenizer import Tokenizer
from tui_interp.model.transformer import Transformer

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
GPU_HEADROOM = 0.9  # plan to fill at most this fraction of a GPU's free memory with weights
ACTIVATION_RESERVE = 1 << 30  # and leave this much per GPU for activations and the CUDA context


@dataclass
class LoadedModel(TransformerLensAPI):
    """A checkpoint with its weights on a device, and its tokenizer (None when absent).

    Also the TransformerLens-style face (`to_tokens`, `run_with_hooks`, `W_Q`, ...; see tl_api.py).
    `device` is where the embeddings, the final norm and the unembedding live (and where inputs
    go); `device_map` lists each block's device when the model is spread over several GPUs.
    """

    checkpoint: Checkpoint
    model: Transformer
    tokenizer: Tokenizer | None
    device: torch.device
    dtype: torch.dtype
    device_map: tuple[torch.device, ...] | None = None

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


# ---------------------------------------------------------------------------------------------
# Placement over several GPUs


def param_bytes(ckpt: Checkpoint, canonical: str, dtype: torch.dtype) -> int:
    """Bytes parameter `canonical` takes in `dtype` (from the headers: nothing is read)."""
    src = ckpt.plan[canonical]
    shape = ckpt.tensors[src.names[0]].shape
    numel = math.prod(shape) if src.rows is None else (src.rows[1] - src.rows[0]) * math.prod(shape[1:])
    return numel * torch.empty((), dtype=dtype).element_size()


def block_bytes(ckpt: Checkpoint, dtype: torch.dtype) -> tuple[list[int], int]:
    """Bytes of each block's weights, and of everything else (embeddings, final norm, unembedding)."""
    per_block = [0] * ckpt.config.n_layers
    rest = 0
    for canonical in ckpt.plan:
        n = param_bytes(ckpt, canonical, dtype)
        if canonical.startswith("blocks."):
            per_block[int(canonical.split(".", 2)[1])] += n
        else:
            rest += n
    return per_block, rest


def plan_device_map(
    blocks: Sequence[int],
    resident: int,
    free: Sequence[tuple[str, int]],
    *,
    headroom: float = GPU_HEADROOM,
    reserve: int = ACTIVATION_RESERVE,
) -> list[str]:
    """Each block's device: fill the devices in order, the first also holding the `resident` bytes
    (embeddings, final norm, unembedding). `free` is (device, free bytes) per GPU; each is filled
    to `headroom` of its free memory less `reserve` for activations. Raises DeviceError when the
    model does not fit."""
    if not free:
        raise DeviceError("no GPU to place the model on")
    budgets = [max(0, int(f * headroom) - reserve) for _, f in free]
    out: list[str] = []
    d, used = 0, resident
    if used > budgets[0]:
        raise DeviceError(f"{free[0][0]} cannot hold even the embeddings ({_gb(resident)} needed, {_gb(budgets[0])} usable)")
    for l, size in enumerate(blocks):
        while used + size > budgets[d]:
            d, used = d + 1, 0
            if d == len(free):
                need = resident + sum(blocks)
                have = sum(budgets)
                raise DeviceError(
                    f"the model needs {_gb(need)} of GPU memory, the {len(free)} GPU(s) have {_gb(have)} usable "
                    f"(block {l} does not fit): use --stream, a smaller --dtype, or --device cpu"
                )
        out.append(free[d][0])
        used += size
    return out


def _gb(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def cuda_free_memory() -> list[tuple[str, int]]:
    """(device, free bytes) of every visible GPU."""
    return [(f"cuda:{i}", torch.cuda.mem_get_info(i)[0]) for i in range(torch.cuda.device_count())]


def auto_placement(
    ckpt: Checkpoint, dtype: torch.dtype, free: Sequence[tuple[str, int]]
) -> tuple[torch.device, list[torch.device] | None]:
    """Where `--device auto` puts a model on these GPUs: all on the first when it fits there,
    else its blocks spread over them (the embeddings and unembedding on the first)."""
    blocks, resident = block_bytes(ckpt, dtype)
    first = torch.device(free[0][0])
    need = resident + sum(blocks)
    if len(free) == 1 or need <= max(0, int(free[0][1] * GPU_HEADROOM) - ACTIVATION_RESERVE):
        return first, None
    return first, [torch.device(d) for d in plan_device_map(blocks, resident, free)]


# ---------------------------------------------------------------------------------------------
# Loading


def load_model(
    source: str | os.PathLike[str] | Checkpoint,
    *,
    device: str = "auto",
    dtype: str = "auto",
    stream: bool = False,
    gpu_free: Sequence[tuple[str, int]] | None = None,
) -> LoadedModel:
    """Load weights onto the device. stream=True keeps only the embeddings and the final norm
    resident and brings each block's weights in from the memory-mapped checkpoint while it runs
    (peak device memory ~ one block + embeddings + activations). `gpu_free` overrides the
    measured free memory per GPU for `--device auto` (tests)."""
    ckpt = source if isinstance(source, Checkpoint) else open_checkpoint(Path(source))
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev, ckpt.dtype)
    device_map = None
    if (device or "auto").strip().lower() == "auto" and not stream and (gpu_free is not None or dev.type == "cuda"):
        free = list(gpu_free) if gpu_free is not None else cuda_free_memory()
        if free:
            dev, device_map = auto_placement(ckpt, dt, free)
            if device_map is not None and len(set(device_map)) == 1 and device_map[0] == dev:
                device_map = None
    with torch.device("meta"):
        model = Transformer(ckpt.config, qkv_layout=ckpt.arch.attention_layout)
    if stream:
        resident = [n for n in ckpt.plan if not n.startswith("blocks.")]
        load_weights(model, ckpt, dev, dt, names=resident)
        model.streamer = BlockStreamer(model, ckpt, dev, dt)
    else:
        load_weights(model, ckpt, dev, dt, device_map=device_map)
        if device_map is not None:
            for block, block_dev in zip(model.blocks, device_map, strict=True):
                block.device = block_dev
    model.eval()
    model.requires_grad_(False)
    tokenizer = None
    if ckpt.tokenizer_path is not None:
        tokenizer = Tokenizer.from_file(ckpt.tokenizer_path, bos_id=ckpt.config.bos_token_id)
    return LoadedModel(ckpt, model, tokenizer, dev, dt, tuple(device_map) if device_map is not None else None)


def load_weights(
    model: Transformer,
    ckpt: Checkpoint,
    device: torch.device,
    dtype: torch.dtype,
    *,
    names: list[str] | None = None,
    device_map: Sequence[torch.device] | None = None,
) -> None:
    """Fill the parameters of a (meta) Transformer from the checkpoint, one tensor at a time:
    a view of the mapped file, moved to its device, then converted there (a no-op on the CPU in
    the checkpoint's dtype). Off the CPU the file is unmapped after each block, so the host
    never holds more than one block's pages next to the device copy."""
    group = None
    for canonical in ckpt.plan if names is None else names:
        target = device
        if device_map is not None and canonical.startswith("blocks."):
            target = device_map[int(canonical.split(".", 2)[1])]
        if target.type != "cpu":
            this = canonical.split(".", 2)[1] if canonical.startswith("blocks.") else None
            if this != group:
                ckpt.close()  # the previous block's tensors are on the device: drop its mapped pages
                group = this
        value = ckpt.load_param(canonical).to(device=target)
        if value.dtype != dtype:
            value = value.to(dtype)
        owner, attr = _owner(model, canonical)
        setattr(owner, attr, torch.nn.Parameter(value, requires_grad=False))
    if group is not None or device.type != "cpu":
        ckpt.close()
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
