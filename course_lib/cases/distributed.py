"""Distillation on several processes: the MNIST, NER or translation student under ``torchrun`` (chapter 08).

``python -m course_lib.cases.distributed --nproc 2 [--case ner|mt]`` starts ``torchrun
--standalone`` with two processes on this machine (gloo on a CPU; on a multi-GPU box one process
per GPU with NCCL, the same command); each runs :func:`distil_on_processes` (MNIST),
:func:`distil_ner_on_processes` (NER) or :func:`distil_mt_on_processes` (translation). Across machines, start the worker with torchrun on every
machine::

    torchrun --nnodes 2 --nproc_per_node 4 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        -m course_lib.cases.distributed --worker

The teacher is loaded from the course's model cache or the shipped artefact (anything that must
be computed first — a missing MNIST teacher, the NER teacher's cached logits — rank 0 computes
while the others wait) and runs frozen under ``torch.no_grad`` on every rank; only the student is
wrapped in ``DistributedDataParallel``; each rank takes its share of every global batch; metrics
are averaged or summed over the ranks; rank 0 writes the result. MNIST uses a
``DistributedSampler``; NER keeps chapter 07's length-bucketed loader, which ``fit`` deals out by
rows — so any recipe that trains through ``fit`` runs under torchrun unchanged.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn
from torch.utils.data import TensorDataset

from course_lib import checks
from course_lib.cases.mnist.models import (
    MnistRecipe,
    mnist_model,
    mnist_recipe,
    transfer_set,
)
from course_lib.cases.ner.reference import reference_teacher
from course_lib.cases.ner.reference_kd import reference_kd_recipe, teacher_logits
from course_lib.cases.ner.tagger import (
    TaggerRecipe,
    build_tagger,
    fit_tagger,
    scoring_loader,
    training_sentences,
)
from course_lib.cases.translation import (
    fit_translation,
    prepare_translation_data,
    translate,
    translation_model,
    translation_recipe,
    translation_scores,
    word_kd_targets,
)
from course_lib.context import CourseContext
from course_lib.data import load_bible, load_mnist, load_msra, mnist_tensors
from course_lib.files import write_json_atomic
from course_lib.kd.distiller import Distiller
from course_lib.kd.methods import setup_method
from course_lib.kd.teacher import frozen
from course_lib.nn.mlp import MLP
from course_lib.nn.seq2seq import Seq2SeqTransformer
from course_lib.train.distributed import (
    Processes,
    check_teacher,
    join_processes,
    leave_processes,
    mean_over_processes,
    on_main_process,
    sharded_loader,
    sum_over_processes,
)
from course_lib.train.fit import Trained, fit
from course_lib.train.recipe import Recipe
from course_lib.train.tagging import evaluate_tagger, tagger_loss

TEMPERATURE, ALPHA = 20.0, 0.5
MT_TEST_VERSES = 100


R = TypeVar("R", bound=Recipe)


def _shared_out(recipe: R, processes: Processes, epochs: int | None, threads: int | None) -> R:
    """``recipe`` with ``epochs`` (default: its own) and ``threads`` per process (default: the CPU's threads shared out)."""
    threads = threads or max(1, (os.cpu_count() or 1) // processes.world_size)
    return dataclasses.replace(recipe, threads=threads, epochs=epochs or recipe.epochs)


def _figures(processes: Processes, recipe: Recipe, trained: Trained, seconds: float, examples: int,
             **scores: Any) -> dict[str, Any]:
    """What every run reports: where it ran, its budget, its speed (``examples`` a second) and ``scores``."""
    return {
        "world_size": processes.world_size,
        "backend": processes.backend,
        "device": str(processes.device),
        "threads_per_process": recipe.threads,
        "epochs": recipe.epochs,
        "steps": len(trained.history.step_losses),
        "global_batch": recipe.batch_size,
        "seconds": seconds,
        "samples_per_second": examples / seconds,
        "train_loss": mean_over_processes(trained.history.epochs[-1].train_loss, processes),
        **scores,
    }


def ddp_student_recipe(mode: str, processes: Processes, epochs: int | None = None,
                       threads: int | None = None) -> MnistRecipe:
    """The 800-800 student's recipe of chapter 06 (no jitter); by default the CPU's threads are shared among the processes (chapter 08)."""
    return _shared_out(mnist_recipe("student_scratch", mode), processes, epochs, threads)


def distil_on_processes(processes: Processes, mode: str = "fast", epochs: int | None = None,
                        threads: int | None = None, teacher: nn.Module | None = None) -> dict[str, Any]:
    """Distil the MNIST student on this process's share of every batch; the run's figures, the same on every rank (chapter 08).

    ``teacher`` defaults to the course's MNIST teacher for ``mode``, loaded from the model cache (rank 0
    trains it first when the cache is empty, while the other ranks wait).

    Returns ``world_size``, ``backend``, ``device``, ``steps``, ``global_batch``, ``seconds`` (training),
    ``samples_per_second``, ``train_loss`` (the last epoch's, averaged over the ranks) and ``test_errors``
    (summed over the ranks' shares of the 10,000 test digits).
    """
    context = CourseContext(mode=mode, device=processes.device, seed=0)
    data = load_mnist()
    if teacher is None:
        on_main_process(processes, lambda: mnist_model(context, "teacher", data=data, progress=False))
        teacher = mnist_model(context, "teacher", data=data, progress=False).model
    distiller = Distiller(teacher.to(processes.device), TEMPERATURE, ALPHA)
    check_teacher(distiller.teacher)
    recipe = ddp_student_recipe(mode, processes, epochs, threads)
    images, labels = transfer_set(data, recipe)
    loader = sharded_loader(TensorDataset(images, labels), recipe.batch_size, processes, seed=recipe.seed)
    torch.manual_seed(recipe.seed)
    student = MLP(recipe.model_config())  # fit wraps it in DDP when there are several processes
    start = time.perf_counter()
    trained = fit(student, loader, recipe, loss_fn=distiller, device=processes.device, progress=processes.main,
                  desc=f"rank {processes.rank} of {processes.world_size}")
    seconds = mean_over_processes(time.perf_counter() - start, processes)
    test_images, test_labels = mnist_tensors(data, "test")
    share = slice(processes.rank, None, processes.world_size)
    with torch.no_grad():
        predictions = trained.model(test_images[share].to(processes.device)).argmax(dim=-1).cpu()
    errors = sum_over_processes(int((predictions != test_labels[share]).sum()), processes)
    steps = len(trained.history.step_losses)
    return _figures(processes, recipe, trained, seconds, steps * recipe.batch_size, test_errors=int(errors))


def ner_student_recipe(mode: str, processes: Processes, epochs: int | None = None,
                       threads: int | None = None) -> TaggerRecipe:
    """Chapter 07's logit-KD student of the shipped reference teacher; by default the CPU's threads are shared out (chapter 08)."""
    return _shared_out(reference_kd_recipe("logit_kd", mode), processes, epochs, threads)


def distil_ner_on_processes(processes: Processes, mode: str = "fast", epochs: int | None = None,
                            threads: int | None = None) -> dict[str, Any]:
    """Distil chapter 07's NER student from the shipped teacher on this process's share of every batch (chapter 08).

    The training loader is chapter 07's own (length-bucketed, seeded); ``fit`` wraps the student in
    DDP and deals each batch out by rows, dataset indices included, so every rank looks up the
    teacher's cached logits of its own sentences. Rank 0 computes and saves that cache first while
    the others wait. Returns the run's figures and the test F1 (every rank holds the same student).
    """
    corpus = load_msra()
    artefact = reference_teacher()
    recipe = ner_student_recipe(mode, processes, epochs, threads)
    sentences = training_sentences(corpus, recipe)
    on_main_process(processes, lambda: teacher_logits(artefact, sentences, recipe.max_len))
    cache = teacher_logits(artefact, sentences, recipe.max_len)
    torch.manual_seed(recipe.seed)
    student = build_tagger(recipe, len(artefact.vocab))
    setup = setup_method(recipe, student=student, teacher=artefact.model, task_loss=tagger_loss, cache=cache)
    check_teacher(artefact.model)
    start = time.perf_counter()
    trained = fit_tagger(student, recipe, sentences, corpus.dev, artefact.vocab, loss_fn=setup.loss_fn,
                         device=processes.device, progress=processes.main,
                         desc=f"rank {processes.rank} of {processes.world_size}")
    seconds = mean_over_processes(time.perf_counter() - start, processes)
    test = evaluate_tagger(trained.model.eval(), scoring_loader(corpus.test, artefact.vocab, recipe.max_len))
    return _figures(processes, recipe, trained, seconds, len(sentences) * recipe.epochs,
                    test_f1=round(float(test["f1"]), 4))


def distil_mt_on_processes(processes: Processes, mode: str = "fast", epochs: int | None = None,
                           threads: int | None = None) -> dict[str, Any]:
    """Distil chapter 09's word-level KD translation student (Kim & Rush) on this process's share of every batch (chapter 08).

    The English → Spanish teacher comes from the model cache (rank 0 trains it first when it is
    missing, while the others wait), and so do its cached top subwords at every target position;
    the student trains through ``fit``, which wraps it in DDP and deals out each batch of the
    length-bucketed loader, indices included, so every rank looks up its own verses' targets.
    Returns the run's figures and the greedy
    BLEU of the student on the first test verses (every rank holds the same student).
    """
    context = CourseContext(mode=mode, device=processes.device, seed=0)
    corpus = load_bible()
    teacher_recipe = translation_recipe("teacher", mode)
    data = prepare_translation_data(corpus, teacher_recipe)
    on_main_process(processes, lambda: translation_model(context, "teacher", teacher_recipe, data, progress=False))
    teacher = translation_model(context, "teacher", teacher_recipe, data, progress=False)
    check_teacher(frozen(teacher.model))
    recipe = _shared_out(translation_recipe("word_kd", mode), processes, epochs, threads)
    torch.manual_seed(recipe.seed)
    student = Seq2SeqTransformer(recipe.model_config(len(data.vocab)))
    start = time.perf_counter()
    on_main_process(processes, lambda: word_kd_targets(teacher.model, recipe, data, mode, data.targets))
    trained = fit_translation(student, "word_kd", recipe, data, teacher, mode, processes.device, processes.main)
    seconds = mean_over_processes(time.perf_counter() - start, processes)
    test = corpus.test[:MT_TEST_VERSES]
    hypotheses = translate(trained.model.eval(), data.vocab, [pair.english for pair in test], max_len=recipe.max_len)
    bleu = translation_scores(hypotheses, [pair.spanish for pair in test])["bleu"]
    return _figures(processes, recipe, trained, seconds, len(data.sources) * recipe.epochs,
                    test_bleu=round(float(bleu), 2))


def _worker(args: argparse.Namespace) -> None:
    """One torchrun worker: join the processes, distil, let rank 0 write and print the result."""
    processes = join_processes(device=args.device)
    try:
        run = {"mnist": distil_on_processes, "ner": distil_ner_on_processes, "mt": distil_mt_on_processes}[args.case]
        result = run(processes, mode=args.mode, epochs=args.epochs, threads=args.threads)
        if args.out is not None:
            on_main_process(processes, lambda: write_json_atomic(args.out, result))
        if processes.main:
            unit, score = {"mnist": ("digits", f"{result.get('test_errors')} test errors"),
                           "ner": ("sentences", f"test F1 {result.get('test_f1')}"),
                           "mt": ("verses", f"test BLEU {result.get('test_bleu')} (greedy, first {MT_TEST_VERSES})")}[args.case]
            print(f"{args.case}, {result['world_size']} process(es), {result['backend']}: {result['steps']} steps of "
                  f"{result['global_batch']} {unit} in {result['seconds']:.1f} s "
                  f"({result['samples_per_second']:,.0f} {unit}/s), {score}")
    finally:
        leave_processes()


def launch(nproc: int, extra: list[str]) -> int:
    """Start ``nproc`` workers on this machine with torchrun; its exit status (chapter 08)."""
    from torch.distributed.run import main as torchrun

    nproc = checks.positive_int("nproc", nproc)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))  # else torchrun warns, sets 1
    try:
        torchrun(["--standalone", f"--nproc_per_node={nproc}", "-m", "course_lib.cases.distributed", "--worker", *extra])
    except Exception as error:  # torchrun raises ChildFailedError with every failed rank's traceback
        print(error, file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """The command line: launch ``--nproc`` workers with torchrun, or (``--worker``) be one of them (chapter 08)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--nproc", type=int, default=2, help="processes on this machine (default 2)")
    parser.add_argument("--case", choices=("mnist", "ner", "mt"), default="mnist",
                        help="mnist: chapter 06's student; ner: chapter 07's logit-KD student of the shipped teacher; "
                             "mt: chapter 09's word-level KD translation student")
    parser.add_argument("--mode", choices=("fast", "full"), default="fast")
    parser.add_argument("--epochs", type=int, default=None, help="the student's epochs (default: the recipe's)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per process (default: shared out)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here (rank 0)")
    parser.add_argument("--worker", action="store_true", help="run as one torchrun worker (set by the launcher)")
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args)
        return 0
    extra = ["--case", args.case, "--mode", args.mode, "--device", args.device]
    for option in ("epochs", "threads"):
        if getattr(args, option) is not None:
            extra += [f"--{option}", str(getattr(args, option))]
    if args.out is not None:
        extra += ["--out", str(args.out.resolve())]
    return launch(args.nproc, extra)


if __name__ == "__main__":
    sys.exit(main())
