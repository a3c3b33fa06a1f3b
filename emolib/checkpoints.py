"""Checkpoints: files written so that a kill never leaves half of one, and a run's per-epoch state.

Every file goes to a temporary name first and is renamed into place, so readers (and a re-run
after a crash) see the previous version or the new one, never a truncated file. ``RunState``
keeps a training run's backup (weights and optimizer state of the last finished epoch), its best
model, its ``log.csv`` and its history, and commits them together at the end of each epoch.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path

import numpy as np

from emolib.errors import EmolibError


def _temporary(path: Path) -> Path:
    """``best.keras`` -> ``.best.tmp.keras``: hidden, and Keras still sees the right suffix."""
    stem, dot, suffix = path.name.partition(".")
    return path.with_name(f".{stem}.tmp{dot}{suffix}")


def save_atomic(path: str | os.PathLike, save) -> Path:
    """``save(temporary path)``, then rename it to ``path``: readers never see half a file."""
    path = Path(path)
    tmp = _temporary(path)
    try:
        save(str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return save_atomic(path, lambda tmp: Path(tmp).write_text(text))


def write_json(path: str | os.PathLike, data) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    return write_text(path, json.dumps(data, indent=1, default=str) + "\n")


def read_json(path: str | os.PathLike) -> dict | None:
    """The JSON object in ``path``, or None when it is missing or unreadable."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_state(directory: Path) -> dict | None:
    """The backed-up state of an interrupted run in ``directory``, or None."""
    backup = directory / "backup"
    state = read_json(backup / "state.json")
    if state and (backup / str(state.get("weights"))).is_file():
        return state
    legacy = read_json(backup / "training_metadata.json")  # keras.callbacks.BackupAndRestore's
    if legacy and (backup / "latest.weights.h5").is_file():
        rows = read_log(directory / "log.csv")[:legacy["epoch"]]
        scores = [row.get("val_accuracy", float("nan")) for row in rows]
        best = int(np.nanargmax(scores)) + 1 if rows and not np.all(np.isnan(scores)) else None
        return {"epoch": legacy["epoch"], "weights": "latest.weights.h5", "rows": rows,
                "best_epoch": best, "best_value": scores[best - 1] if best else None}
    return None


def read_log(log_file: Path) -> list[dict]:
    """Rows of a ``log.csv``; a row cut short by a kill is dropped."""
    try:
        with open(log_file, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError:
        return []
    parsed = []
    for row in rows:
        try:
            parsed.append({key: float(value) for key, value in row.items() if key})
        except (TypeError, ValueError):
            break
    return parsed


class RunState:
    """One run's backup, best checkpoint and log, committed together at the end of each epoch.

    At an epoch's end: weights and optimizer state go to ``backup/epoch-N.weights.h5``; a new
    best model to ``backup/best-epoch-N.keras``; then ``backup/state.json`` is replaced (the
    commit); then the new best replaces ``best.keras``, ``log.csv`` is rewritten and the older
    backup removed. Killed anywhere, the state names complete files, and ``restore`` installs or
    drops a best model the commit did or did not reach. A run that ended keeps its state, marked
    ``finished``, until ``runs.save_run`` removes the backup: a notebook re-run after a crash in a
    later stage finds it trained.
    """

    def __init__(self, directory: str | os.PathLike, model, state: dict | None = None,
                 monitor: str = "val_accuracy"):
        state = state or {}
        self.directory, self.model, self.monitor = Path(directory), model, monitor
        self.backup = self.directory / "backup"
        self.epoch = int(state.get("epoch", 0))
        self.weights = state.get("weights")
        self.rows = [dict(row) for row in state.get("rows", [])]
        self.best_epoch, self.best = state.get("best_epoch"), state.get("best_value")
        self.earlier_seconds = float(state.get("seconds", 0.0))
        self.finished = bool(state.get("finished"))
        self.session_start, self.session_end = time.perf_counter(), None

    @property
    def history(self) -> dict:
        """``{"epoch": [0, 1, ...], "accuracy": [...], "val_accuracy": [...], ...}``."""
        keys = ["epoch"] + sorted({key for row in self.rows for key in row} - {"epoch"})
        return {key: [row.get(key, float("nan")) for row in self.rows] for key in keys}

    @property
    def seconds(self) -> float:
        """Training time over every session of this run."""
        return self.earlier_seconds + (self.session_end or time.perf_counter()) - self.session_start

    def restore(self) -> int:
        """Load the backed-up weights and optimizer state; the number of epochs already done."""
        for pending in self.backup.glob("best-epoch-*.keras"):
            if pending.name == f"best-epoch-{self.best_epoch or 0:04d}.keras":
                os.replace(pending, self.directory / "best.keras")  # the commit got that far
            else:
                pending.unlink()
        if not self.weights:
            return 0
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        self.model.load_weights(str(self.backup / self.weights))
        self._write_log()
        self.session_start = time.perf_counter()
        return self.epoch

    def epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Back up epoch ``epoch`` (0-based, as Keras counts) and keep its scores."""
        logs = {key: float(value) for key, value in (logs or {}).items()
                if np.ndim(value) == 0}
        self.rows.append({"epoch": epoch, **logs})
        self.epoch = epoch + 1
        self.backup.mkdir(parents=True, exist_ok=True)
        weights = f"epoch-{self.epoch:04d}.weights.h5"
        save_atomic(self.backup / weights, self.model.save_weights)
        value = logs.get(self.monitor)
        improved = value is not None and (self.best is None or value > self.best)
        if improved:
            pending = save_atomic(self.backup / f"best-epoch-{self.epoch:04d}.keras", self.model.save)
            self.best, self.best_epoch = value, self.epoch
        previous, self.weights = self.weights, weights
        self._commit()
        if improved:
            os.replace(pending, self.directory / "best.keras")
        self._write_log()
        if previous and previous != weights:
            (self.backup / previous).unlink(missing_ok=True)

    def finish(self) -> None:
        """Training ended normally (all epochs, or stopped early): marked in the state."""
        self.finished = True
        if self.weights:
            self._commit()

    def _commit(self) -> None:
        write_json(self.backup / "state.json", {
            "epoch": self.epoch, "weights": self.weights, "rows": self.rows, "monitor": self.monitor,
            "best_epoch": self.best_epoch, "best_value": self.best, "seconds": self.seconds,
            "finished": self.finished})

    def _write_log(self) -> None:
        history = self.history
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(history)
        writer.writerows(zip(*history.values()))
        write_text(self.directory / "log.csv", text.getvalue())

    def callback(self, epochs: int | None = None):
        """The Keras callback that calls ``epoch_end`` and, at a normal end, ``finish``.

        It refuses a ``fit`` that would not continue this run: one for another number of
        ``epochs`` than the run records, or one that does not start after the epochs done
        (``initial_epoch`` forgotten on a resumed run)."""
        import keras

        state = self

        class Checkpoint(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                fit_epochs = (self.params or {}).get("epochs")
                if epochs is not None and fit_epochs is not None and fit_epochs != epochs:
                    raise EmolibError(f"{state.directory.name}: fit(epochs={fit_epochs}) but the run "
                                      f"records epochs={epochs}; give fit the run's epochs")
                state.session_start, state.session_end = time.perf_counter(), None  # not before fit

            def on_epoch_begin(self, epoch, logs=None):
                if epoch != state.epoch:
                    raise EmolibError(f"{state.directory.name}: fit starts at epoch {epoch + 1}, but "
                                      f"the run has done {state.epoch}; pass "
                                      f"initial_epoch=run.initial_epoch ({state.epoch}) to fit")

            def on_epoch_end(self, epoch, logs=None):
                state.epoch_end(epoch, logs)

            def on_train_end(self, logs=None):
                state.session_end = time.perf_counter()
                state.finish()

        return Checkpoint()
