"""Tests for course_lib.kd.teacher: the frozen teacher, the logit cache keyed by dataset index, the soft-target profile."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from course_lib.data import CharVocab, Sentence, bucketed_ner_loader, ner_loader
from course_lib.kd.distiller import Distiller
from course_lib.kd.teacher import TeacherLogitCache, soft_target_profile
from tests.kd import classifier, tagger, toy_data


def test_cached_teacher_logits_stay_aligned_under_a_shuffled_loader():
    teacher, data = classifier(0), toy_data()
    cache = TeacherLogitCache.build(teacher, DataLoader(data, batch_size=10, shuffle=False))
    shuffled = DataLoader(data, batch_size=10, shuffle=True, generator=torch.Generator().manual_seed(3))
    distiller = Distiller(teacher, temperature=2, alpha=0.0, cache=cache)
    for batch in shuffled:
        with torch.no_grad():
            assert torch.allclose(cache.lookup(batch["index"]), teacher(batch["inputs"]), atol=1e-6)
        assert torch.allclose(distiller.teacher_logits(batch, torch.device("cpu")), teacher(batch["inputs"]), atol=1e-6)
    with pytest.raises(IndexError, match="holds 64 examples"):
        cache.lookup(torch.tensor([64]))
    with pytest.raises(ValueError, match="exactly once"):
        TeacherLogitCache.build(teacher, [{"inputs": data.inputs[:4], "index": torch.tensor([0, 1, 2, 5])}])


def test_one_row_per_example_is_looked_up_whole_even_when_the_batch_holds_token_ids():
    # A text classifier (chapter 09) reads token ids but has one row of logits per example.
    teacher, data = classifier(0), toy_data()
    cache = TeacherLogitCache.build(teacher, DataLoader(data, batch_size=10, shuffle=False))
    assert not cache.per_token
    distiller = Distiller(teacher, temperature=2, alpha=0.5, cache=cache)
    batch = {"inputs": data.inputs[:6], "input_ids": torch.ones(6, 24, dtype=torch.long), "index": torch.arange(6)}
    with torch.no_grad():
        assert torch.allclose(distiller.teacher_logits(batch, torch.device("cpu")), teacher(data.inputs[:6]), atol=1e-6)


def _sentences(count: int = 23) -> tuple[list, CharVocab]:
    generator = torch.Generator().manual_seed(0)
    sentences = []
    for i in range(count):
        length = int(torch.randint(1, 12, (1,), generator=generator))
        sentences.append(Sentence(chars=[chr(0x4E00 + (i * 7 + j) % 30) for j in range(length)], tags=["O"] * length))
    return sentences, CharVocab.build(sentences)


def test_token_logits_of_sentences_of_any_length_come_back_for_a_shuffled_bucketed_loader():
    sentences, vocab = _sentences()
    teacher = tagger(2).eval()
    cache = TeacherLogitCache.build(teacher, ner_loader(sentences, vocab, batch_size=5, shuffle=False))
    assert cache.logits.shape[:2] == (len(sentences), max(len(s) for s in sentences)) and cache.per_token
    distiller = Distiller(teacher, temperature=2, alpha=0.3, cache=cache)
    uncached = Distiller(teacher, temperature=2, alpha=0.3)
    student = tagger(1, seed=1).eval()  # no dropout: the two losses must see the same student
    for batch in bucketed_ner_loader(sentences, vocab, batch_size=4, seed=2):
        with torch.no_grad():
            expected = teacher(batch["input_ids"], mask=batch["mask"]).logits
        looked_up = distiller.teacher_logits(batch, torch.device("cpu"))
        assert looked_up.shape == expected.shape
        assert torch.allclose(looked_up[batch["mask"]], expected[batch["mask"]], atol=1e-5)
        assert torch.allclose(distiller(student, batch), uncached(student, batch), atol=1e-5)
    with pytest.raises(ValueError, match="width=99"):
        cache.lookup(torch.tensor([0]), width=99)


def test_a_saved_cache_is_found_again_only_under_its_own_key(tmp_path):
    teacher, data = classifier(0), toy_data()
    cache = TeacherLogitCache.build(teacher, DataLoader(data, batch_size=10))
    path = cache.save(tmp_path / "logits.pt", {"teacher": "abc", "data": "def"})
    again = TeacherLogitCache.load(path, {"teacher": "abc", "data": "def"})
    assert again is not None and torch.equal(again.logits, cache.logits)
    assert TeacherLogitCache.load(path, {"teacher": "abd", "data": "def"}) is None, "another teacher's logits"
    assert TeacherLogitCache.load(tmp_path / "missing.pt", {"teacher": "abc"}) is None
    (tmp_path / "broken.pt").write_bytes(b"not a tensor file")
    assert TeacherLogitCache.load(tmp_path / "broken.pt", {"teacher": "abc"}) is None


class FixedLogits(nn.Module):
    """A token model whose logits are given: (batch, length, classes), whatever it reads."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("logits", logits)
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.logits * self.scale


def test_the_soft_target_profile_says_how_much_lies_beyond_the_top_class_on_real_positions_only():
    sure, flat = torch.tensor([30.0, 0.0, 0.0, 0.0]), torch.zeros(4)
    logits = torch.stack([torch.stack([sure, flat]), torch.stack([sure, sure])])  # (2 sentences, 2 positions, 4)
    batch = {"input_ids": torch.ones(2, 2, dtype=torch.long), "mask": torch.tensor([[True, False], [True, True]])}
    model = FixedLogits(logits).train()
    profile = soft_target_profile(model, [batch], temperature=1.0)
    assert profile["positions"] == 3 and profile["beyond_top"] == pytest.approx(0.0, abs=1e-9), "the flat row is padding"
    assert profile["entropy_bits"] == pytest.approx(0.0, abs=1e-9) and model.training, "the model's mode is restored"
    batch["mask"][0, 1] = True
    profile = soft_target_profile(model, [batch], temperature=1.0)
    assert profile["beyond_top"] == pytest.approx(0.75 / 4) and profile["entropy_bits"] == pytest.approx(2.0 / 4)
    assert soft_target_profile(model, [batch], temperature=20.0)["beyond_top"] > profile["beyond_top"]
    kept = soft_target_profile(model, [batch], temperature=1.0, top_k=2)
    assert kept["top_k_mass"] == pytest.approx((1.0 + 0.5 + 1.0 + 1.0) / 4), "the flat row keeps half of its mass"
    assert kept["top_k_mass_p10"] == pytest.approx(0.65), "the 10th percentile of 0.5, 1, 1, 1"
    assert soft_target_profile(model, [batch], temperature=1.0, top_k=4)["top_k_mass"] == pytest.approx(1.0)
    flat = soft_target_profile(model, [batch], temperature=1.0, forward=lambda m, fields: torch.zeros(2, 2, 4))
    assert flat["beyond_top"] == pytest.approx(0.75), "forward(model, batch) gives the logits"
    with pytest.raises(ValueError, match="top_k"):
        soft_target_profile(model, [batch], temperature=1.0, top_k=0)
    with pytest.raises(ValueError, match="no position"):
        soft_target_profile(model, [], temperature=1.0)
    with pytest.raises(ValueError, match="temperature"):
        soft_target_profile(model, [batch], temperature=0.0)


def test_two_caches_join_in_order_with_token_logits_padded_to_the_longer():
    short, long = TeacherLogitCache(torch.randn(3, 4, 7)), TeacherLogitCache(torch.randn(2, 6, 7))
    both = TeacherLogitCache.joined(short, long)
    assert both.logits.shape == (5, 6, 7)
    assert torch.equal(both.lookup(torch.tensor([0, 1, 2]), 4), short.logits)
    assert torch.equal(both.logits[:3, 4:], torch.zeros(3, 2, 7)), "padding past a shorter cache is zeros"
    assert torch.equal(both.lookup(torch.tensor([3, 4])), long.logits)
    rows = TeacherLogitCache.joined(TeacherLogitCache(torch.randn(2, 3)), TeacherLogitCache(torch.randn(1, 3)))
    assert rows.logits.shape == (3, 3)
    with pytest.raises(ValueError, match="only caches of the same kind join"):
        TeacherLogitCache.joined(short, TeacherLogitCache(torch.randn(2, 7)))


def test_a_top_k_cache_keeps_each_rows_largest_logits_and_rules_out_the_other_classes():
    sentences, vocab = _sentences()
    teacher = tagger(2).eval()
    loader = ner_loader(sentences, vocab, batch_size=5, shuffle=False)
    cache = TeacherLogitCache.build(teacher, loader, top_k=3)
    assert cache.logits.dtype == torch.float16 and cache.top_classes.dtype == torch.int16
    assert cache.logits.shape == (len(sentences), max(len(s) for s in sentences), 3) and cache.num_classes == 7
    whole = TeacherLogitCache.build(teacher, loader, top_k=7)
    for batch in bucketed_ner_loader(sentences, vocab, batch_size=4, seed=2):
        with torch.no_grad():
            expected = teacher(batch["input_ids"], mask=batch["mask"]).logits[batch["mask"]]
        width = batch["input_ids"].shape[1]
        kept = cache.lookup(batch["index"], width)[batch["mask"]]
        assert kept.shape == expected.shape and torch.isfinite(kept).sum(dim=-1).eq(3).all()
        finite = torch.isfinite(kept)
        assert torch.allclose(kept[finite], expected[finite], atol=1e-2), "the kept logits are the teacher's"
        smallest_kept = expected[finite].reshape(-1, 3).min(dim=-1).values
        assert (smallest_kept >= expected.masked_fill(finite, -1e9).max(dim=-1).values).all(), "the largest are kept"
        assert torch.allclose(whole.lookup(batch["index"], width)[batch["mask"]], expected, atol=1e-2), "k = classes"
    with pytest.raises(ValueError, match="top_k=8 is more than the teacher's 7 classes"):
        TeacherLogitCache.build(teacher, loader, top_k=8)
    with pytest.raises(ValueError, match="top_k"):
        TeacherLogitCache.build(teacher, loader, top_k=0)


def test_a_distiller_on_a_top_k_cache_matches_the_kl_to_the_renormalised_top_k_distribution(tmp_path):
    sentences, vocab = _sentences()
    teacher, student = tagger(2).eval(), tagger(1, seed=1).eval()
    cache = TeacherLogitCache.build(teacher, ner_loader(sentences, vocab, batch_size=5, shuffle=False), top_k=2)
    path = cache.save(tmp_path / "top2.pt", {"teacher": "abc"})
    again = TeacherLogitCache.load(path, {"teacher": "abc"})
    assert again is not None and torch.equal(again.top_classes, cache.top_classes) and again.num_classes == 7
    batch = next(iter(bucketed_ner_loader(sentences, vocab, batch_size=6, seed=1)))
    with torch.no_grad():
        teacher_logits = teacher(batch["input_ids"], mask=batch["mask"]).logits
        student_logits = student(batch["input_ids"], mask=batch["mask"]).logits
    top_values, top = teacher_logits[batch["mask"]].topk(2, dim=-1)
    p = torch.softmax(top_values / 2.0, dim=-1)
    log_q = torch.log_softmax(student_logits[batch["mask"]] / 2.0, dim=-1).gather(-1, top)
    expected = 4.0 * (p * (p.log() - log_q)).sum(dim=-1).mean()
    # an encoder-decoder's batch has no input_ids: the cache is cut to the width of the student's logits
    batch = {"tokens": batch["input_ids"], "mask": batch["mask"], "index": batch["index"]}
    distiller = Distiller(teacher, temperature=2.0, alpha=0.0, cache=again,
                          forward=lambda model, fields: model(fields["tokens"], mask=fields["mask"]).logits)
    with torch.no_grad():
        loss = distiller(student, batch)
    assert torch.allclose(loss, expected, atol=1e-3)


def test_top_k_caches_join_and_a_top_k_cache_joins_no_full_one():
    first = TeacherLogitCache(torch.randn(2, 3, 2).half(), torch.randint(0, 5, (2, 3, 2), dtype=torch.int16), 5)
    second = TeacherLogitCache(torch.randn(1, 4, 2).half(), torch.randint(0, 5, (1, 4, 2), dtype=torch.int16), 5)
    both = TeacherLogitCache.joined(first, second)
    assert both.logits.shape == (3, 4, 2) and both.top_classes.shape == (3, 4, 2) and both.num_classes == 5
    assert torch.equal(both.lookup(torch.tensor([2])), second.lookup(torch.tensor([0])))
    with pytest.raises(ValueError, match="only caches of the same kind join"):
        TeacherLogitCache.joined(first, TeacherLogitCache(torch.randn(2, 3, 5)))
    with pytest.raises(ValueError, match="num_classes must count every class"):
        TeacherLogitCache(torch.randn(2, 3, 2), torch.zeros(2, 3, 2, dtype=torch.int16), None)
