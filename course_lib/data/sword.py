"""SWORD Bible modules read with the standard library: the Debian package, the zText files, the OSIS markup.

A Debian package (``.deb``) is an ``ar`` archive whose ``data.tar.xz`` holds the module under
``usr/share/sword/modules/texts/ztext/<module>/``. A zText module keeps each testament in three
files: ``<t>.bzz`` (zlib blocks, one per book), ``<t>.bzs`` (per block: offset, compressed size,
uncompressed size; three little-endian u32) and ``<t>.bzv`` (per entry: block, offset in the
decompressed block, size; u32, u32, u16). The entries follow the KJV versification: the module
heading, the testament heading, then per book an introduction and per chapter a heading followed
by its verses. The verse text is OSIS XML with Strong's numbers in ``<w lemma="strong:H1234">``.
"""

from __future__ import annotations

import html
import io
import re
import struct
import tarfile
import unicodedata
import zlib
from collections.abc import Mapping
from pathlib import Path

from course_lib.data.cache import DataError

Ref = tuple[str, int, int]
"""A verse reference: OSIS book abbreviation, chapter, verse (``("Gen", 1, 1)``)."""

KJV_VERSES = 31_102
TESTAMENTS = ("ot", "nt")
ZTEXT_DIR = "usr/share/sword/modules/texts/ztext"
_AR_MAGIC = b"!<arch>\n"
_AR_HEADER = 60

_NOTE = re.compile(r"<note\b[^>]*>.*?</note>", re.S)
_CLITIC = re.compile(r"(\w+)</w><transChange\b[^>]*>(lo|la|los|las|le|les|me|te|se|nos|os)</transChange>")
_NOT_A_VERB = frozenset({"como", "cuánto", "dios", "ellos", "gentes", "jehová", "josué", "no", "os", "que", "y"})
_TOUCHING = re.compile(r"(</(?:w|transChange)>)(<(?:w|transChange)\b)")
_TAG = re.compile(r"<[^>]*>")
_USFM = re.compile(r"\\\+?[a-z]+\d*\*?")
_LEMMA = re.compile(r"<w\b[^>]*\blemma=\"([^\"]*)\"")
_STRONG = re.compile(r"\b([GH])0*(\d+)")


def kjv_canon() -> list[tuple[str, str, tuple[int, ...]]]:
    """The 66 books of the KJV versification: (OSIS name, full name, verses per chapter) from pysword (chapter 09)."""
    try:
        from pysword.canons import canons
    except ImportError as exc:
        raise DataError(
            "the KJV book and verse table comes from the package pysword, which is not installed: "
            "run `pip install pysword==0.2.8` (or reinstall the course with `pip install -e .`)"
        ) from exc
    return [(osis, name, tuple(counts)) for part in TESTAMENTS for name, osis, _, counts in canons["kjv"][part]]


def _ar_members(data: bytes, origin: str) -> dict[str, bytes]:
    """The members of an ``ar`` archive (the container of a ``.deb``), by name."""
    if not data.startswith(_AR_MAGIC):
        raise DataError(f"{origin} is not a Debian package (no ar header); delete it and run again")
    members: dict[str, bytes] = {}
    position = len(_AR_MAGIC)
    while position + _AR_HEADER <= len(data):
        header = data[position : position + _AR_HEADER]
        if header[58:60] != b"`\n":
            raise DataError(f"{origin}: broken ar member header at byte {position}; the file is corrupt")
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError as exc:
            raise DataError(f"{origin}: unreadable size of ar member {name!r}; the file is corrupt") from exc
        start = position + _AR_HEADER
        if start + size > len(data):
            raise DataError(f"{origin}: ar member {name!r} runs past the end of the file; the file is truncated")
        members[name] = data[start : start + size]
        position = start + size + size % 2
    return members


def deb_files(deb: Path | bytes, folder: str) -> dict[str, bytes]:
    """The files under ``folder`` in a ``.deb``'s data archive, by path relative to ``folder`` (chapter 09).

    The ``ar`` container is parsed by hand and ``data.tar.{xz,gz,bz2}`` opened with :mod:`tarfile`;
    nothing is written to disk. A file that is not such a package raises :class:`DataError`.
    """
    origin = str(deb) if isinstance(deb, (str, Path)) else "the package bytes"
    data = Path(deb).read_bytes() if isinstance(deb, (str, Path)) else bytes(deb)
    members = _ar_members(data, origin)
    payload = next((members[name] for name in members if name.startswith("data.tar")), None)
    if payload is None:
        raise DataError(f"{origin} holds no data.tar.* member (found {sorted(members)}): it is not a Debian package")
    prefix = folder.strip("/") + "/"
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r:*") as archive:
            for info in archive:
                name = info.name[2:] if info.name.startswith("./") else info.name.lstrip("/")
                if info.isfile() and name.startswith(prefix):
                    found[name[len(prefix) :]] = archive.extractfile(info).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DataError(f"the data archive of {origin} cannot be read ({exc}); delete the file and run again") from exc
    return found


def _module_files(path: Path, module: str) -> dict[str, bytes]:
    """The six zText files of ``module`` from a ``.deb`` or from a SWORD folder (the one holding ``modules/``)."""
    path = Path(path)
    names = [f"{part}.{kind}" for part in TESTAMENTS for kind in ("bzs", "bzv", "bzz")]
    if path.is_file():
        files = deb_files(path, f"{ZTEXT_DIR}/{module}")
    else:
        folder = path / "modules" / "texts" / "ztext" / module
        files = {name: (folder / name).read_bytes() for name in names if (folder / name).is_file()}
    missing = [name for name in names if name not in files]
    if missing:
        raise DataError(f"{path} holds no zText module {module} (missing {', '.join(missing)})")
    return files


def _testament_entries(files: Mapping[str, bytes], part: str, module: str) -> list[bytes]:
    """Every entry of one testament's verse index, decompressing each block once."""
    index, verses, blob = files[f"{part}.bzs"], files[f"{part}.bzv"], files[f"{part}.bzz"]
    if len(index) % 12 or len(verses) % 10:
        raise DataError(f"{module} {part}: index sizes {len(index)}, {len(verses)} are not records of 12 and 10 bytes")
    blocks: list[bytes] = []
    for offset, size, full in struct.iter_unpack("<III", index):
        try:
            block = zlib.decompress(blob[offset : offset + size])
        except zlib.error as exc:
            raise DataError(f"{module} {part}: block {len(blocks)} does not decompress ({exc}); it is corrupt") from exc
        if len(block) != full:
            raise DataError(f"{module} {part}: block {len(blocks)} holds {len(block)} bytes, its index says {full}")
        blocks.append(block)
    entries = []
    for number, (block, offset, size) in enumerate(struct.iter_unpack("<IIH", verses)):
        if size and (block >= len(blocks) or offset + size > len(blocks[block])):
            raise DataError(f"{module} {part}: entry {number} points outside the decompressed blocks")
        entries.append(blocks[block][offset : offset + size] if size else b"")
    return entries


def read_module(path: Path, module: str) -> dict[Ref, str]:
    """The OSIS text of every KJV verse of a zText module in a ``.deb`` or a SWORD folder, in canon order (chapter 09).

    Headings (module, testament, book introductions, chapter headings) are skipped; an empty verse
    is ``""``. A module whose index does not have the KJV shape raises :class:`DataError`.
    """
    files = _module_files(path, module)
    canon = kjv_canon()
    verses: dict[Ref, str] = {}
    for part, books in (("ot", canon[:39]), ("nt", canon[39:])):
        entries = _testament_entries(files, part, module)
        expected = 2 + sum(1 + len(counts) + sum(counts) for _, _, counts in books)
        if len(entries) != expected:
            raise DataError(
                f"{module} {part} has {len(entries)} index entries where the KJV versification needs {expected}: "
                "the module does not declare Versification=KJV"
            )
        position = 2
        for osis, _, counts in books:
            position += 1
            for chapter, count in enumerate(counts, start=1):
                position += 1
                for verse in range(1, count + 1):
                    try:
                        verses[osis, chapter, verse] = entries[position].decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise DataError(f"{module} {osis} {chapter}:{verse} is not UTF-8 ({exc})") from exc
                    position += 1
    return verses


def clean_osis(text: str) -> str:
    """Plain text of one OSIS verse: notes dropped, titles kept, tags stripped, NFC, single spaces (chapter 09).

    A ``<note>`` becomes a space; touching ``<w>``/``<transChange>`` elements get a space between
    them, except a Spanish clitic pronoun added after its verb (``sáca</w><transChange>lo`` is
    ``sácalo``); the text of ``<title>`` (psalm superscriptions, epistle subscriptions) is kept;
    every other tag, the pilcrow ¶ and stray USFM markers (``\\nd``) are removed; entities are
    unescaped; the result is Unicode NFC with runs of whitespace collapsed and no outer spaces.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if "<note" in text:
        text = _NOTE.sub(" ", text)
    if "</w><transChange" in text:
        text = _CLITIC.sub(lambda m: m.group(0) if m.group(1).lower() in _NOT_A_VERB else m.group(1) + m.group(2), text)
    text = _TOUCHING.sub(r"\1 \2", text)
    text = _USFM.sub("", _TAG.sub("", text)).replace("¶", " ")
    return " ".join(unicodedata.normalize("NFC", html.unescape(text)).split())


def strongs_numbers(text: str) -> frozenset[str]:
    """The Strong's numbers of an OSIS verse's ``<w lemma="strong:…">`` outside notes (``H430``) (chapter 09)."""
    text = _NOTE.sub(" ", text)
    return frozenset(f"{kind}{number}" for lemma in _LEMMA.findall(text) for kind, number in _STRONG.findall(lemma))
