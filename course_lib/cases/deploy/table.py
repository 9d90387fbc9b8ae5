"""Chapter 08's measured table: what each way of serving a model costs and what it keeps.

For one task (NER or MNIST), :func:`measure_deployment` takes the teacher's and the student's
bundles (the student's with its ONNX exports, see :func:`course_lib.serve.onnx.export_bundle`)
and measures four variants the same way:

========================  =====================================================
``teacher_torch``         the teacher, PyTorch
``student_torch``         the student, PyTorch
``student_onnx``          the student's ONNX export in ONNX Runtime
``student_int8``          its dynamic int8 quantisation in ONNX Runtime
========================  =====================================================

Each row has the parameters, the size of the served file on disk, the test score through the
same predictor code (entity F1 with seqeval on the MSRA test split, or accuracy on the 10,000
MNIST test digits) and the CPU latency at batch 1 and 32 on one thread: p50 and p95 of the
quietest of ``rounds`` interleaved rounds (:func:`course_lib.train.latency.interleaved_latency`), and
the throughput at the p50. Latency is the model call alone, inputs already encoded: batch 1 is
a test sentence of median length (MNIST: one digit), batch 32 the 32 sentences nearest that
length (MNIST: 32 digits).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from course_lib.data import MnistData, Sentence, mnist_tensors
from course_lib.serve.bundle import INT8_FILE, ONNX_FILE, WEIGHTS_FILE, load_bundle
from course_lib.cases.deploy.bundles import BundlePair
from course_lib.train.latency import LatencyStats, interleaved_latency
from course_lib.cases.common import GoalCheck
from course_lib.cases.ner.compare import timing_batches
from course_lib.serve.predict import DigitPredictor, NerPredictor, make_runner
from course_lib.nn.transformer import count_parameters
from course_lib.train.tagging import entity_scores

VARIANTS = ("teacher_torch", "student_torch", "student_onnx", "student_int8")
VARIANT_TITLES = {
    "teacher_torch": "teacher, PyTorch",
    "student_torch": "student, PyTorch",
    "student_onnx": "student, ONNX Runtime",
    "student_int8": "student, ONNX Runtime int8",
}
_BACKENDS = {"teacher_torch": "torch", "student_torch": "torch", "student_onnx": "onnx", "student_int8": "int8"}
_FILES = {"teacher_torch": WEIGHTS_FILE, "student_torch": WEIGHTS_FILE, "student_onnx": ONNX_FILE,
          "student_int8": INT8_FILE}
DEPLOY_GOALS = {"int8_speedup_batch1": 10.0, "int8_score_loss": 0.01}
"""The int8 ONNX student answers ≥ 10× faster than the PyTorch teacher at batch 1 and loses ≤ 1 point."""


@dataclass
class _DeployRow:
    """One variant's line: size, score (a fraction) and latency at batch 1 and 32 (milliseconds per call)."""

    variant: str
    title: str
    parameters: int
    size_bytes: int
    score: float
    batch1: LatencyStats
    batch32: LatencyStats

    def to_dict(self) -> dict[str, Any]:
        """The row as a flat JSON-serialisable dict."""
        return {
            "variant": self.variant,
            "title": self.title,
            "parameters": self.parameters,
            "size_bytes": self.size_bytes,
            "score": round(self.score, 5),
            "batch1": self.batch1.to_dict(),
            "batch32": self.batch32.to_dict(),
        }


@dataclass
class DeployTable:
    """The four variants of one task, with the speed-ups and losses the chapter discusses (chapter 08)."""

    task: str
    score_name: str
    rows: dict[str, _DeployRow]

    def speedup(self, variant: str, batch: int = 1) -> float:
        """How many times faster than the PyTorch teacher ``variant`` answers at ``batch`` (1 or 32), p50."""
        key = "batch1" if batch == 1 else "batch32"
        return getattr(self.rows["teacher_torch"], key).p50_ms / getattr(self.rows[variant], key).p50_ms

    def score_loss(self, variant: str) -> float:
        """The PyTorch student's score minus ``variant``'s (positive: ``variant`` lost that much)."""
        return self.rows["student_torch"].score - self.rows[variant].score

    def goals(self) -> list[GoalCheck]:
        """The course's deployment goals for the int8 NER student, measured (none for MNIST)."""
        if self.task != "ner":
            return []
        speedup, loss = self.speedup("student_int8"), self.score_loss("student_int8")
        return [
            GoalCheck("int8 ONNX student vs PyTorch teacher, speed-up at batch 1", DEPLOY_GOALS["int8_speedup_batch1"],
                      speedup, speedup >= DEPLOY_GOALS["int8_speedup_batch1"]),
            GoalCheck(f"{self.score_name} lost by int8 against the float student", DEPLOY_GOALS["int8_score_loss"],
                      loss, loss <= DEPLOY_GOALS["int8_score_loss"]),
        ]

    def to_dict(self) -> dict[str, Any]:
        """Rows, speed-ups, losses and goal checks as plain data for a results file."""
        return {
            "task": self.task,
            "score_name": self.score_name,
            "rows": {variant: row.to_dict() for variant, row in self.rows.items()},
            "speedup_batch1": {variant: round(self.speedup(variant), 3) for variant in self.rows},
            "speedup_batch32": {variant: round(self.speedup(variant, 32), 3) for variant in self.rows},
            "score_loss": {variant: round(self.score_loss(variant), 5) for variant in self.rows},
            "goals": [check.__dict__ for check in self.goals()],
        }


def _ner_f1(predictor: NerPredictor, sentences: Sequence[Sentence]) -> float:
    """seqeval's entity-level micro F1 of ``predictor`` on ``sentences`` (read from their raw text, Viterbi-decoded)."""
    texts = ["".join(sentence.chars) for sentence in sentences]
    predicted = predictor.tags(texts)
    gold = [list(sentence.tags) for sentence in sentences]
    return entity_scores(gold, predicted)["micro avg"]["f1"]


def digit_accuracy(predictor: DigitPredictor, data: MnistData) -> float:
    """The share of the 10,000 MNIST test digits ``predictor`` classifies correctly (chapter 08)."""
    prediction = predictor.predict(data.test_images)
    return float(np.mean(prediction.digits == data.test_labels))


def _timing_inputs(task: str, bundle: Any, test: Any) -> dict[int, dict[str, np.ndarray]]:
    if task == "ner":
        batches = timing_batches(bundle.vocab, test)
        return {int(b["input_ids"].shape[0]): {"input_ids": b["input_ids"].numpy(), "mask": b["mask"].numpy()}
                for b in batches}
    images, _ = mnist_tensors(test, "test")
    return {1: {"images": images[:1].numpy()}, 32: {"images": images[:32].numpy()}}


def measure_deployment(
    pair: BundlePair,
    test: Sequence[Sentence] | MnistData,
    *,
    rounds: int = 30,
    seconds_per_round: float = 0.05,
) -> DeployTable:
    """Measure the four variants of ``pair`` (see the module docstring) on ``test`` (chapter 08).

    ``test`` is the MSRA test sentences for an NER pair and the MNIST data for an MNIST pair.
    """
    bundles = {"teacher": load_bundle(pair.teacher), "student": load_bundle(pair.student)}
    if {bundle.task for bundle in bundles.values()} != {pair.task}:
        raise ValueError(f"both bundles must be {pair.task!r} models, got {[b.task for b in bundles.values()]}")
    scores, calls, sizes, parameters = {}, {}, {}, {}
    for variant in VARIANTS:
        bundle = bundles[variant.split("_")[0]]
        runner = make_runner(bundle, _BACKENDS[variant], threads=1)
        if pair.task == "ner":
            scores[variant] = _ner_f1(NerPredictor(runner, bundle.vocab, bundle.labels, bundle.max_len, batch_size=128),
                                     test)
        else:
            scores[variant] = digit_accuracy(DigitPredictor(runner, bundle.labels), test)
        for size, inputs in _timing_inputs(pair.task, bundle, test).items():
            calls[variant, size] = ((lambda runner=runner, inputs=inputs: runner(inputs)), size)
        sizes[variant] = (bundle.folder / _FILES[variant]).stat().st_size
        parameters[variant] = count_parameters(bundle.model)
    latency = interleaved_latency(calls, rounds=rounds, seconds_per_round=seconds_per_round, threads=1)
    rows = {
        variant: _DeployRow(variant=variant, title=VARIANT_TITLES[variant], parameters=parameters[variant],
                           size_bytes=sizes[variant], score=scores[variant], batch1=latency[variant, 1],
                           batch32=latency[variant, 32])
        for variant in VARIANTS
    }
    return DeployTable(task=pair.task, score_name="F1" if pair.task == "ner" else "accuracy", rows=rows)
