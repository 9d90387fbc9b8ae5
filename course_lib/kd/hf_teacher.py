"""A Hugging Face token-classification model as the teacher of a course student.

A reader with a pretrained Chinese BERT fine-tuned for NER on disk can use it as the teacher of
chapter 07's students. Two things must be translated first:

- **positions**: the course tags one character per position; a BERT tokenizer adds ``[CLS]`` and
  ``[SEP]``, may split a character into several word pieces (or drop one it reads as
  whitespace). With the characters passed as pre-split words, ``word_ids()`` says which piece
  belongs to which character, and the teacher's prediction for a character is the one on its
  **first** piece (the usual convention for token classification);
- **labels**: the model's ``id2label`` may order the same BIO labels differently; the logits
  are permuted into the course's :data:`~course_lib.data.LABELS` order, and a model with other
  label names is refused.

:class:`HFTeacher` wraps both into a module whose ``forward(input_ids, mask)`` returns a
:class:`~course_lib.nn.transformer.ModelOutput` with ``(batch, length, labels)`` logits aligned with
the course's batches, so the :class:`~course_lib.kd.distiller.Distiller` takes it like any teacher.
Everything loads from a local folder; nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike

import torch
from torch import Tensor, nn

from course_lib.data import LABELS, CharVocab
from course_lib.kd.teacher import frozen
from course_lib.nn.transformer import ModelOutput


def _label_permutation(id2label: Mapping[int, str], labels: Sequence[str] = LABELS) -> list[int]:
    """For each course label, the index of the same label in the model's ``id2label``."""
    names = {int(index): str(name) for index, name in id2label.items()}
    by_name = {name: index for index, name in names.items()}
    missing = [label for label in labels if label not in by_name]
    extra = sorted(set(by_name) - set(labels))
    if missing or extra:
        raise ValueError(
            f"the model's labels {sorted(by_name)} do not match the course's {list(labels)} "
            f"(missing: {missing}, extra: {extra}); fine-tune the model on the course's BIO labels first"
        )
    return [by_name[label] for label in labels]


def _align_first_pieces(piece_logits: Tensor, word_ids: Sequence[Sequence[int | None]], length: int) -> Tensor:
    """Per-character logits from per-piece logits: the first piece of each character, zeros where none.

    ``piece_logits`` is (batch, pieces, classes); ``word_ids[b][p]`` is the character index of
    piece ``p`` of sentence ``b`` or None (special tokens, padding). A character without any
    piece gets all-zero logits: a uniform distribution, i.e. a teacher without an opinion.
    """
    if piece_logits.dim() != 3 or len(word_ids) != piece_logits.shape[0]:
        raise ValueError(
            f"piece_logits must be (batch, pieces, classes) with one word_ids list per sentence, got "
            f"{tuple(piece_logits.shape)} and {len(word_ids)} lists"
        )
    aligned = piece_logits.new_zeros(piece_logits.shape[0], length, piece_logits.shape[-1])
    for b, ids in enumerate(word_ids):
        seen: set[int] = set()
        for piece, word in enumerate(ids):
            if word is None or word in seen:
                continue
            if word >= length:
                raise ValueError(f"sentence {b}: piece {piece} belongs to character {word}, beyond length {length}")
            aligned[b, word] = piece_logits[b, piece]
            seen.add(word)
    return aligned


class HFTeacher(nn.Module):
    """A Hugging Face ``*ForTokenClassification`` model and its fast tokenizer, speaking the course's batches (chapter 07).

    ``vocab`` is the course's :class:`~course_lib.data.CharVocab` that encoded the batches; it
    turns ids back into characters (the course's ``<unk>`` becomes the tokenizer's unknown token).
    """

    def __init__(self, model: nn.Module, tokenizer, vocab: CharVocab, labels: Sequence[str] = LABELS) -> None:
        super().__init__()
        if not getattr(tokenizer, "is_fast", False):
            raise TypeError("tokenizer must be a fast (Rust) tokenizer: word_ids() is needed to align word pieces")
        self.model = frozen(model)
        self.tokenizer = tokenizer
        self.vocab = vocab
        self.labels = tuple(labels)
        self.register_buffer("permutation", torch.tensor(_label_permutation(model.config.id2label, labels)), persistent=False)

    @classmethod
    def from_pretrained(cls, local_dir: str | PathLike[str], vocab: CharVocab, labels: Sequence[str] = LABELS) -> HFTeacher:
        """Load model and tokenizer from a local folder (``save_pretrained`` output); never downloads."""
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        model = AutoModelForTokenClassification.from_pretrained(local_dir, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(local_dir, local_files_only=True)
        return cls(model, tokenizer, vocab, labels)

    def _characters(self, input_ids: Tensor, mask: Tensor) -> list[list[str]]:
        unknown = self.tokenizer.unk_token
        sentences = []
        for ids, real in zip(input_ids.tolist(), mask.tolist()):
            chars = [self.vocab.id_to_token(i) for i, keep in zip(ids, real) if keep]
            sentences.append([unknown if c == CharVocab.UNK else c for c in chars])
        return sentences

    def forward(self, input_ids: Tensor, mask: Tensor | None = None) -> ModelOutput:
        """Logits (batch, length, labels) in the course's label order, aligned with ``input_ids``."""
        if mask is None:
            mask = input_ids != self.vocab.pad_id
        sentences = self._characters(input_ids, mask)
        encoded = self.tokenizer(
            sentences, is_split_into_words=True, return_tensors="pt", padding=True, truncation=False
        )
        device = next(self.model.parameters()).device
        self.model.eval()
        with torch.no_grad():
            pieces = self.model(
                input_ids=encoded["input_ids"].to(device), attention_mask=encoded["attention_mask"].to(device)
            ).logits
        word_ids = [encoded.word_ids(b) for b in range(len(sentences))]
        aligned = _align_first_pieces(pieces, word_ids, input_ids.shape[1])
        return ModelOutput(logits=aligned[..., self.permutation].to(input_ids.device), mask=mask)
