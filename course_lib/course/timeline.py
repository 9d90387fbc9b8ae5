"""Milestones from RNNs to large pre-trained models and their distilled students (chapter 01).

Each :class:`_Milestone` is dated by its first public release (the arXiv posting or the
technical report; the venue and its year are in ``reference``). ``params_millions`` is only
given where the cited paper states the parameter count, and ``distilled_from`` names the
teacher milestone of a distilled student, so :func:`plot_parameter_growth` can draw an
arrow from teacher to student.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter


KINDS: tuple[str, ...] = ("architecture", "pretrained model", "distillation")
KIND_COLORS: dict[str, str] = {
    "architecture": "tab:blue",
    "pretrained model": "tab:orange",
    "distillation": "tab:green",
}


@dataclass(frozen=True)
class _Milestone:
    """One dated milestone: a model architecture, a pre-trained model or a distillation method."""

    year: int
    month: int
    name: str
    kind: str
    params_millions: float | None
    reference: str
    distilled_from: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.year, bool) or not isinstance(self.year, int) or not 1900 <= self.year <= 2100:
            raise ValueError(f"year must be an int between 1900 and 2100, got {self.year!r}")
        if isinstance(self.month, bool) or not isinstance(self.month, int) or not 1 <= self.month <= 12:
            raise ValueError(f"month must be an int from 1 to 12, got {self.month!r}")
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.params_millions is not None:
            if isinstance(self.params_millions, bool) or not isinstance(self.params_millions, (int, float)):
                raise TypeError(
                    f"params_millions must be a number or None, got {type(self.params_millions).__name__}"
                )
            if not self.params_millions > 0:
                raise ValueError(f"params_millions must be positive, got {self.params_millions!r}")
        if not isinstance(self.reference, str) or not self.reference.strip():
            raise ValueError(f"reference must be a non-empty string, got {self.reference!r}")
        if self.distilled_from is not None and (
            not isinstance(self.distilled_from, str) or not self.distilled_from.strip()
        ):
            raise ValueError(f"distilled_from must be a milestone name or None, got {self.distilled_from!r}")

    @property
    def date(self) -> float:
        """The date as a decimal year (January = ``year + 0``, December = ``year + 11/12``)."""
        return self.year + (self.month - 1) / 12


MILESTONES: tuple[_Milestone, ...] = (
    _Milestone(1997, 11, "LSTM", "architecture", None,
              "Hochreiter & Schmidhuber, Long Short-Term Memory, Neural Computation 9(8), 1997"),
    _Milestone(2006, 8, "Model compression", "distillation", None,
              "Buciluă, Caruana & Niculescu-Mizil, Model Compression, KDD 2006"),
    _Milestone(2013, 12, "Mimic learning (Ba & Caruana)", "distillation", None,
              "Ba & Caruana, Do Deep Nets Really Need to be Deep?, NeurIPS 2014 (arXiv:1312.6184)"),
    _Milestone(2014, 6, "RNN encoder-decoder, GRU", "architecture", None,
              "Cho et al., Learning Phrase Representations using RNN Encoder-Decoder for "
              "Statistical Machine Translation, EMNLP 2014 (arXiv:1406.1078)"),
    _Milestone(2014, 9, "Attention (Bahdanau et al.)", "architecture", None,
              "Bahdanau, Cho & Bengio, Neural Machine Translation by Jointly Learning to Align "
              "and Translate, ICLR 2015 (arXiv:1409.0473)"),
    _Milestone(2014, 9, "Seq2seq (Sutskever et al.)", "architecture", None,
              "Sutskever, Vinyals & Le, Sequence to Sequence Learning with Neural Networks, "
              "NeurIPS 2014 (arXiv:1409.3215)"),
    _Milestone(2014, 12, "FitNets (hints)", "distillation", None,
              "Romero et al., FitNets: Hints for Thin Deep Nets, ICLR 2015 (arXiv:1412.6550)"),
    _Milestone(2015, 3, "Knowledge distillation (Hinton et al.)", "distillation", None,
              "Hinton, Vinyals & Dean, Distilling the Knowledge in a Neural Network, "
              "NIPS 2014 Deep Learning Workshop (arXiv:1503.02531)"),
    _Milestone(2016, 6, "Sequence-level KD (Kim & Rush)", "distillation", None,
              "Kim & Rush, Sequence-Level Knowledge Distillation, EMNLP 2016 (arXiv:1606.07947)"),
    _Milestone(2017, 6, "Transformer (base)", "architecture", 65,
              "Vaswani et al., Attention Is All You Need, NeurIPS 2017 (arXiv:1706.03762); "
              "Table 3: base model 65M parameters"),
    _Milestone(2018, 6, "GPT", "pretrained model", 117,
              "Radford et al., Improving Language Understanding by Generative Pre-Training, "
              "OpenAI report 2018; 117M as listed for the same-sized model in Radford et al. 2019, Table 2"),
    _Milestone(2018, 10, "BERT-base", "pretrained model", 110,
              "Devlin et al., BERT: Pre-training of Deep Bidirectional Transformers for Language "
              "Understanding, NAACL 2019 (arXiv:1810.04805); BERT-base 110M parameters"),
    _Milestone(2018, 10, "BERT-large", "pretrained model", 340,
              "Devlin et al., NAACL 2019 (arXiv:1810.04805); BERT-large 340M parameters"),
    _Milestone(2019, 2, "GPT-2", "pretrained model", 1542,
              "Radford et al., Language Models are Unsupervised Multitask Learners, OpenAI report "
              "2019; Table 2: largest model 1542M parameters"),
    _Milestone(2019, 7, "RoBERTa-large", "pretrained model", 355,
              "Liu et al., RoBERTa: A Robustly Optimized BERT Pretraining Approach "
              "(arXiv:1907.11692); BERT-large architecture, 355M parameters"),
    _Milestone(2019, 9, "TinyBERT-4", "distillation", 14.5,
              "Jiao et al., TinyBERT: Distilling BERT for Natural Language Understanding, "
              "Findings of EMNLP 2020 (arXiv:1909.10351); 4-layer student 14.5M parameters",
              distilled_from="BERT-base"),
    _Milestone(2019, 10, "DistilBERT", "distillation", 66,
              "Sanh et al., DistilBERT, a distilled version of BERT: smaller, faster, cheaper and "
              "lighter, EMC2 workshop at NeurIPS 2019 (arXiv:1910.01108); 66M parameters",
              distilled_from="BERT-base"),
    _Milestone(2019, 10, "T5-11B", "pretrained model", 11000,
              "Raffel et al., Exploring the Limits of Transfer Learning with a Unified "
              "Text-to-Text Transformer, JMLR 2020 (arXiv:1910.10683); largest model about 11 billion parameters"),
    _Milestone(2020, 2, "MiniLM", "distillation", None,
              "Wang et al., MiniLM: Deep Self-Attention Distillation for Task-Agnostic Compression "
              "of Pre-Trained Transformers, NeurIPS 2020 (arXiv:2002.10957)"),
    _Milestone(2020, 5, "GPT-3", "pretrained model", 175000,
              "Brown et al., Language Models are Few-Shot Learners, NeurIPS 2020 (arXiv:2005.14165); "
              "175 billion parameters"),
    _Milestone(2021, 6, "Patient & consistent KD (Beyer et al.)", "distillation", None,
              "Beyer et al., Knowledge Distillation: A Good Teacher is Patient and Consistent, "
              "CVPR 2022 (arXiv:2106.05237)"),
)


def _check_milestones(milestones: object) -> list[_Milestone]:
    if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Sequence):
        raise TypeError(f"milestones must be a sequence of _Milestone, got {type(milestones).__name__}")
    items = list(milestones)
    if not items:
        raise ValueError("milestones must not be empty")
    for index, item in enumerate(items):
        if not isinstance(item, _Milestone):
            raise TypeError(f"milestones[{index}] must be a _Milestone, got {type(item).__name__}")
    return items


def _check_ax(ax: object) -> None:
    if ax is not None and not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")


def _format_params(millions: float) -> str:
    if millions >= 1000:
        return f"{millions / 1000:g}B"
    if millions < 1:
        return f"{millions * 1000:g}k"
    return f"{millions:g}M"


def _crowded_on_right(milestone: _Milestone, items: list[_Milestone]) -> bool:
    """True when another point sits just right of ``milestone`` at about the same height."""
    return any(
        0 < other.date - milestone.date <= 0.6
        and abs(math.log10(other.params_millions / milestone.params_millions)) < 0.15
        for other in items
    )


def plot_timeline(milestones: Sequence[_Milestone], ax: Axes | None = None) -> Axes:
    """Draw one row per milestone, in date order: a marker at its date and its name beside it (chapter 01).

    Markers are coloured by kind; a milestone with a parameter count shows it in its label.
    Returns the Axes (a new figure is made when ``ax`` is None).
    """
    items = sorted(_check_milestones(milestones), key=lambda m: m.date)
    _check_ax(ax)
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 0.32 * len(items) + 1.2))
    first, last = items[0].date, items[-1].date
    span = max(last - first, 1.0)
    for kind in KINDS:
        rows = [(row, m) for row, m in enumerate(items) if m.kind == kind]
        if rows:
            ax.scatter([m.date for _, m in rows], [row for row, _ in rows], s=40,
                       color=KIND_COLORS[kind], label=kind, zorder=3)
    for row, m in enumerate(items):
        label = m.name if m.params_millions is None else f"{m.name} ({_format_params(m.params_millions)})"
        # Rows are in date order, so the space left of a late milestone is empty.
        on_left = m.date - first > 0.4 * span
        ax.annotate(f"{label} · {m.year}", (m.date, row), xytext=(-7 if on_left else 7, 0),
                    textcoords="offset points", ha="right" if on_left else "left",
                    va="center", fontsize=8)
    ax.set_ylim(len(items) - 0.5, -0.5)
    ax.set_yticks([])
    ax.set_xlim(first - 0.05 * span, last + 0.05 * span)
    ax.set_xlabel("year of first public release")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title("From recurrent networks to pre-trained Transformers and distillation")
    return ax


def plot_parameter_growth(milestones: Sequence[_Milestone], ax: Axes | None = None) -> Axes:
    """Plot parameter count (log scale) against date for milestones with a published count (chapter 01).

    Each distilled student is joined to its teacher by an arrow. Returns the Axes (a new
    figure is made when ``ax`` is None).
    """
    items = [m for m in _check_milestones(milestones) if m.params_millions is not None]
    if not items:
        raise ValueError("milestones must contain at least one entry with params_millions set")
    _check_ax(ax)
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 5))
    by_name = {m.name: m for m in items}
    for kind in KINDS:
        chosen = [m for m in items if m.kind == kind]
        if chosen:
            ax.scatter([m.date for m in chosen], [m.params_millions for m in chosen], s=45,
                       color=KIND_COLORS[kind], label=kind, zorder=3)
    for m in items:
        on_left = _crowded_on_right(m, items)
        ax.annotate(f"{m.name} ({_format_params(m.params_millions)})", (m.date, m.params_millions),
                    xytext=(-6 if on_left else 6, 0), textcoords="offset points",
                    ha="right" if on_left else "left", va="center", fontsize=8)
        teacher = by_name.get(m.distilled_from) if m.distilled_from else None
        if teacher is not None:
            ax.annotate("", xy=(m.date, m.params_millions),
                        xytext=(teacher.date, teacher.params_millions),
                        arrowprops={"arrowstyle": "->", "color": KIND_COLORS["distillation"],
                                    "alpha": 0.7, "shrinkA": 4, "shrinkB": 4})
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: _format_params(value)))
    ax.set_ylabel("parameters (log scale)")
    ax.set_xlabel("year of first public release")
    dates = [m.date for m in items]
    ax.set_xlim(min(dates) - 0.5, max(dates) + 1.5)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Parameter counts of pre-trained models and distilled students")
    return ax
