"""Tests for course_lib.train.checkpoint: round trips, atomic writes and clear loading errors."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from course_lib.nn.transformer import TokenTagger, TransformerConfig
from course_lib.train.checkpoint import (
    load_checkpoint,
    read_checkpoint_config,
    save_checkpoint,
)


def tagger(d_model: int = 32, seed: int = 0) -> TokenTagger:
    torch.manual_seed(seed)
    config = TransformerConfig(vocab_size=50, d_model=d_model, num_heads=2, num_layers=1,
                               d_ff=64, max_len=32, dropout=0.1)
    return TokenTagger(config, num_labels=7).eval()


def sample_input() -> tuple[torch.Tensor, torch.Tensor]:
    input_ids = torch.randint(2, 50, (2, 9), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 6:] = False
    return input_ids, mask


def test_round_trip_gives_identical_outputs(tmp_path):
    model = tagger()
    path = save_checkpoint(tmp_path / "teacher.safetensors", model, model.config,
                           metadata={"epoch": 3, "dev_f1": 0.81})
    assert path == tmp_path / "teacher.safetensors"
    config = TransformerConfig.from_dict(read_checkpoint_config(path))
    rebuilt = TokenTagger(config, num_labels=7).eval()
    info = load_checkpoint(path, rebuilt)
    input_ids, mask = sample_input()
    with torch.no_grad():
        expected = model(input_ids, mask=mask).logits
        actual = rebuilt(input_ids, mask=mask).logits
    assert torch.equal(expected, actual)
    assert info["model_class"] == "TokenTagger"
    assert info["metadata"] == {"epoch": 3, "dev_f1": 0.81}
    assert info["config"] == model.config.to_dict()


def test_loading_into_a_different_size_names_the_tensor_and_config(tmp_path):
    path = save_checkpoint(tmp_path / "big.safetensors", tagger(d_model=32), tagger().config)
    small = tagger(d_model=16)
    before = {name: tensor.clone() for name, tensor in small.state_dict().items()}
    with pytest.raises(ValueError) as error:
        load_checkpoint(path, small)
    message = str(error.value)
    first_name = next(iter(small.state_dict()))
    assert first_name in message
    assert "differ in shape" in message
    assert "saved from a model with d_model=32, this model has d_model=16" in message
    for name, tensor in small.state_dict().items():
        assert torch.equal(tensor, before[name]), "a failed load must not change the model"


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    path = save_checkpoint(tmp_path / "mlp.safetensors", nn.Sequential(nn.Linear(3, 4)), {})
    deeper = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"missing from the checkpoint: 1\.weight, 1\.bias"):
        load_checkpoint(path, deeper)


def test_different_model_class_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "tagger.safetensors", tagger(), tagger().config)
    with pytest.raises(TypeError, match="holds a TokenTagger, but the model given is a Linear"):
        load_checkpoint(path, nn.Linear(3, 4))


def test_missing_file_says_which_path_and_how_to_create_it(tmp_path):
    path = tmp_path / "nowhere.safetensors"
    with pytest.raises(FileNotFoundError, match=r"nowhere\.safetensors.*save_checkpoint"):
        load_checkpoint(path, nn.Linear(3, 4))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        read_checkpoint_config(path)


def test_corrupted_file_is_reported(tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00not json")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        read_checkpoint_config(path)


def test_save_leaves_no_temporary_files(tmp_path):
    model = nn.Linear(3, 4)
    save_checkpoint(tmp_path / "a.safetensors", model, {"in": 3})
    save_checkpoint(tmp_path / "a.safetensors", model, {"in": 3})  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.safetensors"]


def test_failed_save_leaves_old_checkpoint_and_no_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    old = nn.Linear(3, 4)
    save_checkpoint(path, old, {"version": 1})
    old_bytes = path.read_bytes()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, nn.Linear(3, 4), {"version": 2})
    monkeypatch.undo()
    assert path.read_bytes() == old_bytes
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]

    fresh = tmp_path / "fresh.safetensors"
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        save_checkpoint(fresh, old, {})
    assert not fresh.exists()


def test_tied_weights_are_saved_and_restored(tmp_path):
    torch.manual_seed(0)
    embedding = nn.Embedding(5, 3)
    head = nn.Linear(3, 5, bias=False)
    head.weight = embedding.weight
    model = nn.ModuleDict({"embedding": embedding, "head": head})
    path = save_checkpoint(tmp_path / "tied.safetensors", model, {})
    fresh = nn.ModuleDict({"embedding": nn.Embedding(5, 3), "head": nn.Linear(3, 5, bias=False)})
    fresh["head"].weight = fresh["embedding"].weight
    load_checkpoint(path, fresh)
    assert torch.equal(fresh["head"].weight, embedding.weight)
    assert fresh["head"].weight is fresh["embedding"].weight


@pytest.mark.parametrize(
    ("config", "metadata", "message"),
    [(object(), None, "config must be a dict, a dataclass or an object with to_dict"),
     ({"x": object()}, None, "config must be JSON-serialisable"),
     ({}, {"f": object()}, "metadata must be JSON-serialisable"),
     ({}, [1], "metadata must be a dict or None")],
)
def test_save_rejects_bad_config_and_metadata(tmp_path, config, metadata, message):
    with pytest.raises(TypeError, match=message):
        save_checkpoint(tmp_path / "m.safetensors", nn.Linear(2, 2), config, metadata)
    assert list(tmp_path.iterdir()) == []
