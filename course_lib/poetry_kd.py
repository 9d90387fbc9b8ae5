"""Case 2 of the lecture deck (文本生成 · text generation): distilling a Tang-poetry language model.

A character-level language model (:class:`course_lib.char_lm.CharLM`) learns five-character
regulated verse (五言律诗: four couplets of 5 + 5 characters) from the Tang poems of
``course_lib.data.load_tang_poems``. One teacher and three students of one tiny shape, all
trained on the same poems for the same number of epochs:

- ``scratch``: the real next character only;
- ``word_kd``: *word-level* distillation (Kim & Rush 2016's name for Hinton's loss applied to
  every position): ``alpha`` on the real next character, ``1 - alpha`` on ``T**2`` times the KL
  to the teacher's next-character distribution;
- ``sequence_kd``: *sequence-level* distillation (Kim & Rush 2016): the student learns, with the
  plain next-character loss, from poems the **teacher wrote** — as many as there are real
  training poems, sampled at a temperature below 1 so that they lean towards the teacher's most
  likely poems, as the paper's beam search does.

What is measured for each model: the perplexity of the real test poems; the share of sampled
poems (temperature 1, the model's own distribution) that keep the form, checked by
:func:`course_lib.data.is_regulated_pentasyllabic`; how plausible the teacher finds those
samples (its mean negative log-likelihood per character); parameters; and the time to write
one poem at batch 1 on one CPU thread with the key/value cache (on a GPU machine too: the
students are meant to be served on a CPU).
"""

from __future__ import annotations

import dataclasses
import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from course_lib.char_lm import CharLM, lm_batch, lm_loss, lm_nll, sample
from course_lib.data import CharVocab, is_regulated_pentasyllabic, load_tang_poems
from course_lib.data.poetry import Poem, PoetryCorpus
from course_lib.distill import Distiller
from course_lib.latency import interleaved_latency
from course_lib.notebook import MODES, context_mode_and_device
from course_lib.training import TrainingHistory, fit_adamw
from course_lib.transformer import TransformerConfig, count_parameters

if TYPE_CHECKING:
    from course_lib.notebook import CourseContext

__all__ = [
    "KIM_RUSH_2016",
    "POETRY_CPU_THREADS",
    "POETRY_ROLES",
    "ROLE_TITLES",
    "PoetryComparison",
    "PoetryRecipe",
    "PoetryRow",
    "compare_poetry",
    "poem_vocab",
    "poetry_recipe",
    "train_poetry_model",
]

POETRY_ROLES = ("teacher", "scratch", "word_kd", "sequence_kd")
ROLE_TITLES = {
    "teacher": "teacher",
    "scratch": "(a) student, real poems only",
    "word_kd": "(b) student, word-level KD",
    "sequence_kd": "(c) student, sequence-level KD",
}
METHODS = ("labels", "word_kd", "sequence_kd")
ROLE_METHODS = {"teacher": "labels", "scratch": "labels", "word_kd": "word_kd", "sequence_kd": "sequence_kd"}
BOS, EOS = "<s>", "</s>"
POETRY_CPU_THREADS = 2
MAX_LEN = 64  # positions: <s> and the 48 characters of a poem, with room to spare for samples
# Kim & Rush 2016, Table 1 (WMT 2014 English→German, greedy decoding, BLEU): a 4×1000 teacher and
# 2×500 students trained on the references (no KD), with word-level KD, and with sequence-level KD.
KIM_RUSH_2016 = {"teacher": 17.7, "no_kd": 14.7, "word_kd": 15.4, "sequence_kd": 18.9}


@dataclass(frozen=True)
class PoetryRecipe:
    """Shape, data and optimisation of one poetry language model, and how it learns.

    ``method`` is "labels" (the real poems), "word_kd" (Hinton's loss at every position at
    ``temperature``, ``alpha`` on the real next character) or "sequence_kd" (the real next-char
    loss on poems the teacher sampled at ``teacher_sampling_temperature``). ``train_poems``
    counts poems from the start of the training split (None: all of them). A character must occur
    ``vocab_min_freq`` times in the teacher's poems to get its own id (rarer ones read as ``<unk>``).
    """

    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    d_ff: int = 256
    dropout: float = 0.1
    train_poems: int | None = None
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    warmup_fraction: float = 0.05
    patience: int | None = None
    seed: int = 0
    method: str = "labels"
    temperature: float = 2.0
    alpha: float = 0.5
    teacher_sampling_temperature: float = 0.7
    vocab_min_freq: int = 2

    def __post_init__(self) -> None:
        for name in ("d_model", "num_heads", "num_layers", "d_ff", "epochs", "batch_size", "vocab_min_freq"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.train_poems is not None and (isinstance(self.train_poems, bool) or not isinstance(self.train_poems, int)
                                             or self.train_poems < 1):
            raise ValueError(f"train_poems must be a positive int or None, got {self.train_poems!r}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        for name in ("temperature", "teacher_sampling_temperature", "lr"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0):
                raise ValueError(f"{name} must be a number > 0, got {value!r}")
        if not (isinstance(self.alpha, (int, float)) and 0.0 <= self.alpha <= 1.0):
            raise ValueError(f"alpha must be in [0, 1] (the weight of the real next character), got {self.alpha!r}")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 1):
            raise ValueError(f"patience must be a positive int or None, got {self.patience!r}")

    def model_config(self, vocab_size: int) -> TransformerConfig:
        """The causal Transformer of this recipe over a vocabulary of ``vocab_size`` tokens."""
        return TransformerConfig(vocab_size=vocab_size, d_model=self.d_model, num_heads=self.num_heads,
                                 num_layers=self.num_layers, d_ff=self.d_ff, max_len=MAX_LEN,
                                 dropout=self.dropout, causal=True)

    def to_dict(self) -> dict[str, Any]:
        """The recipe as a plain dict (for a results file)."""
        return dataclasses.asdict(self)


_TEACHER = {
    "fast": dict(d_model=64, num_heads=4, num_layers=2, d_ff=256, train_poems=3_000, epochs=3, lr=3e-3),
    "full": dict(d_model=96, num_heads=4, num_layers=3, d_ff=384, train_poems=None, epochs=8, lr=2e-3),
}
_TINY = {
    "fast": dict(d_model=32, num_heads=2, num_layers=1, d_ff=64, lr=5e-3),
    "full": dict(d_model=32, num_heads=4, num_layers=2, d_ff=128, lr=5e-3),
}


def poetry_recipe(role: str, mode: str) -> PoetryRecipe:
    """The course's recipe for ``role`` in ``mode``; every student gets the teacher's poems and epochs."""
    if role not in POETRY_ROLES:
        raise ValueError(f"role must be one of {POETRY_ROLES}, got {role!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    teacher = _TEACHER[mode]
    shared = dict(train_poems=teacher["train_poems"], epochs=teacher["epochs"])
    if role == "teacher":
        return PoetryRecipe(**teacher)
    return PoetryRecipe(**_TINY[mode], **shared, method=ROLE_METHODS[role])


def poem_vocab(poems: Sequence[Poem], min_freq: int = 1) -> CharVocab:
    """The characters of ``poems`` seen ``min_freq`` times (most frequent first) after ``<pad>``, ``<unk>``, ``<s>``, ``</s>``."""
    if not poems:
        raise ValueError("poems is empty: a vocabulary needs at least one poem")
    return CharVocab.from_texts((poem.text for poem in poems), min_freq=min_freq, specials=(BOS, EOS))


def _loader(sequences: Sequence[Sequence[int]], vocab: CharVocab, batch_size: int, shuffle: bool,
            seed: int) -> DataLoader:
    bos, eos = vocab.index(BOS), vocab.index(EOS)
    return DataLoader(list(sequences), batch_size=batch_size, shuffle=shuffle,
                      generator=torch.Generator().manual_seed(seed),
                      collate_fn=lambda rows: lm_batch(rows, bos, eos, vocab.pad_id))


def _perplexity(model: nn.Module, loader: DataLoader) -> dict[str, float]:
    """Dev metrics of a language model: perplexity and NLL per token."""
    nll = lm_nll(model, loader, device=next(model.parameters()).device)
    return {"perplexity": math.exp(nll), "nll": nll}


def _banned(vocab: CharVocab) -> tuple[int, ...]:
    """Tokens a sampler must never draw: padding, ``<unk>`` and ``<s>``."""
    return vocab.pad_id, vocab.unk_id, vocab.index(BOS)


def _sample(model: CharLM, vocab: CharVocab, count: int, temperature: float, seed: int,
            device: torch.device) -> list[list[int]]:
    return sample(model, count, bos_id=vocab.index(BOS), eos_id=vocab.index(EOS), max_new_tokens=MAX_LEN - 1,
                  temperature=temperature, seed=seed, banned_ids=_banned(vocab), device=device)


def _decode(vocab: CharVocab, ids: Sequence[int]) -> str:
    return "".join(vocab.id_to_token(i) for i in ids)


@dataclass
class TrainedPoet:
    """A trained poetry model, what it learned from, and what training measured."""

    role: str
    model: CharLM
    recipe: PoetryRecipe
    dev_curve: list[float]
    train_seconds: float
    history: TrainingHistory
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


def train_poetry_model(
    role: str,
    recipe: PoetryRecipe,
    corpus: PoetryCorpus,
    vocab: CharVocab,
    *,
    teacher: CharLM | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> TrainedPoet:
    """Train the model of ``role`` with ``recipe``; students of "word_kd" and "sequence_kd" need ``teacher``.

    The epoch with the lowest dev perplexity (real dev poems) is kept.
    """
    device = torch.device(device)
    if recipe.train_poems is not None and recipe.train_poems > len(corpus.train):
        raise ValueError(f"recipe.train_poems={recipe.train_poems} exceeds the {len(corpus.train):,} training poems")
    poems = corpus.train[: recipe.train_poems]
    if recipe.method != "labels" and teacher is None:
        raise ValueError(f"method {recipe.method!r} learns from a teacher: pass the trained teacher")
    sequences = [vocab.encode(poem.text) for poem in poems]
    extra: dict[str, Any] = {}
    loss_fn: Any = lm_loss
    if recipe.method == "sequence_kd":
        written = _sample(teacher, vocab, len(sequences), recipe.teacher_sampling_temperature, recipe.seed + 1, device)
        extra["teacher_written_poems"] = len(written)
        extra["teacher_written_in_form"] = round(
            sum(is_regulated_pentasyllabic(_decode(vocab, ids)) for ids in written) / len(written), 4)
        sequences = written
    elif recipe.method == "word_kd":
        loss_fn = Distiller(teacher.to(device), temperature=recipe.temperature, alpha=recipe.alpha)
    torch.manual_seed(recipe.seed)
    model = CharLM(recipe.model_config(len(vocab)))
    dev_sequences = [vocab.encode(poem.text) for poem in corpus.dev]
    fit = fit_adamw(
        model,
        _loader(sequences, vocab, recipe.batch_size, shuffle=True, seed=recipe.seed),
        loss_fn=loss_fn,
        lr=recipe.lr,
        epochs=recipe.epochs,
        warmup_fraction=recipe.warmup_fraction,
        dev_loader=_loader(dev_sequences, vocab, 256, shuffle=False, seed=0),
        evaluate_fn=_perplexity,
        monitor="perplexity",
        mode="min",
        patience=recipe.patience,
        device=device,
        threads=POETRY_CPU_THREADS,
        progress=progress,
        desc=ROLE_TITLES[role],
    )
    curve = [float(record.dev["perplexity"]) for record in fit.history.epochs]
    return TrainedPoet(role=role, model=model.eval(), recipe=recipe, dev_curve=curve, train_seconds=fit.seconds,
                       history=fit.history, extra=extra)


@dataclass
class PoetryRow:
    """One model of the comparison, measured on the test poems and on its own samples."""

    role: str
    title: str
    parameters: int
    test_perplexity: float
    in_form: float
    teacher_nll: float
    distinct: float
    ms_per_poem: float
    train_seconds: float
    dev_curve: list[float]
    examples: list[str]
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The row as a plain dict (rounded for a results file)."""
        row = dataclasses.asdict(self)
        for key in ("test_perplexity", "teacher_nll", "ms_per_poem", "train_seconds"):
            row[key] = round(row[key], 4 if key != "train_seconds" else 1)
        row["in_form"], row["distinct"] = round(self.in_form, 4), round(self.distinct, 4)
        row["dev_curve"] = [round(value, 3) for value in self.dev_curve]
        return row


@dataclass
class PoetryComparison:
    """Every row of the comparison, the sampling set-up, and the models themselves (not serialised)."""

    mode: str
    rows: dict[str, PoetryRow]
    samples: int
    vocab_size: int
    train_poems: int
    test_poems: int
    models: dict[str, TrainedPoet] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The measured part as a plain dict (the models are left out)."""
        return {"mode": self.mode, "samples": self.samples, "vocab_size": self.vocab_size,
                "train_poems": self.train_poems, "test_poems": self.test_poems,
                "rows": {role: row.to_dict() for role, row in self.rows.items()}, "kim_rush_2016": KIM_RUSH_2016}


def _poem_steps(model: CharLM, vocab: CharVocab, steps: int, device: torch.device):
    """A call that writes ``steps`` characters greedily at batch 1 with the key/value cache (for timing)."""
    start = torch.full((1, 1), vocab.index(BOS), dtype=torch.long, device=device)

    def write() -> None:
        current, cache = start, None
        for _ in range(steps):
            logits, cache = model.step(current, cache)
            current = logits.argmax(dim=-1, keepdim=True)

    return write


def compare_poetry(
    context: CourseContext,
    *,
    corpus: PoetryCorpus | None = None,
    recipes: dict[str, PoetryRecipe] | None = None,
    samples: int = 500,
    latency_rounds: int = 10,
    progress: bool = True,
) -> PoetryComparison:
    """Train the teacher and the three students of ``recipes`` (default: the course's for the mode) and measure them."""
    mode, device = context_mode_and_device(context)
    corpus = corpus or load_tang_poems()
    recipes = recipes or {role: poetry_recipe(role, mode) for role in POETRY_ROLES}
    missing = [role for role in POETRY_ROLES if role not in recipes]
    if missing:
        raise ValueError(f"recipes needs every role {POETRY_ROLES}; missing {missing}")
    if any(recipes[role].train_poems != recipes["teacher"].train_poems for role in POETRY_ROLES):
        raise ValueError("every student must learn from the teacher's poems: give all recipes the same train_poems")
    train_poems = corpus.train[: recipes["teacher"].train_poems]
    vocab = poem_vocab(train_poems, recipes["teacher"].vocab_min_freq)
    trained = {"teacher": train_poetry_model("teacher", recipes["teacher"], corpus, vocab, device=device,
                                             progress=progress)}
    teacher = trained["teacher"].model
    for role in POETRY_ROLES[1:]:
        trained[role] = train_poetry_model(role, recipes[role], corpus, vocab, teacher=teacher, device=device,
                                           progress=progress)
    test_sequences = [vocab.encode(poem.text) for poem in corpus.test]
    steps = len(test_sequences[0]) + 1
    cpu = torch.device("cpu")
    timed = interleaved_latency(
        {role: (_poem_steps(copy.deepcopy(fit.model).cpu(), vocab, steps, cpu), 1) for role, fit in trained.items()},
        rounds=latency_rounds, seconds_per_round=0.2, threads=1)
    rows = {}
    for role, fit in trained.items():
        written = _sample(fit.model, vocab, samples, 1.0, seed=1234, device=device)
        texts = [_decode(vocab, ids) for ids in written]
        rows[role] = PoetryRow(
            role=role,
            title=ROLE_TITLES[role],
            parameters=count_parameters(fit.model),
            test_perplexity=math.exp(lm_nll(fit.model, _loader(test_sequences, vocab, 256, False, 0), device)),
            in_form=sum(map(is_regulated_pentasyllabic, texts)) / len(texts),
            teacher_nll=lm_nll(teacher, _loader([ids for ids in written], vocab, 256, False, 0), device),
            distinct=len(set(texts)) / len(texts),
            ms_per_poem=timed[role].p50_ms,
            train_seconds=fit.train_seconds,
            dev_curve=fit.dev_curve,
            examples=texts[:3],
            extra=fit.extra,
        )
    return PoetryComparison(mode=mode, rows=rows, samples=samples, vocab_size=len(vocab),
                            train_poems=len(train_poems), test_poems=len(test_sequences), models=trained)

