"""Figures people can read: no text box overlaps another or leaves the figure, for 2 and 10
models (what matplotlib itself can tell: the drawn text's bounding boxes), and where models
look (notebook 04's heatmap figures)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from emolib import CLASS_NAMES, explain_plots, plots


def model_names(count: int) -> list[str]:
    stems = ["cpu-emonet", "cpu-mobilenet_v2", "cpu-seed_cnn", "default (shipped)",
             "fer (peer)", "quick-emonet-augment-faces", "ensemble (cpu-emonet + cpu-mobilenet_v2)",
             "default (shipped) · TFLite int8", "default (shipped) · TFLite float16", "sweep-lr-3e-3"]
    return stems[:count]


def drawn_texts(figure) -> list:
    """``(text, bbox)`` of every visible, non-empty text drawn in ``figure`` (pixels)."""
    import matplotlib.text

    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    hidden = set()  # labels of ticks outside the view limits exist but are not drawn
    for axes in figure.axes:
        for axis in (axes.xaxis, axes.yaxis):
            low, high = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not low - 1e-9 * abs(high) <= tick.get_loc() <= high + 1e-9 * abs(high):
                    hidden.update({id(tick.label1), id(tick.label2)})
    found = []
    for artist in figure.findobj(matplotlib.text.Text):
        if not artist.get_visible() or not artist.get_text().strip() or id(artist) in hidden:
            continue
        axes = artist.axes
        if axes is not None and not axes.get_visible():
            continue
        found.append((artist.get_text(), artist.get_window_extent(renderer), axes))
    return found


def layout_problems(figure, tolerance: float = 1.0) -> list[str]:
    """Texts overlapping each other or sticking out of the figure."""
    texts = drawn_texts(figure)
    width, height = figure.bbox.width, figure.bbox.height
    problems = [f"{text!r} outside the figure" for text, box, _ in texts
                if box.x0 < -tolerance or box.y0 < -tolerance or box.x1 > width + tolerance
                or box.y1 > height + tolerance]

    def overlap(a, b) -> bool:
        return (min(a.x1, b.x1) - max(a.x0, b.x0) > tolerance
                and min(a.y1, b.y1) - max(a.y0, b.y0) > tolerance)

    for (text_a, a, _), (text_b, b, _) in itertools.combinations(texts, 2):
        if overlap(a, b):
            problems.append(f"{text_a!r} overlaps {text_b!r}")
    panels = [axes for axes in figure.axes if axes.get_visible() and axes.axison]
    for text, box, owner in texts:  # a title or label over another panel's plot area
        for axes in panels:
            if axes is not owner and overlap(box, axes.get_window_extent()):
                problems.append(f"{text!r} covers the panel {axes.get_title()!r}")
    return problems


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.mark.parametrize("count", [2, pytest.param(10, marks=pytest.mark.slow)])
def test_confusion_matrices_grid_is_legible(count):
    rng = np.random.default_rng(count)
    matrices = {f"{name}\ntest (PrivateTest)": rng.integers(0, 300, (7, 7))
                for name in model_names(count)}
    figure = plots.confusion_matrices(matrices)
    assert layout_problems(figure) == []
    rows, columns = plots.grid_shape(count)
    assert columns <= 3 and figure.get_size_inches()[0] < 15  # a grid, not one long row
    # cell numbers at least 9 pt: ~12 px at the 110 dpi of save_figure
    numbers = [t for t in figure.axes[0].texts if t.get_text().startswith("0.")]
    assert len(numbers) == 49 and min(t.get_fontsize() for t in numbers) >= 9


@pytest.mark.parametrize("count", [2, 4, 10])
def test_reliability_diagrams_keep_long_titles_apart(count):
    """Four in one row ran long model names into each other (seen in the browser screenshots)."""
    edges = np.linspace(0, 1, 11)
    rows = {"edges": edges.tolist(), "accuracy": [None, None, 0.3, 0.35, 0.45, 0.5, 0.62, 0.7, 0.8, 0.9]}
    figure = plots.reliability_diagrams(
        {f"{name}\nECE 0.0{i} on test (PrivateTest)": rows for i, name in enumerate(model_names(count))})
    assert layout_problems(figure) == []
    assert figure.get_size_inches()[0] <= 12.5  # a grid of at most 3 a row


@pytest.mark.parametrize("count", [2, 10])
def test_accuracy_latency_size_labels_and_bubbles_fit(count):
    rng = np.random.default_rng(count)
    points = {name: {"accuracy": 0.6 + 0.005 * index, "latency_ms": float(rng.uniform(0.5, 9)),
                     "size_mb": float(rng.uniform(0.5, 12))}
              for index, name in enumerate(model_names(count))}
    figure = plots.accuracy_latency_size(points, title="test (PrivateTest) accuracy vs latency "
                                         "(batch 1, this CPU) vs size")
    assert layout_problems(figure) == []
    axis = figure.axes[0]
    renderer = figure.canvas.get_renderer()
    box = axis.get_window_extent(renderer)
    for collection in axis.collections:  # every bubble inside the axes, the largest too
        (x, y), = axis.transData.transform(collection.get_offsets())[:1]
        radius = np.sqrt(collection.get_sizes()[0]) / 2 * figure.dpi / 72
        assert box.x0 <= x - radius and x + radius <= box.x1, collection.get_label()
        assert box.y0 <= y - radius and y + radius <= box.y1, collection.get_label()


@pytest.mark.parametrize("count", [2, 10])
def test_learning_curves_show_one_epoch_runs(count):
    histories = {name: {"accuracy": [0.3], "val_accuracy": [0.31], "loss": [1.7],
                        "val_loss": [1.6]} for name in model_names(count)}
    figure = plots.learning_curves(histories)
    assert layout_problems(figure) == []
    lines = [line for line in figure.axes[0].lines if not line.get_label().startswith("_")]
    assert len(lines) == 2 * count and all(line.get_marker() == "o" for line in lines)


@pytest.mark.parametrize("count", [2, 10])
def test_accuracy_intervals_value_labels_stay_inside(count):
    intervals = {name: (0.6 + 0.01 * index, 0.58 + 0.01 * index, 0.62 + 0.01 * index)
                 for index, name in enumerate(model_names(count))}
    figure = plots.accuracy_intervals(intervals, title="test (PrivateTest) accuracy with "
                                      "bootstrap 95% CI (n=3589)")
    assert layout_problems(figure) == []
    axis = figure.axes[0]
    renderer = figure.canvas.get_renderer()
    frame = axis.get_window_extent(renderer)
    for text in axis.texts:  # the value labels stay inside the frame
        label = text.get_window_extent(renderer)
        assert frame.x0 <= label.x0 and label.x1 <= frame.x1, text.get_text()


def test_where_models_look_figures():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (30, 48, 48, 1))
    labels = np.arange(30) % 7
    means = {name: rng.uniform(0, 1, (7, 48, 48)) for name in model_names(3)}
    figure = explain_plots.class_heatmaps(means, images, labels, title="Grad-CAM, PublicTest")
    assert layout_problems(figure) == []
    assert len(figure.axes) == 3 * len(CLASS_NAMES)
    probabilities = rng.dirichlet(np.ones(7), 30)
    chosen = explain_plots.confident_errors(probabilities, labels, count=4)
    predicted = probabilities.argmax(1)
    assert np.all(predicted[chosen] != labels[chosen])
    confidence = probabilities[chosen, predicted[chosen]]
    assert np.all(np.diff(confidence) <= 0)
    errors = {name: (images[chosen], rng.uniform(0, 1, (4, 48, 48)), labels[chosen],
                     predicted[chosen], confidence) for name in model_names(2)}
    figure = explain_plots.error_gallery(errors)
    assert layout_problems(figure) == []
