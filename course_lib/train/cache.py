"""The one model cache: a model is trained once, then loaded, and retrained only when what made it changed (chapter 04).

:func:`load_or_train` keys a cached checkpoint by the recipe's fingerprint and the sha256 of
everything it was made from (``depends_on``: the data file, a teacher's checkpoint). The key, the
metrics, the training seconds and the vocabulary are stored in the checkpoint's header beside the
weights; a later call with the same key loads the model in well under a second, and any other
key trains it again and replaces the file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_lib.context import check_mode
from course_lib.data import CharVocab, cache_dir
from course_lib.files import sha256_file
from course_lib.train.checkpoint import load_checkpoint, read_checkpoint_metadata, save_checkpoint
from course_lib.train.distributed import current_processes
from course_lib.train.fit import Trained
from course_lib.train.recipe import Recipe

Build = Callable[[CharVocab | None], nn.Module]


def model_path(name: str, mode: str) -> Path:
    """Where the cached model ``name`` of ``mode`` lives: ``<cache_dir()>/models/<name>_<mode>.safetensors`` (chapter 02)."""
    return cache_dir() / "models" / f"{name}_{check_mode(mode)}.safetensors"


def _cache_key(recipe: Recipe, depends_on: Mapping[str, Path | str]) -> dict[str, Any]:
    """The recipe's fingerprint and the sha256 of every file (or the given digest) it depends on (chapter 04)."""
    digests = {name: sha256_file(source) if isinstance(source, Path) else str(source)
               for name, source in sorted(depends_on.items())}
    return {"recipe": recipe.fingerprint(), "depends_on": digests}


def _load(path: Path, recipe: Recipe, key: dict[str, Any], build: Build, device: torch.device) -> Trained | None:
    """The cached model at ``path`` if its key is ``key`` and its weights fit ``build``'s model, else None."""
    if not path.is_file():
        return None
    try:
        metadata = read_checkpoint_metadata(path)
    except ValueError:  # not a course checkpoint, or a damaged one: train again and replace it
        return None
    if metadata.get("key") != key:
        return None
    vocab = CharVocab(metadata["vocab"]) if metadata.get("vocab") is not None else None
    model = build(vocab)
    try:
        load_checkpoint(path, model)
    except (TypeError, ValueError):
        return None
    return Trained(model=model.to(device).eval(), recipe=recipe, metrics=metadata["metrics"],
                   seconds=float(metadata["seconds"]), trained=False, path=path, vocab=vocab)


def load_or_train(
    path: Path,
    recipe: Recipe,
    *,
    build: Build,
    train: Callable[[nn.Module, CharVocab | None], Trained],
    vocab: Callable[[], CharVocab] | None = None,
    depends_on: Mapping[str, Path | str] | None = None,
    device: torch.device | str = "cpu",
) -> Trained:
    """Load the model cached at ``path`` for ``recipe`` and ``depends_on``, or train and cache it (chapter 02).

    ``build(vocab)`` makes a fresh, seeded model; ``train(model, vocab)`` trains it and returns a
    :class:`Trained` whose ``metrics`` are stored with the weights; ``vocab()`` makes the
    vocabulary of a text model (only when it must be trained: a loaded model reads it from the
    checkpoint). The returned model is in eval mode on ``device``.
    """
    device = torch.device(device)
    key = _cache_key(recipe, depends_on or {})
    cached = _load(path, recipe, key, build, device)
    if cached is not None:
        return cached
    words = vocab() if vocab is not None else None
    model = build(words)
    trained = train(model, words)
    metadata = {"key": key, "recipe": recipe.to_dict(), "metrics": trained.metrics,
                "seconds": round(trained.seconds, 3), "vocab": words.tokens() if words is not None else None}
    if current_processes(device).main:  # under torchrun every rank trains the same model; rank 0 writes it
        save_checkpoint(path, model, getattr(model, "config", {}), metadata=metadata)
    trained.model, trained.path, trained.vocab = model.to(device).eval(), path, words
    return trained
