"""Plots: the figures of training and model comparison (learning curves, confusion matrices,
reliability, accuracy intervals, per-class scores, the accuracy-latency-size trade-off), each a
function returning a Matplotlib figure. The data's own figures (notebook 01) are in
``data_plots``, heatmap figures in ``explain_plots``."""

from __future__ import annotations

import numpy as np

from emolib import CLASS_NAMES


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def learning_curves(histories: dict, metrics: tuple = ("accuracy", "loss"),
                    phase_starts: dict | None = None):
    """Train (dashed) and validation (solid) curves of several runs: ``{name: history}``.

    ``phase_starts`` (``{label: epoch}``) draws a dotted line where a training phase begins.
    """
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    rows = int(np.ceil(2 * len(histories) / (4 if len(metrics) > 1 else 2)))
    figure, axes = plt.subplots(1, len(metrics), figsize=(6.5 * len(metrics), 4 + 0.22 * rows),
                                squeeze=False, layout="constrained")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, metric in zip(axes[0], metrics):
        for index, (name, history) in enumerate(histories.items()):
            colour = colours[index % len(colours)]
            epochs = np.arange(1, len(history.get(metric, [])) + 1)
            # markers: a run of one epoch is a single point, invisible as a line alone
            if metric in history:
                axis.plot(epochs, history[metric], "--", marker="o", markersize=3, color=colour,
                          alpha=0.6, label=f"{name} train")
            if f"val_{metric}" in history:
                axis.plot(epochs, history[f"val_{metric}"], "-", marker="o", markersize=4,
                          color=colour, label=f"{name} val (PublicTest)")
        for label, epoch in (phase_starts or {}).items():
            axis.axvline(epoch - 0.5, color="gray", linestyle=":")
            axis.annotate(label, (epoch - 0.5, 1), xycoords=("data", "axes fraction"),
                          xytext=(3, -12), textcoords="offset points", fontsize=8, color="gray")
        axis.set(xlabel="epoch", ylabel=metric, title=metric)
        longest = max([len(h.get(metric, h.get(f"val_{metric}", []))) for h in histories.values()]
                      + [1])
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlim(0.5, longest + 0.5)  # epochs are whole numbers, one epoch too
        axis.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:  # one legend below the panels, never over the curves
        figure.legend(handles, labels, loc="outside lower center", fontsize=8,
                      ncol=min(len(labels), 4 if len(metrics) > 1 else 2))
    return figure


def grid_shape(count: int, max_columns: int = 3) -> tuple[int, int]:
    """``(rows, columns)`` for ``count`` panels: at most ``max_columns`` side by side."""
    columns = max(1, min(count, max_columns))
    return int(np.ceil(count / columns)), columns


def _panel_grid(count: int, panel: tuple, max_columns: int = 3, extra_width: float = 0.0):
    """``grid_shape`` panels of ``panel`` (width, height) inches; unused ones hidden."""
    rows, columns = grid_shape(count, max_columns)
    figure, axes = _pyplot().subplots(rows, columns, squeeze=False, layout="constrained",
                                      figsize=(panel[0] * columns + extra_width, panel[1] * rows))
    for axis in axes.ravel()[count:]:
        axis.axis("off")
    return figure, axes


def _wrap(text: str, width: int = 28) -> str:
    import textwrap

    return "\n".join(line for part in str(text).split("\n")
                     for line in (textwrap.wrap(part, width) or [""]))


def confusion_matrices(matrices: dict, normalize: bool = True, max_columns: int = 3):
    """Confusion matrices in a grid (3 per row): ``{title: 7x7 counts}``; rows are true classes.

    Each panel keeps its size whatever the number of models (2-10 stay legible); class names
    label only the outer panels' axes.
    """
    import seaborn as sns

    figure, axes = _panel_grid(len(matrices), (4.3, 4.4), max_columns, extra_width=0.6)
    columns = axes.shape[1]
    for index, (axis, (title, matrix)) in enumerate(zip(axes.ravel(), matrices.items())):
        row, column = divmod(index, columns)
        matrix = np.asarray(matrix, dtype=float)
        shown = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1) if normalize else matrix
        sns.heatmap(shown, annot=True, fmt=".2f" if normalize else ".0f", cmap="Blues",
                    vmin=0, vmax=1 if normalize else None, cbar=False, ax=axis, square=True,
                    xticklabels=CLASS_NAMES, yticklabels=CLASS_NAMES, annot_kws={"fontsize": 9})
        axis.set_title(_wrap(title, 40), fontsize=10)
        axis.tick_params(axis="x", rotation=90, labelsize=9)  # upright boxes never collide
        axis.tick_params(axis="y", rotation=0, labelsize=9)
        last_in_column = index + columns >= len(matrices)
        axis.set_xlabel("predicted" if last_in_column else "")
        axis.set_ylabel("true" if column == 0 else "")
        if not last_in_column:
            axis.set_xticklabels([])
        if column:
            axis.set_yticklabels([])
    return figure


def reliability_diagrams(reliabilities: dict):
    """Reliability diagrams side by side: ``{title: evaluation.reliability(...)}``."""
    figure, axes = _panel_grid(len(reliabilities), (4.0, 4.0))  # 3 a row: long titles stay apart
    for axis, (title, rows) in zip(axes.ravel(), reliabilities.items()):
        edges = np.array(rows["edges"])
        centres = (edges[:-1] + edges[1:]) / 2
        accuracy = np.array([a if a is not None else np.nan for a in rows["accuracy"]])
        axis.bar(centres, accuracy, width=edges[1] - edges[0], edgecolor="black", alpha=0.7)
        axis.plot([0, 1], [0, 1], "--", color="gray")
        axis.set(xlabel="confidence", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1))
        axis.set_title(_wrap(title, 36), fontsize=10)
    return figure


def accuracy_intervals(intervals: dict, title: str = "accuracy with bootstrap 95% CI"):
    """Accuracy and its confidence interval per model: ``{name: (accuracy, low, high)}``."""
    names = list(intervals)
    values = np.array([intervals[name] for name in names], dtype=float).reshape(-1, 3)
    figure, axis = _pyplot().subplots(figsize=(8, 0.5 * len(names) + 1.5))
    positions = np.arange(len(names))[::-1]
    errors = np.abs(np.vstack([values[:, 0] - values[:, 1], values[:, 2] - values[:, 0]]))
    axis.errorbar(values[:, 0], positions, xerr=errors, fmt="o", capsize=4)
    for position, (accuracy, _, high) in zip(positions, values):
        axis.annotate(f"{accuracy:.3f}", (high, position), xytext=(5, 0),
                      textcoords="offset points", va="center", fontsize=8)
    axis.set_yticks(positions, [_wrap(name, 34) for name in names])
    low, high = np.nanmin(values[:, 1]), np.nanmax(values[:, 2])
    span = max(high - low, 0.02)
    axis.set_xlim(low - 0.08 * span, high + 0.3 * span)  # room for the value labels
    axis.set_ylim(-0.7, len(names) - 0.3)
    axis.set(xlabel="accuracy")
    axis.set_title(_wrap(title, 70), fontsize=10)
    axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return figure


def per_class_heatmap(scores: dict, title: str = "per-class F1", metric: str = "F1"):
    """A models x classes heatmap of a per-class score: ``{name: {class: value}}``."""
    import seaborn as sns

    names = list(scores)
    matrix = np.array([[scores[name].get(c, np.nan) for c in CLASS_NAMES] for name in names],
                      dtype=float)
    figure, axis = _pyplot().subplots(figsize=(8, 0.5 * len(names) + 1.6))
    sns.heatmap(matrix, annot=True, fmt=".2f", cmap="viridis", vmin=0, vmax=1, ax=axis,
                xticklabels=CLASS_NAMES, yticklabels=names, cbar_kws={"label": metric},
                annot_kws={"fontsize": 8})
    axis.set(title=title)
    axis.tick_params(axis="y", rotation=0)
    figure.tight_layout()
    return figure


def accuracy_latency_size(points: dict, title: str = "accuracy vs latency vs size",
                          latency_label: str = "ms per image (batch 1)"):
    """Trade-off scatter: ``{name: {"accuracy", "latency_ms", "size_mb"}}``; area is size.

    Names and sizes are in a legend beside the axes (labels next to the points overlapped once
    models sat close together); the limits leave room for the largest bubble.
    """
    from matplotlib import ticker

    plt = _pyplot()
    shown = {name: p for name, p in points.items()
             if p.get("latency_ms") is not None and p.get("accuracy") is not None}
    figure, axis = plt.subplots(figsize=(9.5, 4.8), layout="constrained")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    markers = "osD^vP*Xh<>"
    largest = max([p.get("size_mb") or 0 for p in shown.values()] + [1e-9])
    for index, (name, point) in enumerate(shown.items()):
        area = 40 + 700 * (point.get("size_mb") or 0) / largest
        size_text = f"{point['size_mb']:.2f} MB" if point.get("size_mb") else "size n/a"
        axis.scatter(point["latency_ms"], point["accuracy"], s=area, alpha=0.6,
                     color=colours[index % len(colours)], edgecolor="black",
                     marker=markers[index // len(colours) % len(markers)],
                     label=f"{_wrap(name, 34)}\n{size_text}")
    axis.set_xscale("log")
    if shown:
        latencies = np.array([p["latency_ms"] for p in shown.values()], dtype=float)
        accuracies = np.array([p["accuracy"] for p in shown.values()], dtype=float)
        low, high = latencies.min(), latencies.max()
        factor = max(1.6, (high / low) ** 0.15)  # room for a bubble's radius in log space
        axis.set_xlim(low / factor, high * factor)
        span = max(accuracies.max() - accuracies.min(), 0.02)
        axis.set_ylim(accuracies.min() - 0.25 * span, accuracies.max() + 0.25 * span)
    axis.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=12))
    axis.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    axis.xaxis.set_minor_formatter(ticker.NullFormatter())
    axis.set(xlabel=f"{latency_label}, log scale", ylabel="accuracy")
    axis.set_title(_wrap(title, 70), fontsize=10)
    axis.grid(alpha=0.3, which="both")
    if shown:
        figure.legend(loc="outside right upper", fontsize=8, labelspacing=1.1, borderpad=0.8,
                    markerscale=0.5, title="model, file size")
    return figure
