"""Models: builders for the seed baseline, the stronger CNN and MobileNetV2, plus loading.

Every model here follows one contract: it takes raw 48x48x1 grayscale pixels (0-255, float or
uint8) and returns 7 probabilities in ``CLASS_NAMES`` order. Scaling, resizing and colour
conversion are layers inside the model, so a caller cannot feed it the wrong range.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from emolib import CLASS_NAMES
from emolib.errors import EmolibError

INPUT_SHAPE = (48, 48, 1)
NUM_CLASSES = len(CLASS_NAMES)
#: The shipped default model and its metrics, inside the package.
DEFAULT_MODEL = Path(__file__).resolve().parent / "assets" / "emonet.keras"


def build_seed_cnn():
    """The seed project's CNN, layer for layer: the baseline row of every comparison.

    Conv32-Conv64-Pool-Drop0.25, Conv128-Pool, Conv128-Pool-Drop0.25, Dense1024-Drop0.5-Dense7,
    compiled with Adam 1e-4 (train with batch 64). Its x/255 scaling is a layer here.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=INPUT_SHAPE, name="pixels")
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.Conv2D(64, 3, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Dropout(0.25)(x)
    x = layers.Conv2D(128, 3, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(128, 3, activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(1024, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32")(x)
    model = keras.Model(inputs, outputs, name="seed_cnn")
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def build_emonet(widths: tuple = (32, 64, 128, 256), dropout: float = 0.4,
                 dense_units: int = 256, name: str = "emonet"):
    """The stronger CNN for 48x48 faces: VGG-style blocks of two 3x3 convs with batch norm.

    Standardisation (``x/127.5 - 1``) is inside; each block halves the resolution
    (48 -> 24 -> 12 -> 6 -> 3); global average pooling keeps the head small. Not compiled:
    ``training.compile_for_training`` sets the optimizer, schedule and loss.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=INPUT_SHAPE, name="pixels")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    for block, width in enumerate(widths):
        for _ in range(2):
            x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D(2, name=f"pool{block + 1}")(x)
        if block >= 1:
            x = layers.Dropout(0.1 * block)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(dense_units, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def load_model(path: str | os.PathLike | None = None):
    """Load a saved ``.keras`` model (safe mode); the shipped default when ``path`` is None."""
    import keras

    path = Path(path) if path is not None else DEFAULT_MODEL
    if not path.exists():
        hint = ("train one with notebook 02 (python -m emolib run --only 02)"
                if path == DEFAULT_MODEL else "check the path")
        raise EmolibError(f"{path}: model file not found; {hint}")
    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as error:
        raise EmolibError(f"{path}: cannot be loaded as a Keras model ({type(error).__name__}: "
                          f"{str(error).splitlines()[0][:200]}); pass a .keras file saved by "
                          "emolib") from None


def default_metrics() -> dict:
    """The metrics JSON saved beside the shipped default model."""
    return json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
