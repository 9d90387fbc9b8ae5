"""Tests for course_lib.serve.bundle: bundle round trips, atomic replacement and clear loading errors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

import course_lib
from course_lib import files
from course_lib.serve import bundle as deploy
from course_lib.data import LABELS, CharVocab, Sentence, load_msra
from course_lib.serve.bundle import BundleError, load_bundle, read_bundle_config, save_bundle
from course_lib.nn.mlp import MLP, MLPConfig
from course_lib.nn.transformer import TokenTagger, TransformerConfig


@pytest.fixture(scope="module")
def train_sentences() -> list[Sentence]:
    """200 real MSRA training sentences."""
    return load_msra().train[:200]


@pytest.fixture(scope="module")
def vocab(train_sentences) -> CharVocab:
    """The characters of the 200 sentences, most frequent first."""
    return CharVocab.build(train_sentences)


def tagger(vocab: CharVocab, d_model: int = 16, seed: int = 0) -> TokenTagger:
    torch.manual_seed(seed)
    config = TransformerConfig(vocab_size=len(vocab), d_model=d_model, num_heads=2, num_layers=1,
                               d_ff=32, max_len=32, dropout=0.0)
    return TokenTagger(config, num_labels=len(LABELS)).eval()


def mlp(seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP(MLPConfig(hidden=(32,))).eval()


def tagger_input(vocab: CharVocab) -> tuple[torch.Tensor, torch.Tensor]:
    """Real MSRA characters (the vocabulary's own) in a batch of two, the second padded at the tail."""
    known = vocab.tokens()[2:15]
    ids = torch.tensor([vocab.encode(known), vocab.encode(known[:9]) + [vocab.pad_id] * 4])
    mask = torch.ones(ids.shape, dtype=torch.bool)
    mask[1, 9:] = False
    return ids, mask


def hidden_entries(folder: Path) -> list[str]:
    """Names beside the bundle that start with '.' (leftover temporary folders)."""
    return sorted(path.name for path in folder.parent.iterdir() if path.name.startswith("."))


def rewrite_config(folder: Path, change) -> None:
    path = folder / deploy.CONFIG_FILE
    config = json.loads(path.read_text(encoding="utf-8"))
    change(config)
    path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")


# -- round trips -----------------------------------------------------------------------------------


def test_tagger_round_trip_gives_identical_logits_vocabulary_and_labels(tmp_path, train_sentences, vocab):
    model = tagger(vocab)
    folder = save_bundle(tmp_path / "ner", model, vocab=vocab, metadata={"dev_f1": 0.5})
    assert folder == tmp_path / "ner"
    bundle = load_bundle(folder)
    assert bundle.task == "ner"
    assert isinstance(bundle.model, TokenTagger)
    assert not bundle.model.training, "a loaded model must be in eval mode"
    assert bundle.vocab.tokens() == vocab.tokens()
    assert bundle.labels == list(LABELS)
    assert bundle.max_len == 32
    assert bundle.metadata == {"dev_f1": 0.5}
    assert bundle.model.config == model.config
    for sentence in train_sentences[:5]:
        assert bundle.vocab.encode(sentence.chars) == vocab.encode(sentence.chars)
    input_ids, mask = tagger_input(vocab)
    with torch.no_grad():
        expected = model(input_ids, mask=mask).logits
        actual = bundle.model(input_ids, mask=mask).logits
    assert torch.equal(expected, actual)


def test_mlp_round_trip_gives_identical_outputs(tmp_path):
    model = mlp()
    bundle = load_bundle(save_bundle(tmp_path / "mnist", model))
    assert bundle.task == "mnist"
    assert bundle.vocab is None
    assert bundle.max_len is None
    assert bundle.labels == [str(digit) for digit in range(10)]
    assert bundle.model.config == model.config
    images = torch.rand(5, 784, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(images), bundle.model(images))


def test_custom_labels_are_kept(tmp_path):
    labels = list("abcdefghij")
    bundle = load_bundle(save_bundle(tmp_path / "mnist", mlp(), labels=labels))
    assert bundle.labels == labels


def test_folder_holds_only_config_and_weights_and_config_records_everything(tmp_path, vocab):
    model = tagger(vocab)
    folder = save_bundle(tmp_path / "ner", model, vocab=vocab, metadata={"epochs": 3, "note": "tiny"})
    assert sorted(path.name for path in folder.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert config["task"] == "ner"
    assert config["architecture"] == {"class": "TokenTagger", "config": model.config.to_dict()}
    assert config["labels"] == list(LABELS)
    assert config["vocabulary"] == vocab.tokens()
    assert config["course_lib_version"] == course_lib.__version__
    assert config["metadata"] == {"epochs": 3, "note": "tiny"}
    assert config["format_version"] == deploy.FORMAT_VERSION
    assert config["tensors"]["classifier.weight"] == [len(LABELS), 16]
    assert read_bundle_config(folder) == config
    assert hidden_entries(folder) == []


def test_mlp_config_records_no_vocabulary_and_the_digit_labels(tmp_path):
    folder = save_bundle(tmp_path / "mnist", mlp())
    config = read_bundle_config(folder)
    assert config["task"] == "mnist"
    assert config["architecture"]["class"] == "MLP"
    assert config["architecture"]["config"]["hidden"] == [32]
    assert config["vocabulary"] is None
    assert config["labels"] == [str(digit) for digit in range(10)]
    assert config["metadata"] == {}


# -- replacing a bundle ----------------------------------------------------------------------------


def test_saving_over_a_bundle_replaces_it_whole_and_leaves_no_temporary_folders(tmp_path, vocab):
    folder = save_bundle(tmp_path / "ner", tagger(vocab, seed=0), vocab=vocab)
    (folder / "model.onnx").write_bytes(b"stale export of the old weights")
    newer = tagger(vocab, seed=1)
    save_bundle(folder, newer, vocab=vocab, metadata={"version": 2})
    assert sorted(path.name for path in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert hidden_entries(folder) == []
    bundle = load_bundle(folder)
    assert bundle.metadata == {"version": 2}
    input_ids, mask = tagger_input(vocab)
    with torch.no_grad():
        assert torch.equal(bundle.model(input_ids, mask=mask).logits, newer(input_ids, mask=mask).logits)


def test_saving_a_tagger_over_an_mnist_bundle_replaces_its_task(tmp_path, vocab):
    folder = save_bundle(tmp_path / "model", mlp())
    save_bundle(folder, tagger(vocab), vocab=vocab)
    assert load_bundle(folder).task == "ner"
    assert hidden_entries(folder) == []


def test_failed_save_keeps_the_old_bundle_and_leaves_no_temporary_folders(tmp_path, vocab, monkeypatch):
    folder = save_bundle(tmp_path / "ner", tagger(vocab, seed=0), vocab=vocab, metadata={"version": 1})
    before = {path.name: path.read_bytes() for path in folder.iterdir()}

    def broken_save_file(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(deploy, "save_file", broken_save_file)
    with pytest.raises(OSError, match="disk full"):
        save_bundle(folder, tagger(vocab, seed=1), vocab=vocab, metadata={"version": 2})
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before
    assert hidden_entries(folder) == []
    assert load_bundle(folder).metadata == {"version": 1}


def test_failure_while_moving_the_new_bundle_in_puts_the_old_one_back(tmp_path, vocab, monkeypatch):
    folder = save_bundle(tmp_path / "ner", tagger(vocab, seed=0), vocab=vocab, metadata={"version": 1})
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    real_replace = os.replace

    def replace_failing_on_the_new_bundle(source, target):
        if str(source).endswith(".tmp"):  # the staging folder, after the old bundle has been moved aside
            raise OSError("rename failed")
        return real_replace(source, target)

    monkeypatch.setattr(files.os, "replace", replace_failing_on_the_new_bundle)
    with pytest.raises(OSError, match="rename failed"):
        save_bundle(folder, tagger(vocab, seed=1), vocab=vocab, metadata={"version": 2})
    monkeypatch.undo()
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before
    assert hidden_entries(folder) == []


def test_saving_onto_a_file_is_refused(tmp_path):
    target = tmp_path / "model"
    target.write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="is a file"):
        save_bundle(target, mlp())
    assert target.read_text() == "not a folder"


# -- loading errors --------------------------------------------------------------------------------


def test_weights_from_a_different_architecture_name_the_differing_tensor(tmp_path, vocab):
    wide = save_bundle(tmp_path / "wide", tagger(vocab, d_model=32), vocab=vocab)
    narrow = save_bundle(tmp_path / "narrow", tagger(vocab, d_model=16), vocab=vocab)
    shutil.copyfile(wide / "model.safetensors", narrow / "model.safetensors")
    with pytest.raises(BundleError) as error:
        load_bundle(narrow)
    message = str(error.value)
    assert "encoder.embed.weight" in message
    assert f"({len(vocab)}, 32)" in message and f"({len(vocab)}, 16)" in message
    assert "differ in shape" in message
    assert "different models" in message


def test_labels_that_do_not_fit_the_classifier_name_its_tensor(tmp_path, vocab):
    folder = save_bundle(tmp_path / "ner", tagger(vocab), vocab=vocab)
    rewrite_config(folder, lambda config: config.update(labels=["O", "B-PER", "I-PER"]))
    with pytest.raises(BundleError, match=r"classifier\.weight"):
        load_bundle(folder)


def test_missing_vocabulary_is_reported(tmp_path, vocab):
    folder = save_bundle(tmp_path / "ner", tagger(vocab), vocab=vocab)
    rewrite_config(folder, lambda config: config.pop("vocabulary"))
    with pytest.raises(BundleError, match=r"has no vocabulary.*vocab="):
        load_bundle(folder)


def test_vocabulary_of_the_wrong_length_is_reported(tmp_path, vocab):
    folder = save_bundle(tmp_path / "ner", tagger(vocab), vocab=vocab)
    rewrite_config(folder, lambda config: config["vocabulary"].pop())
    expected = f"the vocabulary has {len(vocab) - 1} tokens but the architecture's vocab_size is {len(vocab)}"
    with pytest.raises(BundleError, match=expected):
        load_bundle(folder)


def test_vocabulary_without_pad_and_unk_first_is_reported(tmp_path, vocab):
    folder = save_bundle(tmp_path / "ner", tagger(vocab), vocab=vocab)
    rewrite_config(folder, lambda config: config["vocabulary"].reverse())
    with pytest.raises(BundleError, match="must start with <pad>, <unk>"):
        load_bundle(folder)


def test_another_course_lib_version_names_both_versions(tmp_path):
    folder = save_bundle(tmp_path / "mnist", mlp())
    rewrite_config(folder, lambda config: config.update(course_lib_version="9.0.0"))
    with pytest.raises(BundleError) as error:
        load_bundle(folder)
    message = str(error.value)
    assert "9.0.0" in message
    assert f"this is course_lib {course_lib.__version__}" in message


def test_another_format_version_is_reported(tmp_path):
    folder = save_bundle(tmp_path / "mnist", mlp())
    rewrite_config(folder, lambda config: config.update(format_version=2))
    with pytest.raises(BundleError, match=r"bundle format version 2, .* reads version 1"):
        read_bundle_config(folder)


def test_config_not_written_by_save_bundle_is_reported(tmp_path):
    folder = save_bundle(tmp_path / "mnist", mlp())
    (folder / "config.json").write_text(json.dumps({"model": "something else"}), encoding="utf-8")
    with pytest.raises(BundleError, match="not written by course_lib.serve.bundle.save_bundle .its format is None"):
        load_bundle(folder)
    (folder / "config.json").write_text(json.dumps({"format": "keras"}), encoding="utf-8")
    with pytest.raises(BundleError, match="its format is 'keras', not 'course_lib.deploy'"):
        load_bundle(folder)


def test_ner_task_with_an_mlp_architecture_is_reported(tmp_path):
    folder = save_bundle(tmp_path / "mnist", mlp())
    rewrite_config(folder, lambda config: config.update(task="ner"))
    with pytest.raises(BundleError, match="a 'ner' bundle holds a TokenTagger, but its architecture is 'MLP'"):
        load_bundle(folder)


def test_unknown_task_is_reported(tmp_path):
    folder = save_bundle(tmp_path / "mnist", mlp())
    rewrite_config(folder, lambda config: config.update(task="speech"))
    with pytest.raises(BundleError, match=r"task 'speech'; known tasks are \['mnist', 'ner'\]"):
        load_bundle(folder)


def test_mnist_bundle_with_the_wrong_number_of_labels_is_reported(tmp_path):
    folder = save_bundle(tmp_path / "mnist", mlp())
    rewrite_config(folder, lambda config: config.update(labels=["0", "1"]))
    with pytest.raises(BundleError, match="10 outputs, the bundle names 2 labels"):
        load_bundle(folder)


def test_architecture_config_that_cannot_build_a_model_is_reported(tmp_path):
    folder = save_bundle(tmp_path / "mnist", mlp())
    rewrite_config(folder, lambda config: config["architecture"]["config"].update(hidden=[]))
    with pytest.raises(BundleError, match="cannot build a model"):
        load_bundle(folder)


def test_invalid_json_is_reported(tmp_path):
    folder = save_bundle(tmp_path / "mnist", mlp())
    (folder / "config.json").write_text('{"format": "course_lib.deploy",', encoding="utf-8")
    with pytest.raises(BundleError, match=r"config\.json is not valid JSON"):
        load_bundle(folder)


def test_truncated_weights_file_is_reported(tmp_path):
    folder = save_bundle(tmp_path / "mnist", mlp())
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(BundleError, match="not a readable safetensors file"):
        load_bundle(folder)


def test_missing_folder_says_how_to_create_one(tmp_path):
    folder = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=r"no bundle folder at .*nowhere.*save_bundle"):
        load_bundle(folder)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        read_bundle_config(folder)


@pytest.mark.parametrize("missing", ["model.safetensors", "config.json"])
def test_missing_file_in_a_bundle_names_it_and_says_to_save_again(tmp_path, missing):
    folder = save_bundle(tmp_path / "mnist", mlp())
    (folder / missing).unlink()
    with pytest.raises(FileNotFoundError, match=rf"not a complete bundle: {missing} is missing; save it again"):
        load_bundle(folder)


# -- save_bundle argument errors -------------------------------------------------------------------


def test_tagger_without_vocabulary_is_refused(tmp_path, vocab):
    with pytest.raises(TypeError, match="needs its character vocabulary: pass vocab="):
        save_bundle(tmp_path / "ner", tagger(vocab))
    assert not (tmp_path / "ner").exists()


def test_vocabulary_of_the_wrong_size_is_refused(tmp_path, vocab):
    smaller = CharVocab(vocab.tokens()[2:-1])
    with pytest.raises(ValueError, match=rf"vocab has {len(vocab) - 1} tokens but .* vocab_size={len(vocab)}"):
        save_bundle(tmp_path / "ner", tagger(vocab), vocab=smaller)
    assert not (tmp_path / "ner").exists()


def test_vocabulary_for_an_mlp_is_refused(tmp_path, vocab):
    with pytest.raises(ValueError, match="reads pixels, not characters: leave vocab out"):
        save_bundle(tmp_path / "mnist", mlp(), vocab=vocab)


def test_wrong_number_of_labels_is_refused(tmp_path, vocab):
    with pytest.raises(ValueError, match="labels has 3 names but the model predicts 7 classes"):
        save_bundle(tmp_path / "ner", tagger(vocab), vocab=vocab, labels=["O", "B-PER", "I-PER"])
    with pytest.raises(ValueError, match="labels has 9 names but the model predicts 10 classes"):
        save_bundle(tmp_path / "mnist", mlp(), labels=list("123456789"))


def test_unsupported_model_class_is_refused(tmp_path):
    with pytest.raises(TypeError, match="takes a TokenTagger .* or an MLP .*, got Linear"):
        save_bundle(tmp_path / "linear", torch.nn.Linear(3, 4))


@pytest.mark.parametrize("metadata", [{"when": object()}, {"tensor": torch.ones(2)}])
def test_metadata_that_is_not_json_is_refused_and_nothing_is_written(tmp_path, metadata):
    with pytest.raises(TypeError, match="metadata must be JSON-serialisable"):
        save_bundle(tmp_path / "mnist", mlp(), metadata=metadata)
    assert list(tmp_path.iterdir()) == []


def test_metadata_that_is_not_a_dict_is_refused(tmp_path):
    with pytest.raises(TypeError, match="metadata must be a dict or None, got list"):
        save_bundle(tmp_path / "mnist", mlp(), metadata=[1, 2])
