"""Tests for course_lib.train.tagging: padding-free loss, decoding, seqeval evaluation, entity extraction."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F
from seqeval.metrics import classification_report, f1_score
from torch import nn

from course_lib.data import (
    IGNORE_INDEX,
    LABEL2ID,
    LABELS,
    CharVocab,
    Sentence,
    ner_loader,
)
from course_lib.data.msra import extract_entities
from course_lib.nn.transformer import ModelOutput, TokenTagger, TransformerConfig
from course_lib.train.decoding import decode_tags
from course_lib.train.tagging import (
    entity_scores,
    evaluate_tagger,
    per_type_report,
    run_on_text,
    tag_sentence,
    tagger_loss,
    token_classification_loss,
)


class ScriptedTagger(nn.Module):
    """Predicts the label whose id is ``input_id - 1``; padding (id 0) is predicted as B-PER."""

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor | None = None) -> ModelOutput:
        predicted = torch.where(input_ids > 0, input_ids - 1, LABEL2ID["B-PER"])
        return ModelOutput(logits=F.one_hot(predicted, len(LABELS)).float() * 5.0, mask=mask)


def scripted_batches(gold: list[list[str]], predicted: list[list[str]]) -> list[dict]:
    """One collate_ner-style batch whose ScriptedTagger predictions are ``predicted``."""
    width = max(len(row) for row in gold)
    input_ids = torch.zeros(len(gold), width, dtype=torch.long)
    labels = torch.full((len(gold), width), IGNORE_INDEX)
    for row, (gold_row, pred_row) in enumerate(zip(gold, predicted)):
        input_ids[row, : len(pred_row)] = torch.tensor([LABEL2ID[t] + 1 for t in pred_row])
        labels[row, : len(gold_row)] = torch.tensor([LABEL2ID[t] for t in gold_row])
    lengths = torch.tensor([len(row) for row in gold])
    mask = torch.arange(width)[None, :] < lengths[:, None]
    return [{"input_ids": input_ids, "labels": labels, "mask": mask, "lengths": lengths}]


GOLD = [
    ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O"],
    ["B-ORG", "I-ORG", "I-ORG", "O"],
    ["O", "B-LOC", "O"],
]
PREDICTED = [
    ["B-PER", "I-PER", "O", "B-LOC", "O", "O"],  # PER right, LOC cut short
    ["B-ORG", "I-ORG", "I-ORG", "B-PER"],  # ORG right, spurious PER
    ["O", "B-LOC", "O"],  # LOC right
]


def test_loss_matches_a_manual_mean_over_real_tokens():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    labels = torch.tensor([[1, 2, 0, 3, 4], [5, 6, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]])
    loss = token_classification_loss(logits, labels)
    real = labels != IGNORE_INDEX
    log_probs = logits.log_softmax(dim=-1)[real]
    manual = -log_probs[torch.arange(int(real.sum())), labels[real]].mean()
    assert loss.item() == pytest.approx(manual.item(), abs=1e-6)


def test_padded_positions_do_not_change_the_loss():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    labels = torch.tensor([[1, 2, 0, 3, 4], [5, 6, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]])
    changed = logits.clone()
    changed[1, 2:] = 100.0 * torch.randn(3, 7)
    assert token_classification_loss(changed, labels) == token_classification_loss(logits, labels)


@pytest.mark.parametrize(
    ("logits", "labels", "error", "message"),
    [(torch.zeros(2, 7), torch.zeros(2, dtype=torch.long), ValueError, r"\(batch, length, num_labels\)"),
     (torch.zeros(2, 3, 7), torch.zeros(2, 4, dtype=torch.long), ValueError, r"got shape \(2, 4\)"),
     (torch.zeros(2, 3, 7), torch.zeros(2, 3), TypeError, "torch.long"),
     (torch.zeros(1, 2, 7), torch.full((1, 2), IGNORE_INDEX), ValueError, "no real tokens")],
)
def test_loss_rejects_bad_shapes(logits, labels, error, message):
    with pytest.raises(error, match=message):
        token_classification_loss(logits, labels)


def test_tagger_loss_uses_the_model_logits():
    batch = scripted_batches(GOLD, PREDICTED)[0]
    logits = ScriptedTagger()(batch["input_ids"]).logits
    assert tagger_loss(ScriptedTagger(), batch) == token_classification_loss(logits, batch["labels"])


def test_decode_trims_to_the_real_length():
    batch = scripted_batches(GOLD, PREDICTED)[0]
    logits = ScriptedTagger()(batch["input_ids"]).logits
    decoded = decode_tags(logits, batch["mask"], LABELS)
    assert decoded == PREDICTED
    assert [len(row) for row in decoded] == batch["lengths"].tolist()


def test_evaluate_tagger_gives_the_seqeval_scores():
    metrics = evaluate_tagger(ScriptedTagger(), scripted_batches(GOLD, PREDICTED))
    # gold entities: PER, LOC, ORG, LOC (4); predicted: PER, LOC (short), ORG, PER, LOC (5);
    # correct: PER, ORG, LOC (3). Padding, predicted as B-PER, must not count.
    assert metrics["precision"] == pytest.approx(3 / 5)
    assert metrics["recall"] == pytest.approx(3 / 4)
    assert metrics["f1"] == pytest.approx(2 * (3 / 5) * (3 / 4) / (3 / 5 + 3 / 4))
    assert metrics["f1"] == pytest.approx(f1_score(GOLD, PREDICTED))
    assert metrics["token_accuracy"] == pytest.approx(11 / 13)
    assert metrics["f1_argmax"] == metrics["f1"]  # every scripted sequence is valid BIO: both decoders agree


def test_per_type_report_matches_seqeval():
    report = per_type_report(ScriptedTagger(), scripted_batches(GOLD, PREDICTED))
    expected = classification_report(GOLD, PREDICTED, output_dict=True)
    for name in ("PER", "LOC", "ORG", "micro avg"):
        assert report[name]["f1"] == pytest.approx(expected[name]["f1-score"])
        assert report[name]["support"] == expected[name]["support"]
    assert report["LOC"]["recall"] == pytest.approx(1 / 2)
    assert report["PER"]["precision"] == pytest.approx(1 / 2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_entity_scores_equal_seqevals_report_to_the_last_bit(seed):
    generator = random.Random(seed)
    tags = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    gold = [[generator.choice(tags) for _ in range(generator.randint(1, 30))] for _ in range(200)]
    predicted = [[tag if generator.random() < 0.7 else generator.choice(tags) for tag in row] for row in gold]
    expected = classification_report(gold, predicted, output_dict=True, zero_division=0)
    scores = entity_scores(gold, predicted)
    assert set(scores) == set(expected)
    for name, row in expected.items():
        assert scores[name] == {"precision": row["precision"], "recall": row["recall"], "f1": row["f1-score"],
                                "support": row["support"]}, name


def test_entity_scores_without_any_entity_are_zero_and_refuse_ragged_input():
    scores = entity_scores([["O", "O"]], [["O", "O"]])
    assert scores["micro avg"] == scores["macro avg"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    with pytest.raises(ValueError, match="same lengths"):
        entity_scores([["O", "O"]], [["O"]])


def test_evaluate_tagger_with_no_predicted_entities_is_zero_without_warnings():
    all_o = [["O"] * len(row) for row in GOLD]
    metrics = evaluate_tagger(ScriptedTagger(), scripted_batches(GOLD, all_o))
    assert metrics["precision"] == metrics["recall"] == metrics["f1"] == 0.0


def test_evaluate_tagger_restores_train_mode_and_works_with_a_real_tagger():
    sentences = [Sentence(list("王小明在北京"), ["B-PER", "I-PER", "I-PER", "O", "B-LOC", "I-LOC"]),
                 Sentence(list("新华社"), ["B-ORG", "I-ORG", "I-ORG"])]
    vocab = CharVocab.build(sentences)
    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=len(vocab), d_model=16, num_heads=2, num_layers=1,
                               d_ff=32, max_len=8)
    model = TokenTagger(config, num_labels=len(LABELS)).train()
    metrics = evaluate_tagger(model, ner_loader(sentences, vocab, batch_size=2, shuffle=False))
    assert set(metrics) == {"precision", "recall", "f1", "f1_argmax", "token_accuracy"}
    assert model.training

    tagged = tag_sentence(model, "王小明在北京", vocab)
    assert [char for char, _ in tagged] == list("王小明在北京")
    assert all(tag in LABELS for _, tag in tagged)
    with pytest.raises(ValueError, match="max_len=8"):
        tag_sentence(model, "王小明在北京的新华社工作", vocab)
    with pytest.raises(ValueError, match="non-empty string"):
        tag_sentence(model, "", vocab)


def test_run_on_text_runs_in_eval_mode_and_restores_the_mode():
    vocab = CharVocab.build([Sentence(list("王小明在北京"), ["O"] * 6)])
    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=len(vocab), d_model=16, num_heads=2, num_layers=1, d_ff=32, dropout=0.5)
    model = TokenTagger(config, num_labels=len(LABELS)).train()
    first, mask = run_on_text(model, vocab, "王小明在北京")
    second, _ = run_on_text(model, vocab, "王小明在北京")
    assert model.training, "the caller's train mode is restored"
    assert first.logits.shape == (1, 6, len(LABELS)) and mask.tolist() == [[True] * 6]
    assert torch.equal(first.logits, second.logits), "dropout is off while running on the text"
    assert not first.logits.requires_grad
    with pytest.raises(ValueError, match="non-empty string"):
        run_on_text(model, vocab, ["王"])


def test_extract_entities_from_bio_tags():
    chars = list("王小明在北京新华社工作")
    tags = ["B-PER", "I-PER", "I-PER", "O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "I-ORG", "O", "O"]
    assert extract_entities(chars, tags) == [
        ("王小明", "PER", 0, 3), ("北京", "LOC", 4, 6), ("新华社", "ORG", 6, 9)]


def test_extract_entities_follows_the_conlleval_convention():
    # A stray I- starts an entity; a type change or a new B- ends one; an entity may end the text.
    chars = list("abcdefg")
    tags = ["I-LOC", "I-LOC", "I-PER", "B-PER", "B-PER", "O", "B-ORG"]
    assert extract_entities(chars, tags) == [
        ("ab", "LOC", 0, 2), ("c", "PER", 2, 3), ("d", "PER", 3, 4), ("e", "PER", 4, 5),
        ("g", "ORG", 6, 7)]


def test_extract_entities_rejects_bad_input():
    with pytest.raises(ValueError, match="one tag per character"):
        extract_entities(list("ab"), ["O"])
    with pytest.raises(ValueError, match="'PER' at position 1"):
        extract_entities(list("ab"), ["O", "PER"])
