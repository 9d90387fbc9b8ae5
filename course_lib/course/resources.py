"""Tools and resources (chapter 10, outline §7): what the course runs on, and the models a reader with internet tries next.

``TOOLS`` lists the packages the course depends on, what each does here and the chapters that
use it; :func:`tools_table` adds the installed version of each. ``PRETRAINED`` lists pretrained
Transformers worth distilling with the course's code once a model hub is reachable, each with
its published architecture (the ``transformers`` config); :func:`pretrained_table` counts their
parameters by building each model on PyTorch's ``meta`` device — shapes only, no weights, no
download — so the sizes are computed, not quoted. ``DATASETS`` names the benchmarks the papers
behind the course report on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import torch


@dataclass(frozen=True)
class _Tool:
    """A package the course depends on: its distribution name, what it does here, the chapters using it."""

    package: str
    purpose: str
    chapters: str


TOOLS: tuple[_Tool, ...] = (
    _Tool("torch", "tensors, autograd, every model and training loop of the course", "02–10"),
    _Tool("numpy", "arrays for data files, sweeps and plots", "00–10"),
    _Tool("matplotlib", "every figure of the notebooks and the lecture deck", "01–10"),
    _Tool("ipywidgets", "the temperature, alpha, layer and head sliders; the live distillation lab", "02–07"),
    _Tool("tqdm", "progress bars on anything that trains", "04–10"),
    _Tool("seqeval", "entity-level precision, recall and F1 for NER (conlleval rules)", "04, 07, 08, 10"),
    _Tool("scikit-learn", "accuracy and macro-F1 of the news classifiers", "10"),
    _Tool("safetensors", "checkpoints and bundles: weights without pickled code", "04–08"),
    _Tool("transformers", "a Hugging Face teacher through the course's distiller; model configs", "07, 10"),
    _Tool("onnx", "the exported computation graph", "08"),
    _Tool("onnxruntime", "running the exported student without Python in the loop; int8 quantisation", "08"),
    _Tool("jupyterlab", "where the chapters are read, run and presented", "00–10"),
    _Tool("jupyterlab-rise", "presenting a notebook as live slides", "slides"),
    _Tool("nbval", "re-running every notebook in CI and comparing its outputs", "all"),
    _Tool("papermill", "running a chapter with MODE = 'full' from the command line", "all"),
)


@dataclass(frozen=True)
class _Pretrained:
    """A pretrained Transformer on the Hugging Face hub, its published architecture and what to use it for."""

    hub_name: str
    model_class: str
    config: dict[str, Any] = field(default_factory=dict)
    role: str = ""
    reference: str = ""


PRETRAINED: tuple[_Pretrained, ...] = (
    _Pretrained("bert-base-uncased", "BertModel", {}, "teacher for English tasks (GLUE, SQuAD, CoNLL-2003)",
               "Devlin et al. 2019"),
    _Pretrained("bert-base-chinese", "BertModel", {"vocab_size": 21128},
               "teacher for the course's Chinese tasks: fine-tune on MSRA, then distil with chapter 07's code",
               "Devlin et al. 2019"),
    _Pretrained("roberta-base", "RobertaModel", {"vocab_size": 50265, "max_position_embeddings": 514, "type_vocab_size": 1},
               "a stronger English teacher (more data, no next-sentence task)", "Liu et al. 2019"),
    _Pretrained("distilbert-base-uncased", "DistilBertModel", {},
               "the student of BERT-base: half the layers, initialised from every other teacher layer",
               "Sanh et al. 2019"),
    _Pretrained("huawei-noah/TinyBERT_General_4L_312D", "BertModel",
               {"hidden_size": 312, "num_hidden_layers": 4, "num_attention_heads": 12, "intermediate_size": 1200},
               "a 4-layer student distilled on hidden states and attention maps", "Jiao et al. 2020"),
)

DATASETS: tuple[tuple[str, str, str], ...] = (
    ("GLUE", "nine English sentence and sentence-pair classification tasks",
     "the benchmark DistilBERT and TinyBERT report; case 1 of the deck is the course's small Chinese version"),
    ("SQuAD", "extractive question answering over Wikipedia paragraphs",
     "a token-level task like NER: the student predicts answer start and end positions"),
    ("WMT", "machine translation (e.g. English–German news)",
     "where Kim & Rush showed sequence-level distillation; case 2 of the deck applies it to a language model"),
    ("CLUE", "a Chinese counterpart of GLUE", "the next step after the course's Chinese news and NER data"),
)


def tools_table(tools: tuple[_Tool, ...] = TOOLS) -> list[tuple[str, str, str, str]]:
    """Rows ``(package, installed version or 'not installed', purpose, chapters)`` (chapter 10)."""
    rows = []
    for tool in tools:
        try:
            version = metadata.version(tool.package)
        except metadata.PackageNotFoundError:
            version = "not installed"
        rows.append((tool.package, version, tool.purpose, tool.chapters))
    return rows


def pretrained_table(models: tuple[_Pretrained, ...] = PRETRAINED) -> list[tuple[str, int, str, str]]:
    """Rows ``(hub name, parameters, role, reference)``; parameters counted on the ``meta`` device (chapter 10)."""
    import transformers

    rows = []
    for model in models:
        model_class = getattr(transformers, model.model_class)
        config = model_class.config_class(**model.config)
        with torch.device("meta"):
            built = model_class(config)
        rows.append((model.hub_name, sum(p.numel() for p in built.parameters()), model.role, model.reference))
    return rows
