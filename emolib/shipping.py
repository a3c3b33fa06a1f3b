"""Shipping: make a saved run the package's default model.

``ship`` copies the run's ``model.keras`` and metrics into ``emolib/assets/`` (or another
destination), converts the int8 TFLite copy the webcam demo runs (``export``) and scores it on
PublicTest and PrivateTest beside the original (``evaluation``): the step above both.

    >>> from emolib import shipping
    >>> shipping.ship("outputs/runs/cpu-emonet", calibration_images=faces,
    ...               val=(x_val, y_val), test=(x_test, y_test))
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from emolib import evaluation, export, models
from emolib.errors import EmolibError
from emolib.registry import int8_companion


def ship(run_directory: str | os.PathLike, *, calibration_images: np.ndarray,
         val: tuple, test: tuple, destination: str | os.PathLike | None = None) -> dict:
    """Make the run in ``run_directory`` the default model; return the metrics written beside it.

    Writes ``destination`` (default ``models.DEFAULT_MODEL``: the run's ``model.keras``), its
    int8 copy (``int8_companion(destination)``, calibrated on ``calibration_images``: a few
    hundred *training* faces) and ``<destination stem>.json`` (the run's ``metrics.json`` plus
    ``int8_tflite``: the copy's size and its metrics on ``val`` and ``test``, each a pair
    ``(images, labels)``). Nothing is replaced until all three files are complete.
    """
    run_directory = Path(run_directory)
    model_file, metrics_file = run_directory / "model.keras", run_directory / "metrics.json"
    for needed in (model_file, metrics_file):
        if not needed.exists():
            raise EmolibError(f"{needed}: not found; ship a finished run (one that save_run wrote)")
    destination = Path(destination) if destination else models.DEFAULT_MODEL
    destination.parent.mkdir(parents=True, exist_ok=True)
    int8_path = int8_companion(destination)
    targets = [destination, int8_path, destination.with_suffix(".json")]
    staged = [target.with_name(target.name + ".shipping") for target in targets]
    try:
        export.to_tflite(models.load_model(model_file), staged[1], quantization="int8",
                         representative_images=calibration_images)
        int8 = export.TFLiteModel(staged[1], name=int8_path.stem)
        metrics = json.loads(metrics_file.read_text())
        metrics["int8_tflite"] = {"file": int8_path.name, "bytes": int8.size_bytes,
                                  "val": evaluation.evaluate(int8, *val, split="val"),
                                  "test": evaluation.evaluate(int8, *test, split="test")}
        staged[0].write_bytes(model_file.read_bytes())
        staged[2].write_text(json.dumps(metrics, indent=1))
        for source, target in zip(staged, targets):
            os.replace(source, target)
    finally:
        for leftover in staged:
            leftover.unlink(missing_ok=True)
    return metrics
