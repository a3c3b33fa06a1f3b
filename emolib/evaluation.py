"""Evaluation: predictions (with test-time augmentation and ensembles) and the metrics we report.

All metrics take integer labels and a ``(n, 7)`` probability array in ``CLASS_NAMES`` order.
"""

from __future__ import annotations

import time

import numpy as np

from emolib import CLASS_NAMES

NUM_CLASSES = len(CLASS_NAMES)


def predict_proba(model, images: np.ndarray, *, tta: str | None = None,
                  batch_size: int = 256) -> np.ndarray:
    """Class probabilities for ``(n, 48, 48[, 1])`` raw pixels.

    ``tta``: None, ``"flip"`` (average with the mirrored face) or ``"flip+crops"`` (also four
    2-pixel shifts of each, 10 views in all).
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[..., None]
    views = [images]
    if tta in ("flip", "flip+crops"):
        views.append(images[:, :, ::-1])
    if tta == "flip+crops":
        for view in list(views):
            padded = np.pad(view, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="edge")
            for dy, dx in ((0, 0), (0, 4), (4, 0), (4, 4)):
                views.append(padded[:, dy:dy + 48, dx:dx + 48])
    elif tta not in (None, "flip"):
        raise ValueError(f"unknown tta {tta!r}; use None, 'flip' or 'flip+crops'")
    probabilities = [model.predict(view, batch_size=batch_size, verbose=0) for view in views]
    return np.mean(probabilities, axis=0)


def ensemble_proba(probabilities: list[np.ndarray]) -> np.ndarray:
    """Average the probabilities of several models (an ensemble)."""
    return np.mean(np.stack(probabilities), axis=0)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """``(7, 7)`` counts, rows = true class, columns = predicted class."""
    return np.bincount(labels * NUM_CLASSES + predictions,
                       minlength=NUM_CLASSES * NUM_CLASSES).reshape(NUM_CLASSES, NUM_CLASSES)


def bootstrap_accuracy_ci(correct: np.ndarray, *, samples: int = 2000, seed: int = 0,
                          level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of a 0/1 ``correct`` array."""
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(correct), size=(samples, len(correct)))
    means = correct[index].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray,
                               bins: int = 15) -> float:
    """ECE: confidence-weighted gap between confidence and accuracy over equal-width bins."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            error += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(error)


def reliability(labels: np.ndarray, probabilities: np.ndarray, bins: int = 15) -> dict:
    """Per-bin mean confidence, accuracy and count, for a reliability diagram."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    rows = {"confidence": [], "accuracy": [], "count": [], "edges": edges.tolist()}
    for b in range(bins):
        in_bin = which == b
        rows["count"].append(int(in_bin.sum()))
        rows["confidence"].append(float(confidence[in_bin].mean()) if in_bin.any() else None)
        rows["accuracy"].append(float(correct[in_bin].mean()) if in_bin.any() else None)
    return rows


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray, *,
                           seed: int = 0) -> dict:
    """Accuracy (with bootstrap 95% CI), macro-F1, per-class precision/recall/F1, confusion, ECE."""
    labels = np.asarray(labels, dtype=np.int64)
    predictions = probabilities.argmax(axis=1)
    matrix = confusion_matrix(labels, predictions)
    true_positive = np.diag(matrix).astype(float)
    precision = np.divide(true_positive, matrix.sum(axis=0), out=np.zeros(NUM_CLASSES),
                          where=matrix.sum(axis=0) > 0)
    recall = np.divide(true_positive, matrix.sum(axis=1), out=np.zeros(NUM_CLASSES),
                       where=matrix.sum(axis=1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(NUM_CLASSES),
                   where=(precision + recall) > 0)
    present = matrix.sum(axis=1) > 0
    correct = (predictions == labels).astype(float)
    low, high = bootstrap_accuracy_ci(correct, seed=seed)
    return {
        "n": int(len(labels)),
        "accuracy": float(correct.mean()),
        "accuracy_ci95": [low, high],
        "macro_f1": float(f1[present].mean()),
        "precision": dict(zip(CLASS_NAMES, precision.round(4).tolist())),
        "recall": dict(zip(CLASS_NAMES, recall.round(4).tolist())),
        "f1": dict(zip(CLASS_NAMES, f1.round(4).tolist())),
        "confusion": matrix.tolist(),
        "ece": expected_calibration_error(labels, probabilities),
    }


def mcnemar(labels: np.ndarray, predictions_a: np.ndarray, predictions_b: np.ndarray) -> dict:
    """Exact McNemar test of two classifiers on the same images (two-sided binomial p-value)."""
    from math import comb

    correct_a, correct_b = predictions_a == labels, predictions_b == labels
    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(~correct_a & correct_b))
    n, k = only_a + only_b, min(only_a, only_b)
    p_value = min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2 ** n) if n else 1.0
    return {"only_a_correct": only_a, "only_b_correct": only_b, "p_value": float(p_value)}


def latency_ms(model, *, batch_sizes: tuple = (1, 256), repeats: int = 20) -> dict:
    """Median milliseconds per image of a direct model call at each batch size."""
    results = {}
    for batch_size in batch_sizes:
        batch = np.random.default_rng(0).integers(0, 256, (batch_size, 48, 48, 1)).astype(np.float32)
        model(batch, training=False)  # warm-up (graph tracing)
        times = []
        for _ in range(max(3, repeats if batch_size == 1 else repeats // 4)):
            start = time.perf_counter()
            model(batch, training=False)
            times.append(time.perf_counter() - start)
        results[f"batch_{batch_size}"] = float(np.median(times) / batch_size * 1000)
    return results


def evaluate(model, images: np.ndarray, labels: np.ndarray, *, split: str,
             tta: str | None = None) -> dict:
    """Metrics of one model on one split, naming the split and the test-time augmentation."""
    probabilities = predict_proba(model, images, tta=tta)
    return {"split": split, "tta": tta, **classification_metrics(labels, probabilities)}
