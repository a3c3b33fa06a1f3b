"""Explain: where a model looks. Grad-CAM for any emolib Keras model and an occlusion map as a
cross-check; ``annotation`` draws the heatmaps over face boxes, ``explain_plots`` charts them.

    >>> from emolib import explain
    >>> explainer = explain.Explainer(models.load_model())  # or a .keras / int8 .tflite path
    >>> heatmaps = explainer.grad_cam(faces)                  # (n, 48, 48) in [0, 1], predicted class
    >>> heatmaps = explainer.grad_cam(faces, class_index=3)   # ... for "happy"
    >>> occluded = explain.occlusion(model, faces)            # any model with predict, TFLite too

Grad-CAM weighs the feature maps of the last convolutional layer by the gradient of the class
score (the logit before the softmax) and keeps the positive part. The layer is found by
``feature_layer``: EmoNet's last block activation (6x6), the seed CNN's last convolution (8x8),
MobileNetV2's base model (3x3: its last convolution sits inside the nested base). An int8
TFLite model has no gradients: it is explained through the ``.keras`` file it was converted
from (``registry.keras_source``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from emolib.errors import EmolibError
from emolib.preprocessing import IMAGE_SIZE as FACE_SIZE

#: "grad-cam" weighs each feature map by its mean gradient; "hires-cam" multiplies maps and
#: gradients pixel by pixel. They are equal when the head global-average-pools the maps;
#: "auto" uses Grad-CAM there and HiResCAM after Flatten, where mean gradients lose position.
METHODS = ("auto", "grad-cam", "hires-cam")
#: Layers that can hold Grad-CAM's feature maps (a nested model counts: MobileNetV2's base).
_FEATURE_LAYERS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "BatchNormalization",
                   "Activation", "ReLU", "Functional", "Sequential", "Model")


def keras_model(model):
    """The Keras model behind ``model``: itself, a loaded ``.keras`` path, the source of a TFLite
    copy, or the model an ``realtime.EmotionClassifier`` runs."""
    import keras

    from emolib import models, registry

    model = registry.unwrap(model)  # a registry.KerasModel: the Keras model it runs
    if hasattr(model, "process") and hasattr(model, "classifier"):  # a realtime.Pipeline
        model = model.classifier
    if hasattr(model, "note") and hasattr(model, "model"):  # a realtime.EmotionClassifier
        model = model.model
    if isinstance(model, keras.Model):
        return model
    path = getattr(model, "path", model)  # a TFLiteModel, or a path
    if isinstance(path, (str, os.PathLike)):
        path = Path(path)
        if path.suffix == ".tflite":
            source = registry.keras_source(path)
            if source is None:
                raise EmolibError(f"{path}: a TFLite model has no gradients and no .keras file "
                                  f"sits beside it ({path.stem.removesuffix('-int8')}.keras); "
                                  "explain the Keras model it was converted from")
            path = source
        return models.load_model(path)
    raise EmolibError(f"cannot explain a {type(model).__name__}: pass a Keras model, a .keras "
                      "file or an int8 .tflite file with its .keras source beside it")


def feature_layer(model):
    """The layer whose output Grad-CAM weighs: the last one with a spatial (4-D) output that is
    a convolution, its batch norm or activation, or a nested model (MobileNetV2's base)."""
    for layer in reversed(model.layers):
        shape = getattr(layer, "output", None)
        shape = getattr(shape, "shape", None)
        if (shape is not None and len(shape) == 4 and (shape[1] or 0) > 1
                and type(layer).__name__ in _FEATURE_LAYERS):
            return layer
    raise EmolibError(f"model {model.name} has no convolutional feature map to explain")


def _pools_globally(model, layer) -> bool:
    """Whether the feature maps reach the classifier through a global pooling (EmoNet,
    MobileNetV2) rather than Flatten (the seed CNN)."""
    after = model.layers[model.layers.index(layer) + 1:]
    return any("Global" in type(following).__name__ for following in after) and not any(
        type(following).__name__ == "Flatten" for following in after)


def _split(model, layer):
    """``(body, head)``: images -> feature maps, feature maps -> logits (or log-probabilities)."""
    import keras

    node = layer._inbound_nodes[0]
    features = node.output_tensors[0]
    body = keras.Model(model.inputs, features, name=f"{model.name}_features")
    last = model.layers[-1]
    softmax_dense = (type(last).__name__ == "Dense"
                     and getattr(last.activation, "__name__", "") == "softmax")
    if softmax_dense:  # the class score before the softmax, as Grad-CAM prescribes
        penultimate = last._inbound_nodes[0].input_tensors[0]
        before = keras.Model(features, penultimate, name=f"{model.name}_head")

        def head(maps):
            return keras.ops.matmul(before(maps, training=False), last.kernel) + last.bias
    else:
        after = keras.Model(features, model.outputs[0], name=f"{model.name}_head")

        def head(maps):
            return keras.ops.log(after(maps, training=False) + 1e-7)
    return body, head


class Explainer:
    """Grad-CAM for one model, traced once (the webcam overlay calls it on every frame).

    ``model``: a Keras model, a ``.keras`` path, an int8 ``.tflite`` path or ``TFLiteModel``
    (explained through its Keras source), or a ``realtime.Pipeline``. ``layer``: a layer name
    of the model (default: ``feature_layer``).
    """

    def __init__(self, model, layer: str | None = None, method: str = "auto"):
        import tensorflow as tf

        if method not in METHODS:
            raise EmolibError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")

        self.model = keras_model(model)
        try:
            self.layer = self.model.get_layer(layer) if layer else feature_layer(self.model)
        except ValueError:
            raise EmolibError(f"model {self.model.name} has no layer {layer!r}") from None
        body, head = _split(self.model, self.layer)
        if method == "auto":
            method = "grad-cam" if _pools_globally(self.model, self.layer) else "hires-cam"
        self.method = method

        def cams(images, classes):
            maps = body(images, training=False)
            with tf.GradientTape() as tape:
                tape.watch(maps)
                logits = head(maps)
                score = tf.gather(logits, classes, axis=1, batch_dims=1)
            gradients = tape.gradient(score, maps)
            if self.method == "grad-cam":
                gradients = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
            return tf.nn.relu(tf.reduce_sum(gradients * maps, axis=-1)), tf.nn.softmax(logits)

        self._cams = tf.function(cams, reduce_retracing=True, input_signature=[
            tf.TensorSpec((None, FACE_SIZE, FACE_SIZE, 1), tf.float32),
            tf.TensorSpec((None,), tf.int32)])

    def grad_cam(self, images: np.ndarray, class_index=None, batch_size: int = 64,
                 return_probabilities: bool = False):
        """Heatmaps ``(n, 48, 48)`` in [0, 1] (each scaled to its own maximum) for raw
        ``(n, 48, 48[, 1])`` faces; ``class_index``: None (each face's predicted class), one
        class for all, or one per face. With ``return_probabilities``: ``(heatmaps, probs)``."""
        images = np.asarray(images, np.float32).reshape(-1, FACE_SIZE, FACE_SIZE, 1)
        heatmaps = np.zeros((len(images), FACE_SIZE, FACE_SIZE), np.float32)
        probabilities = np.zeros((len(images), self.model.output_shape[-1]), np.float32)
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            if class_index is None:
                classes = np.full(len(batch), -1)
            else:
                classes = np.broadcast_to(np.asarray(class_index), (len(images),))
                classes = classes[start:start + batch_size]
            if np.any(classes < 0):  # the predicted class: one forward pass first
                predicted = self._cams(batch, np.zeros(len(batch), np.int32))[1].numpy().argmax(1)
                classes = np.where(classes < 0, predicted, classes)
            cams, probs = self._cams(batch, np.asarray(classes, np.int32))
            heatmaps[start:start + len(batch)] = upsample(cams.numpy())
            probabilities[start:start + len(batch)] = probs.numpy()
        return (heatmaps, probabilities) if return_probabilities else heatmaps


def upsample(maps: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """Feature-map-sized heatmaps ``(n, h, w)`` -> ``(n, size, size)``, each scaled to [0, 1]."""
    import cv2

    out = np.zeros((len(maps), size, size), np.float32)
    for index, heatmap in enumerate(np.asarray(maps, np.float32)):
        resized = cv2.resize(heatmap, (size, size), interpolation=cv2.INTER_LINEAR)
        peak = resized.max()
        out[index] = resized / peak if peak > 0 else 0.0
    return out


def grad_cam(model, images: np.ndarray, class_index=None, layer: str | None = None) -> np.ndarray:
    """Grad-CAM heatmaps ``(n, 48, 48)`` in [0, 1]; see ``Explainer`` (build one to reuse it)."""
    return Explainer(model, layer).grad_cam(images, class_index)


def occlusion(model, images: np.ndarray, class_index=None, patch: int = 8,
              stride: int = 4) -> np.ndarray:
    """Occlusion maps ``(n, 48, 48)`` in [0, 1]: how much the class probability drops when a
    ``patch``-pixel square is painted with the face's mean grey, averaged over the squares
    covering each pixel. Needs only ``predict``, so it explains TFLite models directly."""
    images = np.asarray(images, np.float32).reshape(-1, FACE_SIZE, FACE_SIZE, 1)
    corners = [(top, left) for top in range(0, FACE_SIZE - patch + 1, stride)
               for left in range(0, FACE_SIZE - patch + 1, stride)]
    coverage = np.zeros((FACE_SIZE, FACE_SIZE), np.float32)
    for top, left in corners:
        coverage[top:top + patch, left:left + patch] += 1
    maps = np.zeros((len(images), FACE_SIZE, FACE_SIZE), np.float32)
    for index, image in enumerate(images):
        variants = np.repeat(image[None], len(corners) + 1, axis=0)
        for number, (top, left) in enumerate(corners, start=1):
            variants[number, top:top + patch, left:left + patch] = image.mean()
        probabilities = np.asarray(model.predict(variants, verbose=0))
        chosen = int(probabilities[0].argmax()) if class_index is None else int(
            np.broadcast_to(np.asarray(class_index), (len(images),))[index])
        drops = np.maximum(probabilities[0, chosen] - probabilities[1:, chosen], 0)
        for drop, (top, left) in zip(drops, corners):
            maps[index, top:top + patch, left:left + patch] += drop
        maps[index] /= np.maximum(coverage, 1)
        peak = maps[index].max()
        maps[index] = maps[index] / peak if peak > 0 else 0.0
    return maps


def peak(heatmaps: np.ndarray) -> np.ndarray:
    """``(n, 2)`` row, column of each heatmap's maximum."""
    heatmaps = np.asarray(heatmaps).reshape(len(heatmaps), -1)
    return np.stack(np.unravel_index(heatmaps.argmax(axis=1), (FACE_SIZE, FACE_SIZE)), axis=1)
