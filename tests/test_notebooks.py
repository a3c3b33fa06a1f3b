"""Committed notebooks are clean sources; the runner executes each one with the quick profile."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pytest

from emolib import parameters, runner
from emolib.cli import main
from emolib.paths import notebooks_dir

NOTEBOOKS = sorted(notebooks_dir().glob("[0-9][0-9]_*.ipynb"))


def parameters_cell(notebook: Path) -> dict:
    """``{name: value}`` of the notebook's parameters cell (annotated literal assignments)."""
    cells = [c for c in nbformat.read(notebook, as_version=4).cells
             if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{notebook.name}: {len(cells)} parameters cells"
    tree = ast.parse(cells[0].source)
    return {node.target.id: ast.literal_eval(node.value) for node in tree.body
            if isinstance(node, ast.AnnAssign)}


def test_the_five_notebooks_exist_in_order():
    assert [nb.name[:2] for nb in NOTEBOOKS][:2] == ["01", "02"]
    assert len({nb.name[:2] for nb in NOTEBOOKS}) == len(NOTEBOOKS)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_is_clean(notebook):
    nb = nbformat.read(notebook, as_version=4)
    assert not [c for c in nb.cells if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    parameters = parameters_cell(notebook)
    assert parameters.get("profile") == "cpu"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_papermill_understands_every_parameter(notebook):
    from papermill.translators import PythonTranslator

    cell = next(c for c in nbformat.read(notebook, as_version=4).cells
                if "parameters" in c.metadata.get("tags", []))
    seen = {parameter.name for parameter in PythonTranslator.inspect(cell)}
    assert seen == set(parameters_cell(notebook))  # e.g. an "=" in a comment hides a parameter


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_profiles_only_override_declared_parameters(notebook):
    declared = parameters_cell(notebook)
    profiles = json.loads(notebook.read_text())["metadata"]["emolib"]["profiles"]
    assert set(profiles) == set(runner.PROFILES)
    for name, overrides in profiles.items():
        unknown = set(overrides) - set(declared)
        assert not unknown, f"{notebook.name} profile {name} sets undeclared {unknown}"
        for key, value in overrides.items():
            assert type(value) is type(declared[key]), f"{notebook.name} {name}.{key}"


def test_parse_overrides():
    # text, typed per notebook against its parameters cell by parameters.check_overrides
    assert parameters.parse_overrides(["epochs=3", "data_source=x.zip", "flag=False", "w=[1, 2]"]) == {
        "epochs": "3", "data_source": "x.zip", "flag": "False", "w": "[1, 2]"}
    with pytest.raises(Exception, match="name=value"):
        parameters.parse_overrides(["epochs"])


def test_run_without_data_says_where_to_put_it(monkeypatch, capsys):
    monkeypatch.delenv("EMOLIB_DATA", raising=False)
    assert main(["run", "--only", "01"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "archive.zip" in err and "fer2013.csv" in err


@pytest.mark.notebook
def test_failing_notebook_is_named_with_the_executed_copy(tmp_path, monkeypatch, capsys):
    bad = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('profile: str = "cpu"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("raise ValueError('boom')")])
    bad.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(bad, tmp_path / "07_broken.ipynb")
    monkeypatch.setattr(runner, "notebooks_dir", lambda: tmp_path)
    assert main(["run", "--only", "07"]) == 2
    err = capsys.readouterr().err
    assert "07_broken.ipynb failed" in err and "ValueError: boom" in err
    assert "quick/07_broken.ipynb" in err and "\n" not in err.strip()
    log = Path(err.split("full output in ")[1].strip())
    assert "ValueError: boom" in log.read_text()  # the kernel's whole output, named by the error
    assert (tmp_path / "07_broken.ipynb").read_text().count("boom") == 1  # source untouched


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_with_quick_profile(notebook, fer2013_path, monkeypatch):
    monkeypatch.setenv("EMOLIB_DATA", str(fer2013_path))
    if notebook.name.startswith("04"):  # the comparison reads runs: make one first
        runner.run("quick", ["02"])
    executed = runner.run("quick", [notebook.name[:2]])
    nb = nbformat.read(executed[0], as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    assert executed[0].parent.name == "quick" and executed[0].parent.parent.name == "notebooks"


@pytest.mark.slow
def test_transfer_notebook_distils_into_a_tagged_run(fer2013_path, monkeypatch):
    from emolib.paths import outputs_dir

    monkeypatch.setenv("EMOLIB_DATA", str(fer2013_path))
    runner.run("quick", ["03"], {"teacher": "emonet", "run_tag": "kd", "augment": False,
                                 "run_experiment": False}, tag="kd")
    runs = outputs_dir("runs")
    assert not (runs / "quick-mobilenet_v2").exists()  # the profile's own run is left alone
    metrics = json.loads((runs / "quick-mobilenet_v2-kd" / "metrics.json").read_text())
    assert metrics["parameters"]["teacher"] == "emonet"
    assert metrics["parameters"]["distillation_weight"] == 0.5
    assert metrics["parameters"]["augment"] is False
    assert 0 <= metrics["test"]["accuracy"] <= 1


@pytest.mark.slow
@pytest.mark.parametrize("teacher, start", [("default", {"finetune_from": "default"}),  # the shipped model
                                            ("self", {})])  # this run's own stage 1
def test_emonet_notebook_distils_a_teacher_into_stage_2(teacher, start, fer2013_path, monkeypatch):
    from emolib.paths import outputs_dir

    monkeypatch.setenv("EMOLIB_DATA", str(fer2013_path))
    runner.run("quick", ["02"], {"teacher": teacher, "run_tag": f"kd-{teacher}", "train_seed_baseline": False,
                                 "distill_weight": 0.3, **start}, tag=f"kd-{teacher}")
    metrics = json.loads((outputs_dir("runs") / f"quick-emonet-kd-{teacher}" / "metrics.json").read_text())
    parameters = metrics["parameters"]
    assert parameters["teacher"] == teacher and parameters["distillation"] == "online"
    assert parameters["distillation_weight"] == 0.3 and parameters["temperature"] == 2.0
    assert 0 <= metrics["test"]["accuracy"] <= 1


@pytest.mark.slow
def test_emonet_notebook_stage_3_averages_every_constant_rate_epoch(fer2013_path, monkeypatch):
    """The cpu profile's chain in small: stage 1, stage 2, then stage 3 from stage 2's best epoch."""
    from emolib.paths import outputs_dir

    monkeypatch.setenv("EMOLIB_DATA", str(fer2013_path))
    runner.run("quick", ["02"], {"swa_epochs": 2, "swa_learning_rate": 0.0002, "run_tag": "s3",
                                 "train_seed_baseline": False}, tag="s3")
    runs = outputs_dir("runs")
    stage2 = json.loads((runs / "quick-emonet-stage2-s3" / "metrics.json").read_text())
    stage3 = json.loads((runs / "quick-emonet-s3" / "metrics.json").read_text())
    assert (runs / "quick-emonet-stage1-s3" / "metrics.json").is_file()
    assert stage2["parameters"]["epochs"] == 1 and stage2["parameters"]["schedule"] == "cosine"
    assert stage3["parameters"]["epochs"] == 2 and stage3["parameters"]["schedule"] == "constant"
    assert stage3["parameters"]["learning_rate"] == 0.0002
    assert stage3["weight_average"]["epochs"] == [1, 2]
    assert sorted(p.name for p in (runs / "quick-emonet-s3" / "snapshots").iterdir()) == [
        "epoch-0001.npz", "epoch-0002.npz"]


@pytest.mark.notebook
@pytest.mark.parametrize("setting", ["teacher=default", "swa_epochs=2"])  # stage 2's teacher, stage 3
def test_what_needs_stage_2_is_refused_without_it_in_one_line(setting, fer2013_path, monkeypatch, capsys):
    monkeypatch.setenv("EMOLIB_DATA", str(fer2013_path))
    assert main(["run", "--only", "02", "-p", setting, "-p", "finetune_epochs=0", "--tag", "refused"]) == 2
    err = capsys.readouterr().err.strip()
    name = setting.split("=")[0]
    assert f"-p {name} needs train_emonet and finetune_epochs > 0" in err and "\n" not in err
