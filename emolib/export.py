"""Export: a Keras model to TensorFlow Lite (float32, float16 or int8) and a small predictor
that runs the ``.tflite`` file with the same ``predict`` as a Keras model.

    >>> from emolib import export, models
    >>> path = export.to_tflite(models.load_model(), "emonet-int8.tflite", quantization="int8",
    ...                         representative_images=x_train[:300])
    >>> probabilities = export.TFLiteModel(path).predict(x_test)

int8 is full-integer quantization calibrated on a few hundred *training* images (never the
test split); its input is the raw uint8 pixels (scale 1, zero point 0), its output float32
probabilities in ``CLASS_NAMES`` order, like every emolib model.

Making a saved run the package's default model (its int8 copy converted here, scored with
``evaluation``) is ``shipping.ship``, the step above both.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

import numpy as np

from emolib.errors import EmolibError
from emolib.preprocessing import INPUT_SHAPE, NUM_CLASSES, as_batch
from emolib.registry import int8_companion  # noqa: F401  (export.int8_companion)

QUANTIZATIONS = ("float32", "float16", "int8")


def to_tflite(model, path: str | os.PathLike, *, quantization: str = "float16",
              representative_images: np.ndarray | None = None) -> Path:
    """Convert ``model`` to a ``.tflite`` file at ``path`` and return the path.

    ``quantization``: ``"float32"`` (no quantization), ``"float16"`` (weights stored in half
    precision, half the size, same accuracy in practice) or ``"int8"`` (weights and activations
    in 8 bits, needs ``representative_images``: a few hundred training faces, (n, 48, 48[, 1])).
    """
    import tensorflow as tf

    if quantization not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantization!r}; use one of {', '.join(QUANTIZATIONS)}")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantization == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        if representative_images is None or len(representative_images) == 0:
            raise ValueError("int8 quantization needs representative_images (training faces)")
        calibration = as_batch(representative_images)

        def representative_dataset():
            for image in calibration:
                yield [image[None]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8  # raw pixels, exactly representable
        converter.inference_output_type = tf.float32
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # "Assets written to …" for the temporary SavedModel
    try:
        # The converter prints the temporary SavedModel's signature (dozens of lines) to stdout.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")  # "statistics for quantized inputs": uint8 is exact
            flatbuffer = converter.convert()
    except Exception as error:
        raise EmolibError(f"TFLite conversion ({quantization}) of {getattr(model, 'name', 'the model')}"
                          f" failed: {str(error).splitlines()[0][:300] if str(error) else type(error).__name__}"
                          ) from error
    finally:
        logger.setLevel(level)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(flatbuffer)
    os.replace(tmp, path)
    return path


def ship(run_directory: str | os.PathLike, **kwargs) -> dict:
    """``shipping.ship``, under its old name (notebook 02 calls ``export.ship``)."""
    from emolib import shipping

    return shipping.ship(run_directory, **kwargs)


def _interpreter(path: Path, num_threads: int | None):
    """LiteRT's interpreter when ``ai-edge-litert`` is installed, else TensorFlow's own."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        return Interpreter(model_path=str(path), num_threads=num_threads)


class TFLiteModel:
    """A ``.tflite`` emolib model behind ``registry.EmotionModel``: raw 48x48x1 pixels in, 7
    probabilities out. Handles quantized inputs and outputs (int8/uint8) with the scales stored
    in the file.
    """

    note = ""
    parameters = None  #: a .tflite file does not count its weights

    def __init__(self, path: str | os.PathLike, *, num_threads: int | None = None,
                 name: str | None = None):
        self.path = Path(path)
        if not self.path.exists():
            raise EmolibError(f"{self.path}: TFLite model not found; check the path")
        try:
            self._interpreter = _interpreter(self.path, num_threads)
        except Exception as error:
            raise EmolibError(f"{self.path}: cannot be read as a TFLite model "
                              f"({str(error).splitlines()[0][:200]})") from None
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._batch = None
        self.name = name or self.path.stem
        self.size_bytes = self.path.stat().st_size

    def __repr__(self) -> str:
        return f"TFLiteModel({str(self.path)!r}, input {np.dtype(self._input['dtype']).name})"

    @property
    def input_shape(self) -> tuple:
        """``(None, height, width, channels)`` like a Keras model's."""
        return (None, *(int(v) for v in self._input["shape"][1:]))

    @property
    def output_shape(self) -> tuple:
        """``(None, classes)`` like a Keras model's."""
        return (None, *(int(v) for v in self._output["shape"][1:]))

    def _resize(self, batch_size: int) -> None:
        if batch_size != self._batch:
            self._interpreter.resize_tensor_input(self._input["index"], [batch_size, *INPUT_SHAPE])
            self._interpreter.allocate_tensors()
            self._batch = batch_size

    def _run(self, batch: np.ndarray) -> np.ndarray:
        self._resize(len(batch))
        dtype = np.dtype(self._input["dtype"])
        if dtype.kind in "iu":
            scale, zero_point = self._input["quantization"]
            info = np.iinfo(dtype)
            batch = np.clip(np.round(batch / (scale or 1.0) + zero_point), info.min, info.max)
        self._interpreter.set_tensor(self._input["index"], batch.astype(dtype))
        self._interpreter.invoke()
        output = self._interpreter.get_tensor(self._output["index"])
        if output.dtype.kind in "iu":
            scale, zero_point = self._output["quantization"]
            output = (output.astype(np.float32) - zero_point) * scale
        return np.array(output, dtype=np.float32)

    def predict(self, images: np.ndarray, batch_size: int = 256, verbose: int = 0) -> np.ndarray:
        """Probabilities ``(n, 7)`` for ``(n, 48, 48[, 1])`` raw pixels (``verbose`` is ignored)."""
        images = as_batch(images)
        return np.concatenate([self._run(images[start:start + batch_size])
                               for start in range(0, len(images), batch_size)]
                              or [np.zeros((0, NUM_CLASSES), np.float32)])

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """One interpreter call on one batch (what ``costs.latency_ms`` times)."""
        return self._run(as_batch(batch))

    def __call__(self, images, training: bool = False) -> np.ndarray:
        return self.forward(images)
