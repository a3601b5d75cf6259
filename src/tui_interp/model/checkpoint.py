"""Open a checkpoint by reading headers only, validate it against its config, and read tensors lazily.

Layouts: a HuggingFace directory (config.json + model.safetensors, or sharded
model-0000x-of-0000y.safetensors + model.safetensors.index.json), or a bare .safetensors file
described by a sibling config.json or by a "config" entry in its own metadata.
Pickle files (pytorch_model.bin, *.pt) are refused, never loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError, safe_open

from tui_interp.errors import CheckpointError, ConfigError, TokenizerError, TuiInterpError
from tui_interp.fileio import regular_file
from tui_interp.model.architectures import Architecture, Source, get_architecture, layers_present, translate_config, weight_plan
from tui_interp.model.config import ModelConfig
from tui_interp.model.safetensors_header import FLOAT_DTYPES, SafetensorsHeader, TensorInfo, read_header

if TYPE_CHECKING:
    import torch

# torch is imported only where tensors are read: `inspect` (headers only) stays fast.

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
INDEX_NAME = "model.safetensors.index.json"
FINGERPRINT_SAMPLES = 8  # 4 KiB data blocks per file mixed into the fingerprint
FINGERPRINT_BLOCK = 4096

_DTYPE_NAMES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}


@dataclass
class Checkpoint:
    """A validated, header-only view of a model checkpoint. No tensor data is read until asked."""

    path: Path  # what the user gave: a directory or a .safetensors file
    root: Path  # the directory holding the checkpoint files
    name: str
    files: list[Path]
    tensors: dict[str, TensorInfo]
    hf_config: dict[str, Any]
    config: ModelConfig
    arch: Architecture
    plan: dict[str, Source]
    fingerprint: str
    tokenizer_path: Path | None
    metadata: dict[str, str]
    _handles: dict[Path, Any] = field(default_factory=dict, repr=False)

    @property
    def n_params(self) -> int:
        """Parameters actually stored (from the headers), excluding known buffers."""
        used = {n for src in self.plan.values() for n in src.names}
        return sum(self.tensors[n].numel for n in used)

    @property
    def dtype(self) -> str:
        """The dtype the weights are stored in (the most common float dtype)."""
        counts: dict[str, int] = {}
        for src in self.plan.values():
            for n in src.names:
                t = self.tensors[n]
                counts[t.dtype] = counts.get(t.dtype, 0) + t.numel
        best = max(counts, key=lambda k: counts[k]) if counts else "F32"
        return _DTYPE_NAMES.get(best, best)

    @property
    def size_bytes(self) -> int:
        return sum(self.tensors[n].end - self.tensors[n].begin for src in self.plan.values() for n in src.names)

    def read(self, name: str) -> torch.Tensor:
        """Read one checkpoint tensor (by its checkpoint name) from the memory-mapped file."""
        info = self.tensors[name]
        handle = self._handles.get(info.file)
        try:
            if handle is None:
                handle = safe_open(str(info.file), framework="pt", device="cpu")
                self._handles[info.file] = handle
            return handle.get_tensor(name)
        except (SafetensorError, OSError, RuntimeError) as e:
            raise CheckpointError(f"{info.file}: cannot read tensor {name!r}: {e}") from e

    def load_param(self, canonical: str) -> torch.Tensor:
        """One canonical parameter (nn.Linear layout) as a view of its memory-mapped source: no copy."""
        src = self.plan[canonical]
        x = self.read(src.names[0])
        if src.transform == "":
            return x
        if src.transform == "t":
            return x.t()
        if src.transform == "rows" and src.rows is not None:
            return x[src.rows[0] : src.rows[1]]
        raise CheckpointError(f"internal: unknown weight transform {src.transform!r}")

    def close(self) -> None:
        self._handles.clear()


def open_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Open and validate a checkpoint, reading headers and config only."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or directory")
    if path.is_dir():
        root = path
        files = _find_weight_files(path)
        config_path = path / "config.json"
        if not _exists(config_path):
            raise ConfigError(f"{path}: no config.json (a HuggingFace model directory needs one)")
        hf_config = _read_json(config_path, ConfigError, "config")
        name = path.resolve().name
        where = str(config_path)
    else:
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise CheckpointError(_pickle_message(path))
        regular_file(path, "checkpoint file (.safetensors)", error=CheckpointError)
        root = path.parent
        files = [path]
        name = path.stem
        hf_config, where = {}, ""
    headers = [read_header(f) for f in files]
    metadata: dict[str, str] = {}
    for h in headers:
        metadata.update(h.metadata)
    if not path.is_dir():
        hf_config, where = _bare_file_config(path, metadata)

    tensors: dict[str, TensorInfo] = {}
    for h in headers:
        for tname, info in h.tensors.items():
            if tname in tensors:
                raise CheckpointError(f"{h.path}: tensor {tname!r} is also in {tensors[tname].file.name}")
            tensors[tname] = info
    arch = get_architecture(hf_config.get("model_type"), where)
    _, config = translate_config(hf_config, where, max_layers=layers_present(arch, set(tensors)))
    config = config.replace(extra={"name": name})
    plan, ignored = weight_plan(arch, config, set(tensors))
    _validate(files, tensors, plan, ignored)
    tokenizer = root / "tokenizer.json"
    if _exists(tokenizer):
        regular_file(tokenizer, "tokenizer file (tokenizer.json)", error=TokenizerError)
    return Checkpoint(
        path=path,
        root=root,
        name=name,
        files=files,
        tensors=tensors,
        hf_config=dict(hf_config),
        config=config,
        arch=arch,
        plan=plan,
        fingerprint=_fingerprint(headers),
        tokenizer_path=tokenizer if _exists(tokenizer) else None,
        metadata=metadata,
    )


def _exists(p: Path) -> bool:
    """Whether anything is at `p` (a file, a FIFO, a directory...): what is there is checked next."""
    return os.path.lexists(p)


def _find_weight_files(d: Path) -> list[Path]:
    index = d / INDEX_NAME
    if _exists(index):
        doc = _read_json(index, CheckpointError, "index")
        weight_map = doc.get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise CheckpointError(f"{index}: no weight_map (expected {{tensor name: shard file}})")
        for tname, shard in weight_map.items():
            if not isinstance(shard, str) or not shard:
                raise CheckpointError(f"{index}: weight_map[{tname[:60]!r}] must be a shard file name, got {_describe(shard)}")
        files = []
        for s in sorted(set(weight_map.values())):
            f = d / s
            if "/" in s or "\\" in s or s.startswith(".") or not _exists(f):
                raise CheckpointError(f"{index}: shard {s[:80]!r} is missing from {d}")
            files.append(regular_file(f, "checkpoint shard (.safetensors)", error=CheckpointError))
        return files
    single = d / "model.safetensors"
    if _exists(single):
        return [regular_file(single, "checkpoint file (.safetensors)", error=CheckpointError)]
    found = sorted(d.glob("*.safetensors"))
    if found:
        return [regular_file(p, "checkpoint file (.safetensors)", error=CheckpointError) for p in found]
    pickles = sorted(p for p in d.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise CheckpointError(_pickle_message(pickles[0]))
    raise CheckpointError(f"{d}: no .safetensors weights found")


def _pickle_message(p: Path) -> str:
    return (
        f"{p}: pickle checkpoints are never loaded (they can run arbitrary code). "
        "If you trust it, convert it once with transformers: "
        "AutoModelForCausalLM.from_pretrained(DIR).save_pretrained(DIR, safe_serialization=True)"
    )


MAX_JSON_BYTES = 50_000_000  # a config or index larger than this is not one


def _read_json(p: Path, err: type[TuiInterpError], what: str) -> dict[str, Any]:
    """A JSON object from a regular file (checked before opening: a FIFO never blocks)."""
    regular_file(p, f"{what} file (JSON)", error=err)  # type: ignore[arg-type]
    try:
        if os.path.getsize(p) > MAX_JSON_BYTES:
            raise err(f"{p}: {os.path.getsize(p):,} bytes is too large for a {what} file")
        doc = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise err(f"{p}: cannot read: {e.strerror or e}") from e
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise err(f"{p}: invalid JSON: {_one_line(e)}") from e
    except ValueError as e:  # e.g. an integer of more digits than Python converts
        raise err(f"{p}: invalid JSON: {_one_line(e)}") from e
    if not isinstance(doc, dict):
        raise err(f"{p}: invalid {what}: expected a JSON object")
    return doc


def _describe(v: object) -> str:
    """A JSON value in a message: its kind, never its (possibly enormous) text."""
    if isinstance(v, str):
        return repr(v[:40])
    return "null" if v is None else f"a JSON {type(v).__name__}"


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) < 160 else text[:157] + "..."


def _bare_file_config(path: Path, metadata: Mapping[str, str]) -> tuple[dict[str, Any], str]:
    sibling = path.parent / "config.json"
    if _exists(sibling):
        return _read_json(sibling, ConfigError, "config"), str(sibling)
    if "config" in metadata:
        try:
            doc = json.loads(metadata["config"])
        except (json.JSONDecodeError, RecursionError, ValueError) as e:
            raise ConfigError(f"{path}: the 'config' metadata entry is not valid JSON: {_one_line(e)}") from e
        if isinstance(doc, dict):
            return doc, f"{path} (metadata)"
        raise ConfigError(f"{path}: the 'config' metadata entry is not a JSON object")
    raise ConfigError(f"{path}: no config: put a config.json beside it, or a 'config' entry in its metadata")


def _validate(files: list[Path], tensors: dict[str, TensorInfo], plan: dict[str, Source], ignored: set[str]) -> None:
    where = files[0].parent if len(files) > 1 else files[0]
    missing = [n for src in plan.values() for n in src.names if n not in tensors]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise CheckpointError(f"{where}: missing tensors for the config: {', '.join(missing[:5])}{more}")
    for _canonical, src in plan.items():
        for n, shape in zip(src.names, src.shapes, strict=True):
            t = tensors[n]
            if t.shape != shape:
                raise CheckpointError(f"{t.file}: tensor {n!r} has shape {list(t.shape)}, the config needs {list(shape)}")
            if t.dtype not in FLOAT_DTYPES:
                raise CheckpointError(f"{t.file}: tensor {n!r} has dtype {t.dtype}; weights must be floating point")
    used = {n for src in plan.values() for n in src.names}
    unexpected = sorted(set(tensors) - used - ignored)
    if unexpected:
        more = f" and {len(unexpected) - 5} more" if len(unexpected) > 5 else ""
        raise CheckpointError(
            f"{where}: unexpected tensors the config does not describe: {', '.join(unexpected[:5])}{more}"
        )


def _fingerprint(headers: list[SafetensorsHeader]) -> str:
    """Hash of every file's header plus a few sampled data blocks.

    Headers alone (as DESIGN.md first said) cannot tell two trainings of one architecture
    apart: their headers are byte-identical. Eight 4 KiB blocks per file make it so at the cost
    of a few reads.
    """
    h = hashlib.sha256()
    for hdr in sorted(headers, key=lambda x: x.path.name):
        h.update(hdr.path.name.encode())
        h.update(hdr.header_bytes)
        data_len = hdr.file_size - hdr.data_start
        with open(hdr.path, "rb") as f:
            for i in range(FINGERPRINT_SAMPLES):
                offset = hdr.data_start + (data_len * i) // FINGERPRINT_SAMPLES
                f.seek(offset)
                h.update(f.read(min(FINGERPRINT_BLOCK, hdr.file_size - offset)))
    return h.hexdigest()[:16]

