import hashlib
import io
import struct
import tarfile
import time
import zlib

import pytest

from course_lib.data import (
    BIBLE_SOURCES,
    DataError,
    DebPackage,
    VersePair,
    align_pairs,
    cache_dir,
    clean_osis,
    fetch_deb,
    load_bible,
    read_module,
    recase_chapter_opening,
)
from course_lib.data import bible
from course_lib.data.bible import DEV_BOOKS, KJV_SOURCE, SPARV_SOURCE, TEST_BOOKS, split_by_book
from course_lib.data.sword import KJV_VERSES, deb_files, kjv_canon, strongs_numbers

SHIFTED_CHAPTERS = [("Num", 13), ("Num", 30), ("1Sam", 24), ("1Kgs", 22), ("1Chr", 21), ("2Chr", 33), ("Job", 39),
                    ("Hos", 12), ("Jonah", 2)]


def _ar(members):
    """An ``ar`` archive (the container of a .deb) holding ``members`` in order."""
    out = [b"!<arch>\n"]
    for name, data in members.items():
        out.append(f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode("ascii"))
        out.append(data + (b"\n" if len(data) % 2 else b""))
    return b"".join(out)


def _tar_xz(files):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _deb(files):
    return _ar({"debian-binary": b"2.0\n", "control.tar.xz": _tar_xz({"./control": b"Package: tiny\n"}),
                "data.tar.xz": _tar_xz(files)})


def _ztext(texts):
    """A zText module in the KJV shape (one block per testament): verses from ``texts`` (ref -> OSIS), "" elsewhere."""
    canon = kjv_canon()
    files = {}
    for part, books in (("ot", canon[:39]), ("nt", canon[39:])):
        entries = [b"", b"<milestone/>"]
        for osis, _, counts in books:
            entries.append(f"<div osisID='{osis}'/>".encode())
            for chapter, count in enumerate(counts, start=1):
                entries.append(f"<chapter n='{chapter}'/>".encode())
                entries += [texts.get((osis, chapter, verse), "").encode() for verse in range(1, count + 1)]
        block, index = b"", []
        for entry in entries:
            index.append(struct.pack("<IIH", 0, len(block), len(entry)))
            block += entry
        compressed = zlib.compress(block)
        files[f"{part}.bzs"] = struct.pack("<III", 0, len(compressed), len(block))
        files[f"{part}.bzv"] = b"".join(index)
        files[f"{part}.bzz"] = compressed
    return files


@pytest.fixture(scope="module")
def corpus():
    return load_bible()


@pytest.fixture(scope="module")
def pairs(corpus):
    return {(p.book, p.chapter, p.verse): p for p in corpus.train + corpus.dev + corpus.test}


@pytest.mark.parametrize("osis, text", [
    ('<w lemma="strong:H0430">God</w><w lemma="strong:H1254">created</w>', "God created"),
    ('light.<note placement="foot"><reference type="annotateRef">1.4 </reference>Heb. between</note>And God',
     "light. And God"),
    ('<title canonical="true" type="psalm">A <w lemma="strong:H4210">Psalm</w> of David.</title> <lg sID="a"/>'
     "<l level='1' sID='b'/><divineName>LORD</divineName>, how", "A Psalm of David. LORD, how"),
    ("<div sID='p' type='x-p'/> ¶ And  he\nsaid", "And he said"),
    ("fish&#8217;s &amp; bones &lt;", "fish’s & bones <"),
    ("Jehova\u0301 dijo", "Jehová dijo"),
    ("Because the \\nd LORD\\+nd* hath sworn", "Because the LORD hath sworn"),
    ('<w lemma="strong:H3318">sáca</w><transChange type="added">lo</transChange> de', "sácalo de"),
    ('<w lemma="strong:H3808">Y no</w><transChange type="added">lo</transChange><w lemma="strong:H5046">supo</w>',
     "Y no lo supo"),
    ('<w lemma="strong:H8033">hay allí</w><transChange type="added">también</transChange><w>bdelio</w>',
     "hay allí también bdelio"),
])
def test_clean_osis(osis, text):
    assert clean_osis(osis) == text


def test_clean_osis_is_nfc_and_rejects_non_text():
    assert clean_osis("Jehova\u0301") == "Jehov\u00e1"
    with pytest.raises(TypeError, match="text must be a str"):
        clean_osis(None)


def test_strongs_numbers_skip_notes_and_leading_zeros():
    osis = ('<w lemma="strong:H0430">God</w> <w lemma="strong:G2424 G5547">Jesucristo</w>'
            '<note><w lemma="strong:H0009">n</w></note>')
    assert strongs_numbers(osis) == {"H430", "G2424", "G5547"}


@pytest.mark.parametrize("text, recased", [
    ("Y ACONTECIÓ que en los días", "Y aconteció que en los días"),
    ("EN el principio crió Dios", "En el principio crió Dios"),
    ("¡OH Jehová, cuánto", "¡Oh Jehová, cuánto"),
    ("Salmo de David. JEHOVÁ es mi pastor", "Salmo de David. Jehová es mi pastor"),
    ("Cántico gradual. A JEHOVÁ llamé", "Cántico gradual. A Jehová llamé"),
    ("Y Á SUS discípulos dijo", "Y á sus discípulos dijo"),
    ("YO DIJE: Atenderé á mis caminos", "Yo dije: Atenderé á mis caminos"),
    ("ALEPH. BIENAVENTURADOS los perfectos", "ALEPH. Bienaventurados los perfectos"),
    ("Y HABLÓ Jehová á Moisés, diciendo: JEHOVÁ es mi nombre",
     "Y habló Jehová á Moisés, diciendo: JEHOVÁ es mi nombre"),
    ("Porque JAH ha escogido á Jacob", "Porque JAH ha escogido á Jacob"),
    ("Y el ángel de Jehová subió", "Y el ángel de Jehová subió"),
])
def test_recase_chapter_opening(text, recased):
    assert recase_chapter_opening(text, names={"jehová"}) == recased


def _tagged(numbers):
    return " ".join(f'<w lemma="strong:H{number:04d}">w{number}</w>' for number in numbers)


def test_align_pairs_realigns_a_shift_and_drops_a_merged_verse():
    words = {verse: range(10 * verse, 10 * verse + 6) for verse in range(1, 6)}
    english = {("Jonah", 1, verse): _tagged(words[verse]) for verse in range(1, 6)}
    spanish = {("Jonah", 1, 1): "", ("Jonah", 1, 5): _tagged([*words[4], *words[5]])}
    spanish.update({("Jonah", 1, verse + 1): "¶ " + _tagged(words[verse]) for verse in range(1, 4)})
    english.update({("Ruth", 1, verse): _tagged(words[verse]) for verse in (1, 3)} | {("Ruth", 1, 2): "no numbers"})
    spanish.update({("Ruth", 1, verse): _tagged(words[verse]) for verse in (1, 3)} | {("Ruth", 1, 2): "sin números"})
    english = {key: english[key] for key in sorted(english, key=lambda key: (key[0] != "Jonah", key))}
    spanish = {key: spanish[key] for key in english}
    alignment = align_pairs(english, spanish)
    assert [(p.ref, p.spanish.split()[0]) for p in alignment.pairs] == [
        ("Jonah 1:1", "w10"), ("Jonah 1:2", "w20"), ("Jonah 1:3", "w30"),
        ("Ruth 1:1", "w10"), ("Ruth 1:2", "sin"), ("Ruth 1:3", "w30"),
    ]
    assert alignment.dropped == {"empty": 0, "merged": 1, "unmatched": 1} and alignment.realigned == 3
    with pytest.raises(ValueError, match="same verse references"):
        align_pairs(english, dict(reversed(spanish.items())))


def test_deb_files_reads_a_synthetic_package(tmp_path):
    path = tmp_path / "tiny_1_all.deb"
    path.write_bytes(_deb({"./usr/share/doc/tiny/odd.txt": b"odd", "./usr/share/sword/a/b.bin": b"\x00\x01",
                           "./usr/share/sword/a/c.txt": b"hello"}))
    assert deb_files(path, "usr/share/sword/a") == {"b.bin": b"\x00\x01", "c.txt": b"hello"}
    assert deb_files(path.read_bytes(), "usr/share/doc") == {"tiny/odd.txt": b"odd"}
    (tmp_path / "junk.deb").write_bytes(b"not a package")
    with pytest.raises(DataError, match="is not a Debian package"):
        deb_files(tmp_path / "junk.deb", "usr")
    (tmp_path / "nodata.deb").write_bytes(_ar({"debian-binary": b"2.0\n"}))
    with pytest.raises(DataError, match="holds no data.tar"):
        deb_files(tmp_path / "nodata.deb", "usr")


def test_read_module_skips_headings_in_a_synthetic_module(tmp_path):
    files = _ztext({("Gen", 1, 1): "<w>In</w> the beginning", ("Rev", 22, 21): "Amen."})
    deb = tmp_path / "tiny.deb"
    deb.write_bytes(_deb({f"./usr/share/sword/modules/texts/ztext/tiny/{name}": data for name, data in files.items()}))
    verses = read_module(deb, "tiny")
    assert len(verses) == KJV_VERSES
    assert verses["Gen", 1, 1] == "<w>In</w> the beginning" and verses["Rev", 22, 21] == "Amen."
    assert verses["Gen", 1, 2] == "" and list(verses)[0] == ("Gen", 1, 1) and list(verses)[-1] == ("Rev", 22, 21)
    files["nt.bzv"] = files["nt.bzv"][:-10]
    folder = tmp_path / "sword" / "modules" / "texts" / "ztext" / "tiny"
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    with pytest.raises(DataError, match="does not declare Versification=KJV"):
        read_module(tmp_path / "sword", "tiny")
    with pytest.raises(DataError, match="holds no zText module other"):
        read_module(tmp_path / "sword", "other")


def test_read_module_on_the_real_kjv():
    path = fetch_deb(KJV_SOURCE)
    start = time.perf_counter()
    verses = read_module(path, KJV_SOURCE.module)
    assert time.perf_counter() - start < 2.0
    assert len(verses) == KJV_VERSES == 31_102
    assert clean_osis(verses["Gen", 1, 1]) == "In the beginning God created the heaven and the earth."
    assert clean_osis(verses["John", 3, 16]).startswith("For God so loved the world, that he gave his only begotten")
    assert list(verses)[-1] == ("Rev", 22, 21)
    assert clean_osis(verses["Rev", 22, 21]) == "The grace of our Lord Jesus Christ be with you all. Amen."


def test_alignment_pairs_the_shifted_chapters_by_content(corpus, pairs):
    assert 30_000 <= len(pairs) <= 31_500
    assert all(p.english and p.spanish and p.english == p.english.strip() for p in pairs.values())
    assert corpus.realigned > 100 and sum(corpus.dropped.values()) == KJV_VERSES - len(pairs)
    assert pairs["Jonah", 1, 17].spanish.startswith("Mas Jehová había prevenido un gran pez")
    assert pairs["Jonah", 2, 1].spanish.startswith("Y oró Jonás desde el vientre del pez")
    assert pairs["Job", 38, 39].spanish.startswith("¿Cazarás tú la presa para el león?")
    assert pairs["Job", 40, 6].spanish.startswith("Entonces respondió Jehová á Job desde la oscuridad")
    assert "Filisteos" in pairs["1Sam", 24, 1].spanish
    assert pairs["Hos", 12, 1].spanish.startswith("Ephraim se apacienta del viento")
    assert pairs["1Kgs", 22, 44].spanish == "Y Josaphat hizo paz con el rey de Israel."
    for book, chapter in SHIFTED_CHAPTERS:
        kept = [p for key, p in pairs.items() if key[:2] == (book, chapter)]
        assert kept, f"{book} {chapter} lost every verse"


def test_alignment_reaches_the_expected_size_and_recases_openings(corpus, pairs):
    english_words = sum(len(p.english.split()) for p in pairs.values()) / len(pairs)
    assert 23 <= english_words <= 27
    assert pairs["Gen", 1, 1].spanish == "En el principio crió Dios los cielos y la tierra."
    assert pairs["2Chr", 29, 1].spanish.startswith("Y Ezechîas comenzó á reinar")
    shouting = [p.ref for p in pairs.values() if p.verse == 1 and p.spanish.split()[0].isupper()
                and len(p.spanish.split()[0]) > 2]
    assert shouting == ["Ps 119:1"], "only Psalm 119's ALEPH heading may open a chapter in capitals"
    assert not any("eBible" in p.english or "Public Domain" in p.english for p in pairs.values())


def test_splits_are_disjoint_by_book(corpus):
    books = [{p.book for p in split} for split in (corpus.train, corpus.dev, corpus.test)]
    assert books[2] == set(TEST_BOOKS) == {"Ruth", "Prov", "Acts"} and books[1] == set(DEV_BOOKS)
    assert not (books[0] & books[1] or books[0] & books[2] or books[1] & books[2])
    for split, expected in ((corpus.train, 28_300), (corpus.dev, 500), (corpus.test, 2_000)):
        assert abs(len(split) - expected) <= 0.1 * expected
    assert corpus.stats()["test"]["pairs"] == len(corpus.test) and "train=" in repr(corpus)
    again = split_by_book([VersePair("Ruth", 1, 1, "a", "b"), VersePair("Gen", 1, 1, "c", "d")])
    assert [p.book for p in again.test] == ["Ruth"] and [p.book for p in again.train] == ["Gen"]


def test_load_bible_reads_the_cache_fast():
    path = cache_dir() / "bible" / bible.CACHE_NAME
    assert path.exists() and path.with_name(path.name + ".sha256").exists()
    start = time.perf_counter()
    load_bible()
    assert time.perf_counter() - start < 2.0


def test_sources_are_pinned():
    assert [source.package for source in BIBLE_SOURCES] == ["sword-text-kjv", "sword-text-sparv"]
    assert SPARV_SOURCE.module == "spaRV1909eb" and all(len(source.sha256) == 64 for source in BIBLE_SOURCES)


def test_corrupt_download_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    junk = tmp_path / "junk.deb"
    junk.write_bytes(b"corrupt")
    calls = []

    def apt_fails(source):
        calls.append(source.package)
        raise DataError("apt-get: unable to locate package")

    monkeypatch.setattr(bible, "_apt_get_download", apt_fails)
    source = DebPackage("course-tiny", "1", junk.as_uri(), "0" * 64, "tiny")
    with pytest.raises(DataError, match=r"sha256 [0-9a-f]{64}, expected 0{64}.*apt-get download course-tiny=1"):
        fetch_deb(source)
    assert calls == ["course-tiny"]
    folder = tmp_path / "cache" / "bible"
    assert not folder.exists() or not any(folder.iterdir()), "a failed fetch leaves no file in the cache"


def test_apt_get_is_the_fallback_and_the_cache_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    good = _deb({"./usr/share/doc/tiny/a.txt": b"a"})
    monkeypatch.setattr(bible, "_apt_get_download", lambda source: good)
    source = DebPackage("course-tiny", "1", (tmp_path / "missing.deb").as_uri(), hashlib.sha256(good).hexdigest(), "x")
    path = fetch_deb(source)
    assert path.read_bytes() == good and path.parent == tmp_path / "cache" / "bible"
    path.write_bytes(good + b"!")
    with pytest.raises(DataError, match="the cached package is corrupt; delete it"):
        fetch_deb(source)


def test_empty_cache_without_network(empty_cache):
    with pytest.raises(DataError, match="sword-text-kjv 14.3-1 is not in the data cache"):
        load_bible()
    assert not (empty_cache / "bible").exists()
