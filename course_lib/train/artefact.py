"""Reference models that ship with the course: fp16 weights and where they came from, checked on load (chapter 07).

A lecturer loads a pretrained model rather than training one for an hour in class; the course
does the same with the few models worth shipping (the strong MSRA teacher of chapter 07). Each
is two files in ``course_lib/artefacts/``::

    <name>.safetensors   the weights in float16 (half the bytes; the model computes in float32)
    <name>.subwords.json the subword vocabulary of a model that reads one (chapter 09's translator)
    <name>.json          provenance: architecture and its config, the vocabulary, the recipe, the
                         sha256 of the data, what was measured, the seconds and device it took,
                         the git commit and torch version it was trained with, and the sha256 of
                         the weights file

:func:`save_artefact` writes the weights first and the provenance last, each atomically, and
refuses to let the folder grow past :data:`MAX_TOTAL_BYTES`. :func:`load_artefact` checks the
weights against the sha256 in the provenance before it builds anything, so a half-updated or
edited pair is an error that says which command rebuilds it, never a silently different model.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from course_lib.data import CharVocab
from course_lib.data.subwords import SubwordVocab
from course_lib.files import atomic_path, sha256_file, write_bytes_atomic, write_json_atomic
from course_lib.train.checkpoint import state_dict_mismatches
from course_lib.train.recipe import Recipe

ARTEFACT_DIR = Path(__file__).resolve().parents[1] / "artefacts"
MAX_TOTAL_BYTES = 16 * 2**20
REBUILD_COMMAND = "make teachers"
Vocab = CharVocab | SubwordVocab
Build = Callable[[str, dict[str, Any], Vocab | None], nn.Module]


class ArtefactError(ValueError):
    """A shipped model that is missing or does not match its provenance; the message says what to run (chapter 07)."""


@dataclass
class Artefact:
    """A loaded reference model: in eval mode, float32, on the CPU, with its vocabulary and provenance (chapter 07)."""

    model: nn.Module
    vocab: Vocab | None
    provenance: dict[str, Any]
    path: Path


def git_commit(repo: Path = ARTEFACT_DIR.parents[1]) -> str:
    """The commit checked out in ``repo``, with ``-dirty`` when files differ from it; ``unknown`` outside git (chapter 07)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True)
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                                capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if status.stdout.strip() else "")


def _paths(name: str, folder: Path) -> tuple[Path, Path]:
    if not name or not name.replace("_", "").isalnum():
        raise ValueError(f"an artefact name is letters, digits and underscores, got {name!r}")
    return folder / f"{name}.safetensors", folder / f"{name}.json"


def _untied(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors of ``state`` stored once, and ``{alias: stored name}`` for every tensor shared with an earlier one."""
    kept: dict[str, torch.Tensor] = {}
    tied: dict[str, str] = {}
    first: dict[tuple[int, tuple[int, ...], tuple[int, ...]], str] = {}
    for key, value in state.items():
        where = (value.data_ptr(), tuple(value.shape), tuple(value.stride()))
        if value.numel() and where in first:
            tied[key] = first[where]
        else:
            first.setdefault(where, key)
            kept[key] = value
    return kept, tied


def _subwords_path(name: str, folder: Path) -> Path:
    return folder / f"{name}.subwords.json"


def save_artefact(
    name: str,
    model: nn.Module,
    *,
    architecture: str,
    config: Mapping[str, Any],
    vocab: Vocab | None,
    recipe: Recipe,
    data: Mapping[str, str],
    metrics: Mapping[str, Any],
    seconds: float,
    device: str,
    folder: Path = ARTEFACT_DIR,
) -> Path:
    """Write ``model`` as the artefact ``name``: fp16 weights, then its provenance; return the weights' path (chapter 07).

    ``architecture`` and ``config`` tell :func:`load_artefact`'s ``build`` what to construct;
    ``data`` maps each input (e.g. ``"msra"``) to its sha256; ``metrics`` is what was measured.
    A character vocabulary is kept in the provenance, a subword vocabulary in its own file; tied
    weights (one table shared by embeddings and output layer) are stored once.
    """
    weights_path, provenance_path = _paths(name, Path(folder))
    subwords_path = _subwords_path(name, Path(folder))
    subwords = vocab.to_json().encode("utf-8") if isinstance(vocab, SubwordVocab) else b""
    kept, tied = _untied(model.state_dict())
    tensors = {key: (value.detach().to(torch.float16) if value.is_floating_point() else value.detach()).cpu()
               .contiguous() for key, value in kept.items()}
    with atomic_path(weights_path) as temp:
        save_file(tensors, str(temp))
        others = sum(p.stat().st_size for p in Path(folder).glob("*") if p.is_file()
                     and p not in (weights_path, subwords_path) and not p.name.startswith("."))
        total = others + temp.stat().st_size + len(subwords)
        if total > MAX_TOTAL_BYTES:
            raise ArtefactError(f"{name} would bring the shipped artefacts to {total:,} bytes, "
                                f"over the {MAX_TOTAL_BYTES:,}-byte limit; make the model smaller")
    if subwords:
        write_bytes_atomic(subwords_path, subwords)
    provenance = {
        "name": name,
        "architecture": architecture,
        "config": dict(config),
        "vocab": vocab.tokens() if isinstance(vocab, CharVocab) else None,
        "subwords_sha256": sha256_file(subwords_path) if isinstance(vocab, SubwordVocab) else None,
        "tied": tied,
        "recipe": {"class": type(recipe).__name__, **recipe.to_dict()},
        "data_sha256": dict(data),
        "metrics": dict(metrics),
        "seconds": round(float(seconds), 1),
        "device": device,
        "commit": git_commit(),
        "torch": torch.__version__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "weights_sha256": sha256_file(weights_path),
        "rebuild": REBUILD_COMMAND,
    }
    write_json_atomic(provenance_path, provenance)
    return weights_path


def read_provenance(name: str, folder: Path = ARTEFACT_DIR) -> dict[str, Any]:
    """The provenance of the artefact ``name`` (chapter 07)."""
    _, provenance_path = _paths(name, Path(folder))
    if not provenance_path.is_file():
        raise ArtefactError(f"the artefact {name!r} has no provenance file {provenance_path}; run `{REBUILD_COMMAND}`")
    return json.loads(provenance_path.read_text(encoding="utf-8"))


def _vocab(name: str, folder: Path, provenance: dict[str, Any]) -> Vocab | None:
    """The artefact's vocabulary: characters from the provenance, or subwords from their file, checked."""
    if provenance.get("vocab") is not None:
        return CharVocab(provenance["vocab"])
    expected = provenance.get("subwords_sha256")
    if expected is None:
        return None
    path = _subwords_path(name, folder)
    if not path.is_file() or sha256_file(path) != expected:
        raise ArtefactError(f"the subword vocabulary of {name!r} ({path}) is missing or not the one its provenance "
                            f"records (sha256 {expected[:12]}…); restore it from git or run `{REBUILD_COMMAND}`")
    return SubwordVocab.load(path)


def load_artefact(name: str, build: Build, folder: Path = ARTEFACT_DIR) -> Artefact:
    """Check the artefact ``name`` against its provenance, build it with ``build`` and load its weights (chapter 07).

    ``build(architecture, config, vocab)`` constructs the untrained model. The weights' sha256 must
    be the one recorded; the tensors must fit the model exactly.
    """
    start = time.perf_counter()
    provenance = read_provenance(name, folder)
    weights_path, provenance_path = _paths(name, Path(folder))
    if not weights_path.is_file():
        raise ArtefactError(f"the weights of {name!r} ({weights_path}) are missing; run `{REBUILD_COMMAND}`")
    digest = sha256_file(weights_path)
    if digest != provenance.get("weights_sha256"):
        raise ArtefactError(f"{weights_path} has sha256 {digest[:12]}…, but {provenance_path.name} records "
                            f"{str(provenance.get('weights_sha256'))[:12]}…: the pair does not belong together; "
                            f"restore both files from git or run `{REBUILD_COMMAND}`")
    vocab = _vocab(name, Path(folder), provenance)
    model = build(provenance["architecture"], provenance["config"], vocab)
    tensors = load_file(str(weights_path))
    for alias, stored in provenance.get("tied", {}).items():  # tied weights (one embedding table) are stored once
        tensors[alias] = tensors[stored]
    problems = state_dict_mismatches({key: value.shape for key, value in tensors.items()}, model)
    if problems:
        raise ArtefactError(f"{weights_path} does not fit the {provenance['architecture']} built from its config: "
                            f"{'; '.join(problems[:3])}; run `{REBUILD_COMMAND}`")
    reference = model.state_dict()
    model.load_state_dict({key: value.to(reference[key].dtype) for key, value in tensors.items()})
    provenance["load_seconds"] = round(time.perf_counter() - start, 3)
    return Artefact(model=model.eval(), vocab=vocab, provenance=provenance, path=weights_path)
