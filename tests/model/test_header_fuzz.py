"""The safetensors header reader against arbitrary headers: a CheckpointError or a valid header, nothing else."""

from __future__ import annotations

import json
import struct
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_interp.errors import CheckpointError
from tui_interp.model.safetensors_header import read_header

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2**40) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
tensor_entries = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from(["F32", "F16", "BF16", "I64", "U8", "X9", 3]),
        "shape": st.lists(st.integers(-1, 5), max_size=3) | json_values,
        "data_offsets": st.lists(st.integers(-1, 200), min_size=0, max_size=3) | json_values,
    }
)
headers = st.dictionaries(st.text(max_size=10), tensor_entries | json_values, max_size=5)


def _write(tmp: Path, header_bytes: bytes, data: bytes, declared: int | None = None) -> Path:
    p = tmp / "x.safetensors"
    n = len(header_bytes) if declared is None else declared
    p.write_bytes(struct.pack("<Q", n) + header_bytes + data)
    return p


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=headers, data=st.binary(max_size=64), declared=st.none() | st.integers(0, 2**64 - 1))
def test_random_headers_never_crash(header, data: bytes, declared: int | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), json.dumps(header).encode(), data, declared)
        try:
            parsed = read_header(path)
        except CheckpointError as e:
            assert str(path) in str(e) and "\n" not in str(e)
            return
        # accepted: then it really is consistent
        pos = 0
        for info in sorted(parsed.tensors.values(), key=lambda t: t.begin):
            assert info.begin == pos
            pos = info.end
        assert pos == parsed.file_size - parsed.data_start


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=80))
def test_random_bytes_never_crash(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "y.safetensors"
        p.write_bytes(raw)
        try:
            read_header(p)
        except CheckpointError:
            pass


@settings(max_examples=100, deadline=None)
@given(shapes=st.lists(st.lists(st.integers(0, 4), max_size=3), min_size=1, max_size=4))
def test_valid_headers_round_trip(shapes: list[list[int]]) -> None:
    header, pos = {}, 0
    for i, shape in enumerate(shapes):
        n = 4
        for d in shape:
            n *= d
        header[f"t{i}"] = {"dtype": "F32", "shape": shape, "data_offsets": [pos, pos + n]}
        pos += n
    with tempfile.TemporaryDirectory() as tmp:
        parsed = read_header(_write(Path(tmp), json.dumps(header).encode(), bytes(pos)))
    assert {k: list(v.shape) for k, v in parsed.tensors.items()} == {f"t{i}": s for i, s in enumerate(shapes)}
