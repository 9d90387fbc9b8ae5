"""Tests for course_lib.cases.translation: recipes, the two distillation losses' data, the caches, a tiny comparison."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
import torch

from course_lib.cases import translation
from course_lib.cases.translation import (
    TRANSLATION_GOALS,
    TRANSLATION_ROLES,
    TranslationRecipe,
    compare_translation,
    generate,
    prepare_translation_data,
    subword_vocab,
    teacher_translations,
    teacher_word_targets,
    translation_batch,
    translation_loss,
    translation_model,
    translation_recipe,
    translation_goal_checks,
    translation_seeds,
    translate,
)
from course_lib.data.bible import BibleCorpus, VersePair
from course_lib.data.subwords import EOS_ID, PAD_ID, SubwordVocab
from course_lib.kd.losses import kd_loss
from course_lib.nn.seq2seq import CachedDecoder, Seq2SeqConfig, Seq2SeqTransformer
from course_lib.train.generation import beam_search, greedy_decode
from course_lib.train.teacher_forcing import label_smoothed_cross_entropy

SUBJECTS = [("the man", "el hombre"), ("the woman", "la mujer"), ("the king", "el rey"), ("the son", "el hijo")]
VERBS = [("sees", "ve"), ("loves", "ama"), ("finds", "halla")]
OBJECTS = [("the dog", "el perro"), ("the house", "la casa"), ("the bread", "el pan"), ("the city", "la ciudad")]


pytestmark = pytest.mark.usefixtures("one_thread")


def verses(count: int, seed: int, book: str) -> list[VersePair]:
    """Subject–verb–object sentences and their word-for-word Spanish: a task a tiny model can start to learn."""
    rng = random.Random(seed)
    pairs = []
    for verse in range(1, count + 1):
        (s_en, s_es), (v_en, v_es), (o_en, o_es) = rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS)
        english, spanish = f"{s_en} {v_en} {o_en}.".capitalize(), f"{s_es} {v_es} {o_es}.".capitalize()
        pairs.append(VersePair(book, 1, verse, english, spanish))
    return pairs


@pytest.fixture(scope="module")
def corpus() -> BibleCorpus:
    return BibleCorpus(train=verses(40, 0, "Gen"), dev=verses(6, 1, "Esth"), test=verses(6, 2, "Ruth"))


def tiny_recipes() -> dict[str, TranslationRecipe]:
    shared = dict(vocab_size=120, max_len=16, dev_pairs=4, beam_size=2, epochs=1, batch_size=16, lr=5e-3, threads=1,
                  dropout=0.0)
    teacher = TranslationRecipe(d_model=16, num_heads=2, encoder_layers=1, decoder_layers=1, d_ff=32, **shared)
    student = dict(d_model=8, num_heads=2, encoder_layers=1, decoder_layers=1, d_ff=16, **shared)
    return {"teacher": teacher, **{role: TranslationRecipe(**student, method=TRANSLATION_ROLES[role].method)
                                   for role in list(TRANSLATION_ROLES)[1:]}}


def tiny_model(seed: int, vocab: int = 30, d_model: int = 16) -> Seq2SeqTransformer:
    torch.manual_seed(seed)
    config = Seq2SeqConfig(vocab_size=vocab, d_model=d_model, num_heads=2, encoder_layers=1, decoder_layers=2,
                           d_ff=32, dropout=0.0, max_len=20)
    return Seq2SeqTransformer(config).eval()


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_students_have_a_quarter_of_the_teachers_parameters_and_one_budget(mode):
    recipes = {role: translation_recipe(role, mode) for role in TRANSLATION_ROLES}
    assert [r.method for r in recipes.values()] == ["labels", "labels", "word_kd", "seq_kd", "word_seq_kd"]
    teacher = recipes["teacher"].model_config().parameter_count()
    students = [dataclasses.replace(r, method="labels") for role, r in recipes.items() if role != "teacher"]
    assert len(set(students)) == 1, "the students differ only in how they learn"
    assert students[0].model_config().parameter_count() <= teacher / 4
    for name in ("train_pairs", "vocab_size", "max_len", "beam_size", "dev_pairs"):
        assert len({getattr(r, name) for r in recipes.values()}) == 1, name
    assert translation_recipe("alone", mode, seed=2).seed == 2


@pytest.mark.parametrize("field, value, match", [
    ("method", "beam", "method must be one of"), ("alpha", 1.5, "alpha must be in"),
    ("vocab_size", 8, "vocab_size must be an int >= 16"), ("d_model", 30, r"d_model \(30\) must be divisible"),
    ("label_smoothing", 1.0, r"label_smoothing must be a number in \[0, 1\)"), ("beam_size", 0, "beam_size must be"),
    ("train_pairs", 0, "train_pairs must be a positive int or None"), ("temperature", 0, "temperature must be"),
])
def test_bad_recipes_say_what_is_wrong(field, value, match):
    with pytest.raises(ValueError, match=match):
        TranslationRecipe(**{field: value})


def test_bad_roles_modes_and_mixed_recipes_are_refused(corpus, context):
    with pytest.raises(ValueError, match="role must be one of"):
        translation_recipe("nobody", "fast")
    with pytest.raises(ValueError, match="mode must be one of"):
        translation_recipe("alone", "slow")
    recipes = tiny_recipes()
    with pytest.raises(ValueError, match=r"give \['alone'\] the teacher's vocab_size=120"):
        compare_translation(context, corpus=corpus, recipes={**recipes, "alone": dataclasses.replace(
            recipes["alone"], vocab_size=100)}, progress=False)
    with pytest.raises(ValueError, match="has method 'labels', but the role 'seq_kd' learns by 'seq_kd'"):
        compare_translation(context, corpus=corpus, recipes={**recipes, "seq_kd": recipes["alone"]}, progress=False)
    with pytest.raises(ValueError, match="seeds must be distinct"):
        compare_translation(context, corpus=corpus, recipes=recipes, seeds=(0, 0), progress=False)


def test_the_vocabulary_is_trained_once_per_corpus_and_size(corpus, model_cache, monkeypatch):
    vocab = subword_vocab(corpus, 120)
    assert sorted(path.name for path in (model_cache / "models").iterdir())[0].startswith("mt_subwords_120_")
    with monkeypatch.context() as patch:
        patch.setattr(SubwordVocab, "train", lambda *args, **kwargs: pytest.fail("trained again"))
        assert subword_vocab(corpus, 120) == vocab
    other = BibleCorpus(train=verses(40, 9, "Gen"), dev=corpus.dev, test=corpus.test)
    subword_vocab(other, 120)
    subword_vocab(corpus, 100)
    assert len(list((model_cache / "models").glob("mt_subwords_*.json"))) == 3


def test_verses_longer_than_max_len_are_left_out_and_counted(corpus, model_cache):
    recipe = dataclasses.replace(tiny_recipes()["teacher"], max_len=7)
    data = prepare_translation_data(corpus, recipe)
    lengths = [max(len(s), len(t)) for s, t in zip(data.vocab.encode([p.english for p in corpus.train]),
                                                   data.vocab.encode([p.spanish for p in corpus.train]))]
    assert data.dropped == sum(length > 7 for length in lengths) > 0
    assert len(data.sources) == len(corpus.train) - data.dropped and all(s[-1] == EOS_ID for s in data.targets)
    with pytest.raises(ValueError, match="exceeds the 40 training verses"):
        prepare_translation_data(corpus, dataclasses.replace(recipe, train_pairs=41))


def word_kd_batch() -> dict:
    rows = [(0, [5, 6, 7, 8, EOS_ID], [9, 10, EOS_ID]), (1, [11, EOS_ID], [12, 13, 14, 15, 16, EOS_ID])]
    return translation_batch(rows)


def test_word_kd_is_kd_loss_over_the_real_target_positions():
    teacher, student = tiny_model(0), tiny_model(1, d_model=8)
    recipe = TranslationRecipe(method="word_kd", temperature=2.0, alpha=0.3)
    batch = word_kd_batch()
    assert batch["mask"].tolist() == [[True] * 3 + [False] * 3, [True] * 6]
    assert batch["tgt_in"][0, :3].tolist() == [1, 9, 10] and batch["labels"][0, 3:].tolist() == [PAD_ID] * 3
    loss = translation_loss(recipe, teacher)(student, batch)
    logits = lambda model: model(batch["src_ids"], batch["src_mask"], batch["tgt_in"], batch["mask"])  # noqa: E731
    expected = kd_loss(logits(student), logits(teacher), batch["labels"], 2.0, 0.3, batch["mask"])
    torch.testing.assert_close(loss, expected)
    padded = {key: value for key, value in batch.items()}
    for ids, mask in (("src_ids", "src_mask"), ("tgt_in", "mask")):
        padded[ids] = torch.cat([batch[ids], torch.full((2, 3), 7)], dim=1)  # garbage in three more padded columns
        padded[mask] = torch.cat([batch[mask], torch.zeros(2, 3, dtype=torch.bool)], dim=1)
    padded["labels"] = torch.cat([batch["labels"], torch.full((2, 3), 7)], dim=1).masked_fill(~padded["mask"], 7)
    torch.testing.assert_close(translation_loss(recipe, teacher)(student, padded), loss)
    with pytest.raises(ValueError, match="learns from a teacher"):
        translation_loss(recipe)


def test_word_level_targets_are_the_teachers_top_subwords_computed_once_and_keyed_by_the_teacher(tmp_path, monkeypatch):
    teacher, student = tiny_model(0), tiny_model(1, d_model=8)
    recipe = TranslationRecipe(method="word_kd", temperature=2.0, alpha=0.3)
    batch = word_kd_batch()
    sources = [[5, 6, 7, 8, EOS_ID], [11, EOS_ID], [13, 14, EOS_ID]]
    targets = [[9, 10, EOS_ID], [12, 13, 14, 15, 16, EOS_ID], [17, EOS_ID]]
    path = tmp_path / "top.pt"
    whole = teacher_word_targets(teacher, sources, targets, path=path, top_k=30)  # every subword of the vocabulary
    assert whole.per_token and whole.logits.shape == (3, 6, 30) and path.is_file()
    cached_loss = translation_loss(recipe, teacher, whole)(student, batch)
    torch.testing.assert_close(cached_loss, translation_loss(recipe, teacher)(student, batch), atol=2e-3, rtol=1e-3)
    with monkeypatch.context() as patch:
        patch.setattr(translation.TeacherLogitCache, "build", lambda *a, **k: pytest.fail("the teacher ran again"))
        again = teacher_word_targets(teacher, sources, targets, path=path, top_k=30)
    assert torch.equal(again.logits, whole.logits)
    top = teacher_word_targets(teacher, sources, targets, path=tmp_path / "top4.pt", top_k=4)
    kept = top.lookup(torch.tensor([1]))[0]
    assert torch.isfinite(kept).sum(dim=-1).eq(4).all(), "four subwords kept at each target position"
    with torch.no_grad():
        teacher.output.weight[5, 0] += 1.0
    changed = teacher_word_targets(teacher, sources, targets, path=path, top_k=30)
    assert not torch.equal(changed.logits, whole.logits), "another teacher's targets are computed again"
    with pytest.raises(ValueError, match="must pair up"):
        teacher_word_targets(teacher, sources, targets[:2], path=path)


def test_the_reference_loss_is_label_smoothed_cross_entropy():
    student, batch = tiny_model(1, d_model=8), word_kd_batch()
    recipe = TranslationRecipe(label_smoothing=0.2)
    logits = student(batch["src_ids"], batch["src_mask"], batch["tgt_in"], batch["mask"])
    torch.testing.assert_close(translation_loss(recipe)(student, batch),
                               label_smoothed_cross_entropy(logits, batch["labels"], 0.2))


@pytest.mark.parametrize("norm_first", [True, False])
def test_cached_decoding_gives_the_models_own_translations(norm_first):
    torch.manual_seed(3)
    config = Seq2SeqConfig(vocab_size=30, d_model=16, num_heads=2, encoder_layers=1, decoder_layers=2, d_ff=32,
                           dropout=0.0, max_len=20, norm_first=norm_first)
    model = Seq2SeqTransformer(config).eval()
    src = torch.randint(4, 30, (4, 6))
    mask = torch.ones_like(src, dtype=torch.bool)
    src[1, 4:], mask[1, 4:] = PAD_ID, False
    plain, cached = (greedy_decode(m, src, mask, max_len=12) for m in (model, CachedDecoder(model)))
    assert plain.tokens == cached.tokens
    torch.testing.assert_close(torch.tensor(cached.scores), torch.tensor(plain.scores))
    plain, cached = (beam_search(m, src, mask, beam_size=3, max_len=12) for m in (model, CachedDecoder(model, 3)))
    assert plain.tokens == cached.tokens
    steps, memory = CachedDecoder(model), model.encode(src, mask)
    prefix = torch.tensor([[1, 5, 6, 7]] * 4)
    torch.testing.assert_close(steps.decode_step(memory, mask, prefix), model.decode_step(memory, mask, prefix))
    src[2], mask[2] = PAD_ID, False  # a source with no real token attends to nothing instead of giving NaN
    memory = model.encode(src, mask)
    logits = CachedDecoder(model).decode_step(memory, mask, prefix)
    assert torch.isfinite(logits).all()
    torch.testing.assert_close(logits, model.decode_step(memory, mask, prefix))


def test_generate_keeps_the_input_order_and_the_beam_never_scores_below_greedy(corpus):
    vocab = SubwordVocab.train([p.english for p in corpus.train] + [p.spanish for p in corpus.train], 120)
    model = tiny_model(4, vocab=len(vocab))
    sentences = [p.english for p in corpus.test]
    greedy = generate(model, vocab, sentences, max_len=12, batch_size=2)
    one_by_one = [generate(model, vocab, [sentence], max_len=12).tokens[0] for sentence in sentences]
    assert greedy.tokens == one_by_one
    beamed = generate(model, vocab, sentences, max_len=12, beam_size=3, batch_size=2)
    assert all(b >= g - 1e-5 for b, g in zip(beamed.scores, greedy.scores, strict=True))
    assert translate(model, vocab, sentences, max_len=12) == [vocab.decode(t) for t in greedy.tokens]
    assert translate(model, vocab, [], max_len=12) == []
    with pytest.raises(ValueError, match="at least one sentence"):
        generate(model, vocab, [], max_len=12)


def test_seq_kd_targets_are_the_teachers_beam_output_computed_once(model_cache, monkeypatch):
    teacher, path = tiny_model(0), model_cache / "beams.json"
    sources = [[5, 6, 7, EOS_ID], [8, EOS_ID], [9, 10, 11, 12, 13, EOS_ID]]
    first = teacher_translations(teacher, sources, beam_size=3, max_len=8, path=path)
    src_ids, src_mask = translation_batch([(i, s, s) for i, s in enumerate(sources)])["src_ids"], None
    beams = beam_search(teacher, src_ids, src_mask, beam_size=3, max_len=8)
    assert first.computed and first.unfinished == sum(not done for done in beams.finished)
    assert first.targets == [t if done else t[:7] + [EOS_ID] for t, done in zip(beams.tokens, beams.finished)]
    assert all(t[-1] == EOS_ID and len(t) <= 8 for t in first.targets)
    with monkeypatch.context() as patch:
        patch.setattr(translation, "_generate", lambda *args, **kwargs: pytest.fail("the teacher ran again"))
        again = teacher_translations(teacher, sources, beam_size=3, max_len=8, path=path)
    assert not again.computed and again.targets == first.targets
    with torch.no_grad():
        teacher.output.weight[5, 0] += 1.0
    changed = teacher_translations(teacher, sources, beam_size=3, max_len=8, path=path)
    assert changed.computed and changed.key["teacher"] != first.key["teacher"]
    assert teacher_translations(teacher, sources, beam_size=2, max_len=8, path=path).computed


def test_a_student_is_keyed_by_its_teachers_file(corpus, context, model_cache):
    recipes = tiny_recipes()
    data = prepare_translation_data(corpus, recipes["teacher"])
    teacher = translation_model(context, "teacher", recipes["teacher"], data, progress=False)
    student = translation_model(context, "word_kd", recipes["word_kd"], data, teacher=teacher, progress=False)
    assert teacher.trained and student.trained and student.metrics["train_pairs"] == len(data.sources)
    again = translation_model(context, "word_kd", recipes["word_kd"], data, teacher=teacher, progress=False)
    assert not again.trained
    retrained = translation_model(context, "teacher", dataclasses.replace(recipes["teacher"], lr=1e-3), data,
                                  progress=False)
    assert translation_model(context, "word_kd", recipes["word_kd"], data, teacher=retrained, progress=False).trained
    with pytest.raises(ValueError, match="learns from a teacher"):
        translation_model(context, "seq_kd", recipes["seq_kd"], data, progress=False)
    with pytest.raises(ValueError, match="does not match the role 'alone'"):
        translation_model(context, "alone", recipes["seq_kd"], data, progress=False)


def test_the_comparison_measures_every_student_for_each_of_its_seeds(corpus, context, model_cache):
    seeds = {"alone": (0, 1), "word_kd": (0,), "seq_kd": (0, 1), "word_seq_kd": (1,)}
    table = compare_translation(context, corpus=corpus, recipes=tiny_recipes(), seeds=seeds, eval_pairs=None,
                                latency_rounds=1, progress=False)
    table = json.loads(json.dumps(table))
    assert list(table["rows"]) == list(TRANSLATION_ROLES) and table["seeds"] == [0, 1]
    for role, row in table["rows"].items():
        assert row["seeds"] == ([0] if role == "teacher" else list(seeds[role]))
        for split in ("dev", "test"):
            for metric in ("bleu_greedy", "bleu_beam", "chrf_greedy", "chrf_beam"):
                assert len(row[split][metric]["per_seed"]) == len(row["seeds"])
                assert all(0 <= score <= 100 for score in row[split][metric]["per_seed"])
        assert row["ms_per_sentence"] > 0 and row["parameters"] > 0 and len(row["dev_curves"]) == len(row["seeds"])
        assert row["beam_ms_per_sentence"] > 0 and row["batched_ms_per_sentence"] > 0
    assert table["verdicts"]["word_kd"].startswith("one seed of (b) student, word-level KD:")
    assert [goal["target"] for goal in table["goals"]] == list(TRANSLATION_GOALS.values())
    assert not table["verdicts"]["seq_kd"].startswith("one seed")
    assert table["rows"]["alone"]["size_ratio"] < 1 and table["rows"]["teacher"]["speedup"] == 1.0
    assert table["rows"]["teacher"]["beam_speedup"] == table["rows"]["teacher"]["batched_speedup"] == 1.0
    assert (table["latency_sentences"], table["batched_sentences"], table["serving_batch"]) == (3, 6, 64)
    assert table["rows"]["seq_kd"]["extra"]["teacher_unfinished"] >= 0
    assert table["word_kd_top_k"] == translation.WORD_KD_TOP_K
    assert set(table["verdicts"]) == {"word_kd", "seq_kd", "word_seq_kd"}
    assert (table["train_pairs"], table["test_pairs"], table["dev_pairs"]) == (40, 6, 6)
    assert table["sacrebleu"]["bleu"].startswith("nrefs:1|case:mixed") and "version:" in table["sacrebleu"]["chrf"]
    assert table["examples"][0]["source"] == corpus.test[0].english and "word_seq_kd" in table["examples"][0]
    assert table["kim_rush_2016"] == {"teacher": 17.7, "no_kd": 14.7, "word_kd": 15.4, "sequence_kd": 18.9}
    beams = list((model_cache / "models").glob("mt_teacher_beam2_fast.json"))
    assert len(beams) == 1, "the teacher's translations are computed once for every seq-KD student and seed"


def test_full_mode_gives_every_student_three_seeds():
    assert translation_seeds("fast") == {role: (0,) for role in list(TRANSLATION_ROLES)[1:]}
    assert translation_seeds("full") == {role: (0, 1, 2) for role in list(TRANSLATION_ROLES)[1:]}


def test_the_goals_read_the_teacher_and_the_sequence_level_student():
    def row(bleu: float, speedup: float) -> dict:
        return {"test": {"bleu_greedy": {"mean": bleu}}, "speedup": speedup}

    met = translation_goal_checks({"rows": {"teacher": row(21.0, 1.0), "seq_kd": row(20.5, 3.5)}})
    assert [(goal.measured, goal.met) for goal in met] == [(21.0, True), (0.5, True), (3.5, True)]
    missed = translation_goal_checks({"rows": {"teacher": row(18.0, 1.0), "seq_kd": row(15.0, 2.0)}})
    assert [(goal.measured, goal.met) for goal in missed] == [(18.0, False), (3.0, False), (2.0, False)]
    assert "sequence-level KD" in missed[1].goal

