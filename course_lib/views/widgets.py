"""Interactive explorers: controls wired to a plain drawing function.

``explorer(draw, temperature=FloatSlider(...))`` calls ``draw(temperature=...)`` now and at every
change, and shows the returned figure inside the widget. The figure is rendered to PNG and stored
in the widget's own state, so the explorer behaves the same in JupyterLab, under papermill and
under nbval, and ``draw`` stays an ordinary function that tests and slides can call directly.

``show_widget(view)`` displays a widget and, under it, a static copy of what it shows (its figures and
HTML at the current setting): a notebook read without a kernel (GitHub, nbviewer, the HTML build)
cannot draw widgets, and would otherwise show only ``VBox(...)``.
"""

from __future__ import annotations

import base64
import io
from typing import Any, Callable

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import HTML, Markdown, display
from matplotlib.figure import Figure

STATIC_CAPTION = "*Static copy of the view above at its current setting, for reading without a running kernel:*"


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


def static_outputs(view: widgets.Widget) -> list[dict]:
    """The figures and HTML that ``view`` and the widgets inside it show now, as Jupyter outputs (chapter 00).

    Output widgets contribute their display outputs (figures, tables; not text streams such as a log),
    HTML widgets their markup; controls contribute nothing.
    """
    if isinstance(view, widgets.Output):
        return [dict(output) for output in view.outputs if output.get("output_type") in ("display_data", "execute_result")]
    if isinstance(view, widgets.HTML):
        return [{"output_type": "display_data", "data": {"text/html": view.value}, "metadata": {}}] if view.value else []
    if isinstance(view, widgets.Box):
        return [output for child in view.children for output in static_outputs(child)]
    return []


def show_widget(view: widgets.Widget) -> None:
    """Display ``view`` live and, under it, a static copy of its figures and HTML (chapter 00).

    Raises ValueError when the view shows nothing that could be copied (a widget without a figure or
    HTML would leave a reader without a kernel with nothing).
    """
    if not isinstance(view, widgets.Widget):
        raise TypeError(f"show_widget needs an ipywidgets widget, got {type(view).__name__}")
    copies = static_outputs(view)
    if not copies:
        raise ValueError("the widget shows no figure or HTML yet: draw it once before show_widget")
    display(view)
    display(Markdown(STATIC_CAPTION))
    for output in copies:
        data = output["data"]
        if "image/png" in data:
            display({"image/png": data["image/png"], "text/plain": "<Figure>"}, raw=True)
        elif "text/html" in data:
            display(HTML(data["text/html"]))
        else:
            display(data, raw=True)
