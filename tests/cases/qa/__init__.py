"""Synthetic MSRA-like sentences for the QA tests: names from three short lists between filler characters."""

from __future__ import annotations

import random

from course_lib.cases.qa.compare import SpanQARecipe
from course_lib.data import NerCorpus, Sentence

NAMES = {"PER": ["张伟", "李明", "王芳"], "LOC": ["北京", "上海", "广州"], "ORG": ["新华社", "外交部", "清华大学"]}
FILLER = "今天上午在里召开会议讨论了建设方案和生活问题"


def sentence(*parts: tuple[str, str | None]) -> Sentence:
    """A sentence from (text, entity type or None) parts, tagged BIO."""
    chars, tags = [], []
    for text, kind in parts:
        chars += list(text)
        tags += ["O"] * len(text) if kind is None else [f"B-{kind}"] + [f"I-{kind}"] * (len(text) - 1)
    return Sentence(chars, tags)


def synthetic_sentences(count: int, seed: int) -> list[Sentence]:
    """Filler with one to three entities; about one sentence in four has none."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(count):
        parts: list[tuple[str, str | None]] = [("".join(rng.sample(FILLER, 3)), None)]
        for kind in rng.sample(list(NAMES), rng.randint(0, 3)):
            parts += [(rng.choice(NAMES[kind]), kind), ("".join(rng.sample(FILLER, 2)), None)]
        sentences.append(sentence(*parts))
    return sentences


def synthetic_corpus() -> NerCorpus:
    return NerCorpus(train=synthetic_sentences(240, 0), dev=synthetic_sentences(40, 1), test=synthetic_sentences(60, 2))


def tiny_recipes() -> dict[str, SpanQARecipe]:
    shared = {"max_len": 40, "epochs": 6, "batch_size": 16, "train_sentences": None, "dev_sentences": None,
              "threads": 1, "dropout": 0.0}
    student = {"d_model": 8, "num_heads": 2, "num_layers": 1, "d_ff": 16, "lr": 1e-2, **shared}
    return {"teacher": SpanQARecipe(d_model=32, num_heads=2, num_layers=1, d_ff=64, lr=5e-3, **shared),
            "scratch": SpanQARecipe(**student), "span_kd": SpanQARecipe(**student, method="logits")}
