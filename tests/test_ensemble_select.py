"""benchmarks/ensemble_select.py: members chosen on PublicTest, its record and its refusals."""

from __future__ import annotations

import json

import pytest

from conftest import load_benchmark, saved_emonets


@pytest.fixture(scope="module")
def ensembles():
    return load_benchmark("ensemble_select")


def _saved_emonets(folder, count: int) -> list[str]:
    return [str(path) for path in saved_emonets(folder, count)]


def test_members_are_chosen_on_public_test_and_every_model_is_recorded(
        ensembles, kaggle_folder, tmp_path, monkeypatch):
    from emolib import evaluation

    monkeypatch.setenv("EMOLIB_DATA", str(kaggle_folder))
    monkeypatch.setattr(ensembles, "METRICS", tmp_path)
    seen, select = [], evaluation.select_ensemble

    def remembered(labels, probabilities, **kwargs):
        seen.append(len(labels))
        return select(labels, probabilities, **kwargs)

    monkeypatch.setattr(evaluation, "select_ensemble", remembered)
    paths = _saved_emonets(tmp_path, 3)
    assert ensembles.main(paths + ["--names", "a", "b", "c", "--record", "ens-test", "--tta"]) == 0
    from emolib import datasets

    data = datasets.load(str(kaggle_folder), progress=False)
    assert seen == [len(data.split("val")[1])]  # PublicTest's labels, never PrivateTest's
    stored = json.loads((tmp_path / "ens-test.json").read_text())
    names = [row["name"] for row in stored["rows"]]
    assert names[:3] == ["a", "b", "c"]
    assert set(stored["members"]) <= {"a", "b", "c"}
    if len(stored["members"]) >= 2:
        assert names[3].startswith("ensemble (")
    assert all(row["tta"] is None for row in stored["rows"][:3])  # --tta with nothing: none only
    table = (tmp_path / "ens-test.md").read_text()
    assert "PrivateTest read once, after the choice" in table and "| a | none |" in table


def test_bad_arguments_are_refused_in_one_line(ensembles, tmp_path, capsys):
    paths = _saved_emonets(tmp_path, 2)
    assert ensembles.main(paths[:1]) == 2
    assert capsys.readouterr().err.strip() == "error: give two or more different models to ensemble"
    assert ensembles.main(paths + ["--names", "x"]) == 2
    assert capsys.readouterr().err.strip() == "error: --names: give one different name for each model"
    missing = str(tmp_path / "nowhere.keras")
    assert ensembles.main([paths[0], missing]) == 2
    assert capsys.readouterr().err.strip() == f"error: {missing}: no such model file"
    assert ensembles.main(paths + ["--max-members", "1"]) == 2
    assert "--max-members" in capsys.readouterr().err
