"""Tests for course_lib.serve.predict: raw text and pixels in, entities and digits out, on every backend, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from course_lib.data import LABELS, CharVocab, load_mnist, load_msra, mnist_tensors
from course_lib.serve.bundle import load_bundle, save_bundle
from course_lib.nn.mlp import MLP, MLPConfig
from course_lib.data.msra import extract_entities
from course_lib.serve.onnx import export_bundle
from course_lib.serve.predict import (
    BACKENDS,
    DigitPredictor,
    NerPredictor,
    TorchRunner,
    _as_pixel_batch,
    default_bundle_dir,
    load_predictor,
    main,
    make_runner,
)
from course_lib.train.fit import cpu_threads
from course_lib.nn.transformer import TokenTagger, TransformerConfig

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_LEN = 32
NUM_LABELS = len(LABELS)


def one_thread():
    return cpu_threads(torch.device("cpu"), 1)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=-1, keepdims=True)


def spans(entities) -> list[tuple[str, str, int, int]]:
    return [(entity.text, entity.kind, entity.start, entity.end) for entity in entities]


def assert_valid_entities(text: str, entities) -> None:
    for entity in entities:
        assert 0 <= entity.start < entity.end <= len(text)
        assert text[entity.start:entity.end] == entity.text
        assert entity.kind in ("PER", "LOC", "ORG")
        assert 0.0 < entity.score <= 1.0


# -- fixtures: one trained tagger bundle and one trained MNIST bundle per module -------------------


@pytest.fixture(scope="module")
def corpus():
    return load_msra()


@pytest.fixture(scope="module")
def vocab(corpus) -> CharVocab:
    return CharVocab.build(corpus.train[:600])


@pytest.fixture(scope="module")
def test_texts(corpus) -> list[str]:
    """Real MSRA test sentences as plain strings."""
    return ["".join(sentence.chars) for sentence in corpus.test[:60]]


@pytest.fixture(scope="module")
def ner_folder(corpus, vocab, tmp_path_factory) -> Path:
    """A tiny tagger trained for a few seconds on 600 real sentences (so it finds entities), with ONNX files."""
    label_ids = {label: index for index, label in enumerate(LABELS)}
    pieces = [
        (vocab.encode(sentence.chars[start:start + MAX_LEN]),
         [label_ids[tag] for tag in sentence.tags[start:start + MAX_LEN]])
        for sentence in corpus.train[:600]
        for start in range(0, len(sentence.chars), MAX_LEN)
    ]
    ids = torch.zeros(len(pieces), MAX_LEN, dtype=torch.long)
    tags = torch.full((len(pieces), MAX_LEN), -100)
    mask = torch.zeros(len(pieces), MAX_LEN, dtype=torch.bool)
    for row, (chars, labels) in enumerate(pieces):
        ids[row, : len(chars)] = torch.tensor(chars)
        tags[row, : len(labels)] = torch.tensor(labels)
        mask[row, : len(chars)] = True
    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=len(vocab), d_model=32, num_heads=2, num_layers=1, d_ff=64,
                               max_len=MAX_LEN, dropout=0.0)
    model = TokenTagger(config, num_labels=NUM_LABELS)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    with one_thread():
        for _ in range(4):
            order = torch.randperm(len(pieces))
            for first in range(0, len(pieces), 32):
                rows = order[first:first + 32]
                logits = model(ids[rows], mask[rows]).logits
                loss = torch.nn.functional.cross_entropy(logits.reshape(-1, NUM_LABELS), tags[rows].reshape(-1))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    folder = save_bundle(tmp_path_factory.mktemp("bundles") / "ner", model.eval(), vocab=vocab)
    export_bundle(folder)
    return folder


@pytest.fixture(scope="module")
def ner_predictors(ner_folder) -> dict[str, NerPredictor]:
    return {backend: load_predictor(ner_folder, backend) for backend in BACKENDS}


@pytest.fixture(params=BACKENDS)
def ner_predictor(request, ner_predictors) -> NerPredictor:
    return ner_predictors[request.param]


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


@pytest.fixture(scope="module")
def mnist_folder(mnist, tmp_path_factory) -> Path:
    """An MLP (32 hidden units) after one epoch on 5,000 real digits, with ONNX files."""
    images, labels = mnist_tensors(mnist, "train")
    torch.manual_seed(0)
    model = MLP(MLPConfig(hidden=(32,)))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    with one_thread():
        for first in range(0, 5000, 50):
            loss = torch.nn.functional.cross_entropy(model(images[first:first + 50]), labels[first:first + 50])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    folder = save_bundle(tmp_path_factory.mktemp("bundles") / "mnist", model.eval())
    export_bundle(folder)
    return folder


@pytest.fixture(scope="module")
def digit_predictors(mnist_folder) -> dict[str, DigitPredictor]:
    return {backend: load_predictor(mnist_folder, backend) for backend in BACKENDS}


@pytest.fixture(scope="module")
def digits(mnist) -> np.ndarray:
    """Six real test digits, uint8 (6, 28, 28)."""
    return mnist.test_images[:6].copy()


# -- text: bad input -------------------------------------------------------------------------------


def test_empty_and_whitespace_texts_have_no_entities(ner_predictor):
    assert ner_predictor.predict("") == []
    assert ner_predictor.predict("   \n") == []
    assert ner_predictor.tag("") == []
    assert ner_predictor.tag(" \t") == [(" ", "O"), ("\t", "O")]
    assert ner_predictor.unknown_characters("") == []


def test_empty_and_whitespace_texts_get_zero_probability_rows(ner_predictors):
    predictor = ner_predictors["torch"]
    empty, blank = predictor.probabilities(["", "  \t"])
    assert empty.shape == (0, len(predictor.labels)) and blank.shape == (3, len(predictor.labels))
    assert not blank.any()
    assert predictor.tag("  \t") == [(" ", "O"), (" ", "O"), ("\t", "O")]


def test_empty_and_whitespace_texts_do_not_run_the_model(vocab):
    def runner(inputs):
        raise AssertionError("the model must not run on empty text")

    predictor = NerPredictor(runner, vocab, LABELS, MAX_LEN)
    assert predictor.predict("") == []
    assert predictor.predict_batch(["", "  ", "\n"]) == [[], [], []]
    assert predictor.tag("  ") == [(" ", "O"), (" ", "O")]


@pytest.mark.parametrize("bad", [None, 3, b"bytes", ["\u5317\u4eac"]])
def test_predict_on_a_non_string_says_to_pass_a_str(ner_predictors, bad):
    predictor = ner_predictors["torch"]
    with pytest.raises(TypeError, match=rf"text must be a str, got {type(bad).__name__}; .*predict_batch"):
        predictor.predict(bad)
    with pytest.raises(TypeError, match="text must be a str"):
        predictor.tag(bad)
    with pytest.raises(TypeError, match="text must be a str"):
        predictor.unknown_characters(bad)


def test_predict_batch_on_a_bare_string_says_to_use_predict(ner_predictors):
    predictor = ner_predictors["torch"]
    with pytest.raises(TypeError, match=r"texts must be a list of str, got str; for one text use predict\(text\)"):
        predictor.predict_batch("北京")
    with pytest.raises(TypeError, match="texts must be a list of str, got NoneType"):
        predictor.predict_batch(None)
    with pytest.raises(TypeError, match="text must be a str, got int"):
        predictor.predict_batch(["北京", 3])


def test_predict_batch_with_an_empty_text_gives_an_empty_list_for_it(ner_predictor, test_texts):
    results = ner_predictor.predict_batch(["", "北京", test_texts[0]])
    assert results[0] == []
    assert spans(results[1]) == spans(ner_predictor.predict("北京"))
    assert spans(results[2]) == spans(ner_predictor.predict(test_texts[0]))
    assert ner_predictor.predict_batch([]) == []


def test_unknown_characters_are_listed_and_offsets_still_index_the_original_text(ner_predictor, vocab):
    text = "Hello 北京 🙂 中国人民银行"
    known = set(vocab.tokens())
    expected = [index for index, char in enumerate(text) if char not in known]
    assert {"北", "京", "中", "国"} <= known, "the test needs some characters the vocabulary holds"
    assert text.index("🙂") in expected and text.index(" ") in expected
    assert ner_predictor.unknown_characters(text) == expected
    entities = ner_predictor.predict(text)
    assert_valid_entities(text, entities)
    assert len(ner_predictor.tag(text)) == len(text)


# -- text: entities --------------------------------------------------------------------------------


def test_entities_are_the_spans_of_the_predicted_tags_with_their_mean_probability(ner_predictor, test_texts):
    found = 0
    for text in test_texts[:20]:
        tagged = ner_predictor.tag(text)
        assert [char for char, _ in tagged] == list(text)
        entities = ner_predictor.predict(text)
        assert spans(entities) == extract_entities(list(text), [tag for _, tag in tagged])
        assert_valid_entities(text, entities)
        (probs,) = ner_predictor.probabilities([text])
        assert probs.shape == (len(text), NUM_LABELS)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0)
        tags = ["O"] + [tag for _, tag in tagged]
        assert all(tag[2:] == previous[2:] for previous, tag in zip(tags, tags[1:]) if tag.startswith("I-")), \
            f"an I- tag that continues no entity: {tagged}"
        chosen = probs[np.arange(len(text)), [ner_predictor.labels.index(tag) for _, tag in tagged]]
        for entity in entities:
            assert entity.score == pytest.approx(chosen[entity.start:entity.end].mean(), abs=1e-4)
        found += len(entities)
    assert found > 0, "the trained tagger should find entities in 20 real sentences"


def test_torch_and_onnx_backends_find_the_same_entities(ner_predictors, test_texts):
    for text in test_texts[:10]:
        torch_entities = ner_predictors["torch"].predict(text)
        onnx_entities = ner_predictors["onnx"].predict(text)
        assert spans(torch_entities) == spans(onnx_entities)
        for a, b in zip(torch_entities, onnx_entities):
            assert a.score == pytest.approx(b.score, abs=2e-4)
        int8_entities = ner_predictors["int8"].predict(text)
        assert_valid_entities(text, int8_entities)


def test_entity_to_dict_is_plain_json(ner_predictors, test_texts):
    entities = [e for text in test_texts[:10] for e in ner_predictors["torch"].predict(text)]
    assert entities
    for entity in entities:
        as_dict = json.loads(json.dumps(entity.to_dict(), ensure_ascii=False))
        assert as_dict == {"text": entity.text, "kind": entity.kind, "start": entity.start, "end": entity.end,
                           "score": entity.score}


# -- text: windows ---------------------------------------------------------------------------------


@pytest.mark.parametrize("max_len, stride", [(8, 1), (8, 3), (8, 4), (8, 8), (10, 3), (10, 7)])
@pytest.mark.parametrize("length", [11, 37, 100])
def test_windows_cover_every_position_stride_apart_and_end_at_the_text_end(vocab, max_len, stride, length):
    predictor = NerPredictor(lambda inputs: None, vocab, LABELS, max_len, stride=stride)
    windows = predictor.windows(length)
    assert windows[0][0] == 0
    assert windows[-1][1] == length
    assert all(end - start == max_len for start, end in windows)
    starts = [start for start, _ in windows]
    assert all(b - a == stride for a, b in zip(starts[:-2], starts[1:-1]))
    assert 0 < starts[-1] - starts[-2] <= stride
    covered = np.zeros(length, dtype=bool)
    for start, end in windows:
        covered[start:end] = True
    assert covered.all()


def test_short_text_is_one_window(vocab):
    predictor = NerPredictor(lambda inputs: None, vocab, LABELS, 8)
    assert predictor.stride == 4
    assert predictor.windows(8) == [(0, 8)]
    assert predictor.windows(3) == [(0, 3)]


def position_runner(max_len: int):
    """A fake model whose logits say where in its window each character sat and which character it was.

    Column ``l`` (< max_len) is high at window position ``l``; the last column carries the character id.
    """
    calls = []

    def runner(inputs: dict[str, np.ndarray]) -> np.ndarray:
        ids, mask = inputs["input_ids"], inputs["mask"]
        calls.append(ids.copy())
        batch, length = ids.shape
        logits = np.zeros((batch, length, max_len + 1), dtype=np.float32)
        positions = np.arange(length)
        logits[:, positions, positions] = 5.0
        logits[:, :, max_len] = (ids % 5) * 0.5
        logits[~mask] = 0.0
        return logits

    runner.calls = calls
    return runner


@pytest.mark.parametrize("max_len, stride", [(8, 4), (8, 3), (10, 1), (10, 10), (9, 5)])
def test_long_text_takes_each_position_from_the_window_where_it_lies_farthest_from_an_edge(
    vocab, test_texts, max_len, stride
):
    text = "".join(test_texts)[: 5 * max_len + 3]
    labels = [f"L{i}" for i in range(max_len + 1)]
    runner = position_runner(max_len)
    predictor = NerPredictor(runner, vocab, labels, max_len, stride=stride, batch_size=3)
    (probs,) = predictor.probabilities([text])
    windows = predictor.windows(len(text))
    assert len(windows) > 2
    assert sum(len(call) for call in runner.calls) == len(windows), "each window runs once"
    ids = np.array(vocab.encode(text))
    for position in range(len(text)):
        offset = int(probs[position, :max_len].argmax())  # where in its window the position sat
        start = position - offset
        assert (start, start + max_len) in windows
        margin = min(offset, max_len - 1 - offset)
        best = max(min(position - a, b - 1 - position) for a, b in windows if a <= position < b)
        assert margin == best, f"position {position} came from a window where it is {margin}, not {best}, from an edge"
        assert margin >= min((max_len - stride) // 2, position, len(text) - 1 - position)
        window_ids = ids[start:start + max_len][None, :]
        expected = softmax(runner({"input_ids": window_ids, "mask": np.ones_like(window_ids, dtype=bool)}))
        np.testing.assert_allclose(probs[position], expected[0, offset], rtol=1e-12, atol=0)


def test_text_of_three_windows_and_more_runs_on_every_backend(ner_predictor, test_texts):
    text = "".join(test_texts)[: 3 * MAX_LEN + 7]
    assert len(text) == 3 * MAX_LEN + 7
    assert len(ner_predictor.windows(len(text))) >= 4
    tagged = ner_predictor.tag(text)
    assert [char for char, _ in tagged] == list(text)
    entities = ner_predictor.predict(text)
    assert_valid_entities(text, entities)
    assert spans(entities) == extract_entities(list(text), [tag for _, tag in tagged])
    (probs,) = ner_predictor.probabilities([text])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_text_up_to_max_len_gives_the_probabilities_of_one_direct_runner_call(ner_predictors, test_texts, backend):
    predictor = ner_predictors[backend]
    for text in ("".join(test_texts)[:MAX_LEN], test_texts[1][:7]):
        ids = np.array([predictor.vocab.encode(text)], dtype=np.int64)
        expected = softmax(predictor.runner({"input_ids": ids, "mask": np.ones(ids.shape, dtype=bool)}))[0]
        (probs,) = predictor.probabilities([text])
        np.testing.assert_array_equal(probs, expected)


@pytest.mark.parametrize("stride", [0, -1, MAX_LEN + 1, 2.5])
def test_bad_stride_is_refused(ner_folder, vocab, stride):
    with pytest.raises(ValueError, match="stride"):
        NerPredictor(TorchRunner(torch.nn.Identity()), vocab, LABELS, MAX_LEN, stride=stride)
    with pytest.raises(ValueError, match="stride"):
        load_predictor(ner_folder, stride=stride)


def test_bad_max_len_and_batch_size_are_refused(vocab):
    with pytest.raises(ValueError, match="max_len must be a positive int, got 0"):
        NerPredictor(lambda inputs: None, vocab, LABELS, 0)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        NerPredictor(lambda inputs: None, vocab, LABELS, 8, batch_size=0)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        DigitPredictor(lambda inputs: None, list("0123456789"), batch_size=True)


# -- text: batching --------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_predict_batch_in_batches_of_eight_equals_predicting_one_text_at_a_time(ner_folder, test_texts, backend):
    # int8 is left out on purpose: dynamic quantisation scales activations per call, so its answer for a
    # text may depend on the other texts in the batch
    texts = test_texts[:40]
    assert any(len(text) > MAX_LEN for text in texts), "some texts should need several windows"
    predictor = load_predictor(ner_folder, backend, batch_size=8)
    batched, alone = predictor.predict_batch(texts), [predictor.predict(text) for text in texts]
    assert [spans(found) for found in batched] == [spans(found) for found in alone]
    # scores are rounded to 4 places: padding changes the float sums in the last bits, which may flip a rounding
    assert all(a.score == pytest.approx(b.score, abs=2e-4) for x, y in zip(batched, alone) for a, b in zip(x, y))


def test_int8_predict_batch_gives_valid_entities_for_every_text(ner_predictors, test_texts):
    texts = test_texts[:40]
    results = ner_predictors["int8"].predict_batch(texts)
    assert len(results) == len(texts)
    for text, entities in zip(texts, results):
        assert_valid_entities(text, entities)


# -- digits ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["28x28", "784", "Nx28x28", "Nx784", "Nx1x28x28"])
@pytest.mark.parametrize("kind", ["numpy uint8", "numpy float32", "torch uint8", "torch float32"])
def test_digit_predictor_accepts_every_documented_shape_and_type(digit_predictors, digits, form, kind):
    predictor = digit_predictors["torch"]
    images = digits if form.startswith("N") else digits[:1]
    shape = {"28x28": (28, 28), "784": (784,), "Nx28x28": (len(images), 28, 28), "Nx784": (len(images), 784),
             "Nx1x28x28": (len(images), 1, 28, 28)}[form]
    array = images.reshape(shape)
    if "float32" in kind:
        array = array.astype(np.float32) / 255.0
    if kind.startswith("torch"):
        array = torch.from_numpy(array)
    prediction = predictor.predict(array)
    reference = predictor.predict(images)
    assert prediction.digits.shape == (len(images),)
    assert prediction.probabilities.shape == (len(images), 10)
    np.testing.assert_allclose(prediction.probabilities.sum(axis=1), 1.0)
    assert np.array_equal(prediction.digits, prediction.probabilities.argmax(axis=1))
    assert np.array_equal(prediction.digits, reference.digits)


def test_uint8_and_scaled_float_pixels_give_the_same_digits_on_every_backend(digit_predictors, mnist):
    images = mnist.test_images[:200]
    for backend, predictor in digit_predictors.items():
        from_uint8 = predictor.predict(images)
        from_float = predictor.predict(images.astype(np.float32) / 255)
        assert np.array_equal(from_uint8.digits, from_float.digits), backend
        np.testing.assert_allclose(from_uint8.probabilities, from_float.probabilities, atol=1e-6)
        accuracy = float((from_uint8.digits == mnist.test_labels[:200]).mean())
        assert accuracy > 0.7, f"{backend}: the trained network should read most real digits"


def test_torch_and_onnx_digit_predictors_agree(digit_predictors, mnist):
    images = mnist.test_images[:100]
    torch_prediction = digit_predictors["torch"].predict(images)
    onnx_prediction = digit_predictors["onnx"].predict(images)
    assert np.array_equal(torch_prediction.digits, onnx_prediction.digits)
    np.testing.assert_allclose(torch_prediction.probabilities, onnx_prediction.probabilities, atol=1e-5)


def test_digit_predictor_in_small_batches_gives_the_same_answers(mnist_folder, digit_predictors, mnist):
    images = mnist.test_images[:20]
    small = load_predictor(mnist_folder, batch_size=7).predict(images)
    whole = digit_predictors["torch"].predict(images)
    assert np.array_equal(small.digits, whole.digits)
    np.testing.assert_allclose(small.probabilities, whole.probabilities, atol=1e-6)


def test_half_precision_tensors_are_read_as_floats(digit_predictors, mnist):
    pixels = torch.from_numpy(mnist.test_images[:4].astype(np.float32) / 255)
    expected = digit_predictors["torch"].predict(pixels).digits
    for dtype in (torch.bfloat16, torch.float16):
        assert np.array_equal(digit_predictors["torch"].predict(pixels.to(dtype)).digits, expected)


def test_empty_batch_of_digits_gives_empty_answers(digit_predictors):
    for predictor in digit_predictors.values():
        prediction = predictor.predict(np.zeros((0, 28, 28), dtype=np.uint8))
        assert prediction.digits.shape == (0,)
        assert prediction.probabilities.shape == (0, 10)


@pytest.mark.parametrize(
    "images, error, message",
    [
        (np.zeros((27, 28), dtype=np.uint8), ValueError, r"28x28 digits .* got shape \(27, 28\)"),
        (np.zeros((2, 28, 27), dtype=np.uint8), ValueError, "28x28"),
        (np.zeros((2, 2, 28, 28), dtype=np.uint8), ValueError, "28x28"),
        (np.full((28, 28), 200.0, dtype=np.float32), ValueError, r"\[0, 1\].*divide by 255"),
        (np.full((28, 28), np.nan, dtype=np.float32), ValueError, "NaN"),
        (np.full((28, 28), np.inf, dtype=np.float64), ValueError, "infinite"),
        (np.full((28, 28), -0.5, dtype=np.float32), ValueError, r"must lie in \[0, 1\]"),
        (np.full((28, 28), 256, dtype=np.int32), ValueError, "0-255"),
        (np.full((28, 28), -1, dtype=np.int16), ValueError, "0-255"),
        (np.zeros((28, 28), dtype=bool), TypeError, "dtype bool"),
        (np.zeros((28, 28), dtype=np.complex64), TypeError, "dtype complex64"),
        (torch.zeros(28, 28, dtype=torch.bool), TypeError, "dtype bool"),
        ([[0] * 28] * 28, TypeError, "numpy array or a torch tensor, got list"),
        ("digit.png", TypeError, "got str"),
    ],
)
def test_bad_pixels_raise_clear_errors(digit_predictors, images, error, message):
    with pytest.raises(error, match=message):
        digit_predictors["torch"].predict(images)


def test_pixel_batch_is_float32_in_zero_one(digits):
    pixels = _as_pixel_batch(digits)
    assert pixels.dtype == np.float32 and pixels.shape == (6, 784)
    assert pixels.min() >= 0.0 and pixels.max() <= 1.0
    np.testing.assert_array_equal(pixels, digits.reshape(6, 784) / np.float32(255))


# -- loading ---------------------------------------------------------------------------------------


def test_unknown_backend_is_refused(ner_folder):
    with pytest.raises(ValueError, match=r"backend must be one of \('torch', 'onnx', 'int8'\), got 'tensorrt'"):
        load_predictor(ner_folder, "tensorrt")


@pytest.mark.parametrize("backend", ["onnx", "int8"])
def test_onnx_backend_without_exported_files_says_how_to_export(tmp_path, backend):
    folder = save_bundle(tmp_path / "mnist", MLP(MLPConfig(hidden=(8,))))
    with pytest.raises(FileNotFoundError, match="export_bundle"):
        load_predictor(folder, backend)
    assert isinstance(load_predictor(folder, "torch"), DigitPredictor)


def test_make_runner_gives_logits_of_the_bundle_model(digits, mnist_folder):
    bundle = load_bundle(mnist_folder)
    runner = make_runner(bundle, "onnx")
    pixels = _as_pixel_batch(digits)
    with torch.no_grad():
        expected = bundle.model(torch.from_numpy(pixels)).numpy()
    np.testing.assert_allclose(runner({"images": pixels}), expected, atol=1e-4)


def test_default_bundle_dir_is_in_the_data_cache(model_cache):
    assert default_bundle_dir("ner") == model_cache / "deploy" / "ner_student_fast"
    assert default_bundle_dir("mnist", "full") == model_cache / "deploy" / "mnist_student_full"


# -- command line ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digit_files(digit_predictors, mnist, tmp_path_factory) -> tuple[Path, Path, int]:
    """A real test digit that the network reads correctly, as .npy and as a PNG written with PIL."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("digit")
    correct = np.flatnonzero(digit_predictors["torch"].predict(mnist.test_images[:50]).digits == mnist.test_labels[:50])
    index = int(correct[0])
    np.save(folder / "digit.npy", mnist.test_images[index])
    Image.fromarray(mnist.test_images[index]).save(folder / "digit.png")
    return folder / "digit.npy", folder / "digit.png", int(mnist.test_labels[index])


@pytest.fixture(scope="module")
def cli(ner_folder, test_texts, tmp_path_factory):
    """Run the command-line cases that need a fresh process at once (each start costs a few seconds)."""
    text = test_texts[2]
    missing = tmp_path_factory.mktemp("cli") / "no_such_bundle"
    cases = {
        "json": ["ner", text, "--model", str(ner_folder), "--json"],
        "missing": ["ner", text, "--model", str(missing)],
    }
    processes = {
        name: subprocess.Popen([sys.executable, "-m", "course_lib.serve.predict", *args], cwd=REPO_ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
        for name, args in cases.items()
    }
    results = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=120)
        results[name] = subprocess.CompletedProcess(cases[name], process.returncode, stdout, stderr)
    return results, text, missing


def test_cli_json_matches_the_predictor_in_process(cli, ner_predictors):
    results, text, _ = cli
    run = results["json"]
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    expected = ner_predictors["torch"].predict(text)
    assert expected, "the sentence should have entities, so the comparison means something"
    assert answer["entities"] == [entity.to_dict() for entity in expected]
    assert answer["unknown_characters"] == ner_predictors["torch"].unknown_characters(text)


def test_cli_with_a_missing_model_folder_exits_2_and_names_it(cli):
    results, _, missing = cli
    run = results["missing"]
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.startswith("error: ")
    assert str(missing) in run.stderr
    assert "Traceback" not in run.stderr


# The remaining cases call main() in this process: the same code path without paying for a new start.


def test_cli_plain_output_prints_one_line_per_entity(ner_folder, ner_predictors, test_texts, capsys):
    text = test_texts[2]
    expected = ner_predictors["torch"].predict(text)
    assert expected
    assert main(["ner", text, "--model", str(ner_folder)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t") for line in lines] == [
        [e.text, e.kind, f"{e.start}-{e.end}", f"{e.score:.2f}"] for e in expected
    ]


def test_cli_plain_output_says_when_there_are_no_entities(ner_folder, capsys):
    assert main(["ner", "   ", "--model", str(ner_folder)]) == 0
    assert capsys.readouterr().out.splitlines() == ["(no entities)"]


def test_cli_reports_unknown_characters_on_stderr(ner_folder, capsys):
    assert main(["ner", "Hi 北京", "--model", str(ner_folder)]) == 0
    assert "3 character(s) unknown to the model" in capsys.readouterr().err


def test_cli_int8_backend_answers_like_the_int8_predictor(ner_folder, ner_predictors, test_texts, capsys):
    text = test_texts[2]
    assert main(["ner", text, "--model", str(ner_folder), "--backend", "int8", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    for entity in answer["entities"]:
        assert text[entity["start"]:entity["end"]] == entity["text"]
    assert answer["entities"] == [entity.to_dict() for entity in ner_predictors["int8"].predict(text)]


def test_cli_reads_a_digit_from_a_png(mnist_folder, digit_files, capsys):
    assert main(["mnist", str(digit_files[1]), "--model", str(mnist_folder)]) == 0
    digit, probability = capsys.readouterr().out.strip().split("\t")
    assert int(digit) == digit_files[2]
    assert 0.0 < float(probability) <= 1.0


def test_cli_reads_a_digit_from_an_npy_file(mnist_folder, digit_files, capsys):
    assert main(["mnist", str(digit_files[0]), "--model", str(mnist_folder), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["digit"] == digit_files[2]
    assert len(answer["probabilities"]) == 10
    assert sum(answer["probabilities"]) == pytest.approx(1.0, abs=1e-3)


def test_cli_refuses_a_bundle_of_the_other_task(mnist_folder, capsys):
    assert main(["ner", "北京", "--model", str(mnist_folder)]) == 2
    captured = capsys.readouterr()
    assert "is not a 'ner' model" in captured.err
    assert captured.out == ""


def test_cli_with_a_missing_image_exits_2(mnist_folder, tmp_path, capsys):
    assert main(["mnist", str(tmp_path / "none.png"), "--model", str(mnist_folder)]) == 2
    assert "error: no image file at" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["corrupt.png", "corrupt.npy"])
def test_cli_with_an_unreadable_image_exits_2(mnist_folder, tmp_path, capsys, name):
    corrupt = tmp_path / name
    corrupt.write_bytes(b"this is not an image")
    assert main(["mnist", str(corrupt), "--model", str(mnist_folder)]) == 2
    assert f"error: {corrupt} is not a readable image" in capsys.readouterr().err
