"""Tang poetry: the five-character regulated verse (五言律诗) of the Complete Tang Poems, offline-first.

The poems arrive in the npm package ``chinese-poetry@2.0.1`` (an 85 MB tarball, pinned by its
SHA-512 integrity) as ``package/dist/quantangshi/poet.tang.<N>.json``: 58 JSON lists of
``{"author", "paragraphs", "title", "id"}`` in traditional characters. The course keeps the
poems of exactly four couplets of two five-character lines (``白日依山盡，黃河入海流。``): 14,370
after removing repeated texts, in the files' order (``N`` ascending), split 12,934 / 718 / 718.

On first use the tarball is fetched into ``<cache>/npm/``, the verse is read out of it without
extracting anything to disk, written as ``<cache>/poetry/tang_pentasyllabic.json`` with its
sha256 beside it (``.sha256``), and the tarball is deleted again: the course keeps only the part
it uses, and later loads check the JSON against its recorded sha256.

:func:`is_regulated_pentasyllabic` is the format check that scores generated poems.
"""

from __future__ import annotations

import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from course_lib.data.cache import DataError, cache_dir, read_with_checksum, write_with_checksum
from course_lib.data.npm import NpmPackage, npm_tarball

POETRY_PACKAGE = NpmPackage(
    "chinese-poetry", "2.0.1",
    "sha512-KtYARvV7CWNtax0na9+Jn6PlhGgSoid7PWyDzXI4KsCEm2odZcqEQyval5koaLygZnM/EQ3lfJ//25K8p3uHNg==",
)
CACHE_NAME = "tang_pentasyllabic.json"
PUNCTUATION = "，。？！；：、「」『』（）《》 \t\n"
LINES, LINE_LENGTH = 8, 5
SPLIT_SEED = 0
HOLDOUT_DIVISOR = 20  # dev and test are each 1/20 (5%) of the poems, rounded down

_MEMBER = re.compile(r"package/dist/quantangshi/poet\.tang\.(\d+)\.json")
_CHAR = rf"[^{re.escape(PUNCTUATION)}\x00-\x7f]"  # a character: no punctuation, whitespace or ASCII
_LINE = re.compile(rf"{_CHAR}{{{LINE_LENGTH}}}")
_SOURCE_COUPLET = re.compile(rf"({_CHAR}{{{LINE_LENGTH}}})，({_CHAR}{{{LINE_LENGTH}}})[。？！]")
_VERSE = re.compile(rf"(?:{_CHAR}{{{LINE_LENGTH}}}，{_CHAR}{{{LINE_LENGTH}}}。){{{LINES // 2}}}")


@dataclass(frozen=True)
class Poem:
    """A five-character regulated verse: title, author and its 8 lines of 5 characters (no punctuation) (chapter 09)."""

    title: str
    author: str
    lines: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.title, str) or not isinstance(self.author, str):
            raise ValueError(
                f"title and author must be str, got {type(self.title).__name__} and {type(self.author).__name__}"
            )
        if isinstance(self.lines, str):
            raise ValueError("lines must be a sequence of 8 lines, not one string")
        lines = tuple(self.lines)
        if len(lines) != LINES:
            raise ValueError(f"a regulated verse has {LINES} lines, got {len(lines)}")
        bad = next((line for line in lines if not isinstance(line, str) or not _LINE.fullmatch(line)), None)
        if bad is not None:
            raise ValueError(
                f"every line must be {LINE_LENGTH} characters without punctuation, whitespace or ASCII, got {bad!r}"
            )
        object.__setattr__(self, "lines", lines)

    @property
    def text(self) -> str:
        """The poem as one string: "，" after the odd lines and "。" after the even ones.

        The source's "？" and "！" at the end of a couplet are rendered as "。", so every poem has
        the one format :func:`is_regulated_pentasyllabic` checks.
        """
        return "".join(line + ("，" if index % 2 == 0 else "。") for index, line in enumerate(self.lines))


@dataclass(frozen=True)
class PoetryCorpus:
    """A fixed train / dev / test split of the poems (see :func:`_split_poems`) (chapter 09)."""

    train: list[Poem]
    dev: list[Poem]
    test: list[Poem]

    def __repr__(self) -> str:
        return f"PoetryCorpus(train={len(self.train):,}, dev={len(self.dev):,}, test={len(self.test):,} poems)"


def is_regulated_pentasyllabic(text: str) -> bool:
    """True when ``text`` is exactly four couplets ``XXXXX，XXXXX。`` (X: no punctuation, whitespace or ASCII) (chapter 09).

    The format metric of generated poems: nothing may come before, between or after the couplets.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _VERSE.fullmatch(text) is not None


def _poem_from_entry(entry: object, where: str) -> Poem | None:
    """The entry as a :class:`Poem` when it is a five-character regulated verse, else None."""
    if not isinstance(entry, dict) or not isinstance(entry.get("paragraphs"), list):
        raise DataError(f"{where} is not a poem object with a list of paragraphs")
    paragraphs = entry["paragraphs"]
    if len(paragraphs) != LINES // 2:
        return None
    couplets = [_SOURCE_COUPLET.fullmatch(p) if isinstance(p, str) else None for p in paragraphs]
    if not all(couplets):
        return None
    try:
        return Poem(entry.get("title"), entry.get("author"), tuple(line for m in couplets for line in m.groups()))
    except ValueError as exc:
        raise DataError(f"{where}: {exc}") from exc


def _extract_pentasyllabic_verse(tarball: Path) -> list[Poem]:
    """The five-character regulated verse in a chinese-poetry tarball, repeated texts dropped.

    The ``poet.tang.<N>.json`` members are streamed out of the tar.gz (nothing is written to
    disk) and read in ascending ``N``; of poems with the same :attr:`Poem.text` the first is kept.
    """
    tarball = Path(tarball)
    files: dict[int, tuple[str, bytes]] = {}
    try:
        with tarfile.open(tarball, "r|gz") as archive:
            for info in archive:
                match = _MEMBER.fullmatch(info.name)
                if match and info.isfile():
                    files[int(match.group(1))] = (info.name, archive.extractfile(info).read())
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{tarball} is not a readable tar.gz ({exc}); delete it and run again") from exc
    if not files:
        raise DataError(f"{tarball} holds no package/dist/quantangshi/poet.tang.<N>.json: it is not chinese-poetry")
    poems: list[Poem] = []
    seen: set[str] = set()
    for number in sorted(files):
        name, raw = files[number]
        try:
            entries = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise DataError(f"{name} in {tarball.name} is not UTF-8 JSON ({exc})") from exc
        if not isinstance(entries, list):
            raise DataError(f"{name} in {tarball.name} must hold a list of poems, got {type(entries).__name__}")
        for index, entry in enumerate(entries):
            poem = _poem_from_entry(entry, f"{name}, poem {index}")
            if poem is not None and poem.text not in seen:
                seen.add(poem.text)
                poems.append(poem)
    return poems


def _split_poems(poems: Sequence[Poem]) -> PoetryCorpus:
    """Split with the fixed permutation ``numpy.random.default_rng(0).permutation(len(poems))``.

    The last 5% of the permutation (rounded down) is the test set, the 5% before it the dev set,
    the rest the training set; each split lists its poems in permutation order.
    """
    poems = list(poems)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(poems))
    held = len(poems) // HOLDOUT_DIVISOR
    cut = len(poems) - 2 * held
    train, dev, test = (order[:cut], order[cut : cut + held], order[cut + held :])
    return PoetryCorpus(*([poems[i] for i in indices] for indices in (train, dev, test)))


def _poetry_dir() -> Path:
    """Folder of the poetry corpus inside the cache."""
    return cache_dir() / "poetry"


def _to_json(poems: Sequence[Poem]) -> bytes:
    return json.dumps([[poem.title, poem.author, list(poem.lines)] for poem in poems], ensure_ascii=False).encode("utf-8")


def _from_json(payload: bytes, origin: Path) -> list[Poem]:
    try:
        rows = json.loads(payload.decode("utf-8"))
        if not isinstance(rows, list):
            raise ValueError(f"expected a list of [title, author, lines], got {type(rows).__name__}")
        return [Poem(*row) for row in rows]
    except (UnicodeDecodeError, ValueError, TypeError) as exc:
        raise DataError(f"{origin} cannot be read as the course's Tang poems ({exc}); delete it and run again") from exc


def load_tang_poems(directory: Path | None = None) -> PoetryCorpus:
    """Load the Tang five-character regulated verse, split into train / dev / test, fetching it on first use (chapter 09).

    ``directory`` replaces the cache folder ``<cache>/poetry``. Filling it fetches the 85 MB
    chinese-poetry tarball into the npm cache and deletes it once the JSON is written.
    """
    directory = Path(directory) if directory is not None else _poetry_dir()
    path = directory / CACHE_NAME
    if path.exists():
        return _split_poems(_from_json(read_with_checksum(path), path))
    tarball = npm_tarball(POETRY_PACKAGE)
    poems = _extract_pentasyllabic_verse(tarball)
    if not poems:
        raise DataError(f"{tarball} holds no five-character regulated verse: it is not the expected chinese-poetry")
    write_with_checksum(path, _to_json(poems))
    tarball.unlink(missing_ok=True)
    return _split_poems(poems)
