"""The emotion classifier of the real-time pipeline: which model file to use, and a batched call
of it (its int8 TFLite copy when one sits beside it, else one traced Keras forward pass).

    >>> from emolib import classifier
    >>> path, note = classifier.resolve_model_path("")    # the shipped default, and why
    >>> classify = classifier.EmotionClassifier(path)
    >>> probabilities = classify(crops)                   # (n, 7) for (n, 48, 48, 1) crops
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from emolib import CLASS_NAMES
from emolib.errors import EmolibError
from emolib.export import int8_companion
from emolib.paths import outputs_dir

BACKENDS = ("auto", "keras", "tflite")


def find_models() -> list[Path]:
    """Models a demo can use: the shipped default (when present), then trained runs, newest first."""
    from emolib.models import DEFAULT_MODEL

    runs = outputs_dir("runs", create=False)
    trained = sorted(runs.glob("*/model.keras"), key=lambda p: p.stat().st_mtime, reverse=True) \
        if runs.is_dir() else []
    return ([DEFAULT_MODEL] if DEFAULT_MODEL.exists() else []) + trained


def resolve_model_path(model_path: str | os.PathLike = "") -> tuple[Path, str]:
    """The model file to use and a sentence saying which one and why.

    ``""`` means the shipped default (``emolib/assets/emonet.keras``); when it is missing, the
    newest ``outputs/runs/*/model.keras``; when there is none either, a clear EmolibError.
    """
    from emolib.models import DEFAULT_MODEL

    if model_path:
        path = Path(model_path).expanduser()
        if not path.exists():
            raise EmolibError(f"{path}: model file not found; pass a .keras file saved by emolib, "
                              "or leave the model empty for the default")
        return path, f"model: {path}"
    if DEFAULT_MODEL.exists():
        return DEFAULT_MODEL, f"model: the shipped default ({DEFAULT_MODEL.name})"
    trained = [p for p in find_models() if p != DEFAULT_MODEL]
    if trained:
        return trained[0], (f"model: {trained[0]} (the newest trained run; the shipped default "
                            f"{DEFAULT_MODEL} is not there)")
    raise EmolibError(f"no model: {DEFAULT_MODEL} is missing and {outputs_dir('runs', create=False)} "
                      "has no */model.keras; train one with notebook 02 "
                      "(python -m emolib run --only 02) or pass a model path")


class EmotionClassifier:
    """Classifies a batch of 48x48 grayscale crops in one call.

    ``model`` is a Keras model, a path to a ``.keras`` or ``.tflite`` file, or ``""``/None for
    the default (see ``resolve_model_path``). A model that does not take 48x48x1 pixels and
    return 7 probabilities is refused with the one-line error ``evaluate`` gives. ``backend``:

    - ``"auto"`` (default): a ``.keras`` file with an int8 TFLite copy beside it
      (``emonet-int8.tflite`` ships next to the default model) runs that copy, which is about 6x
      faster on a CPU for one to three faces; otherwise the Keras model;
    - ``"keras"``: always the Keras model, through one traced forward pass (``model.predict`` is
      avoided on purpose: its per-call overhead is larger than the network on a few faces);
    - ``"tflite"``: the int8 copy, or an error when there is none.
    """

    def __init__(self, model=None, *, backend: str = "auto"):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: no banner
        from emolib import models

        if backend not in BACKENDS:
            raise EmolibError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
        self.note = "model: in memory"
        self.backend = "keras"
        path = None
        if model is None or isinstance(model, (str, os.PathLike)):
            path, self.note = resolve_model_path(model or "")
            lite = path if path.suffix == ".tflite" else int8_companion(path)
            if backend == "tflite" and not lite.exists():
                raise EmolibError(f"{lite}: no int8 TFLite copy of {path.name}; write one with "
                                  "emolib.export.to_tflite(..., quantization='int8') or use "
                                  "backend='keras'")
            if path == lite or (backend != "keras" and lite.exists()):
                from emolib.export import TFLiteModel

                model = TFLiteModel(lite, num_threads=min(2, os.cpu_count() or 1))
                self.backend = "tflite"
                self.note += f" (int8 TFLite: {lite.name})" if path != lite else ""
                path = lite
            else:
                model = models.load_model(path)
        elif backend == "tflite":
            raise EmolibError("backend='tflite' needs a model path with an int8 copy beside it, "
                              "not a model in memory")
        name = getattr(model, "name", "model")
        models.check_contract(name, path or f"{name} (in memory)", model)
        self._forward = models.compiled_forward(model) if self.backend == "keras" else model.forward
        self.model = model
        self(np.zeros((1, *models.INPUT_SHAPE), np.uint8))  # trace now, not on the first face

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """Probabilities ``(n, 7)`` float32 in CLASS_NAMES order for ``(n, 48, 48, 1)`` crops."""
        if len(crops) == 0:
            return np.zeros((0, len(CLASS_NAMES)), np.float32)
        output = self._forward(np.asarray(crops, np.float32))
        return np.asarray(output, np.float32)
