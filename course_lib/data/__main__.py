"""``python -m course_lib.data``: fill the data cache (used by ``make data``)."""

from course_lib.data import cache_dir, load_bible, load_inews, load_mnist, load_msra, load_tang_poems
from course_lib.data.fonts import cjk_font_family


def main() -> None:
    """Fetch (once) and check every dataset the chapters use (chapter 00)."""
    print(f"data cache: {cache_dir()}")
    print(f"  MNIST    : {load_mnist()!r}")
    print(f"  MSRA NER : {load_msra()!r}")
    print(f"  Bible    : {load_bible()!r}")
    print(f"  news     : {load_inews()!r}")
    print(f"  poems    : {load_tang_poems()!r}")
    print(f"  CJK font : {cjk_font_family()} (labels of the attention heatmaps)")


if __name__ == "__main__":
    main()
