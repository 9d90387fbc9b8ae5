"""Tests for course_lib.course.resources: the tools table reads installed versions, the model sizes are computed."""

from __future__ import annotations

from importlib import metadata

from course_lib.course.resources import DATASETS, PRETRAINED, _Pretrained, TOOLS, _Tool, pretrained_table, tools_table


def test_every_tool_is_a_dependency_of_the_course_and_reports_its_installed_version():
    rows = {package: version for package, version, _, _ in tools_table()}
    assert rows["torch"] == metadata.version("torch") and rows["nbval"] == metadata.version("nbval")
    assert all(version != "not installed" for version in rows.values()), rows
    assert tools_table((_Tool("no-such-package-xyz", "nothing", "–"),)) == [
        ("no-such-package-xyz", "not installed", "nothing", "–")]


def test_model_sizes_are_counted_from_the_architectures_without_weights():
    sizes = {name: parameters for name, parameters, _, _ in pretrained_table()}
    assert 109_000_000 < sizes["bert-base-uncased"] < 110_000_000
    assert 66_000_000 < sizes["distilbert-base-uncased"] < 67_000_000
    assert sizes["huawei-noah/TinyBERT_General_4L_312D"] < sizes["distilbert-base-uncased"] < sizes["roberta-base"]
    tiny = _Pretrained("tiny", "BertModel", {"vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
                                             "num_attention_heads": 2, "intermediate_size": 16})
    assert pretrained_table((tiny,))[0][1] < 10_000


def test_the_lists_name_the_models_and_datasets_of_the_issue():
    names = {model.hub_name for model in PRETRAINED}
    assert {"bert-base-uncased", "roberta-base", "distilbert-base-uncased"} <= names
    assert {"GLUE", "SQuAD", "WMT"} <= {name for name, _, _ in DATASETS}
    assert len({tool.package for tool in TOOLS}) == len(TOOLS)
