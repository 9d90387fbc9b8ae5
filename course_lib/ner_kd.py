"""Chapter 07's table: the teacher, its students and the cascade on the MSRA test split.

For every model of :mod:`course_lib.ner_zoo`, :func:`compare_ner` measures entity-level
precision, recall and F1 with seqeval on the official test split (overall and per entity type),
the parameters that must run at inference (a cascade runs its teacher too) and the CPU latency
per sentence at batch 1 and batch 32 (median of repeated runs on one thread).
:meth:`NerComparison.goals` checks the course's full-mode goals: the teacher reaches TENER's
level, and the best distilled student keeps 97 % of the teacher's F1 with at most a tenth of its
parameters, runs 5× faster at batch 1 and beats the scratch student by 1.5 F1 points.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from course_lib.data import CharVocab, NerCorpus, Sentence, collate_ner, load_msra, ner_loader
from course_lib.latency import measure_latency
from course_lib.ner import per_type_report
from course_lib.ner_zoo import NER_ROLES, ROLE_TITLES, NerRecipe, TrainedTagger, ner_student, ner_teacher
from course_lib.transformer import count_parameters

if TYPE_CHECKING:
    from course_lib.notebook import CourseContext

__all__ = [
    "DISTILLED_ROLES",
    "ENTITY_TYPES",
    "GOALS",
    "TENER_F1",
    "GoalCheck",
    "NerComparison",
    "NerRow",
    "compare_ner",
    "cpu_latency",
    "measure_row",
    "entity_scores",
]

TENER_F1 = 0.927
"""TENER (Yan et al. 2019), a Transformer trained from scratch, on the MSRA test split."""
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
class NerRow:
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


def entity_scores(model: nn.Module, vocab: CharVocab, sentences: Sequence[Sentence]) -> dict[str, Any]:
    """seqeval's entity-level micro precision/recall/F1 of ``model`` on ``sentences``, and the F1 per type."""
    loader = ner_loader(sentences, vocab, batch_size=128, shuffle=False)
    report = per_type_report(model, loader)
    overall = report["micro avg"]
    return {
        "precision": overall["precision"],
        "recall": overall["recall"],
        "f1": overall["f1"],
        "per_type_f1": {kind: report.get(kind, {"f1": 0.0})["f1"] for kind in ENTITY_TYPES},
    }


def cpu_latency(
    model: nn.Module, vocab: CharVocab, sentences: Sequence[Sentence], *, repeats: int = 30, rounds: int = 2
) -> tuple[float, float]:
    """Median CPU milliseconds per sentence at batch 1 and at batch 32, on one thread.

    Batch 1 is a test sentence of median length; batch 32 is 32 consecutive test sentences,
    padded to the longest. Each is timed in ``rounds`` rounds of ``repeats`` calls (after 10
    warm-up calls) and the lower median is kept, so one round disturbed by other work on the
    machine does not decide the figure. The model is copied to the CPU, so a GPU-trained model
    is timed on the CPU too.
    """
    if len(sentences) < 32:
        raise ValueError(f"need at least 32 sentences to time batch 32, got {len(sentences)}")
    cpu_model = copy.deepcopy(model).cpu().eval()
    median_length = statistics.median_low(len(s) for s in sentences)
    single = next(s for s in sentences if len(s) == median_length)
    timings = []
    for batch_sentences in ([single], list(sentences[:32])):
        batch = collate_ner([(vocab.encode(s.chars), [0] * len(s)) for s in batch_sentences])

        def call(batch: dict[str, torch.Tensor] = batch) -> object:
            return cpu_model(batch["input_ids"], mask=batch["mask"])

        medians = [
            measure_latency(call, batch_size=len(batch_sentences), repeats=repeats, warmup=10, threads=1).p50_ms
            for _ in range(rounds)
        ]
        timings.append(min(medians) / len(batch_sentences))
    return timings[0], timings[1]


def measure_row(trained: TrainedTagger, test: Sequence[Sentence], *, latency_repeats: int = 30) -> NerRow:
    """Test scores, inference parameters and CPU latency of one trained model."""
    scores = entity_scores(trained.model, trained.vocab, test)
    batch1, batch32 = cpu_latency(trained.model, trained.vocab, test, repeats=latency_repeats)
    return NerRow(
        role=trained.role,
        title=ROLE_TITLES[trained.role],
        parameters=count_parameters(trained.model),
        precision=scores["precision"],
        recall=scores["recall"],
        f1=scores["f1"],
        per_type_f1=scores["per_type_f1"],
        latency_batch1_ms=batch1,
        latency_batch32_ms=batch32,
        dev_curve=list(trained.dev_curve),
        train_seconds=trained.train_seconds,
    )


@dataclass
class GoalCheck:
    """One course goal: what it asks, what was measured, and whether it was met."""

    goal: str
    target: float
    measured: float
    met: bool


@dataclass
class NerComparison:
    """Every model's :class:`NerRow` (in :data:`~course_lib.ner_zoo.NER_ROLES` order) and the trained models."""

    mode: str
    rows: dict[str, NerRow]
    models: dict[str, TrainedTagger] = field(default_factory=dict, repr=False)

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
    roles: Sequence[str] = NER_ROLES,
    recipes: Mapping[str, NerRecipe] | None = None,
    latency_repeats: int = 30,
    progress: bool = True,
) -> NerComparison:
    """Train (or load) the teacher and the students of ``roles``, and measure each on the test split.

    ``recipes`` replaces the course recipes of the roles it names (``ner_zoo.ner_recipe``).
    """
    unknown = [role for role in roles if role not in NER_ROLES]
    if unknown or "teacher" not in roles or "scratch" not in roles:
        raise ValueError(f"roles must include 'teacher' and 'scratch' and come from {NER_ROLES}, got {list(roles)}")
    recipes = dict(recipes or {})
    corpus = corpus or load_msra()
    teacher = ner_teacher(context, recipe=recipes.get("teacher"), corpus=corpus, progress=progress)
    models = {"teacher": teacher}
    for role in roles:
        if role != "teacher":
            models[role] = ner_student(
                context, role, teacher, recipe=recipes.get(role), corpus=corpus, progress=progress
            )
    rows = {role: measure_row(models[role], corpus.test, latency_repeats=latency_repeats) for role in NER_ROLES
            if role in models}
    return NerComparison(mode=context.mode, rows=rows, models=models)
