"""Case: named-entity recognition as reading comprehension — a teacher and two students over MSRA questions (chapter 09).

Li et al. 2020 ("A Unified MRC Framework for Named Entity Recognition") ask one natural-language
question per entity type and let a model mark the answer spans in the sentence; with BERT-large
they report 95.75 F1 on MSRA. This case builds that task from the course's MSRA data
(:mod:`course_lib.cases.qa.questions`) and scores it by exact-match span F1
(:mod:`course_lib.cases.qa.spans`), for the span models and, on the same passages, for chapter
07's shipped BIO tagger.

Three roles share the teacher's character vocabulary and sentences: the teacher, which starts
from the encoder of chapter 07's shipped tagger as BERT-MRC starts from BERT
(:func:`~course_lib.nn.transformer.load_encoder_weights`), a small ``scratch`` student on the
labels only, and a small ``span_kd`` student that also matches the teacher's start/end
probabilities (:func:`~course_lib.cases.qa.spans.span_kd_loss`); the two students start from
random weights and get the same epochs. This is not open-domain QA: the questions are three
fixed templates and the "document" is one sentence.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn

from course_lib import checks
from course_lib.cases.common import (
    Role,
    cpu_latency,
    case_recipes,
    check_role,
    role_recipe,
    roles,
    rounded,
    seed_summary,
    seed_verdict,
    seeds_by_role,
    teacher_then_students,
)
from course_lib.cases.ner.reference import ARTEFACT_NAME as NER_TEACHER
from course_lib.cases.ner.reference import reference_teacher
from course_lib.cases.qa.questions import (
    ENTITY_TYPES,
    QUESTIONS,
    QAExample,
    Span,
    collate_examples,
    encode_example,
    passage_window,
    qa_counts,
    qa_examples,
    qa_loader,
    qa_vocab,
    qa_vocab_over,
)
from course_lib.cases.qa.spans import (
    batches_spans,
    gold_spans,
    predict_spans,
    span_f1,
    span_hard_loss,
    span_kd_loss,
    span_scores,
    tagger_spans,
)
from course_lib.context import CourseContext, check_mode, context_mode_and_device
from course_lib.data import CharVocab, NerCorpus, Sentence, load_msra
from course_lib.files import sha256_json
from course_lib.kd.methods import DistillRecipe
from course_lib.kd.teacher import TeacherLogitCache
from course_lib.nn.span import SpanExtractor
from course_lib.nn.transformer import TransformerShape, count_parameters, load_encoder_weights
from course_lib.train.cache import load_or_train, model_path
from course_lib.train.fit import Trained, cpu_threads, fit

SPAN_QA_ROLES = roles(
    Role("teacher", "teacher"),
    Role("scratch", "(a) student, labels only"),
    Role("span_kd", "(b) student, span-level KD", "logits"),
)
# Li et al. 2020, Table 3: BERT-MRC on MSRA (Chinese), F1 95.75 with BERT-large as the encoder.
LI_2020 = {"model": "BERT-MRC, BERT-large encoder", "msra_f1": 0.9575, "parameters": 340_000_000}

@dataclass(frozen=True)
class SpanQARecipe(DistillRecipe, TransformerShape):
    """Shape, data and optimisation of one span extractor, and how it learns (chapter 09).

    ``max_len`` counts ``[CLS] question [SEP] passage``; the passage is the first
    :func:`passage_window` characters of a sentence. ``train_sentences`` and ``dev_sentences``
    count sentences from the start of each split (None: all); each gives one question per entity
    type. ``method`` is "labels" (binary cross-entropy on the gold starts and ends) or "logits"
    (span-level KD at ``temperature``, ``alpha`` on the labels); ``positive_weight`` weighs the gold
    starts and ends in the cross-entropy (:func:`span_loss`). ``max_span`` bounds a decoded
    answer's length in characters. ``encoder_from`` names a shipped model whose encoder starts this
    one (``"ner_teacher"``: chapter 07's tagger, as BERT-MRC starts from BERT; the shape must be its
    shape) or is None (random initialisation).
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
    encoder_from: str | None = None

    def check(self) -> None:
        super().check()
        checks.one_of("encoder_from", self.encoder_from, (None, NER_TEACHER))
        checks.one_of("method", self.method, ("labels", "logits"))
        checks.optional_positive_int("train_sentences", self.train_sentences)
        checks.optional_positive_int("dev_sentences", self.dev_sentences)
        checks.positive_int("vocab_min_freq", self.vocab_min_freq)
        checks.positive_int("max_span", self.max_span)
        checks.positive_number("positive_weight", self.positive_weight)
        passage_window(self.max_len)
        self.model_config(2)


# The teacher has the shape of chapter 07's shipped tagger, whose encoder it starts from.
_NER_TEACHER_SHAPE = {"d_model": 128, "num_heads": 4, "num_layers": 4, "d_ff": 512, "positional": "relative",
                      "bigram_buckets": 32768, "bigram_dim": 64, "encoder_from": NER_TEACHER}
_TEACHER = {
    "fast": {**_NER_TEACHER_SHAPE, "max_len": 64, "train_sentences": 2000, "dev_sentences": 300, "epochs": 2,
             "lr": 2e-3, "positive_weight": 2.0, "threads": 2},
    "full": {**_NER_TEACHER_SHAPE, "max_len": 128, "train_sentences": None, "dev_sentences": None, "epochs": 1,
             "lr": 1e-3, "threads": 2, "positive_weight": 2.0},
}
# Both students start from random weights, so they get the epochs that the pretrained teacher does not need.
_STUDENT = {
    "fast": {"d_model": 64, "num_heads": 4, "num_layers": 2, "d_ff": 256, "positional": "relative", "epochs": 3,
             "lr": 5e-3, "bigram_buckets": 8192, "bigram_dim": 32},
    "full": {"d_model": 64, "num_heads": 4, "num_layers": 2, "d_ff": 256, "positional": "relative", "epochs": 1,
             "batch_size": 64, "lr": 3e-3, "bigram_buckets": 8192, "bigram_dim": 32},
}
_TEST_SENTENCES = {"fast": 1000, "full": None}
_SEEDS = {"fast": (0,), "full": (0, 1, 2)}


def span_qa_seeds(mode: str) -> tuple[int, ...]:
    """The seeds each student trains with in ``mode``: one in fast mode, three in full (chapter 09)."""
    return _SEEDS[check_mode(mode)]


def span_qa_recipe(role: str, mode: str) -> SpanQARecipe:
    """The course's recipe for ``role`` in ``mode``; the students read the teacher's sentences (chapter 09)."""
    return role_recipe(SpanQARecipe, SPAN_QA_ROLES, role, mode, _TEACHER, _STUDENT,
                       ("max_len", "patience", "train_sentences", "dev_sentences", "threads", "positive_weight"))


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
    digest = sha256_json([[e.passage, e.kind, e.answers] for e in (*train, *dev)])
    return SpanQAData(train=train, dev=dev, test=qa_examples(test, recipe.max_len), test_sentences=test, digest=digest)


def _student_loss(recipe: SpanQARecipe, cache: TeacherLogitCache | None) -> Any:
    """The training loss of ``recipe``: :func:`span_loss`'s, or :func:`span_kd_loss` against the cached teacher."""
    def loss(model: nn.Module, batch: Mapping[str, Tensor]) -> Tensor:
        logits = model(batch["input_ids"], mask=batch["mask"], passage_mask=batch["passage"]).logits
        if cache is None:
            return span_hard_loss(logits, batch, recipe.positive_weight)
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
            cache = TeacherLogitCache.build(teacher, qa_loader(data.train, vocab, 256, shuffle=False, by_length=True),
                                           device=device)
        teacher_seconds = time.perf_counter() - start
    dev = qa_loader(data.dev, vocab, 256, shuffle=False, by_length=True)
    gold = gold_spans(data.dev)

    def evaluate(trained_model: nn.Module, batches: Iterable[Mapping[str, Tensor]]) -> dict[str, float]:
        return span_f1(gold, batches_spans(trained_model, batches, data.dev, recipe.max_span))

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
    checkpoint; students read the teacher's vocabulary. A recipe with ``encoder_from`` starts from
    that shipped encoder (keyed by its weights' sha256) and reads its vocabulary with the
    question's tokens added (:func:`~course_lib.cases.qa.questions.qa_vocab_over`).
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
    pretrained = reference_teacher() if recipe.encoder_from == NER_TEACHER else None
    if pretrained is not None:
        depends_on["encoder"] = pretrained.provenance["weights_sha256"]

    def build(vocab: CharVocab | None) -> nn.Module:
        torch.manual_seed(recipe.seed)
        model = SpanExtractor(recipe.model_config(len(vocab)))
        if pretrained is not None:
            load_encoder_weights(model.encoder, pretrained.model.encoder)
        return model

    def train(model: nn.Module, vocab: CharVocab) -> Trained:
        teacher_model = teacher.model.to(device).eval() if recipe.method == "logits" else None
        return _fit_span_model(model, role, recipe, data, vocab, teacher_model, device, progress)

    def vocab() -> CharVocab:
        if pretrained is not None:
            return qa_vocab_over(pretrained.vocab)
        return qa_vocab(data.train, recipe.vocab_min_freq) if is_teacher else teacher.vocab

    name = f"span_qa_{role}" if is_teacher else f"span_qa_{role}_seed{recipe.seed}"
    return load_or_train(model_path(name, mode), recipe, build=build, train=train, vocab=vocab,
                         depends_on=depends_on, device=device)


@dataclass
class SpanQARow:
    """One model of the comparison, measured on the test passages (chapter 09).

    A student's row describes the model of its first seed; ``f1_over_seeds`` holds the test span F1
    of every seed in ``seeds`` (``{"per_seed", "mean", "sd"}``).
    """

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
    seeds: list[int] = field(default_factory=list)
    f1_over_seeds: dict[str, Any] | None = None


@dataclass
class SpanQAComparison:
    """Every row of the comparison, the counts, answered questions and what the seeds allow one to say (chapter 09).

    ``verdict`` compares the span-KD student with the student alone over their seeds
    (:func:`~course_lib.cases.common.seed_verdict`); the models (first seed) are not serialised.
    """

    mode: str
    rows: dict[str, SpanQARow]
    counts: dict[str, dict[str, int]]
    examples: list[dict[str, Any]]
    verdict: str
    models: dict[str, Trained] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The measured part as a plain dict (the models are left out)."""
        return {"mode": self.mode, "counts": self.counts, "rows": {role: rounded(row) for role, row in self.rows.items()},
                "examples": self.examples, "verdict": self.verdict, "li_2020": LI_2020}


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
    seeds: Sequence[int] | str = "mode",
    latency_rounds: int = 10,
    examples: int = 3,
    reference: nn.Module | None = None,
    reference_vocab: CharVocab | None = None,
    progress: bool = True,
) -> SpanQAComparison:
    """Train (or load) the teacher and both students and measure them, beside chapter 07's BIO tagger (chapter 09).

    ``recipes`` defaults to the course's for the mode; ``test_sentences`` counts the test sentences
    scored ("mode": the mode's count, None: all); each student trains once per seed of ``seeds``
    ("mode": :func:`span_qa_seeds`), the teacher once. The rows hold test span F1 (overall and per type),
    parameters, the dev curve, the training seconds and the CPU milliseconds per passage at batch 1;
    the row ``"reference_tagger"`` scores ``reference`` (default: the shipped reference teacher,
    :func:`~course_lib.cases.ner.reference.reference_teacher`) on the same test passages.
    """
    mode, device = context_mode_and_device(context)
    corpus = corpus if corpus is not None else load_msra()
    recipes = case_recipes(SPAN_QA_ROLES, recipes, lambda role: span_qa_recipe(role, mode), same="max_len")
    if test_sentences == "mode":
        test_sentences = _TEST_SENTENCES[mode]
    students = list(SPAN_QA_ROLES)[1:]
    student_seeds = seeds_by_role(span_qa_seeds(mode) if seeds == "mode" else seeds, students)
    if (reference is None) != (reference_vocab is None):
        raise ValueError("pass both reference and reference_vocab, or neither (the shipped reference teacher)")
    teacher_recipe = recipes["teacher"]
    data = span_qa_data(corpus, teacher_recipe, test_sentences)
    def seeded(role: str, seed: int | None) -> SpanQARecipe:
        return recipes[role] if seed is None else replace(recipes[role], seed=seed)

    trained = teacher_then_students(SPAN_QA_ROLES, lambda role, teacher: span_qa_model(
        context, role, seeded(role, student_seeds[role][0] if role in students else None), data, teacher=teacher,
        progress=progress))
    later_seeds = sorted({seed for role in students for seed in student_seeds[role][1:]})
    later: dict[str, list[Trained]] = {role: [] for role in students}
    for seed in later_seeds:  # seed by seed, so that a stopped run leaves whole seeds in the model cache
        for role in (role for role in students if seed in student_seeds[role][1:]):
            later[role].append(span_qa_model(context, role, seeded(role, seed), data, teacher=trained["teacher"],
                                             progress=progress))
    if reference is None:
        shipped = reference_teacher()
        reference, reference_vocab = shipped.model, shipped.vocab
    gold = gold_spans(data.test)
    with cpu_threads(device, teacher_recipe.threads):
        predicted = {role: predict_spans(model.model, data.test, model.vocab, teacher_recipe.max_span)
                     for role, model in trained.items()}
        predicted["reference_tagger"] = tagger_spans(reference, reference_vocab, data.test_sentences,
                                                     teacher_recipe.max_len)
        later_f1 = {role: [span_f1(gold, predict_spans(model.model, data.test, model.vocab,
                                                       teacher_recipe.max_span))["f1"] for model in models]
                    for role, models in later.items()}
    latency = _latencies(trained, reference, reference_vocab, data.test[0], latency_rounds)
    rows = {role: _row(role, SPAN_QA_ROLES[role].title, model.model, span_scores(gold, predicted[role]), latency[role],
                       model.seconds, model.metrics["dev_curve"]) for role, model in trained.items()}
    for role, row in rows.items():
        row.seeds = [trained[role].recipe.seed, *(model.recipe.seed for model in later.get(role, []))]
        row.f1_over_seeds = seed_summary([row.f1, *later_f1.get(role, [])])
    rows["reference_tagger"] = _row("reference_tagger", "chapter 07's BIO tagger (shipped reference)", reference,
                                    span_scores(gold, predicted["reference_tagger"]), latency["reference_tagger"],
                                    None, [])
    verdict = seed_verdict(rows["span_kd"].f1_over_seeds["per_seed"], rows["scratch"].f1_over_seeds["per_seed"],
                           names=("span-level KD", "the student alone"), unit="F1 points", scale=100)
    return SpanQAComparison(mode=mode, rows=rows, counts=data.counts(), examples=_answered(data.test, predicted, examples),
                            verdict=verdict, models=trained)


def _latencies(trained: Mapping[str, Trained], reference: nn.Module, reference_vocab: CharVocab, example: QAExample,
               rounds: int) -> dict[str, float]:
    """CPU ms per passage at batch 1: a span model answers its three questions one at a time, the tagger tags it once."""
    vocab = trained["teacher"].vocab
    batches = [collate_examples([(0, *encode_example(replace(example, kind=kind, question=QUESTIONS[kind]), vocab), example)])
               for kind in ENTITY_TYPES]

    def answer_all(model: nn.Module) -> None:
        for batch in batches:
            model(batch["input_ids"], mask=batch["mask"], passage_mask=batch["passage"])

    span_ms = cpu_latency({role: model.model for role, model in trained.items()}, answer_all, rounds)
    ids = torch.tensor([reference_vocab.encode(example.passage)])
    tagger_ms = cpu_latency({"reference_tagger": reference},
                            lambda model: model(ids, mask=torch.ones_like(ids, dtype=torch.bool)), rounds)
    return {**span_ms, **tagger_ms}
