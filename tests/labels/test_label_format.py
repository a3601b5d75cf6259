"""Label records and the label-file format: round trips, exact text, refusal of bad files."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_interp.components import parse_component
from tui_interp.errors import LabelStoreError
from tui_interp.labels import (
    InvalidLabelError,
    Label,
    LabelFile,
    LabelNotFoundError,
    ModelRef,
    dump_label_file,
    fileformat,
    parse_evidence,
    parse_label_file,
    records,
)
from tui_interp.labels.fileformat import label_file_from_document, pretty

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
T1 = datetime(2025, 3, 2, 8, 30, 15, tzinfo=timezone.utc)
MODEL = ModelRef("tiny", "abc123")


def label(component: str, name: str = "a name", **fields) -> Label:
    fields.setdefault("created", T0)
    fields.setdefault("updated", T1)
    return Label(component=parse_component(component), name=name, **fields)


EXPECTED_TEXT = """\
{
  "format": "tui-interp.labels/1",
  "model": {
    "name": "tiny",
    "fingerprint": "abc123"
  },
  "labels": [
    {
      "component": "embed",
      "name": "token embedding",
      "note": "",
      "tags": [],
      "evidence": [],
      "created": "2025-03-01T12:00:00Z",
      "updated": "2025-03-02T08:30:15Z"
    },
    {
      "component": "L0.H3",
      "name": "previous-token head",
      "note": "attends to position i-1\\non every prompt",
      "tags": [
        "attention",
        "induction"
      ],
      "evidence": [
        {
          "kind": "ablation",
          "metric": "loss",
          "value": 2.5,
          "command": "tui-interp ablate tiny --ablate L0.H3"
        }
      ],
      "created": "2025-03-01T12:00:00Z",
      "updated": "2025-03-02T08:30:15Z"
    },
    {
      "component": "L1.N7",
      "name": "fires on digits",
      "note": "",
      "tags": [],
      "evidence": [],
      "created": "2025-03-01T12:00:00Z",
      "updated": "2025-03-02T08:30:15Z"
    }
  ]
}
"""


def example_file() -> LabelFile:
    return LabelFile(
        model=MODEL,
        labels=(  # deliberately not in forward-pass order
            label("L1.N7", "fires on digits"),
            label(
                "L0.H3",
                "previous-token head",
                note="attends to position i-1\non every prompt",
                tags=("attention", "induction"),
                evidence=({"kind": "ablation", "metric": "loss", "value": 2.5, "command": "tui-interp ablate tiny --ablate L0.H3"},),
            ),
            label("embed", "token embedding"),
        ),
    )


def test_exact_text_sorted_in_forward_pass_order() -> None:
    assert dump_label_file(example_file()) == EXPECTED_TEXT


def test_text_is_what_json_dumps_writes() -> None:
    lf = example_file()
    assert dump_label_file(lf) == json.dumps(lf.to_document(), indent=2, ensure_ascii=False) + "\n"


def test_round_trip() -> None:
    lf = example_file()
    back = parse_label_file(dump_label_file(lf), "labels.json")
    assert back == lf
    assert [str(x.component) for x in back.labels] == ["embed", "L0.H3", "L1.N7"]
    assert back.labels[1].evidence[0]["value"] == 2.5


def test_empty_file_round_trip() -> None:
    lf = LabelFile(model=MODEL)
    text = dump_label_file(lf)
    assert '"labels": []' in text
    assert parse_label_file(text, "x") == lf


def test_unknown_keys_are_kept_in_place() -> None:
    document = json.loads(EXPECTED_TEXT)
    document["model"]["revision"] = "v2"
    document["labels"][1]["author"] = "ada"
    document["labels"][1]["confidence"] = {"level": "high", "votes": [1, 2]}
    document["project"] = "induction heads"
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    lf = parse_label_file(text, "labels.json")
    assert lf.labels[1].extra == {"author": "ada", "confidence": {"level": "high", "votes": (1, 2)}}
    assert dump_label_file(lf) == text  # written back unchanged, byte for byte


def test_hand_formatted_file_is_read_and_rewritten_canonically() -> None:
    compact = json.dumps(json.loads(EXPECTED_TEXT))
    lf = parse_label_file(compact, "labels.json")
    assert dump_label_file(lf) == EXPECTED_TEXT


def test_timestamps_with_offsets_are_read_as_instants() -> None:
    document = json.loads(EXPECTED_TEXT)
    document["labels"][0]["created"] = "2025-03-01T14:00:00+02:00"
    document["labels"][0]["updated"] = "2025-03-02T08:30:15"  # no offset: UTC
    lf = label_file_from_document(document, "x")
    assert lf.labels[0].created == T0 and lf.labels[0].updated == T1
    assert '"created": "2025-03-01T12:00:00Z"' in dump_label_file(lf)


def test_microseconds_survive() -> None:
    lf = LabelFile(model=MODEL, labels=(label("L0", created=T0 + timedelta(microseconds=5)),))
    text = dump_label_file(lf)
    assert "2025-03-01T12:00:00.000005Z" in text
    assert parse_label_file(text, "x") == lf


def test_fast_parse_agrees_with_full_parse_and_does_not_trust_a_stale_memo() -> None:
    lf = example_file()
    text = dump_label_file(lf)  # fills the memo
    changed = text.replace('"fires on digits"', '"fires on letters"')
    fast = parse_label_file(changed, "x")
    full = label_file_from_document(json.loads(changed), "x")
    assert fast == full
    assert fast.labels[2].name == "fires on letters"
    fileformat._memo.clear()
    assert parse_label_file(text, "x") == lf


def test_canonical_looking_file_with_duplicates_is_refused() -> None:
    text = dump_label_file(LabelFile(model=MODEL, labels=(label("L0.H1"), label("L0.H2"))))
    duplicated = text.replace('"L0.H2"', '"L0.H1"')
    with pytest.raises(LabelStoreError, match="labels.json: not a valid label file: two labels for L0.H1"):
        parse_label_file(duplicated, "labels.json")


def test_out_of_order_canonical_file_is_read_and_sorted() -> None:
    document = json.loads(EXPECTED_TEXT)
    document["labels"].reverse()
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    lf = parse_label_file(text, "x")
    assert [str(x.component) for x in lf.labels] == ["embed", "L0.H3", "L1.N7"]


def corrupt(document_edit) -> str:
    document = json.loads(EXPECTED_TEXT)
    document_edit(document)
    return json.dumps(document, indent=2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"format": "tui-interp.labels/1", "model": ', "f.json: not a label file: invalid JSON at line 1, column 44"),
        ("<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> b\n", "git merge-conflict markers"),
        ("[1, 2]", "f.json: not a label file: expected a JSON object, found an array"),
        ('{"name": "x"}', 'f.json: not a label file: no "format" field'),
        ('{"format": "other-tool/3"}', "f.json: not a label file: format is 'other-tool/3'"),
        ('{"format": "tui-interp.labels/2"}', "written in format 'tui-interp.labels/2', which this version cannot read"),
        (corrupt(lambda d: d.pop("model")), '"model" must be an object, found null'),
        (corrupt(lambda d: d["model"].update(fingerprint=3)), '"model.fingerprint" must be a string'),
        (corrupt(lambda d: d.update(labels={})), '"labels" must be an array, found an object'),
        (corrupt(lambda d: d["labels"].append(3)), "label 4 must be an object, found a number"),
        (corrupt(lambda d: d["labels"][1].pop("created")), "label 2 lacks 'created'"),
        (corrupt(lambda d: d["labels"][1].update(component="l0.h3")), "did you mean 'L0.H3'?"),
        (corrupt(lambda d: d["labels"][1].update(component="L0.H03")), "label 2"),
        (corrupt(lambda d: d["labels"][1].update(component=7)), '"component" must be a string'),
        (corrupt(lambda d: d["labels"][1].update(name="")), "label name must not be empty"),
        (corrupt(lambda d: d["labels"][1].update(name="two\nlines")), "label name must be one line"),
        (corrupt(lambda d: d["labels"][1].update(tags="attention")), '"tags" must be an array'),
        (corrupt(lambda d: d["labels"][1].update(tags=[1])), "tag must be a string"),
        (corrupt(lambda d: d["labels"][1].update(evidence=[[1]])), "evidence item 1 must be a JSON object, got an array"),
        (corrupt(lambda d: d["labels"][1].update(created="yesterday")), "invalid timestamp 'yesterday'"),
        (corrupt(lambda d: d["labels"][1].update(note=None)), "note must be a string, got null"),
        (corrupt(lambda d: d["labels"][1].update(name="\ud800x")), "lone surrogate"),
        (EXPECTED_TEXT.replace("2.5", "NaN"), "NaN is not a JSON number"),
    ],
)
def test_bad_files_are_refused_naming_file_and_problem(text: str, message: str) -> None:
    with pytest.raises(LabelStoreError) as info:
        parse_label_file(text, "f.json")
    assert str(info.value).startswith("f.json: ")
    assert message in str(info.value)


# ---------------------------------------------------------------- records


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": ""}, "label name must not be empty"),
        ({"name": " \t"}, "label name must not be empty"),
        ({"name": "a\nb"}, "must be one line, but it contains a line break (U+000A); put longer text in the note"),
        ({"name": "a\rb"}, "U+000D"),
        ({"name": "a\u2028b"}, "U+2028"),
        ({"name": 3}, "label name must be a string, got a number"),
        ({"name": "ok", "note": "\udc80"}, "note contains a lone surrogate (U+DC80)"),
        ({"name": "ok", "tags": "one"}, "tags must be a list of strings, not one string"),
        ({"name": "ok", "tags": ("",)}, "a tag must not be empty"),
        ({"name": "ok", "tags": ("a\nb",)}, "must be one line"),
        ({"name": "ok", "evidence": ({"v": float("nan")},)}, "which JSON cannot store"),
        ({"name": "ok", "evidence": ({1: "x"},)}, "non-string key 1"),
        ({"name": "ok", "evidence": ({"v": {1, 2}},)}, "contains a set, which is not a JSON value"),
        ({"name": "ok", "evidence": ("x",)}, "evidence item 1 must be a JSON object, got a string"),
        ({"name": "ok", "evidence": {"kind": "x"}}, "evidence must be a list of JSON objects"),
        ({"name": "ok", "extra": {"name": "clash"}}, "clash with known keys: name"),
    ],
)
def test_invalid_label_fields(fields: dict, message: str) -> None:
    with pytest.raises(InvalidLabelError) as info:
        Label(component=parse_component("L0.H1"), **fields)
    assert message in str(info.value)


def test_names_keep_control_characters_and_markup() -> None:
    name = "[bold red]x[/] \x1b[2J \x00 \t\u202e"
    assert Label(component=parse_component("L0"), name=name).name == name


def test_tags_are_deduplicated_in_order() -> None:
    assert label("L0", tags=("b", "a", "b")).tags == ("b", "a")


def test_labels_are_immutable_down_to_their_evidence() -> None:
    x = label("L0", evidence=({"kind": "ablation", "values": [1, 2]},))
    with pytest.raises(TypeError):
        x.evidence[0]["kind"] = "changed"  # type: ignore[index]
    assert x.evidence[0]["values"] == (1, 2)
    assert x.to_dict()["evidence"] == [{"kind": "ablation", "values": [1, 2]}]


def test_evidence_is_copied_not_shared() -> None:
    source = {"kind": "ablation", "values": [1, 2]}
    x = label("L0", evidence=(source,))
    source["values"].append(3)
    assert x.evidence[0]["values"] == (1, 2)


def test_merged_keeps_created_adds_tags_and_evidence_once() -> None:
    old = label("L0.H1", "old", note="keep me", tags=("a",), evidence=({"kind": "x"},))
    new = old.merged(name="new", tags=("a", "b"), evidence=({"kind": "x"}, {"kind": "y"}), now=T1 + timedelta(days=1))
    assert (new.name, new.note, new.tags) == ("new", "keep me", ("a", "b"))
    assert [e["kind"] for e in new.evidence] == ["x", "y"]
    assert new.created == old.created and new.updated == T1 + timedelta(days=1)
    assert old.merged(name="n", note="").note == ""


def test_label_file_get_with_without() -> None:
    lf = example_file()
    h3 = parse_component("L0.H3")
    assert lf.get(h3).name == "previous-token head"
    replaced = lf.with_label(label("L0.H3", "renamed"))
    assert replaced.get(h3).name == "renamed" and len(replaced.labels) == 3
    assert replaced.without(h3).get(h3) is None
    with pytest.raises(LabelNotFoundError, match="no label for L0.H0"):
        lf.without(parse_component("L0.H0"))


def test_parse_evidence_forms() -> None:
    assert parse_evidence('{"kind": "ablation", "value": 1}') == [{"kind": "ablation", "value": 1}]
    assert parse_evidence('[{"a": 1}, {"b": [true, null]}]') == [{"a": 1}, {"b": (True, None)}]
    with pytest.raises(InvalidLabelError, match="evidence is not valid JSON"):
        parse_evidence("{kind: ablation}")
    with pytest.raises(InvalidLabelError, match="JSON object or an array of objects, got a number"):
        parse_evidence("3")
    with pytest.raises(InvalidLabelError, match="evidence item 2 must be a JSON object"):
        parse_evidence('[{}, "x"]')
    with pytest.raises(InvalidLabelError, match="Infinity is not a JSON number"):
        parse_evidence('{"v": Infinity}')


# ---------------------------------------------------------------- serialiser agrees with json

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values, st.integers(0, 4))
def test_pretty_is_json_dumps_indent_2(value, level: int) -> None:
    expected = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n" + "  " * level)
    assert pretty(value, level) == expected


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.dictionaries(st.text(max_size=6), json_values, max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=6).filter(lambda k: k not in fileformat.LABEL_KEYS), json_values, max_size=2),
)
def test_file_text_is_json_dumps_for_any_evidence_and_extras(evidence, extra) -> None:
    lf = LabelFile(model=MODEL, labels=(label("L0.H1", evidence=tuple(evidence), extra=extra),))
    text = dump_label_file(lf)
    assert text == json.dumps(lf.to_document(), indent=2, ensure_ascii=False) + "\n"
    assert parse_label_file(text, "x") == lf


# ---------------------------------------------------------------- bounds on what enters


def nested(levels: int) -> dict:
    """An evidence object `levels` levels deep (the object itself is level 1)."""
    value: object = []
    for _ in range(levels - 1):
        value = {"a": value}
    return value  # type: ignore[return-value]


def test_evidence_depth_is_bounded_at_32_levels() -> None:
    assert label("L0", evidence=(nested(32),)).evidence[0]["a"]["a"]  # 32 levels: accepted
    with pytest.raises(InvalidLabelError, match="^evidence item 1 is nested more than 32 levels deep$"):
        label("L0", evidence=(nested(33),))
    deep: list = []
    for _ in range(5000):  # built by hand, far past Python's recursion limit: refused at level 33
        deep = [deep]
    with pytest.raises(InvalidLabelError, match="nested more than 32 levels deep"):
        label("L0", evidence=({"a": deep},))


def test_parse_evidence_bounds_depth_before_decoding() -> None:
    assert parse_evidence(json.dumps(nested(32))) == [label("L0", evidence=(nested(32),)).evidence[0]]
    assert len(parse_evidence(json.dumps([nested(32), nested(2)]))) == 2
    for text in (json.dumps(nested(33)), json.dumps([nested(33)]), "[" * 100_000, '{"a": ' * 100_000):
        with pytest.raises(InvalidLabelError, match="^evidence is nested more than 32 levels deep$"):
            parse_evidence(text)


@pytest.mark.parametrize(
    ("text", "depth"),
    [("1", 0), ("{}", 1), ("[{}]", 2), ('{"a": "[[[{{{"}', 1), ('{"a": "\\"[[", "b": [1]}', 2), ('"[[[', 0), ("[[", 2), ("[]]]][", 1)],
)
def test_json_nesting(text: str, depth: int) -> None:
    assert records.json_nesting(text) == depth


def test_numbers_too_long_to_print_are_refused() -> None:
    with pytest.raises(InvalidLabelError, match="^evidence: a number of 4,301 digits is too long \\(at most 4,300\\)$"):
        parse_evidence('{"v": 1' + "0" * 4300 + "}")
    assert parse_evidence('{"v": -' + "9" * 4300 + "}")[0]["v"] == -int("9" * 4300)
    with pytest.raises(InvalidLabelError, match="evidence item 1 contains a number too long to store"):
        label("L0", evidence=({"v": 2**20000},))
    with pytest.raises(InvalidLabelError, match="has a non-string key \\(an int of over 4,300 digits\\)$"):
        label("L0", evidence=({10**5000: 1},))


def test_timestamps_outside_utc_years_are_refused() -> None:
    edge = datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    with pytest.raises(InvalidLabelError, match="label created 0001-01-01T00:30:00\\+01:00 is out of range"):
        label("L0", created=edge)
    with pytest.raises(InvalidLabelError, match="timestamp '9999-12-31T23:59:59-01:00' is out of range"):
        records.parse_time("9999-12-31T23:59:59-01:00")
    assert records.parse_time("2025-03-01T14:00:00+02:00") == T0 and records.parse_time("2025-03-01T14:00:00+02:00").tzinfo == timezone.utc


def test_long_values_are_quoted_short_in_messages() -> None:
    with pytest.raises(InvalidLabelError) as info:
        records.parse_time("9" * 100_000)
    assert str(info.value) == f"invalid timestamp {'9' * 60!r}... (100,000 characters) (expected ISO 8601 such as 2025-03-01T12:00:00Z)"
    component = "L0.H" + "0" * 5000 + "3"
    with pytest.raises(LabelStoreError) as info:
        parse_label_file(corrupt(lambda d: d["labels"][1].update(component=component)), "f.json")
    assert str(info.value).startswith(f"f.json: not a valid label file: label 2 ({component[:60]!r}... (5,005 characters)): ")
