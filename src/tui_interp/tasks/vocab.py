"""Tokenizers for the sample tasks, built with `tokenizers` and returned as tokenizer.json text.

Word-level: a fixed vocabulary of words split on whitespace (optionally every digit its own
token, so a bit string "0110" reads as four tokens). Char-level: one token per character,
decoded by concatenation, so decode(encode(text)) == text for any text over the alphabet,
newlines and runs of spaces included.
"""

from __future__ import annotations

from collections.abc import Sequence

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors

from tui_interp.errors import InputError

UNK = "[UNK]"
BOS = "[BOS]"


def _vocab(tokens: Sequence[str]) -> dict[str, int]:
    vocab: dict[str, int] = {}
    for tok in tokens:
        if tok in vocab:
            raise InputError(f"duplicate token {tok!r} in a task vocabulary")
        vocab[tok] = len(vocab)
    return vocab


def word_level_tokenizer(
    words: Sequence[str],
    *,
    split_digits: bool = False,
    bos: str | None = None,
) -> str:
    """A WordLevel tokenizer over `words` (ids in the given order), UNK for anything else.

    Text is split on whitespace; with `split_digits` each digit is a token of its own. With
    `bos`, that token (which must be in `words`) is marked special and prepended on encode.
    """
    tokens = list(words)
    if UNK not in tokens:
        tokens.append(UNK)
    vocab = _vocab(tokens)
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    if split_digits:
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Digits(individual_digits=True)]
        )
    else:
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    specials = [UNK]
    if bos is not None:
        if bos not in vocab:
            raise InputError(f"BOS token {bos!r} is not in the vocabulary")
        specials.insert(0, bos)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, vocab[bos])]
        )
    tok.add_special_tokens(specials)
    return tok.to_str(pretty=True)


def char_level_tokenizer(alphabet: str) -> str:
    """One token per character of `alphabet` (ids in its order), then UNK.

    Decoding concatenates the tokens, so text over the alphabet round-trips exactly.
    """
    vocab = _vocab([*alphabet, UNK])
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([UNK])
    return tok.to_str(pretty=True)


def encode(tokenizer_json: str, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text (special tokens included, as the tokenizer's post-processor adds them)."""
    tok = Tokenizer.from_str(tokenizer_json)
    return [enc.ids for enc in tok.encode_batch(list(texts))]
