"""Answering requests with a saved model: raw text in, entities out; pixels in, a digit out (chapter 08).

A predictor turns what a user has into what the model takes and back, and it runs the same way
on every backend: ``"torch"`` (the PyTorch model of a bundle), ``"onnx"`` (its ONNX export in
ONNX Runtime) and ``"int8"`` (the dynamically quantised ONNX model).

Dynamic int8 quantisation chooses the scale of each activation tensor per call, from the whole
batch (padding included), so an int8 answer can change slightly with the texts it is batched
with; the float backends give the same answer alone or in a batch, up to rounding.

**Text** (:class:`NerPredictor`). A string is tagged character by character (Viterbi-decoded, so
every ``I-X`` continues an ``X`` entity); entities come back
as :class:`Entity` spans with character offsets into the string given, the type and a score
(the mean probability of the predicted tags over the span). Defined behaviour:

- an empty or whitespace-only string has no entities: ``[]``, and the model is not run;
- characters the vocabulary does not hold (most non-Chinese characters, emoji, spaces) are read
  as ``<unk>``; :meth:`NerPredictor.unknown_characters` lists where they are;
- a text longer than the model's ``max_len`` is read in overlapping windows of ``max_len``
  characters, ``stride`` apart (default ``max_len // 2``, the last window ends at the text's
  end). Each character takes its tag from the window in which it lies farthest from an edge, so
  every decision sees at least ``(max_len - stride) // 2`` characters of context on each side
  (where the text has them). Offsets always refer to the whole text;
- anything but a string raises a :class:`TypeError`.

**Images** (:class:`DigitPredictor`). One 28×28 digit or a batch of them, as a numpy array or a
torch tensor: shape (28, 28), (784,), (N, 28, 28), (N, 784) or (N, 1, 28, 28); ``uint8`` (or
another integer type) with values 0–255, or floats in [0, 1] (MNIST's scaling). Other shapes,
dtypes, values outside those ranges and NaN raise clear errors.

Command line::

    python -m course_lib.serve.predict ner "国务院总理在北京会见了联合国秘书长。"
    python -m course_lib.serve.predict ner --backend int8 --json "…"
    python -m course_lib.serve.predict mnist digit.png      # a 28×28 grayscale PNG or a .npy array
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from course_lib import checks
from course_lib.data import CharVocab, cache_dir, extract_entities
from course_lib.nn.mlp import IN_FEATURES
from course_lib.serve.bundle import INT8_FILE, ONNX_FILE, Bundle, load_bundle
from course_lib.train.decoding import viterbi_decode
from course_lib.train.fit import cpu_threads

BACKENDS = ("torch", "onnx", "int8")
_Runner = Callable[[dict[str, np.ndarray]], np.ndarray]


class TorchRunner:
    """Run a PyTorch model on numpy inputs (``input_ids``/``mask`` or ``images``) and return numpy logits (chapter 08)."""

    def __init__(self, model: nn.Module, threads: int = 1) -> None:
        self.model = model.to("cpu").eval()
        self.threads = threads

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        tensors = {name: torch.from_numpy(value) for name, value in inputs.items()}
        with cpu_threads(torch.device("cpu"), self.threads), torch.no_grad():
            if "images" in tensors:
                return self.model(tensors["images"]).numpy()
            return self.model(tensors["input_ids"], mask=tensors["mask"]).logits.numpy()


class OnnxRunner:
    """Run an ONNX Runtime session on the same inputs as :class:`TorchRunner` (chapter 08)."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(["logits"], inputs)[0]


def make_runner(bundle: Bundle, backend: str = "torch", threads: int = 1) -> _Runner:
    """The runner for ``bundle`` on ``backend`` (one of :data:`BACKENDS`) (chapter 08)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch":
        return TorchRunner(bundle.model, threads)
    from course_lib.serve.onnx import onnx_session

    return OnnxRunner(onnx_session(bundle.folder / (ONNX_FILE if backend == "onnx" else INT8_FILE), threads))


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Entity:
    """A named entity found in a text: ``text[start:end]`` is ``text``, ``kind`` is PER, LOC or ORG (chapter 08)."""

    text: str
    kind: str
    start: int
    end: int
    score: float

    def to_dict(self) -> dict[str, Any]:
        """The entity as a plain dict (for JSON)."""
        return asdict(self)


class NerPredictor:
    """Tag raw Chinese text with a token tagger and return its entities (see the module docstring) (chapter 08)."""

    def __init__(
        self,
        runner: _Runner,
        vocab: CharVocab,
        labels: Sequence[str],
        max_len: int,
        *,
        stride: int | None = None,
        batch_size: int = 32,
    ) -> None:
        self.runner = runner
        self.vocab = vocab
        self.labels = list(labels)
        self.max_len = checks.positive_int("max_len", max_len)
        self.stride = max(1, max_len // 2) if stride is None else checks.positive_int("stride", stride)
        if self.stride > self.max_len:
            raise ValueError(f"stride ({self.stride}) must not exceed max_len ({self.max_len}), or text would be skipped")
        self.batch_size = checks.positive_int("batch_size", batch_size)

    def windows(self, length: int) -> list[tuple[int, int]]:
        """The (start, end) character windows a text of ``length`` characters is read in."""
        if length <= self.max_len:
            return [(0, length)]
        starts = list(range(0, length - self.max_len, self.stride)) + [length - self.max_len]
        return [(start, start + self.max_len) for start in starts]

    @staticmethod
    def deciding_windows(length: int, windows: list[tuple[int, int]]) -> np.ndarray:
        """For each of ``length`` positions, the index of the window in which it lies farthest from an edge."""
        positions = np.arange(length)[:, None]
        starts = np.array([start for start, _ in windows])[None, :]
        ends = np.array([end for _, end in windows])[None, :]
        inside = (positions >= starts) & (positions < ends)
        margin = np.where(inside, np.minimum(positions - starts, ends - 1 - positions), -1)
        return margin.argmax(axis=1)

    def unknown_characters(self, text: str) -> list[int]:
        """Offsets of the characters of ``text`` that the vocabulary does not hold (read as ``<unk>``)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return [i for i, token in enumerate(self.vocab.encode(text)) if token == self.vocab.unk_id]

    def probabilities(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Per-character tag probabilities (length, num_labels) for each text, windows stitched together.

        An empty or whitespace-only text is not run: its rows are all zero (its tags read as ``O``).
        """
        texts = self._check_texts(texts)
        pieces = []  # (text index, window start, window end)
        by_text: dict[int, list[int]] = {}
        for index, text in enumerate(texts):
            if text.strip():
                for start, end in self.windows(len(text)):
                    by_text.setdefault(index, []).append(len(pieces))
                    pieces.append((index, start, end))
        order = sorted(range(len(pieces)), key=lambda i: pieces[i][2] - pieces[i][1])
        window_probs: dict[int, np.ndarray] = {}
        for first in range(0, len(order), self.batch_size):
            chunk = order[first:first + self.batch_size]
            longest = max(pieces[i][2] - pieces[i][1] for i in chunk)
            ids = np.zeros((len(chunk), longest), dtype=np.int64)
            mask = np.zeros((len(chunk), longest), dtype=bool)
            for row, i in enumerate(chunk):
                index, start, end = pieces[i]
                ids[row, : end - start] = self.vocab.encode(texts[index][start:end])
                mask[row, : end - start] = True
            probs = _softmax(self.runner({"input_ids": ids, "mask": mask}).astype(np.float64))
            for row, i in enumerate(chunk):
                window_probs[i] = probs[row, : pieces[i][2] - pieces[i][1]]
        results = []
        for index, text in enumerate(texts):
            mine = by_text.get(index, [])
            if not mine:
                results.append(np.zeros((len(text), len(self.labels))))
                continue
            windows = [(pieces[i][1], pieces[i][2]) for i in mine]
            owners = self.deciding_windows(len(text), windows)
            results.append(np.stack([window_probs[mine[w]][p - windows[w][0]] for p, w in enumerate(owners)]))
        return results

    def tag(self, text: str) -> list[tuple[str, str]]:
        """Each character of ``text`` with its BIO tag (all ``O`` for empty or whitespace-only text)."""
        (probs,) = self.probabilities([self._check_text(text)])
        if not text.strip():
            return [(char, "O") for char in text]
        return list(zip(text, (self.labels[i] for i in self._best_tags(probs))))

    def predict(self, text: str) -> list[Entity]:
        """The entities of one text, in order of position."""
        return self.predict_batch([self._check_text(text)])[0]

    def predict_batch(self, texts: Sequence[str]) -> list[list[Entity]]:
        """The entities of each text; all windows of all texts run in batches of ``batch_size``."""
        texts = self._check_texts(texts)
        results = []
        for text, probs in zip(texts, self.probabilities(texts)):
            if not text.strip():
                results.append([])
                continue
            best = self._best_tags(probs)
            tags = [self.labels[i] for i in best]
            chosen = probs[np.arange(len(text)), best]
            results.append([
                Entity(text=span, kind=kind, start=start, end=end, score=round(float(chosen[start:end].mean()), 4))
                for span, kind, start, end in extract_entities(list(text), tags)
            ])
        return results

    def tags(self, texts: Sequence[str]) -> list[list[str]]:
        """The BIO tag of every character of each text, decoded with Viterbi as :meth:`predict_batch` does."""
        texts = self._check_texts(texts)
        return [[self.labels[i] for i in self._best_tags(probs)] if text.strip() else ["O"] * len(text)
                for text, probs in zip(texts, self.probabilities(texts))]

    def _best_tags(self, probs: np.ndarray) -> np.ndarray:
        """The valid BIO tag ids of highest probability for one text's (length, num_labels) ``probs`` (Viterbi)."""
        log_probs = torch.from_numpy(np.log(np.maximum(probs, 1e-30))).unsqueeze(0)
        mask = torch.ones(log_probs.shape[:2], dtype=torch.bool)
        return np.asarray(viterbi_decode(log_probs, mask, self.labels)[0])

    @staticmethod
    def _check_text(text: object) -> str:
        if not isinstance(text, str):
            raise TypeError(
                f"text must be a str, got {type(text).__name__}; for several texts use predict_batch([...])"
            )
        return text

    @classmethod
    def _check_texts(cls, texts: object) -> list[str]:
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise TypeError(
                f"texts must be a list of str, got {type(texts).__name__}; for one text use predict(text)"
            )
        return [cls._check_text(text) for text in texts]


@dataclass(frozen=True)
class _DigitPrediction:
    """The predicted digit of each image, shape (N,), and the probabilities of the ten digits, (N, 10)."""

    digits: np.ndarray
    probabilities: np.ndarray


_IMAGE_SHAPES = {(28, 28): "one image", (IN_FEATURES,): "one flattened image"}


def _as_pixel_batch(images: object) -> np.ndarray:
    """Check ``images`` and return them as float32 (N, 784) in [0, 1] (see the module docstring)."""
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu()
        if images.dtype in (torch.bfloat16, torch.float16):
            images = images.float()
        images = images.numpy()
    if not isinstance(images, np.ndarray):
        raise TypeError(f"images must be a numpy array or a torch tensor, got {type(images).__name__}")
    if images.dtype == bool or not (np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)):
        raise TypeError(
            f"images must hold uint8 pixels (0-255) or floats in [0, 1], got dtype {images.dtype}"
        )
    shape = images.shape
    if shape in _IMAGE_SHAPES:
        images = images.reshape(1, IN_FEATURES)
    elif len(shape) in (2, 3, 4) and shape[1:] in ((IN_FEATURES,), (28, 28), (1, 28, 28)):
        images = images.reshape(shape[0], IN_FEATURES)
    else:
        raise ValueError(
            f"images must be 28x28 digits shaped (28, 28), (784,), (N, 28, 28), (N, 784) or (N, 1, 28, 28), "
            f"got shape {shape}"
        )
    if np.issubdtype(images.dtype, np.integer):
        if images.size and (images.min() < 0 or images.max() > 255):
            raise ValueError(
                f"integer pixels must lie in 0-255, got values from {images.min()} to {images.max()}"
            )
        return images.astype(np.float32) / np.float32(255.0)
    if not np.isfinite(images).all():
        raise ValueError("images contain NaN or infinite values")
    if images.size and (images.min() < 0.0 or images.max() > 1.0):
        hint = "; divide by 255 (or pass uint8)" if images.max() > 1.0 else ""
        raise ValueError(
            f"float pixels must lie in [0, 1] (MNIST's scaling), got values from {images.min():g} to "
            f"{images.max():g}{hint}"
        )
    return images.astype(np.float32)


class DigitPredictor:
    """Classify 28×28 digits with the MNIST network (see the module docstring for the accepted input) (chapter 08)."""

    def __init__(self, runner: _Runner, labels: Sequence[str], *, batch_size: int = 256) -> None:
        self.runner = runner
        self.labels = list(labels)
        self.batch_size = checks.positive_int("batch_size", batch_size)

    def predict(self, images: object) -> _DigitPrediction:
        """The digit and the ten probabilities of each image (one image counts as a batch of one)."""
        pixels = _as_pixel_batch(images)
        probs = np.zeros((len(pixels), len(self.labels)))
        for first in range(0, len(pixels), self.batch_size):
            chunk = pixels[first:first + self.batch_size]
            probs[first:first + len(chunk)] = _softmax(self.runner({"images": chunk}).astype(np.float64))
        return _DigitPrediction(digits=probs.argmax(axis=1), probabilities=probs)


def load_predictor(
    folder: str | PathLike[str], backend: str = "torch", threads: int = 1, **options: Any
) -> NerPredictor | DigitPredictor:
    """A predictor for the bundle in ``folder`` on ``backend``; ``options`` go to the predictor (chapter 08)."""
    bundle = load_bundle(folder)
    runner = make_runner(bundle, backend, threads)
    if bundle.task == "ner":
        return NerPredictor(runner, bundle.vocab, bundle.labels, bundle.max_len, **options)
    return DigitPredictor(runner, bundle.labels, **options)


def _predictor_task(predictor: NerPredictor | DigitPredictor) -> str:
    """"ner" or "mnist": which task ``predictor`` answers."""
    return "ner" if isinstance(predictor, NerPredictor) else "mnist"


def default_bundle_dir(task: str, mode: str = "fast") -> Path:
    """Where chapter 08 saves the student of ``task`` ("ner" or "mnist") in ``mode`` (chapter 08)."""
    return cache_dir() / "deploy" / f"{task}_student_{mode}"


def _read_image(path: Path) -> np.ndarray:
    """The pixels of a .npy array or an image file (PNG, JPEG, ...) converted to 8-bit grayscale."""
    if not path.is_file():
        raise FileNotFoundError(f"no image file at {path}")
    from PIL import Image, UnidentifiedImageError

    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, allow_pickle=False)
        with Image.open(path) as image:
            return np.asarray(image.convert("L"))
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ValueError(
            f"{path} is not a readable image: give a 28x28 grayscale PNG or a .npy array saved with numpy.save"
        ) from error


def main(argv: list[str] | None = None) -> int:
    """Command line: tag a text or classify a digit with a saved student; print the answer (chapter 08)."""
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.serve.predict", description="Answer with a student saved by chapter 08."
    )
    parser.add_argument("task", choices=("ner", "mnist"))
    parser.add_argument("input", help="the text to tag (ner) or an image file, .png or .npy (mnist)")
    parser.add_argument("--model", type=Path, default=None, help="bundle folder (default: chapter 08's student)")
    parser.add_argument("--mode", choices=("fast", "full"), default="fast", help="which chapter-08 student by default")
    parser.add_argument("--backend", choices=BACKENDS, default="torch")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    folder = args.model or default_bundle_dir(args.task, args.mode)
    try:
        predictor = load_predictor(folder, args.backend)
        if _predictor_task(predictor) != args.task:
            raise ValueError(f"the bundle at {folder} is not a {args.task!r} model")
        if isinstance(predictor, NerPredictor):
            entities = predictor.predict(args.input)
            unknown = predictor.unknown_characters(args.input)
            if args.json:
                print(json.dumps({"entities": [e.to_dict() for e in entities], "unknown_characters": unknown},
                                 ensure_ascii=False))
            else:
                for entity in entities:
                    print(f"{entity.text}\t{entity.kind}\t{entity.start}-{entity.end}\t{entity.score:.2f}")
                if not entities:
                    print("(no entities)")
                if unknown:
                    print(f"{len(unknown)} character(s) unknown to the model, read as <unk>", file=sys.stderr)
        else:
            prediction = predictor.predict(_read_image(Path(args.input)))
            digit, probs = int(prediction.digits[0]), prediction.probabilities[0]
            if args.json:
                print(json.dumps({"digit": digit, "probabilities": [round(float(p), 4) for p in probs]}))
            else:
                print(f"{digit}\t{probs[digit]:.2f}")
    except (FileNotFoundError, ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
