"""Students of the shipped reference teacher: labels alone against what the teacher can give, over seeds (chapter 07).

Five Transformer students of one shape — one narrow block with relative positions, under a tenth
of the teacher's parameters and several times faster — and the source's cascade train on the same
labelled sentences for the same epochs:

- ``scratch`` learns from the gold tags only;
- ``logit_kd`` learns from the gold tags and the reference teacher's per-character soft targets
  (Hinton's loss of chapter 05). Logit distillation needs only that teacher and student tag the
  same characters with the same labels: any tagger can teach any other;
- ``transfer_kd`` learns as ``logit_kd`` does and, in batches of their own, from the teacher's
  soft targets alone on unlabelled news sentences (:func:`transfer_texts`): text the teacher
  never trained on, where its soft targets say more than on the sentences it has learned by heart;
- ``teacher_init`` starts from the teacher's character embeddings, reduced to the student's
  width along their leading singular directions (:func:`~course_lib.kd.layers.reduced_embeddings`),
  and then learns as ``logit_kd`` does: DistilBERT's recipe for a student narrower than its
  teacher. Most of a small tagger's parameters are its embedding table, and the teacher's was
  trained on every sentence for many epochs;
- ``layer_kd`` learns as ``logit_kd`` does plus TinyBERT's terms: its hidden states (through
  learned projections) and attention maps imitate the teacher's along the uniform layer map;
- ``cascade`` is the source document's design: a head of the students' shape on the frozen
  teacher's last hidden states (:class:`~course_lib.kd.cascade.CascadeTagger`). It runs the whole
  teacher at inference, so it is no student to deploy alone; its row shows what that costs.

The teacher's logits for the training sentences are computed once and kept beside the model
cache (:class:`~course_lib.kd.teacher.TeacherLogitCache`, keyed by the teacher's weights and
the sentences), so a student's epoch costs what the scratch student's costs. Each student is
trained with several seeds when the gap it is asked about may be smaller than the seed-to-seed
spread (:func:`chapter_seeds`); :func:`reference_kd` reports mean, spread and the verdict those allow.
"""

from __future__ import annotations

import copy
import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_lib.cases.common import GoalCheck, Role, check_role, roles, seed_spread, seed_verdict, seeds_by_role
from course_lib.cases.ner.compare import cpu_latencies
from course_lib.cases.ner.reference import reference_teacher
from course_lib.cases.ner.tagger import (
    DROPOUT,
    TAGGER_KEY,
    TaggerRecipe,
    build_student,
    fit_tagger,
    lazy_msra,
    scoring_loader,
    training_sentences,
    unlabelled_sentences,
)
from course_lib.context import CourseContext, check_mode, context_mode_and_device
from course_lib.data import CharVocab, NerCorpus, Sentence, bucketed_ner_loader, load_inews, news_sentences
from course_lib.data.cache import cache_dir
from course_lib.files import sha256_json
from course_lib.kd.methods import setup_method
from course_lib.kd.teacher import TeacherLogitCache
from course_lib.nn.transformer import count_parameters
from course_lib.train.artefact import Artefact
from course_lib.train.cache import load_or_train, model_path
from course_lib.train.fit import Trained
from course_lib.train.tagging import evaluate_tagger, tagger_loss

REFERENCE_KD_ROLES = roles(
    Role("scratch", "student, labels only"),
    Role("logit_kd", "student, labels + the reference teacher's soft targets", "logits"),
    Role("transfer_kd", "student, + soft targets alone on unlabelled news sentences", "transfer"),
    Role("teacher_init", "student, teacher's embeddings (reduced) + soft targets", "teacher_init"),
    Role("layer_kd", "student, + hidden states and attention maps (TinyBERT)", "layers"),
    Role("cascade", "cascade: a head on the frozen reference teacher", "cascade"),
)
REFERENCE_GOALS = {"teacher_f1": 0.85, "retention": 0.95, "parameter_ratio": 0.10, "speedup_batch1": 5.0}
"""The course's goals for the reference teacher and its best distilled student (full mode; the verdicts cover the seeds)."""
FAST_GOAL_F1 = 0.60
"""Fast mode's goal for the best distilled student's mean test F1 (:func:`fast_goal_checks`)."""
# One block: under a tenth of the teacher's parameters and about a sixth of its batch-1 latency on a CPU.
# Fast mode gives each student about 10 s on a 2-core CPU; at that budget a high learning rate matters most.
_STUDENT = {
    "fast": dict(d_model=64, num_heads=4, num_layers=1, d_ff=120, train_sentences=16_000, epochs=2, batch_size=32,
                 lr=1e-2),
    "full": dict(d_model=64, num_heads=4, num_layers=1, d_ff=120, train_sentences=None, epochs=6, batch_size=64,
                 lr=3e-3),
}


_KD_NAMES = {"logit_kd": "logit KD", "transfer_kd": "logit KD + unlabelled sentences",
             "teacher_init": "teacher-initialised + logit KD", "layer_kd": "logit + hidden + attention KD"}
"""The distilled students, each judged against the labels-only one (the cascade runs its teacher: no student)."""
_SEEDS = {"fast": {"scratch": (0, 1, 2), "logit_kd": (0,), "transfer_kd": (0,), "teacher_init": (0, 1, 2)},
          "full": {role: (0, 1, 2) for role in REFERENCE_KD_ROLES}}
_TEACHER_AT_EVERY_STEP = ("layers", "cascade")
"""Methods that run the teacher on every training batch (its logits alone come from the cache)."""
_TRANSFER_SENTENCES = {"fast": 6_000, "full": 48_000}
"""How many unlabelled news sentences the ``transfer_kd`` student reads besides the labelled ones, by mode."""


def reference_kd_recipe(role: str, mode: str, seed: int = 0) -> TaggerRecipe:
    """The recipe of ``role`` (a name of :data:`REFERENCE_KD_ROLES`) in ``mode`` with ``seed``: one shape and budget for all (chapter 07)."""
    method = check_role(role, REFERENCE_KD_ROLES).method
    return TaggerRecipe(**_STUDENT[check_mode(mode)], positional="relative", dropout=DROPOUT[mode],
                        warmup_fraction=0.05, vocab_min_freq=2, threads=2, method=method, temperature=2.0, alpha=0.5,
                        seed=seed)


def chapter_seeds(mode: str) -> dict[str, tuple[int, ...]]:
    """The seeds each model trains with in ``mode``: three for every role in full mode (chapter 07).

    Fast mode keeps its budget by giving three seeds only to the labels-only student and the
    best distilled one, the pair whose gap the chapter states, and one to logit KD and the
    transfer set. The layer-distilled student and the cascade run the teacher on every batch
    (three to four times a student's training time), so fast mode leaves them to full mode.
    """
    return dict(_SEEDS[check_mode(mode)])


def transfer_texts(mode: str) -> list[str]:
    """The unlabelled sentences of ``mode``'s transfer set: the first ones of the news corpus's training items (chapter 07).

    The news items (:func:`~course_lib.data.load_inews`) are Chinese news like MSRA's, from
    other years and sources; their sentence labels are never used here.
    """
    count = _TRANSFER_SENTENCES[check_mode(mode)]
    texts = news_sentences(load_inews().train)
    if len(texts) < count:
        raise ValueError(f"the news corpus gives {len(texts):,} sentences, fewer than the {count:,} asked for")
    return texts[:count]


def teacher_logits(artefact: Artefact, sentences: Sequence[Sentence], max_len: int,
                   unlabelled: Sequence[str] = ()) -> TeacherLogitCache:
    """The reference teacher's logits for ``sentences``, then ``unlabelled`` texts (by index), from disk or computed once and saved (chapter 07).

    With ``unlabelled`` texts, the logits of ``sentences`` come from their own cache (computed
    first if need be), so the teacher reads every labelled sentence once whichever students ask.
    The teacher reads sentences of similar length together (the cache stores each row by its
    index), which spends less than half the time on padding that sentences in corpus order do.
    """
    key = {"teacher": artefact.provenance["weights_sha256"], "msra": TAGGER_KEY["msra"],
           "sentences": f"first {len(sentences)}", "max_len": str(max_len)}
    name = f"ner_reference_logits_{len(sentences)}"
    if unlabelled:
        key["unlabelled"] = sha256_json(list(unlabelled))
        name += f"_transfer{len(unlabelled)}"
    path = cache_dir() / "models" / f"{name}.pt"
    cached = TeacherLogitCache.load(path, key)
    if cached is not None:
        return cached
    # Reading bucketed batches draws from the global generator; the pass runs on a copy of its state, so a
    # student trains alike whether the logits were cached or computed just before.
    with torch.random.fork_rng(devices=[]):
        if unlabelled:
            extra = bucketed_ner_loader(unlabelled_sentences(unlabelled), artefact.vocab, 128, max_len=max_len)
            cache = TeacherLogitCache.joined(teacher_logits(artefact, sentences, max_len),
                                             TeacherLogitCache.build(artefact.model, extra))
        else:
            loader = bucketed_ner_loader(sentences, artefact.vocab, 128, max_len=max_len)
            cache = TeacherLogitCache.build(artefact.model, loader)
    path.parent.mkdir(parents=True, exist_ok=True)
    cache.save(path, key)
    return cache


def reference_student(
    context: CourseContext,
    role: str,
    artefact: Artefact,
    *,
    seed: int = 0,
    corpus: NerCorpus | None = None,
    progress: bool = True,
) -> Trained:
    """Load the cached student of ``role`` and ``seed``, or train it (with the teacher's cached logits) and cache it (chapter 07)."""
    mode, device = context_mode_and_device(context)
    recipe = reference_kd_recipe(role, mode, seed)
    msra = lazy_msra(corpus)

    unlabelled = transfer_texts(mode) if recipe.method == "transfer" else []
    # a method that runs the teacher at every step gets its own copy on the device, so the artefact stays where it is
    runs_teacher = recipe.method in _TEACHER_AT_EVERY_STEP
    teacher = copy.deepcopy(artefact.model).to(device).eval() if runs_teacher else artefact.model

    def train(model: nn.Module, vocab: CharVocab) -> Trained:
        sentences = training_sentences(msra(), recipe)
        cached = recipe.method != "labels" and not runs_teacher
        cache = teacher_logits(artefact, sentences, recipe.max_len, unlabelled) if cached else None
        setup = setup_method(recipe, student=model, teacher=teacher, task_loss=tagger_loss, cache=cache)
        return fit_tagger(model, recipe, sentences, msra().dev, vocab, loss_fn=setup.loss_fn,
                          param_groups=setup.param_groups, extra_parameters=setup.extra_parameters,
                          unlabelled=unlabelled, device=device, progress=progress, desc=f"{role}, seed {seed}")

    depends_on = {**TAGGER_KEY, "teacher": artefact.path}
    if unlabelled:
        depends_on["unlabelled"] = sha256_json(unlabelled)
    return load_or_train(model_path(f"ner_reference_{role}_seed{seed}", mode), recipe,
                         build=lambda vocab: build_student(recipe, len(vocab), teacher), train=train,
                         vocab=lambda: artefact.vocab, depends_on=depends_on, device=device)


def verdict(kd: list[float], scratch: list[float], name: str = "logit KD") -> str:
    """What the F1s of a distilled student (``name``) and the labels-only one allow one to say, in points of F1 (chapter 07).

    :func:`~course_lib.cases.common.seed_verdict`: "beats" only beyond twice the seed spread.
    """
    return seed_verdict(kd, scratch, names=(name, "labels only"), unit="points", scale=100)


def best_distilled(table: dict[str, Any]) -> str:
    """The role of the distilled student with the highest mean F1 in a :func:`reference_kd` table (chapter 07).

    The cascade is no candidate: it runs the whole teacher at inference.
    """
    distilled = {role: row for role, row in table["students"].items() if role in _KD_NAMES}
    if not distilled:
        raise ValueError(f"the table holds no distilled student: it needs one of {sorted(_KD_NAMES)}")
    return max(distilled, key=lambda role: distilled[role]["mean_f1"])


def fast_goal_checks(table: dict[str, Any]) -> list[GoalCheck]:
    """Fast mode's goals for the best distilled student of a :func:`reference_kd` table (chapter 07).

    Its mean F1 reaches :data:`FAST_GOAL_F1`, and its gap over the labels-only student, in units
    of twice the larger seed spread of the two (the verdict's yardstick), is above 1.
    """
    best = best_distilled(table)
    student, scratch = table["students"][best], table["students"]["scratch"]
    if min(len(student["test_f1"]), len(scratch["test_f1"])) < 2:
        raise ValueError(f"the gap can be judged only with two seeds or more of both students; {best!r} has "
                         f"{len(student['test_f1'])}, 'scratch' {len(scratch['test_f1'])} (see chapter_seeds)")
    noise = max(2 * max(student["std_f1"], scratch["std_f1"]), 1e-4)  # a spread rounded to 0 counts as 0.01 points
    gap = student["mean_f1"] - scratch["mean_f1"]
    who = f"best distilled student ({_KD_NAMES[best]})"
    return [GoalCheck(goal=f"{who}: mean test F1", target=FAST_GOAL_F1, measured=round(student["mean_f1"], 4),
                      met=student["mean_f1"] >= FAST_GOAL_F1),
            GoalCheck(goal=f"{who}: gap over labels only / twice the seed spread", target=1.0,
                      measured=round(gap / noise, 2), met=gap > noise)]


def goal_checks(table: dict[str, Any]) -> list[GoalCheck]:
    """The reference teacher and its best distilled student (by mean F1) against :data:`REFERENCE_GOALS` (chapter 07)."""
    best = best_distilled(table)
    teacher, student = table["teacher"], table["students"][best]
    measured = {"teacher_f1": teacher["test_f1"], "retention": student["retention"] or 0.0,
                "parameter_ratio": student["size_ratio"],
                "speedup_batch1": teacher["latency_batch1_ms"] / student["latency_batch1_ms"]}
    who = f"best distilled student ({_KD_NAMES[best]})"
    names = {"teacher_f1": "reference teacher's test F1", "retention": f"{who}: share of the teacher's F1",
             "parameter_ratio": f"{who}: parameters / teacher's", "speedup_batch1": f"{who}: CPU speed-up at batch 1"}
    return [GoalCheck(goal=names[key], target=target, measured=round(measured[key], 4),
                      met=measured[key] <= target if key == "parameter_ratio" else measured[key] >= target)
            for key, target in REFERENCE_GOALS.items()]


def _describe(artefact: Artefact) -> str:
    """A few words on the shipped teacher's architecture, from its provenance."""
    recipe = artefact.provenance["recipe"]
    if recipe["architecture"] == "bilstm":
        return "BiLSTM + bigrams" if recipe["bigram_buckets"] else "BiLSTM"
    words = f"{recipe['num_layers']}-block Transformer"
    return words + (" + bigrams" if recipe["bigram_buckets"] else "")


def _roles_named(seeds: Sequence[int] | Mapping[str, Sequence[int]]) -> list[str]:
    """The roles ``seeds`` asks for, in :data:`REFERENCE_KD_ROLES` order: every role for one sequence of seeds."""
    if not isinstance(seeds, Mapping):
        return list(REFERENCE_KD_ROLES)
    unknown = sorted(set(seeds) - set(REFERENCE_KD_ROLES))
    if unknown:
        raise ValueError(f"unknown roles {unknown}: seeds may name only {list(REFERENCE_KD_ROLES)}")
    roles = [role for role in REFERENCE_KD_ROLES if role in seeds]
    if "scratch" not in roles or not any(role in _KD_NAMES for role in roles):
        raise ValueError(f"seeds must name 'scratch' and at least one distilled student of {sorted(_KD_NAMES)}, "
                         f"got {roles}")
    return roles


def reference_kd(
    context: CourseContext,
    *,
    seeds: Sequence[int] | Mapping[str, Sequence[int]] = (0,),
    corpus: NerCorpus | None = None,
    folder: Path | None = None,
    latency_rounds: int = 10,
    progress: bool = True,
) -> dict[str, Any]:
    """Train (or load) every student for each of its seeds, score them on the test split beside the teacher (chapter 07).

    ``seeds`` is one sequence for every role, or a sequence per role for the roles to train
    (:func:`chapter_seeds`; the labels-only student and at least one distilled student among them).

    Returns ``{"teacher": {...}, "students": {role: {...}}, "verdicts": {role: str}, "goals": [...]}``:
    ``verdicts`` holds each distilled student's against labels only;
    every F1 is entity-level with Viterbi decoding; ``retention`` is a student's mean F1 over
    the teacher's (None for a teacher that finds no entity); latencies are CPU milliseconds per
    sentence on one thread (:func:`~course_lib.cases.ner.compare.cpu_latencies`, the first seed's
    student).
    """
    by_role = seeds_by_role(seeds, _roles_named(seeds))
    artefact = reference_teacher() if folder is None else reference_teacher(folder)
    msra = lazy_msra(corpus)
    teacher_f1 = artefact.provenance["metrics"]["test_f1"]
    teacher_parameters = count_parameters(artefact.model)
    students: dict[str, Any] = {}
    timed: dict[str, tuple[nn.Module, CharVocab]] = {"teacher": (artefact.model, artefact.vocab)}
    for role in by_role:
        f1s, seconds, parameters = [], [], 0
        for seed in by_role[role]:
            trained = reference_student(context, role, artefact, seed=seed, corpus=corpus, progress=progress)
            scores = evaluate_tagger(trained.model, scoring_loader(msra().test, artefact.vocab, trained.recipe.max_len))
            f1s.append(scores["f1"])
            seconds.append(trained.seconds)
            parameters = count_parameters(trained.model)
            timed.setdefault(role, (trained.model, artefact.vocab))
        students[role] = {"title": REFERENCE_KD_ROLES[role].title, "parameters": parameters,
                          "size_ratio": round(parameters / teacher_parameters, 4), "seeds": list(by_role[role]),
                          "test_f1": [round(f, 4) for f in f1s], "mean_f1": round(statistics.mean(f1s), 4),
                          "std_f1": round(seed_spread(f1s), 4),
                          "retention": round(statistics.mean(f1s) / teacher_f1, 4) if teacher_f1 > 0 else None,
                          "train_seconds": round(statistics.mean(seconds), 1)}
    latency = cpu_latencies(timed, msra().test, rounds=latency_rounds)
    for role, row in students.items():
        row["latency_batch1_ms"], row["latency_batch32_ms"] = (round(ms, 3) for ms in latency[role])
    table = {"teacher": {"title": f"reference teacher ({_describe(artefact)}, shipped)", "parameters": teacher_parameters,
                         "test_f1": teacher_f1, "test_f1_argmax": artefact.provenance["metrics"]["test_f1_argmax"],
                         "latency_batch1_ms": round(latency["teacher"][0], 3),
                         "latency_batch32_ms": round(latency["teacher"][1], 3),
                         "train_seconds": artefact.provenance["seconds"], "device": artefact.provenance["device"]},
             "students": students, "seeds": sorted({seed for role_seeds in by_role.values() for seed in role_seeds}),
             "transfer_sentences": _TRANSFER_SENTENCES[check_mode(context.mode)],
             "verdicts": {role: verdict(students[role]["test_f1"], students["scratch"]["test_f1"], _KD_NAMES[role])
                          for role in _KD_NAMES if role in students}}
    table["goals"] = [dataclasses.asdict(check) for check in goal_checks(table)]
    return table
