"""Models: builders for the seed baseline, the stronger CNN and MobileNetV2, plus loading.

Every model here follows one contract: it takes raw 48x48x1 grayscale pixels (0-255, float or
uint8) and returns 7 probabilities in ``CLASS_NAMES`` order. Scaling, resizing and colour
conversion are layers inside the model, so a caller cannot feed it the wrong range.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

from emolib.errors import EmolibError
from emolib.preprocessing import CLASS_NAMES, INPUT_SHAPE, NUM_CLASSES  # noqa: F401

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


#: EmoNet's stage blocks: two 3x3 convs, with an identity (or 1x1) shortcut, or squeeze-excitation.
BLOCKS = ("plain", "residual", "se")


def build_emonet(widths: tuple = (32, 64, 128, 256), dropout: float = 0.4,
                 dense_units: int = 256, batch_norm: bool = True, name: str = "emonet",
                 block: str = "plain", input_size: int = INPUT_SHAPE[0]):
    """The stronger CNN for 48x48 faces: VGG-style blocks of two 3x3 convs with batch norm.

    Standardisation (``x/127.5 - 1``) is inside; each block halves the resolution
    (48 -> 24 -> 12 -> 6 -> 3); global average pooling keeps the head small. Not compiled:
    ``model.compile(optimizer=training.optimizer(...), ...)`` sets the optimizer and schedule.
    ``batch_norm=False`` (biases instead), ``block="residual"`` (each block's convs get a
    shortcut: identity, or a 1x1 conv where the width changes), ``block="se"`` (each block's
    convs are followed by squeeze-and-excitation, ratio 8) and a smaller ``input_size`` (the same
    weights at 32 px: progressive resizing) exist for the ablation in ``benchmarks/``.
    """
    import keras
    from keras import layers

    if block not in BLOCKS:
        raise EmolibError(f"block {block!r}: use one of {', '.join(BLOCKS)}")

    def conv(x, width):
        x = layers.Conv2D(width, 3, padding="same", use_bias=not batch_norm)(x)
        return layers.BatchNormalization()(x) if batch_norm else x

    inputs = keras.Input(shape=(input_size, input_size, 1), name="pixels")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
    for index, width in enumerate(widths):
        if block == "residual":
            shortcut = x
            if x.shape[-1] != width:
                shortcut = layers.Conv2D(width, 1, use_bias=not batch_norm)(x)
                shortcut = layers.BatchNormalization()(shortcut) if batch_norm else shortcut
            x = conv(layers.Activation("relu")(conv(x, width)), width)
            x = layers.Activation("relu")(layers.Add()([x, shortcut]))
        else:
            for _ in range(2):
                x = layers.Activation("relu")(conv(x, width))
        if block == "se":
            scale = layers.GlobalAveragePooling2D(keepdims=True)(x)
            scale = layers.Dense(max(1, width // 8), activation="relu")(scale)
            x = layers.Multiply()([x, layers.Dense(width, activation="sigmoid")(scale)])
        x = layers.MaxPooling2D(2, name=f"pool{index + 1}")(x)
        if index >= 1:
            x = layers.Dropout(0.1 * index)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(dense_units, use_bias=not batch_norm)(x)
    if batch_norm:
        x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


MOBILENET_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
                 "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{size}_no_top.h5")
_KERAS_SIZES = (96, 128, 160, 192, 224)


def mobilenet_base(alpha: float = 0.35, input_size: int = 96, weights: str | None = "imagenet"):
    """MobileNetV2 without its top, through ``keras.applications``, for ``input_size`` inputs.

    ``weights="imagenet"`` takes the normal Keras path (its cache, else a download), so any alpha
    works online. Offline, when Keras has only the 224-pixel file of this alpha in its cache (as
    on the dev machines and CI), those convolution weights are loaded at ``input_size`` (they do
    not depend on it); ``EMOLIB_OFFLINE=1`` goes there directly, without trying the download
    first. When neither works, the error says which file to put where.
    """
    import keras

    alpha_name = f"{alpha:g}" if alpha != 1 else "1.0"
    shape = (input_size, input_size, 3)
    if weights != "imagenet":
        return keras.applications.MobileNetV2(input_shape=shape, alpha=alpha, include_top=False,
                                              weights=weights)
    cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
    exact_name = MOBILENET_URL.format(alpha=alpha_name, size=input_size).rsplit("/", 1)[1]
    skip_exact = os.environ.get("EMOLIB_OFFLINE") and not (cache / exact_name).exists()
    if input_size in _KERAS_SIZES and not skip_exact:
        try:
            return keras.applications.MobileNetV2(input_shape=shape, alpha=alpha,
                                                  include_top=False, weights="imagenet")
        except Exception:  # offline, no file of this size in the cache: try the 224 file below
            pass
    file_name = MOBILENET_URL.format(alpha=alpha_name, size=224).rsplit("/", 1)[1]
    try:
        path = keras.utils.get_file(file_name, MOBILENET_URL.format(alpha=alpha_name, size=224),
                                    cache_subdir="models")
    except Exception:
        raise EmolibError(
            f"MobileNetV2 ImageNet weights (alpha {alpha_name}) could not be downloaded or found: "
            f"put {file_name} into {cache}/ (dev machines: ../shared/models/keras/; "
            f"alpha 0.35 is the one available offline)") from None
    base = keras.applications.MobileNetV2(input_shape=shape, alpha=alpha, include_top=False,
                                          weights=None)
    base.load_weights(path)
    return base


def build_mobilenet(alpha: float = 0.35, input_size: int = 96, dropout: float = 0.2,
                    weights: str | None = "imagenet", input_scaling: str = "mobilenet",
                    name: str = "mobilenet_v2"):
    """MobileNetV2 transfer model with the common contract (raw 48x48x1 in, 7 probabilities out).

    Inside: resize to ``input_size``, grey to 3 channels, ``mobilenet_v2.preprocess_input``
    (x/127.5 - 1, as a Rescaling layer), the base (frozen, so its batch norm runs in inference
    mode), global average pooling, dropout, a softmax head. Unfreeze with ``set_fine_tuning``.
    ``input_scaling="unit"`` reproduces a classic mistake (x/255 into a base that expects
    [-1, 1]) for notebook 03's experiment; never use it otherwise.
    """
    import keras
    from keras import layers

    base = mobilenet_base(alpha, input_size, weights)
    base.trainable = False
    inputs = keras.Input(shape=INPUT_SHAPE, name="pixels")
    x = layers.Resizing(input_size, input_size, interpolation="bilinear")(inputs)
    x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    if input_scaling == "mobilenet":
        x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="mobilenet_preprocess")(x)
    elif input_scaling == "unit":
        x = layers.Rescaling(1.0 / 255, name="unit_scaling")(x)
    else:
        raise ValueError(f"unknown input_scaling {input_scaling!r}; use 'mobilenet' or 'unit'")
    # No ``training=False`` here: a frozen batch-norm layer runs in inference mode anyway (Keras 3),
    # and ``set_fine_tuning(..., batch_norm=True)`` may let them learn the faces' statistics.
    x = base(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def set_fine_tuning(model, fine_tune_at: int | None, batch_norm: bool = False) -> int:
    """Unfreeze the base's layers from index ``fine_tune_at`` on (None freezes it all).

    Batch-norm layers stay frozen, in inference mode with their ImageNet statistics, unless
    ``batch_norm=True``: then the unfrozen ones train too and re-estimate their statistics on
    faces (upscaled grey FER-2013 crops are far from ImageNet photos). Returns the number of
    trainable weights. Recompile afterwards.
    """
    from keras import layers

    base = next(layer for layer in model.layers if layer.name.startswith("mobilenetv2"))
    base.trainable = fine_tune_at is not None
    if fine_tune_at is not None:
        for index, layer in enumerate(base.layers):
            layer.trainable = index >= fine_tune_at and (
                batch_norm or not isinstance(layer, layers.BatchNormalization))
    return len(model.trainable_weights)


def compiled_forward(model):
    """``batch -> probabilities`` (NumPy) through one traced call of ``model``.

    The webcam pipeline and the latency measurement both use it: ``model.predict`` adds tens of
    milliseconds of per-call overhead, more than the network itself costs on a few faces.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return lambda batch: keras.ops.convert_to_numpy(model(batch, training=False))
    import tensorflow as tf

    forward = tf.function(lambda batch: model(batch, training=False), reduce_retracing=True,
                          input_signature=[tf.TensorSpec((None, *model.input_shape[1:]),
                                                         tf.float32)])
    return lambda batch: forward(batch).numpy()


def load_model(path: str | os.PathLike | None = None):
    """Load a saved ``.keras`` model (safe mode); the shipped default when ``path`` is None."""
    import keras

    path = Path(path) if path is not None else DEFAULT_MODEL
    if not path.exists():
        hint = ("train one with notebook 02 (python -m emolib run --only 02)"
                if path == DEFAULT_MODEL else "check the path")
        raise EmolibError(f"{path}: model file not found; {hint}")
    if path.is_dir():
        raise EmolibError(f"{path}: a folder, not a model file; pass the .keras file (a run "
                          "folder holds model.keras)")
    if path.suffix.lower() == ".keras" and not zipfile.is_zipfile(path):
        # Keras itself would say "File not found" about a file that is right there.
        kind = "an empty file" if path.stat().st_size == 0 else "not a zip archive"
        raise EmolibError(f"{path}: cannot be loaded as a Keras model ({kind}, and every .keras "
                          "file is a zip); save the model again with model.save(), or copy it "
                          "again")
    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as error:
        raise EmolibError(f"{path}: cannot be loaded as a Keras model ({type(error).__name__}: "
                          f"{str(error).splitlines()[0][:200]}); pass a .keras file saved by "
                          "emolib") from None


def default_metrics() -> dict:
    """The metrics JSON saved beside the shipped default model."""
    return json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
