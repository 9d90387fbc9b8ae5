"""Case: named-entity recognition as reading comprehension — extractive QA over MSRA (chapter 09).

Li et al. 2020 ("A Unified MRC Framework for Named Entity Recognition") ask one natural-language
question per entity type and let a model mark the answer spans in the sentence; with BERT-large
they report 95.75 F1 on MSRA. This case builds that task from the course's MSRA data:

- every sentence becomes a *passage* (cut to the window that ``max_len`` leaves after the longest
  question), every entity type a Chinese *question* (:data:`QUESTIONS`), and the answers are the
  spans of that type in the window: none, one or several;
- the model reads ``[CLS] question [SEP] passage`` character by character
  (:class:`~course_lib.nn.span.SpanExtractor`) and gives every passage position a binary start
  and a binary end probability; :func:`decode_spans` pairs each predicted start with the nearest
  predicted end at or after it;
- :func:`span_f1` scores exact (sentence, type, start, end) matches, for the span models and, on
  the same passages, for chapter 07's shipped BIO tagger (:func:`tagger_spans`).

Three roles share the teacher's character vocabulary, sentences and epochs: the teacher, a tiny
``scratch`` student on the labels only, and a tiny ``span_kd`` student that also matches the
teacher's start/end probabilities (:func:`span_kd_loss`: a binary sigmoid is a two-way softmax
over the logits ``[0, z]``, so Hinton's loss :func:`~course_lib.kd.losses.kd_loss` applies as it
is). This is not open-domain QA: the questions are three fixed templates and the "document" is
one sentence.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from course_lib import checks
from course_lib.cases.common import (
    Role,
    batch1_latency,
    case_recipes,
    check_role,
    role_recipe,
    roles,
    rounded,
    teacher_then_students,
)
from course_lib.cases.ner.reference import reference_teacher
from course_lib.context import CourseContext, context_mode_and_device
from course_lib.data import LABELS, CharVocab, NerCorpus, Sentence, load_msra, ner_loader
from course_lib.data.msra import extract_entities
from course_lib.files import sha256_text
from course_lib.kd.losses import kd_loss
from course_lib.kd.methods import DistillRecipe
from course_lib.kd.teacher import TeacherLogitCache
from course_lib.nn.span import SpanExtractor
from course_lib.nn.transformer import TransformerShape, count_parameters
from course_lib.train.cache import load_or_train, model_path
from course_lib.train.decoding import decode_tags
from course_lib.train.fit import Trained, cpu_threads, fit
from course_lib.train.loop import move_to_device

ENTITY_TYPES: tuple[str, ...] = ("PER", "LOC", "ORG")
QUESTIONS: dict[str, str] = {
    "PER": "找出文中提到的人名",
    "LOC": "找出文中提到的地名，如国家、城市、山川",
    "ORG": "找出文中提到的机构名，如公司、政府部门、学校",
}
CLS, SEP = "[CLS]", "[SEP]"
SPAN_QA_ROLES = roles(
    Role("teacher", "teacher"),
    Role("scratch", "(a) student, labels only"),
    Role("span_kd", "(b) student, span-level KD", "logits"),
)
# Li et al. 2020, Table 3: BERT-MRC on MSRA (Chinese), F1 95.75 with BERT-large as the encoder.
LI_2020 = {"model": "BERT-MRC, BERT-large encoder", "msra_f1": 0.9575, "parameters": 340_000_000}

Span = tuple[int, str, int, int]  # (sentence, entity type, start, end exclusive)


@dataclass(frozen=True)
class QAExample:
    """One question about one passage and its answers as (start, end exclusive) in the passage (chapter 09)."""

    sentence: int
    kind: str
    question: str
    passage: str
    answers: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class SpanQARecipe(DistillRecipe, TransformerShape):
    """Shape, data and optimisation of one span extractor, and how it learns (chapter 09).

    ``max_len`` counts ``[CLS] question [SEP] passage``; the passage is the first
    :func:`passage_window` characters of a sentence. ``train_sentences`` and ``dev_sentences``
    count sentences from the start of each split (None: all); each gives one question per entity
    type. ``method`` is "labels" (binary cross-entropy on the gold starts and ends) or "logits"
    (span-level KD at ``temperature``, ``alpha`` on the labels); ``positive_weight`` weighs the gold
    starts and ends in the cross-entropy (:func:`span_loss`). ``max_span`` bounds a decoded
    answer's length in characters.
    """

    epochs: int = 2
    lr: float = 2e-3
    warmup_fraction: float = 0.1
    max_len: int = 64
    train_sentences: int | None = 3000
    dev_sentences: int | None = 500
    vocab_min_freq: int = 1
    max_span: int = 30
    positive_weight: float = 1.0
    threads: int = 1

    def check(self) -> None:
        super().check()
        checks.one_of("method", self.method, ("labels", "logits"))
        checks.optional_positive_int("train_sentences", self.train_sentences)
        checks.optional_positive_int("dev_sentences", self.dev_sentences)
        checks.positive_int("vocab_min_freq", self.vocab_min_freq)
        checks.positive_int("max_span", self.max_span)
        checks.positive_number("positive_weight", self.positive_weight)
        passage_window(self.max_len)
        self.model_config(2)


_TEACHER = {
    "fast": {"d_model": 64, "num_heads": 4, "num_layers": 2, "d_ff": 256, "max_len": 64, "train_sentences": 2000,
             "dev_sentences": 300, "epochs": 3, "lr": 3e-3, "positive_weight": 5.0, "bigram_buckets": 4096,
             "bigram_dim": 32},
    "full": {"d_model": 256, "num_heads": 8, "num_layers": 4, "d_ff": 1024, "max_len": 160, "train_sentences": None,
             "dev_sentences": None, "epochs": 8, "lr": 5e-4, "patience": 2, "threads": 2, "positive_weight": 2.0,
             "bigram_buckets": 16384, "bigram_dim": 64},
}
_TINY = {
    "fast": {"d_model": 16, "num_heads": 2, "num_layers": 1, "d_ff": 64, "lr": 5e-3, "bigram_buckets": 4096,
             "bigram_dim": 4},
    "full": {"d_model": 64, "num_heads": 4, "num_layers": 2, "d_ff": 256, "lr": 2e-3, "bigram_buckets": 16384,
             "bigram_dim": 16},
}
_TEST_SENTENCES = {"fast": 1000, "full": None}


def span_qa_recipe(role: str, mode: str) -> SpanQARecipe:
    """The course's recipe for ``role`` in ``mode``; the students read the teacher's sentences for its epochs (chapter 09)."""
    return role_recipe(SpanQARecipe, SPAN_QA_ROLES, role, mode, _TEACHER, _TINY,
                       ("max_len", "epochs", "patience", "train_sentences", "dev_sentences", "threads", "positive_weight"))


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


def encode_example(example: QAExample, vocab: CharVocab) -> tuple[list[int], int]:
    """The ids of ``[CLS] question [SEP] passage`` and the offset of the passage's first character (chapter 09).

    An answer (start, end) of the passage sits at (start + offset, end + offset) in the ids.
    """
    if CLS not in vocab.tokens() or SEP not in vocab.tokens():
        raise ValueError("the vocabulary lacks [CLS] and [SEP]: build it with qa_vocab()")
    question = [vocab.index(CLS), *vocab.encode(example.question), vocab.index(SEP)]
    return question + vocab.encode(example.passage), len(question)


_Row = tuple[int, list[int], int, QAExample]  # (example index, ids, passage offset, example)


def _collate(rows: Sequence[_Row]) -> dict[str, Tensor]:
    """``input_ids``, ``mask``, ``passage`` (True where an answer may lie), ``start``/``end`` targets, ``offset``, ``index``."""
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
              seed: int = 0) -> DataLoader:
    """Batches of encoded examples (see :func:`encode_example`), a seeded new order each epoch when ``shuffle`` (chapter 09).

    ``index`` is each example's position in ``examples``, so a teacher's logits cached once
    (:class:`~course_lib.kd.teacher.TeacherLogitCache`) are found however the batches are shuffled.
    """
    if not examples:
        raise ValueError("examples is empty: there is nothing to batch")
    rows = [(index, *encode_example(example, vocab), example) for index, example in enumerate(examples)]
    return DataLoader(rows, batch_size=checks.positive_int("batch_size", batch_size), shuffle=shuffle,
                      collate_fn=_collate, generator=torch.Generator().manual_seed(seed))


def _pairs(batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
    """The start then end targets (B, 2L) as class ids and the passage mask repeated to match."""
    labels = torch.cat([batch["start"], batch["end"]], dim=1).long()
    return labels, torch.cat([batch["passage"], batch["passage"]], dim=1)


def two_class_logits(logits: Tensor) -> Tensor:
    """Start/end logits (B, L, 2) as two-class logits ``[0, z]`` (B, 2L, 2): starts first, then ends (chapter 09).

    ``softmax([0, z])[1] = sigmoid(z)``: a binary decision is a two-way softmax, so the course's
    softmax losses (cross-entropy, Hinton's KD loss) apply to it unchanged.
    """
    if not isinstance(logits, Tensor) or logits.dim() != 3 or logits.shape[-1] != 2:
        raise ValueError(f"logits must be (batch, length, 2) start/end logits, got "
                         f"{tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__}")
    flat = torch.cat([logits[..., 0], logits[..., 1]], dim=1)
    return torch.stack([torch.zeros_like(flat), flat], dim=-1)


def _hard_loss(logits: Tensor, batch: Mapping[str, Tensor], positive_weight: float) -> Tensor:
    """Binary cross-entropy of (B, L, 2) start/end logits at passage positions; gold positions weigh ``positive_weight``."""
    labels, passage = _pairs(batch)
    flat = two_class_logits(logits)[..., 1]
    weight = torch.tensor(checks.positive_number("positive_weight", positive_weight), device=flat.device)
    return F.binary_cross_entropy_with_logits(flat[passage], labels[passage].float(), pos_weight=weight)


def span_loss(model: nn.Module, batch: Mapping[str, Tensor], positive_weight: float = 1.0) -> Tensor:
    """Binary cross-entropy of the start and end logits against the gold ones, over passage positions (chapter 09).

    Only about one passage position in fifty starts an answer; ``positive_weight`` > 1 (PyTorch's
    ``pos_weight``) counts each gold start and end that many times, so a small model trained
    briefly still learns to say "yes" somewhere.
    """
    logits = model(batch["input_ids"], mask=batch["mask"], passage_mask=batch["passage"]).logits
    return _hard_loss(logits, batch, positive_weight)


def span_kd_loss(student_logits: Tensor, teacher_logits: Tensor, batch: Mapping[str, Tensor], temperature: float,
                 alpha: float, positive_weight: float = 1.0) -> Tensor:
    """Span-level KD: ``alpha`` × binary CE + ``(1 − alpha)`` × T² × binary KL to the teacher, over passage positions (chapter 09).

    The soft term is :func:`~course_lib.kd.losses.kd_loss` (at ``alpha = 0``) on
    :func:`two_class_logits`; the hard term is :func:`span_loss`'s. With ``positive_weight = 1``
    the sum is exactly ``kd_loss`` with the gold starts and ends as labels; it is 0 at
    ``alpha = 0`` when the student's logits are the teacher's.
    """
    alpha = checks.alpha(alpha)
    _, passage = _pairs(batch)
    parts = []
    if alpha > 0:
        parts.append(alpha * _hard_loss(student_logits, batch, positive_weight))
    if alpha < 1:
        parts.append((1 - alpha) * kd_loss(two_class_logits(student_logits), two_class_logits(teacher_logits), None,
                                           temperature, 0.0, mask=passage))
    return sum(parts[1:], parts[0])


def decode_spans(start_probs: Sequence[float], end_probs: Sequence[float], threshold: float = 0.5,
                 max_span: int = 30) -> list[tuple[int, int]]:
    """Answer spans (start, end exclusive) from per-position start and end probabilities of one passage (chapter 09).

    Every position whose start probability exceeds ``threshold`` is paired with the nearest
    position at or after it whose end probability exceeds ``threshold``, if the span is at most
    ``max_span`` characters long; a start without such an end gives no answer.
    """
    if len(start_probs) != len(end_probs):
        raise ValueError(f"need one start and one end probability per position, got {len(start_probs)} "
                         f"and {len(end_probs)}")
    checks.number_in("threshold", threshold, 0.0, 1.0, high_open=True)
    checks.positive_int("max_span", max_span)
    ends = [position for position, p in enumerate(end_probs) if p > threshold]
    spans = []
    for start, p in enumerate(start_probs):
        if p > threshold:
            end = next((e for e in ends if e >= start), None)
            if end is not None and end - start < max_span:
                spans.append((start, end + 1))
    return spans


def gold_spans(examples: Iterable[QAExample]) -> set[Span]:
    """Every answer of ``examples`` as (sentence, type, start, end exclusive) (chapter 09)."""
    return {(example.sentence, example.kind, start, end) for example in examples for start, end in example.answers}


def span_f1(gold: Iterable[Span], predicted: Iterable[Span]) -> dict[str, float]:
    """Exact-match micro ``precision``, ``recall`` and ``f1`` of predicted spans against gold spans (chapter 09).

    A span counts only when its sentence, type, start and end all match; nothing predicted or
    nothing to find gives 0 for that part (seqeval's convention).
    """
    gold, predicted = set(gold), set(predicted)
    correct = len(gold & predicted)
    precision = correct / len(predicted) if predicted else 0.0
    recall = correct / len(gold) if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def span_scores(gold: Iterable[Span], predicted: Iterable[Span]) -> dict[str, dict[str, float]]:
    """:func:`span_f1` over all spans (``"all"``) and per entity type (chapter 09)."""
    gold, predicted = set(gold), set(predicted)
    scores = {"all": span_f1(gold, predicted)}
    for kind in ENTITY_TYPES:
        scores[kind] = span_f1({s for s in gold if s[1] == kind}, {s for s in predicted if s[1] == kind})
    return scores


@torch.no_grad()
def _batches_spans(model: nn.Module, batches: Iterable[Mapping[str, Tensor]], examples: Sequence[QAExample],
                   max_span: int) -> set[Span]:
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    spans: set[Span] = set()
    for batch in batches:
        moved = move_to_device(dict(batch), device)
        output = model(moved["input_ids"], mask=moved["mask"], passage_mask=moved["passage"])
        starts, ends = torch.sigmoid(output.start_logits).cpu(), torch.sigmoid(output.end_logits).cpu()
        for row, (index, offset) in enumerate(zip(batch["index"].tolist(), batch["offset"].tolist())):
            example = examples[index]
            window = slice(offset, offset + len(example.passage))
            spans |= {(example.sentence, example.kind, start, end)
                      for start, end in decode_spans(starts[row, window].tolist(), ends[row, window].tolist(),
                                                     max_span=max_span)}
    model.train(was_training)
    return spans


def predict_spans(model: nn.Module, examples: Sequence[QAExample], vocab: CharVocab, max_span: int = 30,
                  batch_size: int = 128) -> set[Span]:
    """The answers ``model`` gives to ``examples``, decoded by :func:`decode_spans`, as (sentence, type, start, end) (chapter 09)."""
    return _batches_spans(model, qa_loader(examples, vocab, batch_size, shuffle=False), examples, max_span)


def tagger_spans(model: nn.Module, vocab: CharVocab, sentences: Sequence[Sentence], max_len: int) -> set[Span]:
    """The entities a BIO tagger finds in the passages of ``sentences`` (Viterbi decoding), as (sentence, type, start, end) (chapter 09).

    The tagger reads each sentence's :func:`passage_window` characters — the very passages the
    span models answer questions about — so :func:`span_f1` compares the two on equal terms.
    """
    window = passage_window(max_len)
    passages = [Sentence(sentence.chars[:window], sentence.tags[:window]) for sentence in sentences]
    spans: set[Span] = set()
    number = 0
    model.eval()
    with torch.no_grad():
        for batch in ner_loader(passages, vocab, batch_size=128, shuffle=False):
            for tags in decode_tags(model(batch["input_ids"], mask=batch["mask"]).logits, batch["mask"], LABELS):
                chars = passages[number].chars
                spans |= {(number, kind, start, end) for _, kind, start, end in extract_entities(chars, tags)}
                number += 1
    return spans


@dataclass
class SpanQAData:
    """The questions of each split for one ``max_len``, and a digest of the training ones (chapter 09)."""

    train: list[QAExample]
    dev: list[QAExample]
    test: list[QAExample]
    test_sentences: list[Sentence]
    digest: str

    def counts(self) -> dict[str, dict[str, int]]:
        """:func:`qa_counts` of every split."""
        return {name: qa_counts(getattr(self, name)) for name in ("train", "dev", "test")}


def _first(sentences: Sequence[Sentence], count: int | None) -> list[Sentence]:
    return list(sentences if count is None else sentences[:count])


def span_qa_data(corpus: NerCorpus, recipe: SpanQARecipe, test_sentences: int | None = None) -> SpanQAData:
    """The examples of ``recipe``'s training and dev sentences and of the first ``test_sentences`` test ones (chapter 09)."""
    if not isinstance(corpus, NerCorpus):
        raise TypeError(f"corpus must be a NerCorpus (from load_msra()), got {type(corpus).__name__}")
    checks.optional_positive_int("test_sentences", test_sentences)
    train = qa_examples(_first(corpus.train, recipe.train_sentences), recipe.max_len)
    test = _first(corpus.test, test_sentences)
    dev = qa_examples(_first(corpus.dev, recipe.dev_sentences), recipe.max_len)
    digest = sha256_text(json.dumps([[e.passage, e.kind, e.answers] for e in (*train, *dev)], ensure_ascii=False))
    return SpanQAData(train=train, dev=dev, test=qa_examples(test, recipe.max_len), test_sentences=test, digest=digest)


def _student_loss(recipe: SpanQARecipe, cache: TeacherLogitCache | None) -> Any:
    """The training loss of ``recipe``: :func:`span_loss`'s, or :func:`span_kd_loss` against the cached teacher."""
    def loss(model: nn.Module, batch: Mapping[str, Tensor]) -> Tensor:
        logits = model(batch["input_ids"], mask=batch["mask"], passage_mask=batch["passage"]).logits
        if cache is None:
            return _hard_loss(logits, batch, recipe.positive_weight)
        teacher = cache.lookup(batch["index"], logits.shape[1]).to(logits.device)
        return span_kd_loss(logits, teacher, batch, recipe.temperature, recipe.alpha, recipe.positive_weight)

    return loss


def _fit_span_model(model: nn.Module, role: str, recipe: SpanQARecipe, data: SpanQAData, vocab: CharVocab,
                    teacher: nn.Module | None, device: torch.device, progress: bool) -> Trained:
    """Train ``model`` as ``recipe`` says; keep the epoch of best dev span F1; ``seconds`` include the teacher's pass."""
    loader = qa_loader(data.train, vocab, recipe.batch_size, shuffle=True, seed=recipe.seed)
    cache, teacher_seconds = None, 0.0
    if recipe.method == "logits":
        start = time.perf_counter()
        with cpu_threads(device, recipe.threads):
            cache = TeacherLogitCache.build(teacher, qa_loader(data.train, vocab, 256, shuffle=False), device=device)
        teacher_seconds = time.perf_counter() - start
    dev = qa_loader(data.dev, vocab, 256, shuffle=False)
    gold = gold_spans(data.dev)

    def evaluate(trained_model: nn.Module, batches: Iterable[Mapping[str, Tensor]]) -> dict[str, float]:
        return span_f1(gold, _batches_spans(trained_model, batches, data.dev, recipe.max_span))

    trained = fit(model, loader, recipe, loss_fn=_student_loss(recipe, cache), dev_loader=dev, evaluate_fn=evaluate,
                  monitor="f1", device=device, progress=progress, desc=SPAN_QA_ROLES[role].title)
    trained.seconds += teacher_seconds
    trained.metrics = {"dev_f1": float(trained.history.best_score),
                       "dev_curve": [float(record.dev["f1"]) for record in trained.history.epochs]}
    return trained


def span_qa_model(context: CourseContext, role: str, recipe: SpanQARecipe, data: SpanQAData, *,
                  teacher: Trained | None = None, progress: bool = True) -> Trained:
    """The cached span extractor of ``role`` and ``recipe``, or train and cache it; a student needs ``teacher`` (chapter 09).

    A model is keyed by its recipe, the training questions and (a student) the teacher's
    checkpoint; students read the teacher's vocabulary.
    """
    mode, device = context_mode_and_device(context)
    check_role(role, SPAN_QA_ROLES)
    if recipe.method != SPAN_QA_ROLES[role].method:
        raise ValueError(f"recipe.method={recipe.method!r} does not match the role {role!r}, which learns by "
                         f"{SPAN_QA_ROLES[role].method!r}")
    is_teacher = role == next(iter(SPAN_QA_ROLES))
    if not is_teacher and (teacher is None or teacher.path is None or teacher.vocab is None):
        raise ValueError(f"the student {role!r} needs the teacher's Trained as span_qa_model returns it "
                         "(cached, with its path and vocabulary)")
    depends_on: dict[str, Any] = {"data": data.digest}
    if not is_teacher:
        depends_on["teacher"] = teacher.path

    def build(vocab: CharVocab | None) -> nn.Module:
        torch.manual_seed(recipe.seed)
        return SpanExtractor(recipe.model_config(len(vocab)))

    def train(model: nn.Module, vocab: CharVocab) -> Trained:
        teacher_model = teacher.model.to(device).eval() if recipe.method == "logits" else None
        return _fit_span_model(model, role, recipe, data, vocab, teacher_model, device, progress)

    vocab = (lambda: qa_vocab(data.train, recipe.vocab_min_freq)) if is_teacher else (lambda: teacher.vocab)
    return load_or_train(model_path(f"span_qa_{role}", mode), recipe, build=build, train=train, vocab=vocab,
                         depends_on=depends_on, device=device)


@dataclass
class SpanQARow:
    """One model of the comparison, measured on the test passages (chapter 09)."""

    role: str
    title: str
    parameters: int
    f1: float
    precision: float
    recall: float
    per_type_f1: dict[str, float]
    latency_batch1_ms: float
    train_seconds: float | None
    dev_curve: list[float]


@dataclass
class SpanQAComparison:
    """Every row of the comparison, the data's counts and a few answered questions; the models are not serialised (chapter 09)."""

    mode: str
    rows: dict[str, SpanQARow]
    counts: dict[str, dict[str, int]]
    examples: list[dict[str, Any]]
    models: dict[str, Trained] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The measured part as a plain dict (the models are left out)."""
        return {"mode": self.mode, "counts": self.counts, "rows": {role: rounded(row) for role, row in self.rows.items()},
                "examples": self.examples, "li_2020": LI_2020}


def _row(role: str, title: str, model: nn.Module, scores: dict[str, dict[str, float]], latency_ms: float,
         seconds: float | None, dev_curve: list[float]) -> SpanQARow:
    overall = scores["all"]
    return SpanQARow(role=role, title=title, parameters=count_parameters(model), f1=overall["f1"],
                     precision=overall["precision"], recall=overall["recall"],
                     per_type_f1={kind: scores[kind]["f1"] for kind in ENTITY_TYPES}, latency_batch1_ms=latency_ms,
                     train_seconds=seconds, dev_curve=dev_curve)


def _answered(examples: Sequence[QAExample], predicted: Mapping[str, set[Span]], count: int) -> list[dict[str, Any]]:
    """The first ``count`` test questions with an answer: question, passage, gold and each model's answers as text."""
    chosen = [example for example in examples if example.answers][:count]

    def texts(example: QAExample, spans: Iterable[Span]) -> list[str]:
        found = sorted((s, e) for n, k, s, e in spans if n == example.sentence and k == example.kind)
        return [example.passage[s:e] for s, e in found]

    return [{"question": example.question, "passage": example.passage,
             "gold": [example.passage[s:e] for s, e in example.answers],
             **{role: texts(example, spans) for role, spans in predicted.items()}} for example in chosen]


def compare_span_qa(
    context: CourseContext,
    *,
    corpus: NerCorpus | None = None,
    recipes: dict[str, SpanQARecipe] | None = None,
    test_sentences: int | None | str = "mode",
    latency_rounds: int = 10,
    examples: int = 3,
    reference: nn.Module | None = None,
    reference_vocab: CharVocab | None = None,
    progress: bool = True,
) -> SpanQAComparison:
    """Train (or load) the teacher and both students and measure them, beside chapter 07's BIO tagger (chapter 09).

    ``recipes`` defaults to the course's for the mode; ``test_sentences`` counts the test sentences
    scored ("mode": the mode's count, None: all). The rows hold test span F1 (overall and per type),
    parameters, the dev curve, the training seconds and the CPU milliseconds per passage at batch 1;
    the row ``"reference_tagger"`` scores ``reference`` (default: the shipped reference teacher,
    :func:`~course_lib.cases.ner.reference.reference_teacher`) on the same test passages.
    """
    mode, device = context_mode_and_device(context)
    corpus = corpus if corpus is not None else load_msra()
    recipes = case_recipes(SPAN_QA_ROLES, recipes, lambda role: span_qa_recipe(role, mode), same="max_len")
    if test_sentences == "mode":
        test_sentences = _TEST_SENTENCES[mode]
    if (reference is None) != (reference_vocab is None):
        raise ValueError("pass both reference and reference_vocab, or neither (the shipped reference teacher)")
    teacher_recipe = recipes["teacher"]
    data = span_qa_data(corpus, teacher_recipe, test_sentences)
    trained = teacher_then_students(SPAN_QA_ROLES, lambda role, teacher: span_qa_model(
        context, role, recipes[role], data, teacher=teacher, progress=progress))
    if reference is None:
        shipped = reference_teacher()
        reference, reference_vocab = shipped.model, shipped.vocab
    gold = gold_spans(data.test)
    with cpu_threads(device, teacher_recipe.threads):
        predicted = {role: predict_spans(model.model, data.test, model.vocab, teacher_recipe.max_span)
                     for role, model in trained.items()}
        predicted["reference_tagger"] = tagger_spans(reference, reference_vocab, data.test_sentences,
                                                     teacher_recipe.max_len)
    latency = _latencies(trained, reference, reference_vocab, data.test[0], latency_rounds)
    rows = {role: _row(role, SPAN_QA_ROLES[role].title, model.model, span_scores(gold, predicted[role]), latency[role],
                       model.seconds, model.metrics["dev_curve"]) for role, model in trained.items()}
    rows["reference_tagger"] = _row("reference_tagger", "chapter 07's BIO tagger (shipped reference)", reference,
                                    span_scores(gold, predicted["reference_tagger"]), latency["reference_tagger"],
                                    None, [])
    return SpanQAComparison(mode=mode, rows=rows, counts=data.counts(), examples=_answered(data.test, predicted, examples),
                            models=trained)


def _latencies(trained: Mapping[str, Trained], reference: nn.Module, reference_vocab: CharVocab, example: QAExample,
               rounds: int) -> dict[str, float]:
    """CPU ms per passage at batch 1: a span model answers its three questions one at a time, the tagger tags it once."""
    vocab = trained["teacher"].vocab
    batches = [_collate([(0, *encode_example(replace(example, kind=kind, question=QUESTIONS[kind]), vocab), example)])
               for kind in ENTITY_TYPES]

    def answer_all(model: nn.Module) -> None:
        for batch in batches:
            model(batch["input_ids"], mask=batch["mask"], passage_mask=batch["passage"])

    span_ms = batch1_latency({role: model.model for role, model in trained.items()}, answer_all, rounds)
    ids = torch.tensor([reference_vocab.encode(example.passage)])
    tagger_ms = batch1_latency({"reference_tagger": reference},
                               lambda model: model(ids, mask=torch.ones_like(ids, dtype=torch.bool)), rounds)
    return {**span_ms, **tagger_ms}
