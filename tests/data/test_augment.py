"""Tests for course_lib.data.augment: pixel jitter and jittered mini-batches."""

from __future__ import annotations

import time

import pytest
import torch

from course_lib.data import JitteredBatches, every_view, jitter, views_per_image


def centred_digits(n: int, seed: int = 0) -> torch.Tensor:
    """Random (n, 28, 28) images whose ink lies in the central 20x20 (4 px from every border)."""
    images = torch.zeros(n, 28, 28)
    images[:, 4:24, 4:24] = torch.rand(n, 20, 20, generator=torch.Generator().manual_seed(seed))
    return images


def dot_positions(shifted: torch.Tensor) -> list[tuple[int, int]]:
    """(row, col) of the single lit pixel of each image in ``shifted`` (N, 28, 28)."""
    flat = shifted.reshape(shifted.shape[0], -1).argmax(dim=1)
    return [(int(i) // 28, int(i) % 28) for i in flat]


def test_shift_zero_is_the_identity_and_returns_a_copy():
    images = centred_digits(5)
    out = jitter(images, max_shift=0)
    assert torch.equal(out, images)
    out[0, 10, 10] = 99.0
    assert images[0, 10, 10] != 99.0


@pytest.mark.parametrize("shape", [(6, 28, 28), (6, 1, 28, 28), (6, 784)])
def test_every_accepted_shape_comes_back_with_its_mass(shape):
    images = centred_digits(6).reshape(shape)
    out = jitter(images, max_shift=2, generator=torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == images.dtype
    torch.testing.assert_close(out.reshape(6, -1).sum(1), images.reshape(6, -1).sum(1))


def test_each_image_is_shifted_as_a_whole_by_at_most_max_shift():
    images = torch.zeros(200, 28, 28)
    images[:, 14, 14] = 1.0
    out = jitter(images, max_shift=3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out.sum(dim=(1, 2)), torch.ones(200))
    for row, col in dot_positions(out):
        assert abs(row - 14) <= 3 and abs(col - 14) <= 3
    # A shifted digit is the original moved by one (dx, dy): compare with torch.roll.
    digits = centred_digits(20)
    moved = jitter(digits, max_shift=2, generator=torch.Generator().manual_seed(2))
    for original, result in zip(digits, moved):
        assert any(
            torch.equal(torch.roll(original, shifts=(dy, dx), dims=(0, 1)), result)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
        )


def test_every_offset_is_reachable():
    images = torch.zeros(2000, 28, 28)
    images[:, 14, 14] = 1.0
    out = jitter(images, max_shift=2, generator=torch.Generator().manual_seed(0))
    offsets = {(col - 14, row - 14) for row, col in dot_positions(out)}
    assert offsets == {(dx, dy) for dx in range(-2, 3) for dy in range(-2, 3)}


def test_positive_dx_moves_right_and_positive_dy_moves_down_with_zero_fill():
    image = torch.zeros(1, 28, 28)
    image[0, 0, 0] = 1.0
    image[0, 27, 27] = 2.0
    seen = set()
    generator = torch.Generator().manual_seed(3)
    for _ in range(200):
        out = jitter(image, max_shift=1, generator=generator)[0]
        # Content entering from outside the frame is zero: nothing but the two dots is ever lit.
        assert set(out.unique().tolist()) <= {0.0, 1.0, 2.0}
        if out[1, 1] == 1.0:
            seen.add("right-down")
            assert out.sum() == 1.0  # the bottom-right dot left the frame
        if out[26, 26] == 2.0:
            seen.add("left-up")
    assert seen == {"right-down", "left-up"}


def test_a_seeded_generator_makes_jitter_reproducible():
    images = centred_digits(50)
    first = jitter(images, 2, generator=torch.Generator().manual_seed(7))
    again = jitter(images, 2, generator=torch.Generator().manual_seed(7))
    other = jitter(images, 2, generator=torch.Generator().manual_seed(8))
    assert torch.equal(first, again) and not torch.equal(first, other)


@pytest.mark.parametrize("shape", [(28, 28), (4, 100), (4, 3, 28, 28), (4,), (2, 1, 1, 28, 28)])
def test_wrong_shapes_are_rejected(shape):
    with pytest.raises(ValueError, match=r"jitter expects .*got shape"):
        jitter(torch.zeros(shape))


def test_bad_max_shift_and_non_tensors_are_rejected():
    images = torch.zeros(2, 28, 28)
    with pytest.raises(ValueError, match=r"max_shift \(pixels\) must be an int >= 0"):
        jitter(images, max_shift=-1)
    with pytest.raises(ValueError, match=r"max_shift \(pixels\) must be an int >= 0"):
        jitter(images, max_shift=1.5)
    with pytest.raises(TypeError, match="images must be a torch.Tensor"):
        jitter(images.numpy())


def test_jitter_of_all_60k_digits_is_vectorised_and_quick():
    images = torch.rand(60_000, 784)
    start = time.perf_counter()
    jitter(images, 2, generator=torch.Generator().manual_seed(0))
    assert time.perf_counter() - start < 5.0


def test_jittered_batches_cover_every_example_once_per_epoch():
    images = torch.arange(10, dtype=torch.float32)[:, None].repeat(1, 784)
    labels = torch.arange(10)
    batches = JitteredBatches(images, labels, batch_size=4, seed=0)
    assert len(batches) == 3
    epoch = list(batches)
    assert [len(y) for _, y in epoch] == [4, 4, 2]
    seen = torch.cat([y for _, y in epoch])
    assert sorted(seen.tolist()) == list(range(10)) and seen.tolist() != list(range(10))
    for x, y in epoch:
        assert torch.equal(x[:, 0], y.float())  # images stay paired with their labels
    second = torch.cat([y for _, y in batches])
    assert second.tolist() != seen.tolist(), "each epoch draws a new order"


def test_jittered_batches_with_index_name_each_example_by_its_position():
    images = torch.arange(10, dtype=torch.float32)[:, None].repeat(1, 784)
    labels = torch.arange(10) * 7
    batches = list(JitteredBatches(images, labels, batch_size=4, seed=3, with_index=True))
    assert all(len(batch) == 3 for batch in batches)
    for x, y, index in batches:
        assert torch.equal(y, labels[index]) and torch.equal(x[:, 0], index.float())
    assert sorted(torch.cat([index for *_, index in batches]).tolist()) == list(range(10))


def test_jittered_batches_jitter_and_repeat_with_the_seed():
    images = centred_digits(64).reshape(64, 784)
    labels = torch.zeros(64, dtype=torch.int64)

    def run(seed):
        return [x for x, _ in JitteredBatches(images, labels, 32, max_shift=2, seed=seed)]

    first, again, other = run(0), run(0), run(1)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))
    plain = next(iter(JitteredBatches(images, labels, 64, shuffle=False)))[0]
    assert torch.equal(plain, images)
    jittered = next(iter(JitteredBatches(images, labels, 64, max_shift=2, shuffle=False)))[0]
    assert not torch.equal(jittered, images)
    torch.testing.assert_close(jittered.sum(1), images.sum(1))


def test_jittered_batches_reject_bad_arguments():
    images, labels = torch.zeros(4, 784), torch.zeros(4, dtype=torch.int64)
    with pytest.raises(ValueError, match="same number of examples"):
        JitteredBatches(images, labels[:3], 2)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        JitteredBatches(images, labels, 0)
    with pytest.raises(ValueError, match="jitter expects"):
        JitteredBatches(torch.zeros(4, 10), labels, 2)
    with pytest.raises(ValueError, match="images is empty"):
        JitteredBatches(images[:0], labels[:0], 2)
    with pytest.raises(TypeError, match="must be torch tensors"):
        JitteredBatches(images.numpy(), labels, 2)


def test_every_view_serves_each_shift_of_each_image_once_under_its_view_number():
    images, labels = torch.rand(7, 28, 28), torch.arange(7)
    assert views_per_image(2) == 25 and views_per_image(0) == 1
    batches = list(every_view(images, labels, max_shift=2, batch_size=3))
    views = torch.cat([view for *_, view in batches])
    assert sorted(views.tolist()) == list(range(7 * 25))
    shifted = {int(v): image for batch_images, _, batch_views in batches for image, v in zip(batch_images, batch_views)}
    centre = 2 * 5 + 2  # dx = dy = 0
    torch.testing.assert_close(shifted[4 * 25 + centre], images[4])
    right = 2 * 5 + 3  # dx = +1, dy = 0: the content moves one pixel right
    torch.testing.assert_close(shifted[4 * 25 + right][:, 1:], images[4][:, :-1])


def test_jittered_batches_with_views_serve_the_same_digits_and_name_their_shift():
    images, labels = torch.rand(50, 784), torch.arange(50)
    plain = list(JitteredBatches(images, labels, 16, max_shift=2, seed=5))
    viewed = list(JitteredBatches(images, labels, 16, max_shift=2, seed=5, with_views=True))
    table = {int(v): image for batch_images, _, batch_views in every_view(images, labels, 2) for image, v in
             zip(batch_images, batch_views)}
    for (a, a_labels), (b, b_labels, views) in zip(plain, viewed):
        assert torch.equal(a, b) and torch.equal(a_labels, b_labels)
        assert torch.equal(views // 25, b_labels), "the view number starts with the example's position"
        torch.testing.assert_close(torch.stack([table[int(v)] for v in views]), b)
    with pytest.raises(ValueError, match="not both"):
        JitteredBatches(images, labels, 16, with_index=True, with_views=True)
