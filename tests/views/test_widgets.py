import base64

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pytest

from course_lib.views.distillation import show_softmax_temperature
from course_lib.views.widgets import explorer, _figure_of


def test_explorer_draws_now_and_on_change():
    calls = []

    def draw(temperature):
        calls.append(temperature)
        return show_softmax_temperature([2.0, 1.0, 0.0], temperature)

    slider = widgets.FloatSlider(value=1.0, min=0.5, max=5.0)
    box = explorer(draw, temperature=slider)
    output = box.children[-1]
    assert calls == [1.0]
    first = output.outputs[0]["data"]["image/png"]
    assert base64.b64decode(first).startswith(b"\x89PNG")
    slider.value = 4.0
    assert calls == [1.0, 4.0]
    assert output.outputs[0]["data"]["image/png"] != first
    assert plt.get_fignums() == []


def test_explorer_rejects_bad_controls_and_drawings():
    with pytest.raises(ValueError, match="at least one control"):
        explorer(lambda: None)
    with pytest.raises(TypeError, match="control 't' must be an ipywidgets value widget"):
        explorer(lambda t: None, t=3)
    with pytest.raises(TypeError, match="must return a matplotlib Figure or Axes, got NoneType"):
        explorer(lambda t: None, t=widgets.IntSlider())


def test_figure_of_accepts_axes_arrays():
    fig, axes = plt.subplots(1, 2)
    assert _figure_of(axes) is fig and _figure_of(axes[0]) is fig and _figure_of(fig) is fig
    plt.close(fig)
