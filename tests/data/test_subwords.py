"""Tests for course_lib.data.subwords: a small BPE vocabulary trained on real verse pairs."""

from __future__ import annotations

import unicodedata

import pytest
import torch

from course_lib.data import load_bible
from course_lib.data.subwords import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    SubwordVocab,
    pad_sequences,
)

VOCAB_SIZE = 400


@pytest.fixture(scope="module")
def verses():
    """English and Spanish sides of 200 training pairs, and of 20 test pairs."""
    corpus = load_bible()
    train = [text for pair in corpus.train[:200] for text in (pair.english, pair.spanish)]
    test = [text for pair in corpus.test[:20] for text in (pair.english, pair.spanish)]
    return train, test


@pytest.fixture(scope="module")
def vocab(verses):
    return SubwordVocab.train(verses[0], vocab_size=VOCAB_SIZE)


def test_special_tokens_sit_at_fixed_ids(vocab):
    assert (PAD_ID, BOS_ID, EOS_ID, UNK_ID) == (0, 1, 2, 3)
    assert [vocab.tokenizer.token_to_id(token) for token in SPECIAL_TOKENS] == [0, 1, 2, 3]
    assert len(vocab) == vocab.vocab_size <= VOCAB_SIZE
    assert vocab.vocab_size > VOCAB_SIZE - 50  # 200 verse pairs give enough pairs to merge


def test_training_verses_round_trip_exactly(vocab, verses):
    rows = vocab.encode(verses[0])
    assert all(row[-1] == EOS_ID and EOS_ID not in row[:-1] for row in rows)
    assert all(UNK_ID not in row for row in rows)
    assert vocab.decode_batch(rows) == [unicodedata.normalize("NFC", text) for text in verses[0]]


def test_unseen_verses_round_trip_apart_from_unknown_characters(vocab, verses):
    rows = vocab.encode(verses[1])
    decoded = vocab.decode_batch(rows)
    known = [(row, text, out) for row, text, out in zip(rows, verses[1], decoded, strict=True) if UNK_ID not in row]
    assert len(known) >= len(rows) // 2
    assert all(out == text for _, text, out in known)


def test_subwords_are_shorter_than_characters_and_split_words(vocab):
    text = "In the beginning God created the heaven and the earth."
    pieces = vocab.pieces(text)
    assert "".join(pieces).replace("▁", " ").strip() == text
    assert len(pieces) < len(text) / 2
    assert all(piece.startswith("▁") for piece in vocab.pieces("the the and"))


def test_nfc_makes_composed_and_decomposed_accents_one_text(vocab):
    composed, decomposed = "Y fué la luz á la tierra", "Y fue\u0301 la luz a\u0301 la tierra"
    assert composed != decomposed and UNK_ID not in vocab.encode([composed])[0]
    assert vocab.encode([composed]) == vocab.encode([decomposed])
    assert vocab.decode(vocab.encode([decomposed])[0]) == composed


def test_encode_flags_and_decode_stops_at_eos_and_skips_pad_and_bos(vocab):
    plain = vocab.encode(["the earth"], add_eos=False)[0]
    both = vocab.encode(["the earth"], add_bos=True, add_eos=True)[0]
    assert both == [BOS_ID, *plain, EOS_ID]
    noisy = [PAD_ID, BOS_ID, *plain, EOS_ID, *vocab.encode(["la tierra"], add_eos=False)[0], PAD_ID]
    assert vocab.decode(noisy) == "the earth"
    assert vocab.decode(torch.tensor(noisy)) == "the earth"
    assert vocab.decode([]) == ""


def test_unknown_characters_become_unk_and_stay_visible(vocab):
    row = vocab.encode(["the ☃ earth"], add_eos=False)[0]
    assert UNK_ID in row
    assert vocab.decode(row) == "the <unk> earth"


def test_save_and_load_give_an_equal_vocabulary(vocab, tmp_path):
    path = vocab.save(tmp_path / "sub" / "vocab.json")
    assert path.exists() and not list(path.parent.glob("*.tmp"))
    again = SubwordVocab.load(path)
    assert again == vocab and again is not vocab
    texts = ["And God said, Let there be light.", "Y dijo Dios: Sea la luz: y fué la luz."]
    assert again.encode(texts) == vocab.encode(texts)
    assert repr(again) == f"SubwordVocab(vocab_size={vocab.vocab_size:,})"


def test_pad_sequences_right_pads_and_masks():
    ids, mask = pad_sequences([[5, 6, 2], [7, 2]])
    assert ids.tolist() == [[5, 6, 2], [7, 2, 0]] and ids.dtype == torch.long
    assert mask.tolist() == [[True, True, True], [True, True, False]]
    with pytest.raises(ValueError, match=r"rows \[1\] are empty"):
        pad_sequences([[5], []])
    with pytest.raises(ValueError, match="non-empty list of id lists"):
        pad_sequences([])


@pytest.mark.parametrize(
    ("texts", "kwargs", "error", "match"),
    [
        ([], {}, ValueError, "texts hold no text to learn from"),
        (["", "   "], {}, ValueError, "texts hold no text to learn from"),
        ("the earth", {}, TypeError, "got a single str; wrap it in a list"),
        (["ok", 3], {}, TypeError, r"texts\[1\] must be a str, got int"),
        (["the earth and the heaven"], {"vocab_size": 4}, ValueError, "vocab_size must be an int >= 5, got 4"),
        (["the earth and the heaven"], {"vocab_size": 8}, ValueError, "vocab_size=8 is too small: .* take 13 ids"),
        (["the earth"], {"min_frequency": 0}, ValueError, "min_frequency must be a positive int"),
    ],
)
def test_training_rejects_bad_input(texts, kwargs, error, match):
    with pytest.raises(error, match=match):
        SubwordVocab.train(texts, **kwargs)


def test_bad_files_and_ids_give_clear_errors(vocab, tmp_path):
    with pytest.raises(FileNotFoundError, match="no subword vocabulary at .*missing.json"):
        SubwordVocab.load(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="cannot be read as a subword vocabulary"):
        SubwordVocab.load(broken)
    with pytest.raises(ValueError, match=rf"ids must be ints in \[0, vocab_size={vocab.vocab_size}\)"):
        vocab.decode([5, vocab.vocab_size])
    with pytest.raises(TypeError, match="wrap it in a list"):
        vocab.encode("the earth")
    with pytest.raises(TypeError, match="add_eos must be a bool"):
        vocab.encode(["the earth"], add_eos=1)
