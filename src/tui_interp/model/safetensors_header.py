"""Read and validate a safetensors header without reading any tensor data.

The format: 8 bytes little-endian header length N, then N bytes of UTF-8 JSON mapping tensor
names to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the byte after
the header) plus an optional "__metadata__" of string to string. We check all of it, so that a
corrupt file fails here with a message naming the file and the problem, before any forward.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from tui_interp.errors import CheckpointError
from tui_interp.fileio import regular_file

# safetensors' own limit on header size (100 MB): anything bigger is not a real header.
MAX_HEADER_BYTES = 100_000_000
MAX_DIM = 2**40  # no tensor dimension is larger (torch indexes with int64; files are far smaller)

DTYPE_BYTES: dict[str, int] = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
    "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8,
}
FLOAT_DTYPES = frozenset({"F64", "F32", "F16", "BF16"})


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int  # byte offset from the start of the data section
    end: int
    file: Path

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class SafetensorsHeader:
    path: Path
    header_bytes: bytes  # the raw JSON, used for the fingerprint
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]
    data_start: int  # 8 + header length
    file_size: int


def read_header(path: Path) -> SafetensorsHeader:
    """Parse and validate the header of one .safetensors file. Reads only the header bytes."""
    path = regular_file(Path(path), "checkpoint file (.safetensors)", error=CheckpointError)
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            prefix = f.read(8)
            if len(prefix) < 8:
                raise CheckpointError(f"{path}: not a safetensors file (only {size} bytes, no header)")
            (n,) = struct.unpack("<Q", prefix)
            if n > MAX_HEADER_BYTES:
                raise CheckpointError(
                    f"{path}: not a safetensors file (header length {n} is implausible; is this a pickle or another format?)"
                )
            if 8 + n > size:
                raise CheckpointError(f"{path}: truncated or corrupt: header length {n} is larger than the file ({size} bytes)")
            raw = f.read(n)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read: {e.strerror or e}") from e
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise CheckpointError(f"{path}: not a safetensors file (header is not valid JSON: {_short(e)})") from e
    except ValueError as e:  # an integer of more digits than Python converts
        raise CheckpointError(f"{path}: corrupt header: {_short(e)}") from e
    if not isinstance(doc, dict):
        raise CheckpointError(f"{path}: corrupt header: expected a JSON object, got {type(doc).__name__}")

    metadata_raw = doc.pop("__metadata__", None) or {}
    if not isinstance(metadata_raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata_raw.items()):
        raise CheckpointError(f"{path}: corrupt header: __metadata__ must map strings to strings")

    data_start = 8 + n
    data_len = size - data_start
    tensors: dict[str, TensorInfo] = {}
    for name, info in doc.items():
        tensors[name] = _tensor_info(path, name, info, data_len)
    _check_layout(path, tensors, data_len)
    return SafetensorsHeader(path, raw, tensors, dict(metadata_raw), data_start, size)


def _tensor_info(path: Path, name: str, info: object, data_len: int) -> TensorInfo:
    if not isinstance(info, dict):
        raise CheckpointError(f"{path}: corrupt header: entry {_name(name)} is not an object")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
        raise CheckpointError(f"{path}: tensor {_name(name)} has unknown dtype {_value(dtype)}")
    if not isinstance(shape, list) or len(shape) > 16 or not all(_is_nat(d) and d <= MAX_DIM for d in shape):
        raise CheckpointError(f"{path}: tensor {_name(name)} has an invalid shape {_value(shape)}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_nat(o) for o in offsets)):
        raise CheckpointError(f"{path}: tensor {_name(name)} has invalid data_offsets {_value(offsets)}")
    begin, end = offsets
    if end < begin:
        raise CheckpointError(f"{path}: tensor {_name(name)} has data_offsets {_value(offsets)} that end before they begin")
    if end > data_len:
        raise CheckpointError(
            f"{path}: truncated or corrupt: tensor {_name(name)} ends at byte {_value(end)} of a {data_len}-byte data section"
        )
    expected = math.prod(shape) * DTYPE_BYTES[dtype]
    if end - begin != expected:
        raise CheckpointError(
            f"{path}: tensor {_name(name)} occupies {end - begin} bytes but {dtype} {tuple(shape)} needs {expected}"
        )
    return TensorInfo(name, dtype, tuple(shape), begin, end, path)


def _check_layout(path: Path, tensors: dict[str, TensorInfo], data_len: int) -> None:
    """Tensors must not overlap and must tile the data section exactly, as safetensors requires."""
    spans = sorted((t.begin, t.end, t.name) for t in tensors.values())
    pos = 0
    for begin, end, name in spans:
        if begin < pos:
            raise CheckpointError(f"{path}: corrupt header: tensor {_name(name)} overlaps the previous tensor (bytes {begin}..{pos})")
        if begin > pos:
            raise CheckpointError(f"{path}: corrupt header: {begin - pos} unaccounted bytes before tensor {_name(name)}")
        pos = end
    if pos != data_len:
        raise CheckpointError(
            f"{path}: corrupt: the header accounts for {pos} data bytes but the file holds {data_len}"
        )


def _is_nat(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _short(e: Exception) -> str:
    text = " ".join(str(e).split())
    return text if len(text) < 120 else text[:117] + "..."


def _name(name: str) -> str:
    return repr(name if len(name) <= 80 else name[:77] + "...")


def _value(v: object) -> str:
    """A header value in a message: short, one line, never a 4,000-digit number written out."""
    if isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) and x.bit_length() <= 64 for x in v) and len(v) <= 16:
        return repr(v)
    if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 64:
        return f"(an integer of about {int(v.bit_length() * 0.30103) + 1} digits)"
    if isinstance(v, list):
        return f"(a list of {len(v)} values, not all integers in 0..2^40)"
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."
