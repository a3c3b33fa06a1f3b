"""Run folders: a resume only with the same settings, a fresh run leaves nothing of the previous
one, a kill during a checkpoint write loses one epoch at most, progress.json for the runner, and
the notebooks' way in: model.compile, runs.open_run, model.fit, run.result()."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from test_training import Crash, CrashAfterEpoch, tiny_emonet, toy_data

from emolib import checkpoints, models, progress, records, runs, training
from emolib.errors import EmolibError


def crash_in_first_epoch():
    """A Keras callback that kills training after its first batch: no epoch ever finishes."""
    import keras

    def crash(batch, logs=None):
        raise Crash("killed in epoch 1")

    return keras.callbacks.LambdaCallback(on_train_batch_end=crash)


@pytest.mark.slow
def test_resume_with_other_settings_is_refused_with_a_way_to_start_over(monkeypatch):
    train_data, val_data = toy_data(64), toy_data(32, seed=1)
    settings = dict(run_name="changed", epochs=3, batch_size=32, verbose=0, augment=False)
    with pytest.raises(Crash):
        training.train(tiny_emonet(), train_data, val_data, learning_rate=1e-3,
                       callbacks=[CrashAfterEpoch(1)], **settings)
    with pytest.raises(EmolibError) as refused:
        training.train(tiny_emonet(), train_data, val_data, learning_rate=2e-3, **settings)
    message = str(refused.value)
    assert "\n" not in message and "learning_rate 0.001 -> 0.002" in message
    assert "--fresh" in message and "changed" in message
    with pytest.raises(EmolibError, match=r"train data \(64 -> 48 images\)"):
        training.train(tiny_emonet(), toy_data(48), val_data, learning_rate=1e-3, **settings)
    with pytest.raises(EmolibError, match="the model"):
        training.train(models.build_emonet(widths=(4, 8, 8, 16), dense_units=8),
                       train_data, val_data, learning_rate=1e-3, **settings)

    monkeypatch.setenv(runs.FRESH_VARIABLE, "1")  # what `python -m emolib run --fresh` sets
    run = training.train(tiny_emonet(), train_data, val_data, learning_rate=2e-3, **settings)
    assert run.resumed_from_epoch == 0 and run.history["epoch"] == [0, 1, 2]
    recorded = json.loads((run.directory / "run.json").read_text())
    assert recorded["parameters"]["learning_rate"] == 2e-3


@pytest.mark.slow
def test_same_settings_resume_where_the_run_stopped(capsys):
    train_data, val_data = toy_data(64), toy_data(32, seed=1)
    settings = dict(run_name="same", epochs=3, batch_size=32, verbose=0, augment=False)
    with pytest.raises(Crash):
        training.train(tiny_emonet(), train_data, val_data, callbacks=[CrashAfterEpoch(2)],
                       **settings)
    run = training.train(tiny_emonet(), train_data, val_data, **settings)
    assert run.resumed_from_epoch == 2 and run.history["epoch"] == [0, 1, 2]
    # a notebook that stopped after this run (in a later stage) finds it trained when re-run
    again = training.train(tiny_emonet(), train_data, val_data, **settings)
    assert again.resumed_from_epoch == 3 and again.history == run.history
    np.testing.assert_array_equal(again.model.get_weights()[0], run.model.get_weights()[0])
    assert "same: trained already (3 epochs), not saved yet" in capsys.readouterr().out
    # other settings start a finished, unsaved run over (an interrupted one is refused, below)
    changed = training.train(tiny_emonet(), train_data, val_data, learning_rate=5e-3, **settings)
    assert changed.resumed_from_epoch == 0 and changed.history["epoch"] == [0, 1, 2]
    assert "unsaved finished run's 3 epochs had other settings" in capsys.readouterr().out
    training.save_run(changed, {}, profile="quick")
    assert not (run.directory / "backup").exists()  # saved: nothing left to resume


@pytest.mark.slow
def test_a_fresh_run_leaves_nothing_of_the_previous_run():
    train_data, val_data = toy_data(64), toy_data(32, seed=1)
    settings = dict(run_name="stale", batch_size=32, verbose=0, augment=False)
    first = training.train(tiny_emonet(), train_data, val_data, epochs=1, **settings)
    training.save_run(first, {}, profile="quick")
    assert [run.name for run in runs.find_runs()] == ["stale"]
    with pytest.raises(Crash):  # a new run with this name dies before its first epoch ends
        training.train(tiny_emonet(), train_data, val_data, epochs=2,
                       callbacks=[crash_in_first_epoch()], **settings)
    left = {path.name for path in first.directory.iterdir()}
    assert not left & {"model.keras", "metrics.json", "history.json", "best.keras", "log.csv"}
    assert runs.find_runs() == [] and runs.unfinished_runs() == ["stale"]
    assert json.loads((first.directory / "run.json").read_text())["parameters"]["epochs"] == 2


@pytest.mark.slow
def test_a_kill_while_a_backup_is_written_loses_one_epoch_not_the_run(monkeypatch):
    """The second backup write dies half-way (a truncated file): the re-run resumes from the
    first epoch's backup instead of failing on the broken file."""
    import keras

    train_data, val_data = toy_data(64), toy_data(32, seed=1)
    settings = dict(run_name="killed", epochs=3, batch_size=32, verbose=0, augment=False)
    save_weights, calls = keras.Model.save_weights, []

    def dies_during_the_second_write(self, filepath, *args, **kwargs):
        calls.append(filepath)
        if len(calls) == 2:
            with open(filepath, "wb") as handle:
                handle.write(b"\x89HDF\r\n\x1a\n truncated")
            raise Crash("killed while writing the backup")
        return save_weights(self, filepath, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save_weights", dies_during_the_second_write)
    with pytest.raises(Crash):
        training.train(tiny_emonet(), train_data, val_data, **settings)
    monkeypatch.setattr(keras.Model, "save_weights", save_weights)
    run = training.train(tiny_emonet(), train_data, val_data, **settings)
    assert run.resumed_from_epoch == 1 and run.history["epoch"] == [0, 1, 2]
    assert keras.models.load_model(run.directory / "best.keras", compile=False).output_shape == (None, 7)
    assert not list(run.directory.glob(".*tmp*"))  # no half-written file left behind


def test_restore_finishes_or_drops_a_best_model_the_commit_did_or_did_not_reach(tmp_path):
    """A kill between writing the state and renaming the new best: restore installs it; a best
    written for an epoch the state never recorded is dropped."""
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "best-epoch-0002.keras").write_text("committed")
    (backup / "best-epoch-0003.keras").write_text("not committed")
    state = checkpoints.RunState(tmp_path, model=None, state={"epoch": 2, "best_epoch": 2, "rows": []})
    assert state.restore() == 0  # no weights named: nothing to load
    assert (tmp_path / "best.keras").read_text() == "committed"
    assert not list(backup.glob("best-epoch-*"))


def test_log_rows_cut_short_by_a_kill_are_dropped(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("epoch,accuracy,val_accuracy\n0,0.5,0.4\n1,0.6,")
    assert checkpoints.read_log(log) == [{"epoch": 0.0, "accuracy": 0.5, "val_accuracy": 0.4}]


@pytest.mark.slow
def test_training_writes_progress_for_the_runner():
    train_data, val_data = toy_data(64), toy_data(32, seed=1)
    run = training.train(tiny_emonet(), train_data, val_data, run_name="watched", epochs=2,
                         batch_size=32, verbose=0, augment=False)
    record = json.loads((run.directory / "progress.json").read_text())
    assert record["state"] == "finished" and (record["epoch"], record["epochs"]) == (2, 2)
    assert record["best_val_accuracy"] == pytest.approx(max(run.history["val_accuracy"]))
    assert [entry["epoch"] for entry in record["epoch_log"]] == [1, 2]
    assert record["epoch_log"][0]["eta_s"] > 0 and record["eta_s"] == 0


def compiled(model, steps: int, learning_rate: float = 1e-3):
    """``model`` compiled the way the notebooks do it."""
    import keras

    model.compile(optimizer=training.optimizer(learning_rate, steps=steps, warmup_steps=2,
                                               weight_decay=0.01),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
                  metrics=["accuracy"])
    return model


@pytest.mark.slow
def test_a_notebook_style_fit_killed_after_an_epoch_resumes_with_its_optimizer_state():
    """Notebooks 02 and 03 train with model.compile, runs.open_run and model.fit: a run killed
    after its second epoch goes on at the third, the optimizer (and its schedule) where it was."""
    train_data, val_data = toy_data(64), toy_data(32, seed=1)
    train_ds = training.make_dataset(*train_data, batch_size=32, training=True)
    val_ds = training.make_dataset(*val_data, batch_size=256)
    recipe = training.recipe(epochs=3, batch_size=32, augment=False)

    def open_and_fit(*extra):
        model = compiled(tiny_emonet(), steps=3 * len(train_ds))
        run = runs.open_run("quick-notebook", model, recipe, train_data=train_data, val_data=val_data)
        start = (run.initial_epoch, int(model.optimizer.iterations.numpy()))
        model.fit(train_ds, validation_data=val_ds, epochs=3, initial_epoch=run.initial_epoch,
                  callbacks=run.callbacks(*extra), verbose=0)
        return run, start

    with pytest.raises(Crash):
        open_and_fit(CrashAfterEpoch(2))
    run, start = open_and_fit()
    assert start == (2, 2 * len(train_ds))  # two epochs of steps done: the schedule goes on
    trained = run.result()
    assert trained.resumed_from_epoch == 2 and trained.history["epoch"] == [0, 1, 2]
    assert trained.parameters == recipe and trained.wall_time_s > 0
    assert json.loads((trained.directory / "progress.json").read_text())["resumed_from"] == 2
    assert (trained.directory / "tensorboard").is_dir()
    assert runs.read_run(trained.directory) is None  # trained, not saved: saving is its own step
    training.save_run(trained, {}, profile="quick")
    saved = runs.read_run(trained.directory)
    assert saved.metrics["parameters"] == recipe and saved.metrics["resumed_from_epoch"] == 2
    assert saved.metrics["best_epoch"] == int(np.argmax(trained.history["val_accuracy"])) + 1
    assert [found.name for found in runs.find_runs("quick")] == ["quick-notebook"]


@pytest.mark.slow
def test_open_run_refuses_a_fit_that_would_not_continue_the_run():
    train_data, val_data = toy_data(64), toy_data(32, seed=1)
    train_ds = training.make_dataset(*train_data, batch_size=32, training=True)
    recipe = training.recipe(epochs=3, batch_size=32, augment=False)
    with pytest.raises(EmolibError, match="compile the model before open_run"):
        runs.open_run("quick-refused", tiny_emonet(), recipe, train_data=train_data, val_data=val_data)
    assert not outputs_dir_of("quick-refused").exists()

    model = compiled(tiny_emonet(), steps=3 * len(train_ds))
    run = runs.open_run("quick-refused", model, recipe, train_data=train_data, val_data=val_data)
    with pytest.raises(Crash):
        model.fit(train_ds, epochs=3, callbacks=run.callbacks(CrashAfterEpoch(1)), verbose=0)

    other_rate = compiled(tiny_emonet(), steps=3 * len(train_ds), learning_rate=2e-3)
    with pytest.raises(EmolibError, match=r"compile optimizer\.learning_rate\.warmup_target 0\.001 -> 0\.002"):
        runs.open_run("quick-refused", other_rate, recipe, train_data=train_data, val_data=val_data)
    model = compiled(tiny_emonet(), steps=3 * len(train_ds))
    run = runs.open_run("quick-refused", model, recipe, train_data=train_data, val_data=val_data)
    assert run.initial_epoch == 1
    with pytest.raises(EmolibError, match=r"initial_epoch=run\.initial_epoch \(1\)"):
        model.fit(train_ds, epochs=3, callbacks=run.callbacks(), verbose=0)
    with pytest.raises(EmolibError, match=r"fit\(epochs=5\) but the run records epochs=3"):
        model.fit(train_ds, epochs=5, initial_epoch=1, callbacks=run.callbacks(), verbose=0)
    model.fit(train_ds, epochs=3, initial_epoch=run.initial_epoch, callbacks=run.callbacks(), verbose=0)
    assert run.result().history["epoch"] == [0, 1, 2]


def outputs_dir_of(name):
    from emolib.paths import outputs_dir

    return outputs_dir("runs", name, create=False)


def test_join_phases_numbers_the_epochs_on_and_adds_the_minutes(tmp_path):
    head = runs.Run("r/head", tmp_path / "head", "head model", {"epoch": [0, 1], "val_accuracy": [0.3, 0.4]},
                    {"epochs": 2}, 60.0)
    fine = runs.Run("r", tmp_path, "fine model", {"epoch": [0, 1, 2], "val_accuracy": [0.5, 0.6, 0.55]},
                    {"epochs": 3}, 120.0, resumed_from_epoch=1)
    joined = runs.join_phases(head, fine)
    assert joined.history == {"epoch": [0, 1, 2, 3, 4], "val_accuracy": [0.3, 0.4, 0.5, 0.6, 0.55]}
    assert (joined.model, joined.directory, joined.parameters) == ("fine model", tmp_path, {"epochs": 3})
    assert joined.wall_time_s == 180.0 and fine.history["epoch"] == [0, 1, 2]  # fine is unchanged


class FakeRunState:
    epoch, best, best_epoch = 0, None, None
    history = {}


def test_time_left_comes_from_the_epochs_done_then_from_the_steps():
    watcher = progress.TrainingProgress("/nonexistent", "r", epochs=10, steps=100,
                                        run_state=FakeRunState())
    watcher.epoch_start = 0.0
    watcher.step = 25
    assert watcher.record(now=50.0)["eta_s"] == pytest.approx(9.75 * 200)  # 50 s per 25 steps
    watcher.durations, watcher.step = [120.0, 180.0], 0
    FakeRunState.epoch = 2
    record = watcher.record(now=400.0)
    assert record["eta_s"] == pytest.approx(8 * 150) and record["epoch"] == 3
    FakeRunState.epoch = 0


def write_progress(runs_dir, name, **fields):
    record = {"run": name, "directory": str(runs_dir / name), "session": "s", "state": "training",
              "epoch": 2, "epochs": 40, "epochs_done": 1, "step": 10, "steps": 100,
              "elapsed_s": 150.0, "eta_s": 5700.0, "val_accuracy": 0.5, "best_val_accuracy": 0.5,
              "best_epoch": 1, "resumed_from": 0, "updated": time.time(),
              "epoch_log": [{"epoch": 1, "elapsed_s": 150.0, "eta_s": 5850.0,
                             "val_accuracy": 0.5, "best_val_accuracy": 0.5}], **fields}
    (runs_dir / name).mkdir(parents=True, exist_ok=True)
    checkpoints.write_json(runs_dir / name / "progress.json", record)


def test_console_appends_epoch_lines_or_rewrites_one_line_on_a_terminal(tmp_path):
    import io

    write_progress(tmp_path, "cpu-emonet", resumed_from=12)
    write_progress(tmp_path, "other-session", session="t")
    appended = io.StringIO()
    watcher = progress.NotebookProgress(tmp_path, "s", stream=appended, live=False)
    watcher.since = 0
    watcher.poll()
    watcher.poll()  # nothing new: nothing printed twice
    lines = appended.getvalue().splitlines()
    assert lines == ["  cpu-emonet  resumed after epoch 12 of 40",
                     "  cpu-emonet  epoch 1/40 (resumed after 12)  2:30 elapsed, ~1:37:30 left  "
                     "PublicTest 50.0% (best 50.0%)"]
    assert watcher.summary() == [f"  cpu-emonet: best PublicTest 50.0% (epoch 1 of 40) -> "
                                 f"{tmp_path / 'cpu-emonet'}"]

    terminal = io.StringIO()
    live = progress.NotebookProgress(tmp_path, "s", stream=terminal, live=True)
    live.since = 0
    live.poll()
    assert "\n" not in terminal.getvalue() and terminal.getvalue().startswith("\r")
    assert "epoch 2/40 [" in terminal.getvalue() and "~1:35:00 left" in terminal.getvalue()
    write_progress(tmp_path, "cpu-emonet", state="finished", epoch=40, epochs_done=40, eta_s=0.0)
    live.poll()
    assert terminal.getvalue().count("\n") == 1  # the finished run's line stays


def test_fingerprints_tell_data_and_models_apart():
    images, labels = toy_data(16)
    assert records.fingerprint(images, labels) == records.fingerprint(images.copy(), labels.copy())
    changed = images.copy()
    changed[0, 0, 0, 0] ^= 1
    assert records.fingerprint(changed, labels) != records.fingerprint(images, labels)
    assert records.fingerprint(images, labels) != records.fingerprint(images, np.roll(labels, 1))
