import matplotlib.pyplot as plt
import pytest
import torch

from course_lib.softmax import entropy_bits, show_softmax_temperature, softmax_with_temperature


def test_temperature_one_is_plain_softmax():
    logits = torch.tensor([2.0, 1.0, -1.0])
    assert torch.allclose(softmax_with_temperature(logits, 1.0), torch.softmax(logits, -1))


def test_higher_temperature_raises_entropy():
    logits = torch.tensor([5.0, 1.0, 0.5, -2.0])
    entropies = [entropy_bits(softmax_with_temperature(logits, t)).item() for t in (0.5, 1, 2, 5, 20)]
    assert entropies == sorted(entropies)
    assert entropies[-1] < 2.0 + 1e-6  # log2(4) is the ceiling


@pytest.mark.parametrize("bad", [0, -1.0, -0.1, True, "2"])
def test_bad_temperature(bad):
    with pytest.raises(ValueError, match="temperature must be a number > 0"):
        softmax_with_temperature(torch.zeros(3), bad)


def test_integer_logits_rejected():
    with pytest.raises(TypeError, match="floating point"):
        softmax_with_temperature(torch.tensor([1, 2]), 1.0)


def test_widget_callback_draws_bars():
    ax = show_softmax_temperature([3.0, 1.0, 0.2], 2.0, labels=["cat", "dog", "car"])
    assert len(ax.patches) == 3 and "T = 2" in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "car"]
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="3 labels for 2 logits"):
        show_softmax_temperature([1.0, 2.0], 1.0, labels=["a", "b", "c"])
