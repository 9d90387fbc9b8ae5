"""Jitter augmentation for MNIST: shift each digit by a few pixels, as in Hinton et al. 2015.

The teacher of the paper's MNIST experiment saw its training digits "jittered by up to two
pixels in any direction": every image is moved by a random integer offset (dx, dy), each in
``[-max_shift, max_shift]``, and the pixels that move in from outside the frame are zero
(background). A network trained on such images cannot memorise exact pixel positions, which is
worth a large share of the teacher's advantage over a plain student.

:func:`jitter` shifts a whole batch at once with one gather from a zero-padded copy (no Python
loop over images), so it costs little next to a training step. :class:`JitteredBatches` serves
shuffled, freshly jittered mini-batches epoch after epoch from tensors already in memory; a
distillation loss that hands the same batch to teacher and student gives both the very same
shifted digits (the "consistent" teacher of Beyer et al. 2022).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor

from course_lib import checks

_SIDE = 28  # a flattened (N, 784) batch holds 28x28 MNIST images


def _as_image_stack(images: Tensor) -> Tensor:
    """View ``images`` as (N, H, W), or raise a ValueError naming the accepted shapes."""
    accepted = "(N, H, W), (N, 1, H, W) or flattened (N, 784) 28x28 images"
    if images.ndim == 3:
        return images
    if images.ndim == 4 and images.shape[1] == 1:
        return images[:, 0]
    if images.ndim == 2 and images.shape[1] == _SIDE * _SIDE:
        return images.reshape(images.shape[0], _SIDE, _SIDE)
    raise ValueError(f"jitter expects {accepted}, got shape {tuple(images.shape)}")


def views_per_image(max_shift: int) -> int:
    """How many different jittered versions of one image shifts of up to ``max_shift`` pixels make: (2·max_shift + 1)² (chapter 06)."""
    max_shift = checks.int_at_least("max_shift (pixels)", max_shift, 0)
    return (2 * max_shift + 1) ** 2


def _view_codes(offsets: Tensor, max_shift: int) -> Tensor:
    """Each (dx, dy) offset as one number in ``[0, views_per_image)``: (dy + m)·(2m + 1) + (dx + m)."""
    return (offsets[:, 1] + max_shift) * (2 * max_shift + 1) + (offsets[:, 0] + max_shift)


def _shift(stack: Tensor, offsets: Tensor, max_shift: int) -> Tensor:
    """Move each image of ``stack`` (N, H, W) by its (dx, dy) row of ``offsets``, zero fill."""
    n, height, width = stack.shape
    padded = torch.nn.functional.pad(stack, (max_shift, max_shift, max_shift, max_shift))
    # out[y, x] = image[y - dy, x - dx] = padded[y - dy + max_shift, x - dx + max_shift]
    rows = torch.arange(height, device=stack.device) + (max_shift - offsets[:, 1:2])
    cols = torch.arange(width, device=stack.device) + (max_shift - offsets[:, 0:1])
    batch = torch.arange(n, device=stack.device)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]]


def _random_offsets(n: int, max_shift: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
    offsets = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator,
                            device=generator.device if generator is not None else device)
    return offsets.to(device)


def jitter(images: Tensor, max_shift: int = 2, generator: torch.Generator | None = None) -> Tensor:
    """Shift each image by its own random integer (dx, dy) in ``[-max_shift, max_shift]``, zero fill (chapter 06).

    ``images`` is (N, H, W), (N, 1, H, W) or flattened (N, 784) (28x28); the result has the same
    shape, dtype and device and is a new tensor. A positive dx moves the content right, a positive
    dy moves it down. ``generator`` (on the CPU or on the images' device) makes the shifts
    reproducible; without it the global PyTorch generator is used.
    """
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    max_shift = checks.int_at_least("max_shift (pixels)", max_shift, 0)
    stack = _as_image_stack(images)
    if max_shift == 0:
        return images.clone()
    offsets = _random_offsets(stack.shape[0], max_shift, generator, images.device)
    return _shift(stack, offsets, max_shift).reshape(images.shape)


def every_view(images: Tensor, labels: Tensor, max_shift: int, batch_size: int = 1000) -> Iterator[tuple[Tensor, ...]]:
    """Every jittered version of every image once, as batches ``(images, labels, view)`` (chapter 06).

    A shift of up to ``max_shift`` pixels makes only :func:`views_per_image` versions of a digit
    (25 for 2 px), so a frozen teacher can be run on all of them once and its logits looked up
    by ``view`` = image index · views_per_image + offset code — the number
    :class:`JitteredBatches` with ``with_views`` gives each example it serves.
    """
    stack = _as_image_stack(images)
    count = views_per_image(max_shift)
    span = torch.arange(-max_shift, max_shift + 1, device=images.device)
    grid = torch.stack([span.repeat(len(span)), span.repeat_interleave(len(span))], dim=1)  # (dx, dy), dy-major
    for code in range(count):
        for start in range(0, stack.shape[0], batch_size):
            part = stack[start : start + batch_size]
            offsets = grid[code].expand(part.shape[0], 2)
            index = torch.arange(start, start + part.shape[0], device=images.device)
            yield (_shift(part, offsets, max_shift).reshape(part.shape[0], *images.shape[1:]),
                   labels[start : start + part.shape[0]], index * count + code)


class JitteredBatches:
    """Mini-batches ``(images, labels)`` of in-memory tensors, shuffled and jittered afresh each epoch (chapter 06).

    Each ``iter()`` is one epoch: a new permutation (when ``shuffle``) and new shifts of up to
    ``max_shift`` pixels (0: no jitter), all drawn from one generator seeded with ``seed``, so a
    training run repeats exactly while its epochs differ. The last batch may be smaller.
    Batches stay on the tensors' device; put the tensors on the GPU once to train there.
    With ``with_index`` each batch is ``(images, labels, index)``, ``index`` holding the
    examples' positions in ``images`` (what a teacher-logit cache is keyed by); with
    ``with_views`` the third entry is instead each example's view number (its position ·
    :func:`views_per_image` + the code of its shift), the key of a cache built by
    :func:`every_view`. Either way the shifts drawn are the same, so a run repeats exactly.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        batch_size: int,
        *,
        max_shift: int = 0,
        shuffle: bool = True,
        seed: int = 0,
        with_index: bool = False,
        with_views: bool = False,
    ) -> None:
        if not isinstance(images, Tensor) or not isinstance(labels, Tensor):
            raise TypeError(
                "images and labels must be torch tensors (see course_lib.data.mnist_tensors), got "
                f"{type(images).__name__} and {type(labels).__name__}"
            )
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"images and labels must hold the same number of examples, got {images.shape[0]} "
                f"images and {labels.shape[0]} labels"
            )
        if images.shape[0] == 0:
            raise ValueError("images is empty: there is nothing to batch")
        _as_image_stack(images)
        self.images = images
        self.labels = labels
        self.batch_size = checks.positive_int("batch_size", batch_size)
        self.max_shift = checks.int_at_least("max_shift (pixels)", max_shift, 0)
        self.shuffle = bool(shuffle)
        self.with_index = bool(with_index)
        self.with_views = bool(with_views)
        if self.with_index and self.with_views:
            raise ValueError("choose with_index (keyed by example) or with_views (keyed by jittered view), not both")
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(self.images.shape[0] / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        n = self.images.shape[0]
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator).to(self.images.device)
        else:
            order = torch.arange(n, device=self.images.device)
        for start in range(0, n, self.batch_size):
            index = order[start : start + self.batch_size]
            images, labels = self.images[index], self.labels[index]
            if not self.max_shift:
                view = index
            else:
                stack = _as_image_stack(images)
                offsets = _random_offsets(stack.shape[0], self.max_shift, self.generator, images.device)
                images = _shift(stack, offsets, self.max_shift).reshape(images.shape)
                view = index * views_per_image(self.max_shift) + _view_codes(offsets, self.max_shift)
            if self.with_views:
                yield images, labels, view
            elif self.with_index:
                yield images, labels, index
            else:
                yield images, labels
