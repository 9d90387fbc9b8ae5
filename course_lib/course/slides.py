"""Building the lecture deck in ``slides/`` into a reveal.js site that works offline.

``python -m course_lib.course.slides`` (``make slides``) executes ``slides/deck.ipynb`` — its figures and
tables are drawn from the course's results files at build time — and exports it with nbconvert's
reveal.js exporter through the course's template ``reveal_offline``, which drops every CDN asset
of the stock template. The output folder holds::

    deck.slides.html     the deck (code hidden, images embedded, speaker notes: press S)
    reveal.js/           reveal.js 4.6.1 (dist/ and plugin/), from the npm registry
    require.js           require.js 2.3.8, from the npm registry (the template loads reveal.js with it)

The two npm tarballs are fetched once into ``<cache_dir()>/npm/`` and checked against the
registry's SHA-512 integrity before use (:func:`course_lib.data.npm.npm_tarball`); with
``$COURSE_OFFLINE`` set a missing tarball is an error, not a fetch. The same notebook can be
presented live in JupyterLab with jupyterlab-rise (``make lab``, then Alt-R), where the widgets
keep working.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

from course_lib.context import REPO_ROOT
from course_lib.data.cache import DataError
from course_lib.data.npm import NpmPackage, npm_tarball
from course_lib.files import write_bytes_atomic


SLIDES_DIR = REPO_ROOT / "slides"
DECK = SLIDES_DIR / "deck.ipynb"
TEMPLATES = Path(__file__).resolve().parent / "templates"


NPM_PACKAGES = {
    # nbconvert's reveal template targets the reveal.js 4 layout (dist/, plugin/notes/).
    "reveal.js": NpmPackage(
        "reveal.js", "4.6.1",
        "sha512-1CW0auaXNPmwmvQ7TwpszwVxMi2Xr5cTS3J3EBC/HHgbPF32Dn7aiu/LKWDOGjMbaDwKQiGmfqcoGQ74HUHCMw==",
    ),
    "requirejs": NpmPackage(
        "requirejs", "2.3.8",
        "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
    ),
}


def _extract(tarball: Path, members: tuple[str, ...], dest: Path) -> None:
    """Copy the ``package/<member>`` files and folders of an npm tarball into ``dest``."""
    with tarfile.open(tarball, "r:gz") as archive:
        for info in archive.getmembers():
            name = info.name.removeprefix("package/")
            if not info.isfile() or not any(name == m or name.startswith(m.rstrip("/") + "/") for m in members):
                continue
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.extractfile(info).read())


def _install_assets(out_dir: Path) -> None:
    """Put reveal.js (``dist/`` and ``plugin/``) and ``require.js`` into ``out_dir``."""
    reveal = out_dir / "reveal.js"
    shutil.rmtree(reveal, ignore_errors=True)
    _extract(npm_tarball(NPM_PACKAGES["reveal.js"]), ("dist", "plugin", "LICENSE"), reveal)
    with tempfile.TemporaryDirectory() as scratch:
        _extract(npm_tarball(NPM_PACKAGES["requirejs"]), ("require.js",), Path(scratch))
        shutil.copyfile(Path(scratch) / "require.js", out_dir / "require.js")


def _export_deck(notebook, out_dir: Path, name: str = "deck") -> Path:
    """Export an (executed) notebook node to ``out_dir/<name>.slides.html`` with the offline template."""
    from nbconvert import SlidesExporter
    from traitlets.config import Config

    config = Config()
    config.TemplateExporter.extra_template_basedirs = [str(TEMPLATES)]
    config.SlidesExporter.template_name = "reveal_offline"
    config.SlidesExporter.reveal_url_prefix = "reveal.js"
    config.SlidesExporter.reveal_theme = "white"  # the themes that import web fonts would go online
    config.SlidesExporter.reveal_transition = "none"
    config.SlidesExporter.reveal_number = "c/t"
    config.HTMLExporter.require_js_url = "require.js"
    config.TemplateExporter.exclude_input = True
    config.TemplateExporter.exclude_input_prompt = True
    config.TemplateExporter.exclude_output_prompt = True
    config.HTMLExporter.embed_images = True
    body, _ = SlidesExporter(config=config).from_notebook_node(notebook)
    return write_bytes_atomic(out_dir / f"{name}.slides.html", body.encode("utf-8"))


def _build_deck(out_dir: Path, notebook: Path = DECK, execute: bool = True, timeout: int = 600) -> Path:
    """Execute ``notebook`` (in its folder) unless ``execute`` is False, export it and add the assets."""
    import nbformat
    from nbclient import NotebookClient

    if not notebook.is_file():
        raise FileNotFoundError(f"no deck notebook at {notebook}")
    node = nbformat.read(notebook, as_version=4)
    if execute:
        NotebookClient(node, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(notebook.parent)}}).execute()
    out_dir.mkdir(parents=True, exist_ok=True)
    _install_assets(out_dir)
    return _export_deck(node, out_dir, notebook.stem)


def main(argv: list[str] | None = None) -> int:
    """``python -m course_lib.course.slides [--out build/slides] [--no-execute]`` (chapter 10)."""
    parser = argparse.ArgumentParser(prog="python -m course_lib.course.slides", description="Build the offline lecture deck.")
    parser.add_argument("--out", type=Path, default=Path("build/slides"))
    parser.add_argument("--notebook", type=Path, default=DECK)
    parser.add_argument("--no-execute", action="store_true", help="export the notebook's stored outputs as they are")
    args = parser.parse_args(argv)
    try:
        path = _build_deck(args.out, args.notebook, execute=not args.no_execute)
    except (DataError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path} (open it in a browser; press S for the speaker notes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
