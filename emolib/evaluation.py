"""Evaluation: predictions (with test-time augmentation and ensembles) and the metrics we report.

All metrics take integer labels and a ``(n, 7)`` probability array in ``CLASS_NAMES`` order.
"""

from __future__ import annotations

import numpy as np

from emolib.preprocessing import CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES  # noqa: F401

_TTA_CHUNK = 4096  # images per predict call in predict_proba


#: Test-time augmentations ``predict_proba`` knows, cheapest first.
TTA_CHOICES = (None, "flip", "crops", "flip+crops")


def tta_views(images: np.ndarray, tta: str | None = None) -> list[np.ndarray]:
    """The views of ``(n, 48, 48, 1)`` images that test-time augmentation averages over.

    ``None``: the images; ``"flip"``: also the mirrored faces; ``"crops"``: the images and four
    2-pixel diagonal shifts (edge-padded, so the size stays 48x48); ``"flip+crops"``: both, 10 views.
    """
    if tta not in TTA_CHOICES:
        raise ValueError(f"unknown tta {tta!r}; use one of {', '.join(map(str, TTA_CHOICES))}")
    views = [images]
    if tta in ("flip", "flip+crops"):
        views.append(images[:, :, ::-1])
    if tta in ("crops", "flip+crops"):
        size = images.shape[1]
        for view in list(views):
            padded = np.pad(view, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="edge")
            for dy, dx in ((0, 0), (0, 4), (4, 0), (4, 4)):
                views.append(padded[:, dy:dy + size, dx:dx + size])
    return views


def predict_proba(model, images: np.ndarray, *, tta: str | None = None,
                  batch_size: int = 256) -> np.ndarray:
    """Class probabilities ``(n, 7)`` for ``(n, 48, 48[, 1])`` raw pixels, averaged over TTA views.

    ``model`` is anything with Keras' ``predict(x, batch_size=, verbose=)``: a Keras model, an
    ``registry.EmotionModel`` (Keras, TFLite, the ``fer`` peer). ``tta``: see ``tta_views``.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[1:3] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"expected images of shape (n, 48, 48[, 1]); got {images.shape}")
    if len(images) == 0:
        return np.zeros((0, NUM_CLASSES), dtype=np.float32)
    chunks = []
    # Chunks bound the memory of 10 views of a large split; within a chunk, one predict call
    # over all views, because Keras' per-call overhead dominates on small inputs.
    for start in range(0, len(images), _TTA_CHUNK):
        views = tta_views(images[start:start + _TTA_CHUNK], tta)
        stacked = np.concatenate(views) if len(views) > 1 else views[0]
        probabilities = np.asarray(model.predict(stacked, batch_size=batch_size, verbose=0))
        chunks.append(probabilities.reshape(len(views), len(views[0]), -1).mean(axis=0))
    return np.concatenate(chunks).astype(np.float32)


def ensemble_proba(probabilities: list[np.ndarray]) -> np.ndarray:
    """Average the probabilities of several models (an ensemble)."""
    if not len(probabilities):
        raise ValueError("an ensemble needs at least one model's probabilities")
    return np.mean(np.stack(probabilities), axis=0)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """``(7, 7)`` counts, rows = true class, columns = predicted class."""
    labels, predictions = np.asarray(labels, np.int64), np.asarray(predictions, np.int64)
    return np.bincount(labels * NUM_CLASSES + predictions,
                       minlength=NUM_CLASSES * NUM_CLASSES).reshape(NUM_CLASSES, NUM_CLASSES)


def bootstrap_accuracy_ci(correct: np.ndarray, *, samples: int = 2000, seed: int = 0,
                          level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of a 0/1 ``correct`` array.

    Resampling n 0/1 values with replacement draws ``Binomial(n, mean)`` ones, so the
    bootstrap is drawn from that directly: the same distribution in O(samples) memory
    instead of a ``(samples, n)`` index array.
    """
    correct = np.asarray(correct, dtype=float)
    if len(correct) == 0:
        return float("nan"), float("nan")
    if not np.isin(correct, (0.0, 1.0)).all():
        raise ValueError("bootstrap_accuracy_ci expects a 0/1 (correct / wrong) array")
    rng = np.random.default_rng(seed)
    means = rng.binomial(len(correct), correct.mean(), size=samples) / len(correct)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def _confidence_bins(labels: np.ndarray, probabilities: np.ndarray, bins: int) -> tuple:
    """``(confidence, correct, bin of each image, bin edges)`` over ``bins`` equal-width bins."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    return confidence, correct, np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1), edges


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray,
                               bins: int = 15) -> float:
    """ECE: confidence-weighted gap between confidence and accuracy over equal-width bins."""
    confidence, correct, which, _ = _confidence_bins(labels, probabilities, bins)
    error = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            error += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(error)


def reliability(labels: np.ndarray, probabilities: np.ndarray, bins: int = 15) -> dict:
    """Per-bin mean confidence, accuracy and count, for a reliability diagram."""
    confidence, correct, which, edges = _confidence_bins(labels, probabilities, bins)
    rows = {"confidence": [], "accuracy": [], "count": [], "edges": edges.tolist()}
    for b in range(bins):
        in_bin = which == b
        rows["count"].append(int(in_bin.sum()))
        rows["confidence"].append(float(confidence[in_bin].mean()) if in_bin.any() else None)
        rows["accuracy"].append(float(correct[in_bin].mean()) if in_bin.any() else None)
    return rows


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray, *,
                           seed: int = 0) -> dict:
    """Accuracy (with bootstrap 95% CI), macro-F1, per-class precision/recall/F1, confusion, ECE.

    Macro-F1 averages over the classes present in ``labels`` (a folder dataset without, say,
    disgust is not punished for it); ``support`` counts the true images of each class.
    """
    labels = np.asarray(labels, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if len(labels) == 0:
        raise ValueError("no images to score: the split is empty")
    if probabilities.shape != (len(labels), NUM_CLASSES):
        raise ValueError(f"expected probabilities of shape ({len(labels)}, {NUM_CLASSES}); "
                         f"got {probabilities.shape}")
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
        "support": dict(zip(CLASS_NAMES, matrix.sum(axis=1).tolist())),
        "confusion": matrix.tolist(),
        "ece": expected_calibration_error(labels, probabilities),
    }


def mcnemar(labels: np.ndarray, predictions_a: np.ndarray, predictions_b: np.ndarray) -> dict:
    """Exact McNemar test of two classifiers on the same images (two-sided binomial p-value).

    Only the discordant images count: those one model gets right and the other wrong. Under the
    null hypothesis (equal accuracy) each is equally likely to favour either model.
    """
    from math import comb

    labels = np.asarray(labels)
    if not len(labels) == len(predictions_a) == len(predictions_b):
        raise ValueError("mcnemar needs both models' predictions on the same images")
    correct_a, correct_b = predictions_a == labels, predictions_b == labels
    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(~correct_a & correct_b))
    n, k = only_a + only_b, min(only_a, only_b)
    p_value = min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2 ** n) if n else 1.0
    return {"only_a_correct": only_a, "only_b_correct": only_b, "p_value": float(p_value)}


def pairwise_mcnemar(labels: np.ndarray, probabilities: dict) -> list[dict]:
    """McNemar for every pair of ``{name: (n, 7) probabilities}`` scored on the same images."""
    names = list(probabilities)
    rows = []
    for i, name_a in enumerate(names):
        for name_b in names[i + 1:]:
            result = mcnemar(labels, np.argmax(probabilities[name_a], axis=1),
                             np.argmax(probabilities[name_b], axis=1))
            rows.append({"model_a": name_a, "model_b": name_b, **result})
    return rows


def select_tta(labels: np.ndarray, probabilities: dict) -> str | None:
    """The TTA whose probabilities ``{tta: (n, 7)}`` score best on ``labels`` (ties: cheapest).

    Call it on PublicTest (val) only, then report the chosen TTA on PrivateTest (test).
    """
    order = sorted(probabilities, key=lambda tta: TTA_CHOICES.index(tta))
    scores = [float(np.mean(np.argmax(probabilities[tta], axis=1) == labels)) for tta in order]
    return order[int(np.argmax(scores))]  # argmax keeps the first (cheapest) of equal scores


def select_ensemble(labels: np.ndarray, probabilities: dict, *, max_members: int = 5) -> list:
    """Greedy forward selection of ensemble members on ``labels`` (Caruana et al., 2004).

    Start from the best single model; add the model that most improves the averaged
    probabilities' accuracy (log-loss breaks ties) until nothing improves or ``max_members``
    is reached. Pass PublicTest (val) probabilities, ``{name: (n, 7)}``, never PrivateTest.
    """
    labels = np.asarray(labels)

    def score(members):
        mean = ensemble_proba([probabilities[m] for m in members])
        accuracy = float(np.mean(mean.argmax(axis=1) == labels))
        log_loss = float(-np.mean(np.log(np.clip(mean[np.arange(len(labels)), labels], 1e-7, 1))))
        return accuracy, -log_loss

    if not probabilities:
        return []
    members = [max(probabilities, key=lambda name: score([name]))]
    best = score(members)
    while len(members) < max_members:
        candidates = [name for name in probabilities if name not in members]
        if not candidates:
            break
        scored = {name: score(members + [name]) for name in candidates}
        name = max(scored, key=scored.get)
        if scored[name] <= best:
            break
        members.append(name)
        best = scored[name]
    return members


def evaluate(model, images: np.ndarray, labels: np.ndarray, *, split: str,
             tta: str | None = None) -> dict:
    """Metrics of one model on one split, naming the split and the test-time augmentation."""
    probabilities = predict_proba(model, images, tta=tta)
    return {"split": split, "tta": tta, **classification_metrics(labels, probabilities)}


def tta_on_val(model, x_val: np.ndarray, y_val: np.ndarray, tta_choices=TTA_CHOICES, *,
               predict=None) -> tuple:
    """``(chosen, {tta: val probabilities})``: every TTA in ``tta_choices`` scored on val
    (PublicTest) and the best kept (``select_tta``). ``predict(model, images, tta=)`` defaults to
    ``predict_proba`` (``model_cache.cached_proba`` reuses earlier predictions)."""
    predict = predict or predict_proba
    probabilities = {tta: predict(model, x_val, tta=tta) for tta in tta_choices}
    return select_tta(y_val, probabilities), probabilities


def evaluate_model(model, val: tuple, test: tuple, *, tta_choices=TTA_CHOICES) -> dict:
    """The one evaluation of a model: TTA chosen on val (PublicTest), then test (PrivateTest).

    ``val`` and ``test`` are ``(images, labels)``. Every TTA in ``tta_choices`` is scored on val
    and ``select_tta`` picks one (ties: the cheaper); test is scored plain and with that TTA, once.
    Returns ``{"val", "val_tta", "test", "test_tta", "tta_chosen_on_val", "val_by_tta"}``.
    """
    (x_val, y_val), (x_test, y_test) = val, test
    chosen, val_probabilities = tta_on_val(model, x_val, y_val, tta_choices)
    val_scores = {tta: {"split": "val", "tta": tta, **classification_metrics(y_val, p)}
                  for tta, p in val_probabilities.items()}
    test_plain = evaluate(model, x_test, y_test, split="test")
    test_chosen = (test_plain if chosen is None
                   else evaluate(model, x_test, y_test, split="test", tta=chosen))
    return {"val": val_scores[None], "val_tta": val_scores[chosen], "test": test_plain,
            "test_tta": test_chosen, "tta_chosen_on_val": chosen,
            "val_by_tta": {str(tta): round(s["accuracy"], 4) for tta, s in val_scores.items()}}
