import hashlib
import io
import json
import shutil
import tarfile

import numpy as np
import pytest

from course_lib.data import DataError, Poem, PoetryCorpus, cache_dir, is_regulated_pentasyllabic, load_tang_poems
from course_lib.data import poetry
from course_lib.data.cache import write_with_checksum
from course_lib.data.poetry import _extract_pentasyllabic_verse, _split_poems

DENG = ["白日依山盡，黃河入海流。", "欲窮千里目，更上一層樓。", "白日依山盡，黃河入海流。", "欲窮千里目，更上一層樓。"]
QUESTION = ["春眠不覺曉，處處聞啼鳥？", "夜來風雨聲，花落知多少！", "床前明月光，疑是地上霜。", "舉頭望明月，低頭思故鄉。"]
SEVEN = ["朝辭白帝彩雲間，千里江陵一日還。"] * 4
QUATRAIN = ["床前明月光，疑是地上霜。", "舉頭望明月，低頭思故鄉。"]
LATER = ["國破山河在，城春草木深。", "感時花濺淚，恨別鳥驚心。", "烽火連三月，家書抵萬金。", "白頭搔更短，渾欲不勝簪。"]
REAL_CACHE = cache_dir() / "poetry" / "tang_pentasyllabic.json"


def _entry(title, author, paragraphs):
    return {"author": author, "paragraphs": paragraphs, "title": title, "id": title}


def _add(archive, name, payload):
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    archive.addfile(info, io.BytesIO(payload))


@pytest.fixture
def tarball(tmp_path):
    """A tiny chinese-poetry tarball: file 1000 comes first in the archive, file 0 must still be read first."""
    files = {
        "package/dist/quantangshi/poet.tang.1000.json": [
            _entry("春望", "杜甫", LATER),
            _entry("登樓重出", "無名", DENG),  # the same text as 登鸛雀樓 in file 0: dropped
        ],
        "package/dist/quantangshi/poet.tang.0.json": [
            _entry("登鸛雀樓", "王之渙", DENG),
            _entry("早發白帝城", "李白", SEVEN),
            _entry("靜夜思", "李白", QUATRAIN),
            _entry("問春", "無名", QUESTION),
        ],
        "package/dist/quantangshi/error/poet.tang.0.json": [_entry("錯", "無名", LATER)],
        "package/dist/quantangshi/poet.song.0.json": [_entry("宋詩", "無名", LATER)],
    }
    path = tmp_path / "chinese-poetry-2.0.1.tgz"
    with tarfile.open(path, "w:gz") as archive:
        for name, entries in files.items():
            _add(archive, name, json.dumps(entries, ensure_ascii=False).encode("utf-8"))
    return path


def test_extraction_keeps_regulated_verse_in_file_order_without_repeats(tarball):
    poems = _extract_pentasyllabic_verse(tarball)
    assert [poem.title for poem in poems] == ["登鸛雀樓", "問春", "春望"]
    assert poems[0] == Poem("登鸛雀樓", "王之渙", ("白日依山盡", "黃河入海流", "欲窮千里目", "更上一層樓") * 2)
    assert poems[1].text.startswith("春眠不覺曉，處處聞啼鳥。夜來風雨聲，花落知多少。"), "？ and ！ become 。"


def test_extraction_refuses_what_is_not_the_package(tmp_path):
    empty = tmp_path / "empty.tgz"
    with tarfile.open(empty, "w:gz") as archive:
        _add(archive, "package/README.md", b"hello")
    with pytest.raises(DataError, match=r"holds no package/dist/quantangshi/poet.tang.<N>.json"):
        _extract_pentasyllabic_verse(empty)
    (tmp_path / "junk.tgz").write_bytes(b"junk")
    with pytest.raises(DataError, match="is not a readable tar.gz"):
        _extract_pentasyllabic_verse(tmp_path / "junk.tgz")
    broken = tmp_path / "broken.tgz"
    with tarfile.open(broken, "w:gz") as archive:
        _add(archive, "package/dist/quantangshi/poet.tang.0.json", b"{not json")
    with pytest.raises(DataError, match="poet.tang.0.json in broken.tgz is not UTF-8 JSON"):
        _extract_pentasyllabic_verse(broken)


@pytest.mark.parametrize(
    "text",
    ["白日依山盡，黃河入海流。欲窮千里目，更上一層樓。白日依山盡，黃河入海流。欲窮千里目，更上一層樓。", "".join(LATER)],
)
def test_the_format_check_accepts_regulated_verse(text):
    assert is_regulated_pentasyllabic(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "".join(SEVEN),
        "".join(LATER[:3]),
        "".join(LATER + LATER[:1]),
        "".join(QUESTION),
        "".join(LATER).replace("。", "，", 1),
        "".join(LATER) + "\n",
        " " + "".join(LATER),
        "".join(LATER).replace("國破", "AB"),
        "".join(LATER).replace("國破", "國，"),
    ],
)
def test_the_format_check_rejects_anything_else(text):
    assert not is_regulated_pentasyllabic(text)


def test_the_format_check_wants_a_string():
    with pytest.raises(TypeError, match="text must be a str"):
        is_regulated_pentasyllabic(None)


def test_poem_text_passes_the_format_check():
    poem = Poem("春望", "杜甫", [line[i : i + 5] for line in LATER for i in (0, 6)])
    assert poem.lines == ("國破山河在", "城春草木深", "感時花濺淚", "恨別鳥驚心",
                          "烽火連三月", "家書抵萬金", "白頭搔更短", "渾欲不勝簪")
    assert poem.text == "".join(LATER) and is_regulated_pentasyllabic(poem.text)


@pytest.mark.parametrize(
    "lines, error",
    [
        (("國破山河在",) * 7, "has 8 lines, got 7"),
        (("國破山河在",) * 7 + ("城春草木深深",), "must be 5 characters .* got '城春草木深深'"),
        (("國破山河在",) * 7 + ("城春，木深",), "without punctuation"),
        (("國破山河在",) * 7 + ("abcde",), "without punctuation, whitespace or ASCII"),
        ("國破山河在" * 8, "not one string"),
    ],
)
def test_poem_validation(lines, error):
    with pytest.raises(ValueError, match=error):
        Poem("t", "a", lines)


def test_poem_needs_string_title_and_author():
    with pytest.raises(ValueError, match="title and author must be str"):
        Poem(None, "a", ("國破山河在",) * 8)


def _poems(n):
    chars = "一二三四五六七八九十"
    return [Poem(str(i), "a", tuple(chars[i % 10] * 5 for _ in range(8))) for i in range(n)]


@pytest.mark.parametrize("n, held", [(100, 5), (119, 5), (120, 6), (10, 0)])
def test_split_proportions_and_determinism(n, held):
    poems = _poems(n)
    corpus = _split_poems(poems)
    assert (len(corpus.train), len(corpus.dev), len(corpus.test)) == (n - 2 * held, held, held)
    assert sorted(corpus.train + corpus.dev + corpus.test, key=lambda p: int(p.title)) == poems
    assert _split_poems(poems) == corpus
    assert repr(corpus) == f"PoetryCorpus(train={n - 2 * held:,}, dev={held}, test={held} poems)"


def test_split_follows_the_documented_permutation():
    poems = _poems(40)
    order = np.random.default_rng(0).permutation(40)
    corpus = _split_poems(poems)
    assert corpus.test == [poems[i] for i in order[38:]] and corpus.dev == [poems[i] for i in order[36:38]]


def test_load_fills_the_cache_and_drops_the_tarball(tarball, tmp_path, monkeypatch, model_cache):
    fetched = model_cache / "npm" / tarball.name
    fetched.parent.mkdir(parents=True)
    shutil.copyfile(tarball, fetched)  # the fixture's tarball survives; the cache's copy is deleted
    calls = []
    monkeypatch.setattr(poetry, "npm_tarball", lambda package: calls.append(package) or fetched)
    corpus = load_tang_poems()
    assert calls == [poetry.POETRY_PACKAGE] and isinstance(corpus, PoetryCorpus)
    assert not fetched.exists() and tarball.exists()
    path = model_cache / "poetry" / "tang_pentasyllabic.json"
    rows = json.loads(path.read_text(encoding="utf-8"))
    assert [row[0] for row in rows] == ["登鸛雀樓", "問春", "春望"] and rows[2][2][0] == "國破山河在"
    recorded = (model_cache / "poetry" / "tang_pentasyllabic.json.sha256").read_text().strip()
    assert recorded == hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_tang_poems() == corpus and len(calls) == 1, "the second load reads the JSON, not the tarball"
    assert sorted(p.title for p in corpus.train + corpus.dev + corpus.test) == sorted(row[0] for row in rows)


def test_a_tampered_cache_is_detected(tarball, tmp_path, monkeypatch):
    copy = tmp_path / "copy.tgz"
    shutil.copyfile(tarball, copy)
    monkeypatch.setattr(poetry, "npm_tarball", lambda package: copy)
    folder = tmp_path / "poetry"
    load_tang_poems(folder)
    path = folder / "tang_pentasyllabic.json"
    path.write_text(path.read_text(encoding="utf-8").replace("杜甫", "李白"), encoding="utf-8")
    with pytest.raises(DataError, match="checksum mismatch .* delete it and run again"):
        load_tang_poems(folder)


def test_a_cache_with_a_bad_poem_is_a_data_error(tmp_path):
    write_with_checksum(tmp_path / "tang_pentasyllabic.json", json.dumps([["t", "a", ["國破山河在"] * 7]]).encode())
    with pytest.raises(DataError, match="cannot be read as the course's Tang poems .*has 8 lines, got 7"):
        load_tang_poems(tmp_path)


def test_empty_cache_without_network(empty_cache):
    with pytest.raises(DataError, match=r"chinese-poetry-2.0.1.tgz is not in the cache and \$COURSE_OFFLINE forbids"):
        load_tang_poems()
    assert not (empty_cache / "poetry").exists()


@pytest.mark.skipif(not REAL_CACHE.exists(), reason=f"the real Tang poems are not cached at {REAL_CACHE}")
def test_real_cached_tang_poems():
    """The real corpus, extracted into the cache on first use."""
    corpus = load_tang_poems()
    poems = corpus.train + corpus.dev + corpus.test
    assert 14_000 <= len(poems) <= 15_000
    assert len(corpus.dev) == len(corpus.test) == len(poems) // 20
    assert len({poem.text for poem in poems}) == len(poems)
    assert all(is_regulated_pentasyllabic(poem.text) for poem in poems)
