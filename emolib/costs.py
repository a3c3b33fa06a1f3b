"""Costs: what running a model takes, as the comparison table reports it: milliseconds per
image of one forward pass (batch 1 is the webcam, a large batch is throughput) and its
parameters and megabytes on disk. Works for Keras models and every ``registry.EmotionModel``
(Keras, TFLite, the ``fer`` peer).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from emolib.preprocessing import INPUT_SHAPE


def _forward(model):
    """A function ``batch -> probabilities``: one traced forward pass, as the webcam runs it.

    Keras: ``models.compiled_forward``, the call the real-time pipeline makes. Other models:
    their ``forward`` when they have one (every ``registry.EmotionModel``),
    else ``predict``.
    """
    import keras

    from emolib.models import compiled_forward

    if isinstance(model, keras.Model):
        return compiled_forward(model)
    if hasattr(model, "forward"):
        return model.forward
    return lambda batch: model.predict(batch, batch_size=len(batch), verbose=0)


def latency_ms(model, *, batch_sizes: tuple = (1, 256), repeats: int = 20) -> dict:
    """Median milliseconds per image of one forward pass at each batch size.

    Batch 1 is the webcam case (one face per frame); a large batch is throughput. Works for Keras
    models and for anything with ``predict`` (TFLite, the ``fer`` peer). The first call of each
    size is a warm-up (graph tracing, tensor allocation) and is not timed. Includes the copy of
    the result back to NumPy, as a caller pays it.
    """
    forward = _forward(model)
    results = {}
    for batch_size in batch_sizes:
        batch = np.random.default_rng(0).integers(0, 256, (batch_size, *INPUT_SHAPE)).astype(np.float32)
        forward(batch)
        times = []
        for _ in range(max(3, repeats if batch_size == 1 else repeats // 4)):
            start = time.perf_counter()
            forward(batch)
            times.append(time.perf_counter() - start)
        results[f"batch_{batch_size}"] = float(np.median(times) / batch_size * 1000)
    return results


def model_size(model, path=None) -> dict:
    """Parameters and on-disk megabytes of a model (the file at ``path`` when given).

    ``model``: a Keras model, or a ``registry.EmotionModel`` (its ``parameters`` and
    ``size_bytes``).
    """
    parameters = getattr(model, "parameters", None)
    if parameters is None and hasattr(model, "count_params"):
        parameters = int(model.count_params())
    if path is not None and Path(path).exists():
        size = Path(path).stat().st_size
    else:
        size = getattr(model, "size_bytes", None)
    return {"parameters": parameters, "size_mb": round(size / 2**20, 3) if size else None}
