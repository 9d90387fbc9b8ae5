"""Case 2 of the lecture deck (文本生成 · text generation): distilling a Tang-poetry language model.

A character-level language model (:class:`course_lib.nn.char_lm.CharLM`) learns five-character
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
students are meant to be served on a CPU). Every model is cached (:func:`poetry_model`): a
second run loads it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

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
from course_lib.data import CharVocab, is_regulated_pentasyllabic, lm_batch, load_tang_poems
from course_lib.data.poetry import Poem, PoetryCorpus
from course_lib.files import sha256_json
from course_lib.kd.methods import DistillRecipe, setup_method
from course_lib.nn.char_lm import CharLM, sample
from course_lib.nn.transformer import TransformerShape, count_parameters
from course_lib.train.cache import load_or_train, model_path
from course_lib.train.fit import Trained, fit
from course_lib.train.tagging import tagger_loss, token_nll

POETRY_ROLES = roles(
    Role("teacher", "teacher"),
    Role("scratch", "(a) student, real poems only"),
    Role("word_kd", "(b) student, word-level KD", "logits"),
    Role("sequence_kd", "(c) student, sequence-level KD", "sequence_kd"),
)
BOS, EOS = "<s>", "</s>"
MAX_LEN = 64  # positions: <s> and the 48 characters of a poem, with room to spare for samples
# Kim & Rush 2016, Table 1 (WMT 2014 English→German, greedy decoding, BLEU): a 4×1000 teacher and
# 2×500 students trained on the references (no KD), with word-level KD, and with sequence-level KD.
KIM_RUSH_2016 = {"teacher": 17.7, "no_kd": 14.7, "word_kd": 15.4, "sequence_kd": 18.9}


@dataclass(frozen=True)
class _PoetryRecipe(DistillRecipe, TransformerShape):
    """Shape, data and optimisation of one poetry language model, and how it learns (chapter 09).

    ``method`` is "labels" (the real poems), "logits" (word-level distillation: Hinton's loss at
    every position at ``temperature``, ``alpha`` on the real next character) or "sequence_kd"
    (the real next-character loss on poems the teacher sampled at ``teacher_sampling_temperature``).
    ``train_poems`` counts poems from the start of the training split (None: all of them). A
    character must occur ``vocab_min_freq`` times in the teacher's poems to get its own id (rarer
    ones read as ``<unk>``). The next-character loss is a tagging loss: each position's tag is the
    character that follows it.
    """

    max_len: int = MAX_LEN
    epochs: int = 10
    batch_size: int = 64
    warmup_fraction: float = 0.05
    threads: int = 2
    train_poems: int | None = None
    teacher_sampling_temperature: float = 0.7
    vocab_min_freq: int = 2

    def check(self) -> None:
        super().check()
        self.model_config(2)
        checks.optional_positive_int("train_poems", self.train_poems)
        checks.positive_number("teacher_sampling_temperature", self.teacher_sampling_temperature)
        checks.positive_int("vocab_min_freq", self.vocab_min_freq)

    def model_config(self, vocab_size: int, **extra: Any) -> Any:
        """The causal Transformer of this recipe over a vocabulary of ``vocab_size`` tokens."""
        return super().model_config(vocab_size, causal=True, **extra)


# Fast mode fits a 2-core laptop in about a minute: the first 2,000 training poems, characters seen 8
# times, small batches at a high learning rate without dropout (enough steps for the form to appear),
# one CPU thread (these models are too small for a second thread to pay).
_FAST = dict(train_poems=2_000, epochs=4, batch_size=16, vocab_min_freq=8, lr=1e-2, dropout=0.0, threads=1)
_TEACHER = {
    "fast": dict(d_model=64, num_heads=4, num_layers=2, d_ff=256, **_FAST),
    "full": dict(d_model=96, num_heads=4, num_layers=3, d_ff=384, train_poems=None, epochs=8, lr=2e-3),
}
_TINY = {
    "fast": dict(d_model=32, num_heads=2, num_layers=1, d_ff=64, **_FAST),
    "full": dict(d_model=32, num_heads=4, num_layers=2, d_ff=128, lr=5e-3),
}


def poetry_recipe(role: str, mode: str) -> _PoetryRecipe:
    """The course's recipe for ``role`` in ``mode``; every student gets the teacher's poems and epochs (chapter 09)."""
    return role_recipe(_PoetryRecipe, POETRY_ROLES, role, mode, _TEACHER, _TINY, ("train_poems", "epochs"))


def _poem_vocab(poems: Sequence[Poem], min_freq: int = 1) -> CharVocab:
    """The characters of ``poems`` seen ``min_freq`` times, after ``<pad>``, ``<unk>``, ``<s>``, ``</s>`` (chapter 09)."""
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
    nll = token_nll(model, loader, device=next(model.parameters()).device)
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


def write_poems(model: CharLM, vocab: CharVocab, count: int, *, temperature: float = 1.0, seed: int = 0,
                device: torch.device | str = "cpu") -> list[str]:
    """``count`` poems sampled from ``model`` at ``temperature`` and decoded to text (seeded) (chapter 09).

    Padding, ``<unk>`` and ``<s>`` are never drawn; a poem ends at ``</s>`` or after the longest
    poem a sampler may write. Whether it keeps the form is for
    :func:`~course_lib.data.is_regulated_pentasyllabic` to say.
    """
    return [_decode(vocab, ids) for ids in _sample(model, vocab, count, temperature, seed, torch.device(device))]


def poem_perplexity(model: CharLM, vocab: CharVocab, texts: Sequence[str], device: torch.device | str = "cpu") -> float:
    """Perplexity of ``model`` on ``texts`` per character, ``</s>`` included (chapter 09).

    The texts are read with ``vocab`` (an unknown character is ``<unk>``); the lower, the more
    likely the model finds them.
    """
    if isinstance(texts, str) or not texts:
        raise ValueError("texts must be a non-empty sequence of poems (strings)")
    sequences = [vocab.encode(text) for text in texts]
    return math.exp(token_nll(model, _loader(sequences, vocab, 256, False, 0), torch.device(device)))


def _poems_sha256(train: Sequence[Poem], dev: Sequence[Poem]) -> str:
    """The sha256 of the poems a model learns from and is selected on: part of its cache key."""
    return sha256_json({"train": [poem.text for poem in train], "dev": [poem.text for poem in dev]})


def poetry_model(
    context: CourseContext,
    role: str,
    recipe: _PoetryRecipe,
    corpus: PoetryCorpus,
    vocab: CharVocab,
    *,
    teacher: Trained | None = None,
    progress: bool = True,
) -> Trained:
    """The cached language model of ``role`` and ``recipe``, or train it and cache it; the distilled students need ``teacher`` (chapter 09).

    A model is keyed by its recipe, the training and dev poems, the characters and (a student) the
    teacher's checkpoint. The epoch with the lowest dev perplexity (real dev poems) is kept;
    ``metrics`` holds the ``dev_curve`` and, for sequence-level KD, how many poems the teacher
    wrote and how many keep the form.
    """
    mode, device = context_mode_and_device(context)
    if recipe.train_poems is not None and recipe.train_poems > len(corpus.train):
        raise ValueError(f"recipe.train_poems={recipe.train_poems} exceeds the {len(corpus.train):,} training poems")
    poems = corpus.train[: recipe.train_poems]
    depends_on = model_dependencies(recipe.method, teacher, _poems_sha256(poems, corpus.dev), vocab=vocab,
                                    made_by="poetry_model")

    def build(_: Any) -> nn.Module:
        torch.manual_seed(recipe.seed)
        return CharLM(recipe.model_config(len(vocab)))

    def train(model: nn.Module, _: Any) -> Trained:
        return _fit_poetry(model, role, recipe, poems, corpus.dev, vocab, teacher=teacher and teacher.model.to(device),
                           device=device, progress=progress)

    trained = load_or_train(model_path(f"poetry_{role}", mode), recipe, build=build, train=train,
                            depends_on=depends_on, device=device)
    trained.vocab = vocab
    return trained


def _fit_poetry(model: nn.Module, role: str, recipe: _PoetryRecipe, poems: Sequence[Poem], dev: Sequence[Poem],
                vocab: CharVocab, *, teacher: CharLM | None, device: torch.device, progress: bool) -> Trained:
    """Train ``model`` on ``poems`` (or, for sequence-level KD, on as many poems the teacher writes), without caching it."""
    sequences = [vocab.encode(poem.text) for poem in poems]
    metrics: dict[str, Any] = {}
    if recipe.method == "sequence_kd":
        written = _sample(teacher, vocab, len(sequences), recipe.teacher_sampling_temperature, recipe.seed + 1, device)
        metrics["teacher_written_poems"] = len(written)
        metrics["teacher_written_in_form"] = round(
            sum(is_regulated_pentasyllabic(_decode(vocab, ids)) for ids in written) / len(written), 4)
        sequences = written
    setup = setup_method(recipe, student=model, teacher=teacher, task_loss=tagger_loss)
    dev_sequences = [vocab.encode(poem.text) for poem in dev]
    trained = fit(model, _loader(sequences, vocab, recipe.batch_size, shuffle=True, seed=recipe.seed), recipe,
                  loss_fn=setup.loss_fn, dev_loader=_loader(dev_sequences, vocab, 256, shuffle=False, seed=0),
                  evaluate_fn=_perplexity, monitor="perplexity", mode="min", device=device, progress=progress,
                  desc=POETRY_ROLES[role].title)
    trained.metrics = {"dev_curve": [float(r.dev["perplexity"]) for r in trained.history.epochs], **metrics}
    return trained


@dataclass
class _PoetryRow:
    """One model of the comparison, measured on the test poems and on its own samples (chapter 09)."""

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
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _PoetryComparison:
    """Every row of the comparison, the sampling set-up, and the models themselves (not serialised) (chapter 09)."""

    mode: str
    rows: dict[str, _PoetryRow]
    samples: int
    vocab_size: int
    train_poems: int
    test_poems: int
    models: dict[str, Trained] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The measured part as a plain dict (the models are left out)."""
        return {"mode": self.mode, "samples": self.samples, "vocab_size": self.vocab_size,
                "train_poems": self.train_poems, "test_poems": self.test_poems,
                "rows": {role: rounded(row) for role, row in self.rows.items()}, "kim_rush_2016": KIM_RUSH_2016}


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
    recipes: dict[str, _PoetryRecipe] | None = None,
    samples: int = 500,
    latency_rounds: int = 10,
    progress: bool = True,
) -> _PoetryComparison:
    """Train (or load) the teacher and the three students of ``recipes`` (default: the course's for the mode) and measure them (chapter 09)."""
    mode, device = context_mode_and_device(context)
    corpus = corpus or load_tang_poems()
    recipes = case_recipes(POETRY_ROLES, recipes, lambda role: poetry_recipe(role, mode), same="train_poems")
    train_poems = corpus.train[: recipes["teacher"].train_poems]
    vocab = _poem_vocab(train_poems, recipes["teacher"].vocab_min_freq)
    trained = teacher_then_students(POETRY_ROLES, lambda role, teacher: poetry_model(
        context, role, recipes[role], corpus, vocab, teacher=teacher, progress=progress))
    teacher = trained["teacher"].model
    test_sequences = [vocab.encode(poem.text) for poem in corpus.test]
    steps = len(test_sequences[0]) + 1
    cpu = torch.device("cpu")
    latency = cpu_latency({role: model_of.model for role, model_of in trained.items()},
                          lambda model: _poem_steps(model, vocab, steps, cpu)(), latency_rounds, seconds_per_round=0.2)
    rows = {}
    for role, model_of in trained.items():
        written = _sample(model_of.model, vocab, samples, 1.0, seed=1234, device=device)
        texts = [_decode(vocab, ids) for ids in written]
        rows[role] = _PoetryRow(
            role=role,
            title=POETRY_ROLES[role].title,
            parameters=count_parameters(model_of.model),
            test_perplexity=math.exp(token_nll(model_of.model, _loader(test_sequences, vocab, 256, False, 0), device)),
            in_form=sum(map(is_regulated_pentasyllabic, texts)) / len(texts),
            teacher_nll=token_nll(teacher, _loader(list(written), vocab, 256, False, 0), device),
            distinct=len(set(texts)) / len(texts),
            ms_per_poem=latency[role],
            train_seconds=model_of.seconds,
            dev_curve=model_of.metrics["dev_curve"],
            examples=texts[:3],
            extra={key: value for key, value in model_of.metrics.items() if key != "dev_curve"},
        )
    return _PoetryComparison(mode=mode, rows=rows, samples=samples, vocab_size=len(vocab), train_poems=len(train_poems),
                            test_poems=len(test_sequences), models=trained)
