"""The workbench (UI-free): what the step view is given, computed ahead or not, is the same."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tui_interp.components import Step
from tui_interp.engine.workbench import ModelLock, Workbench, can_ablate, component_tree, step_of
from tui_interp.errors import InputError


@pytest.fixture
def tui_model(gpt2_dir: Path) -> Path:
    return gpt2_dir


@pytest.fixture
def labels_file(tmp_path: Path) -> Path:
    return tmp_path / "labels.json"


@pytest.fixture
def session(tui_model: Path, labels_file: Path) -> Workbench:
    s = Workbench(tui_model, labels_path=labels_file)
    s.open()
    s.load()
    return s


def test_prefetched_lens_equals_the_lens_computed_on_demand(session: Workbench, tui_model: Path, labels_file: Path) -> None:
    session.set_prompt("w1 w2 w3")
    assert session.prefetch() == 5  # every step but the one on screen
    ahead = [session.move(to=i).lens for i in range(6)]
    fresh = Workbench(tui_model, labels_path=labels_file)
    fresh.open()
    fresh.load()
    fresh.set_prompt("w1 w2 w3")
    assert ahead == [fresh.move(to=i).lens for i in range(6)]


def test_prefetch_stops_when_cancelled_or_the_run_changes(session: Workbench) -> None:
    session.set_prompt("w1 w2 w3")
    assert session.prefetch(cancelled=lambda: True) == 0
    calls = []

    def change_prompt_midway() -> bool:
        calls.append(1)
        if len(calls) == 2:
            session.set_prompt("w4 w5")
        return False

    done = session.prefetch(cancelled=change_prompt_midway)
    assert done == 1 and session.view().tokens == ("w4", "w5")


def test_views_carry_the_run(session: Workbench) -> None:
    a = session.set_prompt("w1 w2")
    b = session.move(1)
    c = session.ablate("L0.H0", "zero")
    d = session.set_prompt("w1 w2")
    assert a.run == b.run < c.run < d.run


def test_a_model_without_tokenizer_takes_token_ids(tui_model: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tui_model / name, bare / name)
    s = Workbench(bare, labels_path=tmp_path / "labels.json")
    assert s.open().has_tokenizer is False
    s.load()
    view = s.set_prompt("5, 6 7")
    assert view.token_ids == (5, 6, 7) and view.tokens == ("5", "6", "7")
    with pytest.raises(InputError, match="type token ids"):
        s.set_prompt("w1 w2")


def test_errors(session: Workbench) -> None:
    with pytest.raises(InputError, match="type a prompt"):
        session.move(1)
    with pytest.raises(InputError, match="type a prompt"):
        session.set_prompt("   ")
    session.set_prompt("w1")
    with pytest.raises(Exception, match="L9"):
        session.ablate("L9.H0")
    with pytest.raises(Exception, match="unembed"):
        session.ablate("unembed")
    with pytest.raises(InputError, match="mode"):
        session.ablate("L0.H0", "sideways")
    with pytest.raises(InputError, match="no intervention"):
        session.remove_intervention(0)


def test_component_helpers(session: Workbench) -> None:
    tree = component_tree(session.config)
    assert [top for top, _ in tree] == ["embed", "pos_embed", "L0", "L1", "unembed"]
    assert tree[2][1] == [("L0.attn", ["L0.H0", "L0.H1", "L0.H2", "L0.H3"]), ("L0.mlp", [])]
    assert step_of("L1.H2") == Step("attn", 1) and step_of("L0.N5") == Step("mlp", 0) and step_of("pos_embed") == Step("embed")
    assert str(step_of("ln_final")) == "unembed" and str(step_of("L1")) == "L1.attn"
    assert can_ablate("L0.H1") and can_ablate("embed") and not can_ablate("unembed") and not can_ablate("nonsense")


def test_the_workbench_imports_no_face_and_the_tui_no_torch() -> None:
    import subprocess

    code = "import sys, tui_interp.engine.workbench; print(sorted(m for m in ('textual', 'typer', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    code = "import sys, tui_interp.tui.app; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # torch comes with the weights, after the first screen


def test_a_long_job_lets_waiting_calls_in_between_batches() -> None:
    import threading
    import time

    lock = ModelLock()
    order: list[str] = []
    started = threading.Event()

    def short_call() -> None:
        started.wait()
        with lock.hold():
            order.append("short")

    t = threading.Thread(target=short_call)
    t.start()
    for batch in range(3):
        with lock.hold():
            order.append(f"batch{batch}")
            if batch == 0:
                started.set()
                time.sleep(0.05)  # the short call is now waiting
        lock.let_waiters_in()
    t.join()
    assert order.index("short") == 1  # served right after the batch it waited behind
