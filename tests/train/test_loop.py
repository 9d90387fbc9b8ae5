"""Tests for course_lib.train.loop: the one training loop, on toy models and on real MSRA sentences."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_lib.data import LABELS, CharVocab, load_msra, ner_loader
from course_lib.nn.transformer import TokenTagger, TransformerConfig
from course_lib.train.checkpoint import load_checkpoint, read_checkpoint_config
from course_lib.train.fit import warmup_linear_schedule
from course_lib.train.loop import move_to_device, train
from course_lib.train.tagging import tagger_loss


def regression_loader(n: int = 32, batch_size: int = 8) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=generator)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True,
                      generator=torch.Generator().manual_seed(0))


def mse_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return nn.functional.mse_loss(model(x), y)


def scripted_scores(scores: list[float], snapshots: list[torch.Tensor] | None = None):
    """An evaluate_fn that returns the given scores in turn (and records the weights it saw)."""
    remaining = iter(scores)

    def evaluate(model: nn.Module, loader: DataLoader) -> dict[str, float]:
        assert not model.training and not torch.is_grad_enabled()
        if snapshots is not None:
            snapshots.append(model.weight.detach().clone())
        return {"f1": next(remaining), "loss": 0.0}

    return evaluate


def linear_run(**kwargs):
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    options = dict(loss_fn=mse_loss, optimizer=optimizer, epochs=3, progress=False)
    options.update(kwargs)
    return model, train(model, regression_loader(), **options)


@pytest.fixture(scope="module")
def msra_batch() -> tuple[list, CharVocab]:
    sentences = load_msra().train[:64]
    return sentences, CharVocab.build(sentences)


def tiny_tagger(vocab_size: int) -> TokenTagger:
    config = TransformerConfig(vocab_size=vocab_size, d_model=32, num_heads=2, num_layers=1,
                               d_ff=64, max_len=128, dropout=0.1)
    return TokenTagger(config, num_labels=len(LABELS))


def tagger_run(sentences, vocab, epochs: int = 8):
    torch.manual_seed(0)
    model = tiny_tagger(len(vocab))
    loader = ner_loader(sentences, vocab, batch_size=16, shuffle=True, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    history = train(model, loader, loss_fn=tagger_loss, optimizer=optimizer, epochs=epochs,
                    progress=False)
    return model, loader, history


def test_loop_lowers_the_loss_on_real_msra_sentences(msra_batch):
    sentences, vocab = msra_batch
    torch.manual_seed(0)
    untrained = tiny_tagger(len(vocab)).eval()
    model, loader, history = tagger_run(sentences, vocab)
    fixed = next(iter(ner_loader(sentences, vocab, batch_size=64, shuffle=False)))
    with torch.no_grad():
        before, after = tagger_loss(untrained, fixed).item(), tagger_loss(model, fixed).item()
    assert after < 0.6 * before
    assert history.epochs[-1].train_loss < history.epochs[0].train_loss
    assert len(history.step_losses) == 8 * len(loader)
    assert not model.training


def test_two_seeded_runs_give_identical_losses(msra_batch):
    sentences, vocab = msra_batch
    first = tagger_run(sentences, vocab, epochs=2)[2]
    second = tagger_run(sentences, vocab, epochs=2)[2]
    assert first.step_losses == second.step_losses


def test_early_stopping_after_patience_epochs_without_improvement():
    _, history = linear_run(epochs=10, dev_loader=[None], patience=3,
                            evaluate_fn=scripted_scores([0.5, 0.7, 0.6, 0.65, 0.69, 0.9]))
    assert history.best_epoch == 2 and history.best_score == 0.7
    assert [record.epoch for record in history.epochs] == [1, 2, 3, 4, 5]
    assert history.stopped_early
    assert history.epochs[1].dev == {"f1": 0.7, "loss": 0.0}


def test_no_early_stop_flag_when_all_epochs_ran():
    _, history = linear_run(epochs=3, dev_loader=[None], patience=5,
                            evaluate_fn=scripted_scores([0.1, 0.2, 0.3]))
    assert history.best_epoch == 3 and not history.stopped_early


def test_mode_min_keeps_the_lowest_score():
    _, history = linear_run(epochs=4, dev_loader=[None], mode="min",
                            evaluate_fn=scripted_scores([3.0, 1.0, 2.0, 1.5]))
    assert history.best_epoch == 2 and history.best_score == 1.0


def test_best_weights_are_restored():
    snapshots: list[torch.Tensor] = []
    model, history = linear_run(epochs=4, dev_loader=[None],
                                evaluate_fn=scripted_scores([0.1, 0.9, 0.2, 0.3], snapshots))
    assert history.best_epoch == 2
    assert torch.equal(model.weight, snapshots[1])
    assert not torch.equal(model.weight, snapshots[-1])
    assert all(p.grad is None for p in model.parameters()), "no stale gradient of the last step is left"
    assert not model.training


def test_keep_best_false_records_the_curve_but_keeps_the_final_weights():
    snapshots: list[torch.Tensor] = []
    model, history = linear_run(epochs=4, dev_loader=[None], keep_best=False,
                                evaluate_fn=scripted_scores([0.1, 0.9, 0.2, 0.3], snapshots))
    assert [record.dev["f1"] for record in history.epochs] == [0.1, 0.9, 0.2, 0.3]
    assert history.best_epoch == 2
    assert torch.equal(model.weight, snapshots[-1])


def test_nan_loss_raises_naming_the_step():
    calls = []

    def diverging(model, batch):
        calls.append(1)
        loss = mse_loss(model, batch)
        return loss * float("nan") if len(calls) == 3 else loss

    with pytest.raises(FloatingPointError, match=r"step 3.*lower learning rate"):
        linear_run(loss_fn=diverging)


def test_scheduler_steps_once_per_batch():
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = regression_loader(n=32, batch_size=8)
    scheduler = warmup_linear_schedule(optimizer, warmup_steps=2, total_steps=8)
    history = train(model, loader, loss_fn=mse_loss, optimizer=optimizer, epochs=2,
                    scheduler=scheduler, clip_grad_norm=1.0, progress=False)
    assert [record.lr for record in history.epochs] == pytest.approx([0.1 * 4 / 6, 0.0])


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [(dict(epochs=0), ValueError, "epochs must be a positive int"),
     (dict(mode="best"), ValueError, r"mode must be one of \('max', 'min'\)"),
     (dict(dev_loader=[None]), ValueError, "dev_loader and evaluate_fn go together"),
     (dict(patience=2), ValueError, "patience=2 needs a dev set"),
     (dict(clip_grad_norm=0), ValueError, "clip_grad_norm must be a number > 0"),
     (dict(dev_loader=[None], evaluate_fn=scripted_scores([0.5]), monitor="accuracy"),
      ValueError, r"monitor='accuracy' is not among .*\['f1', 'loss'\]"),
     (dict(loss_fn=lambda model, batch: model(batch[0])), TypeError,
      r"scalar Tensor, got Tensor of shape \(8, 1\)")],
)
def test_train_rejects_bad_arguments(options, error, message):
    with pytest.raises(error, match=message):
        linear_run(**options)


def test_empty_loader_is_an_error():
    model = nn.Linear(4, 1)
    with pytest.raises(ValueError, match="no batches"):
        train(model, [], loss_fn=mse_loss, epochs=1, progress=False,
              optimizer=torch.optim.SGD(model.parameters(), lr=0.1))


def test_history_is_json_serialisable():
    _, history = linear_run(epochs=2, dev_loader=[None], evaluate_fn=scripted_scores([0.1, 0.2]))
    data = json.loads(json.dumps(history.to_dict()))
    assert data["best_epoch"] == 2 and data["epochs"][0]["dev"]["f1"] == 0.1
    assert len(data["step_losses"]) == 8


def test_progress_bar_runs_and_course_progress_0_hides_it(capsys, monkeypatch):
    monkeypatch.setenv("COURSE_PROGRESS", "1")
    _, history = linear_run(epochs=2, progress=True, dev_loader=[None],
                            evaluate_fn=scripted_scores([0.1, 0.2]))
    assert len(history.step_losses) == 8 and history.best_epoch == 2
    assert "train" in capsys.readouterr().err
    monkeypatch.setenv("COURSE_PROGRESS", "0")
    linear_run(epochs=2, progress=True)
    assert capsys.readouterr().err == ""


def test_checkpoint_path_writes_the_best_weights(tmp_path, msra_batch):
    sentences, vocab = msra_batch
    torch.manual_seed(0)
    model = tiny_tagger(len(vocab))
    loader = ner_loader(sentences[:16], vocab, batch_size=8, shuffle=False)
    path = tmp_path / "tagger.safetensors"
    history = train(model, loader, loss_fn=tagger_loss, epochs=3, progress=False,
                    optimizer=torch.optim.AdamW(model.parameters(), lr=1e-3),
                    dev_loader=[None], evaluate_fn=scripted_scores([0.2, 0.4, 0.3]),
                    checkpoint_path=path)
    config = TransformerConfig.from_dict(read_checkpoint_config(path))
    reloaded = TokenTagger(config, num_labels=len(LABELS))
    info = load_checkpoint(path, reloaded)
    assert info["metadata"] == {"epoch": 2, "monitor": "f1", "score": 0.4}
    assert history.best_epoch == 2
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, reloaded.state_dict()[name]), name


def test_move_to_device_keeps_the_batch_structure():
    batch = {"x": torch.ones(2), "pair": (torch.zeros(1), [torch.ones(1), "text"])}
    moved = move_to_device(batch, "cpu")
    assert isinstance(moved["pair"], tuple) and isinstance(moved["pair"][1], list)
    assert moved["pair"][1][1] == "text" and torch.equal(moved["x"], batch["x"])


def test_a_loss_with_weights_of_its_own_moves_to_the_device_with_the_model():
    class WeightedLoss(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1))
            self.moved_to: list = []

        def _apply(self, fn, recurse=True):
            self.moved_to.append(fn)
            return super()._apply(fn, recurse)

        def forward(self, model, batch):
            return (self.scale * model(batch[0]).pow(2)).mean()

    loss = WeightedLoss()
    model = nn.Linear(3, 1)
    train(model, [(torch.ones(2, 3),)], loss_fn=loss, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
          epochs=1, progress=False)
    assert loss.moved_to, "train() must move the loss module to the device with the model"
