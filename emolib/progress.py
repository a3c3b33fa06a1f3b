"""Training progress for people: ``progress.json`` in each run folder, and the runner's console.

``TrainingProgress`` (a Keras callback among an open run's, ``runs.OpenRun.callbacks``) rewrites
``outputs/runs/<run>/progress.json`` atomically every few seconds: epoch k of n, elapsed time,
time left, last and best PublicTest accuracy, where a resumed run resumed. While papermill
executes a notebook, ``NotebookProgress`` polls those files from a thread and shows one line per
training run: rewritten in place on a terminal, one appended line per epoch otherwise (CI logs,
``nohup``). At the end it prints the notebook's wall time and each run's best accuracy and folder.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from pathlib import Path

#: Set by the runner for the kernels it starts, so it shows its own runs only.
SESSION_VARIABLE = "EMOLIB_RUN_SESSION"
PROGRESS_FILE = "progress.json"


def format_duration(seconds: float | None) -> str:
    """``75`` -> ``1:15``, ``3725`` -> ``1:02:05``; ``?`` when unknown."""
    if seconds is None:
        return "?"
    seconds = int(round(max(seconds, 0)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def display_path(path: str | os.PathLike) -> str:
    """``path`` relative to the current folder when it lies below it (shorter lines)."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


class TrainingProgress:
    """Writes a run's ``progress.json``: what the runner shows while ``fit`` runs."""

    every_s = 2.0  # at most one write per this many seconds within an epoch

    def __init__(self, directory: str | os.PathLike, run_name: str, epochs: int,
                 steps: int | None, run_state):
        self.path = Path(directory) / PROGRESS_FILE
        self.run_name, self.epochs, self.steps, self.run_state = run_name, epochs, steps, run_state
        self.resumed_from = run_state.epoch
        self.session = os.environ.get(SESSION_VARIABLE, "")
        self.durations: list[float] = []
        self.epoch_log: list[dict] = []
        self.step, self.state = 0, "training"
        self.start = self.epoch_start = self.last_write = time.perf_counter()

    def train_begin(self, logs=None):
        self.start = self.epoch_start = time.perf_counter()
        self.write(force=True)

    def epoch_begin(self, epoch, logs=None):
        self.epoch_start, self.step = time.perf_counter(), 0

    def batch_end(self, batch, logs=None):
        self.step = batch + 1
        self.write()

    def epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.durations.append(now - self.epoch_start)
        self.step = 0
        record = self.record(now)
        self.epoch_log.append({"epoch": record["epochs_done"], **{key: record[key] for key in
                               ("elapsed_s", "eta_s", "val_accuracy", "best_val_accuracy")}})
        self.epoch_log = self.epoch_log[-500:]
        self.write(force=True)

    def train_end(self, logs=None):
        self.state = "finished"
        self.write(force=True)

    def record(self, now: float | None = None) -> dict:
        """The progress as it is now (what ``progress.json`` holds)."""
        now = time.perf_counter() if now is None else now
        done = self.run_state.epoch
        fraction = self.step / self.steps if self.steps and self.step else 0.0
        if self.durations:
            per_epoch = sum(self.durations) / len(self.durations)
        elif fraction:
            per_epoch = (now - self.epoch_start) / fraction
        else:
            per_epoch = None
        left = max(self.epochs - done - fraction, 0.0)
        history = self.run_state.history
        scores = history.get("val_accuracy", [])
        return {
            "run": self.run_name, "directory": str(self.path.parent), "session": self.session,
            "state": self.state, "epoch": min(done + (0 if self.state == "finished" else 1), self.epochs),
            "epochs": self.epochs, "epochs_done": done, "step": self.step, "steps": self.steps,
            "elapsed_s": round(now - self.start, 1),
            "eta_s": 0.0 if self.state == "finished" else (
                round(left * per_epoch, 1) if per_epoch is not None else None),
            "val_accuracy": scores[-1] if scores else None,
            "best_val_accuracy": self.run_state.best, "best_epoch": self.run_state.best_epoch,
            "resumed_from": self.resumed_from, "epoch_log": self.epoch_log, "updated": time.time(),
        }

    def write(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last_write < self.every_s:
            return
        self.last_write = now
        from emolib.checkpoints import write_json

        try:
            write_json(self.path, self.record(now))
        except OSError:
            pass  # progress is for people watching; never stop a training run for it

    def callback(self):
        """The Keras callback. Batch hooks are dispatched asynchronously (no slower training);
        the steps per epoch, when not given, are read from ``fit``'s parameters at its start."""
        import keras

        progress = self

        class Progress(keras.callbacks.Callback):
            async_safe = True

            def on_train_begin(self, logs=None):
                progress.steps = progress.steps or (self.params or {}).get("steps") or 0
                progress.train_begin(logs)

            def on_epoch_begin(self, epoch, logs=None):
                progress.epoch_begin(epoch, logs)

            def on_train_batch_end(self, batch, logs=None):
                progress.batch_end(batch, logs)

            def on_epoch_end(self, epoch, logs=None):
                progress.epoch_end(epoch, logs)

            def on_train_end(self, logs=None):
                progress.train_end(logs)

        return Progress()


def read_progress(runs_dir: Path, session: str, since: float) -> list[dict]:
    """The progress records of ``session``'s runs written since ``since`` (oldest first)."""
    from emolib.checkpoints import read_json

    found = []
    for pattern in (f"*/{PROGRESS_FILE}", f"*/*/{PROGRESS_FILE}"):  # sub-runs: 03's head phase
        for path in runs_dir.glob(pattern):
            try:
                if path.stat().st_mtime < since:
                    continue
            except OSError:
                continue
            record = read_json(path)
            if record and record.get("session") == session:
                found.append(record)
    return sorted(found, key=lambda record: record.get("updated", 0))


def run_label(record: dict, runs_dir: Path) -> str:
    """``cpu-emonet`` or ``cpu-mobilenet_v2/head``: the run folder under ``outputs/runs``."""
    try:
        return Path(record["directory"]).relative_to(runs_dir).as_posix()
    except ValueError:
        return record.get("run", "?")


def epoch_line(record: dict, label: str, entry: dict | None = None, bar: bool = False) -> str:
    """``cpu-emonet  epoch 3/40  7:12 elapsed, ~1:20:00 left  PublicTest 58.1% (best 58.1%)``."""
    entry = entry or record
    epoch, epochs = entry["epoch"], record["epochs"]
    progress = f"epoch {epoch}/{epochs}"
    if bar:
        done = record["epochs_done"] + (record["step"] / record["steps"] if record["steps"] else 0)
        filled = int(20 * done / max(epochs, 1))
        progress += f" [{'#' * filled}{'.' * (20 - filled)}]"
    if record.get("resumed_from"):
        progress += f" (resumed after {record['resumed_from']})"
    left = "" if entry.get("eta_s") is None else f", ~{format_duration(entry['eta_s'])} left"
    return (f"  {label}  {progress}  {format_duration(entry['elapsed_s'])} elapsed{left}  "
            f"PublicTest {_percent(entry.get('val_accuracy'))} "
            f"(best {_percent(entry.get('best_val_accuracy'))})")


class NotebookProgress:
    """Shows the progress of one notebook's training runs while papermill executes it."""

    def __init__(self, runs_dir: Path, session: str, stream=None, live: bool | None = None,
                 poll_s: float = 1.0):
        self.runs_dir, self.session, self.poll_s = runs_dir, session, poll_s
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.since = time.time() - 1
        self.cells = (0, 0)
        self.started = time.perf_counter()
        self.records: dict[str, dict] = {}
        self.printed: dict[str, int] = {}  # epochs printed per run (appended lines)
        self.finished: set[str] = set()  # runs whose final line is out (live mode)
        self.status, self.status_width = "", 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join()
        self.poll()
        self._status("")

    def cell(self, index: int, count: int) -> None:
        """Papermill started cell ``index`` (0-based) of ``count``."""
        self.cells = (index + 1, count)

    def _loop(self):
        while not self.stopping.wait(self.poll_s):
            self.poll()

    def poll(self) -> None:
        """Read the progress files and show what is new."""
        with self.lock:
            for record in read_progress(self.runs_dir, self.session, self.since):
                label = run_label(record, self.runs_dir)
                self.records[label] = record
                if self.live:
                    if record["state"] == "finished" and label not in self.finished:
                        self.finished.add(label)
                        self._line(epoch_line(record, label))
                    continue
                if record.get("resumed_from") and label not in self.printed:
                    self._line(f"  {label}  resumed after epoch {record['resumed_from']} "
                               f"of {record['epochs']}")
                log = record.get("epoch_log", [])
                for entry in log[self.printed.get(label, 0):]:
                    self._line(epoch_line(record, label, entry))
                self.printed[label] = len(log)
            if self.live:
                active = [(label, record) for label, record in self.records.items()
                          if record["state"] == "training"]
                if active:
                    label, record = active[-1]
                    lag = max(time.time() - record.get("updated", time.time()), 0.0)
                    ticking = {**record, "elapsed_s": record["elapsed_s"] + lag}  # between writes
                    if record.get("eta_s") is not None:
                        ticking["eta_s"] = max(record["eta_s"] - lag, 0.0)
                    self._status(epoch_line(ticking, label, bar=True))
                else:
                    cell, count = self.cells
                    self._status(f"  cell {cell}/{count}, "
                                 f"{format_duration(time.perf_counter() - self.started)}"
                                 if count else "")

    def summary(self) -> list[str]:
        """One line per run this notebook trained: best PublicTest accuracy and the folder."""
        lines = []
        for label, record in self.records.items():
            if not Path(record["directory"]).is_dir():
                continue  # a run the notebook removed (03's experiment arms)
            best = record.get("best_val_accuracy")
            lines.append(f"  {label}: best PublicTest {_percent(best)} (epoch "
                         f"{record.get('best_epoch')} of {record['epochs']}) -> "
                         f"{display_path(record['directory'])}")
        return lines

    def _line(self, text: str) -> None:
        self._status("")
        print(text, file=self.stream, flush=True)

    def _status(self, text: str) -> None:
        if not self.live:
            return
        text = text[:shutil.get_terminal_size((100, 20)).columns - 1]
        if text == self.status:
            return
        self.status = text
        self.stream.write("\r" + text.ljust(self.status_width) + ("" if text else "\r"))
        self.stream.flush()
        self.status_width = len(text)
