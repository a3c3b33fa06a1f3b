"""The emotion classifier of the real-time pipeline: which model file to use, and a batched call
of it (its int8 TFLite copy when one sits beside it, else one traced Keras forward pass).

    >>> from emolib import classifier
    >>> classify = classifier.EmotionClassifier("")       # the model registry.resolve("") finds
    >>> classify.note                                     # which model runs, and why
    >>> probabilities = classify(crops)                   # (n, 7) for (n, 48, 48, 1) crops
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from emolib import CLASS_NAMES, registry

BACKENDS = registry.BACKENDS


def resolve_model_path(model_path: str | os.PathLike = "") -> tuple[Path, str]:
    """``(file, note)`` of the model ``model_path`` names: ``registry.resolve``'s rule."""
    found = registry.resolve(model_path)
    return found.path, found.note


class EmotionClassifier:
    """Classifies a batch of 48x48 grayscale crops in one call.

    ``model`` is a Keras model or anything ``registry.resolve`` takes (``""``/None: the default;
    a ``.keras`` or ``.tflite`` file; a run folder or run name). A model that does not take
    48x48x1 pixels and return 7 probabilities is refused with the one-line error ``evaluate``
    gives (``registry.check_contract``). ``backend`` (see ``registry.load``):

    - ``"auto"`` (default): a ``.keras`` file with an int8 TFLite copy beside it
      (``emonet-int8.tflite`` ships next to the default model) runs that copy, which is about 6x
      faster on a CPU for one to three faces; otherwise the Keras model;
    - ``"keras"``: always the Keras model, through one traced forward pass (``model.predict`` is
      avoided on purpose: its per-call overhead is larger than the network on a few faces);
    - ``"tflite"``: the int8 copy, or an error when there is none.
    """

    def __init__(self, model=None, *, backend: str = "auto"):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: no banner
        loaded = registry.load(model, backend=backend, num_threads=min(2, os.cpu_count() or 1))
        self.note = loaded.note
        self.backend = "keras" if isinstance(loaded, registry.KerasModel) else "tflite"
        self.model = registry.unwrap(loaded)
        self._forward = loaded.forward
        self(np.zeros((1, *registry.INPUT_SHAPE), np.uint8))  # trace now, not on the first face

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """Probabilities ``(n, 7)`` float32 in CLASS_NAMES order for ``(n, 48, 48, 1)`` crops."""
        if len(crops) == 0:
            return np.zeros((0, len(CLASS_NAMES)), np.float32)
        output = self._forward(np.asarray(crops, np.float32))
        return np.asarray(output, np.float32)
