"""Tests for course_lib.kd.hf_teacher: a Hugging Face tagger as the teacher, on a tiny random BertConfig (offline)."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForTokenClassification, BertTokenizer

from course_lib.data import LABELS, CharVocab
from course_lib.kd.distiller import Distiller
from course_lib.kd.hf_teacher import HFTeacher, _align_first_pieces, _label_permutation
from course_lib.nn.transformer import TokenTagger, TransformerConfig

CHARS = ["中", "国", "人", "民", "北", "京", "大", "学"]
MODEL_ORDER = ["B-LOC", "O", "I-PER", "B-ORG", "I-LOC", "B-PER", "I-ORG"]


@pytest.fixture(scope="module")
def saved_teacher(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf_teacher")
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *CHARS]) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(vocab_file=str(vocab_file))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=5 + len(CHARS), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64,
                        id2label=dict(enumerate(MODEL_ORDER)), label2id={n: i for i, n in enumerate(MODEL_ORDER)})
    model = BertForTokenClassification(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder, model, tokenizer


def course_batch(vocab: CharVocab) -> dict[str, torch.Tensor]:
    sentences = [["中", "国", "人", "民"], ["北", "京", "火"]]  # 火 is unknown to both vocabularies
    input_ids = torch.zeros(2, 4, dtype=torch.long)
    for b, chars in enumerate(sentences):
        input_ids[b, : len(chars)] = torch.tensor(vocab.encode(chars))
    mask = input_ids != vocab.pad_id
    labels = torch.zeros(2, 4, dtype=torch.long).masked_fill(~mask, -100)
    return {"input_ids": input_ids, "mask": mask, "labels": labels}


def test_label_permutation_reorders_by_name_and_refuses_other_labels():
    permutation = _label_permutation(dict(enumerate(MODEL_ORDER)))
    assert [MODEL_ORDER[i] for i in permutation] == list(LABELS)
    with pytest.raises(ValueError, match=r"missing: \['I-ORG'\], extra: \['B-MISC'\]"):
        _label_permutation(dict(enumerate([*MODEL_ORDER[:-1], "B-MISC"])))


def test_align_first_pieces_takes_each_characters_first_piece():
    pieces = torch.arange(2 * 6 * 2, dtype=torch.float32).reshape(2, 6, 2)
    word_ids = [[None, 0, 1, 1, 2, None], [None, 0, None, None, None, None]]  # character 1 has two pieces
    aligned = _align_first_pieces(pieces, word_ids, length=3)
    torch.testing.assert_close(aligned[0], pieces[0, [1, 2, 4]])
    torch.testing.assert_close(aligned[1, 0], pieces[1, 1])
    assert torch.count_nonzero(aligned[1, 1:]) == 0, "characters without a piece get uniform (zero) logits"
    with pytest.raises(ValueError, match="beyond length 1"):
        _align_first_pieces(pieces, word_ids, length=1)


def test_the_hf_teacher_gives_course_aligned_logits_in_course_label_order(saved_teacher):
    folder, model, tokenizer = saved_teacher
    vocab = CharVocab(CHARS)
    teacher = HFTeacher.from_pretrained(folder, vocab)
    batch = course_batch(vocab)
    output = teacher(batch["input_ids"], mask=batch["mask"])
    assert output.logits.shape == (2, 4, len(LABELS))
    encoded = tokenizer(["中国人民", "北京[UNK]"], return_tensors="pt", padding=True)
    with torch.no_grad():
        raw = model(**encoded).logits  # [CLS] c1 c2 ... [SEP]
    reorder = [MODEL_ORDER.index(label) for label in LABELS]
    torch.testing.assert_close(output.logits[0], raw[0, 1:5][:, reorder])
    torch.testing.assert_close(output.logits[1, :3], raw[1, 1:4][:, reorder])
    assert torch.count_nonzero(output.logits[1, 3]) == 0, "the padded position has no teacher opinion"


def test_the_course_distiller_takes_the_hf_teacher(saved_teacher):
    folder, _, _ = saved_teacher
    vocab = CharVocab(CHARS)
    teacher = HFTeacher.from_pretrained(folder, vocab)
    torch.manual_seed(1)
    student = TokenTagger(TransformerConfig(vocab_size=len(vocab), d_model=16, num_heads=2, num_layers=1, d_ff=32,
                                            max_len=16), len(LABELS))
    loss = Distiller(teacher, temperature=2.0, alpha=0.5)(student, course_batch(vocab))
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is None for p in teacher.parameters())
    assert all(p.grad is not None for p in student.classifier.parameters())
