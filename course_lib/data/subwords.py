"""One subword vocabulary shared by source and target: byte-pair encoding with Hugging Face ``tokenizers`` (chapter 09).

A word-level vocabulary of a translation corpus is large and still misses words at test time; a
character-level one makes sequences long. Byte-pair encoding (Sennrich et al. 2016) starts from the
characters and repeatedly merges the most frequent adjacent pair, so frequent words become one token
and rare words split into known pieces: ``"▁Sich" "êm"``.

The pipeline, stored whole in one JSON file:

* normalisation: Unicode NFC, so ``"e" + U+0302`` and ``"ê"`` are the same character;
* pre-tokenisation: Metaspace, which writes every space as ``▁`` and starts each word with it,
  so merges never cross a word boundary and decoding puts the spaces back exactly;
* the model: BPE trained on the given texts (English and Spanish together, so one embedding
  table serves both sides), special tokens at fixed ids ``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2,
  ``<unk>`` 3. A character never seen in training encodes as ``<unk>``.

``decode(encode([text])[0]) == NFC(text)`` for every text whose characters were in the training
corpus and that has no leading space.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from torch import Tensor

from course_lib import checks
from course_lib.files import write_bytes_atomic

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, BOS, EOS, UNK)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
WORD_START = "▁"


def _check_texts(texts: object) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, got a single str; wrap it in a list: [text]")
    if not isinstance(texts, Sequence):
        raise TypeError(f"texts must be a list of strings, got {type(texts).__name__}")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{index}] must be a str, got {type(text).__name__}")
    return list(texts)


def _check_special_ids(tokenizer: Tokenizer, origin: str) -> None:
    found = [tokenizer.token_to_id(token) for token in SPECIAL_TOKENS]
    if found != list(range(len(SPECIAL_TOKENS))):
        raise ValueError(
            f"{origin} must hold the special tokens {list(SPECIAL_TOKENS)} at ids 0-3, found ids {found}; "
            "train the vocabulary with SubwordVocab.train"
        )


def _empty_tokenizer() -> Tokenizer:
    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=WORD_START, prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement=WORD_START, prepend_scheme="always", split=True)
    return tokenizer


class SubwordVocab:
    """A BPE vocabulary with ``<pad> <bos> <eos> <unk>`` at ids 0-3, NFC and Metaspace pre-tokenisation (chapter 09).

    Build it with :meth:`train`, keep it with :meth:`save` and :meth:`load`; ``encode`` and ``decode``
    turn texts into id lists and back. Two vocabularies are equal when their JSON forms are equal.
    """

    def __init__(self, tokenizer: Tokenizer):
        if not isinstance(tokenizer, Tokenizer):
            raise TypeError(f"tokenizer must be a tokenizers.Tokenizer, got {type(tokenizer).__name__}")
        _check_special_ids(tokenizer, "the tokenizer")
        self.tokenizer = tokenizer

    @classmethod
    def train(cls, texts: Sequence[str], vocab_size: int = 8000, min_frequency: int = 2) -> SubwordVocab:
        """Learn BPE merges on ``texts``, up to ``vocab_size`` tokens in all (specials and characters included).

        Merging stops at ``vocab_size`` or when no pair occurs ``min_frequency`` times, so ``vocab_size`` is an
        upper bound. It must leave room for the 4 special tokens and every distinct
        character of ``texts``, else ValueError says how many ids those take.
        """
        texts = _check_texts(texts)
        vocab_size = checks.int_at_least("vocab_size", vocab_size, len(SPECIAL_TOKENS) + 1)
        min_frequency = checks.positive_int("min_frequency", min_frequency)
        if not any(text.strip() for text in texts):
            raise ValueError(f"texts hold no text to learn from ({len(texts)} empty or blank strings); "
                             "pass the training sentences of both languages")
        tokenizer = _empty_tokenizer()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                      special_tokens=list(SPECIAL_TOKENS), show_progress=False)
        tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
        needed = tokenizer.get_vocab_size()
        if needed > vocab_size:
            raise ValueError(
                f"vocab_size={vocab_size} is too small: the {len(SPECIAL_TOKENS)} special tokens and the distinct "
                f"characters of the corpus already take {needed} ids; choose vocab_size well above {needed}"
            )
        return cls(tokenizer)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SubwordVocab:
        """Read a vocabulary written by :meth:`save` (or any ``tokenizers`` JSON with the course's special ids)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no subword vocabulary at {path}; train one with SubwordVocab.train and save it")
        try:
            tokenizer = Tokenizer.from_str(path.read_text(encoding="utf-8"))
        except Exception as exc:  # tokenizers raises its own Exception type on bad JSON
            raise ValueError(f"{path} cannot be read as a subword vocabulary ({exc}); "
                             "delete it and train again") from exc
        _check_special_ids(tokenizer, str(path))
        return cls(tokenizer)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the whole pipeline (normaliser, pre-tokeniser, merges, decoder) as one JSON file, atomically."""
        return write_bytes_atomic(path, self.to_json().encode("utf-8"))

    def to_json(self) -> str:
        """The pipeline as a JSON string, the content :meth:`save` writes."""
        return self.tokenizer.to_str()

    @property
    def vocab_size(self) -> int:
        """How many ids there are, special tokens included: the size of the model's embedding table."""
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def __len__(self) -> int:
        return self.vocab_size

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SubwordVocab):
            return NotImplemented
        return self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return f"SubwordVocab(vocab_size={self.vocab_size:,})"

    def encode(self, texts: Sequence[str], *, add_bos: bool = False, add_eos: bool = True) -> list[list[int]]:
        """One id list per text, with ``<bos>`` first if ``add_bos`` and ``<eos>`` last if ``add_eos``."""
        texts = _check_texts(texts)
        for name, flag in (("add_bos", add_bos), ("add_eos", add_eos)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {flag!r}")
        head, tail = [BOS_ID] if add_bos else [], [EOS_ID] if add_eos else []
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        return [head + encoding.ids + tail for encoding in encodings]

    def pieces(self, text: str) -> list[str]:
        """The subword strings ``text`` splits into, e.g. ``["▁In", "▁the", "▁begin", "ning"]``."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return self.tokenizer.encode(text, add_special_tokens=False).tokens

    def decode(self, ids: Sequence[int] | Tensor) -> str:
        """The text of ``ids`` up to the first ``<eos>``, ``<pad>`` and ``<bos>`` left out, ``<unk>`` kept visible."""
        ids = self._check_ids(ids)
        if EOS_ID in ids:
            ids = ids[: ids.index(EOS_ID)]
        kept = [i for i in ids if i not in (PAD_ID, BOS_ID)]
        return self.tokenizer.decode(kept, skip_special_tokens=False)

    def decode_batch(self, rows: Sequence[Sequence[int]] | Tensor) -> list[str]:
        """:meth:`decode` of every row of a list of id lists or a 2-D id tensor."""
        if isinstance(rows, Tensor) and rows.dim() != 2:
            raise ValueError(f"rows as a tensor must be 2-D (batch, length), got shape {tuple(rows.shape)}")
        return [self.decode(row) for row in rows]

    def _check_ids(self, ids: object) -> list[int]:
        if isinstance(ids, Tensor):
            if ids.dim() != 1 or ids.is_floating_point() or ids.dtype == torch.bool:
                raise ValueError(f"ids as a tensor must be 1-D integer, got shape {tuple(ids.shape)} {ids.dtype}")
            ids = ids.tolist()
        if isinstance(ids, str) or not isinstance(ids, Sequence):
            raise TypeError(f"ids must be a list of ints, got {type(ids).__name__}")
        ids = list(ids)
        bad = [i for i in ids if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"ids must be ints in [0, vocab_size={self.vocab_size}), got {bad[:5]}")
        return ids


def pad_sequences(rows: Sequence[Sequence[int]], pad_id: int = PAD_ID) -> tuple[Tensor, Tensor]:
    """Right-pad id lists into ``(ids (B, L) long, mask (B, L) bool, True on real tokens)`` (chapter 09)."""
    if isinstance(rows, Tensor) or not isinstance(rows, Sequence) or not rows:
        raise ValueError("rows must be a non-empty list of id lists, as SubwordVocab.encode returns")
    if any(not row for row in rows):
        empty = [index for index, row in enumerate(rows) if not row]
        raise ValueError(f"every row needs at least one id; rows {empty} are empty")
    pad_id = checks.int_at_least("pad_id", pad_id, 0)
    length = max(len(row) for row in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    mask = torch.zeros(len(rows), length, dtype=torch.bool)
    for index, row in enumerate(rows):
        ids[index, : len(row)] = torch.as_tensor(list(row), dtype=torch.long)
        mask[index, : len(row)] = True
    return ids, mask
