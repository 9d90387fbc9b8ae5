"""Saving and loading model weights as a single, self-describing safetensors file.

A checkpoint is one ``.safetensors`` file: the tensors of ``model.state_dict()`` plus, in the
file's header metadata, the model's config (so the model can be rebuilt), the model class
name, free-form metadata (epoch, dev score, ...) and the course_lib/torch versions. The file
is written to a temporary file in the same folder and moved into place with ``os.replace``,
so an interrupted save never leaves a half-written checkpoint behind. Chapter 04 introduces
it; chapter 08 uses it for deployment.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

import course_lib
from course_lib.files import atomic_path

_FORMAT = "course_lib.checkpoint/1"
_SHOWN = 5  # how many offending tensor names an error message lists


def _config_to_dict(config: Any) -> dict[str, Any]:
    """Turn a config (dict, object with ``to_dict()`` or dataclass) into a plain dict."""
    if isinstance(config, dict):
        return dict(config)
    if callable(getattr(config, "to_dict", None)):
        return config.to_dict()
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    raise TypeError(
        "config must be a dict, a dataclass or an object with to_dict(), "
        f"got {type(config).__name__}"
    )


def _to_json(name: str, value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{name} must be JSON-serialisable (numbers, strings, lists, dicts): {error}"
        ) from error


def save_checkpoint(
    path: str | PathLike[str],
    model: nn.Module,
    config: Any,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``model``'s weights, ``config`` and ``metadata`` atomically to ``path``; return the path (chapter 04).

    ``config`` is a dict, a dataclass or an object with ``to_dict()`` (e.g. a
    ``TransformerConfig``); it is what ``read_checkpoint_config`` gives back. Missing parent
    folders are created.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict or None, got {type(metadata).__name__}")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"path {path} is a folder; give a file name such as {path / 'model.safetensors'}")
    header = {
        "format": _FORMAT,
        "model_class": type(model).__name__,
        "config": _to_json("config", _config_to_dict(config)),
        "metadata": _to_json("metadata", metadata or {}),
        "course_lib_version": course_lib.__version__,
        "torch_version": torch.__version__,
    }
    # safetensors refuses tensors that share memory (tied weights); store a copy of each
    # repeated one, load_state_dict writes the same values back into the shared parameter.
    tensors: dict[str, Tensor] = {}
    seen_storages: set[int] = set()
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().to("cpu").contiguous()
        pointer = tensor.untyped_storage().data_ptr()
        if pointer in seen_storages:
            tensor = tensor.clone()
        seen_storages.add(pointer)
        tensors[name] = tensor

    with atomic_path(path) as temp:
        save_file(tensors, str(temp), metadata=header)
    return path


def _read_header(path: str | PathLike[str]) -> dict[str, Any]:
    """Read and decode the course_lib header of a checkpoint, with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint file at {path}"
            + (" (that is a folder)" if path.is_dir() else "")
            + "; create one with course_lib.train.checkpoint.save_checkpoint(path, model, config) "
            "or train(..., checkpoint_path=path)"
        )
    try:
        with safe_open(str(path), framework="pt") as file:
            raw = file.metadata() or {}
    except SafetensorError as error:
        raise ValueError(
            f"{path} is not a readable safetensors file (truncated or corrupted?): {error}"
        ) from error
    if raw.get("format") != _FORMAT:
        raise ValueError(
            f"{path} is a safetensors file but was not written by "
            "course_lib.train.checkpoint.save_checkpoint (its header has no course_lib information)"
        )
    return {
        "model_class": raw["model_class"],
        "config": json.loads(raw["config"]),
        "metadata": json.loads(raw["metadata"]),
        "course_lib_version": raw["course_lib_version"],
        "torch_version": raw["torch_version"],
    }


def read_checkpoint_config(path: str | PathLike[str]) -> dict[str, Any]:
    """Return the config saved with a checkpoint, to rebuild the model before loading it (chapter 04).

    Example: ``TokenTagger(TransformerConfig.from_dict(read_checkpoint_config(path)))``.
    """
    return _read_header(path)["config"]


def read_checkpoint_metadata(path: str | PathLike[str]) -> dict[str, Any]:
    """Return the free-form metadata saved with a checkpoint (epoch, scores, a cache key …) (chapter 04)."""
    return _read_header(path)["metadata"]


def _config_differences(saved: dict[str, Any], model: nn.Module) -> list[str]:
    """Describe the config fields in which ``model`` differs from the saved config."""
    current = getattr(model, "config", None)
    if current is None:
        return []
    try:
        current = _config_to_dict(current)
    except TypeError:
        return []
    return [
        f"{key}={saved[key]!r}, this model has {key}={current[key]!r}"
        for key in sorted(saved.keys() & current.keys())
        if saved[key] != current[key]
    ]


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" (and {len(names) - _SHOWN} more)" if len(names) > _SHOWN else "")


def state_dict_mismatches(saved_shapes: Mapping[str, Sequence[int]], model: nn.Module) -> list[str]:
    """Describe how saved tensor shapes fail to fit ``model``: shape differences, missing and extra names (chapter 04).

    An empty list means every tensor of ``model.state_dict()`` is there with the right shape.
    """
    expected = model.state_dict()
    saved = {name: tuple(shape) for name, shape in saved_shapes.items()}
    missing = [name for name in expected if name not in saved]
    unexpected = [name for name in saved if name not in expected]
    mismatched = [
        f"{name}: checkpoint {saved[name]} vs model {tuple(expected[name].shape)}"
        for name in expected
        if name in saved and saved[name] != tuple(expected[name].shape)
    ]
    problems = []
    if mismatched:
        problems.append(f"{len(mismatched)} tensor(s) differ in shape: {_listing(mismatched)}")
    if missing:
        problems.append(f"missing from the checkpoint: {_listing(missing)}")
    if unexpected:
        problems.append(f"not in this model: {_listing(unexpected)}")
    return problems


def load_checkpoint(path: str | PathLike[str], model: nn.Module) -> dict[str, Any]:
    """Load the weights saved at ``path`` into ``model`` and return the checkpoint's information (chapter 04).

    The returned dict has ``model_class``, ``config``, ``metadata``, ``course_lib_version``
    and ``torch_version``. The model must be of the same class and architecture as the saved
    one; otherwise a ``TypeError``/``ValueError`` names the class, the missing, unexpected or
    differently shaped tensors and the config fields that differ. Nothing is loaded then.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    info = _read_header(path)
    if info["model_class"] != type(model).__name__:
        raise TypeError(
            f"checkpoint {path} holds a {info['model_class']}, but the model given is a "
            f"{type(model).__name__}; build a {info['model_class']} from "
            "read_checkpoint_config(path) and load into that"
        )
    saved = load_file(str(path), device="cpu")
    problems = state_dict_mismatches({name: tuple(t.shape) for name, t in saved.items()}, model)
    if problems:
        differences = _config_differences(info["config"], model)
        hint = (
            "; the checkpoint was saved from a model with " + "; ".join(differences)
            if differences
            else "; build the model from read_checkpoint_config(path) so the shapes match"
        )
        raise ValueError(
            f"checkpoint {path} does not fit this {type(model).__name__}: "
            + "; ".join(problems)
            + hint
        )
    model.load_state_dict(saved)
    return info
