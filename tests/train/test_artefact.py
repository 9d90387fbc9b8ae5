"""Tests for course_lib.train.artefact: fp16 weights with provenance, checked on load."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from course_lib.data import LABELS, CharVocab
from course_lib.nn.transformer import TokenTagger, TransformerConfig
from course_lib.train.artefact import ArtefactError, load_artefact, read_provenance, save_artefact
from course_lib.train.recipe import Recipe

VOCAB = CharVocab.from_texts(["北京大学在海淀"])


def _build(architecture: str, config: dict, vocab: CharVocab | None) -> TokenTagger:
    assert architecture == "TokenTagger"
    return TokenTagger(TransformerConfig(**config), num_labels=len(LABELS))


def _save(folder, model=None, **extra):
    torch.manual_seed(0)
    config = {"vocab_size": len(VOCAB), "d_model": 16, "num_heads": 2, "num_layers": 1, "d_ff": 32}
    model = model or TokenTagger(TransformerConfig(**config), num_labels=len(LABELS))
    return model, save_artefact("tiny_tagger", model, architecture="TokenTagger", config=config, vocab=VOCAB,
                                recipe=Recipe(epochs=2), data={"msra": "abc"}, metrics={"test_f1": 0.5},
                                seconds=12.34, device="cpu: test", folder=folder, **extra)


def test_an_artefact_round_trips_in_half_precision_with_its_provenance(tmp_path):
    model, path = _save(tmp_path)
    artefact = load_artefact("tiny_tagger", _build, folder=tmp_path)
    for key, value in model.state_dict().items():
        assert torch.equal(artefact.model.state_dict()[key], value.half().float() if value.is_floating_point() else value)
    assert artefact.vocab.tokens() == VOCAB.tokens() and not artefact.model.training
    provenance = read_provenance("tiny_tagger", tmp_path)
    for field in ("recipe", "data_sha256", "metrics", "seconds", "device", "commit", "torch", "weights_sha256"):
        assert field in provenance
    assert provenance["recipe"]["epochs"] == 2 and provenance["metrics"] == {"test_f1": 0.5}
    stored = load_file(str(path))
    assert {value.dtype for value in stored.values() if value.is_floating_point()} == {torch.float16}


def test_edited_weights_or_a_missing_file_are_refused_with_the_rebuild_command(tmp_path):
    _, path = _save(tmp_path)
    path.write_bytes(path.read_bytes()[:-2] + b"\x00\x01")
    with pytest.raises(ArtefactError, match="does not belong together.*make teachers"):
        load_artefact("tiny_tagger", _build, folder=tmp_path)
    path.unlink()
    with pytest.raises(ArtefactError, match="missing.*make teachers"):
        load_artefact("tiny_tagger", _build, folder=tmp_path)
    with pytest.raises(ArtefactError, match="no provenance"):
        load_artefact("other", _build, folder=tmp_path)


def test_weights_that_do_not_fit_the_recorded_architecture_are_refused(tmp_path):
    _save(tmp_path)
    provenance_path = tmp_path / "tiny_tagger.json"
    provenance = json.loads(provenance_path.read_text())
    provenance["config"]["d_model"] = 32
    provenance["config"]["d_ff"] = 64
    provenance_path.write_text(json.dumps(provenance))
    with pytest.raises(ArtefactError, match="does not fit the TokenTagger"):
        load_artefact("tiny_tagger", _build, folder=tmp_path)


def test_the_shipped_artefacts_may_not_grow_past_the_limit(tmp_path, monkeypatch):
    import course_lib.train.artefact as artefact

    _save(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    monkeypatch.setattr(artefact, "MAX_TOTAL_BYTES", 1000)
    with pytest.raises(ArtefactError, match="over the 1,000-byte limit"):
        _save(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before, "a refused artefact leaves no file behind"


def test_a_subword_vocabulary_travels_in_its_own_checked_file(tmp_path):
    from course_lib.data.subwords import SubwordVocab

    subwords = SubwordVocab.train(["in the beginning", "en el principio", "the beginning of the word"], vocab_size=60,
                                  min_frequency=1)
    model = TokenTagger(TransformerConfig(vocab_size=len(VOCAB), d_model=16, num_heads=2, num_layers=1, d_ff=32),
                        num_labels=len(LABELS))
    save_artefact("tiny_translator", model, architecture="TokenTagger",
                  config={"vocab_size": len(VOCAB), "d_model": 16, "num_heads": 2, "num_layers": 1, "d_ff": 32},
                  vocab=subwords, recipe=Recipe(), data={"bible": "abc"}, metrics={}, seconds=1.0, device="cpu",
                  folder=tmp_path)
    provenance = read_provenance("tiny_translator", tmp_path)
    assert provenance["vocab"] is None and len(provenance["subwords_sha256"]) == 64
    loaded = load_artefact("tiny_translator", _build, folder=tmp_path)
    assert isinstance(loaded.vocab, SubwordVocab) and loaded.vocab.to_json() == subwords.to_json()
    (tmp_path / "tiny_translator.subwords.json").write_text(SubwordVocab.train(["other text"], vocab_size=40,
                                                                               min_frequency=1).to_json())
    with pytest.raises(ArtefactError, match="subword vocabulary .* not the one its provenance records"):
        load_artefact("tiny_translator", _build, folder=tmp_path)


def test_tied_weights_are_stored_once_and_tied_again_on_load(tmp_path):
    from course_lib.nn.seq2seq import Seq2SeqConfig, Seq2SeqTransformer

    config = Seq2SeqConfig(vocab_size=50, d_model=16, num_heads=2, encoder_layers=1, decoder_layers=1, d_ff=32)
    model = Seq2SeqTransformer(config)
    path = save_artefact("tiny_seq2seq", model, architecture="Seq2SeqTransformer", config=config.to_dict(), vocab=None,
                         recipe=Recipe(), data={}, metrics={}, seconds=1.0, device="cpu", folder=tmp_path)
    stored, state = load_file(str(path)), model.state_dict()
    tied = read_provenance("tiny_seq2seq", tmp_path)["tied"]
    assert tied and set(stored) | set(tied) == set(state) and not set(stored) & set(tied)
    loaded = load_artefact("tiny_seq2seq", lambda a, c, v: Seq2SeqTransformer(Seq2SeqConfig(**c)), folder=tmp_path)
    for alias, name in tied.items():
        assert torch.equal(loaded.model.state_dict()[alias], state[name].half().float())
