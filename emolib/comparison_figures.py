"""Comparison figures: what notebook 04 shows of a ``comparison.Comparison``, one call each.

Every function draws with ``plots`` / ``explain_plots`` / ``robustness``, saves the figure as
``outputs/comparison/<name>.png`` (``reports.save_figure``) and returns it, so a cell ends with
the call. Titles name the split every number comes from.
"""

from __future__ import annotations

import numpy as np

from emolib import evaluation, plots, registry, reports


def _saved(figure, name: str):
    reports.save_figure(figure, name)
    return figure


def learning_curves(saved_runs: list):
    """Training (dashed) and PublicTest (solid) curves of every run with a history."""
    histories = {run.name: run.history for run in saved_runs if run.history}
    return _saved(plots.learning_curves(histories), "learning_curves") if histories else None


def accuracy_intervals(result):
    """Test accuracy of every model with its bootstrap 95% CI."""
    metrics, label = result.metrics("test"), reports.split_label(result.test_split)
    return _saved(plots.accuracy_intervals(
        {name: (m["accuracy"], *m["accuracy_ci95"]) for name, m in metrics.items()},
        title=f"{label} accuracy with bootstrap 95% CI (n={len(result.labels['test'])})"),
        "accuracy_ci")


def per_class_f1(result, name: str = "per_class_f1"):
    """Per-class F1 of every model on test, as a heatmap."""
    return _saved(plots.per_class_heatmap(
        {model: m["f1"] for model, m in result.metrics("test").items()},
        title=f"per-class F1 on {reports.split_label(result.test_split)}"), name)


def confusion_matrices(result):
    """Confusion matrices (rows normalised to recall) of the ``shown`` models on test."""
    metrics, label = result.metrics("test"), reports.split_label(result.test_split)
    return _saved(plots.confusion_matrices(
        {f"{name}\n{label}": metrics[name]["confusion"] for name in result.shown()}),
        "confusion_matrices")


def reliability(result):
    """Reliability diagrams with each model's ECE on test."""
    metrics, label = result.metrics("test"), reports.split_label(result.test_split)
    labels = result.labels["test"]
    return _saved(plots.reliability_diagrams(
        {f"{name}\nECE {metrics[name]['ece']:.3f} on {label}":
         evaluation.reliability(labels, result.probabilities["test"][name])
         for name in result.shown()}), "reliability")


def accuracy_latency_size(result):
    """Test accuracy against batch-1 latency, circles sized by file size."""
    metrics, label = result.metrics("test"), reports.split_label(result.test_split)
    return _saved(plots.accuracy_latency_size(
        {name: {"accuracy": metrics[name]["accuracy"],
                "latency_ms": result.latency[name]["batch_1"],
                "size_mb": result.size[name]["size_mb"]}
         for name in metrics if name in result.latency},
        title=f"{label} accuracy vs latency (batch 1, this CPU) vs size"), "accuracy_latency_size")


def explained_models(result) -> dict:
    """``{name: Keras model}`` worth a heatmap: Keras models, no repeats, no TFLite, no peer."""
    return {name: candidate.model.keras_model for name, candidate in result.candidates.items()
            if isinstance(candidate.model, registry.KerasModel) and not candidate.same_as}


def attention(result, images: np.ndarray, labels: np.ndarray):
    """Each model's mean Grad-CAM heatmap for the true class over each class's val faces."""
    from emolib import explain, explain_plots

    explainers = {name: explain.Explainer(model) for name, model in explained_models(result).items()}
    means = {f"{name}\n({e.method}, {e.layer.name})": explain_plots.class_means(e, images, labels)
             for name, e in explainers.items()}
    title = f"mean heatmap for the true class, {len(labels)} {reports.split_label('val')} faces"
    return _saved(explain_plots.class_heatmaps(means, images, labels, title=title),
                  "attention_per_class")


def confident_errors(result, val: tuple, count: int = 6):
    """Each model's most confident mistakes on val, with the heatmap of the class it chose."""
    from emolib import explain, explain_plots

    (images, labels), errors = val, {}
    for name, model in explained_models(result).items():
        probabilities = result.probabilities["val"][name]
        chosen = explain_plots.confident_errors(probabilities, labels, count=count)
        predicted = probabilities[chosen].argmax(axis=1)
        heatmaps = explain.Explainer(model).grad_cam(images[chosen], class_index=predicted)
        errors[name] = (images[chosen], heatmaps, labels[chosen], predicted,
                        probabilities[chosen, predicted])
    title = (f"most confident mistakes on {reports.split_label('val')}: true → predicted, "
             "heatmap of the predicted class")
    return _saved(explain_plots.error_gallery(errors, title=title), "confident_errors")


def robustness(result, images: np.ndarray, labels: np.ndarray):
    """``(figure, mean drops)``: accuracy ladders under lighting, angle and quality changes on val
    faces, and the mean accuracy lost (points) over each ladder's changed levels."""
    from emolib import robustness as ladders

    chosen = {name: c.model for name, c in result.candidates.items()
              if not c.kind.startswith("tflite") and not c.same_as}
    table = ladders.robustness_table(chosen, images, labels)
    reports.save_table(table.set_index("model"), "robustness")
    figure = ladders.robustness_chart(
        table, title=f"{reports.split_label('val')} accuracy under controlled changes "
                     f"(n={len(labels)})")
    changed = table[table["drop"].notna()
                    & (table.groupby(["model", "perturbation"]).cumcount() > 0)]
    drops = (changed.groupby(["model", "perturbation"])["drop"].mean().unstack() * 100).round(1)
    return _saved(figure, "robustness"), drops


def cross_dataset(result, source: str, *, detect_faces: bool = True, max_images: int = 0,
                  seed: int = 0) -> tuple:
    """``(note, table, figure)``: every model, with the TTA it chose on val, and the ensemble on
    every image of a labelled folder no model was trained on (faces detected in photos)."""
    from emolib import comparison, facesets

    faces = facesets.load_faces(source, detect_faces=detect_faces, max_images=max_images,
                                seed=seed)
    models = {name: c for name, c in result.candidates.items() if not c.kind.startswith("tflite")}
    name = f"{faces.source.rstrip('/').split('/')[-1]} (all images)"
    scored = comparison.compare(models, (faces.images, faces.labels), test_split=name,
                                fixed_tta=result.chosen_tta, ensemble=result.members or None,
                                latency=False, seed=seed, progress=False)
    return faces.note(), scored.table("cross_dataset"), per_class_f1(
        scored, "cross_dataset_per_class_f1")
