"""benchmarks/swa_length.py: which snapshots each mean holds, its record and its refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import load_benchmark
from emolib import models


@pytest.fixture(scope="module")
def lengths():
    return load_benchmark("swa_length")


def _run_folder(folder, epochs: int, *, log: bool = True):
    """A run folder like notebook 02's: model.keras, one snapshot per epoch, log.csv."""
    import keras

    (folder / "snapshots").mkdir(parents=True)
    for epoch in range(1, epochs + 1):
        keras.utils.set_random_seed(epoch)
        model = models.build_emonet(widths=(4, 8, 8, 8), dense_units=8)
        np.savez(folder / "snapshots" / f"epoch-{epoch:04d}.npz", *model.get_weights())
    model.save(folder / "model.keras")
    if log:
        rows = [f"{epoch},0.5,1.0,{0.41 + epoch / 100:.2f},1.2" for epoch in range(epochs)]
        (folder / "log.csv").write_text("epoch,accuracy,loss,val_accuracy,val_loss\n" + "\n".join(rows) + "\n")
    return folder


def test_default_counts_double_up_to_every_snapshot(lengths):
    assert lengths.default_counts(16) == [1, 2, 4, 8, 16]
    assert lengths.default_counts(12) == [1, 2, 4, 8, 12]
    assert lengths.default_counts(1) == [1]


def test_the_training_log_gives_each_epochs_val_accuracy_counted_from_one(lengths, tmp_path):
    folder = _run_folder(tmp_path / "run", 3)
    assert lengths.logged_val(folder) == {1: 0.41, 2: 0.42, 3: 0.43}
    assert lengths.logged_val(tmp_path) == {}


def test_each_mean_holds_the_first_k_snapshots_and_the_record_has_every_row(
        lengths, kaggle_folder, tmp_path, monkeypatch):
    from emolib import averaging

    monkeypatch.setenv("EMOLIB_DATA", str(kaggle_folder))
    monkeypatch.setattr(lengths, "METRICS", tmp_path)
    folder = _run_folder(tmp_path / "run", 4)
    averaged, average = [], averaging.average

    def remembered(model, files, images=None, **kwargs):
        averaged.append([lengths.epoch_of(file) for file in files])
        assert images is not None and len(images)  # batch norm is measured again on Training
        return average(model, files, images, **kwargs)

    monkeypatch.setattr(averaging, "average", remembered)
    assert lengths.main([str(folder), "--counts", "4", "2", "--again", "--record", "len-test"]) == 0
    assert averaged == [[1, 2], [1, 2, 3, 4], [1, 2, 3, 4]]
    stored = json.loads((tmp_path / "len-test.json").read_text())
    assert [(row["count"], row["again"]) for row in stored["rows"]] == [(2, False), (4, False), (4, True)]
    assert stored["rows"][0]["last_epoch_val"] == pytest.approx(0.42)
    assert all(0 <= row["accuracy"] <= 1 for row in stored["rows"])
    table = (tmp_path / "len-test.md").read_text()
    assert "| 1–4 (4) (made again) |" in table and "PrivateTest never read" in table


def test_a_continued_run_averages_after_all_of_the_earlier_runs_snapshots(
        lengths, kaggle_folder, tmp_path, monkeypatch, capsys):
    from emolib import averaging

    monkeypatch.setenv("EMOLIB_DATA", str(kaggle_folder))
    monkeypatch.setattr(lengths, "METRICS", tmp_path)
    earlier, later = _run_folder(tmp_path / "earlier", 3), _run_folder(tmp_path / "later", 2)
    averaged, average = [], averaging.average

    def remembered(model, files, images=None, **kwargs):
        averaged.append([(file.parent.parent.name, lengths.epoch_of(file)) for file in files])
        return average(model, files, images, **kwargs)

    monkeypatch.setattr(averaging, "average", remembered)
    assert lengths.main([str(later), "--after", str(earlier), "--counts", "1", "2",
                         "--record", "after-test"]) == 0
    first3 = [("earlier", 1), ("earlier", 2), ("earlier", 3)]
    assert averaged == [first3 + [("later", 1)], first3 + [("later", 1), ("later", 2)]]
    table = (tmp_path / "after-test.md").read_text()
    assert "| the earlier run's 3 snapshots + 1–2 (5) |" in table and "first in every mean" in table
    assert lengths.main([str(later), "--after", str(tmp_path / "none"), "--counts", "1"]) == 2
    assert "--after" in capsys.readouterr().err


def test_the_mean_of_two_snapshots_is_their_weights_mean(tmp_path):
    from emolib import averaging

    folder = _run_folder(tmp_path / "run", 2, log=False)
    files = averaging.snapshots(folder)
    model = models.load_model(folder / "model.keras")
    mean = averaging.average(model, files)
    stored = [np.load(file) for file in files]
    for i, got in enumerate(mean.get_weights()):
        want = (stored[0][f"arr_{i}"] + stored[1][f"arr_{i}"]) / 2
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_unusable_runs_are_refused_in_one_line(lengths, tmp_path, capsys):
    assert lengths.main([str(tmp_path)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: {tmp_path}: no snapshots") and "\n" not in error
    folder = _run_folder(tmp_path / "run", 2)
    assert lengths.main([str(folder), "--counts", "3"]) == 2
    assert capsys.readouterr().err.strip() == "error: --counts: give numbers from 1 to the run's 2 snapshots"
    (folder / "model.keras").unlink()
    assert lengths.main([str(folder)]) == 2
    assert "neither model.keras nor best.keras" in capsys.readouterr().err


def test_several_runs_pool_the_first_k_snapshots_of_each(lengths, kaggle_folder, tmp_path, monkeypatch):
    from emolib import averaging

    monkeypatch.setenv("EMOLIB_DATA", str(kaggle_folder))
    monkeypatch.setattr(lengths, "METRICS", tmp_path)
    first, second = _run_folder(tmp_path / "seed0", 4), _run_folder(tmp_path / "seed1", 3)
    averaged, average = [], averaging.average

    def remembered(model, files, images=None, **kwargs):
        averaged.append([(file.parents[1].name, lengths.epoch_of(file)) for file in files])
        return average(model, files, images, **kwargs)

    monkeypatch.setattr(averaging, "average", remembered)
    assert lengths.main([str(first), str(second), "--counts", "2", "--record", "swap-test"]) == 0
    assert averaged == [[("seed0", 1), ("seed0", 2), ("seed1", 1), ("seed1", 2)]]
    stored = json.loads((tmp_path / "swap-test.json").read_text())
    assert stored["rows"][0]["runs"] == 2 and stored["rows"][0]["last_epoch_val"] is None
    table = (tmp_path / "swap-test.md").read_text()
    assert "| epochs averaged of each of 2 runs |" in table and "| 1–2 (4) |" in table
    assert "seed1" in table
    # the shortest run bounds the counts
    assert lengths.main([str(first), str(second), "--counts", "4"]) == 2
