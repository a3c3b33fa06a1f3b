"""Save (and ship) a weight average that spans two runs: a constant-rate run and its continuation.

Notebook 02 averages the snapshots of one run. Session 17 continued the shipped model's last
stage (``cpu-emonet-s14swa``, 20 averaged constant-rate epochs) for 16 more epochs as a second
run trained from the first one's last epoch (``cpu-emonet-s17swa``); the candidate was the mean
of all 36 snapshots, chosen on PublicTest with ``benchmarks/swa_length.py --after``. This script
makes that mean again (batch norm measured again on all Training faces, as notebook 02 does),
saves it as a finished run folder (``model.keras``, ``history.json`` with both runs' epochs in
order, ``metrics.json`` from ``evaluation.evaluate_model``) and, with ``--ship``, makes it the
default through ``shipping.ship`` (500 random Training faces calibrate the int8 copy).

``evaluate_model`` scores PrivateTest too: run this only after the PublicTest decision.

    .venv/bin/python benchmarks/ship_chained_average.py outputs/runs/cpu-emonet-s17swa \\
        --after outputs/runs/cpu-emonet-s14swa --name cpu-emonet-s17chain --ship
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def finished(folder: Path) -> dict:
    """``metrics.json`` and ``history.json`` of a finished run folder, or SystemExit naming it."""
    found = {}
    for name in ("metrics.json", "history.json"):
        path = folder / name
        if not path.is_file():
            raise SystemExit(f"error: {path}: not found; name a finished run folder (one notebook 02 saved)")
        found[name] = json.loads(path.read_text())
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="the run that continued --after (its snapshots/ come second)")
    parser.add_argument("--after", required=True, metavar="RUN", help="the earlier run it continued")
    parser.add_argument("--name", required=True, help="the run folder to write, outputs/runs/NAME")
    parser.add_argument("--notes", default="", help="written into metrics.json")
    parser.add_argument("--ship", action="store_true", help="make it the default model")
    args = parser.parse_args(argv)

    from emolib import averaging, datasets, evaluation, models, runs, shipping

    earlier, later = Path(args.after), Path(args.run)
    records = {folder: finished(folder) for folder in (earlier, later)}
    found = {folder: averaging.snapshots(folder) for folder in (earlier, later)}
    if not all(found.values()):
        raise SystemExit("error: both runs need snapshots/epoch-*.npz (trained with average_epochs > 0)")
    files = found[earlier] + found[later]
    data = datasets.load(os.environ.get("EMOLIB_DATA") or None)
    x_train, _ = data.split("train")
    val, test = data.split("val"), data.split("test")
    mean = averaging.average(models.load_model(later / "model.keras"), files, x_train)
    phases = [runs.Run(folder.name, folder, None, records[folder]["history.json"],
                       records[folder]["metrics.json"]["parameters"],
                       records[folder]["metrics.json"]["wall_time_s"]) for folder in (earlier, later)]
    metrics = evaluation.evaluate_model(mean, val, test)
    best_single = max(max(phase.history["val_accuracy"]) for phase in phases)
    # the epochs counted through both runs, as history.json holds them
    done = len(phases[0].history["val_accuracy"])
    record = {"epochs": [averaging.epoch_of(file) for file in found[earlier]]
              + [done + averaging.epoch_of(file) for file in found[later]],
              "runs": {folder.name: len(found[folder]) for folder in (earlier, later)},
              "val_accuracy": metrics["val"]["accuracy"], "best_epoch_val_accuracy": best_single,
              "kept": metrics["val"]["accuracy"] > best_single}
    directory = runs.runs_dir() / args.name
    directory.mkdir(parents=True, exist_ok=True)
    run = replace(runs.join_phases(*phases), name=args.name, directory=directory, model=mean,
                  extra={"weight_average": record, "continues": earlier.name})
    print("saved", runs.save_run(run, metrics, profile=records[later]["metrics.json"]["profile"],
                                 notes=args.notes))
    print(f"PublicTest {100 * metrics['val']['accuracy']:.2f}% (mean of {len(files)} snapshots)")
    if args.ship:
        import numpy as np

        rng = np.random.default_rng(0)
        calibration = x_train[rng.choice(len(x_train), size=min(500, len(x_train)), replace=False)]
        shipped = shipping.ship(directory, calibration_images=calibration, val=val, test=test)
        print("shipped", models.DEFAULT_MODEL, f"(int8 PrivateTest {shipped['int8_tflite']['test']['accuracy']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
