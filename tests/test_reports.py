"""The results table of notebooks 02 and 03: from evaluate_model's results and the runs, or from
the saved metrics.json, the same rows."""

from __future__ import annotations

import numpy as np
import pytest

from emolib import CLASS_NAMES, evaluation, reports, runs


def result(seed: int, tta: str | None) -> dict:
    """What ``evaluation.evaluate_model`` returns, from random probabilities."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 7, 200)
    scores = {split: {"split": split, **evaluation.classification_metrics(labels, rng.dirichlet(np.ones(7), 200))}
              for split in ("val", "test", "test_tta")}
    return {**scores, "val_tta": scores["val"], "tta_chosen_on_val": tta}


class TinyModel:
    def count_params(self):
        return 1234


def test_training_table_has_one_row_per_model_from_results_or_saved_metrics(tmp_path):
    results = {"seed_cnn": result(0, None), "emonet": result(1, "flip")}
    trained = {name: runs.Run(name, tmp_path, TinyModel(), {"val_accuracy": [0.3, 0.5, 0.4]}, {}, 150.0)
               for name in results}
    table = reports.training_table(results, trained)
    assert list(table.index) == ["seed_cnn", "emonet"]
    row = table.loc["emonet"]
    assert row["TTA (chosen on val)"] == "flip" and table.loc["seed_cnn", "TTA (chosen on val)"] == "none"
    assert row["test (PrivateTest) accuracy"] == pytest.approx(results["emonet"]["test"]["accuracy"], abs=1e-4)
    assert row["test (PrivateTest) accuracy with that TTA"] == pytest.approx(
        results["emonet"]["test_tta"]["accuracy"], abs=1e-4)
    low, high = results["emonet"]["test"]["accuracy_ci95"]
    assert row["test (PrivateTest) 95% CI"] == f"{low:.3f}–{high:.3f}"
    assert (row["best epoch"], row["train minutes"], row["parameters"]) == (2, 2.5, 1234)

    saved = {"emonet": {**results["emonet"], "best_epoch": 2, "wall_time_s": 150.0, "params": 1234}}
    assert reports.training_table(saved).loc["emonet"].equals(row)  # what metrics.json holds


def test_per_class_table_has_models_down_and_classes_across():
    results = {"a": result(0, None), "b": result(1, None)}
    table = reports.per_class_table(results, "recall")
    assert list(table.index) == ["a", "b"] and list(table.columns) == list(CLASS_NAMES)
    assert table.loc["b", "happy"] == pytest.approx(results["b"]["test"]["recall"]["happy"], abs=1e-3)
