"""Case 1 of the lecture deck (文本分类 · text classification): distilling a Chinese news-sentiment classifier.

The data are the news items of ``course_lib.data.load_inews`` (title and body, labelled
positive / neutral / negative). A character-level Transformer classifier
(:class:`course_lib.transformer.SequenceClassifier`, mean-pooled) reads the first ``max_len``
characters of title + body. One teacher and three students of one tiny shape, all trained for
the same number of epochs on the same labelled items:

- ``scratch``: the labels only;
- ``logit_kd``: Hinton's loss on the labelled windows (``alpha`` on the labels, ``1 - alpha`` on
  ``T**2`` times the KL to the teacher's softened class distribution);
- ``transfer_kd``: the same loss on the labelled windows, plus the teacher's soft targets alone
  (``alpha = 0``) on a *transfer set*: the later windows of the same articles, which the teacher
  never trained on and which carry no labels of their own. The teacher labels text that the
  labels do not cover — the way distillation turns unlabelled text into training signal.

Measured for each model: test accuracy and macro-F1 (the classes are unbalanced: positive news
is the rare one), F1 per class, parameters, and the CPU latency of one item at batch 1. Every
model is cached (:func:`news_model`): a second run loads it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score
from torch import Tensor, nn

from course_lib import checks
from course_lib.cases.common import (
    Role,
    cpu_latency,
    case_recipes,
    model_dependencies,
    role_recipe,
    roles,
    rounded,
    teacher_then_students,
)
from course_lib.context import CourseContext, context_mode_and_device
from course_lib.data import INEWS_LABELS, CharVocab, NewsCorpus, NewsItem, load_inews
from course_lib.files import sha256_json
from course_lib.kd.methods import DistillRecipe, setup_method
from course_lib.kd.teacher import TeacherLogitCache
from course_lib.nn.transformer import SequenceClassifier, TransformerShape, count_parameters
from course_lib.train.cache import load_or_train, model_path
from course_lib.train.fit import Trained, fit

NEWS_ROLES = roles(
    Role("teacher", "teacher"),
    Role("scratch", "(a) student, labels only"),
    Role("logit_kd", "(b) student, logit KD", "logits"),
    Role("transfer_kd", "(c) student, logit KD + unlabelled windows", "transfer"),
)
# Sanh et al. 2019 (DistilBERT), Table 1 and §4: 66M parameters against BERT-base's 110M, 60 %
# faster on a CPU, 97 % of BERT's GLUE score.
DISTILBERT_2019 = {"teacher_parameters": 110_000_000, "student_parameters": 66_000_000, "score_kept": 0.97,
                   "cpu_speedup": 1.6}


@dataclass(frozen=True)
class _NewsRecipe(DistillRecipe, TransformerShape):
    """Shape, data and optimisation of one news classifier, and how it learns (chapter 09).

    ``method`` is "labels", "logits" (Hinton's loss at ``temperature``, ``alpha`` on the labels)
    or "transfer" (that, plus ``alpha = 0`` soft targets on up to ``transfer_windows`` later
    windows of every training article). A window is ``max_len`` characters; a later window
    shorter than a quarter of that is left out. ``train_items`` counts items from the start of
    the training split (None: all of them). ``vocab_min_freq``: how often a character must
    occur in the teacher's training windows to get its own id.
    """

    max_len: int = 256
    epochs: int = 8
    warmup_fraction: float = 0.1
    threads: int = 2
    transfer_windows: int = 3
    train_items: int | None = None
    vocab_min_freq: int = 2

    def check(self) -> None:
        super().check()
        self.model_config(2)
        checks.positive_int("transfer_windows", self.transfer_windows)
        checks.optional_positive_int("train_items", self.train_items)
        checks.positive_int("vocab_min_freq", self.vocab_min_freq)


# Fast mode fits a 2-core laptop in under half a minute: the first 1,500 training items, 64
# characters each, one CPU thread (these models are too small for a second thread to pay).
_TEACHER = {
    "fast": dict(d_model=64, num_heads=4, num_layers=2, d_ff=256, max_len=64, epochs=3, lr=2e-3, train_items=1_500,
                 transfer_windows=2, threads=1),
    "full": dict(d_model=128, num_heads=4, num_layers=2, d_ff=512, max_len=128, epochs=8, lr=1e-3, patience=3),
}
_TINY = {
    "fast": dict(d_model=16, num_heads=2, num_layers=1, d_ff=32, lr=5e-3, threads=1),
    "full": dict(d_model=32, num_heads=4, num_layers=1, d_ff=64, lr=3e-3),
}
_SHARED = ("max_len", "epochs", "patience", "train_items", "transfer_windows")


def news_recipe(role: str, mode: str) -> _NewsRecipe:
    """The course's recipe for ``role`` in ``mode``; the students read the teacher's items and characters (chapter 09)."""
    return role_recipe(_NewsRecipe, NEWS_ROLES, role, mode, _TEACHER, _TINY, _SHARED)


def _news_windows(item: NewsItem, max_len: int, later: int = 0) -> list[str]:
    """The first ``max_len`` characters of the item's text, then up to ``later`` further windows (chapter 09).

    Later windows follow without overlap; one shorter than ``max_len // 4`` characters is left
    out (the end of a short article).
    """
    text = item.text
    windows = [text[:max_len]]
    for index in range(1, later + 1):
        window = text[index * max_len:(index + 1) * max_len]
        if len(window) < max(1, max_len // 4):
            break
        windows.append(window)
    return windows


def window_coverage(items: Sequence[NewsItem], max_len: int, later: int = 0) -> float:
    """The share of the items' characters that their first window and up to ``later`` further windows cover (chapter 09).

    With ``later=0`` it is what a classifier of ``max_len`` characters reads of the articles; the
    transfer set's later windows (``later=transfer_windows``) add what only the teacher labels.
    """
    if not items:
        raise ValueError("items is empty: there is no text to cover")
    checks.positive_int("max_len", max_len)
    checks.int_at_least("later", later, 0)
    covered = sum(len(window) for item in items for window in _news_windows(item, max_len, later))
    return covered / max(1, sum(len(item.text) for item in items))


def _training_items(corpus: NewsCorpus, recipe: _NewsRecipe) -> list[NewsItem]:
    """The first ``recipe.train_items`` training items (all of them when None)."""
    if recipe.train_items is not None and recipe.train_items > len(corpus.train):
        raise ValueError(f"recipe.train_items={recipe.train_items} exceeds the {len(corpus.train):,} training items")
    return corpus.train[: recipe.train_items]


def _encode(vocab: CharVocab, text: str) -> list[int]:
    return vocab.encode(text) or [vocab.unk_id]


def _collate(rows: Sequence[tuple[int, list[int], int | None]]) -> dict[str, Tensor]:
    """Right-padded ``input_ids`` and ``mask``, each row's window ``index``; ``labels`` when every row has one."""
    width = max(len(ids) for _, ids, _ in rows)
    input_ids = torch.zeros(len(rows), width, dtype=torch.long)
    for row, (_, ids, _) in enumerate(rows):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    lengths = torch.tensor([len(ids) for _, ids, _ in rows])
    batch = {"input_ids": input_ids, "mask": torch.arange(width)[None, :] < lengths[:, None],
             "index": torch.tensor([index for index, _, _ in rows], dtype=torch.long)}
    if all(label is not None for _, _, label in rows):
        batch["labels"] = torch.tensor([label for _, _, label in rows], dtype=torch.long)
    return batch


Row = tuple[int, list[int], int | None]  # (window index, character ids, label or None)


class _Batches:
    """Shuffled batches of labelled rows and, apart from them, of unlabelled rows; a new order every epoch."""

    def __init__(self, rows: list[Row], batch_size: int, seed: int) -> None:
        self.rows = rows
        self.groups = [group for group in ([r for r in rows if r[2] is not None], [r for r in rows if r[2] is None])
                       if group]
        self.batch_size = batch_size
        self.rng = random.Random(seed)

    def _chunks(self) -> list[list[Row]]:
        chunks = []
        for group in self.groups:
            order = list(range(len(group)))
            self.rng.shuffle(order)
            chunks += [[group[i] for i in order[start:start + self.batch_size]]
                       for start in range(0, len(order), self.batch_size)]
        self.rng.shuffle(chunks)
        return chunks

    def __len__(self) -> int:
        return sum(-(-len(group) // self.batch_size) for group in self.groups)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        return (_collate(chunk) for chunk in self._chunks())

    def in_order(self, batch_size: int = 256) -> list[dict[str, Tensor]]:
        """Every row once, in index order (to run the teacher over the training windows once)."""
        return [_collate(self.rows[start:start + batch_size]) for start in range(0, len(self.rows), batch_size)]


def _news_batches(items: Sequence[NewsItem], vocab: CharVocab, recipe: _NewsRecipe, *, shuffle: bool,
                 transfer: bool = False, batch_size: int | None = None) -> Any:
    """Batches (``input_ids``, ``mask``, ``index``, ``labels``) of the items' first windows (chapter 09).

    With ``transfer`` the later windows of every item join as batches without ``labels`` (the
    transfer set). ``index`` numbers the windows: the items' first windows in item order, then
    the later ones, so a :class:`~course_lib.kd.teacher.TeacherLogitCache` can be keyed by it.
    Without ``shuffle`` the batches keep the items' order (for evaluation).
    """
    if not items:
        raise ValueError("items is empty: there is nothing to batch")
    size = batch_size or recipe.batch_size
    windows: list[tuple[str, int | None]] = [(_news_windows(item, recipe.max_len)[0], item.label) for item in items]
    if transfer:
        windows += [(window, None) for item in items
                    for window in _news_windows(item, recipe.max_len, recipe.transfer_windows)[1:]]
    rows = [(index, _encode(vocab, text), label) for index, (text, label) in enumerate(windows)]
    if shuffle:
        return _Batches(rows, size, recipe.seed)
    return [_collate(rows[start:start + size]) for start in range(0, len(rows), size)]


def _classifier_loss(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    """Cross-entropy of the labels (chapter 09)."""
    return F.cross_entropy(model(batch["input_ids"], mask=batch["mask"]).logits, batch["labels"])


@torch.no_grad()
def _predictions(model: nn.Module, batches: Sequence[dict[str, Tensor]]) -> tuple[list[int], list[int]]:
    device = next(model.parameters()).device
    predicted, gold = [], []
    for batch in batches:
        logits = model(batch["input_ids"].to(device), mask=batch["mask"].to(device)).logits
        predicted += logits.argmax(dim=-1).tolist()
        gold += batch["labels"].tolist()
    return predicted, gold


def _evaluate_news(model: nn.Module, batches: Sequence[dict[str, Tensor]]) -> dict[str, float]:
    """Accuracy and macro-F1 (scikit-learn) of ``model`` on labelled ``batches`` (chapter 09)."""
    predicted, gold = _predictions(model, batches)
    correct = sum(p == g for p, g in zip(predicted, gold))
    return {"accuracy": correct / len(gold),
            "macro_f1": float(f1_score(gold, predicted, average="macro", labels=list(range(len(INEWS_LABELS))),
                                       zero_division=0))}


def _data_sha256(train: Sequence[NewsItem], dev: Sequence[NewsItem]) -> str:
    """The sha256 of the labelled items a model learns from and is selected on: part of its cache key."""
    rows = {split: [[item.title, item.content, item.label] for item in items] for split, items in
            (("train", train), ("dev", dev))}
    return sha256_json(rows)


def news_model(
    context: CourseContext,
    role: str,
    recipe: _NewsRecipe,
    corpus: NewsCorpus,
    vocab: CharVocab,
    *,
    teacher: Trained | None = None,
    progress: bool = True,
) -> Trained:
    """The cached classifier of ``role`` and ``recipe``, or train it and cache it; the distilled students need ``teacher`` (chapter 09).

    A model is keyed by its recipe, the labelled training and dev items, the characters and (a
    student) the teacher's checkpoint. The epoch with the best dev macro-F1 is kept; ``metrics``
    holds the ``dev_curve`` and the number of ``training_windows``. ``seconds`` includes the
    teacher's one pass over the training windows.
    """
    mode, device = context_mode_and_device(context)
    items = _training_items(corpus, recipe)
    depends_on = model_dependencies(recipe.method, teacher, _data_sha256(items, corpus.dev), vocab=vocab,
                                    made_by="news_model")

    def build(_: Any) -> nn.Module:
        torch.manual_seed(recipe.seed)
        return SequenceClassifier(recipe.model_config(len(vocab)), num_classes=len(INEWS_LABELS))

    def train(model: nn.Module, _: Any) -> Trained:
        return _fit_news(model, role, recipe, items, corpus.dev, vocab, teacher=teacher and teacher.model.to(device),
                         device=device, progress=progress)

    trained = load_or_train(model_path(f"news_{role}", mode), recipe, build=build, train=train, depends_on=depends_on,
                            device=device)
    trained.vocab = vocab
    return trained


def _fit_news(model: nn.Module, role: str, recipe: _NewsRecipe, items: Sequence[NewsItem], dev: Sequence[NewsItem],
              vocab: CharVocab, *, teacher: nn.Module | None, device: torch.device, progress: bool) -> Trained:
    """Train ``model`` on ``items`` as ``recipe`` says, keeping the epoch of best dev macro-F1, without caching it."""
    train_batches = _news_batches(items, vocab, recipe, shuffle=True, transfer=recipe.method == "transfer")
    start = time.perf_counter()
    cache = None
    if recipe.method in ("logits", "transfer"):
        # The windows look the same every epoch, so the teacher runs once over them; its logits are
        # looked up by window index, which stays right however the batches are shuffled.
        cache = TeacherLogitCache.build(teacher, train_batches.in_order(), device=device)
    teacher_pass_seconds = time.perf_counter() - start
    setup = setup_method(recipe, student=model, teacher=teacher, task_loss=_classifier_loss, cache=cache)
    trained = fit(model, train_batches, recipe, loss_fn=setup.loss_fn,
                  dev_loader=_news_batches(dev, vocab, recipe, shuffle=False, batch_size=128),
                  evaluate_fn=_evaluate_news, monitor="macro_f1", device=device, progress=progress,
                  desc=NEWS_ROLES[role].title)
    trained.seconds += teacher_pass_seconds
    trained.metrics = {"dev_curve": [float(r.dev["macro_f1"]) for r in trained.history.epochs],
                       "training_windows": len(train_batches.rows)}
    return trained


@dataclass
class _NewsRow:
    """One model of the comparison, measured on the test items (chapter 09)."""

    role: str
    title: str
    parameters: int
    accuracy: float
    macro_f1: float
    per_class_f1: dict[str, float]
    latency_batch1_ms: float
    train_seconds: float
    training_windows: int
    dev_curve: list[float]


@dataclass
class _NewsComparison:
    """Every row of the comparison and the models themselves (not serialised) (chapter 09).

    ``split_sizes`` counts the items of each split; ``train_items`` how many training items the
    models learned from (the first ones).
    """

    mode: str
    rows: dict[str, _NewsRow]
    vocab_size: int
    split_sizes: dict[str, int]
    train_items: int
    models: dict[str, Trained] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The measured part as a plain dict (the models are left out)."""
        return {"mode": self.mode, "vocab_size": self.vocab_size, "split_sizes": self.split_sizes,
                "train_items": self.train_items, "labels": list(INEWS_LABELS),
                "rows": {role: rounded(row) for role, row in self.rows.items()},
                "distilbert_2019": DISTILBERT_2019}


def _row(role: str, trained: Trained, test: Sequence[dict[str, Tensor]], latency_ms: float) -> _NewsRow:
    predicted, gold = _predictions(trained.model, test)
    per_class = f1_score(gold, predicted, average=None, labels=list(range(len(INEWS_LABELS))), zero_division=0)
    return _NewsRow(role=role, title=NEWS_ROLES[role].title, parameters=count_parameters(trained.model),
                   accuracy=sum(p == g for p, g in zip(predicted, gold)) / len(gold), macro_f1=float(per_class.mean()),
                   per_class_f1={name: float(value) for name, value in zip(INEWS_LABELS, per_class)},
                   latency_batch1_ms=latency_ms, train_seconds=trained.seconds,
                   training_windows=trained.metrics["training_windows"], dev_curve=trained.metrics["dev_curve"])


def compare_news(
    context: CourseContext,
    *,
    corpus: NewsCorpus | None = None,
    recipes: dict[str, _NewsRecipe] | None = None,
    latency_rounds: int = 10,
    progress: bool = True,
) -> _NewsComparison:
    """Train (or load) the teacher and the three students of ``recipes`` (default: the course's for the mode) and measure them (chapter 09)."""
    mode, _ = context_mode_and_device(context)
    corpus = corpus or load_inews()
    recipes = case_recipes(NEWS_ROLES, recipes, lambda role: news_recipe(role, mode), same=("max_len", "train_items"))
    teacher_recipe = recipes["teacher"]
    training_items = _training_items(corpus, teacher_recipe)
    vocab = CharVocab.from_texts((_news_windows(item, teacher_recipe.max_len)[0] for item in training_items),
                                 min_freq=teacher_recipe.vocab_min_freq)
    trained = teacher_then_students(NEWS_ROLES, lambda role, teacher: news_model(
        context, role, recipes[role], corpus, vocab, teacher=teacher, progress=progress))
    test = _news_batches(corpus.test, vocab, teacher_recipe, shuffle=False, batch_size=128)
    example = _news_batches(corpus.test[:1], vocab, teacher_recipe, shuffle=False)[0]
    latency = cpu_latency({role: model.model for role, model in trained.items()},
                          lambda model: model(example["input_ids"], mask=example["mask"]), latency_rounds)
    rows = {role: _row(role, model, test, latency[role]) for role, model in trained.items()}
    sizes = {"train": len(corpus.train), "dev": len(corpus.dev), "test": len(corpus.test)}
    return _NewsComparison(mode=mode, rows=rows, vocab_size=len(vocab), split_sizes=sizes,
                           train_items=len(training_items), models=trained)
