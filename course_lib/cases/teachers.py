"""Rebuild the reference teachers the course ships (``make teachers``; chapters 07 and 09).

Run ``python -m course_lib.cases.teachers`` on an idle machine: it trains each reference
teacher from scratch, measures it and writes its fp16 weights and provenance to
:data:`course_lib.train.artefact.ARTEFACT_DIR`, replacing the shipped files only once the new
ones are complete.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from course_lib.cases.ner.reference import ARTEFACT_NAME as NER_TEACHER
from course_lib.cases.ner.reference import train_reference_teacher
from course_lib.cases.translation_reference import ARTEFACT_NAME as MT_TEACHER
from course_lib.cases.translation_reference import train_reference_translator
from course_lib.train.artefact import ARTEFACT_DIR, read_provenance

TEACHERS: dict[str, Callable[..., Path]] = {NER_TEACHER: train_reference_teacher, MT_TEACHER: train_reference_translator}


def main(argv: list[str] | None = None) -> None:
    """Train the reference teachers named on the command line (default: all) and print their metrics (chapter 07)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"which teachers, of {', '.join(TEACHERS)} (default: all)")
    parser.add_argument("--folder", type=Path, default=ARTEFACT_DIR, help="where the artefacts go")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(TEACHERS))
    if unknown:
        parser.error(f"unknown teacher(s) {', '.join(unknown)}; choose from {', '.join(TEACHERS)}")
    for name in args.names or list(TEACHERS):
        path = TEACHERS[name](folder=args.folder)
        provenance = read_provenance(name, args.folder)
        print(f"{path} ({path.stat().st_size:,} bytes, {provenance['seconds']:.0f} s):",
              json.dumps(provenance["metrics"]))


if __name__ == "__main__":
    main()
