"""Case 3 (机器翻译 · translation): Kim & Rush (2016), "Sequence-Level Knowledge Distillation", in small.

An encoder–decoder Transformer (:class:`~course_lib.nn.seq2seq.Seq2SeqTransformer`) translates the
King James Version into the Reina-Valera 1909 (``course_lib.data.load_bible``: verse pairs split by
book). One larger teacher, and students of one small shape (at most a quarter of the teacher's
parameters) trained four ways on the same training sources for the same budget:

- ``alone``: the reference translations, label-smoothed cross-entropy;
- ``word_kd``: *word-level* distillation: at every target position, under teacher forcing on the
  reference, ``alpha`` on the reference token and ``1 - alpha`` on ``T**2`` times the KL to the
  teacher's next-token distribution (:func:`~course_lib.kd.losses.kd_loss`, padding masked), kept
  to the teacher's :data:`WORD_KD_TOP_K` most likely subwords and computed once (:func:`teacher_word_targets`);
- ``seq_kd``: *sequence-level* distillation: the label-smoothed loss on the teacher's beam-search
  translations of the training sources instead of the references;
- ``word_seq_kd``: both: word-level distillation on the teacher's translations.

One subword vocabulary (BPE on both languages of the training split) serves every model; it is
trained once and kept beside the models, named by the training data and its size. Every model is
cached by :func:`~course_lib.train.cache.load_or_train` (a student by its recipe, the data, the
vocabulary and the teacher's file); the teacher's beam translations of the training sources are
computed once and kept on disk under the sha256 of the teacher's weights, the beam size, the
length limit and the sources (:func:`teacher_translations`), and so are its top subwords at every
target position for word-level KD (:func:`teacher_word_targets`). Verses whose source or reference is
longer than ``max_len`` subwords are left out of training and counted.

Measured for each model: corpus BLEU and chrF (``sacrebleu``, whose signatures are reported) on
the dev and test verses, greedy and beam search; a few example translations; parameters; and
the CPU time on one thread, per verse, of greedy and beam decoding at batch 1 and of greedy decoding
in batches of :data:`SERVING_BATCH` (:func:`decoding_speed`); other student shapes are timed and trained in
:mod:`course_lib.cases.translation_shapes`. Decoding keeps each
decoder layer's keys and values between steps (:class:`~course_lib.nn.seq2seq.CachedDecoder`), as a served model would:
the result is the same as :meth:`~course_lib.nn.seq2seq.Seq2SeqTransformer.decode_step`'s, which
decodes the whole prefix again at every step.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sacrebleu
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from course_lib import checks
from course_lib.cases.common import (
    GoalCheck,
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
)
from course_lib.context import CourseContext, check_mode, context_mode_and_device
from course_lib.data import LengthBucketSampler, cache_dir, load_bible
from course_lib.data.bible import BibleCorpus, VersePair
from course_lib.data.subwords import EOS_ID, SubwordVocab, pad_sequences
from course_lib.files import sha256_json, sha256_text, write_json_atomic
from course_lib.kd.distiller import Distiller
from course_lib.kd.teacher import Batch, TeacherLogitCache
from course_lib.nn.seq2seq import CachedDecoder, Seq2SeqConfig, Seq2SeqTransformer
from course_lib.nn.transformer import count_parameters
from course_lib.train.cache import load_or_train, model_path
from course_lib.train.fit import Trained, fit
from course_lib.train.generation import Generation, beam_search, greedy_decode
from course_lib.train.loop import LossFn
from course_lib.train.recipe import Recipe
from course_lib.train.teacher_forcing import label_smoothed_cross_entropy, shift_right

TRANSLATION_ROLES = roles(
    Role("teacher", "teacher"),
    Role("alone", "(a) student, references only", "labels"),
    Role("word_kd", "(b) student, word-level KD", "word_kd"),
    Role("seq_kd", "(c) student, sequence-level KD", "seq_kd"),
    Role("word_seq_kd", "(d) student, sequence- + word-level KD", "word_seq_kd"),
)
TRANSLATION_METHODS: tuple[str, ...] = ("labels", "word_kd", "seq_kd", "word_seq_kd")
# Kim & Rush 2016, Table 1 (WMT 2014 English→German, greedy decoding, BLEU): a 4×1000 LSTM teacher and 2×500
# students trained on the references (no KD), with word-level KD, and with sequence-level KD.
KIM_RUSH_2016 = {"teacher": 17.7, "no_kd": 14.7, "word_kd": 15.4, "sequence_kd": 18.9}
PAPER_ROW = {"teacher": "teacher", "alone": "no_kd", "word_kd": "word_kd", "seq_kd": "sequence_kd"}
EVAL_PAIRS = {"fast": 40, "full": None}  # dev and test verses scored per model (None: the whole split)
LATENCY_SENTENCES = 3  # test verses of median length, each translated at batch 1, per timed call
BATCHED_SENTENCES, SERVING_BATCH = 128, 64  # test verses translated per timed call in batches of SERVING_BATCH
TRANSLATION_GOALS = {"teacher_bleu": 20.0, "seq_kd_gap": 1.0, "seq_kd_speedup": 3.0}
WORD_KD_TOP_K = 8  # the teacher's most likely subwords kept per target position for word-level KD
"""Chapter 09's goals in full mode: the teacher's test BLEU (greedy), how far at most the sequence-level
student's greedy BLEU may fall below it, and that student's speed-up of greedy decoding at batch 1."""
_SHARED = ("train_pairs", "vocab_size", "max_len", "beam_size", "dev_pairs")
_SHARED_WITH_SHIPPED = ("vocab_size", "max_len", "beam_size")  # a shipped teacher learned from other verses


@dataclass(frozen=True)
class TranslationRecipe(Recipe):
    """Shape, data and optimisation of one English→Spanish model, and how it learns (chapter 09).

    The shape is a :class:`~course_lib.nn.seq2seq.Seq2SeqConfig`'s (pre-norm, tied embeddings,
    sinusoidal positions) over a shared BPE vocabulary of at most ``vocab_size`` subwords.
    ``max_len`` bounds every sequence in subwords, ``<eos>`` included: longer training verses
    are left out, longer test sources are cut, and no translation runs longer. ``train_pairs``
    takes that many training verses spread evenly over the training books (None: all);
    ``dev_pairs`` does the same for the dev verses whose greedy BLEU picks the epoch kept.
    ``method`` is one of :data:`TRANSLATION_METHODS`; ``temperature`` and ``alpha`` (the weight
    of the reference tokens) are those of word-level KD; ``beam_size`` is the beam of the
    teacher's translations for sequence-level KD and of every beam-search score.
    """

    d_model: int = 128
    num_heads: int = 4
    encoder_layers: int = 2
    decoder_layers: int = 2
    d_ff: int = 512
    dropout: float = 0.1
    vocab_size: int = 8000
    max_len: int = 96
    label_smoothing: float = 0.1
    train_pairs: int | None = None
    dev_pairs: int | None = None
    method: str = "labels"
    temperature: float = 1.0
    alpha: float = 0.5
    beam_size: int = 5
    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    warmup_fraction: float = 0.05
    threads: int = 2

    def check(self) -> None:
        checks.int_at_least("vocab_size", self.vocab_size, 16)
        checks.int_at_least("max_len", self.max_len, 4)
        checks.number_in("label_smoothing", self.label_smoothing, 0.0, 1.0, high_open=True)
        checks.optional_positive_int("train_pairs", self.train_pairs)
        checks.optional_positive_int("dev_pairs", self.dev_pairs)
        checks.one_of("method", self.method, TRANSLATION_METHODS)
        checks.temperature(self.temperature)
        checks.alpha(self.alpha)
        checks.positive_int("beam_size", self.beam_size)
        self.model_config()

    def model_config(self, vocab_size: int | None = None) -> Seq2SeqConfig:
        """The encoder–decoder of this recipe over ``vocab_size`` subwords (default: the recipe's ``vocab_size``)."""
        return Seq2SeqConfig(vocab_size=vocab_size or self.vocab_size, d_model=self.d_model,
                             num_heads=self.num_heads, encoder_layers=self.encoder_layers,
                             decoder_layers=self.decoder_layers, d_ff=self.d_ff, dropout=self.dropout,
                             max_len=self.max_len)

    @property
    def learns_from_teacher(self) -> bool:
        """True for the methods that need a trained teacher."""
        return self.method != "labels"


_TEACHER = {  # fast: about a minute on one CPU thread; full: about 50 min on two CPU threads, minutes on a GPU
    "fast": dict(d_model=64, num_heads=4, encoder_layers=2, decoder_layers=2, d_ff=256, vocab_size=2000, max_len=48,
                 train_pairs=2400, dev_pairs=100, beam_size=4, epochs=8, batch_size=16, lr=3e-3, threads=1),
    "full": dict(d_model=256, num_heads=4, encoder_layers=3, decoder_layers=3, d_ff=1024, vocab_size=6000,
                 max_len=100, train_pairs=None, dev_pairs=None, beam_size=5, epochs=10, batch_size=64, lr=1e-3),
}
_STUDENT = {  # the four students of one seed: fast about a minute on one CPU thread; full under an hour on two threads
    "fast": dict(d_model=32, num_heads=2, encoder_layers=1, decoder_layers=1, d_ff=96, epochs=4, batch_size=16,
                 lr=1e-2, threads=1),
    # full: no dropout and twelve epochs, because the students underfit: shorter runs were still gaining dev BLEU
    "full": dict(d_model=96, num_heads=4, encoder_layers=2, decoder_layers=2, d_ff=384, dropout=0.0, epochs=12,
                 batch_size=64, lr=2e-3),
}

_SEEDS = {"fast": {role: (0,) for role in list(TRANSLATION_ROLES)[1:]},
          "full": {role: (0, 1, 2) for role in list(TRANSLATION_ROLES)[1:]}}


def translation_seeds(mode: str) -> dict[str, tuple[int, ...]]:
    """The seeds each student trains with in ``mode`` (chapter 09).

    Fast mode trains each student once; full mode trains each three times, so that every gap
    to the students trained on the references alone can be told from seed-to-seed noise.
    """
    return dict(_SEEDS[check_mode(mode)])


def translation_recipe(role: str, mode: str, seed: int = 0) -> TranslationRecipe:
    """The course's recipe for ``role`` in ``mode``: students share a shape, a budget, the teacher's data (chapter 09).

    ``seed`` seeds the model's initialisation and the order of its batches.
    """
    recipe = role_recipe(TranslationRecipe, TRANSLATION_ROLES, role, mode, _TEACHER, _STUDENT, _SHARED)
    return dataclasses.replace(recipe, seed=checks.int_at_least("seed", seed, 0))


def _check_recipes(recipes: Mapping[str, TranslationRecipe], shipped: bool = False) -> None:
    """Refuse recipes that do not share the vocabulary, data and beam, or whose method is not their role's.

    With a ``shipped`` teacher, the students share their data among themselves and only the
    vocabulary, length limit and beam with the teacher.
    """
    for role, recipe in recipes.items():
        if not isinstance(recipe, TranslationRecipe):
            raise TypeError(f"recipes[{role!r}] must be a TranslationRecipe, got {type(recipe).__name__}")
    teacher, first_student = recipes["teacher"], recipes["alone"]
    for name in _SHARED:
        with_teacher = not shipped or name in _SHARED_WITH_SHIPPED
        reference, whose = (teacher, "teacher's") if with_teacher else (first_student, "first student's")
        differing = [role for role, recipe in recipes.items()
                     if (with_teacher or role != "teacher") and getattr(recipe, name) != getattr(reference, name)]
        if differing:
            raise ValueError(f"every model reads the teacher's vocabulary and the students' data: give {differing} "
                             f"the {whose} {name}={getattr(reference, name)!r}")
    for role, recipe in recipes.items():
        if recipe.method != TRANSLATION_ROLES[role].method:
            raise ValueError(f"recipes[{role!r}] has method {recipe.method!r}, but the role {role!r} learns by "
                             f"{TRANSLATION_ROLES[role].method!r}")


def _spread(items: Sequence[Any], count: int | None) -> list[Any]:
    """``count`` items spread evenly over ``items`` in their order (all of them for None or a larger count)."""
    if count is None or count >= len(items):
        return list(items)
    return [items[(index * len(items)) // count] for index in range(count)]


def scored_verses(pairs: Sequence[VersePair], mode: str, eval_pairs: int | None | str = "mode") -> list[VersePair]:
    """The ``eval_pairs`` verses of ``pairs`` spread evenly over them that each model is scored on (chapter 09).

    None: all of them; "mode": :data:`EVAL_PAIRS` of ``mode``.
    """
    limit = EVAL_PAIRS[mode] if eval_pairs == "mode" else checks.optional_positive_int("eval_pairs", eval_pairs)
    return _spread(pairs, limit)


def _corpus_sha256(pairs: Sequence[VersePair]) -> str:
    return sha256_json([[pair.english, pair.spanish] for pair in pairs])


def subword_vocab(corpus: BibleCorpus, vocab_size: int) -> SubwordVocab:
    """The BPE vocabulary of both languages of ``corpus.train``, trained once and cached beside the models (chapter 09).

    The file ``<cache>/models/mt_subwords_<vocab_size>_<data>.json`` is named by the size and the
    sha256 of the training verses, so another corpus or size never reads it.
    """
    vocab_size = checks.int_at_least("vocab_size", vocab_size, 16)
    if not corpus.train:
        raise ValueError("corpus.train is empty: the vocabulary is learned from the training verses")
    path = cache_dir() / "models" / f"mt_subwords_{vocab_size}_{_corpus_sha256(corpus.train)[:16]}.json"
    if path.is_file():
        return SubwordVocab.load(path)
    texts = [pair.english for pair in corpus.train] + [pair.spanish for pair in corpus.train]
    vocab = SubwordVocab.train(texts, vocab_size=vocab_size, min_frequency=2)
    vocab.save(path)
    return vocab


def _cut(ids: list[int], max_len: int) -> list[int]:
    """``ids`` (ending with ``<eos>``) cut to ``max_len`` ids, still ending with ``<eos>``."""
    return ids if len(ids) <= max_len else ids[: max_len - 1] + [EOS_ID]


@dataclass
class TranslationData:
    """What every model of the case reads: the vocabulary and the encoded training verses (chapter 09).

    ``sources`` and ``targets`` are the training verses kept (English and Spanish subword ids, each
    ending with ``<eos>``); ``dropped`` counts the verses of ``train_pairs`` left out because one
    side was longer than ``max_len``; ``data_sha256`` names the training verses.
    """

    vocab: SubwordVocab
    sources: list[list[int]]
    targets: list[list[int]]
    dropped: int
    corpus: BibleCorpus
    max_len: int
    data_sha256: str

    @property
    def vocab_sha256(self) -> str:
        """The sha256 of the vocabulary's JSON: part of every model's cache key."""
        return sha256_text(self.vocab.to_json())


def prepare_translation_data(corpus: BibleCorpus, recipe: TranslationRecipe,
                             vocab: SubwordVocab | None = None) -> TranslationData:
    """The shared vocabulary and the training verses of ``recipe``, none over ``max_len`` (chapter 09).

    ``vocab`` is a teacher's own vocabulary (a shipped one); None learns or loads the course's.
    """
    if not isinstance(recipe, TranslationRecipe):
        raise TypeError(f"recipe must be a TranslationRecipe, got {type(recipe).__name__}")
    if recipe.train_pairs is not None and recipe.train_pairs > len(corpus.train):
        raise ValueError(f"recipe.train_pairs={recipe.train_pairs} exceeds the {len(corpus.train):,} training verses; "
                         "pass None for all of them")
    if vocab is None:
        vocab = subword_vocab(corpus, recipe.vocab_size)
    elif len(vocab) > recipe.vocab_size:
        raise ValueError(f"the given vocabulary has {len(vocab):,} subwords, more than recipe.vocab_size="
                         f"{recipe.vocab_size:,}: use the recipe the vocabulary's model was trained with")
    pairs = _spread(corpus.train, recipe.train_pairs)
    sources = vocab.encode([pair.english for pair in pairs])
    targets = vocab.encode([pair.spanish for pair in pairs])
    kept = [(s, t) for s, t in zip(sources, targets, strict=True) if max(len(s), len(t)) <= recipe.max_len]
    if not kept:
        raise ValueError(f"no training verse fits max_len={recipe.max_len} subwords: raise max_len")
    return TranslationData(vocab=vocab, sources=[s for s, _ in kept], targets=[t for _, t in kept],
                           dropped=len(pairs) - len(kept), corpus=corpus, max_len=recipe.max_len,
                           data_sha256=_corpus_sha256(pairs))


def shipped_teacher_data(corpus: BibleCorpus, recipe: TranslationRecipe, teacher: Trained) -> TranslationData:
    """The students' data of ``recipe`` in the vocabulary of a ``teacher`` trained elsewhere (chapter 09).

    The teacher needs its weights' path (the students' cache keys name it) and its subword vocabulary.
    """
    if teacher.path is None or not isinstance(teacher.vocab, SubwordVocab):
        raise ValueError("a teacher trained elsewhere needs its weights' path and its SubwordVocab (see "
                         "course_lib.cases.translation_reference.as_trained)")
    return prepare_translation_data(corpus, recipe, vocab=teacher.vocab)


def translation_batch(rows: Sequence[tuple[int, list[int], list[int]]]) -> dict[str, Tensor]:
    """One padded batch of ``(index, source ids, target ids)`` rows for teacher forcing (chapter 09).

    ``src_ids``/``src_mask`` (B, S); ``labels`` (B, T) the targets, padded with ``<pad>``;
    ``tgt_in`` the decoder input (``<bos>`` + targets shifted right); ``mask`` (B, T), True on the
    real target positions (of both ``labels`` and ``tgt_in``); ``index`` the rows' dataset indices.
    """
    if not rows:
        raise ValueError("a batch needs at least one (index, source, target) row")
    src_ids, src_mask = pad_sequences([source for _, source, _ in rows])
    labels, mask = pad_sequences([target for _, _, target in rows])
    return {"src_ids": src_ids, "src_mask": src_mask, "tgt_in": shift_right(labels), "labels": labels, "mask": mask,
            "index": torch.tensor([index for index, _, _ in rows], dtype=torch.long)}


def translation_loader(sources: Sequence[list[int]], targets: Sequence[list[int]], batch_size: int,
                       seed: int = 0) -> DataLoader:
    """Training batches of verses of similar length, reshuffled every epoch (a length-bucket sampler) (chapter 09)."""
    if len(sources) != len(targets):
        raise ValueError(f"sources and targets must pair up, got {len(sources)} sources and {len(targets)} targets")
    rows = [(index, list(source), list(target)) for index, (source, target) in enumerate(zip(sources, targets))]
    lengths = [max(len(source), len(target)) for _, source, target in rows]
    sampler = LengthBucketSampler(lengths, batch_size, seed=seed)
    return DataLoader(rows, batch_sampler=sampler, collate_fn=translation_batch)


def teacher_forced_logits(model: nn.Module, batch: Batch) -> Tensor:
    """The logits (B, T, V) of ``model`` on a :func:`translation_batch`, the decoder reading ``tgt_in`` (chapter 09)."""
    return model(batch["src_ids"], batch["src_mask"], batch["tgt_in"], batch["mask"])


def translation_loss(recipe: TranslationRecipe, teacher: nn.Module | None = None,
                     cache: TeacherLogitCache | None = None) -> LossFn:
    """The ``loss_fn(model, batch)`` of ``recipe.method`` (chapter 09).

    "labels" and "seq_kd": label-smoothed cross-entropy on the batch's targets (the references, or
    the teacher's translations); "word_kd" and "word_seq_kd": a :class:`~course_lib.kd.distiller.Distiller`
    of the frozen ``teacher``, i.e. :func:`~course_lib.kd.losses.kd_loss` over the real target
    positions (its hard term is the plain cross-entropy; the teacher's distribution already smooths).
    With a ``cache`` (:func:`teacher_word_targets`) the teacher's logits are looked up by the
    batch's indices instead of running the teacher at every step.
    """
    if recipe.method in ("word_kd", "word_seq_kd"):
        if teacher is None:
            raise ValueError(f"method {recipe.method!r} learns from a teacher: pass the trained teacher")
        return Distiller(teacher, recipe.temperature, recipe.alpha, forward=teacher_forced_logits, cache=cache)

    def loss(model: nn.Module, batch: Batch) -> Tensor:
        return label_smoothed_cross_entropy(teacher_forced_logits(model, batch), batch["labels"],
                                            recipe.label_smoothing)

    return loss


def _generate(model: Seq2SeqTransformer, sources: Sequence[list[int]], *, beam_size: int, max_len: int,
              batch_size: int = 64) -> Generation:
    """Greedy (``beam_size`` 1) or beam-search translations of ``sources`` (id lists), in their order."""
    checks.positive_int("batch_size", batch_size)
    device = next(model.parameters()).device
    order = sorted(range(len(sources)), key=lambda index: len(sources[index]))
    found: dict[int, tuple[list[int], float, float, bool]] = {}
    steps = CachedDecoder(model, beam_size)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        src_ids, src_mask = pad_sequences([_cut(list(sources[index]), max_len) for index in chunk])
        src_ids, src_mask = src_ids.to(device), src_mask.to(device)
        if beam_size == 1:
            out = greedy_decode(steps, src_ids, src_mask, max_len=max_len)
        else:
            out = beam_search(steps, src_ids, src_mask, beam_size=beam_size, max_len=max_len)
        for row, index in enumerate(chunk):
            found[index] = (out.tokens[row], out.scores[row], out.log_probs[row], out.finished[row])
    rows = [found[index] for index in range(len(sources))]
    return Generation(tokens=[r[0] for r in rows], scores=[r[1] for r in rows], log_probs=[r[2] for r in rows],
                      finished=[r[3] for r in rows])


def generate(model: Seq2SeqTransformer, vocab: SubwordVocab, sentences: Sequence[str], *, max_len: int,
             beam_size: int = 1, batch_size: int = 64) -> Generation:
    """``model``'s subword output for English ``sentences`` with its model scores: greedy for ``beam_size`` 1, else beam search (chapter 09).

    Sources longer than ``max_len`` subwords are cut; each output has at most ``max_len``
    subwords. Batches group sentences of similar length; the rows keep the input order.
    """
    if not sentences:
        raise ValueError("generate needs at least one sentence")
    return _generate(model, vocab.encode(list(sentences)), beam_size=beam_size, max_len=max_len, batch_size=batch_size)


def translate(model: Seq2SeqTransformer, vocab: SubwordVocab, sentences: Sequence[str], *, max_len: int,
              beam_size: int = 1, batch_size: int = 64) -> list[str]:
    """English ``sentences`` translated by ``model`` (:func:`generate`, decoded to text) (chapter 09)."""
    if not sentences:
        return []
    generation = generate(model, vocab, sentences, beam_size=beam_size, max_len=max_len, batch_size=batch_size)
    return [vocab.decode(tokens) for tokens in generation.tokens]


def translation_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Corpus BLEU and chrF of ``hypotheses`` against one reference each, with sacrebleu's defaults (chapter 09)."""
    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(f"need one reference per hypothesis and at least one of each, got {len(hypotheses)} "
                         f"hypotheses and {len(references)} references")
    return {"bleu": sacrebleu.BLEU().corpus_score(list(hypotheses), [list(references)]).score,
            "chrf": sacrebleu.CHRF().corpus_score(list(hypotheses), [list(references)]).score}


def sacrebleu_signatures() -> dict[str, str]:
    """The signature strings of the BLEU and chrF settings :func:`translation_scores` uses (chapter 09)."""
    signatures = {}
    for name, metric in (("bleu", sacrebleu.BLEU()), ("chrf", sacrebleu.CHRF())):
        metric.corpus_score(["a"], [["a"]])  # sacrebleu knows the number of references only after scoring
        signatures[name] = str(metric.get_signature())
    return signatures


def _weights_sha256(model: nn.Module) -> str:
    """The sha256 of every tensor of ``model``'s state dict, names, shapes and dtypes included."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@dataclass
class TeacherTranslations:
    """The teacher's beam translations of the training sources: sequence-level KD's targets (chapter 09).

    ``targets`` end with ``<eos>``: a hypothesis that reached ``max_len`` unfinished is cut to
    ``max_len - 1`` subwords and closed (``unfinished`` counts them). ``computed`` is False when
    they were read from the cache file.
    """

    targets: list[list[int]]
    unfinished: int
    key: dict[str, str]
    computed: bool


def teacher_translations(teacher: Seq2SeqTransformer, sources: Sequence[list[int]], *, beam_size: int, max_len: int,
                         path: Path, batch_size: int = 64) -> TeacherTranslations:
    """The teacher's beam translations of ``sources``, read from ``path`` or computed once and saved there (chapter 09).

    The file is keyed, like :meth:`~course_lib.kd.teacher.TeacherLogitCache.save`, by what made it:
    the sha256 of the teacher's weights, the beam size, ``max_len`` and the sources; any other
    key computes them again and replaces the file.
    """
    key = {"teacher": _weights_sha256(teacher), "beam_size": str(beam_size), "max_len": str(max_len),
           "sources": sha256_json([list(source) for source in sources])}
    try:
        saved = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        saved = None
    if isinstance(saved, dict) and saved.get("key") == key:
        return TeacherTranslations(saved["targets"], saved["unfinished"], key, computed=False)
    generation = _generate(teacher, sources, beam_size=beam_size, max_len=max_len, batch_size=batch_size)
    targets = [tokens if done else tokens[: max_len - 1] + [EOS_ID]
               for tokens, done in zip(generation.tokens, generation.finished, strict=True)]
    unfinished = sum(not done for done in generation.finished)
    write_json_atomic(path, {"key": key, "targets": targets, "unfinished": unfinished})
    return TeacherTranslations(targets, unfinished, key, computed=True)


def _translations_path(mode: str, beam_size: int) -> Path:
    return cache_dir() / "models" / f"mt_teacher_beam{beam_size}_{check_mode(mode)}.json"


def teacher_word_targets(teacher: Seq2SeqTransformer, sources: Sequence[list[int]], targets: Sequence[list[int]], *,
                         path: Path, top_k: int = WORD_KD_TOP_K, batch_size: int = 64) -> TeacherLogitCache:
    """The teacher's ``top_k`` largest logits at each position of ``targets``, read or computed once (chapter 09).

    These are word-level KD's targets: the teacher would compute the same ones at every step of
    every epoch, since it reads the same (source, target) pairs without dropout. Keeping the top
    ``top_k`` of the 4,000 subwords makes the cache small enough to keep (the whole distribution
    of every position would take gigabytes); the KL term then compares the student with the
    teacher's distribution renormalised over those subwords. The file is keyed by the sha256 of
    the teacher's weights, ``top_k`` and the pairs; the teacher reads pairs of similar length
    together, in a fixed order.
    """
    if len(sources) != len(targets):
        raise ValueError(f"sources and targets must pair up, got {len(sources)} sources and {len(targets)} targets")
    key = {"teacher": _weights_sha256(teacher), "top_k": str(top_k),
           "pairs": sha256_json([[list(source), list(target)] for source, target in zip(sources, targets)])}
    cached = TeacherLogitCache.load(path, key)
    if cached is not None:
        return cached
    order = sorted(range(len(sources)), key=lambda index: (len(targets[index]), len(sources[index])))
    chunks = (order[start : start + batch_size] for start in range(0, len(order), batch_size))
    batches = (translation_batch([(index, sources[index], targets[index]) for index in chunk]) for chunk in chunks)
    cache = TeacherLogitCache.build(teacher, batches, forward=teacher_forced_logits,
                                    device=next(teacher.parameters()).device, top_k=top_k)
    path.parent.mkdir(parents=True, exist_ok=True)
    cache.save(path, key)
    return cache


def _word_targets_path(mode: str, kind: str) -> Path:
    return cache_dir() / "models" / f"mt_teacher_top{WORD_KD_TOP_K}_{kind}_{check_mode(mode)}.pt"


def _dev_bleu(vocab: SubwordVocab, max_len: int) -> Callable[[nn.Module, Sequence[VersePair]], dict[str, float]]:
    """An ``evaluate_fn`` for :func:`~course_lib.train.fit.fit`: greedy BLEU on the dev verses it is given."""

    def evaluate(model: nn.Module, pairs: Sequence[VersePair]) -> dict[str, float]:
        translations = translate(model, vocab, [pair.english for pair in pairs], max_len=max_len)
        return {"bleu": translation_scores(translations, [pair.spanish for pair in pairs])["bleu"]}

    return evaluate


def translation_model(
    context: CourseContext,
    role: str,
    recipe: TranslationRecipe,
    data: TranslationData,
    *,
    teacher: Trained | None = None,
    cache_name: str | None = None,
    progress: bool = True,
) -> Trained:
    """The cached model of ``role`` and ``recipe``, or train it and cache it; students need ``teacher`` (chapter 09).

    A model is keyed by its recipe, the training verses, the vocabulary and (a student) the
    teacher's checkpoint, and cached under ``cache_name`` (default: the role and the seed; a student
    of another shape names its own, so that it does not replace the course's student). The epoch of best greedy BLEU on the recipe's dev verses is kept;
    ``metrics`` hold that ``dev_curve``, the training verses used and left out and, for
    sequence-level KD, how many of the teacher's translations were unfinished.
    """
    mode, device = context_mode_and_device(context)
    check_role(role, TRANSLATION_ROLES)
    if recipe.method != TRANSLATION_ROLES[role].method:
        raise ValueError(f"recipe.method={recipe.method!r} does not match the role {role!r}, which learns by "
                         f"{TRANSLATION_ROLES[role].method!r}")
    if recipe.learns_from_teacher and (teacher is None or teacher.path is None):
        raise ValueError(f"method {recipe.method!r} learns from a teacher: pass the teacher's Trained, as "
                         "translation_model returns it (cached, with its path)")
    if recipe.max_len != data.max_len:
        raise ValueError(f"recipe.max_len={recipe.max_len} differs from the data's max_len={data.max_len}: "
                         "prepare the data with this recipe")
    depends_on: dict[str, Path | str] = {"data": data.data_sha256, "vocab": data.vocab_sha256}
    if recipe.learns_from_teacher:
        depends_on["teacher"] = teacher.path
    if recipe.method in ("word_kd", "word_seq_kd"):
        depends_on["teacher_top_k"] = str(WORD_KD_TOP_K)
    name = cache_name or (role if role == "teacher" else f"{role}_seed{recipe.seed}")

    def build(_: Any) -> nn.Module:
        torch.manual_seed(recipe.seed)
        return Seq2SeqTransformer(recipe.model_config(len(data.vocab)))

    def train(model: nn.Module, _: Any) -> Trained:
        return fit_translation(model, role, recipe, data, teacher, mode, device, progress)

    return load_or_train(model_path(f"mt_{name}", mode), recipe, build=build, train=train, depends_on=depends_on,
                         device=device)


def fit_translation(model: nn.Module, role: str, recipe: TranslationRecipe, data: TranslationData,
                    teacher: Trained | None, mode: str, device: torch.device, progress: bool) -> Trained:
    """Train ``model`` as ``recipe`` says, on the references or the teacher's translations, without caching it (chapter 09).

    :func:`translation_model` caches what this trains; a run on several processes (chapter 08) calls
    it directly, so that every run trains.
    """
    targets, metrics = data.targets, {"train_pairs": len(data.sources), "dropped_long_pairs": data.dropped}
    if recipe.method in ("seq_kd", "word_seq_kd"):
        written = teacher_translations(teacher.model, data.sources, beam_size=recipe.beam_size,
                                       max_len=recipe.max_len, path=_translations_path(mode, recipe.beam_size))
        targets = written.targets
        metrics |= {"teacher_unfinished": written.unfinished,
                    "teacher_target_subwords": round(statistics.mean(map(len, targets)), 2)}
    teacher_model = teacher.model.to(device) if teacher is not None else None
    cache = None
    if recipe.method in ("word_kd", "word_seq_kd"):
        cache = word_kd_targets(teacher_model, recipe, data, mode, targets)
    loss_fn = translation_loss(recipe, teacher_model, cache)
    trained = fit(model, translation_loader(data.sources, targets, recipe.batch_size, seed=recipe.seed), recipe,
                  loss_fn=loss_fn, dev_loader=_spread(data.corpus.dev, recipe.dev_pairs),
                  evaluate_fn=_dev_bleu(data.vocab, recipe.max_len),
                  monitor="bleu", mode="max", device=device, progress=progress,
                  desc=f"{TRANSLATION_ROLES[role].title}, seed {recipe.seed}")
    trained.metrics = {"dev_curve": [round(r.dev["bleu"], 3) for r in trained.history.epochs], **metrics}
    return trained


def word_kd_targets(teacher: Seq2SeqTransformer, recipe: TranslationRecipe, data: TranslationData, mode: str,
                    targets: Sequence[list[int]]) -> TeacherLogitCache:
    """Word-level KD's cached targets: the teacher's top subwords at every position of ``targets`` (chapter 09).

    ``targets`` are the training targets: the references for word_kd, the teacher's beam
    translations for word_seq_kd; each kind has its own file.
    """
    name = f"beam{recipe.beam_size}" if recipe.method == "word_seq_kd" else "references"
    return teacher_word_targets(teacher, data.sources, targets, path=_word_targets_path(mode, name))


def score_translations(model: nn.Module, vocab: SubwordVocab, pairs: Sequence[VersePair], max_len: int,
                       beam_size: int) -> tuple[dict[str, float], list[str]]:
    """BLEU and chrF of greedy and beam translations of ``pairs``, and the greedy translations (chapter 09)."""
    sentences, references = [pair.english for pair in pairs], [pair.spanish for pair in pairs]
    greedy = translate(model, vocab, sentences, max_len=max_len)
    beam = translate(model, vocab, sentences, max_len=max_len, beam_size=beam_size)
    greedy_scores, beam_scores = translation_scores(greedy, references), translation_scores(beam, references)
    scores = {"bleu_greedy": greedy_scores["bleu"], "bleu_beam": beam_scores["bleu"],
              "chrf_greedy": greedy_scores["chrf"], "chrf_beam": beam_scores["chrf"]}
    return scores, greedy


def _speed_calls(vocab: SubwordVocab, pairs: Sequence[VersePair], max_len: int,
                 beam_size: int) -> dict[str, tuple[Callable[[nn.Module], None], int]]:
    """The timed decoding calls, each with the number of verses it translates, by the prefix of its row keys.

    "": greedy, and "beam_": beam search, each over :data:`LATENCY_SENTENCES` test verses of median
    source length one at a time (batch 1); "batched_": greedy over up to :data:`BATCHED_SENTENCES`
    test verses spread over the split, in batches of :data:`SERVING_BATCH`.
    """
    by_length = sorted((_cut(ids, max_len) for ids in vocab.encode([pair.english for pair in pairs])), key=len)
    middle = max(0, len(by_length) // 2 - LATENCY_SENTENCES // 2)
    single = by_length[middle : middle + LATENCY_SENTENCES]
    batched = vocab.encode([pair.english for pair in _spread(pairs, BATCHED_SENTENCES)])

    def one_at_a_time(beam: int) -> Callable[[nn.Module], None]:
        def call(model: nn.Module) -> None:
            for ids in single:
                _generate(model, [ids], beam_size=beam, max_len=max_len, batch_size=1)

        return call

    def in_batches(model: nn.Module) -> None:
        _generate(model, batched, beam_size=1, max_len=max_len, batch_size=SERVING_BATCH)

    return {"": (one_at_a_time(1), len(single)), "beam_": (one_at_a_time(beam_size), len(single)),
            "batched_": (in_batches, len(batched))}


def decoding_speed(models: Mapping[str, nn.Module], vocab: SubwordVocab, pairs: Sequence[VersePair], max_len: int,
                   beam_size: int, rounds: int) -> dict[str, dict[str, float]]:
    """Per model, ms per verse and speed-up over ``models["teacher"]`` of each timed decoding (chapter 09).

    Keys: ``ms_per_sentence`` and ``speedup`` for greedy decoding at batch 1, the same with the
    prefix ``beam_`` for beam search at batch 1 and ``batched_`` for greedy decoding in batches of
    :data:`SERVING_BATCH` (:func:`_speed_calls`), timed in turn on one CPU thread (:func:`cpu_latency`).
    """
    if "teacher" not in models:
        raise ValueError(f"models must include the 'teacher' the speed-ups are measured against, got {list(models)}")
    speed: dict[str, dict[str, float]] = {name: {} for name in models}
    for prefix, (call, sentences) in _speed_calls(vocab, pairs, max_len, beam_size).items():
        latency = cpu_latency(models, call, rounds, seconds_per_round=0.2)
        for name in models:
            speed[name][f"{prefix}ms_per_sentence"] = round(latency[name] / sentences, 3)
            speed[name][f"{prefix}speedup"] = round(latency["teacher"] / latency[name], 2)
    return speed


def _row(role: str, models: Sequence[Trained], evaluated: Sequence[dict[str, dict[str, float]]],
         teacher_parameters: int) -> dict[str, Any]:
    """One role's row: its size, scores per split and seed (with mean ± sd), training time and dev curves."""
    parameters = count_parameters(models[0].model)
    row: dict[str, Any] = {"title": TRANSLATION_ROLES[role].title, "method": TRANSLATION_ROLES[role].method,
                           "parameters": parameters, "size_ratio": round(parameters / teacher_parameters, 4)}
    for split in ("dev", "test"):
        row[split] = {metric: seed_summary([scores[split][metric] for scores in evaluated])
                      for metric in ("bleu_greedy", "bleu_beam", "chrf_greedy", "chrf_beam")}
    row["seeds"] = [model.recipe.seed for model in models]
    row["train_seconds"] = seed_summary([model.seconds for model in models])
    row["dev_curves"] = [model.metrics["dev_curve"] for model in models]
    row["extra"] = {key: value for key, value in models[0].metrics.items() if key != "dev_curve"}
    return row


def translation_goal_checks(table: Mapping[str, Any]) -> list[GoalCheck]:
    """A :func:`compare_translation` table against :data:`TRANSLATION_GOALS`, on mean test greedy BLEU (chapter 09)."""
    rows = table["rows"]
    teacher, student = (rows[role]["test"]["bleu_greedy"]["mean"] for role in ("teacher", "seq_kd"))
    gap, speedup = teacher - student, rows["seq_kd"]["speedup"]
    title = TRANSLATION_ROLES["seq_kd"].title
    return [GoalCheck("teacher: test BLEU, greedy", TRANSLATION_GOALS["teacher_bleu"], round(teacher, 2),
                      teacher >= TRANSLATION_GOALS["teacher_bleu"]),
            GoalCheck(f"{title}: BLEU points below the teacher, greedy", TRANSLATION_GOALS["seq_kd_gap"],
                      round(gap, 2), gap <= TRANSLATION_GOALS["seq_kd_gap"]),
            GoalCheck(f"{title}: speed-up of greedy decoding at batch 1", TRANSLATION_GOALS["seq_kd_speedup"],
                      round(speedup, 2), speedup >= TRANSLATION_GOALS["seq_kd_speedup"])]


def compare_translation(
    context: CourseContext,
    *,
    seeds: Sequence[int] | Mapping[str, Sequence[int]] = (0,),
    corpus: BibleCorpus | None = None,
    recipes: Mapping[str, TranslationRecipe] | None = None,
    eval_pairs: int | None | str = "mode",
    latency_rounds: int = 3,
    examples: int = 3,
    teacher: Trained | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train or load the teacher and every student for each seed, score and time them (chapter 09).

    ``recipes`` (default: :func:`translation_recipe` of the mode) are the seed-0 recipes; each
    student is trained once per seed, the teacher once. ``seeds`` is one sequence for every
    student, or a sequence per student role (:func:`translation_seeds`). ``teacher`` is a teacher trained elsewhere
    (the shipped one, with its ``path`` and subword ``vocab``): the students then read its
    vocabulary and learn from the training verses of their own recipes. ``eval_pairs`` dev and test verses,
    spread evenly over each split, are scored (None: all; "mode": :data:`EVAL_PAIRS`). Returns
    a JSON-ready dict: ``rows`` per role (parameters, BLEU and chrF greedy and beam per split,
    per seed with mean and sd, training seconds, seeds, dev curves, and on one CPU thread the ms
    per verse and speed-up over the teacher of greedy and beam decoding at batch 1 and of greedy
    decoding in batches of :data:`SERVING_BATCH`), ``verdicts`` of each KD student against
    ``alone`` on test greedy BLEU, ``goals`` (:func:`translation_goal_checks`, meant for full
    mode), ``examples``, the sacrebleu signatures, the data sizes, ``word_kd_top_k`` (the
    teacher's subwords word-level KD keeps per position) and :data:`KIM_RUSH_2016`.
    """
    mode, _ = context_mode_and_device(context)
    by_role = seeds_by_role(seeds, list(TRANSLATION_ROLES)[1:])
    corpus = corpus or load_bible()
    recipes = case_recipes(TRANSLATION_ROLES, recipes, lambda role: translation_recipe(role, mode), same="max_len")
    _check_recipes(recipes, shipped=teacher is not None)
    data_recipe = recipes["alone"]
    splits = {"dev": scored_verses(corpus.dev, mode, eval_pairs), "test": scored_verses(corpus.test, mode, eval_pairs)}
    if teacher is None:
        data = prepare_translation_data(corpus, data_recipe)
        teacher = translation_model(context, "teacher", recipes["teacher"], data, progress=progress)
        source = "trained"
    else:
        data, source = shipped_teacher_data(corpus, data_recipe, teacher), "shipped"
    seeds = sorted({seed for role_seeds in by_role.values() for seed in role_seeds})
    trained: dict[str, list[Trained]] = {"teacher": [teacher], **{role: [] for role in by_role}}
    for seed in seeds:  # seed by seed, so that a stopped run leaves whole seeds in the model cache
        for role in (role for role, role_seeds in by_role.items() if seed in role_seeds):
            recipe = dataclasses.replace(recipes[role], seed=seed)
            trained[role].append(translation_model(context, role, recipe, data, teacher=teacher, progress=progress))
    evaluated: dict[str, list[dict[str, dict[str, float]]]] = {}
    greedy_test: dict[str, list[str]] = {}
    for role, models in trained.items():
        evaluated[role] = []
        for model in models:
            scores = {}
            for split, pairs in splits.items():
                scores[split], greedy = score_translations(model.model, data.vocab, pairs, data.max_len,
                                                           data_recipe.beam_size)
                if split == "test":
                    greedy_test.setdefault(role, greedy)
            evaluated[role].append(scores)
    teacher_parameters = count_parameters(teacher.model)
    rows = {role: _row(role, trained[role], evaluated[role], teacher_parameters) for role in TRANSLATION_ROLES}
    speed = decoding_speed({role: models[0].model for role, models in trained.items()}, data.vocab, splits["test"],
                           data.max_len, data_recipe.beam_size, latency_rounds)
    for role, row in rows.items():
        row.update(speed[role])
    alone = rows["alone"]["test"]["bleu_greedy"]["per_seed"]
    verdicts = {role: seed_verdict(rows[role]["test"]["bleu_greedy"]["per_seed"], alone,
                                   names=(TRANSLATION_ROLES[role].title, TRANSLATION_ROLES["alone"].title), unit="BLEU")
                for role in list(TRANSLATION_ROLES)[2:]}
    goals = [dataclasses.asdict(check) for check in translation_goal_checks({"rows": rows})]
    shown = [{"source": pair.english, "reference": pair.spanish, **{role: greedy_test[role][index] for role in rows}}
             for index, pair in enumerate(splits["test"][:examples])]
    cut = sum(len(ids) > data.max_len for ids in data.vocab.encode([pair.english for pair in splits["test"]]))
    return rounded({
        "mode": mode, "seeds": seeds, "vocab_size": len(data.vocab), "max_len": data.max_len,
        "train_pairs": len(data.sources), "dropped_long_pairs": data.dropped, "dev_pairs": len(splits["dev"]),
        "test_pairs": len(splits["test"]), "test_sources_cut": cut, "beam_size": data_recipe.beam_size,
        "teacher_source": source, "word_kd_top_k": WORD_KD_TOP_K,
        "latency_sentences": LATENCY_SENTENCES, "batched_sentences": min(BATCHED_SENTENCES, len(splits["test"])),
        "serving_batch": SERVING_BATCH, "latency_rounds": latency_rounds, "sacrebleu": sacrebleu_signatures(),
        "rows": rows, "verdicts": verdicts, "goals": goals, "examples": shown, "kim_rush_2016": KIM_RUSH_2016,
        "paper_row": PAPER_ROW,
        "recipes": {role: recipe.to_dict() for role, recipe in recipes.items()},
    })
