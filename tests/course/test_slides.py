"""Tests for course_lib.course.slides: the offline reveal.js deck, its npm assets, and the deck in a real browser."""

from __future__ import annotations

import base64
import io
import re
import subprocess

import nbformat
import numpy as np
import pytest
from PIL import Image

from course_lib.course import slides
from course_lib.data import npm
from course_lib.data.cache import DataError


def test_a_corrupt_cached_tarball_is_refused(model_cache):
    package = slides.NPM_PACKAGES["requirejs"]
    cached = model_cache / "npm" / package.file_name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not a tarball")
    with pytest.raises(DataError, match="does not match requirejs 2.3.8's integrity"):
        slides.npm_tarball(package)


def test_a_download_that_fails_the_integrity_check_writes_nothing(model_cache, monkeypatch):
    class Response(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(npm.urllib.request, "urlopen", lambda url, timeout: Response(b"tampered"))
    with pytest.raises(DataError, match="does not match the pinned integrity"):
        slides.npm_tarball(slides.NPM_PACKAGES["reveal.js"])
    assert not (model_cache / "npm").exists() or not any((model_cache / "npm").iterdir())


def test_offline_with_an_empty_cache_is_a_clear_error(empty_cache):
    with pytest.raises(DataError, match=r"\$COURSE_OFFLINE forbids fetching it"):
        slides.npm_tarball(slides.NPM_PACKAGES["reveal.js"])


@pytest.fixture(scope="module")
def deck(tmp_path_factory):
    """The deck built from slides/deck.ipynb with the network forbidden (the npm tarballs fetched first)."""
    for package in slides.NPM_PACKAGES.values():
        slides.npm_tarball(package)  # from the cache, or fetched once from the npm registry
    out = tmp_path_factory.mktemp("deck")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COURSE_OFFLINE", "1")
        html = slides._build_deck(out)
    return html


def test_the_deck_builds_offline_with_its_assets_beside_it(deck):
    out = deck.parent
    for asset in ("reveal.js/dist/reveal.js", "reveal.js/dist/reveal.css", "reveal.js/dist/theme/white.css",
                  "reveal.js/plugin/notes/notes.js", "require.js"):
        assert (out / asset).is_file(), asset


def test_the_deck_refers_to_nothing_online_and_every_image_resolves(deck):
    html = deck.read_text(encoding="utf-8")
    references = re.findall(r'(?:src|href)\s*=\s*"([^"]+)"', html)
    assert references, "the deck loads its assets"
    online = [ref for ref in references if re.match(r"(https?:)?//", ref)]
    assert online == [], f"the deck would go online for {online}"
    images = re.findall(r'<img[^>]+src="([^"]+)"', html)
    assert len(images) >= 11, "figures 1-10 and the loss formulas are embedded"
    for source in images:
        if source.startswith("data:image/png;base64,"):
            Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))).verify()
        else:
            assert (deck.parent / source).is_file(), source


def test_every_slide_has_speaker_notes_and_a_bilingual_title(deck):
    html = deck.read_text(encoding="utf-8")
    sections = re.findall(r"<section[^>]*>(.*?)</section>", html, flags=re.S)
    assert len(sections) >= 20
    assert all('<aside class="notes">' in section for section in sections), "speaker notes on every slide"
    notebook = nbformat.read(slides.DECK, as_version=4)
    titles = [cell.source.splitlines()[0] for cell in notebook.cells
              if cell.cell_type == "markdown" and cell.metadata.get("slideshow", {}).get("slide_type") == "slide"]
    assert all(re.search(r"[\u4e00-\u9fff]", title) and re.search(r"[A-Za-z]", title) for title in titles[1:]), titles


def _screenshot(browser: str, url: str, png) -> None:
    subprocess.run(
        [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,720",
         "--virtual-time-budget=8000", f"--screenshot={png}", url],
        capture_output=True, timeout=120, check=True,
    )


def test_the_first_slides_render_in_a_headless_browser(deck, tmp_path, chromium):
    browser = chromium
    pictures = []
    for index in range(4):
        png = tmp_path / f"slide{index}.png"
        _screenshot(browser, f"{deck.as_uri()}#/{index}", png)
        pixels = np.asarray(Image.open(png).convert("L"), dtype=float)
        assert pixels.shape == (720, 1280)
        assert pixels.std() > 5 and (pixels < 128).mean() > 0.002, f"slide {index} rendered blank"
        pictures.append(pixels)
    assert all(np.abs(a - b).mean() > 0.5 for a, b in zip(pictures, pictures[1:])), "each URL shows another slide"
