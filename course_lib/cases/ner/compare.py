"""Chapter 07's table: the teacher, its students and the cascade on the MSRA test split.

For every model of :mod:`course_lib.cases.ner.models`, :func:`compare_ner` measures entity-level
precision, recall and F1 with seqeval on the MSRA test split (overall and per entity type),
the parameters that must run at inference (a cascade runs its teacher too) and the CPU latency
per sentence at batch 1 and batch 32 (one thread; the lowest of interleaved round medians).
:meth:`_NerComparison.goals` checks the course's full-mode goals: the teacher reaches TENER's
level, and the best distilled student keeps 97 % of the teacher's F1 with at most a tenth of its
parameters, runs 5× faster at batch 1 and beats the scratch student by 1.5 F1 points.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from course_lib.context import CourseContext
from course_lib.data import CharVocab, NerCorpus, Sentence, collate_ner, load_msra
from course_lib.train.latency import interleaved_latency
from course_lib.train.fit import Trained
from course_lib.train.tagging import per_type_report
from course_lib.cases.common import GoalCheck
from course_lib.cases.ner.models import NER_ROLES, ner_student, ner_teacher
from course_lib.cases.ner.tagger import TaggerRecipe, scoring_loader
from course_lib.nn.transformer import count_parameters

TENER_F1 = 0.927
"""TENER (Yan et al. 2019) on the MSRA test split: a Transformer encoder without pre-training, on pretrained character and bigram embeddings."""
ENTITY_TYPES = ("PER", "LOC", "ORG")
DISTILLED_ROLES = ("logit_kd", "layer_kd", "teacher_init")
GOALS = {
    "teacher_f1": 0.92,
    "retention": 0.97,
    "parameter_ratio": 0.10,
    "speedup_batch1": 5.0,
    "margin_over_scratch": 0.015,
}


@dataclass
class _NerRow:
    """One model's line in the table; F1 values are fractions, latencies milliseconds per sentence."""

    role: str
    title: str
    parameters: int
    precision: float
    recall: float
    f1: float
    per_type_f1: dict[str, float]
    latency_batch1_ms: float
    latency_batch32_ms: float
    dev_curve: list[float]
    train_seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The row as a plain JSON-serialisable dict."""
        return asdict(self)


def _split_scores(model: nn.Module, vocab: CharVocab, sentences: Sequence[Sentence]) -> dict[str, Any]:
    """seqeval's entity-level micro precision/recall/F1 of ``model`` on ``sentences``, and the F1 per type."""
    loader = scoring_loader(sentences, vocab)
    report = per_type_report(model, loader)
    overall = report["micro avg"]
    return {
        "precision": overall["precision"],
        "recall": overall["recall"],
        "f1": overall["f1"],
        "per_type_f1": {kind: report.get(kind, {"f1": 0.0})["f1"] for kind in ENTITY_TYPES},
    }


def timing_batches(vocab: CharVocab, sentences: Sequence[Sentence]) -> list[dict[str, torch.Tensor]]:
    """Batch 1 (a sentence of median length) and batch 32 (the 32 sentences nearest that length) (chapter 07).

    A server that batches requests groups sentences of similar length, so that little of a batch
    is padding; 32 sentences of any lengths would pad every one to the longest and time mostly
    padding.
    """
    if len(sentences) < 32:
        raise ValueError(f"need at least 32 sentences to time batch 32, got {len(sentences)}")
    median_length = statistics.median_low(len(s) for s in sentences)
    by_closeness = sorted(range(len(sentences)), key=lambda i: (abs(len(sentences[i]) - median_length), i))
    single = sentences[by_closeness[0]]
    similar = [sentences[i] for i in by_closeness[:32]]
    return [collate_ner([(vocab.encode(s.chars), [0] * len(s)) for s in batch]) for batch in ([single], similar)]


def cpu_latencies(
    taggers: Mapping[str, tuple[nn.Module, CharVocab]],
    sentences: Sequence[Sentence],
    *,
    rounds: int = 30,
    seconds_per_round: float = 0.05,
    min_repeats: int = 5,
) -> dict[str, tuple[float, float]]:
    """CPU milliseconds per sentence at batch 1 and at batch 32, on one thread, for each named tagger (chapter 07).

    Batch 1 is a sentence of median length; batch 32 holds the 32 sentences nearest that length
    (as a server that groups requests by length would batch them). The taggers are timed in
    turn with :func:`~course_lib.train.latency.interleaved_latency`, ``rounds`` times over, and each
    keeps its lowest round median. Models are copied to the CPU (a GPU-trained model is timed on
    the CPU too).
    """
    if not taggers:
        raise ValueError("taggers must name at least one (model, vocab) pair")
    calls = {}
    for name, (model, vocab) in taggers.items():
        cpu_model = copy.deepcopy(model).cpu().eval()
        for batch in timing_batches(vocab, sentences):
            def call(batch: dict[str, torch.Tensor] = batch, cpu_model: nn.Module = cpu_model) -> object:
                return cpu_model(batch["input_ids"], mask=batch["mask"])

            calls[name, int(batch["input_ids"].shape[0])] = (call, int(batch["input_ids"].shape[0]))
    stats = interleaved_latency(calls, rounds=rounds, seconds_per_round=seconds_per_round, min_repeats=min_repeats)
    best = {key: value.p50_ms / key[1] for key, value in stats.items()}
    return {name: (best[name, 1], best[name, 32]) for name in taggers}


def _measure_row(role: str, trained: Trained, test: Sequence[Sentence], latency: tuple[float, float]) -> _NerRow:
    """One model's row: test scores and inference parameters, with its measured ``latency`` (batch 1, 32)."""
    scores = _split_scores(trained.model, trained.vocab, test)
    return _NerRow(
        role=role,
        title=NER_ROLES[role].title,
        parameters=count_parameters(trained.model),
        precision=scores["precision"],
        recall=scores["recall"],
        f1=scores["f1"],
        per_type_f1=scores["per_type_f1"],
        latency_batch1_ms=latency[0],
        latency_batch32_ms=latency[1],
        dev_curve=list(trained.metrics["dev_curve"]),
        train_seconds=trained.seconds,
    )


@dataclass
class _NerComparison:
    """Every model's :class:`_NerRow` (in :data:`~course_lib.cases.ner.models.NER_ROLES` order) and the trained models."""

    mode: str
    rows: dict[str, _NerRow]
    models: dict[str, Trained] = field(default_factory=dict, repr=False)

    def ratio(self, role: str) -> float:
        """Parameters of ``role`` as a fraction of the teacher's."""
        return self.rows[role].parameters / self.rows["teacher"].parameters

    def speedup(self, role: str) -> float:
        """How many times faster than the teacher ``role`` tags one sentence at batch 1 on the CPU."""
        return self.rows["teacher"].latency_batch1_ms / self.rows[role].latency_batch1_ms

    @property
    def best_distilled(self) -> str:
        """The distilled student with the best test F1 among those with at most a tenth of the teacher's
        parameters (among all distilled students when none is that small)."""
        distilled = [role for role in DISTILLED_ROLES if role in self.rows]
        if not distilled:
            raise ValueError(f"no distilled student was measured: the table needs one of {DISTILLED_ROLES}")
        small = [role for role in distilled if self.ratio(role) <= GOALS["parameter_ratio"]]
        return max(small or distilled, key=lambda role: self.rows[role].f1)

    def goals(self) -> list[GoalCheck]:
        """The issue's full-mode goals, each with its measured value."""
        teacher, best = self.rows["teacher"], self.best_distilled
        retention = self.rows[best].f1 / teacher.f1 if teacher.f1 else 0.0
        margin = self.rows[best].f1 - self.rows["scratch"].f1
        checks = [
            ("teacher test F1", GOALS["teacher_f1"], teacher.f1, teacher.f1 >= GOALS["teacher_f1"]),
            (f"{best}: share of the teacher's F1 kept", GOALS["retention"], retention,
             retention >= GOALS["retention"]),
            (f"{best}: parameters / teacher's", GOALS["parameter_ratio"], self.ratio(best),
             self.ratio(best) <= GOALS["parameter_ratio"]),
            (f"{best}: CPU speed-up at batch 1", GOALS["speedup_batch1"], self.speedup(best),
             self.speedup(best) >= GOALS["speedup_batch1"]),
            (f"{best}: F1 above the scratch student", GOALS["margin_over_scratch"], margin,
             margin >= GOALS["margin_over_scratch"]),
        ]
        return [GoalCheck(goal, float(target), float(measured), bool(met)) for goal, target, measured, met in checks]

    def to_dict(self) -> dict[str, Any]:
        """Rows, the best distilled student and the goal checks as plain JSON-serialisable data."""
        return {
            "mode": self.mode,
            "rows": {role: row.to_dict() for role, row in self.rows.items()},
            "best_distilled": self.best_distilled,
            "goals": [asdict(check) for check in self.goals()],
        }


def compare_ner(
    context: CourseContext,
    *,
    corpus: NerCorpus | None = None,
    roles: Sequence[str] = tuple(NER_ROLES),
    recipes: Mapping[str, TaggerRecipe] | None = None,
    latency_rounds: int = 10,
    progress: bool = True,
) -> _NerComparison:
    """Train (or load) the teacher and the students of ``roles``, and measure each on the test split (chapter 07).

    ``recipes`` replaces the course recipes of the roles it names (``ner_zoo.ner_recipe``).
    """
    unknown = [role for role in roles if role not in NER_ROLES]
    if unknown or "teacher" not in roles or "scratch" not in roles:
        raise ValueError(f"roles must include 'teacher' and 'scratch' and come from {tuple(NER_ROLES)}, got {list(roles)}")
    recipes = dict(recipes or {})
    corpus = corpus or load_msra()
    teacher = ner_teacher(context, recipe=recipes.get("teacher"), corpus=corpus, progress=progress)
    models = {"teacher": teacher}
    for role in roles:
        if role != "teacher":
            models[role] = ner_student(
                context, role, teacher, recipe=recipes.get(role), corpus=corpus, progress=progress
            )
    ordered = [role for role in NER_ROLES if role in models]
    latencies = cpu_latencies({role: (models[role].model, models[role].vocab) for role in ordered}, corpus.test,
                              rounds=latency_rounds)
    rows = {role: _measure_row(role, models[role], corpus.test, latencies[role]) for role in ordered}
    return _NerComparison(mode=context.mode, rows=rows, models=models)
