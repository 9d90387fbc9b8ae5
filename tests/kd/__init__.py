"""Tests of course_lib.kd, and the small models and data they share."""

import torch
from torch import nn
from torch.utils.data import Dataset

from course_lib.nn.transformer import TokenTagger, TransformerConfig

NUM_LABELS = 7


class Indexed(Dataset):
    """Examples as dicts that carry their dataset index."""

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor) -> None:
        self.inputs, self.labels = inputs, labels

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"inputs": self.inputs[index], "labels": self.labels[index], "index": torch.tensor(index)}


def classifier(seed: int, dropout: float = 0.0) -> nn.Module:
    """A small seeded MLP over 6 features and 3 classes."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 3))


def toy_data(n: int = 64) -> Indexed:
    """``n`` seeded examples of 6 features whose class follows the first two."""
    generator = torch.Generator().manual_seed(7)
    inputs = torch.randn(n, 6, generator=generator)
    return Indexed(inputs, (inputs[:, 0] > 0).long() + (inputs[:, 1] > 1).long())


def tagger(layers: int, d_model: int = 32, heads: int = 4, seed: int = 0) -> TokenTagger:
    """A small seeded Transformer tagger over 50 ids and 7 labels."""
    torch.manual_seed(seed)
    config = TransformerConfig(vocab_size=50, d_model=d_model, num_heads=heads, num_layers=layers, d_ff=2 * d_model,
                               max_len=32, dropout=0.1)
    return TokenTagger(config, NUM_LABELS)
