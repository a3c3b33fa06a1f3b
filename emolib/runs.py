"""Run folders: what a training run writes to ``outputs/runs/<name>/``, when it may resume, and
reading the finished ones back (``find_runs``).

While it trains: ``run.json`` (its parameters and fingerprints of its data and model, written
first), ``backup/`` (weights and optimizer state of the last finished epoch and ``state.json``,
which names them and holds the history), ``best.keras`` (the best epoch on PublicTest),
``log.csv`` (one row per epoch) and ``progress.json`` (see ``emolib.progress``). ``save_run``
adds ``model.keras``, ``history.json`` and ``metrics.json`` and removes ``backup/``.

Every file is written atomically (``emolib.checkpoints``). A fresh run first removes everything
an earlier run left, so a folder never mixes two runs; an interrupted run resumes only with the
same parameters, data and model.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emolib import __version__
from emolib.checkpoints import read_json, read_state, save_atomic, write_json
from emolib.errors import EmolibError
from emolib.paths import outputs_dir

#: What a run writes into its folder (a fresh run removes them first; sub-runs' folders stay).
RUN_FILES = ("run.json", "progress.json", "log.csv", "best.keras", "model.keras", "history.json",
             "metrics.json")
RUN_FOLDERS = ("backup", "tensorboard", "snapshots")
#: Set by ``python -m emolib run --fresh``: interrupted runs start over instead of resuming.
FRESH_VARIABLE = "EMOLIB_FRESH"


def fingerprint(*arrays) -> str:
    """A short digest of arrays' dtypes, shapes and bytes (the same data gives the same one)."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.reshape(-1).view(np.uint8))
    return digest.hexdigest()[:16]


def model_signature(model) -> dict:
    """Name, weight counts and a digest of the weight shapes: another architecture differs."""
    shapes = repr([tuple(weight.shape) for weight in model.weights])
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    return {"name": model.name, "weights": int(model.count_params()), "trainable": trainable,
            "shapes": hashlib.sha256(shapes.encode()).hexdigest()[:16]}


def data_signature(images, labels, soft_labels=None) -> dict:
    """How many images and a fingerprint of them, their labels and any soft labels."""
    arrays = (images, labels) if soft_labels is None else (images, labels, soft_labels)
    return {"images": len(images), "fingerprint": fingerprint(*arrays)}


def differences(previous: dict, record: dict) -> list[str]:
    """What changed between two ``run.json`` records, for people (``learning_rate 0.002 -> 0.001``)."""
    changes = []
    old_parameters, new_parameters = previous.get("parameters", {}), record.get("parameters", {})
    for key in sorted(set(old_parameters) | set(new_parameters)):
        if old_parameters.get(key) != new_parameters.get(key):
            changes.append(f"{key} {old_parameters.get(key)} -> {new_parameters.get(key)}")
    for split, old in (previous.get("data") or {}).items():
        new = (record.get("data") or {}).get(split, {})
        if old != new:
            count = (f"{old.get('images')} -> {new.get('images')} images"
                     if old.get("images") != new.get("images") else "other images")
            changes.append(f"{split} data ({count})")
    for key in ("model", "teacher"):
        if previous.get(key) != record.get(key):
            changes.append(f"the {key} ({(previous.get(key) or {}).get('name')} -> "
                           f"{(record.get(key) or {}).get('name')}, other weights)")
    return changes


def start(directory: str | os.PathLike, record: dict, *, fresh: bool | None = None) -> dict | None:
    """Get a run folder ready for the run ``record`` describes; the state to resume, or None.

    An interrupted run (a backup in ``directory``) with the same record resumes; one with another
    record is refused with a line that says what changed and how to start over. ``fresh`` (or
    ``EMOLIB_FRESH=1``) discards it instead. Starting fresh removes every file an earlier run left.
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
        changes = differences(previous, record)
        if changes:
            raise EmolibError(
                f"{directory} holds an interrupted run (epoch {state['epoch']} of "
                f"{previous.get('parameters', {}).get('epochs', '?')}) with other settings: "
                f"{'; '.join(changes[:4])}{' ...' if len(changes) > 4 else ''}; re-run with its "
                f"settings to resume it, or start over with `python -m emolib run ... --fresh` "
                f"(or delete {directory})")
        return state
    if state is not None:
        print(f"note: {directory.name}: starting over; the interrupted run's {state['epoch']} "
              "epochs are discarded (--fresh)")
    clear(directory)
    write_json(directory / "run.json", {**record, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return None


def clear(directory: Path) -> None:
    """Remove what a run writes (``RUN_FILES``, ``RUN_FOLDERS``); other files and sub-runs stay."""
    for name in RUN_FILES:
        (directory / name).unlink(missing_ok=True)
    for name in RUN_FOLDERS:
        shutil.rmtree(directory / name, ignore_errors=True)


@dataclass
class Run:
    """What ``training.train`` returns: the best model (on val), its history and where it lives."""

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


def hardware() -> dict:
    """The machine a run used: CPU count, platform, GPUs."""
    import tensorflow as tf

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "gpus": [d.name for d in tf.config.list_physical_devices("GPU")]}


def versions() -> dict:
    """Library versions worth recording next to a result."""
    import keras
    import tensorflow as tf

    return {"emolib": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def export_model(model, path: str | os.PathLike) -> Path:
    """Save an inference copy of ``model`` (weights only, no optimizer state), atomically."""
    import keras

    clean = keras.models.clone_model(model)
    clean.set_weights(model.get_weights())
    return save_atomic(path, clean.save)


def save_run(run: Run, metrics: dict, *, profile: str, notes: str = "") -> Path:
    """Write ``model.keras``, ``history.json`` and ``metrics.json`` into the run's folder."""
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
        "hardware": hardware(), "versions": versions(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "notes": notes, **run.extra, **metrics,
    }
    write_json(run.directory / "metrics.json", record)
    shutil.rmtree(run.directory / "backup", ignore_errors=True)
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


def find_runs(profile: str = "") -> list[SavedRun]:
    """Finished runs in ``outputs/runs/``, sorted by name; only ``<profile>-*`` when given.

    A run is finished when ``save_run`` wrote ``model.keras`` and ``metrics.json``; folders of
    runs still training (or crashed) are left out: see ``unfinished_runs``.
    """
    found = []
    for directory in sorted(runs_dir().glob(f"{profile}-*" if profile else "*")):
        metrics_file, model_file = directory / "metrics.json", directory / "model.keras"
        if not (metrics_file.is_file() and model_file.is_file()):
            continue
        try:
            metrics = json.loads(metrics_file.read_text())
        except (OSError, ValueError):
            continue  # being written right now, or damaged: treated as unfinished
        history_file = directory / "history.json"
        try:
            history = json.loads(history_file.read_text()) if history_file.is_file() else {}
        except (OSError, ValueError):
            history = {}
        found.append(SavedRun(directory.name, directory, metrics, history))
    return found


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
