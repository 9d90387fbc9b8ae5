"""Extractive QA over MSRA: questions, passages and batches (chapter 09).

Every sentence becomes a *passage* (cut to the window that ``max_len`` leaves after the longest
question), every entity type a Chinese *question* (:data:`QUESTIONS`), and the answers are the
spans of that type in the window: none, one or several. A model reads
``[CLS] question [SEP] passage`` character by character (:func:`encode_example`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from course_lib import checks
from course_lib.data import CharVocab, Sentence
from course_lib.data.msra import extract_entities

ENTITY_TYPES: tuple[str, ...] = ("PER", "LOC", "ORG")
QUESTIONS: dict[str, str] = {
    "PER": "找出文中提到的人名",
    "LOC": "找出文中提到的地名，如国家、城市、山川",
    "ORG": "找出文中提到的机构名，如公司、政府部门、学校",
}
CLS, SEP = "[CLS]", "[SEP]"
Span = tuple[int, str, int, int]  # (sentence, entity type, start, end exclusive)


@dataclass(frozen=True)
class QAExample:
    """One question about one passage and its answers as (start, end exclusive) in the passage (chapter 09)."""

    sentence: int
    kind: str
    question: str
    passage: str
    answers: tuple[tuple[int, int], ...]


def passage_window(max_len: int, questions: Mapping[str, str] = QUESTIONS) -> int:
    """How many passage characters fit in ``max_len`` beside ``[CLS]``, the longest question and ``[SEP]`` (chapter 09)."""
    checks.positive_int("max_len", max_len)
    window = max_len - 2 - max(len(question) for question in questions.values())
    if window < 1:
        raise ValueError(f"max_len={max_len} leaves no room for a passage after the longest question; "
                         f"use max_len of at least {max_len - window + 1}")
    return window


def qa_examples(sentences: Sequence[Sentence], max_len: int) -> list[QAExample]:
    """One :class:`QAExample` per sentence and entity type: the sentence's window and that type's spans in it (chapter 09).

    The passage is the sentence's first :func:`passage_window` characters; an entity that does not
    end inside it is not an answer. A sentence without an entity of a type gives that question an
    empty answer.
    """
    window = passage_window(max_len)
    examples = []
    for number, sentence in enumerate(sentences):
        if not isinstance(sentence, Sentence):
            raise TypeError(f"sentences must be MSRA Sentence objects, got {type(sentence).__name__} at {number}")
        entities = extract_entities(sentence.chars, sentence.tags)
        passage = sentence.text[:window]
        for kind in ENTITY_TYPES:
            answers = tuple((start, end) for _, found, start, end in entities if found == kind and end <= window)
            examples.append(QAExample(number, kind, QUESTIONS[kind], passage, answers))
    return examples


def qa_counts(examples: Sequence[QAExample]) -> dict[str, int]:
    """How many ``questions``, ``answers`` and questions ``without_answer`` the examples hold (chapter 09)."""
    return {"questions": len(examples), "answers": sum(len(example.answers) for example in examples),
            "without_answer": sum(not example.answers for example in examples)}


def qa_vocab(examples: Sequence[QAExample], min_freq: int = 1) -> CharVocab:
    """The characters of the training passages and of the questions, with ``[CLS]`` and ``[SEP]`` (chapter 09)."""
    passages = {example.sentence: example.passage for example in examples}
    return CharVocab.from_texts([*passages.values(), *QUESTIONS.values()], min_freq=min_freq, specials=(CLS, SEP))


def qa_vocab_over(base: CharVocab) -> CharVocab:
    """``base`` with ``[CLS]``, ``[SEP]`` and any question character it lacks added after its own tokens (chapter 09).

    Every token of ``base`` keeps its id, so an encoder trained over ``base`` (chapter 07's tagger)
    reads the questions with the embeddings it learned; only the added tokens are new.
    """
    if not isinstance(base, CharVocab):
        raise TypeError(f"base must be a CharVocab, got {type(base).__name__}")
    known = set(base.tokens())
    added = [CLS, SEP, *sorted({char for question in QUESTIONS.values() for char in question} - known)]
    return CharVocab([*base.tokens(), *(token for token in added if token not in known)])


def encode_example(example: QAExample, vocab: CharVocab) -> tuple[list[int], int]:
    """The ids of ``[CLS] question [SEP] passage`` and the offset of the passage's first character (chapter 09).

    An answer (start, end) of the passage sits at (start + offset, end + offset) in the ids.
    """
    if CLS not in vocab.tokens() or SEP not in vocab.tokens():
        raise ValueError("the vocabulary lacks [CLS] and [SEP]: build it with qa_vocab()")
    question = [vocab.index(CLS), *vocab.encode(example.question), vocab.index(SEP)]
    return question + vocab.encode(example.passage), len(question)


Row = tuple[int, list[int], int, QAExample]  # (example index, ids, passage offset, example)


def collate_examples(rows: Sequence[Row]) -> dict[str, Tensor]:
    """One batch of ``(index, ids, offset, example)`` rows: ``input_ids``, ``mask``, ``passage`` (True where an answer may lie), ``start``/``end`` targets, ``offset``, ``index`` (chapter 09)."""
    width = max(len(ids) for _, ids, _, _ in rows)
    batch = {name: torch.zeros(len(rows), width, dtype=torch.long) for name in ("input_ids",)}
    batch |= {name: torch.zeros(len(rows), width, dtype=torch.bool) for name in ("mask", "passage")}
    batch |= {name: torch.zeros(len(rows), width) for name in ("start", "end")}
    for row, (_, ids, offset, example) in enumerate(rows):
        batch["input_ids"][row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        batch["mask"][row, :len(ids)] = True
        batch["passage"][row, offset:len(ids)] = True
        for start, end in example.answers:
            batch["start"][row, offset + start] = 1.0
            batch["end"][row, offset + end - 1] = 1.0
    batch["offset"] = torch.tensor([offset for _, _, offset, _ in rows], dtype=torch.long)
    batch["index"] = torch.tensor([index for index, _, _, _ in rows], dtype=torch.long)
    return batch


def qa_loader(examples: Sequence[QAExample], vocab: CharVocab, batch_size: int, *, shuffle: bool,
              seed: int = 0, by_length: bool = False) -> DataLoader:
    """Batches of encoded examples (see :func:`encode_example`), a seeded new order each epoch when ``shuffle`` (chapter 09).

    ``index`` is each example's position in ``examples``, so a teacher's logits cached once
    (:class:`~course_lib.kd.teacher.TeacherLogitCache`) are found however the batches are shuffled.
    ``by_length`` (for passes that only read, without ``shuffle``) batches the examples from the
    shortest to the longest, so that little of each batch is padding; answers and cached logits
    are found by ``index`` whatever the order.
    """
    if not examples:
        raise ValueError("examples is empty: there is nothing to batch")
    if shuffle and by_length:
        raise ValueError("by_length orders the examples itself: use it with shuffle=False")
    batch_size = checks.positive_int("batch_size", batch_size)
    rows = [(index, *encode_example(example, vocab), example) for index, example in enumerate(examples)]
    generator = torch.Generator().manual_seed(seed)  # its own: iterating never draws from the global generator
    if by_length:
        order = sorted(range(len(rows)), key=lambda index: len(rows[index][1]))
        batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
        return DataLoader(rows, batch_sampler=batches, collate_fn=collate_examples, generator=generator)
    return DataLoader(rows, batch_size=batch_size, shuffle=shuffle, collate_fn=collate_examples, generator=generator)
