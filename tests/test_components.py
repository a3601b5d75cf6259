"""Component ids: grammar, forward-pass order, validation against a model's shape, globs."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui_interp.components import (
    Component,
    all_components,
    is_glob,
    parse_component,
    resolve_components,
    validate_component,
)
from tui_interp.errors import ComponentError
from tui_interp.model.config import ModelConfig, RopeConfig

GPT2 = ModelConfig(architecture="gpt2", n_layers=2, d_model=32, n_heads=4, n_kv_heads=4, d_head=8, d_mlp=8, vocab_size=64, n_ctx=32)
ROTARY = GPT2.replace(architecture="llama", positional="rotary", rope=RopeConfig(rotary_dim=8))
NO_MLP = GPT2.replace(d_mlp=0)


@pytest.mark.parametrize(
    ("text", "component"),
    [
        ("embed", Component("embed")),
        ("pos_embed", Component("pos_embed")),
        ("L0", Component("block", 0)),
        ("L3.attn", Component("attn", 3)),
        ("L3.H5", Component("head", 3, 5)),
        ("L3.mlp", Component("mlp", 3)),
        ("L3.N1023", Component("neuron", 3, 1023)),
        ("L10.H0", Component("head", 10, 0)),
        ("ln_final", Component("ln_final")),
        ("unembed", Component("unembed")),
        ("  L1.H2 ", Component("head", 1, 2)),
    ],
)
def test_parse_and_canonical_id(text: str, component: Component) -> None:
    assert parse_component(text) == component
    assert str(component) == text.strip()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty component id"),
        ("   ", "empty component id"),
        ("L", "unknown component id 'L'"),
        ("L1.", "unknown component id"),
        ("L1.H", "unknown component id"),
        ("L-1", "unknown component id"),
        ("H3", "unknown component id"),
        ("L1.H2.x", "unknown component id"),
        ("L1.attn.H2", "unknown component id"),
        ("L١", "unknown component id"),  # a non-ASCII digit
        ("L1.Q2", "unknown component id"),
        ("mlp", "unknown component id"),
        ("l3.h5", "did you mean 'L3.H5'?"),
        ("L03", "did you mean 'L3'?"),
        ("L3.H05", "did you mean 'L3.H5'?"),
        ("L2.MLP", "did you mean 'L2.mlp'?"),
        ("Embed", "did you mean 'embed'?"),
        ("L*.H1", "is a pattern"),
    ],
)
def test_malformed_ids_are_refused_with_a_clear_message(text: str, fragment: str) -> None:
    with pytest.raises(ComponentError) as info:
        parse_component(text)
    assert fragment in str(info.value)


def test_unknown_id_message_lists_the_grammar() -> None:
    with pytest.raises(ComponentError, match=r"expected embed, pos_embed, L<layer>, .*unembed"):
        parse_component("head3")


def test_component_rejects_inconsistent_fields() -> None:
    with pytest.raises(ComponentError, match="unknown component kind"):
        Component("heads", 1, 1)
    with pytest.raises(ComponentError, match="needs a non-negative integer layer"):
        Component("head", None, 1)
    with pytest.raises(ComponentError, match="needs a non-negative integer index"):
        Component("head", 1)
    with pytest.raises(ComponentError, match="has no layer"):
        Component("embed", 0)
    with pytest.raises(ComponentError, match="has no index"):
        Component("mlp", 0, 3)
    with pytest.raises(ComponentError, match="non-negative"):
        Component("block", -1)
    with pytest.raises(ComponentError, match="non-negative"):
        Component("block", True)


FORWARD_ORDER = [
    "embed", "pos_embed",
    "L0", "L0.attn", "L0.H0", "L0.H1", "L0.H2", "L0.H3", "L0.mlp",
    "L1", "L1.attn", "L1.H0", "L1.H1", "L1.H2", "L1.H3", "L1.mlp",
    "ln_final", "unembed",
]  # fmt: skip


def test_all_components_in_forward_pass_order() -> None:
    assert [str(c) for c in all_components(GPT2)] == FORWARD_ORDER


def test_sorting_follows_the_forward_pass_not_the_alphabet() -> None:
    ids = FORWARD_ORDER + ["L0.N0", "L0.N7", "L1.N2", "L10", "L2.H10", "L2.H9"]
    shuffled = [parse_component(i) for i in ids]
    random.Random(0).shuffle(shuffled)
    expected = (
        ["embed", "pos_embed", "L0", "L0.attn", "L0.H0", "L0.H1", "L0.H2", "L0.H3", "L0.mlp", "L0.N0", "L0.N7"]
        + ["L1", "L1.attn", "L1.H0", "L1.H1", "L1.H2", "L1.H3", "L1.mlp", "L1.N2"]
        + ["L2.H9", "L2.H10", "L10", "ln_final", "unembed"]
    )
    assert [str(c) for c in sorted(shuffled)] == expected
    assert Component("head", 0, 3) < Component("mlp", 0) < Component("block", 1)
    assert Component("unembed") > Component("ln_final") >= Component("ln_final")


def test_all_components_with_neurons_and_variants() -> None:
    with_neurons = [str(c) for c in all_components(GPT2, neurons=True)]
    assert with_neurons[8:18] == ["L0.mlp", *[f"L0.N{i}" for i in range(8)], "L1"]
    assert len(with_neurons) == len(FORWARD_ORDER) + 2 * 8
    assert "pos_embed" not in [str(c) for c in all_components(ROTARY)]
    no_mlp = [str(c) for c in all_components(NO_MLP, neurons=True)]
    assert not any("mlp" in i or ".N" in i for i in no_mlp)


@pytest.mark.parametrize(
    ("text", "config", "message"),
    [
        ("L9.H2", GPT2, "L9.H2: model has 2 layers (L0..L1)"),
        ("L2", GPT2, "L2: model has 2 layers (L0..L1)"),
        ("L0.H4", GPT2, "L0.H4: model has 4 heads per layer (H0..H3)"),
        ("L1.N8", GPT2, "L1.N8: model has 8 MLP neurons per layer (N0..N7)"),
        ("L0.mlp", NO_MLP, "L0.mlp: model has no MLPs"),
        ("L0.N0", NO_MLP, "L0.N0: model has no MLPs"),
        ("pos_embed", ROTARY, "pos_embed: model has no learned positional embedding (it uses rotary positions)"),
    ],
)
def test_validate_against_the_model_shape(text: str, config: ModelConfig, message: str) -> None:
    with pytest.raises(ComponentError) as info:
        validate_component(parse_component(text), config)
    assert str(info.value) == message


def test_validate_accepts_every_existing_component() -> None:
    for c in all_components(GPT2, neurons=True):
        assert validate_component(c, GPT2) is c


def test_one_layer_model_says_layer_not_layers() -> None:
    with pytest.raises(ComponentError, match=r"L1: model has 1 layer \(L0..L0\)"):
        validate_component(parse_component("L1"), GPT2.replace(n_layers=1))


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("L1.H2", ["L1.H2"]),
        ("L*.H*", ["L0.H0", "L0.H1", "L0.H2", "L0.H3", "L1.H0", "L1.H1", "L1.H2", "L1.H3"]),
        ("L1.*", ["L1.attn", "L1.H0", "L1.H1", "L1.H2", "L1.H3", "L1.mlp"]),
        ("L*.mlp", ["L0.mlp", "L1.mlp"]),
        ("L?.H[02]", ["L0.H0", "L0.H2", "L1.H0", "L1.H2"]),
        ("L1.N*", [f"L1.N{i}" for i in range(8)]),
        ("L0.N?,L1.N7", [*(f"L0.N{i}" for i in range(8)), "L1.N7"]),
        ("unembed, embed , L0.H1", ["embed", "L0.H1", "unembed"]),  # sorted, spaces ignored
        ("L0.H1,L0.H*", ["L0.H0", "L0.H1", "L0.H2", "L0.H3"]),  # deduplicated
        ("*embed", ["embed", "pos_embed", "unembed"]),
    ],
)
def test_resolve_ids_globs_and_lists(pattern: str, expected: list[str]) -> None:
    assert [str(c) for c in resolve_components(pattern, GPT2)] == expected


def test_star_does_not_expand_to_neurons() -> None:
    everything = resolve_components("*", GPT2)
    assert [str(c) for c in everything] == FORWARD_ORDER
    assert not any(c.kind == "neuron" for c in resolve_components("L0.*", GPT2))
    assert len(resolve_components("*.N*", GPT2)) == 16


def test_globs_are_case_sensitive() -> None:
    with pytest.raises(ComponentError, match="matches no component"):
        resolve_components("l*.h*", GPT2)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("L5.*", "'L5.*' matches no component of this model (2 layers (L0..L1), 4 heads per layer (H0..H3), 8 MLP neurons per layer (N0..N7))"),
        ("L9.H2", "L9.H2: model has 2 layers (L0..L1)"),
        ("", "empty component pattern"),
        ("L0.H1,,L0.H2", "empty item in component list"),
        ("L0.H1,bogus", "unknown component id 'bogus'"),
    ],
)
def test_resolve_errors(pattern: str, message: str) -> None:
    with pytest.raises(ComponentError) as info:
        resolve_components(pattern, GPT2)
    assert message in str(info.value)


def test_neuron_glob_on_a_model_without_mlp_matches_nothing() -> None:
    with pytest.raises(ComponentError, match="no MLPs"):
        resolve_components("L*.N*", NO_MLP)


def test_is_glob() -> None:
    assert is_glob("L*.H1") and is_glob("L?") and is_glob("L[01]")
    assert not is_glob("L0.H1")


@given(st.sampled_from(["block", "attn", "mlp", "head", "neuron"]), st.integers(0, 10**6), st.integers(0, 10**6))
def test_round_trip_of_every_layer_component(kind: str, layer: int, index: int) -> None:
    c = Component(kind, layer, index if kind in ("head", "neuron") else None)
    assert parse_component(str(c)) == c


@given(st.text(max_size=12))
def test_parse_never_fails_with_anything_but_component_error(text: str) -> None:
    try:
        c = parse_component(text)
    except ComponentError:
        return
    assert str(c) == text.strip()
