"""A deployable model: one folder with the weights in safetensors and everything else in JSON (chapter 08).

A *bundle* is what a server or a colleague needs to answer requests without the course's
training code or data::

    ner_student/
        model.safetensors   the tensors of model.state_dict()
        config.json         task, architecture, vocabulary, label names, course version, metadata
        model.onnx          (optional) the ONNX export, see course_lib.serve.onnx
        model.int8.onnx     (optional) its dynamic int8 quantisation

:func:`save_bundle` writes the folder into a temporary sibling first and moves it into place,
so a reader never sees half a bundle. :func:`load_bundle` checks the JSON against the weights
before it builds anything and fails with a message that says what is wrong and what to do: an
unknown format or another course version, a missing or wrong-sized vocabulary, labels that
do not fit the classifier, tensors that do not fit the architecture.

Two tasks are supported: ``"ner"`` (a :class:`~course_lib.nn.transformer.TokenTagger` with its
character vocabulary and BIO labels) and ``"mnist"`` (an :class:`~course_lib.nn.mlp.MLP` with
the digit labels).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

import course_lib
from course_lib.train.checkpoint import state_dict_mismatches
from course_lib.data import LABELS, CharVocab
from course_lib.files import write_folder_atomic
from course_lib.nn.mlp import MLP, NUM_CLASSES, MLPConfig
from course_lib.nn.transformer import TokenTagger, TransformerConfig


BUNDLE_FORMAT = "course_lib.deploy"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
TASKS = {"ner": "TokenTagger", "mnist": "MLP"}
DIGIT_LABELS = tuple(str(digit) for digit in range(NUM_CLASSES))


class BundleError(ValueError):
    """A bundle folder that cannot be loaded: the message says what is wrong and what to do (chapter 08)."""


@dataclass
class Bundle:
    """A loaded bundle: the model in eval mode on the CPU and what it needs to answer requests (chapter 08)."""

    folder: Path
    task: str
    model: nn.Module
    labels: list[str]
    vocab: CharVocab | None
    config: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def max_len(self) -> int | None:
        """The longest input a tagger takes in one pass (None for the MNIST network)."""
        return self.model.config.max_len if self.task == "ner" else None


def _task_of(model: nn.Module) -> str:
    if isinstance(model, TokenTagger):
        return "ner"
    if isinstance(model, MLP):
        return "mnist"
    raise TypeError(
        f"save_bundle takes a TokenTagger (task 'ner') or an MLP (task 'mnist'), got {type(model).__name__}"
    )


def _semver_pair(version: str) -> tuple[str, str]:
    parts = str(version).split(".")
    return (parts[0], parts[1] if len(parts) > 1 else "0")


def _checked_labels(model: nn.Module, task: str, vocab: CharVocab | None, labels: Sequence[str] | None,
                    metadata: dict[str, Any] | None) -> list[str]:
    """The label names of a bundle about to be saved, after every argument of :func:`save_bundle` is checked."""
    if labels is None:
        labels = LABELS if task == "ner" else DIGIT_LABELS
    labels = [str(label) for label in labels]
    classes = model.num_labels if task == "ner" else NUM_CLASSES
    if len(labels) != classes:
        raise ValueError(f"labels has {len(labels)} names but the model predicts {classes} classes")
    if task == "ner":
        if not isinstance(vocab, CharVocab):
            raise TypeError(
                "a TokenTagger bundle needs its character vocabulary: pass vocab=<the CharVocab it was trained with>"
            )
        if len(vocab) != model.config.vocab_size:
            raise ValueError(
                f"vocab has {len(vocab)} tokens but the model's embedding has vocab_size={model.config.vocab_size}; "
                "pass the vocabulary the model was trained with"
            )
    elif vocab is not None:
        raise ValueError("an MNIST network reads pixels, not characters: leave vocab out")
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict or None, got {type(metadata).__name__}")
    return labels


def save_bundle(
    folder: str | PathLike[str],
    model: nn.Module,
    *,
    vocab: CharVocab | None = None,
    labels: Sequence[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` as a bundle folder (weights + ``config.json``) and return the folder (chapter 08).

    A :class:`TokenTagger` needs its ``vocab``; ``labels`` default to the MSRA BIO labels for a
    tagger and to the ten digits for an MLP. An existing bundle at ``folder`` is replaced as a
    whole (its ONNX files too, since they belong to the old weights).
    """
    task = _task_of(model)
    labels = _checked_labels(model, task, vocab, labels, metadata)
    tensors = {name: tensor.detach().to("cpu").contiguous().clone() for name, tensor in model.state_dict().items()}
    config = {
        "format": BUNDLE_FORMAT,
        "format_version": FORMAT_VERSION,
        "course_lib_version": course_lib.__version__,
        "torch_version": torch.__version__,
        "task": task,
        "architecture": {"class": TASKS[task], "config": model.config.to_dict()},
        "labels": labels,
        "vocabulary": vocab.tokens() if task == "ner" else None,
        "tensors": {name: list(tensor.shape) for name, tensor in tensors.items()},
        "metadata": metadata or {},
    }
    try:
        text = json.dumps(config, ensure_ascii=False, indent=1)
    except (TypeError, ValueError) as error:
        raise TypeError(f"metadata must be JSON-serialisable (numbers, strings, lists, dicts): {error}") from error

    def fill(staging: Path) -> None:
        save_file(tensors, str(staging / WEIGHTS_FILE))
        (staging / CONFIG_FILE).write_text(text + "\n", encoding="utf-8")

    return write_folder_atomic(folder, fill)


def _read_config(folder: Path) -> dict[str, Any]:
    """The bundle's ``config.json`` if the folder is complete and the JSON was written by this format and version."""
    config_path = folder / CONFIG_FILE
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no bundle folder at {folder}; write one with course_lib.serve.bundle.save_bundle(folder, model, vocab=...) "
            "(chapter 08 does)"
        )
    for needed in (config_path, folder / WEIGHTS_FILE):
        if not needed.is_file():
            raise FileNotFoundError(
                f"{folder} is not a complete bundle: {needed.name} is missing; save it again with save_bundle"
            )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"{config_path} is not valid JSON ({error}); save the bundle again") from error
    if not isinstance(config, dict) or config.get("format") != BUNDLE_FORMAT:
        found = config.get("format") if isinstance(config, dict) else None
        raise BundleError(
            f"{config_path} was not written by course_lib.serve.bundle.save_bundle (its format is {found!r}, "
            f"not {BUNDLE_FORMAT!r})"
        )
    if config.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{folder} uses bundle format version {config.get('format_version')!r}, this course_lib "
            f"({course_lib.__version__}) reads version {FORMAT_VERSION}; save the model again with this version"
        )
    saved_version = str(config.get("course_lib_version"))
    if _semver_pair(saved_version) != _semver_pair(course_lib.__version__):
        raise BundleError(
            f"{folder} was saved by course_lib {saved_version}, this is course_lib {course_lib.__version__}: "
            "models may differ between versions, so load it with the version that saved it or save it again"
        )
    return config


def _check_vocabulary(config: dict[str, Any], config_path: Path) -> None:
    """A tagger bundle's vocabulary: present, as long as the embedding, starting with ``<pad>``, ``<unk>``."""
    vocabulary = config.get("vocabulary")
    if not isinstance(vocabulary, list) or not vocabulary:
        raise BundleError(
            f"{config_path} has no vocabulary: a tagger cannot read text without the characters it was "
            "trained on; save the bundle again with save_bundle(folder, model, vocab=...)"
        )
    vocab_size = config["architecture"]["config"].get("vocab_size")
    if len(vocabulary) != vocab_size:
        raise BundleError(
            f"{config_path}: the vocabulary has {len(vocabulary)} tokens but the architecture's "
            f"vocab_size is {vocab_size}; the two files come from different models"
        )
    if vocabulary[:2] != [CharVocab.PAD, CharVocab.UNK] or len(set(vocabulary)) != len(vocabulary):
        raise BundleError(f"{config_path}: the vocabulary must start with <pad>, <unk> and hold unique tokens")


def read_bundle_config(folder: str | PathLike[str]) -> dict[str, Any]:
    """Read and check a bundle's ``config.json`` (format, version, task, vocabulary, labels) (chapter 08).

    Raises :class:`FileNotFoundError` when the folder or a file is missing and
    :class:`BundleError` when the JSON is unreadable or inconsistent.
    """
    folder = Path(folder)
    config_path = folder / CONFIG_FILE
    config = _read_config(folder)
    task = config.get("task")
    if task not in TASKS:
        raise BundleError(f"{config_path} names task {task!r}; known tasks are {sorted(TASKS)}")
    architecture = config.get("architecture")
    if not isinstance(architecture, dict) or architecture.get("class") != TASKS[task]:
        found = architecture.get("class") if isinstance(architecture, dict) else architecture
        raise BundleError(f"{config_path}: a {task!r} bundle holds a {TASKS[task]}, but its architecture is {found!r}")
    if not isinstance(architecture.get("config"), dict):
        raise BundleError(f"{config_path} has no architecture config; save the bundle again")
    labels = config.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(label, str) for label in labels):
        raise BundleError(f"{config_path} has no list of label names; save the bundle again")
    if task == "mnist" and len(labels) != NUM_CLASSES:
        raise BundleError(f"{config_path}: an MNIST network has {NUM_CLASSES} outputs, the bundle names {len(labels)} labels")
    if task == "ner":
        _check_vocabulary(config, config_path)
    return config


def _build_model(task: str, config: dict[str, Any], num_labels: int, where: Path) -> nn.Module:
    try:
        if task == "ner":
            return TokenTagger(TransformerConfig.from_dict(config["architecture"]["config"]), num_labels)
        return MLP(MLPConfig.from_dict(config["architecture"]["config"]))
    except (TypeError, ValueError) as error:
        raise BundleError(f"{where / CONFIG_FILE}: the architecture config cannot build a model: {error}") from error


def load_bundle(folder: str | PathLike[str]) -> Bundle:
    """Load a bundle written by :func:`save_bundle`: the model in eval mode on the CPU, labels, vocabulary (chapter 08).

    Every check of :func:`read_bundle_config` runs first; then the weights file must hold exactly
    the tensors the architecture needs, with the same shapes, or a :class:`BundleError` lists the
    differences. Nothing is half-loaded.
    """
    folder = Path(folder)
    config = read_bundle_config(folder)
    task = config["task"]
    model = _build_model(task, config, len(config["labels"]), folder)
    weights_path = folder / WEIGHTS_FILE
    try:
        with safe_open(str(weights_path), framework="pt") as handle:
            shapes = {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}
    except SafetensorError as error:
        raise BundleError(f"{weights_path} is not a readable safetensors file (truncated?): {error}") from error
    problems = state_dict_mismatches(shapes, model)
    if problems:
        raise BundleError(
            f"the weights in {weights_path} do not fit the architecture in {CONFIG_FILE}: " + "; ".join(problems)
            + "; the two files come from different models, save the bundle again"
        )
    model.load_state_dict(load_file(str(weights_path), device="cpu"))
    model.eval()
    vocab = CharVocab(config["vocabulary"][2:]) if task == "ner" else None
    return Bundle(
        folder=folder,
        task=task,
        model=model,
        labels=list(config["labels"]),
        vocab=vocab,
        config=config,
        metadata=dict(config.get("metadata") or {}),
    )
