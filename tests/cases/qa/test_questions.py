"""Tests for course_lib.cases.qa.questions: questions and passages, the window, batches."""

from __future__ import annotations

import pytest
import torch

from course_lib.cases.qa.questions import (
    QUESTIONS,
    encode_example,
    passage_window,
    qa_counts,
    qa_examples,
    qa_loader,
    qa_vocab,
)
from course_lib.data import CharVocab, NerCorpus
from tests.cases.qa import sentence, synthetic_corpus


@pytest.fixture(scope="module")
def corpus() -> NerCorpus:
    return synthetic_corpus()


def test_questions_and_passages_shift_answers_by_the_question_and_leave_empty_answers():
    text = sentence(("我在", None), ("北京", "LOC"), ("见到", None), ("张伟", "PER"), ("和", None), ("李明", "PER"))
    examples = qa_examples([text], max_len=40)
    assert [e.kind for e in examples] == ["PER", "LOC", "ORG"] and {e.question for e in examples} == set(QUESTIONS.values())
    per, loc, org = examples
    assert per.answers == ((6, 8), (9, 11)) and loc.answers == ((2, 4),) and org.answers == (), "no ORG: empty answer"
    assert qa_counts(examples) == {"questions": 3, "answers": 3, "without_answer": 1}
    vocab = qa_vocab(examples)
    ids, offset = encode_example(per, vocab)
    assert offset == len(QUESTIONS["PER"]) + 2 and len(ids) == offset + len(per.passage)
    assert vocab.id_to_token(ids[0]) == "[CLS]" and vocab.id_to_token(ids[offset - 1]) == "[SEP]"
    assert [vocab.id_to_token(i) for i in ids[offset + 6:offset + 8]] == list("张伟"), "spans shift by the question"
    batch = next(iter(qa_loader(examples, vocab, 3, shuffle=False)))
    assert batch["start"][0].nonzero().flatten().tolist() == [offset + 6, offset + 9]
    assert batch["end"][0].nonzero().flatten().tolist() == [offset + 7, offset + 10], "ends mark the last character"
    assert batch["passage"][0].sum() == len(per.passage) and not batch["passage"][0, :offset].any()
    assert batch["start"][2].sum() == 0


def test_the_passage_is_cut_to_the_window_and_entities_past_it_are_no_answers():
    window = passage_window(40)
    assert window == 40 - 2 - max(map(len, QUESTIONS.values()))
    long = sentence(("一" * (window - 1), None), ("北京", "LOC"), ("和", None))
    assert qa_examples([long], 40)[1].answers == () and len(qa_examples([long], 40)[1].passage) == window
    with pytest.raises(ValueError, match="no room for a passage"):
        passage_window(10)


def test_batches_by_length_hold_every_question_once_with_less_padding(corpus):
    examples = qa_examples(corpus.train, 40)
    vocab = qa_vocab(examples)
    plain, by_length = (list(qa_loader(examples, vocab, 4, shuffle=False, by_length=flag)) for flag in (False, True))
    indices = [index for batch in by_length for index in batch["index"].tolist()]
    assert sorted(indices) == list(range(len(examples)))
    lengths = [len(encode_example(examples[index], vocab)[0]) for index in indices]
    assert lengths == sorted(lengths)
    assert sum(b["input_ids"].numel() for b in by_length) <= sum(b["input_ids"].numel() for b in plain)
    rows = {index: batch["input_ids"][row][batch["mask"][row]].tolist()
            for batch in by_length for row, index in enumerate(batch["index"].tolist())}
    assert all(rows[index] == encode_example(examples[index], vocab)[0] for index in range(len(examples)))
    with pytest.raises(ValueError, match="shuffle=False"):
        qa_loader(examples, vocab, 4, shuffle=True, by_length=True)


@pytest.mark.parametrize("by_length", [False, True])
def test_reading_the_batches_leaves_the_global_generator_alone(corpus, by_length):
    examples = qa_examples(corpus.train, 40)
    loader = qa_loader(examples, qa_vocab(examples), 4, shuffle=False, by_length=by_length)
    before = torch.get_rng_state()
    list(loader)
    assert torch.equal(torch.get_rng_state(), before), "a training run's dropout would change with every scoring pass"



def test_bad_questions_and_batches_raise_clear_errors(corpus):
    with pytest.raises(TypeError, match="Sentence"):
        qa_examples(["我在北京"], 40)
    with pytest.raises(ValueError, match="nothing to batch"):
        qa_loader([], qa_vocab(qa_examples(corpus.train[:2], 40)), 4, shuffle=False)
    with pytest.raises(ValueError, match=r"\[CLS\]"):
        encode_example(qa_examples(corpus.train[:1], 40)[0], CharVocab.build(corpus.train))
