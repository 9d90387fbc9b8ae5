"""The distillation pitfalls the course guards against, each with the tests that pin it down (chapter 10, outline §9).

Every pitfall here is a real bug of published distillation code (the course design lists them).
Each names what goes wrong, what the course's code does about it, the pytest node ids of the
tests that fail if the guard is removed, and — where chapter 05 measured the damage — the metric
in the course's results file. :func:`run_guard_tests` runs the tests in a fresh interpreter and
reports each one's outcome, so chapter 10 can show the guards holding on the reader's machine.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

from course_lib.context import REPO_ROOT


@dataclass(frozen=True)
class _Pitfall:
    """One distillation bug: what it does, how the course prevents it, and the tests that guard it.

    ``tests`` are pytest node ids relative to the repository root; ``measured`` is
    ``(chapter, metric)`` in ``results/fast.json`` when chapter 05 measured what the bug does.
    """

    name: str
    what_goes_wrong: str
    guard: str
    tests: tuple[str, ...]
    measured: tuple[str, str] | None = None


_LOSSES = "tests/kd/test_losses.py::"
_DISTILLER = "tests/kd/test_distiller.py::"
_TEACHER = "tests/kd/test_teacher.py::"
PITFALLS: tuple[_Pitfall, ...] = (
    _Pitfall(
        "T² missing or applied twice",
        "the soft term's gradient shrinks as 1/T² (or grows as T²), so alpha means something else at every T",
        "kd_loss multiplies the KL by T² exactly once",
        (_LOSSES + "test_t_squared_keeps_the_soft_gradient_size_across_temperatures",
         _LOSSES + "test_kd_loss_matches_the_formula_with_batchmean"),
        ("05_knowledge_distillation", "t2_kl_over_logit_matching_T100"),
    ),
    _Pitfall(
        "KL with reduction='mean'",
        "PyTorch's 'mean' also divides by the number of classes, shrinking the soft term by that factor",
        "soft_kl sums over classes and averages over examples ('batchmean')",
        (_LOSSES + "test_kd_loss_matches_the_formula_with_batchmean",),
    ),
    _Pitfall(
        "teacher left in train mode",
        "dropout stays on in the teacher: the student chases a different target for the same input at every call",
        "Distiller runs the teacher in eval mode under no_grad at every step",
        (_DISTILLER + "test_distiller_keeps_the_teacher_frozen_and_in_eval_mode",
         "tests/cases/mnist/test_distil.py::test_with_jitter_the_teacher_sees_every_jittered_batch_frozen_and_in_eval_mode"),
        ("05_knowledge_distillation", "train_mode_target_change_tv"),
    ),
    _Pitfall(
        "gradients reaching the teacher",
        "an optimiser given both models changes the teacher while it teaches",
        "kd_loss detaches the teacher's logits; Distiller freezes the teacher's parameters",
        (_LOSSES + "test_teacher_logits_receive_no_gradient",
         _DISTILLER + "test_only_the_projections_are_trainable_and_the_teacher_stays_frozen_in_eval_mode"),
    ),
    _Pitfall(
        "teacher and student swapped",
        "KL(student || teacher) weighs where the student is confident; passing the teacher as the student trains it",
        "the argument order is fixed and a Distiller refuses to train its own teacher",
        (_DISTILLER + "test_distiller_keeps_the_teacher_frozen_and_in_eval_mode",
         _DISTILLER + "test_a_student_cannot_be_its_own_teacher_and_label_sets_must_match"),
    ),
    _Pitfall(
        "teacher logits cached by batch order",
        "replayed with a shuffled loader, each cached row belongs to another example",
        "TeacherLogitCache stores one row per dataset index and looks rows up by each batch's indices",
        (_TEACHER + "test_cached_teacher_logits_stay_aligned_under_a_shuffled_loader",
         "tests/cases/mnist/test_distil.py::test_the_teacher_logit_cache_rows_are_the_teachers_outputs_in_transfer_set_order"),
        ("05_knowledge_distillation", "cache_by_position_agreement"),
    ),
    _Pitfall(
        "padding counted in token-level losses",
        "padded positions of an NER batch add loss (and gradient) that has nothing to do with the text",
        "every token-level term averages over the real tokens of the mask only",
        (_LOSSES + "test_token_level_loss_ignores_padding",
         _DISTILLER + "test_every_term_ignores_what_sits_in_padded_positions"),
    ),
    _Pitfall(
        "a 'distillation' term that does not depend on the teacher",
        "the student learns from the labels alone while the code claims to distil (seed 003's soft labels)",
        "tests change the teacher and require the loss to change",
        (_DISTILLER + "test_distiller_loss_depends_on_the_teacher",
         _DISTILLER + "test_terms_depend_on_the_teacher_and_heads_may_differ"),
    ),
    _Pitfall(
        "p · log p on a class the teacher rules out",
        "a teacher logit of -inf (a masked vocabulary entry) makes 0 · log 0 and the whole loss NaN",
        "the KL gives a class of zero teacher probability a contribution of 0",
        (_LOSSES + "test_a_teacher_logit_of_minus_infinity_adds_nothing_instead_of_nan",),
    ),
    _Pitfall(
        "padding masked by multiplication",
        "NaN or inf in padded positions times a mask of 0 is still NaN, in the loss and in its gradient",
        "every token-level loss selects the real positions before it computes anything",
        (_LOSSES + "test_what_sits_in_padded_positions_never_reaches_the_loss_or_its_gradient",),
    ),
    _Pitfall(
        "a term weighted by 0 still computed",
        "with alpha = 1 an infinite soft term times 0 turns the hard-label loss into NaN",
        "a term whose weight is 0 is left out, not multiplied by 0",
        (_LOSSES + "test_a_term_whose_weight_is_zero_is_not_computed",),
    ),
    _Pitfall(
        "an attention loss that depends on the padding",
        "averaging over every key, padded ones included, shrinks a sentence's loss in a batch of longer ones",
        "the attention MSE averages over the real (query, key) pairs only",
        (_LOSSES + "test_the_attention_loss_of_a_sentence_does_not_depend_on_the_padding_of_its_batch",),
    ),
    _Pitfall(
        "a batch without a real token",
        "a mean over no positions is NaN, and a NaN step ruins the weights",
        "every loss refuses an all-padding mask with an error that says so",
        (_LOSSES + "test_a_mask_without_a_real_token_is_refused_by_every_loss",),
    ),
    _Pitfall(
        "softmax and log in half precision",
        "small fp16 probabilities underflow to 0 and their log to -inf: NaN again",
        "the losses compute half-precision inputs in float32",
        (_LOSSES + "test_half_precision_logits_are_computed_in_float32",),
    ),
)


def guard_test_ids(pitfalls: tuple[_Pitfall, ...] = PITFALLS) -> list[str]:
    """Every test node id of ``pitfalls``, once each, in order (chapter 10)."""
    return list(dict.fromkeys(test for pitfall in pitfalls for test in pitfall.tests))


def _node_id(case: ElementTree.Element) -> str:
    """``tests/test_x.py::test_y`` from a JUnit ``testcase`` element (classname ``tests.test_x``)."""
    return case.get("classname", "").replace(".", "/") + ".py::" + case.get("name", "")


def run_guard_tests(test_ids: list[str] | None = None, root: Path = REPO_ROOT, timeout: float = 900) -> dict[str, str]:
    """Run the guard tests with pytest in a fresh interpreter; ``{node id: "passed" | "failed" | "skipped"}`` (chapter 10).

    A node id that pytest cannot find raises ``ValueError`` naming it: a renamed test must be
    renamed here too, or the pitfall would lose its guard without anyone noticing.
    """
    test_ids = test_ids or guard_test_ids()
    root = Path(root)
    missing = [test for test in test_ids if not (root / test.split("::")[0]).is_file()]
    if missing:
        raise ValueError(f"these guard tests name files that do not exist under {root}: {missing}")
    with tempfile.TemporaryDirectory(prefix="course-guards-") as scratch:
        report = Path(scratch) / "report.xml"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                   f"--junitxml={report}", *test_ids]
        result = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=timeout, check=False)
        if not report.is_file():
            raise ValueError(f"pytest could not run the guard tests (exit {result.returncode}): "
                             f"{(result.stdout + result.stderr).strip()[-800:]}")
        outcomes: dict[str, str] = {}
        for case in ElementTree.parse(report).iter("testcase"):
            failed = case.find("failure") is not None or case.find("error") is not None
            outcome = "failed" if failed else "skipped" if case.find("skipped") is not None else "passed"
            test = _node_id(case).split("[")[0]  # every parameter of a parametrised test must pass
            outcomes[test] = outcome if outcomes.get(test, "passed") == "passed" else outcomes[test]
    not_found = [test for test in test_ids if test not in outcomes]
    if not_found:
        raise ValueError(f"pytest found no test named {not_found}: rename the guard in course_lib.course.pitfalls")
    return {test: outcomes[test] for test in test_ids}
