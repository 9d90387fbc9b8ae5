"""Shared fixtures: private data caches and results folders for tests that write files, and a CPU course context."""

from __future__ import annotations

import os
import shutil

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from course_lib.context import CourseContext


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """An empty data cache with fetching forbidden (as on a machine without network)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("COURSE_DATA_DIR", str(cache))
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    return cache


@pytest.fixture
def results_folder(tmp_path, monkeypatch):
    """A private results directory."""
    folder = tmp_path / "results"
    monkeypatch.setenv("COURSE_RESULTS_DIR", str(folder))
    return folder


@pytest.fixture
def model_cache(tmp_path, monkeypatch):
    """A private data cache for tests that train and cache models (fetching is still allowed)."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def context() -> CourseContext:
    """A fast-mode CPU course context, as setup_notebook() would return on a CPU machine."""
    return CourseContext(mode="fast", device=torch.device("cpu"), seed=0)


@pytest.fixture(scope="session")
def tiny_deploy_pairs(tmp_path_factory):
    """Tiny NER and MNIST teacher/student bundle pairs with ONNX exports, trained on real data in a private cache."""
    from course_lib.cases.deploy.bundles import mnist_bundles, ner_bundles
    from course_lib.cases.mnist.models import MnistRecipe
    from course_lib.cases.ner.tagger import TaggerRecipe
    from course_lib.data import load_mnist, load_msra
    from course_lib.serve.onnx import export_bundle

    corpus, mnist = load_msra(), load_mnist()  # from the data cache; the models go to a private one
    context = CourseContext(mode="fast", device=torch.device("cpu"), seed=0)
    shared = dict(train_sentences=150, epochs=1, batch_size=16)
    ner_recipes = {
        "teacher": TaggerRecipe(d_model=32, num_heads=2, num_layers=2, d_ff=64, **shared),
        "layer_kd": TaggerRecipe(d_model=8, num_heads=2, num_layers=1, d_ff=16, method="layers", **shared),
    }
    mnist_recipes = {
        "teacher": MnistRecipe(hidden=(64, 64), train_size=2000, epochs=1),
        "student": MnistRecipe(hidden=(16,), train_size=2000, epochs=1),
    }
    cache = tmp_path_factory.mktemp("deploy-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COURSE_DATA_DIR", str(cache))
        pairs = {
            "ner": ner_bundles(context, recipes=ner_recipes, corpus=corpus, progress=False),
            "mnist": mnist_bundles(context, recipes=mnist_recipes, data=mnist, progress=False),
        }
        for pair in pairs.values():
            export_bundle(pair.student)
    return {"pairs": pairs, "corpus": corpus, "mnist": mnist, "cache": cache, "context": context,
            "ner_recipes": ner_recipes, "mnist_recipes": mnist_recipes}


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a test module of tiny models: they gain nothing from threads and lose much on busy cores."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


BROWSERS = ("chromium", "chromium-headless-shell", "chromium-browser", "google-chrome")
REQUIRE_BROWSER = "COURSE_REQUIRE_BROWSER"


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of a Chromium browser; without one the test is skipped, or fails when $COURSE_REQUIRE_BROWSER is set."""
    path = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    if path is None:
        message = ("no Chromium found: install Debian's chromium (sudo apt-get install chromium fonts-wqy-microhei) "
                   "for the browser tests")
        if os.environ.get(REQUIRE_BROWSER, "").strip() not in ("", "0"):
            pytest.fail(f"{message}; ${REQUIRE_BROWSER} asks for the browser tests")
        pytest.skip(message)
    return path
