"""Figures of where models look (notebook 04): mean heatmaps per true class, and the most
confident mistakes with their heatmaps, several models side by side. The heatmaps come from
``explain.Explainer``."""

from __future__ import annotations

import numpy as np

from emolib import CLASS_NAMES


def class_means(explainer, images: np.ndarray, labels: np.ndarray, batch_size: int = 128):
    """``(7, 48, 48)``: the mean Grad-CAM for the *true* class over the faces of each class
    (zeros for a class without faces)."""
    heatmaps = explainer.grad_cam(images, class_index=np.asarray(labels), batch_size=batch_size)
    return np.stack([heatmaps[labels == index].mean(axis=0) if np.any(labels == index)
                     else np.zeros(heatmaps.shape[1:], np.float32)
                     for index in range(len(CLASS_NAMES))])


def confident_errors(probabilities: np.ndarray, labels: np.ndarray, count: int = 6) -> np.ndarray:
    """Indices of the ``count`` wrong predictions made with the highest confidence."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    order = np.argsort(-probabilities[wrong, predicted[wrong]], kind="stable")
    return wrong[order[:count]]


def _blend(face: np.ndarray, heatmap: np.ndarray, alpha: float = 0.7) -> np.ndarray:
    """An RGB float image: the grey face with the heatmap (jet colours) over it, opaque where
    the heatmap is hot and clear where it is cold, so the face stays visible."""
    import matplotlib

    heatmap = np.clip(heatmap, 0, 1)[..., None]
    grey = np.repeat(np.squeeze(face)[..., None] / 255.0, 3, axis=2)
    colour = matplotlib.colormaps["jet"](heatmap[..., 0])[..., :3]
    weight = alpha * np.sqrt(heatmap)
    return np.clip((1 - weight) * grey + weight * colour, 0, 1)


def class_heatmaps(means: dict, images: np.ndarray, labels: np.ndarray, title: str = ""):
    """One row per model, one column per class: ``{model: class_means(...)}`` over the mean
    face of each class, each panel scaled to its own maximum."""
    import matplotlib.pyplot as plt

    faces = [images[labels == index].mean(axis=0) if np.any(labels == index)
             else np.zeros(images.shape[1:]) for index in range(len(CLASS_NAMES))]
    rows = len(means)
    figure, axes = plt.subplots(rows, len(CLASS_NAMES), squeeze=False, layout="constrained",
                                figsize=(1.45 * len(CLASS_NAMES) + 1.6, 1.7 * rows + 0.8))
    for row, (name, heatmaps) in enumerate(means.items()):
        for column, class_name in enumerate(CLASS_NAMES):
            axis = axes[row, column]
            peak = max(float(heatmaps[column].max()), 1e-6)  # a mean is flatter than one map
            axis.imshow(_blend(faces[column], heatmaps[column] / peak))
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(f"{class_name}\n(n={int(np.sum(labels == column))})", fontsize=9)
        axes[row, 0].set_ylabel(_wrap(name), fontsize=8, rotation=0, ha="right", va="center")
    if title:
        figure.suptitle(title, fontsize=10)
    return figure


def error_gallery(errors: dict, title: str = ""):
    """Each model's most confident mistakes: ``{model: (faces, heatmaps, true, predicted,
    confidence)}``; one row per model, the face beside its heatmap for the predicted class."""
    import matplotlib.pyplot as plt

    count = max((len(entry[0]) for entry in errors.values()), default=0)
    count = max(count, 1)
    figure, axes = plt.subplots(len(errors), count, squeeze=False, layout="constrained",
                                figsize=(1.75 * count + 1.6, 2.2 * len(errors) + 0.8))
    for row, (name, (faces, heatmaps, true, predicted, confidence)) in enumerate(errors.items()):
        for column in range(count):
            axis = axes[row, column]
            axis.set_xticks([])
            axis.set_yticks([])
            if column >= len(faces):
                axis.axis("off")
                continue
            axis.imshow(_blend(faces[column], heatmaps[column]))
            axis.set_title(f"{CLASS_NAMES[true[column]]} → {CLASS_NAMES[predicted[column]]}\n"
                           f"{confidence[column]:.0%}", fontsize=8, color="#b03030")
        axes[row, 0].set_ylabel(_wrap(name), fontsize=8, rotation=0, ha="right", va="center")
    if title:
        figure.suptitle(title, fontsize=10)
    return figure


def _wrap(text: str, width: int = 16) -> str:
    """Long model names on several lines, so a row label does not push the images away."""
    import textwrap

    return "\n".join(line for part in text.split("\n")
                     for line in textwrap.wrap(part, width, break_on_hyphens=False)) or text
