"""Tests for course_lib.serve.onnx: parity with PyTorch on dynamic shapes, int8 quality, atomic files, quiet export."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from course_lib.data import LABELS, CharVocab, load_mnist, load_msra, mnist_tensors
from course_lib.serve.bundle import load_bundle, save_bundle
from course_lib.nn.mlp import MLP, MLPConfig
from course_lib.serve.onnx import (
    example_inputs,
    export_bundle,
    export_onnx,
    max_difference,
    onnx_session,
    quantize_int8,
)
from course_lib.train.fit import cpu_threads
from course_lib.nn.transformer import TokenTagger, TransformerConfig

# float32 ONNX Runtime kernels add and multiply in another order than PyTorch's: differences of
# ~1e-7 are rounding (observed up to ~4e-7 here); 1e-4 still catches any wrong operator or weight.
PARITY_TOLERANCE = 1e-4
# Dynamic int8 quantisation rounds every weight to 1 of 255 levels per tensor and each activation
# batch likewise: a digit near the decision boundary may flip, but the accuracy of a small MNIST
# network on 1,000 digits moves by well under 2 points (observed 0.0 here).
INT8_ACCURACY_DROP = 0.02
# For a tagger the rounding may flip characters whose two best tags are nearly tied; such
# characters are rare (observed ~1 % for a random tagger, whose logits are close together).
INT8_TAG_AGREEMENT = 0.97
MAX_LEN = 64


def one_thread():
    return cpu_threads(torch.device("cpu"), 1)


def hidden_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


@pytest.fixture(scope="module")
def corpus():
    return load_msra()


@pytest.fixture(scope="module")
def vocab(corpus) -> CharVocab:
    return CharVocab.build(corpus.train[:2000])


@pytest.fixture(scope="module")
def tagger(vocab) -> TokenTagger:
    """A random tagger over a real vocabulary (sinusoidal positions, one layer)."""
    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=len(vocab), d_model=32, num_heads=2, num_layers=1, d_ff=64,
                               max_len=MAX_LEN, dropout=0.0)
    return TokenTagger(config, num_labels=len(LABELS)).eval()


@pytest.fixture(scope="module")
def tagger_files(tagger, tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tagger_onnx")
    onnx_path = export_onnx(tagger, folder / "tagger.onnx")
    return onnx_path, quantize_int8(onnx_path, folder / "tagger.int8.onnx")


@pytest.fixture(scope="module")
def mlp() -> MLP:
    torch.manual_seed(0)
    return MLP(MLPConfig(hidden=(32,))).eval()


@pytest.fixture(scope="module")
def mlp_onnx(mlp, tmp_path_factory) -> Path:
    return export_onnx(mlp, tmp_path_factory.mktemp("mlp_onnx") / "mlp.onnx")


@pytest.fixture(scope="module")
def mnist():
    data = load_mnist()
    train_images, train_labels = mnist_tensors(data, "train")
    test_images, test_labels = mnist_tensors(data, "test")
    return train_images[:5000], train_labels[:5000], test_images[:1000], test_labels[:1000]


@pytest.fixture(scope="module")
def trained_mlp(mnist) -> MLP:
    """An MLP (64 hidden units) after one epoch of Adam on 5,000 real training digits (~0.2 s)."""
    images, labels, _, _ = mnist
    torch.manual_seed(0)
    model = MLP(MLPConfig(hidden=(64,)))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    with one_thread():
        for first in range(0, len(images), 50):
            loss = torch.nn.functional.cross_entropy(model(images[first:first + 50]), labels[first:first + 50])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def tagger_inputs(tagger: TokenTagger, batch: int, length: int) -> dict[str, np.ndarray]:
    inputs = example_inputs(tagger, batch=batch, length=length, seed=batch * 100 + length)
    assert inputs["input_ids"].shape == (batch, length)
    return inputs


# -- parity ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("length", [1, 5, MAX_LEN])
def test_tagger_onnx_matches_pytorch_on_any_batch_size_and_length(tagger, tagger_files, batch, length):
    session = onnx_session(tagger_files[0])
    inputs = tagger_inputs(tagger, batch, length)
    (logits,) = session.run(["logits"], inputs)
    assert logits.shape == (batch, length, len(LABELS))
    assert max_difference(tagger, session, inputs) <= PARITY_TOLERANCE


def test_tagger_onnx_matches_pytorch_on_a_padded_batch(tagger, tagger_files):
    session = onnx_session(tagger_files[0])
    inputs = tagger_inputs(tagger, 3, 12)
    inputs["input_ids"][1, 7:] = 0
    inputs["mask"][1, 7:] = False
    inputs["input_ids"][2, 2:] = 0
    inputs["mask"][2, 2:] = False
    assert max_difference(tagger, session, inputs) <= PARITY_TOLERANCE
    # the mask is really used: the real characters of row 1 see the same logits as without padding
    (padded,) = session.run(["logits"], inputs)
    (alone,) = session.run(["logits"], {"input_ids": inputs["input_ids"][1:2, :7], "mask": inputs["mask"][1:2, :7]})
    np.testing.assert_allclose(padded[1, :7], alone[0], atol=PARITY_TOLERANCE)


def test_tagger_onnx_matches_pytorch_on_real_sentences(tagger, tagger_files, vocab, corpus):
    session = onnx_session(tagger_files[0])
    sentences = [sentence.chars[:MAX_LEN] for sentence in corpus.test[:8]]
    longest = max(len(chars) for chars in sentences)
    ids = np.zeros((len(sentences), longest), dtype=np.int64)
    mask = np.zeros((len(sentences), longest), dtype=bool)
    for row, chars in enumerate(sentences):
        ids[row, : len(chars)] = vocab.encode(chars)
        mask[row, : len(chars)] = True
    assert not mask.all(), "the real sentences should differ in length, so the batch is padded"
    assert max_difference(tagger, session, {"input_ids": ids, "mask": mask}) <= PARITY_TOLERANCE


@pytest.mark.parametrize("batch", [1, 3, 300])
def test_mlp_onnx_matches_pytorch_on_any_batch_size(mlp, mlp_onnx, batch):
    session = onnx_session(mlp_onnx)
    inputs = example_inputs(mlp, batch=batch, seed=batch)
    assert max_difference(mlp, session, inputs) <= PARITY_TOLERANCE


def test_exporting_a_model_in_training_mode_exports_its_eval_behaviour_and_keeps_its_mode(tmp_path):
    torch.manual_seed(0)
    model = MLP(MLPConfig(hidden=(32,), dropout=0.5)).train()
    session = onnx_session(export_onnx(model, tmp_path / "dropout.onnx"))
    assert model.training, "export must not switch the caller's model to eval mode"
    inputs = example_inputs(model, batch=4)
    assert max_difference(model, session, inputs) <= PARITY_TOLERANCE
    assert model.training, "max_difference must restore the model's mode"
    first, second = (session.run(["logits"], inputs)[0] for _ in range(2))
    assert np.array_equal(first, second), "the exported graph must not apply dropout"


def test_session_inputs_and_outputs_are_named_and_typed(tagger_files, mlp_onnx):
    tagger_session = onnx_session(tagger_files[0])
    inputs = {value.name: value for value in tagger_session.get_inputs()}
    assert set(inputs) == {"input_ids", "mask"}
    assert inputs["input_ids"].type == "tensor(int64)"
    assert inputs["mask"].type == "tensor(bool)"
    for value in inputs.values():
        assert all(isinstance(dim, str) for dim in value.shape), f"batch and length of {value.name} must be dynamic"
    (output,) = tagger_session.get_outputs()
    assert output.name == "logits"
    assert output.shape[-1] == len(LABELS)

    mlp_session = onnx_session(mlp_onnx)
    (images,) = mlp_session.get_inputs()
    assert images.name == "images"
    assert images.type == "tensor(float)"
    assert isinstance(images.shape[0], str) and images.shape[1] == 784
    assert [value.name for value in mlp_session.get_outputs()] == ["logits"]


def test_example_inputs_are_valid_for_each_model(tagger, mlp):
    inputs = example_inputs(tagger, batch=2, length=MAX_LEN + 10)
    assert inputs["input_ids"].shape == (2, MAX_LEN), "the length is capped at max_len"
    assert inputs["input_ids"].dtype == np.int64 and inputs["mask"].dtype == bool and inputs["mask"].all()
    assert inputs["input_ids"].min() >= 2 and inputs["input_ids"].max() < tagger.config.vocab_size
    images = example_inputs(mlp, batch=5)["images"]
    assert images.shape == (5, 784) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() < 1.0
    with pytest.raises(TypeError, match="covers TokenTagger and MLP models, got Linear"):
        example_inputs(torch.nn.Linear(2, 2))


# -- int8 ------------------------------------------------------------------------------------------


def test_int8_mnist_network_keeps_its_accuracy_on_real_digits_and_is_smaller(trained_mlp, mnist, tmp_path):
    _, _, images, labels = mnist
    float_path = export_onnx(trained_mlp, tmp_path / "mnist.onnx")
    int8_path = quantize_int8(float_path, tmp_path / "mnist.int8.onnx")
    assert int8_path == tmp_path / "mnist.int8.onnx"
    inputs = {"images": images.numpy()}
    float_logits = onnx_session(float_path).run(["logits"], inputs)[0]
    int8_logits = onnx_session(int8_path).run(["logits"], inputs)[0]
    float_accuracy = float((float_logits.argmax(axis=1) == labels.numpy()).mean())
    int8_accuracy = float((int8_logits.argmax(axis=1) == labels.numpy()).mean())
    assert float_accuracy > 0.7, "one epoch on 5,000 digits should give a working network"
    assert abs(int8_accuracy - float_accuracy) <= INT8_ACCURACY_DROP
    assert int8_path.stat().st_size < float_path.stat().st_size
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mnist.int8.onnx", "mnist.onnx"]


def test_int8_tagger_agrees_with_float_on_the_tags_of_real_sentences(tagger_files, vocab, corpus):
    sentences = [sentence.chars[:MAX_LEN] for sentence in corpus.test[:200]]
    ids = np.zeros((len(sentences), MAX_LEN), dtype=np.int64)
    mask = np.zeros((len(sentences), MAX_LEN), dtype=bool)
    for row, chars in enumerate(sentences):
        ids[row, : len(chars)] = vocab.encode(chars)
        mask[row, : len(chars)] = True
    inputs = {"input_ids": ids, "mask": mask}
    float_tags = onnx_session(tagger_files[0]).run(["logits"], inputs)[0].argmax(axis=-1)
    int8_tags = onnx_session(tagger_files[1]).run(["logits"], inputs)[0].argmax(axis=-1)
    agreement = float((float_tags == int8_tags)[mask].mean())
    assert agreement >= INT8_TAG_AGREEMENT
    assert tagger_files[1].stat().st_size < tagger_files[0].stat().st_size


# -- files: nothing written on failure -------------------------------------------------------------


def test_quantizing_a_missing_file_raises_and_writes_nothing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no ONNX model at .*missing\.onnx; create it with export_onnx"):
        quantize_int8(tmp_path / "missing.onnx", tmp_path / "out.int8.onnx")
    assert list(tmp_path.iterdir()) == []


def test_quantizing_a_corrupt_file_raises_and_writes_nothing(tmp_path):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"this is not an ONNX model")
    with pytest.raises(Exception):
        quantize_int8(corrupt, tmp_path / "corrupt.int8.onnx")
    assert [path.name for path in tmp_path.iterdir()] == ["corrupt.onnx"]


def test_exporting_an_unsupported_model_raises_and_writes_nothing(tmp_path):
    with pytest.raises(TypeError, match="got Linear"):
        export_onnx(torch.nn.Linear(784, 10), tmp_path / "linear.onnx")
    tiny = TokenTagger(TransformerConfig(vocab_size=10, d_model=8, num_heads=2, num_layers=1, d_ff=8, max_len=1), 7)
    with pytest.raises(ValueError, match="max_len=1 cannot have a dynamic length axis"):
        export_onnx(tiny, tmp_path / "tiny.onnx")
    assert list(tmp_path.iterdir()) == []


def test_failing_export_leaves_the_previous_file_and_no_temporary_file(mlp, mlp_onnx, tmp_path, monkeypatch):
    path = tmp_path / "mlp.onnx"
    path.write_bytes(mlp_onnx.read_bytes())
    before = path.read_bytes()

    def broken_export(*args, **kwargs):
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(torch.onnx, "export", broken_export)
    with pytest.raises(RuntimeError, match="exporter crashed"):
        export_onnx(mlp, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["mlp.onnx"]


def test_exporting_over_a_file_replaces_it_and_leaves_no_temporary_files(mlp, mlp_onnx, tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"old")
    assert export_onnx(mlp, path) == path
    assert max_difference(mlp, onnx_session(path), example_inputs(mlp)) <= PARITY_TOLERANCE
    quantize_int8(path, tmp_path / "model.int8.onnx")
    assert hidden_files(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.int8.onnx", "model.onnx"]


def test_onnx_session_on_a_missing_path_says_how_to_create_the_model(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere\.onnx; create it with .*export_bundle"):
        onnx_session(tmp_path / "nowhere.onnx")


@pytest.mark.parametrize("threads", [0, -1, True, 1.5, "2"])
def test_onnx_session_refuses_a_bad_thread_count(mlp_onnx, threads):
    with pytest.raises(ValueError, match=r"threads must be a positive int"):
        onnx_session(mlp_onnx, threads=threads)


def test_onnx_session_runs_on_two_threads(mlp, mlp_onnx):
    session = onnx_session(mlp_onnx, threads=2)
    assert max_difference(mlp, session, example_inputs(mlp, batch=4)) <= PARITY_TOLERANCE


# -- bundles ---------------------------------------------------------------------------------------


def test_export_bundle_adds_the_onnx_and_int8_models_to_the_bundle(trained_mlp, mnist, tmp_path):
    folder = save_bundle(tmp_path / "mnist", trained_mlp, metadata={"epochs": 1})
    onnx_path, int8_path = export_bundle(folder)
    assert (onnx_path, int8_path) == (folder / "model.onnx", folder / "model.int8.onnx")
    assert sorted(path.name for path in folder.iterdir()) == [
        "config.json", "model.int8.onnx", "model.onnx", "model.safetensors",
    ]
    assert hidden_files(folder) == [] and hidden_files(tmp_path) == []
    bundle = load_bundle(folder)
    inputs = {"images": mnist[2][:20].numpy()}
    assert max_difference(bundle.model, onnx_session(onnx_path), inputs) <= PARITY_TOLERANCE
    assert onnx_session(int8_path).run(["logits"], inputs)[0].shape == (20, 10)


def test_export_bundle_of_a_missing_folder_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no bundle folder"):
        export_bundle(tmp_path / "nowhere")
    assert list(tmp_path.iterdir()) == []


# -- quiet -----------------------------------------------------------------------------------------


def test_exporting_and_quantizing_print_nothing_and_warn_nothing(vocab, mlp, tmp_path, capfd):
    torch.manual_seed(1)
    small = TokenTagger(TransformerConfig(vocab_size=len(vocab), d_model=16, num_heads=2, num_layers=1, d_ff=32,
                                          max_len=16, dropout=0.0), num_labels=len(LABELS)).eval()
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export_onnx(small, tmp_path / "tagger.onnx")
        quantize_int8(tmp_path / "tagger.onnx", tmp_path / "tagger.int8.onnx")
        export_onnx(mlp, tmp_path / "mlp.onnx")
        quantize_int8(tmp_path / "mlp.onnx", tmp_path / "mlp.int8.onnx")
    out, err = capfd.readouterr()
    assert out == ""
    assert err == ""
    assert [str(warning.message) for warning in caught] == []
    assert onnx_session(tmp_path / "tagger.int8.onnx").run(["logits"], example_inputs(small))[0].shape == (2, 8, 7)
