"""A font that draws Chinese characters, for the heatmaps and the deck (chapter 02).

An installed CJK family is used when there is one; otherwise Noto Sans CJK (SIL Open Font License)
is fetched once from the PyPI package ``noto-cjk-sans-otc`` into the data cache, the same way the
course fetches its data.
"""

from __future__ import annotations

import functools
from pathlib import PurePosixPath

from matplotlib import font_manager

from course_lib.data.cache import PackagedFile, cache_dir, fetch_packaged_file, verify_sha256
from course_lib.files import write_bytes_atomic

CJK_FONT_SOURCE = PackagedFile(
    package="noto-cjk-sans-otc",
    version="0.0.1",
    member="noto_cjk_sans_otc/NotoSansCJK-Regular.ttc",
    sha256="b76b0433203017ca80401b2ee0dd69350349871c4b19d504c34dbdd80541690a",
)
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Heiti SC",
)


@functools.lru_cache(maxsize=1)
def cjk_font_family() -> str:
    """Name of a font family that can draw Chinese characters, registered with matplotlib (chapter 02).

    An installed family from ``CJK_FAMILIES`` is used when present; otherwise Noto Sans CJK
    is fetched once into ``<cache_dir()>/fonts`` (sha256-checked) and registered. Raises
    ``course_lib.data.DataError`` when it is missing and cannot be fetched.
    """
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in installed:
            return family
    path = cache_dir() / "fonts" / PurePosixPath(CJK_FONT_SOURCE.member).name
    if not path.exists():
        write_bytes_atomic(path, fetch_packaged_file(CJK_FONT_SOURCE))
    verify_sha256(path, CJK_FONT_SOURCE.sha256, "CJK font")
    font_manager.fontManager.addfont(str(path))
    return "Noto Sans CJK SC"
