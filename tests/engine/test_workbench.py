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


# ---- issue 17: moves folded into one walk, neurons, the lens and patching, the ablation reference


def test_a_walk_is_the_moves_one_at_a_time(session: Workbench) -> None:
    session.set_prompt("w1 w2 w3")
    assert session.walk([1, 1, 1]).index == 3 == session.index
    # clamped press by press, as the keys would be: 3 -> 5 -> 5 -> 4 -> 3
    assert session.walk([1, 1, 1, -1, -1]).index == 3
    assert session.walk([-9, 2]).index == 2
    assert session.walk(["L1.mlp", -1]).index == 3
    assert session.walk([]).index == 3  # just the view again
    assert session.move(to="unembed").index == 5 and session.move(-1).index == 4


def test_neurons_at_every_position_and_top_neurons(session: Workbench) -> None:
    import torch

    view = session.set_prompt("w1 w2 w3")
    assert session.top_neurons(0) and view.neurons_at == ()
    view = session.move(to="L0.mlp")
    assert len(view.neurons_at) == 3 and view.neurons == view.neurons_at[-1]
    post = session._mlp_post(0)  # [pos, d_mlp]
    for p, row in enumerate(view.neurons_at):
        values = [n.activation for n in row]
        assert values == sorted(values, reverse=True)
        assert values[0] == pytest.approx(float(post[p].max()))
    top = session.top_neurons(0, k=3)
    peak = post.max(dim=0).values
    assert [n.component for n in top] == [f"L0.N{int(i)}" for i in torch.topk(peak, 3).indices]
    with pytest.raises(Exception, match="L7"):
        session.top_neurons(7)


def test_lens_table_and_patch_are_the_engine_reports(session: Workbench) -> None:
    from tui_interp.engine.lens import lens_report
    from tui_interp.engine.patching import patch_prompts

    session.set_prompt("w1 w2 w3")
    lm = session.lm
    lens = session.lens_table()
    expected = lens_report(lm, lm.tokenizer.encode("w1 w2 w3"), k=3)
    assert lens.stages == ("embed", "L0", "L1") and lens.tokens == ("w1", "w2", "w3")
    assert lens.rows == tuple(tuple(tuple(r.top) for r in row) for row in expected.rows)
    patch = session.patch("w1 w9 w3")
    report = patch_prompts(lm, lm.tokenizer.encode("w1 w2 w3"), lm.tokenizer.encode("w1 w9 w3"), per_position=True)
    assert patch.components == tuple(report.result.components) and patch.metric == report.metric
    assert len(patch.effect) == len(patch.components) and all(len(row) == 3 for row in patch.effect)
    assert patch.clean_prompt == "w1 w2 w3" and patch.corrupt_tokens == ("w1", "w9", "w3")
    with pytest.raises(InputError, match="same length"):
        session.patch("w1 w9")


def test_the_ablation_reference_can_be_the_theory_or_a_prompts_file(session: Workbench, tmp_path: Path) -> None:
    theory = 'theory "pairs"\ninput a: int in 0..9\nprompt "w{a} w{a + 1} w{a + 2}"\nexpect "w1"\n'
    session.set_prompt("w1 w2 w3")
    view = session.ablate("L0.mlp", "mean")
    assert "random token sequences" in view.effect.reference == session.reference_description
    described, view = session.set_reference("theory", theory_text=theory)
    assert described == "10 inputs of theory 'pairs' (seed 0)" == view.effect.reference
    random = view.effect
    prompts = tmp_path / "ref.jsonl"
    prompts.write_text('{"prompt": "w4 w5 w6"}\n"w7 w8 w9"\n')
    described, view = session.set_reference("prompts", prompts_path=prompts)
    assert described == "2 reference prompts" and view.effect.ablated_metric != random.ablated_metric
    view = session.ablate("L1.mlp", "resample")  # the file has prompts of the prompt's length
    assert view.interventions == ("L0.mlp:mean", "L1.mlp:resample")
    with pytest.raises(InputError, match="resample draws a reference input"):
        session.set_prompt("w1 w2")  # no reference prompt of two tokens to draw from
    assert session.prompt == "w1 w2 w3" and session.view().interventions == ("L0.mlp:mean", "L1.mlp:resample")
    with pytest.raises(InputError, match="no prompts"):
        (tmp_path / "empty.txt").write_text("\n")
        session.set_reference("prompts", prompts_path=tmp_path / "empty.txt")
    assert session.reference_description == "2 reference prompts"  # a failed choice changes nothing
    with pytest.raises(InputError, match="unknown reference"):
        session.set_reference("sideways")


def test_theory_info_and_split_files_beside_the_theory(session: Workbench, tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text('{"a": 1}\n{"a": 2}\n')
    session.theory_path = tmp_path / "t.theory"
    text = 'input a: int in 0..9\nprompt "w{a}"\nexpect "w1"\nsplit train from "train.jsonl"\n'
    assert not [d for d in session.check_theory(text) if d.is_error]  # the split file is found beside the theory
    info = session.theory_info(text)
    assert info is not None and not info.is_question
    assert [(s.name, s.size, s.file, s.has_answers) for s in info.splits] == [("train", 2, "train.jsonl", False)]
    assert session.theory_info("input a: int in 0..3\nprompt \"w{a}\"\n").is_question
    assert session.theory_info("nonsense") is None


def test_reading_theory_and_prompts_files(tmp_path: Path) -> None:
    from tui_interp.engine.workbench import read_prompts_file, read_theory_file

    with pytest.raises(InputError, match="no such theory file"):
        read_theory_file(tmp_path / "missing.theory")
    with pytest.raises(InputError, match="expected a theory file"):
        read_theory_file(tmp_path)
    (tmp_path / "bad.theory").write_bytes(b"\xff")
    with pytest.raises(InputError, match="not UTF-8"):
        read_theory_file(tmp_path / "bad.theory")
    (tmp_path / "p.txt").write_text("one\n\ntwo\n")
    assert read_prompts_file(tmp_path / "p.txt") == ["one", "two"]
    (tmp_path / "p.jsonl").write_text('{"x": 1}\n')
    with pytest.raises(InputError, match="p.jsonl:1"):
        read_prompts_file(tmp_path / "p.jsonl")


# ---- discovery: recover, audit, diff, and B following A


def _second(tui_model: Path, tmp_path: Path, *, edit: bool) -> Workbench:
    """Another workbench on a copy of the tiny model (L1.H2's output rows changed when `edit`)."""
    import torch
    from safetensors.torch import load_file, save_file

    d = tmp_path / "b" / tui_model.name  # the same name: the audit then tells them apart by path
    shutil.copytree(tui_model, d)
    if edit:
        tensors = load_file(d / "model.safetensors")
        w = tensors["transformer.h.1.attn.c_proj.weight"].clone()  # [n_heads * d_head, d_model]
        w[16:24] += torch.randn(8, w.shape[1], generator=torch.Generator().manual_seed(1)) * 2.0
        tensors["transformer.h.1.attn.c_proj.weight"] = w
        save_file(tensors, str(d / "model.safetensors"), metadata={"format": "pt"})
    b = Workbench(d, labels_path=tmp_path / "b-labels.json")
    b.open()
    b.load()
    return b


def test_recover_proposes_an_expect_and_leaves_the_model_free_while_searching(session: Workbench) -> None:
    import threading

    from tui_interp.engine.recover import RecoverResult, SearchProgress

    question = 'theory "q"\ninput a: int in 0..9\nprompt "w{a} w{a + 1}"\nexpect "w1"\n'
    free_while_searching: list[bool] = []

    def progress(event: object) -> None:
        if isinstance(event, SearchProgress) and not free_while_searching:
            def try_the_model() -> None:
                with session.lock.hold():  # a step asked for meanwhile
                    free_while_searching.append(True)

            t = threading.Thread(target=try_the_model, daemon=True)
            t.start()
            t.join(timeout=2)
            if not free_while_searching:
                free_while_searching.append(False)

    result = session.recover(question, progress=progress, seconds=2.0)
    assert isinstance(result, RecoverResult) and result.candidates
    assert any("was ignored" in note for note in result.notes)  # the expect is not read
    assert free_while_searching == [True]
    assert session.recover(question, cancelled=lambda: True) is None
    filled = Workbench.with_expect(question, "a + 1")
    assert filled.splitlines()[3] == "expect a + 1" and filled.count("expect") == 1
    no_expect = Workbench.with_expect('input a: int in 0..9\nprompt "w{a}"\n# end\n', "a")
    assert no_expect.splitlines() == ["input a: int in 0..9", 'prompt "w{a}"', "expect a", "# end"]


def test_audit_needs_a_train_split_with_answers_and_names_the_models(session: Workbench, tui_model: Path, tmp_path: Path) -> None:
    theory = tmp_path / "t.theory"
    session.theory_path = theory
    text = 'theory "t"\ninput a: int in 0..9\nprompt "w{a} w{a + 1}"\n'
    with pytest.raises(InputError, match="split train"):
        session.audit(text)
    (tmp_path / "train.jsonl").write_text("".join(f'{{"a": {a}, "answer": "w{a + 2}"}}\n' for a in range(5)))
    text += 'split train from "train.jsonl"\nexpect "w1"\n'
    events: list[str] = []
    same_name = _second(tui_model, tmp_path, edit=False)
    result = session.audit(text, [same_name], progress=lambda e: events.append(e.phase))
    assert result is not None and events[0] == "rule" and "done" in events
    assert [m.model for m in result.models] == [str(session.model_path), str(same_name.model_path)]  # two "tiny-gpt2"s
    assert session.audit(text, cancelled=lambda: True) is None


def test_diff_scores_the_edited_head_and_b_follows_a(session: Workbench, tui_model: Path, tmp_path: Path) -> None:
    b = _second(tui_model, tmp_path, edit=True)
    session.check_compatible(b)
    phases: list[str] = []
    result = session.diff(b, "nonsense", progress=lambda e: phases.append(e.phase))  # no theory: random inputs
    assert result is not None and result.kind == "random" and "done" in phases
    assert str(result.components[0].component) == "L1.H2" and result.components[0].score > 0
    assert all(c.score == 0 for c in result.components[1:])
    theory = 'theory "t"\ninput a: int in 0..9\nprompt "w{a} w{a + 1}"\nexpect "w1"\n'
    assert session.diff(b, theory).n_inputs == 10
    assert session.diff(b, theory, cancelled=lambda: True) is None
    a_view = session.set_prompt("w1 w2 w3")
    a_view = session.move(to="L1.attn", focus="L1.H3")
    b_view = b.follow(a_view.prompt, a_view.index, focus="L1.H3")
    assert (b_view.prompt, b_view.index, b_view.attention.head) == ("w1 w2 w3", 3, 3)
    assert b_view.lens != a_view.lens or b_view.resid_norms != a_view.resid_norms
    assert b.follow("w1 w2 w3", 5).index == 5 and b.prompt == "w1 w2 w3"
