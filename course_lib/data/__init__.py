"""Real course data, offline-first: MNIST, MSRA NER and news sentiment from PyPI packages, Tang poetry from npm,
English→Spanish Bible verses from Debian."""

from course_lib.data.augment import JitteredBatches, every_view, jitter, views_per_image
from course_lib.data.batching import BUCKET_POOL, LengthBucketSampler, TransferBatches, bucketed_ner_loader, lm_batch
from course_lib.data.bible import (
    BIBLE_SOURCES,
    BibleCorpus,
    DebPackage,
    VersePair,
    align_pairs,
    fetch_deb,
    load_bible,
    recase_chapter_opening,
)
from course_lib.data.cache import CACHE_ENV, OFFLINE_ENV, DataError, cache_dir
from course_lib.data.inews import INEWS_LABELS, NewsCorpus, NewsItem, load_inews, news_sentences
from course_lib.data.mnist import MnistData, load_mnist, mnist_tensors, read_idx
from course_lib.data.msra import (
    ID2LABEL,
    IGNORE_INDEX,
    LABEL2ID,
    LABELS,
    CharVocab,
    NerCorpus,
    NerDataset,
    Sentence,
    collate_ner,
    extract_entities,
    load_msra,
    ner_loader,
    read_bio_file,
    split_official,
)
from course_lib.data.npm import NpmPackage, npm_tarball
from course_lib.data.poetry import Poem, PoetryCorpus, is_regulated_pentasyllabic, load_tang_poems
from course_lib.data.sword import clean_osis, read_module

__all__ = [
    "BUCKET_POOL", "LengthBucketSampler", "TransferBatches", "bucketed_ner_loader", "lm_batch",
    "CACHE_ENV", "OFFLINE_ENV", "DataError", "cache_dir",
    "MnistData", "load_mnist", "mnist_tensors", "read_idx",
    "JitteredBatches", "every_view", "jitter", "views_per_image",
    "ID2LABEL", "IGNORE_INDEX", "LABEL2ID", "LABELS", "CharVocab", "NerCorpus", "NerDataset",
    "Sentence", "collate_ner", "extract_entities", "load_msra", "ner_loader", "read_bio_file", "split_official",
    "INEWS_LABELS", "NewsCorpus", "NewsItem", "load_inews", "news_sentences",
    "NpmPackage", "npm_tarball",
    "Poem", "PoetryCorpus", "is_regulated_pentasyllabic", "load_tang_poems",
    "BIBLE_SOURCES", "BibleCorpus", "DebPackage", "VersePair", "align_pairs", "clean_osis", "fetch_deb", "load_bible",
    "read_module", "recase_chapter_opening",
]
