import ast
import re
import sys
from importlib import metadata

import nbformat
import pytest

from course_lib.context import REPO_ROOT
from course_lib.course.envcheck import (
    DEV,
    PYPROJECT,
    RUNTIME,
    Check,
    Requirement,
    check_data,
    check_device,
    check_packages,
    check_requirement,
    folder_sizes,
    format_bytes,
    parse_requirement,
    read_requirements,
    report_lines,
    satisfies,
)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_installed_packages_pass():
    checks = check_packages()
    assert checks and all(c.ok for c in checks), [c.line() for c in checks if not c.ok]


def test_every_package_of_pyproject_is_checked_with_its_versions():
    text = PYPROJECT.read_text()
    requirements = read_requirements()
    names = [r.name for r in requirements]
    for name in ("torch", "transformers", "tokenizers", "onnx", "onnxruntime", "scikit-learn", "seqeval",
                 "safetensors", "sacrebleu", "jupyterlab", "nbval", "papermill"):
        assert name in names
    for requirement in requirements:
        assert f'"{requirement.name}{requirement.spec}"' in text
    by_name = {r.name: r for r in requirements}
    assert by_name["transformers"].specifiers == ((">=", "5.0"), ("<", "6"))
    assert by_name["torch"].specifiers == (("==", "2.13.0"),)
    assert by_name["nbval"].group == DEV and by_name["onnx"].group == RUNTIME
    lines = [c.line() for c in check_packages()]
    assert len(lines) == len(requirements)
    assert any("package transformers" in line and ">=5.0,<6" in line for line in lines)


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level modules imported by the notebooks, course_lib and benchmarks that are not in the standard library."""
    found: dict[str, set[str]] = {}
    sources = [(p, p.read_text()) for p in sorted((REPO_ROOT / "course_lib").rglob("*.py"))]
    sources += [(p, p.read_text()) for p in sorted((REPO_ROOT / "benchmarks").rglob("*.py"))]
    for path in sorted((REPO_ROOT / "notebooks").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
        code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
        sources.append((path, code))
    for path, source in sources:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("course_lib", "__future__"):
                    found.setdefault(top, set()).add(path.name)
    return found


def _with_dependencies(names: set[str]) -> set[str]:
    """``names`` and everything they require (extras left out), as normalised distribution names."""
    seen, todo = set(), [_normalise(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            if re.search(r"\bextra\b", line.partition(";")[2]):
                continue
            todo.append(_normalise(re.match(r"\s*[A-Za-z0-9][A-Za-z0-9._-]*", line).group().strip()))
    return seen


def test_every_third_party_import_of_the_course_is_covered_by_the_check():
    """What the chapters import comes from a checked package, or is installed by one (IPython by ipywidgets)."""
    imports = _third_party_imports()
    assert {"torch", "transformers", "onnxruntime", "sklearn", "sacrebleu"} <= set(imports)
    checked = {_normalise(r.name) for r in read_requirements()}
    covered = _with_dependencies(checked)
    distributions = metadata.packages_distributions()
    for module, where in imports.items():
        owners = {_normalise(d) for d in distributions.get(module, [])}
        assert owners, f"`import {module}` ({sorted(where)}) is not provided by any installed package"
        assert owners & covered, \
            f"`import {module}` ({sorted(where)}) comes from {owners}, which pyproject.toml does not bring"


def test_each_requirement_names_the_module_its_package_provides():
    distributions = metadata.packages_distributions()
    for requirement in read_requirements():
        owners = {_normalise(d) for d in distributions.get(requirement.module, [])}
        assert _normalise(requirement.name) in owners, f"{requirement.name} is not imported as {requirement.module}"


@pytest.mark.parametrize("line, name, specifiers", [
    ("torch==2.13.0", "torch", (("==", "2.13.0"),)),
    ("transformers>=5.0,<6", "transformers", ((">=", "5.0"), ("<", "6"))),
    ("tokenizers >= 0.22, < 1", "tokenizers", ((">=", "0.22"), ("<", "1"))),
    ("pysword", "pysword", ()),
    ("ipykernel[test]>=6.29; python_version >= '3.8'", "ipykernel", ((">=", "6.29"),)),
])
def test_parse_requirement(line, name, specifiers):
    requirement = parse_requirement(line)
    assert (requirement.name, requirement.specifiers) == (name, specifiers)


def test_parse_requirement_refuses_what_it_cannot_check():
    with pytest.raises(ValueError, match="does not understand"):
        parse_requirement("numpy~=1.26")


@pytest.mark.parametrize("installed, spec, ok", [
    ("2.13.0+cpu", "==2.13.0", True),
    ("2.13.1", "==2.13.0", False),
    ("2.13", "==2.13.0", True),
    ("5.25.0", ">=5.0,<6", True),
    ("6.0.0", ">=5.0,<6", False),
    ("4.57.1", ">=5.0,<6", False),
    ("1.26.4", ">=1.26", True),
    ("1.25.2", ">=1.26", False),
    ("10.0.0rc1", ">=10", True),
    ("0.9", "<1", True),
    ("0.23.3", "!=0.23.3", False),
])
def test_satisfies(installed, spec, ok):
    assert satisfies(installed, parse_requirement("x" + spec).specifiers) is ok


def test_missing_package_fails_with_the_install_command():
    check = check_requirement(Requirement("no-such-course-package", ((">=", "1.0"),)))
    assert not check.ok
    assert "not installed (need >=1.0)" in check.detail
    assert "make install" in check.detail and "pip install 'no-such-course-package>=1.0'" in check.detail


def test_old_and_too_new_packages_fail_with_the_install_command():
    old = check_requirement(Requirement("numpy", ((">=", "999.0"),)))
    assert not old.ok and f"{metadata.version('numpy')} does not satisfy >=999.0" in old.detail
    assert "pip install 'numpy>=999.0'" in old.detail
    new = check_requirement(Requirement("numpy", ((">=", "1.0"), ("<", "1.1"))))
    assert not new.ok and "pip install 'numpy>=1.0,<1.1'" in new.detail


def test_ok_lines_do_not_depend_on_the_installed_version():
    check = check_requirement(Requirement("numpy", ((">=", "1.26"),)))
    assert check.ok and check.detail == "meets >=1.26"
    assert metadata.version("numpy") not in check.line()


def test_a_package_that_cannot_be_imported_fails(monkeypatch):
    monkeypatch.setitem(sys.modules, "numpy_broken_for_test", None)  # importing it raises ImportError
    from course_lib.course import envcheck

    monkeypatch.setitem(envcheck.IMPORT_NAMES, "numpy", "numpy_broken_for_test")
    check = check_requirement(Requirement("numpy", ()))
    assert not check.ok and "`import numpy_broken_for_test` fails" in check.detail and "make install" in check.detail
    located_only = check_requirement(Requirement("numpy", (), DEV))
    assert not located_only.ok


def test_read_requirements_of_a_small_pyproject(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["a>=1", "b==2.0"]\n'
                         '[project.optional-dependencies]\ndev = ["c<3"]\nother = ["d"]\n')
    assert read_requirements(pyproject) == [
        Requirement("a", ((">=", "1"),), RUNTIME), Requirement("b", (("==", "2.0"),), RUNTIME),
        Requirement("c", (("<", "3"),), DEV),
    ]


def test_a_missing_pyproject_is_one_fail_line(monkeypatch, tmp_path):
    from course_lib.course import envcheck

    monkeypatch.setattr(envcheck, "PYPROJECT", tmp_path / "pyproject.toml")
    checks = check_packages()
    assert len(checks) == 1 and not checks[0].ok and "make install" in checks[0].detail


def test_device_check_never_fails_on_cpu():
    assert check_device().ok


def test_empty_cache_offline_reports_fail_lines(empty_cache):
    checks = check_data()
    assert [c.ok for c in checks] == [False, False]
    text = report_lines(checks)
    assert sum(line.startswith("FAIL") for line in text.splitlines()) == 2
    assert "2 requirement(s) not met" in text


def test_report_verdict_when_all_ok():
    assert "all requirements met" in report_lines([Check("x", True, "fine")])


def test_folder_sizes_counts_every_file_under_each_entry(tmp_path):
    (tmp_path / "models" / "deep").mkdir(parents=True)
    (tmp_path / "models" / "a.bin").write_bytes(b"x" * 300)
    (tmp_path / "models" / "deep" / "b.bin").write_bytes(b"x" * 700)
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "m.npz").write_bytes(b"x" * 50)
    (tmp_path / "loose.txt").write_bytes(b"x" * 5)
    assert folder_sizes(tmp_path) == {"models": 1000, "mnist": 50, "loose.txt": 5}
    assert list(folder_sizes(tmp_path)) == ["models", "mnist", "loose.txt"]


def test_folder_sizes_defaults_to_the_data_cache(empty_cache):
    assert folder_sizes() == {}
    empty_cache.mkdir()
    (empty_cache / "msra").mkdir()
    (empty_cache / "msra" / "f").write_bytes(b"12345")
    assert folder_sizes() == {"msra": 5}


@pytest.mark.parametrize("size, text", [
    (0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (3_456, "3.5 kB"), (12_500_000, "12.5 MB"),
    (999_949_999, "999.9 MB"), (1_200_000_000, "1.20 GB"),
])
def test_format_bytes(size, text):
    assert format_bytes(size) == text


def test_format_bytes_refuses_negative_sizes():
    with pytest.raises(ValueError):
        format_bytes(-1)
