"""What a run records about itself besides its scores: fingerprints of its data, model and compile
settings (``run.json``, so a re-run resumes only the same run), what changed between two such
records, and the machine and library versions (``metrics.json``).
"""

from __future__ import annotations

import hashlib
import os
import platform

import numpy as np

from emolib import __version__


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


def compile_signature(model) -> dict:
    """The optimizer (its learning-rate schedule included) and loss ``model`` was compiled with,
    as Keras serialises them, less the names Keras numbers per process (``adam_w_1``)."""
    import keras

    def unnamed(value):
        if isinstance(value, dict):
            return {key: unnamed(item) for key, item in value.items() if key != "name"}
        return [unnamed(item) for item in value] if isinstance(value, (list, tuple)) else value

    return unnamed({"optimizer": keras.saving.serialize_keras_object(model.optimizer),
                    "loss": keras.saving.serialize_keras_object(model.loss)})


def _flatten(value, prefix: str = "") -> dict:
    if not isinstance(value, dict):
        return {prefix: value}
    flat = {}
    for key, item in value.items():
        flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat


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
    if previous.get("compiled") and record.get("compiled"):  # runs started before it was recorded
        old, new = _flatten(previous["compiled"]), _flatten(record["compiled"])
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                changes.append(f"compile {key.replace('.config', '')} {old.get(key)} -> {new.get(key)}")
    return changes


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
