"""Tests for course_lib.cases.ner.reference: the shipped MSRA teacher, trained, saved, checked and re-measured."""

from __future__ import annotations

import dataclasses
import json

import pytest

from course_lib.cases.ner.reference import (
    ARTEFACT_NAME,
    REFERENCE_RECIPE,
    build_reference,
    reference_teacher,
    remeasure,
    train_reference_teacher,
)
from course_lib.cases.teachers import main as teachers_main
from course_lib.data import NerCorpus, load_msra
from course_lib.train.artefact import (
    ARTEFACT_DIR,
    MAX_TOTAL_BYTES,
    ArtefactError,
    read_provenance,
)

TINY = dataclasses.replace(REFERENCE_RECIPE, d_model=16, num_layers=1, d_ff=32, bigram_buckets=256, bigram_dim=8,
                           epochs=1, train_sentences=300, batch_size=32, threads=1)


@pytest.fixture(scope="module")
def msra():
    return load_msra()


@pytest.fixture(scope="module")
def small(msra):
    return NerCorpus(train=msra.train[:300], dev=msra.dev[:100], test=msra.test[:100])


def test_a_trained_teacher_is_shipped_with_its_recipe_data_and_scores_and_measures_the_same_again(tmp_path, small):
    path = train_reference_teacher(small, TINY, folder=tmp_path, progress=False)
    provenance = read_provenance(ARTEFACT_NAME, tmp_path)
    assert path.is_file() and provenance["recipe"]["bigram_buckets"] == 256
    assert provenance["architecture"] == "TokenTagger" and len(provenance["metrics"]["dev_curve"]) == 1
    assert 0 <= provenance["metrics"]["test_f1_argmax"] <= 1 and provenance["seconds"] > 0
    artefact = reference_teacher(tmp_path)
    again = remeasure(artefact, small)
    # The shipped weights are fp16 roundings of the trained ones: the scores may move a little.
    assert again["test_f1"] == pytest.approx(provenance["metrics"]["test_f1"], abs=0.02)


def test_a_teacher_trained_on_other_data_or_an_unknown_architecture_is_refused(tmp_path, small):
    train_reference_teacher(small, TINY, folder=tmp_path, progress=False)
    provenance_path = tmp_path / f"{ARTEFACT_NAME}.json"
    provenance = json.loads(provenance_path.read_text())
    provenance["data_sha256"]["msra"] = "0" * 64
    provenance_path.write_text(json.dumps(provenance))
    with pytest.raises(ArtefactError, match="trained on MSRA sha256 000000000000.*make teachers"):
        reference_teacher(tmp_path)
    with pytest.raises(ArtefactError, match="unknown tagger architecture 'GRU'"):
        build_reference("GRU", {}, None)


def test_the_teachers_command_names_what_it_can_build(capsys):
    with pytest.raises(SystemExit):
        teachers_main(["mnist_wizard"])
    assert "unknown teacher(s) mnist_wizard; choose from ner_teacher" in capsys.readouterr().err


def test_the_shipped_teacher_fits_the_limit_and_scores_what_its_provenance_records(msra):
    provenance = read_provenance(ARTEFACT_NAME)
    assert sum(p.stat().st_size for p in ARTEFACT_DIR.iterdir() if p.is_file()) <= MAX_TOTAL_BYTES
    assert provenance["recipe"]["class"] == "TaggerRecipe"
    assert {k: v for k, v in provenance["recipe"].items() if k != "class"} == REFERENCE_RECIPE.to_dict(), \
        "the shipped teacher was trained with the recipe in the code; run `make teachers` after changing it"
    measured = remeasure(reference_teacher(), msra)
    # Re-measured on the 4,631 test sentences with this machine's kernels: float rounding may flip a tag or two.
    assert measured["test_f1"] == pytest.approx(provenance["metrics"]["test_f1"], abs=0.003)
    assert measured["test_f1_argmax"] == pytest.approx(provenance["metrics"]["test_f1_argmax"], abs=0.003)
