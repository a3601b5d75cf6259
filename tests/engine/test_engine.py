from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hf_models import FAMILIES as HF_FAMILIES

from tui_interp.components import Step, parse_component, resolve_components
from tui_interp.engine.interventions import Intervention, hooks_for, parse_interventions, prepare, random_reference
from tui_interp.engine.lens import DLA_HOOKS, direct_logit_attribution
from tui_interp.engine.patching import activation_patching, activation_patching_loop
from tui_interp.engine.stepper import Stepper
from tui_interp.errors import ComponentError, InputError
from tui_interp.model import load_model

TOKENS = torch.tensor([[5, 9, 2, 7, 7, 1, 3, 8]])
CORRUPT = torch.tensor([[5, 9, 2, 6, 7, 1, 3, 8]])
FAMILIES = ["gpt2", "llama", "gpt_neox"]


@pytest.fixture(scope="module", params=FAMILIES)
def lm(request, hf_dirs: dict[str, Path]):
    lm = load_model(hf_dirs[request.param], device="cpu")
    lm.model.attn_impl = "eager"  # bit-exact comparisons between runs with and without pattern hooks
    return lm


def test_steps(lm) -> None:
    s = Stepper(lm.model, TOKENS)
    n = lm.config.n_layers
    names = [str(step) for step in s.steps]
    assert len(names) == 2 * n + 2 and names[0] == "embed" and names[1:3] == ["L0.attn", "L0.mlp"] and names[-1] == "unembed"
    assert [s.resolve_step(x) for x in ("embed", "L0.mlp", "3", Step("unembed"))] == [0, 2, 3, 2 * n + 1]
    assert all(Step.at(i, n).index(n) == i for i in range(2 * n + 2))


def test_stepping_to_the_end_equals_the_forward_exactly(lm) -> None:
    s = Stepper(lm.model, TOKENS)
    states = []
    while not s.done:
        states.append(s.step())
    logits, cache = lm.model.run_with_cache(TOKENS)
    assert torch.equal(states[-1].logits, logits)
    assert torch.equal(lm.model(TOKENS), logits)
    merged = s.full_cache()
    assert set(merged) == set(cache)
    for name in cache:
        assert torch.equal(merged[name], cache[name]), name
    # the residual after each step is the matching hook of the plain run
    for l in range(lm.config.n_layers):
        assert torch.equal(states[1 + 2 * l].resid, cache[f"blocks.{l}.hook_resid_mid"])
        assert torch.equal(states[2 + 2 * l].resid, cache[f"blocks.{l}.hook_resid_post"])


def test_back_and_forth_is_idempotent_and_free(lm, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Stepper(lm.model, TOKENS)
    final = s.run_to_end().logits.clone()
    calls = []
    original = s._compute
    monkeypatch.setattr(s, "_compute", lambda i: calls.append(i) or original(i))
    while s.index > 0:
        s.back()
    assert s.state.name == "embed"
    while not s.done:
        s.step()
    assert torch.equal(s.state.logits, final)
    assert calls == []  # nothing recomputed
    assert s.goto("L0.mlp").name == "L0.mlp" and s.goto(0).name == "embed" and calls == []


def test_intervention_recomputes_from_its_step_only(lm, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Stepper(lm.model, TOKENS)
    s.run_to_end()
    calls = []
    original = s._compute
    monkeypatch.setattr(s, "_compute", lambda i: calls.append(i) or original(i))
    last = lm.config.n_layers - 1
    s.set_interventions(parse_interventions([f"L{last}.H1"], lm.config))
    s.run_to_end()
    assert calls == list(range(s.resolve_step(f"L{last}.attn"), len(s.steps)))
    calls.clear()
    s.set_interventions([])  # removing it recomputes from the same step again
    state = s.run_to_end()
    assert calls[0] == s.resolve_step(f"L{last}.attn")
    assert torch.equal(state.logits, lm.model(TOKENS))


def test_zero_ablating_a_head_equals_zeroing_its_hook_z_slice(lm) -> None:
    def zero(x, *, hook):
        x = x.clone()
        x[:, :, 2] = 0
        return x

    with lm.model.hooks([("blocks.1.attn.hook_z", zero)]):
        expected = lm.model(TOKENS)
    s = Stepper(lm.model, TOKENS)
    s.set_interventions(parse_interventions(["L1.H2:zero"], lm.config))
    assert torch.equal(s.run_to_end().logits, expected)
    with lm.model.hooks(hooks_for(parse_interventions(["L1.H2"], lm.config), lm.config)):
        assert torch.equal(lm.model(TOKENS), expected)
    assert not torch.equal(expected, lm.model(TOKENS))


def test_neuron_and_position_ablation(lm) -> None:
    ivs = parse_interventions(["L0.N3@2,4:zero"], lm.config)
    _, cache = lm.model.run_with_cache(TOKENS, "blocks.0.mlp.hook_post", hooks=hooks_for(ivs, lm.config))
    post = cache["blocks.0.mlp.hook_post"][0]
    assert post[2, 3] == 0 and post[4, 3] == 0 and post[3, 3] != 0 and post[2, 4] != 0


def test_mean_and_resample_ablation(lm) -> None:
    ref = random_reference(lm.config, TOKENS.shape[1], n=16, seed=3)
    mean_iv, = prepare(parse_interventions(["L0.H1:mean"], lm.config), lm.model, reference=ref)
    _, ref_cache = lm.model.run_with_cache(ref, "blocks.0.attn.hook_z")
    expected_mean = ref_cache["blocks.0.attn.hook_z"][:, :, 1].reshape(-1, lm.config.d_head).mean(0)
    _, cache = lm.model.run_with_cache(TOKENS, "blocks.0.attn.hook_z", hooks=mean_iv.hooks(lm.config))
    torch.testing.assert_close(cache["blocks.0.attn.hook_z"][0, :, 1], expected_mean.expand(TOKENS.shape[1], -1))
    res_iv, = prepare(parse_interventions(["L0.mlp:resample"], lm.config), lm.model, reference=ref, seed=1)
    _, cache = lm.model.run_with_cache(TOKENS, "blocks.0.hook_mlp_out", hooks=res_iv.hooks(lm.config))
    rows = [torch.equal(cache["blocks.0.hook_mlp_out"][0], r) for r in lm.model.run_with_cache(ref, "blocks.0.hook_mlp_out")[1]["blocks.0.hook_mlp_out"]]
    assert sum(rows) >= 1  # it is one of the reference rows
    with pytest.raises(InputError, match="reference"):
        Intervention(parse_component("L0.H1"), "mean").hooks(lm.config)


def test_patching_every_component_restores_the_clean_logits(lm) -> None:
    comps = resolve_components("embed,L*.H*,L*.mlp", lm.config)
    if lm.config.positional == "learned":
        comps += resolve_components("pos_embed", lm.config)
    _, clean_cache = lm.model.run_with_cache(TOKENS, "*")
    ivs = prepare([Intervention(c, "patch") for c in comps], lm.model, source_cache=clean_cache)
    with lm.model.hooks(hooks_for(ivs, lm.config)):
        patched = lm.model(CORRUPT)
    torch.testing.assert_close(patched, lm.model(TOKENS), atol=1e-5, rtol=0)


def test_batched_patching_equals_the_loop(lm) -> None:
    comps = resolve_components("L*.H*,L*.mlp,L0.N1,embed", lm.config)
    for per_position in (False, True):
        r = activation_patching(lm.model, TOKENS, CORRUPT, 3, comps, other=4, per_position=per_position, batch_size=7)
        loop = activation_patching_loop(lm.model, TOKENS, CORRUPT, 3, comps, other=4, per_position=per_position)
        torch.testing.assert_close(r.raw, loop, atol=1e-5, rtol=0)
        assert r.effect.shape == ((len(comps), TOKENS.shape[1]) if per_position else (len(comps),))
    # positions before the corrupted token cannot matter
    r = activation_patching(lm.model, TOKENS, CORRUPT, 3, comps, other=4, per_position=True)
    torch.testing.assert_close(r.raw[:, :3], torch.full_like(r.raw[:, :3], r.corrupt), atol=1e-5, rtol=0)


def test_direct_logit_attribution_sums_to_the_logit(lm) -> None:
    _, cache = lm.model.run_with_cache(TOKENS, [h for h in DLA_HOOKS if h in lm.model.hook_points or "*" in h])
    logits = lm.model(TOKENS)[0, -1]
    for other in (None, 11):
        a = direct_logit_attribution(lm.model, cache, 7, other=other)
        expected = float(logits[7] - (logits[other] if other is not None else 0))
        assert a.logit == pytest.approx(expected, abs=1e-4)
        assert a.total == pytest.approx(a.logit, abs=1e-4)
        n = lm.config.n_layers
        assert len([k for k in a.contributions if ".H" in k]) == n * lm.config.n_heads


def test_streaming_gives_identical_logits(hf_dirs: dict[str, Path]) -> None:
    for family in FAMILIES:
        full = load_model(hf_dirs[family], device="cpu")
        streamed = load_model(hf_dirs[family], device="cpu", stream=True)
        assert all(p.is_meta for p in streamed.model.blocks.parameters())
        assert torch.equal(streamed.model(TOKENS), full.model(TOKENS))
        assert streamed.model.streamer.loads == full.config.n_layers
        s = Stepper(streamed.model, TOKENS)
        assert torch.equal(s.run_to_end().logits, full.model.run_with_cache(TOKENS)[0])
        assert all(p.is_meta for p in streamed.model.blocks.parameters())


def test_clear_errors(lm) -> None:
    s = Stepper(lm.model, TOKENS)
    with pytest.raises(InputError, match="no step has run yet"):
        _ = s.state
    s.step()
    with pytest.raises(InputError, match="already at the first step"):
        s.back()
    with pytest.raises(InputError, match="past the end"):
        s.goto(99)
    with pytest.raises(InputError, match="unknown step"):
        s.goto("L0.foo")
    s.run_to_end()
    with pytest.raises(InputError, match="already at the last step"):
        s.step()
    with pytest.raises(ComponentError, match="L9"):
        parse_interventions(["L9.H0"], lm.config)
    with pytest.raises(ComponentError):
        parse_interventions(["L0.X1"], lm.config)
    with pytest.raises(ComponentError, match="cannot intervene"):
        parse_interventions(["unembed"], lm.config)
    with pytest.raises(InputError, match="unknown intervention mode"):
        parse_interventions(["L0.H0:explode"], lm.config)
    with pytest.raises(InputError, match="past the end of the prompt"):
        with lm.model.hooks(hooks_for(parse_interventions(["L0.H0@50"], lm.config), lm.config)):
            lm.model(TOKENS)


def test_views(lm) -> None:
    s = Stepper(lm.model, TOKENS)
    s.goto("L0.attn")
    pattern = s.attention(0, 1)
    assert pattern.shape == (8, 8) and torch.allclose(pattern.sum(-1), torch.ones(8))
    with pytest.raises(InputError, match="has not run yet"):
        s.attention(1, 0)
    assert s.resid_norms().shape == (8,)
    assert len(s.lens(3)) == 8 and len(s.lens(3)[0]) == 3
    s.goto("L0.mlp")
    neurons = s.top_neurons(0, 7, 4)
    assert len(neurons) == 4 and neurons[0][1] >= neurons[-1][1]


def test_steering_adds_a_vector_and_recomputes_from_its_step(lm) -> None:
    from tui_interp.engine.interventions import Steering

    d = lm.config.d_model
    vec = torch.linspace(-1, 1, d)
    steer = Steering("blocks.1.hook_resid_pre", vec, coefficient=3.0, positions=(2,))
    _, cache = lm.model.run_with_cache(TOKENS, "blocks.1.hook_resid_pre")
    _, steered = lm.model.run_with_cache(TOKENS, "blocks.1.hook_resid_pre", hooks=steer.hooks(lm.config))
    diff = steered["blocks.1.hook_resid_pre"] - cache["blocks.1.hook_resid_pre"]
    torch.testing.assert_close(diff[0, 2], 3.0 * vec)
    assert torch.all(diff[0, :2] == 0) and torch.all(diff[0, 3:] == 0)
    s = Stepper(lm.model, TOKENS)
    s.run_to_end()
    s.set_interventions([steer])
    with lm.model.hooks(steer.hooks(lm.config)):
        expected = lm.model(TOKENS)
    assert torch.equal(s.run_to_end().logits, expected)
    with pytest.raises(InputError, match="last dimension"):
        with lm.model.hooks(Steering("blocks.0.hook_resid_post", torch.ones(3)).hooks(lm.config)):
            lm.model(TOKENS)


@pytest.mark.parametrize("family", sorted(HF_FAMILIES))
def test_direct_logit_attribution_adds_up_in_every_family(hf_dirs: dict[str, Path], family: str) -> None:
    """Gemma's (1 + w) norms, post-norms (heads are then attributed as a whole layer) and
    soft-capped logits (attributed before the cap) included."""
    lm = load_model(hf_dirs[family], device="cpu")
    _, cache = lm.model.run_with_cache(TOKENS, [h for h in DLA_HOOKS if h in lm.model.hook_points or "*" in h])
    resid = lm.model(TOKENS, stop_at_layer=lm.config.n_layers)
    final = torch.nn.functional.linear(lm.model.ln_final(resid), lm.model.unembed_weight)[0, -1]  # before any soft-cap
    a = direct_logit_attribution(lm.model, cache, 7, other=11)
    assert a.logit == pytest.approx(float(final[7] - final[11]), abs=1e-4)
    assert a.total == pytest.approx(a.logit, abs=1e-4)
    per_layer = "attn" if lm.config.post_norms else "H"
    assert any(k.startswith("L0.") and per_layer in k for k in a.contributions)
