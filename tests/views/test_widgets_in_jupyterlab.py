"""The course's widgets in a real JupyterLab, driven the way a lecturer uses them, in headless Chromium.

A JupyterLab server starts on a free port with a random token, in a temporary folder; Playwright
drives Debian's Chromium (no browser download). The tests run all cells of a small notebook with
the temperature explorer and chapter 06's distillation lab, move the slider, press Run, and run
chapter 05 top to bottom; the browser console must stay free of errors. The lab's run time is
written to ``lab_browser.json`` in the results folder. On failure a screenshot is left in the
test's temporary folder.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from course_lib.context import REPO_ROOT, CourseContext, results_dir
from course_lib.files import write_json_atomic

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
LAB_NOTEBOOK = [
    "import os\nos.environ['COURSE_PROGRESS'] = '1'\nfrom course_lib.context import setup_notebook\nctx = setup_notebook('fast')",
    "import ipywidgets as widgets\nfrom course_lib.views.distillation import show_softmax_temperature\n"
    "from course_lib.views.widgets import explorer, show_widget\n\n"
    "temperature_explorer = explorer(\n"
    "    lambda temperature: show_softmax_temperature([2.0, 1.0, 0.2, -1.0], temperature),\n"
    "    temperature=widgets.FloatSlider(value=1.0, min=0.5, max=10.0, step=0.5, description='T'),\n)\n"
    "show_widget(temperature_explorer)",
    "from course_lib.cases.mnist.models import mnist_model\nfrom course_lib.data import load_mnist\n"
    "from course_lib.views.lab import DistillationLab\n\nmnist = load_mnist()\n"
    "teacher = mnist_model(ctx, 'teacher', data=mnist)\n"
    "lab = DistillationLab(teacher.model, mnist, ctx.device, teacher_errors=teacher.metrics['test_errors'])\n"
    "show_widget(lab.widget)",
]
# Every shown prompt holds an execution count (a collapsed solution's prompt is blank), and the
# kernel is idle: either alone can be true while a cell is still running.
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"
RUN_STARTED = """() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]
    .some(p => /^\\[(\\*|\\d+)\\]:$/.test(p.textContent.trim()))"""
PROMPTS_DONE = """() => {
    const prompts = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]
        .map(p => p.textContent.trim()).filter(text => text !== '');
    const indicator = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator');
    const idle = !indicator || indicator.getAttribute('data-status') === 'idle';
    return prompts.length > 0 && idle && prompts.every(text => /^\\[\\d+\\]:$/.test(text));
}"""
STOPPED_SHORT = """() => {
    const prompts = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]
        .map(p => p.textContent.trim());
    const indicator = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator');
    const idle = !indicator || indicator.getAttribute('data-status') === 'idle';
    return idle && prompts.some(text => text === '[ ]:') && !prompts.some(text => text === '[*]:');
}"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def mnist_teacher():
    """The fast-mode MNIST teacher the lab and chapter 05 load, trained into the course cache first if missing."""
    from course_lib.cases.mnist.models import mnist_model

    return mnist_model(CourseContext(mode="fast", device="cpu", seed=0), "teacher", progress=False)


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory, mnist_teacher):
    """A JupyterLab server on a free port with a random token, serving a temporary folder; stopped by its pid."""
    root = tmp_path_factory.mktemp("lab")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in LAB_NOTEBOOK])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(notebook, root / "lab_widgets.ipynb")
    chapter = nbformat.read(REPO_ROOT / "notebooks" / "05_knowledge_distillation.ipynb", as_version=4)
    for cell in chapter.cells:  # without the stored outputs, so every prompt and widget comes from this run
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(chapter, root / "05_knowledge_distillation.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    home = tmp_path_factory.mktemp("jupyter")
    settings = home / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # Every cell in the page, so that the test can read every prompt and output of a long chapter.
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none",
                                                                      "autoStartDefaultKernel": True}))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "COURSE_MODE": "fast", "COURSE_PROGRESS": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={home / 'settings'}",
         f"--LabApp.workspaces_dir={home / 'workspaces'}", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(home / "server.log", "w"), start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if server.poll() is not None:
                    pytest.fail(f"JupyterLab exited: {(home / 'server.log').read_text()[-2000:]}")
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer within 60 s")
        yield {"base": base, "token": token, "root": root}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


class _Page:
    """A JupyterLab page that records console errors and leaves a screenshot when a check fails."""

    def __init__(self, browser, lab, notebook: str, screenshots: Path) -> None:
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.errors: list[str] = []
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.screenshots = screenshots
        self.page.goto(f"{lab['base']}/lab/tree/{notebook}?reset&token={lab['token']}")
        self.page.wait_for_selector(f"{NOTEBOOK} .jp-CodeCell", timeout=60_000)
        # Run All is only honoured once the notebook's kernel has started.
        self.page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator"
                                    "[data-status='idle']", state="attached", timeout=60_000)

    def _start_run_all(self) -> None:
        for _ in range(3):  # a click that lands while the page is still settling is lost: try again
            self.accept_dialog()
            self.page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            self.page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            try:
                self.page.wait_for_function(RUN_STARTED, timeout=15_000)
                return
            except Exception:
                self.page.keyboard.press("Escape")
        raise AssertionError("Run > Run All Cells did not start the notebook")

    def _stopped_short(self) -> bool:
        """The kernel idle with cells never run, and still so a few seconds later: a Run All that ran only some cells."""
        if not self.page.evaluate(STOPPED_SHORT):
            return False
        time.sleep(5)
        return bool(self.page.evaluate(STOPPED_SHORT))

    def run_all(self, timeout_s: float) -> None:
        """Run All Cells from the Run menu and wait for every code cell's execution count.

        A Run All that lands while the notebook is still settling can run the first cell alone and
        leave the others unqueued; it is given once more. The status bar may say Idle while a cell
        with progress bars still runs, so the wait is on the prompts.
        """
        self._start_run_all()
        deadline = time.monotonic() + timeout_s
        try:
            for attempt in range(2):
                self.page.wait_for_function(f"() => ({PROMPTS_DONE})() || ({STOPPED_SHORT})()",
                                            timeout=max(1.0, deadline - time.monotonic()) * 1000)
                if self.page.evaluate(PROMPTS_DONE):
                    return
                if attempt == 0 and self._stopped_short():
                    self._start_run_all()
            self.page.wait_for_function(PROMPTS_DONE, timeout=max(1.0, deadline - time.monotonic()) * 1000)
        except Exception:
            prompts = self.page.locator(f"{NOTEBOOK} .jp-CodeCell .jp-InputPrompt").all_inner_texts()
            errors = self.page.locator("[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
            raise AssertionError(f"the cells did not all run within {timeout_s:g} s; prompts {prompts}; "
                                 f"error outputs {[e[-1500:] for e in errors]}") from None

    def run_all_rendered(self, timeout_s: float) -> None:
        """:meth:`run_all`, and once more if a widget's model came too late to be shown.

        ipywidgets' front end waits 2 s for the model of a widget it is asked to show; the first
        widget of a fresh page also loads the controls' code, which on a busy machine (``make test``
        runs two workers) can take longer and leave "Error displaying widget: model not found".
        The second run, from cleared outputs, finds that code loaded and so tests the widgets themselves.
        """
        self.run_all(timeout_s)
        if "model not found" not in self.page.locator(NOTEBOOK).inner_text():
            return
        self.page.locator(".lm-MenuBar-itemLabel", has_text="Edit").first.click()
        self.page.locator(".lm-Menu-itemLabel", has_text="Clear Outputs of All Cells").first.click()
        self.page.wait_for_function(f"() => !({RUN_STARTED})()", timeout=30_000)
        self.errors.clear()
        self.run_all(timeout_s)

    def accept_dialog(self) -> None:
        """Accept a dialog JupyterLab may raise while a kernel (re)starts, e.g. "Select Kernel"."""
        dialog = self.page.locator(".jp-Dialog .jp-mod-accept")
        if dialog.count():
            dialog.first.click()

    def screenshot(self, name: str) -> Path:
        path = self.screenshots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def lab_page(browser, jupyterlab, tmp_path):
    pages = []

    def open_page(notebook: str) -> _Page:
        pages.append(_Page(browser, jupyterlab, notebook, tmp_path))
        return pages[-1]

    yield open_page
    for page in pages:
        page.page.close()


def _image_sources(output) -> list[str]:
    return output.locator("img").evaluate_all("images => images.map(i => i.src)")


def test_the_explorer_and_the_lab_render_redraw_and_run_in_jupyterlab(lab_page, tmp_path):
    lab = lab_page("lab_widgets.ipynb")
    try:
        lab.run_all_rendered(timeout_s=240)
        cells = lab.page.locator(f"{NOTEBOOK} .jp-CodeCell")
        page_text = lab.page.locator(NOTEBOOK).inner_text()
        assert "Error displaying widget" not in page_text and "Traceback" not in page_text
        assert "VBox(" not in page_text, "a widget showed as its text repr: the widget manager did not render it"
        explorer = cells.nth(1)
        assert explorer.locator(".widget-slider").count() == 1 and explorer.locator(".widget-output").count() == 1
        before = _image_sources(explorer.locator(".widget-output"))
        assert len(before) == 1 and before[0].startswith("data:image/png")
        handle = explorer.locator(".noUi-handle").first
        handle.focus()
        for _ in range(4):
            handle.press("ArrowRight")
        lab.page.wait_for_function(
            "([cell, old]) => { const img = cell.querySelector('.widget-output img'); return img && img.src !== old; }",
            arg=[explorer.element_handle(), before[0]], timeout=30_000)
        assert explorer.locator(".widget-readout").first.inner_text().strip() != "1.00", "the slider moved"

        panel = cells.nth(2)
        run = panel.locator("button", has_text="Run")
        assert run.count() == 1 and panel.locator(".widget-slider").count() == 2
        curves_before = _image_sources(panel.locator(".widget-output"))
        start = time.perf_counter()
        run.click()
        lab.page.wait_for_function("b => b.disabled", arg=run.element_handle(), timeout=10_000)
        panel.locator(".widget-output .progress, .widget-output .widget-hprogress, .widget-output progress").first \
            .wait_for(state="attached", timeout=30_000)
        lab.page.wait_for_function("b => !b.disabled", arg=run.element_handle(), timeout=180_000)
        seconds = time.perf_counter() - start
        status = panel.locator(".widget-html").first.inner_text()
        assert "test errors in" in status, status
        assert _image_sources(panel.locator(".widget-output")) != curves_before, "the learning curves were redrawn"
        assert lab.errors == [], f"browser console errors: {lab.errors}"
    except Exception:
        lab.screenshot("lab_widgets_failure")
        raise
    write_json_atomic(results_dir() / "lab_browser.json", {
        "lab_run_seconds_in_browser": round(seconds, 1), "status": status, "device": "cpu",
        "goal_seconds_cpu": 10.0, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })


def test_chapter_05_runs_top_to_bottom_with_every_widget_rendered(lab_page):
    chapter = lab_page("05_knowledge_distillation.ipynb")
    try:
        chapter.run_all_rendered(timeout_s=240)
        text = chapter.page.locator(NOTEBOOK).inner_text()
        assert "Traceback" not in text and "Error displaying widget" not in text
        notebook = nbformat.read(REPO_ROOT / "notebooks" / "05_knowledge_distillation.ipynb", as_version=4)
        widgets = sum("show_widget(" in cell.source for cell in notebook.cells if cell.cell_type == "code")
        rendered = chapter.page.locator(f"{NOTEBOOK} .jp-OutputArea-output .widget-slider")
        assert widgets >= 2 and rendered.count() >= widgets, "every explorer renders its sliders"
        assert chapter.errors == [], f"browser console errors: {chapter.errors}"
    except Exception:
        chapter.screenshot("chapter_05_failure")
        raise
