"""Model cache: predictions and TFLite conversions kept in ``outputs/comparison/`` and reused
while the model file (by content) and the images are unchanged.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from emolib.paths import outputs_dir


def file_digest(path: str | os.PathLike) -> str:
    """A short digest of a file's bytes: the shipped default and the run it was copied from match."""
    digest = hashlib.blake2b(digest_size=12)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _model_key(model, path: Path | None) -> str:
    if path is not None and Path(path).exists():
        return f"{type(model).__name__}|{file_digest(path)}"
    return f"{type(model).__name__}|{getattr(model, 'name', '')}|{id(model)}"


def cached_proba(model, images: np.ndarray, *, tta: str | None = None, path=None,
                 cache: bool = True) -> np.ndarray:
    """``evaluation.predict_proba``, memoised in ``outputs/comparison/cache`` by model file and images.

    Keyed by the file's content, so a re-run only predicts with models whose file changed and
    the shipped default costs nothing when it is a copy of a run; models without a file are not
    cached.
    """
    from emolib.evaluation import predict_proba

    if not cache or path is None:
        return predict_proba(model, images, tta=tta)
    digest = hashlib.blake2b(digest_size=12)
    digest.update(_model_key(model, path).encode())
    digest.update(f"|{tta}|{images.shape}|".encode())
    digest.update(np.ascontiguousarray(images).tobytes())
    cache_file = outputs_dir("comparison", "cache") / f"{digest.hexdigest()}.npy"
    if cache_file.exists():
        try:
            return np.load(cache_file)
        except (OSError, ValueError):
            cache_file.unlink(missing_ok=True)
    probabilities = predict_proba(model, images, tta=tta)
    tmp = cache_file.with_name(cache_file.stem + ".tmp.npy")
    np.save(tmp, probabilities)
    os.replace(tmp, cache_file)
    return probabilities


def cached_tflite(model, model_path, quantization: str, *,
                  representative_images: np.ndarray | None = None) -> Path:
    """``export.to_tflite`` into ``outputs/comparison/tflite/``, reused while the source file and
    the calibration images are unchanged; named ``<model file>-<quantization>.tflite``."""
    from emolib import export

    digest = hashlib.blake2b(digest_size=8)
    digest.update(f"{file_digest(model_path)}|{quantization}".encode())
    if quantization == "int8" and representative_images is not None:
        digest.update(np.ascontiguousarray(representative_images).tobytes())
    directory = outputs_dir("comparison", "tflite")
    target = directory / f"{Path(model_path).parent.name}-{Path(model_path).stem}-{quantization}.tflite"
    key_file = target.with_suffix(".key")
    if target.exists() and key_file.exists() and key_file.read_text() == digest.hexdigest():
        return target
    export.to_tflite(model, target, quantization=quantization,
                     representative_images=representative_images)
    key_file.write_text(digest.hexdigest())
    return target
