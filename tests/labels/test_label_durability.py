"""Real processes: concurrent writers lose nothing; a writer killed at any moment never tears the file.

The CLI test runs on a real disk (not tmpfs, where fsync costs nothing and proves nothing).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tui_interp.labels import LabelStore, ModelRef, parse_label_file

WRITER = """
import sys
from tui_interp.labels import LabelStore, ModelRef
path, layer, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = LabelStore(path, ModelRef("tiny", "fp"))
print("ready", flush=True)
for i in range(count):
    store.add(f"L{layer}.N{i}", f"writer {layer} label {i}", note="x" * (i % 50), tags=[f"w{layer}"])
"""


def start_writer(path: Path, layer: int, count: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(layer), str(count)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready", process.stderr.read() if process.stderr else ""
    return process


@pytest.fixture
def memory_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory in RAM (tmpfs) when there is one, else tmp_path.

    The concurrency test checks locking and merging, not the disk: on tmpfs fsync costs
    nothing, so 2,000 fsyncs do not turn a few seconds into tens on a busy disk.
    """
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    directory = Path(tempfile.mkdtemp(dir=shm, prefix="tui-interp-labels-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_two_processes_adding_500_labels_each_lose_nothing(memory_dir: Path) -> None:
    tmp_path = memory_dir
    path = tmp_path / "labels.json"
    writers = [start_writer(path, layer, 500) for layer in (0, 1)]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
    document = json.loads(path.read_text(encoding="utf-8"))
    ids = [x["component"] for x in document["labels"]]
    assert len(ids) == 1000
    assert set(ids) == {f"L{layer}.N{i}" for layer in (0, 1) for i in range(500)}
    assert ids == [f"L{layer}.N{i}" for layer in (0, 1) for i in range(500)]  # forward-pass order
    assert document["labels"][-1]["name"] == "writer 1 label 499"
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


def test_a_writer_killed_at_random_moments_leaves_a_whole_file(tmp_path: Path) -> None:
    """SIGKILL a writer mid-loop again and again: the file is always the old or the new one.

    Each writer adds labels in order, so a whole file holds a prefix L0.N0..L0.N(k-1)
    of every label ever committed; a torn file would fail to parse or break the prefix.
    """
    if not hasattr(signal, "SIGKILL"):
        pytest.skip("needs SIGKILL")
    path = tmp_path / "labels.json"
    rng = random.Random(1234)
    committed = 0
    for _ in range(6):
        writer = start_writer(path, 0, 100_000)
        time.sleep(rng.uniform(0.02, 0.25))
        writer.send_signal(signal.SIGKILL)
        writer.communicate(timeout=30)
        assert writer.returncode == -signal.SIGKILL
        label_file = parse_label_file(path.read_text(encoding="utf-8"), str(path))
        names = [str(x.component) for x in label_file.labels]
        assert names == [f"L0.N{i}" for i in range(len(names))]
        assert len(names) >= committed  # nothing committed earlier was lost
        committed = len(names)
    assert committed > 0
    # the next writer cleans up any temp file a killed writer left behind
    LabelStore(path, ModelRef("tiny", "fp")).add("L1", "after the crashes")
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


# ---------------------------------------------------------------- through the CLI, on a real disk

MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs", "devtmpfs", "shm", "overlay-tmpfs"})
REPO_ROOT = Path(__file__).resolve().parents[2]


def filesystem_type(path: Path) -> str | None:
    """The type of the filesystem holding `path` (Linux: /proc/mounts), None where it cannot be told."""
    try:
        mounts = Path("/proc/mounts").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    real = os.path.realpath(path)
    best, kind = "", None
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[1])  # /proc/mounts escapes spaces as \040
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


@pytest.fixture
def disk_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on a real disk: pytest's tmp_path when it is not in memory, else one under the repository."""
    if filesystem_type(tmp_path) not in MEMORY_FILESYSTEMS:
        yield tmp_path
        return
    if filesystem_type(REPO_ROOT) in MEMORY_FILESYSTEMS:
        pytest.skip(f"no real disk: both {tmp_path} and {REPO_ROOT} are in memory ({filesystem_type(tmp_path)})")
    directory = Path(tempfile.mkdtemp(dir=REPO_ROOT, prefix=".pytest-label-tmp-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


CLI_WRITER = """
import subprocess, sys
model, labels, layer, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for i in range(count):
    subprocess.run(
        [sys.executable, "-m", "tui_interp", "label", "add", model, f"L{layer}.N{i}", f"cli writer {layer} label {i}",
         "--tag", f"w{layer}", "--labels", labels],
        check=True, stdout=subprocess.DEVNULL,
    )
"""


def test_two_processes_running_label_add_lose_nothing_on_a_real_disk(tiny_gpt2: Path, disk_dir: Path) -> None:
    """Two processes each run `tui-interp label add` 12 times on one file; a reader watches it throughout.

    Every version the reader sees is a whole, valid label file holding every label of the version
    before it; at the end all 24 labels are there and the directory holds the label file alone.
    """
    path = disk_dir / "research" / "labels.json"
    path.parent.mkdir()
    count = 12
    writers = [
        subprocess.Popen([sys.executable, "-c", CLI_WRITER, str(tiny_gpt2), str(path), str(layer), str(count)], stderr=subprocess.PIPE, text=True)
        for layer in (0, 1)
    ]
    seen: set[str] = set()
    versions = 0
    deadline = time.monotonic() + 120
    while any(w.poll() is None for w in writers):
        assert time.monotonic() < deadline, "the writers did not finish in 120 s"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue  # not written yet
        components = {str(x.component) for x in parse_label_file(text, str(path)).labels}  # always whole and valid
        assert seen <= components, f"labels vanished: {sorted(seen - components)}"
        versions += components != seen
        seen = components
        time.sleep(0.01)
    for writer in writers:
        _, err = writer.communicate(timeout=30)
        assert writer.returncode == 0, err
    final = parse_label_file(path.read_text(encoding="utf-8"), str(path))
    assert [str(x.component) for x in final.labels] == [f"L{layer}.N{i}" for layer in (0, 1) for i in range(count)]
    assert [x.name for x in final.labels][-1] == f"cli writer 1 label {count - 1}"
    assert versions >= 2  # the reader did watch the file change
    assert [p.name for p in path.parent.iterdir()] == ["labels.json"]  # no lock, no temp file beside it
