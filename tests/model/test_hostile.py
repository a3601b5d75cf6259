"""Hostile checkpoints (issue 13, round two): every case ends quickly with one line, exit 2, never a traceback.

The CLI cases run `inspect` (headers only) on a copy of a tiny model with one thing broken; the
property tests throw generated values at every numeric config field of every family and at the
integers of safetensors headers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from tui_interp.cli import app
from tui_interp.errors import CheckpointError, TuiInterpError
from tui_interp.model import load_model, open_checkpoint
from tui_interp.model.safetensors_header import read_header

runner = CliRunner()
BIG = "9" * 5000  # more digits than Python converts from text by default
SECONDS = 10  # every case must end well within this


@contextmanager
def bounded(seconds: int = SECONDS) -> Iterator[None]:
    """Fail (instead of hanging the suite) if what runs inside blocks, e.g. on a FIFO."""

    def expired(*_: object) -> None:
        raise TimeoutError(f"took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def inspect_fails(path: Path, *fragments: str) -> str:
    t0 = time.perf_counter()
    with bounded():
        result = runner.invoke(app, ["inspect", str(path)])
    assert time.perf_counter() - t0 < SECONDS
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    err = result.stderr.strip()
    assert "Traceback" not in result.output and len(err.splitlines()) == 1 and err.startswith("error: "), err
    for f in fragments:
        assert f in err, (f, err)
    assert result.stdout == ""
    return err


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def set_config_text(d: Path, key: str, raw: str, *, nested: str | None = None) -> None:
    """Put `raw` (JSON text, possibly not producible by json.dumps) as the value of `key`."""
    cfg = json.loads((d / "config.json").read_text())
    target = cfg[nested] if nested else cfg
    target[key] = "@@VALUE@@"
    (d / "config.json").write_text(json.dumps(cfg).replace('"@@VALUE@@"', raw))


@pytest.fixture
def gpt2(hf_dirs: dict[str, Path], tmp_path: Path) -> Path:
    return copy_model(hf_dirs["gpt2"], tmp_path / "gpt2")


@pytest.fixture
def llama(hf_dirs: dict[str, Path], tmp_path: Path) -> Path:
    return copy_model(hf_dirs["llama"], tmp_path / "llama")


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("1000000000", "holds tensors for 3 layer"),  # used to build a billion-layer weight plan
        ("1e999", "must be an integer"),  # used to raise OverflowError
        ("1.7", "must be an integer, got 1.7"),  # used to be read as 1
        ("true", "must be an integer, got true"),
        ("0", "n_layer must be in 1.."),
        ("-3", "n_layer must be in 1.."),
        (BIG, "invalid JSON"),  # Python's int-string limit
        ('"12"', "must be an integer, got '12'"),
    ],
)
def test_gpt2_layer_count(gpt2: Path, raw: str, fragment: str) -> None:
    set_config_text(gpt2, "n_layer", raw)
    inspect_fails(gpt2, "config.json", fragment)


def test_zero_heads(gpt2: Path) -> None:
    set_config_text(gpt2, "n_head", "0")  # used to raise ZeroDivisionError
    inspect_fails(gpt2, "config.json", "n_head")


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "0", "-1e-5"])
def test_norm_epsilon(gpt2: Path, raw: str) -> None:
    set_config_text(gpt2, "layer_norm_epsilon", raw)  # NaN/Inf used to be accepted: every logit 0
    inspect_fails(gpt2, "config.json", "layer_norm_epsilon")


def test_huge_int_in_safetensors_header(gpt2: Path) -> None:
    p = gpt2 / "model.safetensors"
    raw = p.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = raw[8 : 8 + n].decode()
    first = header.index('"shape":[') + len('"shape":[')
    hostile = (header[:first] + BIG + "," + header[first:]).encode()
    p.write_bytes(struct.pack("<Q", len(hostile)) + hostile + raw[8 + n :])
    inspect_fails(gpt2, "model.safetensors", "corrupt header")


def test_large_int_dimension_in_header(gpt2: Path) -> None:
    """An integer Python can parse but no tensor has (a zero-size tensor with a 10^300 dimension)."""
    p = gpt2 / "model.safetensors"
    raw = p.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    end = max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
    header["zzz"] = {"dtype": "F32", "shape": [10**300, 0], "data_offsets": [end, end]}
    h = json.dumps(header).encode()
    p.write_bytes(struct.pack("<Q", len(h)) + h + data)
    inspect_fails(gpt2, "model.safetensors", "invalid shape", "0..2^40")


@pytest.mark.parametrize("values", [[1, 2], [None], [{"a": 1}], [""]])
def test_index_with_non_string_shards(llama: Path, values: list) -> None:
    names = list(load_file(llama / "model.safetensors"))
    weight_map = {n: values[i % len(values)] for i, n in enumerate(names)}
    (llama / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    inspect_fails(llama, "model.safetensors.index.json", "must be a shard file name")


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 0, "high_freq_factor": 4.0, "original_max_position_embeddings": 16},
         "low_freq_factor must be positive"),
        ({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 16},
         "low_freq_factor < high_freq_factor"),
        ({"rope_type": "linear", "factor": 0}, "factor must be positive"),
        ({"rope_type": "linear", "factor": -2.0}, "factor must be positive"),
        ({"rope_type": "linear"}, "no factor"),
        ({"rope_type": "dynamic", "factor": float("inf")}, "factor must be a finite number"),
        ({"rope_type": "yarn", "factor": 4.0, "rope_theta": 1.0}, "rope_theta > 1"),
        ({"rope_type": "longrope", "short_factor": [1.0], "long_factor": [1.0]}, "short_factor must be a list of 4"),
        ({"rope_type": "nope"}, "'nope' is not supported"),
        ({"rope_theta": 0}, "rope_theta must be positive"),
        ({"partial_rotary_factor": 1.5}, "partial_rotary_factor must be at most 1"),
    ],
)
def test_rope_parameters(llama: Path, params: dict, fragment: str) -> None:
    cfg = json.loads((llama / "config.json").read_text())
    cfg["rope_parameters"] = {"rope_theta": 10000.0, **params}
    (llama / "config.json").write_text(json.dumps(cfg))
    inspect_fails(llama, "config.json", fragment)


@pytest.mark.parametrize(("value", "fragment"), [(-4, "sliding_window must be in 1.."), (0, "sliding_window must be in 1.."), (2.5, "must be an integer")])
def test_sliding_window(hf_dirs: dict[str, Path], tmp_path: Path, value: object, fragment: str) -> None:
    d = copy_model(hf_dirs["mistral"], tmp_path / "mistral")
    set_config_text(d, "sliding_window", json.dumps(value))
    inspect_fails(d, "config.json", fragment)


def test_token_ids_outside_the_vocabulary_are_dropped(llama: Path) -> None:
    set_config_text(llama, "eos_token_id", BIG[:4000])  # parseable, but no vocabulary has it
    assert open_checkpoint(llama).config.eos_token_id is None


# ---- not a regular file where one is expected: fail at once, never block


@pytest.mark.parametrize("name", ["model.safetensors", "config.json", "tokenizer.json", "model.safetensors.index.json"])
@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_not_a_regular_file(gpt2_dir: Path, tmp_path: Path, name: str, kind: str) -> None:
    d = copy_model(gpt2_dir, tmp_path / "m")
    target = d / name
    if target.exists():
        target.unlink()
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
    what = "named pipe" if kind == "fifo" else "directory"
    inspect_fails(d, name, what)


def test_a_fifo_given_as_the_checkpoint(tmp_path: Path) -> None:
    fifo = tmp_path / "weights.safetensors"
    os.mkfifo(fifo)
    inspect_fails(fifo, "weights.safetensors", "named pipe")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_device_given_as_the_checkpoint() -> None:
    inspect_fails(Path("/dev/zero"), "/dev/zero", "is a device")


def test_a_fifo_as_a_shard(llama: Path) -> None:
    names = list(load_file(llama / "model.safetensors"))
    (llama / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {n: "model-00001-of-00001.safetensors" for n in names}}))
    os.mkfifo(llama / "model-00001-of-00001.safetensors")
    inspect_fails(llama, "model-00001-of-00001.safetensors", "named pipe")


# ---- non-finite weights: verify fails (exit 1) and says why


def test_verify_fails_on_nonfinite_logits(gpt2_dir: Path, tmp_path: Path) -> None:
    d = copy_model(gpt2_dir, tmp_path / "nan")
    sd = load_file(d / "model.safetensors")
    sd["transformer.h.0.mlp.c_fc.weight"][0, 0] = float("nan")
    save_file(sd, d / "model.safetensors", metadata={"format": "pt"})
    result = runner.invoke(app, ["verify", str(d), "--json"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)  # valid JSON: no NaN in it
    assert doc["ok"] is False and doc["nonfinite_logits"] > 0 and "NaN or infinite" in doc["verdict"]
    assert doc["max_abs_logit_diff"] is None
    result = runner.invoke(app, ["verify", str(d)])
    assert result.exit_code == 1 and "MISMATCH" in result.stdout


# ---- properties


def _numeric_fields(cfg: dict) -> list[tuple[str | None, str]]:
    """(nested dict key or None, key) of every number in the config, plus keys read when present."""
    out: list[tuple[str | None, str]] = [(None, k) for k, v in cfg.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    out += [(None, k) for k in ("head_dim", "sliding_window", "partial_rotary_factor", "rope_theta", "n_inner") if k not in cfg]
    rope = cfg.get("rope_parameters")
    if isinstance(rope, dict):
        for k, v in rope.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out.append(("rope_parameters", k))
    return out


HOSTILE = st.one_of(
    st.booleans(),
    st.integers(-3, 3),
    st.integers(min_value=2**31, max_value=10**40),
    st.sampled_from([10**9, 2**63, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.5, 1.7, 1e-30, 1e300]),
    st.just(BIG),
    st.text(max_size=4),
    st.none(),
    st.lists(st.integers(-2, 2), max_size=3),
    st.just({}),
)


def _json_text(v: object) -> str:
    if v == BIG:
        return BIG
    return json.dumps(v)  # NaN / Infinity as Python writes them (json.loads reads them back)


@pytest.fixture(scope="module")
def family_configs(hf_dirs: dict[str, Path]) -> dict[str, dict]:
    return {f: json.loads((d / "config.json").read_text()) for f, d in hf_dirs.items()}


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_config_value_opens_or_fails_in_one_line(hf_dirs: dict[str, Path], family_configs: dict[str, dict], data: st.DataObject) -> None:
    family = data.draw(st.sampled_from(sorted(hf_dirs)))
    base = family_configs[family]
    edits = data.draw(st.lists(st.tuples(st.sampled_from(_numeric_fields(base)), HOSTILE), min_size=1, max_size=3))
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        os.symlink(hf_dirs[family] / "model.safetensors", d / "model.safetensors")
        cfg = json.loads(json.dumps(base))
        raws = {}
        for i, ((nested, key), value) in enumerate(edits):
            target = cfg[nested] if nested else cfg
            target[key] = f"@@{i}@@"
            raws[f'"@@{i}@@"'] = _json_text(value)
        text = json.dumps(cfg)
        for marker, raw in raws.items():
            text = text.replace(marker, raw)
        (d / "config.json").write_text(text)
        with bounded():
            try:
                ckpt = open_checkpoint(d)
            except TuiInterpError as e:
                msg = str(e)
                assert "\n" not in msg and len(msg) < 600, msg
                assert str(d / "config.json") in msg or str(d / "model.safetensors") in msg, msg
                return
            # it opened: then it also loads and runs, or fails in one line
            try:
                lm = load_model(ckpt, device="cpu")
                lm.model(torch.tensor([[1, 2, 3]]))
            except TuiInterpError as e:
                assert "\n" not in str(e)


def _header_with(value: object, where: str) -> bytes:
    header = {"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}
    if where == "shape":
        header["a"]["shape"] = ["@@"]
    elif where == "offset":
        header["a"]["data_offsets"] = [0, "@@"]
    else:
        header["b"] = {"dtype": "F32", "shape": ["@@"], "data_offsets": [16, 16]}
    return json.dumps(header).replace('"@@"', value if isinstance(value, str) else json.dumps(value)).encode()


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(st.integers(), st.integers(min_value=2**60), st.just(BIG), st.just("-" + BIG)),
       where=st.sampled_from(["shape", "offset", "extra"]))
def test_header_integers_of_any_size(value: object, where: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "x.safetensors"
        h = _header_with(value, where)
        p.write_bytes(struct.pack("<Q", len(h)) + h + bytes(16))
        try:
            with bounded():
                read_header(p)
        except CheckpointError as e:
            assert str(p) in str(e) and "\n" not in str(e) and len(str(e)) < 400
