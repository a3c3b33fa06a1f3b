"""benchmarks/weight_soup.py: which soups it tries, the greedy rule, its record and its refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import load_benchmark, saved_emonets
from emolib import models


@pytest.fixture(scope="module")
def soups():
    return load_benchmark("weight_soup")


def test_every_uniform_soup_holds_the_anchor(soups):
    tried = soups.candidates(["b", "a", "c"], anchor="a")
    assert tried == [("a", "b"), ("a", "c"), ("a", "b", "c")]


def test_the_greedy_soup_keeps_an_ingredient_only_if_the_score_does_not_fall(soups):
    scores = {("x",): 0.60, ("x", "y"): 0.58, ("x", "z"): 0.61}
    kept, steps = soups.greedy(["x", "y", "z"], lambda names: scores[tuple(names)])
    assert kept == ["x", "z"]
    assert [step[2] for step in steps] == [False, True]


def test_a_soup_is_the_mean_of_its_ingredients_weights(soups, tmp_path):
    paths = saved_emonets(tmp_path, 2)
    loaded = {str(path): models.load_model(path) for path in paths}
    mean = soups.soup(loaded, list(loaded), None, tmp_path)
    expected = [np.mean(pair, axis=0) for pair in zip(*(m.get_weights() for m in loaded.values()))]
    for got, want in zip(mean.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_the_benchmark_records_every_soup_and_the_greedy_path(soups, kaggle_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("EMOLIB_DATA", str(kaggle_folder))
    monkeypatch.setattr(soups, "METRICS", tmp_path)
    paths = [str(path) for path in saved_emonets(tmp_path, 3)]
    assert soups.main(paths + ["--record", "soup-test", "--title", "Soup test"]) == 0
    stored = json.loads((tmp_path / "soup-test.json").read_text())
    assert len(stored["singles"]) == 3
    assert len(stored["soups"]) == 3  # the anchor with each other model, and all three
    best = max(stored["singles"], key=lambda path: stored["singles"][path]["accuracy"])
    assert all(best in row["ingredients"] for row in stored["soups"])
    assert stored["greedy"]["kept"][0] == best
    table = (tmp_path / "soup-test.md").read_text()
    assert table.startswith("# Soup test") and "Greedy soup" in table and "PrivateTest never read" in table


def test_unusable_models_are_refused_in_one_line(soups, tmp_path, capsys):
    paths = [str(path) for path in saved_emonets(tmp_path, 1)]
    assert soups.main(paths) == 2
    assert capsys.readouterr().err.strip() == "error: give two or more different .keras models to average"
    missing = str(tmp_path / "nowhere.keras")
    assert soups.main(paths + [missing]) == 2
    assert capsys.readouterr().err.strip() == f"error: {missing}: no such model file"
    assert soups.main(paths + [paths[0], "--anchor", missing]) == 2  # the same file twice
    assert "two or more different" in capsys.readouterr().err


def test_models_of_different_shapes_are_refused(soups, kaggle_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EMOLIB_DATA", str(kaggle_folder))
    small = saved_emonets(tmp_path / "small", 1)[0]
    large = saved_emonets(tmp_path / "large", 1, widths=(8, 8, 8, 8))[0]
    assert soups.main([str(small), str(large)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: {large}: its weights do not fit") and "\n" not in error



@pytest.mark.parametrize("soups_win", [True, False])
def test_save_writes_the_best_soup_as_a_run_only_when_it_beats_every_ingredient(
        soups, soups_win, kaggle_folder, tmp_path, monkeypatch, capsys):
    from emolib import evaluation, paths

    monkeypatch.setenv("EMOLIB_DATA", str(kaggle_folder))
    monkeypatch.setattr(soups, "METRICS", tmp_path)
    members = [str(path) for path in saved_emonets(tmp_path, 3)]
    ingredients, load, evaluate = set(), models.load_model, evaluation.evaluate

    def remembered(path):
        model = load(path)
        ingredients.add(id(model))
        return model

    def scored(model, images, labels, *, split, tta=None):  # PublicTest decides who wins
        scores = evaluate(model, images, labels, split=split, tta=tta)
        if split == "val":
            scores["accuracy"] = 0.2 if (id(model) in ingredients) == soups_win else 0.9
        return scores

    monkeypatch.setattr(models, "load_model", remembered)
    monkeypatch.setattr(evaluation, "evaluate", scored)
    assert soups.main(members + ["--record", "soup-save", "--save", "soup-run"]) == 0
    folder = paths.outputs_dir("runs", "soup-run", create=False)
    out = capsys.readouterr().out
    if soups_win:
        metrics = json.loads((folder / "metrics.json").read_text())
        assert len(metrics["parameters"]["soup"]) >= 2 and (folder / "model.keras").exists()
        assert {"val", "test", "test_tta", "tta_chosen_on_val"} <= set(metrics)
        assert "saved the mean of" in out
    else:
        assert not folder.exists() and "nothing saved" in out
