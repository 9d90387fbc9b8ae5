"""Interactive explorers: controls wired to a plain drawing function.

``explorer(draw, temperature=FloatSlider(...))`` calls ``draw(temperature=...)`` now and at every
change, and shows the returned figure inside the widget. The figure is rendered to PNG and stored
in the widget's own state, so the explorer behaves the same in JupyterLab, under papermill and
under nbval, and ``draw`` stays an ordinary function that tests and slides can call directly.
"""

from __future__ import annotations

import base64
import io
from typing import Any, Callable

import ipywidgets as widgets
import matplotlib.pyplot as plt
from matplotlib.figure import Figure


def _figure_of(drawn: Any) -> Figure:
    """The matplotlib Figure behind what a drawing function returned (Figure, Axes or array of Axes)."""
    if isinstance(drawn, Figure):
        return drawn
    if hasattr(drawn, "figure") and isinstance(drawn.figure, Figure):
        return drawn.figure
    if hasattr(drawn, "flat"):
        return _figure_of(next(iter(drawn.flat)))
    raise TypeError(
        f"a drawing function must return a matplotlib Figure or Axes, got {type(drawn).__name__}"
    )


def png_output(figure: Figure, dpi: int = 100) -> dict:
    """A Jupyter ``display_data`` output holding ``figure`` as PNG; the figure is closed (chapter 00)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return {"output_type": "display_data", "data": {"image/png": encoded, "text/plain": "<Figure>"}, "metadata": {}}


def explorer(draw: Callable[..., Any], **controls: widgets.ValueWidget) -> widgets.VBox:
    """Controls above a figure that ``draw(**values)`` redraws whenever a control changes (chapter 00)."""
    if not controls:
        raise ValueError("explorer needs at least one control, e.g. temperature=FloatSlider(...)")
    for name, control in controls.items():
        if not isinstance(control, widgets.ValueWidget):
            raise TypeError(f"control {name!r} must be an ipywidgets value widget, got {type(control).__name__}")
    output = widgets.Output()

    def render(_change: Any = None) -> None:
        values = {name: control.value for name, control in controls.items()}
        output.outputs = (png_output(_figure_of(draw(**values))),)

    for control in controls.values():
        control.observe(render, names="value")
    render()
    return widgets.VBox([*controls.values(), output])
