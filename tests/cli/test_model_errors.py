"""Every bad input: a one-line message naming the file and the problem, exit 2, no traceback."""

from __future__ import annotations

import json
import pickle
import shutil
import struct
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from tui_interp.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def assert_bad_input(result, *fragments: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    err = result.stderr.strip()
    assert "Traceback" not in result.output and "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    for f in fragments:
        assert f in err, (f, err)
    assert result.stdout == ""


@pytest.fixture
def model_dir(gpt2_dir: Path, tmp_path: Path) -> Path:
    d = tmp_path / "m"
    shutil.copytree(gpt2_dir, d)
    return d


def header_of(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def write_with_header(path: Path, header: dict, data: bytes) -> None:
    h = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(h)) + h + data)


def test_not_a_safetensors_file(model_dir: Path) -> None:
    (model_dir / "model.safetensors").write_text("hello, I am not a checkpoint at all")
    assert_bad_input(invoke("inspect", model_dir), "model.safetensors", "not a safetensors file")


def test_empty_file(model_dir: Path) -> None:
    (model_dir / "model.safetensors").write_bytes(b"")
    assert_bad_input(invoke("inspect", model_dir), "model.safetensors", "no header")


def test_truncated_file(model_dir: Path) -> None:
    p = model_dir / "model.safetensors"
    p.write_bytes(p.read_bytes()[:-100])
    assert_bad_input(invoke("run", model_dir, "--tokens", "1,2"), "model.safetensors", "truncated")


def test_header_length_larger_than_file(model_dir: Path) -> None:
    p = model_dir / "model.safetensors"
    raw = p.read_bytes()
    p.write_bytes(struct.pack("<Q", len(raw) * 2) + raw[8:])
    assert_bad_input(invoke("inspect", model_dir), "model.safetensors", "header length", "larger than the file")


def test_header_json_invalid(model_dir: Path) -> None:
    p = model_dir / "model.safetensors"
    raw = p.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    p.write_bytes(raw[:8] + b"{" + b"x" * (n - 1) + raw[8 + n :])  # same length, garbage JSON
    assert_bad_input(invoke("inspect", model_dir), "model.safetensors", "not valid JSON")


def test_offsets_out_of_range(model_dir: Path) -> None:
    p = model_dir / "model.safetensors"
    header, data = header_of(p)
    name = next(k for k in header if k != "__metadata__")
    b, e = header[name]["data_offsets"]
    header[name]["data_offsets"] = [b + len(data), e + len(data)]
    write_with_header(p, header, data)
    assert_bad_input(invoke("inspect", model_dir), "model.safetensors", repr(name))


def test_offsets_overlapping(model_dir: Path) -> None:
    p = model_dir / "model.safetensors"
    header, data = header_of(p)
    entries = sorted((v["data_offsets"][0], k) for k, v in header.items() if k != "__metadata__")
    _first, second = entries[0][1], entries[1][1]
    size = header[second]["data_offsets"][1] - header[second]["data_offsets"][0]
    header[second]["data_offsets"] = [0, size]  # lands on top of the first tensor
    write_with_header(p, header, data)
    assert_bad_input(invoke("inspect", model_dir), "model.safetensors", "overlaps")


def test_tensor_missing(model_dir: Path) -> None:
    from safetensors.torch import load_file, save_file

    sd = load_file(model_dir / "model.safetensors")
    del sd["transformer.h.1.mlp.c_fc.weight"]
    save_file(sd, model_dir / "model.safetensors")
    assert_bad_input(invoke("inspect", model_dir), "missing tensors", "transformer.h.1.mlp.c_fc.weight")


def test_tensor_wrong_shape(model_dir: Path) -> None:
    from safetensors.torch import load_file, save_file

    sd = load_file(model_dir / "model.safetensors")
    sd["transformer.h.0.attn.c_proj.weight"] = torch.zeros(32, 31)
    save_file(sd, model_dir / "model.safetensors")
    assert_bad_input(invoke("run", model_dir, "--tokens", "1"), "transformer.h.0.attn.c_proj.weight", "shape [32, 31]", "needs [32, 32]")


def test_unexpected_tensor(model_dir: Path) -> None:
    from safetensors.torch import load_file, save_file

    sd = load_file(model_dir / "model.safetensors")
    sd["transformer.h.7.attn.c_proj.weight"] = torch.zeros(2)
    save_file(sd, model_dir / "model.safetensors")
    assert_bad_input(invoke("inspect", model_dir), "unexpected tensors", "transformer.h.7.attn.c_proj.weight")


def test_config_missing(model_dir: Path) -> None:
    (model_dir / "config.json").unlink()
    assert_bad_input(invoke("inspect", model_dir), "no config.json")


def test_config_invalid_json(model_dir: Path) -> None:
    (model_dir / "config.json").write_text("{not json")
    assert_bad_input(invoke("inspect", model_dir), "config.json", "invalid JSON")


def test_config_wrong_values(model_dir: Path) -> None:
    cfg = json.loads((model_dir / "config.json").read_text())
    cfg["n_head"] = 5
    (model_dir / "config.json").write_text(json.dumps(cfg))
    assert_bad_input(invoke("inspect", model_dir), "config.json", "not a multiple of n_head")


def test_unknown_model_type_lists_supported(model_dir: Path) -> None:
    cfg = json.loads((model_dir / "config.json").read_text())
    cfg["model_type"] = "bert"
    (model_dir / "config.json").write_text(json.dumps(cfg))
    assert_bad_input(invoke("inspect", model_dir), "config.json", "'bert'", "gpt2, gpt_neox, llama, mistral, qwen2")


class _Evil:
    def __reduce__(self):
        return (Path.touch, (Path(__file__).parent / "PWNED",))


def test_pickle_only_is_refused_and_never_loaded(model_dir: Path, tmp_path: Path) -> None:
    marker = Path(__file__).parent / "PWNED"
    (model_dir / "model.safetensors").unlink()
    (model_dir / "pytorch_model.bin").write_bytes(pickle.dumps(_Evil()))
    result = invoke("run", model_dir, "--tokens", "1")
    assert_bad_input(result, "pytorch_model.bin", "never loaded", "save_pretrained")
    assert_bad_input(invoke("inspect", model_dir / "pytorch_model.bin"), "pytorch_model.bin", "never loaded")
    assert not marker.exists()


def test_no_such_path(tmp_path: Path) -> None:
    assert_bad_input(invoke("inspect", tmp_path / "nope"), "nope", "no such file")


def test_tokenizer_missing_tokens_still_work(model_dir: Path) -> None:
    (model_dir / "tokenizer.json").unlink()
    ok = invoke("run", model_dir, "--tokens", "1,2,3", "--json")
    assert ok.exit_code == 0, ok.output
    assert [t["id"] for t in json.loads(ok.stdout)["tokens"]] == [1, 2, 3]
    assert_bad_input(invoke("run", model_dir, "--prompt", "w1 w2"), "no tokenizer.json", "--tokens")


def test_tokenizer_corrupt(model_dir: Path) -> None:
    (model_dir / "tokenizer.json").write_text('{"version": "1.0"}')
    assert_bad_input(invoke("run", model_dir, "--tokens", "1"), "tokenizer.json", "not a valid tokenizer")


def test_prompt_longer_than_context(model_dir: Path) -> None:
    prompt = " ".join(["w1"] * 65)
    assert_bad_input(invoke("run", model_dir, "--prompt", prompt), "65 tokens", "context (64)")


def test_token_out_of_vocabulary(model_dir: Path) -> None:
    assert_bad_input(invoke("run", model_dir, "--tokens", "1,500"), "token id 500", "0..96")
    assert_bad_input(invoke("run", model_dir, "--tokens", "1,x"), "--tokens")


def test_prompt_and_tokens_exclusive(model_dir: Path) -> None:
    assert_bad_input(invoke("run", model_dir, "--tokens", "1", "--prompt", "w1"), "exactly one of")
    assert_bad_input(invoke("run", model_dir), "exactly one of")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_asked_but_absent(model_dir: Path) -> None:
    assert_bad_input(invoke("run", model_dir, "--tokens", "1", "--device", "cuda"), "CUDA is not available")


def test_bad_device_name(model_dir: Path) -> None:
    assert_bad_input(invoke("run", model_dir, "--tokens", "1", "--device", "tpu"), "--device tpu")


def test_hooks_glob_matching_nothing(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.safetensors"
    assert_bad_input(invoke("run", model_dir, "--tokens", "1", "--save-cache", out, "--hooks", "nothing.*"), "nothing.*")
    assert not out.exists()
