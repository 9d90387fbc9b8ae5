"""Exporting a course model to ONNX, quantising it to int8 and running it in ONNX Runtime (chapter 08).

- :func:`export_onnx` traces a :class:`~course_lib.nn.transformer.TokenTagger` (inputs
  ``input_ids`` int64 and ``mask`` bool, both (batch, length); output ``logits``) or an
  :class:`~course_lib.nn.mlp.MLP` (input ``images`` float32 (batch, 784); output ``logits``) with
  PyTorch's ``torch.export``-based exporter. The batch axis and the tagger's length axis stay
  dynamic, up to the tagger's ``max_len``.
- :func:`quantize_int8` applies ONNX Runtime's *dynamic* quantisation: the weights of every
  matrix product (and the embedding table) are stored as int8 with one scale per tensor, and
  activations are quantised on the fly, call by call. No calibration data is needed. The
  weights use 7 of the 8 bits (``reduce_range``): on x86 CPUs without VNNI, ONNX Runtime
  multiplies uint8 activations by int8 weights with an instruction (``vpmaddubsw``) whose 16-bit
  sums of two products saturate when both are near full range; with 7-bit weights they cannot,
  so the int8 model answers the same on every x86-64 CPU, at a small cost in precision.
- :func:`onnx_session` opens a model in ONNX Runtime on a fixed number of CPU threads.
- :func:`max_difference` runs the PyTorch model and the ONNX model on the same inputs and
  returns the largest absolute difference of their logits.

Every file is written to a temporary name and moved into place, so a failed export never
leaves a half-written model behind.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import tempfile
import warnings
from collections.abc import Iterator
from os import PathLike
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.shape_inference import quant_pre_process
from torch import Tensor, nn

from course_lib import checks
from course_lib.files import atomic_path
from course_lib.serve.bundle import INT8_FILE, ONNX_FILE, load_bundle
from course_lib.nn.mlp import IN_FEATURES, MLP
from course_lib.nn.transformer import TokenTagger


class _TaggerLogits(nn.Module):
    """A tagger that returns only its logits: the one output an ONNX graph needs to carry."""

    def __init__(self, tagger: TokenTagger) -> None:
        super().__init__()
        self.tagger = tagger

    def forward(self, input_ids: Tensor, mask: Tensor) -> Tensor:
        return self.tagger(input_ids, mask).logits


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' progress lines, warnings and log messages (errors still raise)."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "root")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def example_inputs(model: nn.Module, batch: int = 2, length: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    """Random valid inputs for ``model`` as ONNX Runtime takes them (a dict of numpy arrays) (chapter 08).

    A tagger gets ``input_ids`` in [2, vocab_size) (no padding, no unknown) and an all-True
    ``mask``; an MLP gets ``images`` of uniform pixels in [0, 1).
    """
    generator = np.random.default_rng(seed)
    if isinstance(model, TokenTagger):
        length = min(length, model.config.max_len)
        low = min(2, model.config.vocab_size - 1)
        ids = generator.integers(low, model.config.vocab_size, size=(batch, length), dtype=np.int64)
        return {"input_ids": ids, "mask": np.ones((batch, length), dtype=bool)}
    if isinstance(model, MLP):
        return {"images": generator.random((batch, IN_FEATURES), dtype=np.float32)}
    raise TypeError(f"ONNX export covers TokenTagger and MLP models, got {type(model).__name__}")


def export_onnx(model: nn.Module, path: str | PathLike[str]) -> Path:
    """Export ``model`` (a TokenTagger or an MLP) to the ONNX file ``path`` with dynamic batch/length axes (chapter 08).

    A CPU copy of the model is exported in eval mode (dropout off); the file is self-contained
    (no external weights file) and carries no exporter provenance (Python stack and FX node text
    per node), which would only make it bigger.
    """
    inputs = example_inputs(model)
    cpu_model = copy.deepcopy(model).to("cpu").eval()
    batch = torch.export.Dim("batch")
    if isinstance(model, TokenTagger):
        if model.config.max_len < 2:
            raise ValueError(f"a tagger with max_len={model.config.max_len} cannot have a dynamic length axis")
        length = torch.export.Dim("length", min=1, max=model.config.max_len)
        module: nn.Module = _TaggerLogits(cpu_model)
        args = (torch.from_numpy(inputs["input_ids"]), torch.from_numpy(inputs["mask"]))
        names = ["input_ids", "mask"]
        shapes = {"input_ids": {0: batch, 1: length}, "mask": {0: batch, 1: length}}
    else:
        module = cpu_model
        args = (torch.from_numpy(inputs["images"]),)
        names = ["images"]
        shapes = {"images": {0: batch}}
    path = Path(path)
    with atomic_path(path) as temp, _quiet():
        torch.onnx.export(
            module,
            args,
            str(temp),
            input_names=names,
            output_names=["logits"],
            dynamic_shapes=shapes,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
        _strip_exporter_metadata(temp)
    return path


def _strip_exporter_metadata(path: Path) -> None:
    """Drop the exporter's per-node provenance (FX node text, module paths): a third of a small model's file."""
    proto = onnx.load(str(path))
    for node in proto.graph.node:
        del node.metadata_props[:]
    for value in proto.graph.value_info:
        del value.metadata_props[:]
    onnx.save(proto, str(path))


def quantize_int8(onnx_path: str | PathLike[str], out_path: str | PathLike[str], *, reduce_range: bool = True) -> Path:
    """Write the dynamic int8 quantisation of the ONNX model at ``onnx_path`` to ``out_path`` (chapter 08).

    ONNX Runtime's recommended pre-processing runs first (ONNX shape inference and graph
    optimisation; its symbolic shape inference cannot follow the exported attention and is
    skipped), then ``quantize_dynamic`` with signed int8 weights in 7-bit range (see the module
    docstring: without it, the answers depend on whether the CPU has VNNI); ``reduce_range=False``
    keeps all 8 bits, for comparison (chapter 08).
    """
    onnx_path, out_path = Path(onnx_path), Path(out_path)
    if not onnx_path.is_file():
        raise FileNotFoundError(f"no ONNX model at {onnx_path}; create it with export_onnx(model, path)")
    with tempfile.TemporaryDirectory() as scratch, atomic_path(out_path) as temp, _quiet():
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(onnx_path), str(prepared), skip_symbolic_shape=True)
        quantize_dynamic(str(prepared), str(temp), weight_type=QuantType.QInt8, reduce_range=reduce_range)
    return out_path


def onnx_session(path: str | PathLike[str], threads: int = 1) -> ort.InferenceSession:
    """Open the ONNX model at ``path`` in ONNX Runtime on the CPU with ``threads`` threads (chapter 08)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no ONNX model at {path}; create it with course_lib.serve.onnx.export_bundle(folder) "
            "or export_onnx(model, path)"
        )
    checks.positive_int("threads", threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def max_difference(model: nn.Module, session: ort.InferenceSession, inputs: dict[str, np.ndarray]) -> float:
    """Largest absolute difference between the PyTorch model's logits and the ONNX session's on ``inputs`` (chapter 08)."""
    tensors = {name: torch.from_numpy(value) for name, value in inputs.items()}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if isinstance(model, TokenTagger):
                expected = model(tensors["input_ids"], tensors["mask"]).logits
            else:
                expected = model(tensors["images"])
    finally:
        model.train(was_training)
    (got,) = session.run(["logits"], inputs)
    return float(np.abs(expected.cpu().numpy() - got).max())


def export_bundle(folder: str | PathLike[str]) -> tuple[Path, Path]:
    """Add ``model.onnx`` and its int8 quantisation ``model.int8.onnx`` to a bundle folder (chapter 08)."""
    bundle = load_bundle(folder)
    onnx_path = export_onnx(bundle.model, bundle.folder / ONNX_FILE)
    return onnx_path, quantize_int8(onnx_path, bundle.folder / INT8_FILE)
