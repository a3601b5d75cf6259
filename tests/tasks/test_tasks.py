"""Task data: contents, answers, deterministic splits, tokenizers that round-trip."""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer

from tui_interp.errors import InputError
from tui_interp.tasks import IGNORE, TASKS, CharLM, Induction, ModularAddition, Parity, Sorting, get_task
from tui_interp.tasks.base import split_indices
from tui_interp.tasks.charlm import ALPHABET, corpus_files
from tui_interp.tasks.vocab import char_level_tokenizer, encode, word_level_tokenizer


def _decode(tok_json: str, ids: list[int]) -> str:
    return Tokenizer.from_str(tok_json).decode(ids, skip_special_tokens=False)


# ---- splits


def test_split_indices_are_a_deterministic_partition() -> None:
    a_train, a_test = split_indices(100, 0.3, seed=5)
    b_train, b_test = split_indices(100, 0.3, seed=5)
    c_train, _ = split_indices(100, 0.3, seed=6)
    assert torch.equal(a_train, b_train) and torch.equal(a_test, b_test)
    assert not torch.equal(a_train, c_train)
    assert len(a_train) == 30 and len(a_test) == 70
    assert sorted(torch.cat([a_train, a_test]).tolist()) == list(range(100))


@pytest.mark.parametrize("frac", [0.0, 1.0, 1.5, 0.001])
def test_split_fraction_must_leave_both_sides(frac: float) -> None:
    with pytest.raises(InputError):
        split_indices(100, frac, seed=0)


def test_split_does_not_depend_on_global_random_state() -> None:
    torch.manual_seed(1)
    first = ModularAddition().data(3).train.tokens
    torch.manual_seed(2)
    torch.rand(10)
    assert torch.equal(ModularAddition().data(3).train.tokens, first)


# ---- modular addition


def test_modadd_examples_and_split() -> None:
    task = ModularAddition()
    data = task.data(0)
    assert len(data.train) == round(0.3 * 113 * 113) == 3831
    assert len(data.train) + len(data.test) == 113 * 113
    every = torch.cat([data.train.tokens, data.test.tokens])
    assert len({tuple(r) for r in every.tolist()}) == 113 * 113  # every pair once, no overlap
    assert torch.all(every[:, 2] == 113)  # "=" token
    for split in (data.train, data.test):
        a, b = split.tokens[:, 0], split.tokens[:, 1]
        assert torch.equal(split.targets[:, 2], (a + b) % 113)
        assert torch.all(split.targets[:, :2] == IGNORE)
    assert split.answer_columns().tolist() == [2]


def test_modadd_tokenizer_reads_the_prompt_format() -> None:
    task = ModularAddition()
    ids = encode(task.tokenizer_json(), ["5 107 ="])[0]
    assert ids == [5, 107, 113]
    assert _decode(task.tokenizer_json(), [5, 107, 113]) == "5 107 ="
    assert task.model_config().vocab_size == Tokenizer.from_str(task.tokenizer_json()).get_vocab_size()


def test_modadd_train_fraction_option() -> None:
    assert len(get_task("modadd", train_frac=0.5).data(0).train) == round(0.5 * 113 * 113)
    assert len(get_task("modadd", p=7).data(0).test) == 49 - round(0.3 * 49)


# ---- parity


def test_parity_examples() -> None:
    task = Parity(options={"n_bits": 6})
    data = task.data(1)
    assert len(data.train) + len(data.test) == 64
    every = torch.cat([data.train.tokens, data.test.tokens])
    assert len({tuple(r) for r in every.tolist()}) == 64
    for split in (data.train, data.test):
        bits = split.tokens[:, :6]
        assert torch.equal(split.targets[:, 6], bits.sum(1) % 2)
        assert torch.all(split.tokens[:, 6] == 2)
    assert encode(task.tokenizer_json(), ["011010 ="])[0] == [0, 1, 1, 0, 1, 0, 2]


def test_parity_theory_matches_the_data() -> None:
    name, text = Parity().theory()
    assert name == "parity.theory"
    assert 'input s: str of "01" len 12' in text and 'expect count(s, "1") % 2' in text


# ---- sorting


def test_sorting_examples() -> None:
    task = Sorting(options={"n_train": 300, "n_test": 50})
    data = task.data(0)
    assert data.train.tokens.shape == (300, 16) and data.test.tokens.shape == (50, 16)
    for split in (data.train, data.test):
        xs = split.tokens[:, :8]
        ys = xs.sort(dim=1).values
        assert torch.all(split.tokens[:, 8] == 64)  # ">"
        assert torch.equal(split.tokens[:, 9:], ys[:, :-1])  # teacher forcing: the sorted prefix
        assert torch.equal(split.targets[:, 8:], ys) and torch.all(split.targets[:, :8] == IGNORE)
    assert encode(task.tokenizer_json(), ["3 0 63 >"])[0] == [3, 0, 63, 64]
    # the test lists do not depend on the size of the train set
    assert torch.equal(Sorting(options={"n_train": 5, "n_test": 50}).data(0).test.tokens, data.test.tokens)
    assert data.train_eval is None and Sorting().data(0).train_eval is not None


# ---- induction


def test_induction_sequences_repeat_one_run_at_a_random_offset() -> None:
    task = Induction()
    data = task.data(0)
    toks, tg = data.test.tokens, data.test.targets
    assert toks.shape == (2000, 49) and torch.all(toks[:, 0] == task.bos_id)
    offsets = set()
    for row, target in zip(toks.tolist(), tg.tolist(), strict=True):
        body = row[1:]
        first: dict[int, int] = {}
        repeats = []  # (position, position of the earlier occurrence)
        for i, t in enumerate(body):
            if t in first:
                repeats.append((i, first[t]))
            else:
                first[t] = i
        assert repeats, "every example repeats a run"
        k = repeats[0][0] - repeats[0][1]
        assert all(i - j == k for i, j in repeats) and 4 <= k <= 24 and len(repeats) == k
        offsets.add(repeats[0][1])
        answered = [p for p, t in enumerate(target) if t != IGNORE]
        assert len(answered) == k - 1
        for p in answered:  # every target is the next token, and it is a copy from the first run
            assert target[p] == row[p + 1] and row[p + 1] == row[p + 1 - k]
    assert len(offsets) > 10  # the run starts at many different places


def test_induction_train_and_test_differ_and_are_deterministic() -> None:
    task = Induction(options={"n_train": 50, "n_test": 20})
    d1, d2 = task.data(0), task.data(0)
    assert torch.equal(d1.train.tokens, d2.train.tokens) and torch.equal(d1.test.tokens, d2.test.tokens)
    assert not torch.equal(d1.train.tokens[:20], d1.test.tokens)
    assert not torch.equal(task.data(1).train.tokens, d1.train.tokens)


def test_induction_tokenizer_prepends_bos() -> None:
    task = Induction()
    assert encode(task.tokenizer_json(), ["a b Z"])[0] == [task.bos_id, 0, 1, 51]
    assert task.model_config().bos_token_id == task.bos_id


def test_induction_mlps_are_frozen_zero() -> None:
    from tui_interp.tasks.trainer import TrainConfig, new_model

    model = new_model(Induction(), TrainConfig())
    mlp = {n: p for n, p in model.named_parameters() if ".mlp." in n}
    assert mlp and all(not p.requires_grad and torch.all(p == 0) for p in mlp.values())


# ---- tokenizers


@pytest.mark.parametrize(
    "text",
    ["", "x", "def f(x):\n    return x  # two  spaces\n\n\n", "  leading and trailing  \n", "[UNK] literally", "\n\n"],
)
def test_char_tokenizer_round_trips_exactly(text: str) -> None:
    tok_json = char_level_tokenizer(ALPHABET)
    ids = encode(tok_json, [text])[0]
    assert len(ids) == len(text) or "[UNK]" in text
    assert _decode(tok_json, ids) == text


def test_char_tokenizer_ids_follow_the_alphabet_and_unknown_is_unk() -> None:
    tok_json = char_level_tokenizer(ALPHABET)
    assert encode(tok_json, ["\n A~"])[0] == [0, ALPHABET.index(" "), ALPHABET.index("A"), ALPHABET.index("~")]
    assert encode(tok_json, ["\u00e9"])[0] == [len(ALPHABET)]


def test_char_tokenizer_round_trips_stdlib_sources() -> None:
    tok_json = char_level_tokenizer(ALPHABET)
    texts = [p.read_text() for p in corpus_files()[:5]]
    for text, ids in zip(texts, encode(tok_json, texts), strict=True):
        assert _decode(tok_json, ids) == text


def test_word_tokenizer_refuses_duplicates_and_unknown_bos() -> None:
    with pytest.raises(InputError, match="duplicate"):
        word_level_tokenizer(["a", "a"])
    with pytest.raises(InputError, match="BOS"):
        word_level_tokenizer(["a"], bos="[BOS]")


# ---- char LM


def test_charlm_windows_and_file_split() -> None:
    task = CharLM(options={"n_ctx": 64})
    train_files, test_files = task.split_files(0)
    assert set(train_files).isdisjoint(test_files) and len(train_files) + len(test_files) == len(task.files)
    assert task.split_files(0) == (train_files, test_files)
    split = task.windows(test_files[:1])
    text = test_files[0].read_text()
    # the inputs are the file's characters, the targets the next ones
    assert _decode(task.tokenizer_json(), split.tokens[0].tolist()) == text[:64]
    assert _decode(task.tokenizer_json(), split.targets[0].tolist()) == text[1:65]
    assert torch.all(split.targets != IGNORE)


def test_charlm_repeated_spans_only_in_train_windows() -> None:
    task = CharLM(options={"n_ctx": 128})
    train_files, test_files = task.split_files(0)
    plain = task.windows(train_files)
    data = task.data(0)
    assert torch.equal(data.train.tokens[:, 1:], data.train.targets[:, :-1])  # still next-character targets
    changed = (plain.tokens != data.train.tokens).any(dim=1) | (plain.targets != data.train.targets).any(dim=1)
    assert 0.45 < float(changed.float().mean()) < 0.55
    for i in torch.nonzero(changed).flatten()[:20].tolist():
        text = torch.cat([data.train.tokens[i], data.train.targets[i, -1:]]).tolist()
        # some 16-character stretch occurs twice (the copied span)
        grams = [tuple(text[j : j + 16]) for j in range(len(text) - 15)]
        assert len(set(grams)) < len(grams)
    held_out = task.windows(test_files)
    rows = {tuple(r) for r in held_out.tokens.tolist()}
    assert all(tuple(r) in rows for r in data.test.tokens.tolist())  # test windows are plain text
    assert len(data.test) == 256 and len(data.train_measured) == 256  # 32,768 characters each
    no_repeats = CharLM(options={"n_ctx": 128, "repeat_frac": 0}).data(0)
    assert torch.equal(no_repeats.train.tokens, plain.tokens)


# ---- registry


def test_registry() -> None:
    assert set(TASKS) == {"modadd", "parity", "sorting", "induction", "charlm"}
    with pytest.raises(InputError, match="unknown task"):
        get_task("brackets")
    for name, cls in TASKS.items():
        task = get_task(name)
        assert isinstance(task, cls) and task.name == name
        cfg = task.model_config()
        assert cfg.architecture == task.model_type
        assert Tokenizer.from_str(task.tokenizer_json()).get_vocab_size() == cfg.vocab_size


def test_cli_task_choices_match_the_registry() -> None:
    from tui_interp.cli.train import TaskChoice

    assert {c.value for c in TaskChoice} == set(TASKS)


# ---- theory files agree with the data


@pytest.mark.parametrize(("name", "options"), [("modadd", {}), ("parity", {"n_bits": 8}), ("sorting", {"n_test": 50})])
def test_theory_prompt_and_expectation_match_the_task_data(name: str, options: dict) -> None:
    parse_theory = pytest.importorskip("tui_interp.theory.theory").parse_theory

    task = get_task(name, **options)
    fname, text = task.theory()
    theory = parse_theory(text, path=fname)
    tok = Tokenizer.from_str(task.tokenizer_json())
    split = task.data(0).test.take(slice(0, 50))
    for tokens, targets in zip(split.tokens.tolist(), split.targets.tolist(), strict=True):
        if name == "modadd":
            inputs: dict = {"a": tokens[0], "b": tokens[1]}
        elif name == "parity":
            inputs = {"s": "".join(str(b) for b in tokens[:-1])}
        else:
            inputs = {"xs": tokens[:8]}
            tokens, targets = tokens[:9], targets[:9]  # the theory covers the first answer
        assert tok.encode(theory.render_prompt(inputs)).ids == tokens
        answer = next(t for t in targets if t != IGNORE)
        assert theory.render_expected(inputs) == tok.id_to_token(answer)
