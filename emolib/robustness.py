"""Robustness: how accuracy holds up under controlled changes of lighting, angle and image quality.

A model that only fits FER-2013's own crops loses accuracy fast once the light, the head angle or
the camera differ. ``perturb`` applies one controlled change to raw 48x48 faces;
``robustness_table`` scores models over a ladder of strengths of each change (level 0 of every
ladder is the unchanged face); ``robustness_chart`` draws one panel per change.
Choose nothing on the test split with it: it is a report, run on PublicTest in notebook 04.
"""

from __future__ import annotations

import numpy as np

#: Each change and its ladder of strengths; the first level leaves the faces unchanged.
PERTURBATIONS = {
    "brightness": (0, -80, -40, 40, 80),          # added to every pixel
    "contrast": (1.0, 0.25, 0.5, 1.5, 2.0),        # scale around each face's mean
    "gamma": (1.0, 0.4, 0.6, 1.6, 2.5),            # 255 * (x / 255) ** gamma
    "rotation": (0, 10, 20, 30, 45),               # degrees, in-plane
    "blur": (0.0, 1.0, 1.5, 2.0, 3.0),             # Gaussian sigma in pixels
    "downscale": (48, 32, 24, 16, 12),             # side in pixels before scaling back to 48
    "occlusion": (0.0, 0.2, 0.3, 0.4, 0.5),        # side of a grey square, fraction of the face
}
UNITS = {"brightness": "added grey levels", "contrast": "contrast factor", "gamma": "gamma",
         "rotation": "degrees", "blur": "Gaussian sigma (px)", "downscale": "resolution (px)",
         "occlusion": "occluder side (fraction)"}


def perturb(images: np.ndarray, kind: str, level: float, *, seed: int = 0) -> np.ndarray:
    """``images`` (n, 48, 48[, 1], 0-255) changed by ``kind`` at ``level``; float32, same shape."""
    import cv2

    if kind not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {kind!r}; use one of {', '.join(PERTURBATIONS)}")
    faces = np.asarray(images, dtype=np.float32)
    shape = faces.shape
    faces = faces.reshape(len(faces), shape[1], shape[2])
    size = shape[1]
    if kind == "brightness":
        out = faces + level
    elif kind == "contrast":
        mean = faces.mean(axis=(1, 2), keepdims=True)
        out = mean + (faces - mean) * level
    elif kind == "gamma":
        out = 255.0 * np.power(np.clip(faces / 255.0, 0, 1), level)
    elif kind == "rotation":
        matrix = cv2.getRotationMatrix2D(((size - 1) / 2, (size - 1) / 2), float(level), 1.0)
        out = np.stack([cv2.warpAffine(face, matrix, (size, size), flags=cv2.INTER_LINEAR,
                                       borderMode=cv2.BORDER_REPLICATE) for face in faces])
    elif kind == "blur":
        out = (faces if level <= 0 else
               np.stack([cv2.GaussianBlur(face, (0, 0), float(level)) for face in faces]))
    elif kind == "downscale":
        side = int(level)
        out = np.stack([cv2.resize(cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA),
                                   (size, size), interpolation=cv2.INTER_LINEAR) for face in faces])
    else:  # occlusion: one grey square per face, at a seeded random place
        out = faces.copy()
        side = int(round(level * size))
        if side:
            rng = np.random.default_rng(seed)
            for face, (y, x) in zip(out, rng.integers(0, size - side + 1, size=(len(out), 2))):
                face[y:y + side, x:x + side] = 128.0
    return np.clip(out, 0, 255).astype(np.float32).reshape(shape)


def robustness_table(models: dict, images: np.ndarray, labels: np.ndarray, *,
                     perturbations: dict | None = None, tta: dict | None = None,
                     progress: bool = True):
    """Accuracy of each model at every level of every change: a long pandas DataFrame.

    ``models`` is ``{name: model}`` (anything ``evaluation.predict_proba`` takes); ``tta`` an
    optional ``{name: tta}`` chosen beforehand on PublicTest. Columns: model, perturbation,
    level, accuracy, drop (accuracy lost against the unchanged faces).
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from emolib.evaluation import predict_proba

    perturbations = perturbations or PERTURBATIONS
    labels = np.asarray(labels)
    jobs = [(kind, level) for kind, levels in perturbations.items() for level in levels]
    rows, clean = [], {}
    for kind, level in tqdm(jobs, desc="robustness", disable=not progress):
        changed = perturb(images, kind, level)
        for name, model in models.items():
            probabilities = predict_proba(model, changed, tta=(tta or {}).get(name))
            accuracy = float(np.mean(probabilities.argmax(axis=1) == labels))
            if level == perturbations[kind][0]:
                clean.setdefault(name, accuracy)
            rows.append({"model": name, "perturbation": kind, "level": level,
                         "accuracy": accuracy})
    table = pd.DataFrame(rows)
    table["drop"] = table["model"].map(clean) - table["accuracy"]
    return table


def robustness_chart(table, title: str = "PublicTest accuracy under controlled changes"):
    """One panel per change: accuracy against strength, one line per model."""
    import matplotlib.pyplot as plt

    kinds = list(dict.fromkeys(table["perturbation"]))
    columns = min(3, len(kinds))  # 3 a row: ticks stay legible when the panel scales it down
    rows = int(np.ceil(len(kinds) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.0 * rows + 0.6),
                                squeeze=False, sharey=True)
    for axis, kind in zip(axes.flat, kinds):
        part = table[table["perturbation"] == kind]
        for name, curve in part.groupby("model", sort=False):
            curve = curve.sort_values("level")
            axis.plot(curve["level"], curve["accuracy"], marker="o", markersize=4, label=name)
        axis.set_title(kind, fontsize=11)
        axis.set_xlabel(UNITS.get(kind, "level"), fontsize=10)
        axis.tick_params(labelsize=9)
        axis.grid(alpha=0.3)
    for axis in axes.flat[len(kinds):]:
        axis.axis("off")
    for axis in axes[:, 0]:
        axis.set_ylabel("accuracy")
    handles, names = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, names, loc="lower right", fontsize=8, frameon=False,
                  bbox_to_anchor=(0.98, 0.02) if len(kinds) % columns else (0.98, -0.06))
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    return figure
