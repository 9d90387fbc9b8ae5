"""The teacher's side of distillation: frozen once, and its logits computed once (chapter 05).

:func:`frozen` is the one place a teacher is frozen: no parameter of it takes a gradient, and it
runs in eval mode (dropout off), so the student always chases the same targets.
:class:`TeacherLogitCache` runs a teacher once over a dataset and looks its logits up by each
example's dataset index — never by batch position, so a shuffled loader still gets the right row.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Mapping, Sequence
from os import PathLike
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from course_lib import checks
from course_lib.files import atomic_path
from course_lib.kd.losses import TopLogits, entropy_bits, softmax_with_temperature

Batch = Mapping[str, Tensor] | Sequence[Tensor]


def frozen(teacher: nn.Module) -> nn.Module:
    """``teacher`` with every parameter frozen (``requires_grad=False``) and in eval mode (chapter 05)."""
    if not isinstance(teacher, nn.Module):
        raise TypeError(f"teacher must be a torch.nn.Module, got {type(teacher).__name__}")
    return teacher.requires_grad_(False).eval()


def batch_fields(batch: Batch) -> Mapping[str, Tensor]:
    """A batch as a dict: dicts pass through; ``(inputs, labels[, index])`` tuples get those names (chapter 05)."""
    if isinstance(batch, Mapping):
        return batch
    if isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
        return dict(zip(("inputs", "labels", "index"), batch))
    raise TypeError(
        "a batch must be a dict (input_ids/mask/labels or inputs/labels, optionally index) or a tuple "
        f"(inputs, labels[, index]); got {type(batch).__name__}"
    )


def model_logits(model: nn.Module, batch: Batch) -> Tensor:
    """Logits of ``model`` on a batch: ``input_ids`` + ``mask`` (a token model) or ``inputs`` (a classifier) (chapter 05)."""
    fields = batch_fields(batch)
    if "input_ids" in fields:
        output = model(fields["input_ids"], mask=fields.get("mask"))
    elif "inputs" in fields:
        output = model(fields["inputs"])
    else:
        raise KeyError(f"the batch needs 'input_ids' (a token model) or 'inputs' (a classifier); it has {sorted(fields)}")
    return output.logits if hasattr(output, "logits") else output


@torch.no_grad()
def soft_target_profile(model: nn.Module, batches: Iterable[Batch], temperature: float,
                        forward: Callable[[nn.Module, Batch], Tensor] = model_logits,
                        top_k: int | None = None) -> dict[str, float]:
    """How much ``model``'s softened outputs say beyond its top answer, averaged over real positions (chapter 07).

    ``beyond_top`` is the mean probability at ``temperature`` on every class but the most likely
    one, ``entropy_bits`` the mean entropy of that distribution, ``positions`` how many were
    averaged (a token model's padding is left out). A teacher whose soft targets are one-hot
    (``beyond_top`` 0) passes on nothing that its top answer does not already say. With
    ``top_k``, ``top_k_mass`` is the mean probability on the ``top_k`` most likely classes and
    ``top_k_mass_p10`` its 10th percentile over positions: what a cache of the teacher's ``top_k``
    logits keeps (:class:`TeacherLogitCache`). ``forward(model, batch) -> logits`` adapts the model
    to the batches.
    """
    if top_k is not None:
        checks.positive_int("top_k", top_k)
    was_training = model.training
    model.eval()
    beyond, entropy, count, kept = 0.0, 0.0, 0, []
    for batch in batches:
        fields = batch_fields(batch)
        probabilities = softmax_with_temperature(forward(model, batch), temperature)
        if "mask" in fields:
            probabilities = probabilities[fields["mask"]]
        rows = probabilities.reshape(-1, probabilities.shape[-1])
        beyond += float((1 - rows.max(dim=-1).values).sum())
        entropy += float(entropy_bits(rows).sum())
        count += rows.shape[0]
        if top_k is not None:
            kept.append(rows.topk(min(top_k, rows.shape[-1]), dim=-1).values.sum(dim=-1))
    model.train(was_training)
    if count == 0:
        raise ValueError("batches held no position to average over")
    profile = {"beyond_top": beyond / count, "entropy_bits": entropy / count, "positions": count}
    if top_k is not None:
        mass = torch.cat(kept).double()
        profile |= {"top_k_mass": float(mass.mean()), "top_k_mass_p10": float(mass.quantile(0.1))}
    return profile


class TeacherLogitCache:
    """The teacher's logits for every example of a dataset, looked up by dataset index (chapter 05).

    Keyed by the index each batch carries (``batch["index"]``), never by batch position, so a
    shuffled loader gets the right row for every example. On disk (:meth:`save`, :meth:`load`)
    it is keyed by what made it — the teacher's file and the data — so every student of one
    teacher reuses the logits computed once per data split. Valid only while every example looks
    the same each epoch: with random augmentation the teacher must see the augmented input.

    A cache built with ``top_k`` keeps only each row's ``top_k`` largest logits (in half precision)
    and their class ids (``top_classes``): a translation teacher's logits over a 4,000-subword
    vocabulary at every target position of 28,000 verses would take gigabytes. :meth:`lookup`
    then gives every other class ``-inf``, so a softmax spreads the teacher's probability over
    its ``top_k`` classes only (renormalised) and the KL term leaves the rest out;
    :meth:`lookup_top` gives the kept logits and classes as they are, which the soft term reads
    without building those full rows (the :class:`~course_lib.kd.distiller.Distiller` uses it).
    """

    def __init__(self, logits: Tensor, top_classes: Tensor | None = None, num_classes: int | None = None) -> None:
        if not isinstance(logits, Tensor) or logits.dim() < 2:
            raise ValueError(f"logits must be a tensor (examples, ..., classes), got {getattr(logits, 'shape', logits)!r}")
        if top_classes is not None and (top_classes.shape != logits.shape or num_classes is None
                                        or num_classes < logits.shape[-1]):
            raise ValueError(f"top_classes must match the kept logits' shape {tuple(logits.shape)} and num_classes "
                             f"must count every class (at least {logits.shape[-1]}); got shape "
                             f"{tuple(top_classes.shape)} and num_classes={num_classes}")
        self.logits = logits.detach()
        self.top_classes = top_classes
        self.num_classes = logits.shape[-1] if top_classes is None else int(num_classes)

    def __len__(self) -> int:
        return self.logits.shape[0]

    @property
    def per_token(self) -> bool:
        """True when the cache holds one row of logits per token (examples, length, classes)."""
        return self.logits.dim() == 3

    @classmethod
    @torch.no_grad()
    def build(
        cls,
        teacher: nn.Module,
        batches: Iterable[Batch],
        forward: Callable[[nn.Module, Batch], Tensor] = model_logits,
        device: torch.device | str = "cpu",
        top_k: int | None = None,
    ) -> TeacherLogitCache:
        """Run the frozen ``teacher`` over ``batches`` once and store each row by ``batch["index"]``.

        With ``top_k``, only the ``top_k`` largest logits of each row and their classes are kept.
        """
        if top_k is not None:
            checks.positive_int("top_k", top_k)
        teacher = frozen(teacher)
        indices, kept, classes, num_classes = [], [], [], None
        for batch in map(batch_fields, batches):
            if "index" not in batch:
                raise KeyError("each batch needs an 'index' entry (the dataset index of every example)")
            moved = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}
            logits = forward(teacher, moved).detach().cpu()
            indices.append(torch.as_tensor(batch["index"]).reshape(-1).cpu())
            if top_k is None:
                kept.append(logits)
                continue
            num_classes = logits.shape[-1]
            if top_k > num_classes:
                raise ValueError(f"top_k={top_k} is more than the teacher's {num_classes} classes: pass at most that")
            values, top = logits.float().topk(top_k, dim=-1)
            kept.append(values.half())
            classes.append(top.to(torch.int16 if num_classes <= torch.iinfo(torch.int16).max else torch.int32))
        if not indices:
            raise ValueError("batches is empty: there is nothing to cache")
        index = torch.cat(indices).long()
        if index.min() < 0 or not torch.equal(torch.bincount(index), torch.ones(index.numel(), dtype=torch.long)):
            raise ValueError(f"the batches must cover dataset indices 0..{index.numel() - 1} exactly once each")
        logits = _in_dataset_order(kept, index)
        if top_k is None:
            return cls(logits)
        return cls(logits, _in_dataset_order(classes, index), num_classes)

    @classmethod
    def joined(cls, first: TeacherLogitCache, second: TeacherLogitCache) -> TeacherLogitCache:
        """``first``'s examples, then ``second``'s (indices ``len(first)`` onwards); token logits padded to the longer one."""
        same_kind = (first.top_classes is None) == (second.top_classes is None)
        if (first.logits.dim() != second.logits.dim() or first.logits.shape[-1] != second.logits.shape[-1]
                or first.num_classes != second.num_classes or not same_kind):
            raise ValueError(f"only caches of the same kind join: shapes {tuple(first.logits.shape)} and "
                             f"{tuple(second.logits.shape)}")
        logits = torch.cat(_padded([first.logits, second.logits]))
        if first.top_classes is None:
            return cls(logits)
        return cls(logits, torch.cat(_padded([first.top_classes, second.top_classes])), first.num_classes)

    def lookup(self, index: Tensor, width: int | None = None) -> Tensor:
        """The cached logits of the examples ``index`` (a 1-D tensor of dataset indices).

        Token logits are stored padded to the longest example; ``width`` cuts them to a batch's
        padded length. Positions past an example's own length hold zeros: losses leave them out
        through the batch's mask. A ``top_k`` cache gives full rows, ``-inf`` outside the kept classes.
        """
        logits = self._examples(self.logits, index, width)
        if self.top_classes is None:
            return logits
        top = self._examples(self.top_classes, index, width)
        full = torch.full((*logits.shape[:-1], self.num_classes), float("-inf"))
        return full.scatter_(-1, top.long(), logits.float())

    def lookup_top(self, index: Tensor, width: int | None = None) -> TopLogits:
        """A ``top_k`` cache's kept logits and their classes for the examples ``index``, cut like :meth:`lookup`.

        The soft term of :func:`~course_lib.kd.losses.distillation_terms` reads them as they are:
        no full row of ``-inf`` for every other class is built.
        """
        if self.top_classes is None:
            raise ValueError("this cache holds every class's logits: use lookup(), or build it with top_k")
        return TopLogits(self._examples(self.logits, index, width).float(),
                         self._examples(self.top_classes, index, width).long())

    def _examples(self, rows: Tensor, index: Tensor, width: int | None) -> Tensor:
        """``rows`` (one per example) of the dataset indices ``index``, token rows cut to ``width``."""
        index = torch.as_tensor(index, dtype=torch.long).cpu()
        if index.dim() != 1:
            raise ValueError(f"index must be 1-D (one dataset index per example), got shape {tuple(index.shape)}")
        if index.numel() and (index.min() < 0 or index.max() >= len(self)):
            raise IndexError(f"dataset index out of range: the cache holds {len(self)} examples, got {index.tolist()}")
        if width is None:
            return rows[index]
        if rows.dim() != 3 or width > rows.shape[1]:
            raise ValueError(f"width={width} needs token logits at least that long; the cache holds shape "
                             f"{tuple(self.logits.shape)}")
        return rows[index, :width]

    def save(self, path: str | PathLike[str], key: Mapping[str, str]) -> Path:
        """Write the logits and the ``key`` they belong to (e.g. teacher and data sha256) to ``path`` atomically."""
        saved = {"key": dict(key), "logits": self.logits}
        if self.top_classes is not None:
            saved |= {"top_classes": self.top_classes, "num_classes": self.num_classes}
        with atomic_path(path) as temp:
            torch.save(saved, temp)
        return Path(path)

    @classmethod
    def load(cls, path: str | PathLike[str], key: Mapping[str, str]) -> TeacherLogitCache | None:
        """The cache saved at ``path`` for exactly ``key``; None when there is none, it is unreadable or its key differs."""
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):
            return None
        if not isinstance(saved, dict) or saved.get("key") != dict(key):
            return None
        return cls(saved["logits"], saved.get("top_classes"), saved.get("num_classes"))


def _padded(parts: Sequence[Tensor]) -> list[Tensor]:
    """Token tensors (examples, length, k) padded with zeros to the longest length; other tensors as they are."""
    if parts[0].dim() != 3:
        return list(parts)
    width = max(part.shape[1] for part in parts)
    return [F.pad(part, (0, 0, 0, width - part.shape[1])) for part in parts]


def _in_dataset_order(parts: Sequence[Tensor], index: Tensor) -> Tensor:
    """The batches' rows ``parts`` (in batch order, dataset indices ``index``) joined and put in dataset order."""
    rows = torch.cat(_padded(parts))
    ordered = torch.empty_like(rows)
    ordered[index] = rows
    return ordered
