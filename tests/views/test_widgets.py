import base64

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pytest

from course_lib.views.distillation import show_softmax_temperature
from course_lib.views.widgets import STATIC_CAPTION, _figure_of, explorer, show_widget, static_outputs


def test_explorer_draws_now_and_on_change():
    calls, open_before = [], plt.get_fignums()

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
    assert plt.get_fignums() == open_before, "the explorer closes the figures it draws"


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


def test_static_outputs_copy_figures_and_html_but_not_controls_or_logs():
    box = explorer(lambda temperature: show_softmax_temperature([2.0, 1.0, 0.0], temperature),
                   temperature=widgets.FloatSlider(value=2.0))
    log = widgets.Output()
    log.outputs = ({"output_type": "stream", "name": "stdout", "text": "epoch 1"},)
    view = widgets.VBox([widgets.HBox([widgets.Button()]), widgets.HTML("<b>status</b>"), log, box])
    copies = static_outputs(view)
    assert [list(copy["data"]) for copy in copies] == [["text/html"], ["image/png", "text/plain"]]
    assert copies[1]["data"]["image/png"] == box.children[-1].outputs[0]["data"]["image/png"]


def test_show_widget_displays_the_live_view_then_its_static_copy(monkeypatch):
    shown = []
    monkeypatch.setattr("course_lib.views.widgets.display", lambda obj, **kwargs: shown.append((obj, kwargs)))
    box = explorer(lambda temperature: show_softmax_temperature([2.0, 1.0, 0.0], temperature),
                   temperature=widgets.FloatSlider(value=2.0))
    show_widget(box)
    assert shown[0][0] is box
    assert shown[1][0].data == STATIC_CAPTION
    assert shown[2] == ({"image/png": box.children[-1].outputs[0]["data"]["image/png"], "text/plain": "<Figure>"},
                        {"raw": True})


def test_show_widget_refuses_what_it_cannot_copy():
    with pytest.raises(ValueError, match="shows no figure or HTML yet"):
        show_widget(widgets.VBox([widgets.IntSlider()]))
    with pytest.raises(TypeError, match="needs an ipywidgets widget, got str"):
        show_widget("VBox(...)")
