"""Tests for course_lib.cases.translation_reference: the shipped English→Spanish teacher and students distilled from it."""

from __future__ import annotations

import dataclasses
import json

import pytest

from course_lib.cases.translation import TRANSLATION_ROLES, compare_translation
from course_lib.cases.translation_reference import (
    ARTEFACT_NAME,
    CHECK_PAIRS,
    REFERENCE_RECIPE,
    as_trained,
    reference_recipe,
    reference_student_recipes,
    reference_translator,
    remeasure,
    train_reference_translator,
)
from course_lib.data.bible import BibleCorpus
from course_lib.data.subwords import SubwordVocab
from course_lib.train.artefact import ArtefactError, read_provenance
from tests.cases.test_translation import tiny_recipes, verses

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dataclasses.replace(REFERENCE_RECIPE, d_model=16, num_heads=2, encoder_layers=1, decoder_layers=1, d_ff=32,
                           vocab_size=120, max_len=16, beam_size=2, epochs=1, batch_size=16, lr=5e-3, dropout=0.0)


@pytest.fixture(scope="module")
def corpus() -> BibleCorpus:
    return BibleCorpus(train=verses(40, 0, "Gen"), dev=verses(6, 1, "Esth"), test=verses(6, 2, "Ruth"))


@pytest.fixture()
def shipped(tmp_path, corpus, model_cache):
    train_reference_translator(corpus, TINY, folder=tmp_path, progress=False)
    return tmp_path


def test_the_teacher_ships_with_its_vocabulary_recipe_data_and_scores_and_measures_the_same_again(shipped, corpus):
    provenance = read_provenance(ARTEFACT_NAME, shipped)
    assert provenance["architecture"] == "Seq2SeqTransformer" and provenance["vocab"] is None
    assert (shipped / f"{ARTEFACT_NAME}.subwords.json").is_file() and len(provenance["metrics"]["dev_curve"]) == 1
    for name in ("test_bleu_greedy", "test_bleu_beam", "test_chrf_beam", f"test_first{CHECK_PAIRS}_bleu_greedy"):
        assert 0 <= provenance["metrics"][name] <= 100
    assert set(provenance["data_sha256"]) == {"kjv_deb", "sparv_deb", "train_pairs"}
    artefact = reference_translator(shipped)
    assert isinstance(artefact.vocab, SubwordVocab) and reference_recipe(artefact) == TINY
    again = remeasure(artefact, corpus.test[:CHECK_PAIRS])
    # The provenance measured the fp16-rounded weights that ship, so the same verses score the same.
    assert again["bleu_greedy"] == pytest.approx(provenance["metrics"][f"test_first{CHECK_PAIRS}_bleu_greedy"], abs=0.01)


def test_a_teacher_built_from_other_bible_packages_is_refused(shipped):
    path = shipped / f"{ARTEFACT_NAME}.json"
    provenance = json.loads(path.read_text())
    provenance["data_sha256"]["sparv_deb"] = "0" * 64
    path.write_text(json.dumps(provenance))
    with pytest.raises(ArtefactError, match="trained on .* sha256 000000000000.*make teachers"):
        reference_translator(shipped)


def test_students_distilled_from_the_shipped_teacher_read_its_vocabulary_and_their_own_verses(shipped, corpus,
                                                                                              context, model_cache):
    artefact = reference_translator(shipped)
    teacher = as_trained(artefact)
    students = {role: dataclasses.replace(recipe, train_pairs=30, dev_pairs=4)
                for role, recipe in tiny_recipes().items() if role != "teacher"}
    recipes = {"teacher": reference_recipe(artefact), **students}
    table = compare_translation(context, corpus=corpus, recipes=recipes, teacher=teacher, eval_pairs=None,
                                latency_rounds=1, progress=False)
    assert table["teacher_source"] == "shipped" and table["train_pairs"] == 30
    assert table["vocab_size"] == len(artefact.vocab) and list(table["rows"]) == list(TRANSLATION_ROLES)
    assert table["recipes"]["teacher"]["train_pairs"] is None, "the table records the recipe the teacher was trained with"
    with pytest.raises(ValueError, match=r"give \['alone', 'word_kd', 'seq_kd', 'word_seq_kd'\] the teacher's beam_size=2"):
        compare_translation(context, corpus=corpus, teacher=teacher, progress=False, recipes={
            "teacher": recipes["teacher"], **{role: dataclasses.replace(r, beam_size=3) for role, r in students.items()}})
    with pytest.raises(ValueError, match="its weights' path and its SubwordVocab"):
        compare_translation(context, corpus=corpus, recipes=recipes, teacher=dataclasses.replace(teacher, vocab=None),
                            progress=False)


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_the_course_students_share_the_shipped_teachers_vocabulary_length_and_beam(mode):
    artefact = reference_translator()
    recipes = reference_student_recipes(artefact, mode)
    teacher = recipes["teacher"]
    assert teacher == reference_recipe(artefact) == REFERENCE_RECIPE
    for role in list(TRANSLATION_ROLES)[1:]:
        assert (recipes[role].vocab_size, recipes[role].max_len, recipes[role].beam_size) == (
            teacher.vocab_size, teacher.max_len, teacher.beam_size)
        assert recipes[role].model_config(len(artefact.vocab)).parameter_count() <= teacher.model_config(
            len(artefact.vocab)).parameter_count() / 4


def test_the_shipped_teacher_translates_as_well_as_its_provenance_says():
    artefact = reference_translator()
    again = remeasure(artefact)
    recorded = artefact.provenance["metrics"][f"test_first{CHECK_PAIRS}_bleu_greedy"]
    # Another CPU may round a few logits differently and change a token or two: a margin of one BLEU point.
    assert again["bleu_greedy"] == pytest.approx(recorded, abs=1.0)
    assert artefact.provenance["metrics"]["test_bleu_greedy"] >= 15, "the shipped teacher translates recognisably"
