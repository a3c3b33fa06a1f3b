"""benchmarks/ship_chained_average.py: the mean of two runs' snapshots saved as one finished run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import load_benchmark
from emolib import models


def _finished_run(folder, epochs: int, seconds: float):
    """A finished constant-rate run like notebook 02's: snapshots, model, history and metrics."""
    import keras

    (folder / "snapshots").mkdir(parents=True)
    for epoch in range(1, epochs + 1):
        keras.utils.set_random_seed(epochs * 10 + epoch)
        model = models.build_emonet(widths=(4, 8, 8, 8), dense_units=8)
        np.savez(folder / "snapshots" / f"epoch-{epoch:04d}.npz", *model.get_weights())
    model.save(folder / "model.keras")
    history = {"val_accuracy": [0.3 + epoch / 100 for epoch in range(epochs)],
               "accuracy": [0.5] * epochs}
    (folder / "history.json").write_text(json.dumps(history))
    (folder / "metrics.json").write_text(json.dumps({
        "profile": "cpu", "wall_time_s": seconds,
        "parameters": {"epochs": epochs, "schedule": "constant"}}))
    return folder


def test_the_chained_mean_is_saved_as_one_run_with_both_runs_epochs(kaggle_folder, tmp_path, monkeypatch):
    from emolib import averaging, runs

    script = load_benchmark("ship_chained_average")
    monkeypatch.setenv("EMOLIB_DATA", str(kaggle_folder))
    earlier = _finished_run(tmp_path / "earlier", 3, 30.0)
    later = _finished_run(tmp_path / "later", 2, 20.0)
    averaged, average = [], averaging.average

    def remembered(model, files, images=None, **kwargs):
        averaged.append([(file.parents[1].name, averaging.epoch_of(file)) for file in files])
        assert images is not None and len(images)  # batch norm measured again on Training
        return average(model, files, images, **kwargs)

    monkeypatch.setattr(averaging, "average", remembered)
    assert script.main([str(later), "--after", str(earlier), "--name", "chain"]) == 0
    assert averaged == [[("earlier", 1), ("earlier", 2), ("earlier", 3), ("later", 1), ("later", 2)]]
    saved = runs.read_run(runs.runs_dir() / "chain")
    record = saved.metrics["weight_average"]
    assert record["epochs"] == [1, 2, 3, 4, 5] and record["runs"] == {"earlier": 3, "later": 2}
    assert saved.metrics["continues"] == "earlier" and saved.metrics["wall_time_s"] == 50.0
    assert len(saved.history["val_accuracy"]) == 5
    assert 0 <= saved.metrics["test"]["accuracy"] <= 1
    assert saved.model_path.is_file()


def test_a_folder_that_is_not_a_finished_run_is_named(tmp_path):
    script = load_benchmark("ship_chained_average")
    with pytest.raises(SystemExit, match="metrics.json: not found"):
        script.main([str(tmp_path), "--after", str(tmp_path), "--name", "x"])
