"""The course map: chapters, the outline sections they follow, what each builds, and how long it runs.

Run times are not guessed: they are the notebook wall times that ``make course`` measured and
stored in ``build/results.json``, copied into ``results/<mode>.json`` with the course.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from course_lib.context import MODES, REPO_ROOT
from course_lib.course.results import RUNTIMES_KEY


@dataclass(frozen=True)
class Chapter:
    """One chapter notebook of the course (chapter 00)."""

    number: str
    slug: str
    title_zh: str
    title_en: str
    outline: str
    builds: str
    study_minutes: int

    @property
    def notebook(self) -> str:
        return f"notebooks/{self.number}_{self.slug}.ipynb"

    def available(self, root: Path = REPO_ROOT) -> bool:
        """Is the notebook already part of the course?"""
        return (root / self.notebook).exists()


CHAPTERS: tuple[Chapter, ...] = (
    Chapter("00", "start_here", "从这里开始", "Start here", "–",
            "course map, environment check, fast/full mode, widgets, glossary", 15),
    Chapter("01", "background", "背景介绍", "Background", "1.1–1.3",
            "RNN → Transformer → pre-training → distillation; timeline; teacher vs student size", 20),
    Chapter("02", "self_attention", "自注意力机制", "Self-attention", "2.1.1, 4.1.1",
            "scaled dot-product attention, √d_k, masks, multi-head; attention explorer", 45),
    Chapter("03", "positional_encoding", "位置编码", "Positional encoding", "2.1.2, 4.1.2",
            "sinusoidal and learned encodings, relative offsets, a model without positions", 40),
    Chapter("04", "transformer_block_and_training", "Transformer块与训练", "The Transformer block and its training",
            "2.1.3, 4.1.3, 3.1, 5.1",
            "residual + LayerNorm, FFN, encoder block; an MSRA NER tagger trained and evaluated", 60),
    Chapter("05", "knowledge_distillation", "知识蒸馏", "Knowledge distillation", "1.2, 2.2, 3.2, 4.2, 5.2",
            "soft/hard targets, temperature, KD loss, T² scaling, gradients; temperature/alpha widgets", 60),
    Chapter("06", "mnist_teacher_student", "MNIST教师/学生实验", "MNIST teacher and student", "seed 003 §5",
            "Hinton et al. 2015 reproduced with a jitter control; a CNN teacher distilled consistently, 3 seeds; "
            "student size × T; no-3 transfer set; T × alpha heatmap; live distillation lab; the source's errata", 90),
    Chapter("07", "ner_teacher_student", "命名实体识别的蒸馏", "Distillation for NER", "seed 002 §5, 2.3",
            "a live teacher (the loop) and the shipped one → one-block students (labels, logit KD, transfer set, "
            "teacher-initialised, hidden + attention KD) over seeds; the source's cascade measured; Hugging Face "
            "teacher; side-by-side widget", 90),
    Chapter("08", "inference_and_deployment", "推理与部署", "Inference and deployment", "3.3, 5.3",
            "save/load, inference API, ONNX Runtime, int8, measured latency and size", 45),
    Chapter("09", "applications", "实际应用场景", "Applications", "6.1–6.3",
            "translation, classification, question answering, generation", 60),
    Chapter("10", "summary_and_faq", "总结与常见问题", "Summary and FAQ", "7, 8, 9",
            "tools, trends, challenges; FAQ answered with the course's measurements", 20),
)


def measured_runtimes(results_folder: Path = REPO_ROOT / "results") -> dict[str, dict[str, float]]:
    """Notebook wall times in seconds, ``{mode: {notebook stem: seconds}}``, from ``results/<mode>.json`` (chapter 00).

    A mode whose file is missing (no such run stored yet) is left out.
    """
    runtimes: dict[str, dict[str, float]] = {}
    for mode in MODES:
        path = Path(results_folder) / f"{mode}.json"
        if not path.is_file():
            continue
        try:
            entry = json.loads(path.read_text(encoding="utf-8")).get(RUNTIMES_KEY)
        except (json.JSONDecodeError, AttributeError) as error:
            raise ValueError(f"{path} is not a results file written by make course ({error}); "
                             "run make course again and copy build/results.json there") from error
        if entry is None:
            continue
        if entry.get("mode") != mode:
            raise ValueError(f"{path} holds run times of a {entry.get('mode')!r} run, not {mode!r}; "
                             f"copy the build/results.json of a {mode}-mode run there")
        runtimes[mode] = {str(name): float(seconds) for name, seconds in entry["notebooks"].items()}
    return runtimes


def format_duration(seconds: float | None) -> str:
    """``"45 s"``, ``"3.2 min"`` or ``"1.5 h"``; ``"not measured"`` for None (chapter 00)."""
    if seconds is None:
        return "not measured"
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {seconds}")
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def course_map_markdown(
    chapters: tuple[Chapter, ...] = CHAPTERS,
    root: Path = REPO_ROOT,
    runtimes: dict[str, dict[str, float]] | None = None,
) -> str:
    """The course map as a Markdown table (chapters not yet written are marked as coming) (chapter 00).

    ``runtimes`` defaults to :func:`measured_runtimes` of ``root/results``.
    """
    if runtimes is None:
        runtimes = measured_runtimes(root / "results")
    lines = [
        "| # | chapter | outline | builds | study time | run time, fast | run time, full | status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for ch in chapters:
        ready = ch.available(root)
        stem = Path(ch.notebook).stem
        run = {mode: format_duration(runtimes.get(mode, {}).get(stem)) if ready else "–" for mode in MODES}
        lines.append(
            f"| {ch.number} | {ch.title_zh} · {ch.title_en} | {ch.outline} | {ch.builds} | "
            f"~{ch.study_minutes} min | {run['fast']} | {run['full']} | {'ready' if ready else 'coming'} |"
        )
    return "\n".join(lines)
