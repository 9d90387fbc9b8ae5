"""Distilling a Transformer into a smaller Transformer layer by layer (TinyBERT and DistilBERT style).

Logit distillation (``course_lib.kd.losses``) only looks at the teacher's outputs. A Transformer
student can also imitate what happens *inside* the teacher:

- :class:`LayerMap` says which student layer learns from which teacher layer. Indices count
  hidden states as :class:`~course_lib.nn.transformer.ModelOutput` does: 0 is the embedding output,
  ``k`` the output of block ``k``. TinyBERT maps a 4-layer student onto a 12-layer teacher
  uniformly (student layer ``m`` ← teacher layer ``3m``); :meth:`LayerMap.uniform` builds that;
- :class:`IntermediateDistiller` adds, to the logit loss of chapter 05, a hidden-state term for
  every mapped pair (through a learned projection when the widths differ,
  :class:`~course_lib.kd.losses.HiddenStateLoss`) and an attention-map term for every mapped pair
  of blocks; padding is left out of all three;
- :func:`init_from_teacher` copies teacher weights into the student wherever the shapes allow
  (DistilBERT initialises its student from every other teacher layer), gives a narrower student
  the teacher's token embeddings reduced to its width (:func:`reduced_embeddings`), and reports
  what it could not copy, and why.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import torch
from torch import Tensor

from course_lib import checks
from course_lib.nn.transformer import TokenTagger


@dataclass(frozen=True)
class LayerMap:
    """Pairs ``(student index, teacher index)`` of hidden states; 0 is the embeddings, ``k`` block ``k`` (chapter 07).

    Both columns must be strictly increasing: a student layer learns from one teacher layer, and
    deeper student layers from deeper teacher layers.
    """

    pairs: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        try:
            pairs = tuple((int(s), int(t)) for s, t in self.pairs)
            valid = all(
                isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0
                for pair in self.pairs
                for v in pair
            )
        except (TypeError, ValueError):
            valid = False
        if not valid:
            raise ValueError(f"pairs must be (student index, teacher index) pairs of ints >= 0, got {self.pairs!r}")
        if not pairs:
            raise ValueError("a LayerMap needs at least one (student index, teacher index) pair")
        for column, name in ((0, "student"), (1, "teacher")):
            indices = [pair[column] for pair in pairs]
            if any(b <= a for a, b in zip(indices, indices[1:])):
                raise ValueError(f"the {name} indices must be strictly increasing, got {indices} in {pairs}")
        object.__setattr__(self, "pairs", pairs)

    @classmethod
    def uniform(cls, student_layers: int, teacher_layers: int, *, embeddings: bool = True) -> LayerMap:
        """Student block ``m`` ← teacher block ``round(m · teacher_layers / student_layers)`` (TinyBERT's map)."""
        checks.positive_int("student_layers", student_layers)
        checks.positive_int("teacher_layers", teacher_layers)
        if student_layers > teacher_layers:
            raise ValueError(
                f"a uniform map needs a student no deeper than its teacher, got {student_layers} student "
                f"layers and {teacher_layers} teacher layers; write the pairs by hand instead"
            )
        pairs = [(m, round(m * teacher_layers / student_layers)) for m in range(1, student_layers + 1)]
        return cls(tuple([(0, 0)] * embeddings + pairs))

    def check_against(self, student_layers: int, teacher_layers: int) -> None:
        """ValueError when a pair names a layer that the student or the teacher does not have."""
        for student_index, teacher_index in self.pairs:
            if student_index > student_layers or teacher_index > teacher_layers:
                raise ValueError(
                    f"layer pair ({student_index}, {teacher_index}) is out of range: the student has hidden "
                    f"states 0..{student_layers} and the teacher 0..{teacher_layers} (0 is the embeddings)"
                )

    @property
    def block_pairs(self) -> tuple[tuple[int, int], ...]:
        """The pairs of transformer blocks (both indices >= 1): the ones with attention maps."""
        return tuple((s, t) for s, t in self.pairs if s >= 1 and t >= 1)


def comparable_maps(student_map: Tensor, teacher_map: Tensor) -> tuple[Tensor, Tensor]:
    """The two attention maps as they are when the head counts match, else each averaged over its heads (chapter 07)."""
    if student_map.shape[1] == teacher_map.shape[1]:
        return student_map, teacher_map
    return student_map.mean(dim=1, keepdim=True), teacher_map.mean(dim=1, keepdim=True)


@dataclass
class _InitReport:
    """What :func:`init_from_teacher` did: the student tensors copied and those skipped, with the reason."""

    copied: list[str] = field(default_factory=list)
    reduced: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def copied_fraction(self) -> float:
        """Share of the student's tensors that now hold teacher weights, copied or reduced."""
        total = len(self.copied) + len(self.reduced) + len(self.skipped)
        return (len(self.copied) + len(self.reduced)) / total if total else 0.0


def _block_source(name: str, block_map: dict[int, int]) -> str | None:
    """The teacher tensor name for student tensor ``name``, following the block map (None: no source)."""
    parts = name.split(".")
    if len(parts) > 2 and parts[0] == "encoder" and parts[1] == "blocks":
        student_block = int(parts[2])
        if student_block + 1 not in block_map:
            return None
        return ".".join(["encoder", "blocks", str(block_map[student_block + 1] - 1), *parts[3:]])
    return name


_TOKEN_EMBEDDINGS = "encoder.embed.weight"


@torch.no_grad()
def reduced_embeddings(teacher_table: Tensor, width: int, rms: float) -> Tensor:
    """The rows of ``teacher_table`` (vocabulary, teacher width) along its ``width`` leading singular directions (chapter 07).

    A token's new vector holds its coordinates along the top right-singular vectors of the
    table: of all ``width``-dimensional linear views of the teacher's vectors, the one that keeps
    the most of them (Eckart–Young). The result is rescaled to root-mean-square ``rms`` (the
    student's own initial scale).
    """
    if teacher_table.dim() != 2 or not 0 < width <= teacher_table.shape[1]:
        raise ValueError(f"need a 2-D table at least {width} wide, got shape {tuple(teacher_table.shape)}")
    table = teacher_table.float()
    _, _, directions = torch.linalg.svd(table, full_matrices=False)
    reduced = table @ directions[:width].T
    return reduced * (checks.positive_number("rms", rms) / reduced.pow(2).mean().sqrt().clamp(min=1e-12))


@torch.no_grad()
def init_from_teacher(student: TokenTagger, teacher: TokenTagger, layer_map: LayerMap) -> _InitReport:
    """Copy teacher weights into ``student`` wherever the shapes match (DistilBERT's initialisation) (chapter 07).

    Student block ``s`` takes the weights of teacher block ``t`` for every block pair of
    ``layer_map``; embeddings, the final LayerNorm and the classifier are copied by name. A
    narrower student over the same vocabulary gets the teacher's token embeddings reduced to its
    width (:func:`reduced_embeddings`); any other tensor whose shape differs is left as
    initialised and reported.
    """
    for name, model in (("teacher", teacher), ("student", student)):
        if not isinstance(model, TokenTagger):
            raise TypeError(f"{name} must be a course_lib.nn.transformer.TokenTagger, got {type(model).__name__}")
    layer_map.check_against(student.config.num_layers, teacher.config.num_layers)
    block_map = dict(layer_map.block_pairs)
    teacher_state = teacher.state_dict()
    report = _InitReport()
    for name, tensor in student.state_dict().items():
        source = _block_source(name, block_map)
        if source is None:
            report.skipped[name] = "its block has no teacher block in the layer map"
        elif source not in teacher_state:
            report.skipped[name] = f"the teacher has no tensor {source}"
        elif name == _TOKEN_EMBEDDINGS and teacher_state[source].shape[0] == tensor.shape[0] \
                and teacher_state[source].shape[1] > tensor.shape[1]:
            rms = float(tensor.float().pow(2).mean().sqrt())
            tensor.copy_(reduced_embeddings(teacher_state[source], tensor.shape[1], rms))
            report.reduced.append(name)
        elif teacher_state[source].shape != tensor.shape:
            report.skipped[name] = (
                f"shape {tuple(tensor.shape)} differs from the teacher's {source} {tuple(teacher_state[source].shape)}"
            )
        else:
            tensor.copy_(teacher_state[source])
            report.copied.append(name)
    return report
