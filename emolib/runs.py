"""Run folders: what a training run writes to ``outputs/runs/<name>/``, when it may resume, and
reading the finished ones back (``find_runs``).

``open_run`` gets a folder ready for ``model.fit`` and gives its callbacks: ``run.json`` (its
parameters and fingerprints of its data, model and compile settings, written first),
``backup/`` (weights and optimizer state of the last finished epoch and ``state.json``, which
names them and holds the history), ``best.keras`` (the best epoch on PublicTest), ``log.csv``
(one row per epoch), ``progress.json`` (see ``emolib.progress``) and ``tensorboard/``. Saving
is a separate call: ``save_run`` adds ``model.keras``, ``history.json`` and ``metrics.json``
and removes ``backup/``; ``find_runs`` reads them back.

Every file is written atomically (``emolib.checkpoints``). A fresh run first removes everything
an earlier run left, so a folder never mixes two runs; an interrupted run resumes only with the
same parameters, data and model.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from emolib import records
from emolib.checkpoints import RunState, read_json, read_state, save_atomic, write_json
from emolib.errors import EmolibError
from emolib.paths import outputs_dir

#: What a run writes into its folder (a fresh run removes them first; sub-runs' folders stay).
RUN_FILES = ("run.json", "progress.json", "log.csv", "best.keras", "model.keras", "history.json",
             "metrics.json")
RUN_FOLDERS = ("backup", "tensorboard", "snapshots")
#: Set by ``python -m emolib run --fresh``: interrupted runs start over instead of resuming.
FRESH_VARIABLE = "EMOLIB_FRESH"


def start(directory: str | os.PathLike, record: dict, *, fresh: bool | None = None) -> dict | None:
    """Get a run folder ready for the run ``record`` describes; the state to resume, or None.

    An interrupted run (a backup in ``directory``) with the same record resumes; one with another
    record is refused with a line that says what changed and how to start over. ``fresh`` (or
    ``EMOLIB_FRESH=1``) discards it instead, as another record does a finished run not saved
    yet. Starting fresh removes every file an earlier run left.
    """
    directory = Path(directory)
    fresh = os.environ.get(FRESH_VARIABLE) == "1" if fresh is None else fresh
    record = json.loads(json.dumps(record, default=str))  # as it will read back from run.json
    state = read_state(directory)
    if state is not None and not fresh:
        previous = read_json(directory / "run.json")
        if previous is None:  # written by an older emolib, which did not record them
            print(f"note: {directory.name}: resuming after epoch {state['epoch']} without checking "
                  "its parameters (not recorded by the emolib that started it)")
            return state
        changes = records.differences(previous, record)
        if changes and not state.get("finished"):
            raise EmolibError(
                f"{directory} holds an interrupted run (epoch {state['epoch']} of "
                f"{previous.get('parameters', {}).get('epochs', '?')}) with other settings: "
                f"{'; '.join(changes[:4])}{' ...' if len(changes) > 4 else ''}; re-run with its "
                f"settings to resume it, or start over with `python -m emolib run ... --fresh` "
                f"(or delete {directory})")
        if not changes:
            return state
    if state is not None:
        print(f"note: {directory.name}: starting over; the " + (
            f"unsaved finished run's {state['epoch']} epochs had other settings" if not fresh
            else f"earlier run's {state['epoch']} epochs are discarded (--fresh)"))
    clear(directory)
    write_json(directory / "run.json", {**record, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return None


def clear(directory: Path) -> None:
    """Remove what a run writes (``RUN_FILES``, ``RUN_FOLDERS``); other files and sub-runs stay."""
    for name in RUN_FILES:
        (directory / name).unlink(missing_ok=True)
    for name in RUN_FOLDERS:
        shutil.rmtree(directory / name, ignore_errors=True)


def open_run(name: str, model, parameters: dict, *, train_data: tuple, val_data: tuple,
             soft_labels=None, teacher=None, fresh: bool | None = None) -> OpenRun:
    """Get ``outputs/runs/<name>/`` ready to train the compiled ``model`` in it; an ``OpenRun``.

    ``parameters`` (``training.recipe(...)``, ``epochs`` among them) go into ``run.json`` with
    fingerprints of ``train_data`` and ``val_data`` (images, labels), of any ``soft_labels`` or
    ``teacher``, of the model and of its optimizer and loss. An interrupted run with the same
    record resumes: its weights and optimizer state are loaded back into ``model`` and
    ``initial_epoch`` says where ``fit`` goes on. Another record is refused (see ``start``).
    """
    for split, (images, _) in (("train_data", train_data), ("val_data", val_data)):
        if not len(images):  # refused before a run folder exists (tf.data would fail inside fit)
            raise EmolibError(f"{name}: {split} holds no images; load a source with train and val "
                              "splits (Dataset.split refuses an empty one)")
    if getattr(model, "optimizer", None) is None:
        raise EmolibError(f"{name}: compile the model before open_run (a resumed run loads its "
                          "optimizer state into it)")
    record = {"run": name, "parameters": parameters, "model": records.model_signature(model),
              "teacher": records.model_signature(teacher) if teacher is not None else None,
              "data": {"train": records.data_signature(*train_data, soft_labels),
                       "val": records.data_signature(*val_data)},
              "compiled": records.compile_signature(model)}
    directory = outputs_dir("runs", name)
    state = RunState(directory, model, start(directory, record, fresh=fresh))
    with model.distribute_strategy.scope():  # the optimizer's slots live where it trains
        done = state.restore()
    if state.finished:  # trained in an earlier session (then the notebook stopped), not saved
        print(f"{name}: trained already ({done} epochs), not saved yet; fit has nothing to do")
    elif done:
        print(f"{name}: resuming after epoch {done} of {parameters['epochs']}")
    return OpenRun(name, directory, model, dict(parameters), state,
                   parameters["epochs"] if state.finished else done, resumed_from=done)


@dataclass
class Run:
    """A trained run: the best model (on val), its history and where it lives."""

    name: str
    directory: Path
    model: object
    history: dict
    parameters: dict
    wall_time_s: float
    resumed_from_epoch: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def val_accuracy(self) -> float:
        """The kept model's PublicTest accuracy: the best epoch's, or its weight average's."""
        average = self.extra.get("weight_average") or {}
        if average.get("kept"):
            return average["val_accuracy"]
        return max(self.history.get("val_accuracy") or [float("nan")])


@dataclass
class OpenRun:
    """A run folder that ``model.fit`` trains into: where it starts, its callbacks, its result."""

    name: str
    directory: Path
    model: object
    parameters: dict
    state: RunState
    initial_epoch: int  #: where ``fit`` goes on: ``fit(initial_epoch=run.initial_epoch)``
    resumed_from: int = 0  #: epochs done in earlier sessions

    def callbacks(self, *extra, tensorboard: bool = True) -> list:
        """The callbacks for ``fit``: each epoch's backup, the best model on PublicTest and
        ``log.csv`` (first, so that later callbacks find them written), ``progress.json`` for
        the runner's console, then ``extra`` (``keras.callbacks.EarlyStopping``,
        ``averaging.snapshot_callback``, ...) and TensorBoard logs in ``tensorboard/``."""
        import keras

        from emolib.progress import TrainingProgress

        epochs = self.parameters["epochs"]
        found = [self.state.callback(epochs=epochs),
                 TrainingProgress(self.directory, self.name, epochs, None, self.state).callback(),
                 *extra]
        if tensorboard:  # loss, accuracy and learning rate per epoch: `make tensorboard`
            found.append(keras.callbacks.TensorBoard(str(self.directory / "tensorboard"),
                                                     write_graph=False))
        return found

    def result(self) -> Run:
        """The trained run: its best epoch on PublicTest, history and training time (all sessions)."""
        import keras

        best_file = self.directory / "best.keras"
        best = keras.models.load_model(best_file, compile=False) if best_file.exists() else self.model
        return Run(self.name, self.directory, best, self.state.history, self.parameters,
                   self.state.seconds, self.resumed_from)


def join_phases(*phases: Run) -> Run:
    """One run trained in phases (notebook 03: the head, then the whole network): the last
    phase's model, folder and parameters, every phase's epochs in order, their summed time."""
    history, done = {}, 0
    for phase in phases:
        for key, values in phase.history.items():
            history.setdefault(key, []).extend([done + v for v in values] if key == "epoch" else values)
        done += len(phase.history.get("val_accuracy", []))
    return replace(phases[-1], history=history,
                   wall_time_s=sum(phase.wall_time_s for phase in phases))


def export_model(model, path: str | os.PathLike) -> Path:
    """Save an inference copy of ``model`` (weights only, no optimizer state), atomically."""
    import keras

    clean = keras.models.clone_model(model)
    clean.set_weights(model.get_weights())
    return save_atomic(path, clean.save)


def save_run(run: Run, metrics: dict, *, profile: str, notes: str = "") -> Path:
    """Write ``model.keras``, ``history.json`` and ``metrics.json`` into the run's folder; the
    backups of the run and of its phases in sub-folders go (a re-run starts them over)."""
    export_model(run.model, run.directory / "model.keras")
    write_json(run.directory / "history.json", run.history)
    record = {
        "run": run.name, "model": run.model.name, "profile": profile,
        "params": int(run.model.count_params()),
        "protocol": "trained on Training, best epoch selected on PublicTest (val), "
                    "reported on PrivateTest (test)",
        "parameters": run.parameters, "wall_time_s": round(run.wall_time_s, 1),
        "resumed_from_epoch": run.resumed_from_epoch,
        "best_epoch": (int(np.nanargmax(run.history["val_accuracy"])) + 1
                       if run.history.get("val_accuracy") else None),
        "hardware": records.hardware(), "versions": records.versions(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "notes": notes, **run.extra, **metrics,
    }
    write_json(run.directory / "metrics.json", record)
    for backup in (run.directory / "backup", *run.directory.glob("*/backup")):  # phases' too (03)
        shutil.rmtree(backup, ignore_errors=True)
    return run.directory / "metrics.json"


# --------------------------------------------------------------------------- reading finished runs

@dataclass
class SavedRun:
    """A finished run folder: ``model.keras``, ``metrics.json`` and ``history.json``."""

    name: str
    directory: Path
    metrics: dict
    history: dict

    @property
    def model_path(self) -> Path:
        return self.directory / "model.keras"

    @property
    def profile(self) -> str:
        return self.metrics.get("profile") or self.name.split("-", 1)[0]

    @property
    def is_seed_recipe(self) -> bool:
        """The seed project's CNN and recipe: the baseline row."""
        return self.metrics.get("model") == "seed_cnn"


def runs_dir() -> Path:
    """``outputs/runs`` (``EMOLIB_OUTPUTS`` moves it)."""
    return outputs_dir("runs", create=False)


def read_run(directory: str | os.PathLike) -> SavedRun | None:
    """The finished run in ``directory``: ``save_run`` wrote its ``model.keras`` and
    ``metrics.json``. None for a run still training, crashed, or being saved right now."""
    directory = Path(directory)
    metrics = read_json(directory / "metrics.json")
    if metrics is None or not (directory / "model.keras").is_file():
        return None
    return SavedRun(directory.name, directory, metrics, read_json(directory / "history.json") or {})


def find_runs(profile: str = "") -> list[SavedRun]:
    """Finished runs (``read_run``) in ``outputs/runs/``, sorted by name; only ``<profile>-*``
    when given. Folders of runs still training (or crashed): see ``unfinished_runs``."""
    found = (read_run(directory) for directory in
             sorted(runs_dir().glob(f"{profile}-*" if profile else "*")))
    return [run for run in found if run is not None]


def unfinished_runs(profile: str = "") -> list[str]:
    """Run folders without a saved model and metrics (still training, or crashed)."""
    finished = {run.name for run in find_runs(profile)}
    return [d.name for d in sorted(runs_dir().glob(f"{profile}-*" if profile else "*"))
            if d.is_dir() and d.name not in finished]


def run_summary(runs: list[SavedRun]):
    """A DataFrame of what each run is: model, profile, parameters, epochs, training time."""
    import pandas as pd

    rows = {}
    for run in runs:
        parameters = run.metrics.get("parameters", {})
        rows[run.name] = {
            "model": run.metrics.get("model"), "profile": run.profile,
            "recipe": "seed (baseline)" if run.is_seed_recipe else "emolib",
            "parameters": run.metrics.get("params"),
            "epochs": parameters.get("epochs"), "best epoch": run.metrics.get("best_epoch"),
            "train minutes": round(run.metrics.get("wall_time_s", 0) / 60, 1),
            "finished": run.metrics.get("finished", ""),
        }
    return pd.DataFrame.from_dict(rows, orient="index")
