"""Data plots: the figures of notebook 01 that look at the data itself (class balance, sample
faces, mean faces, pixel statistics, strips of chosen faces), each a function returning a
Matplotlib figure."""

from __future__ import annotations

import numpy as np

from emolib import CLASS_NAMES


def class_balance(dataset):
    """Bar chart of images per class, one colour per split (seaborn)."""
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    rows = [{"split": split, "class": name, "images": n}
            for split, counts in dataset.counts().items() for name, n in counts.items()]
    figure, axis = plt.subplots(figsize=(9, 4))
    sns.barplot(data=pd.DataFrame(rows), x="class", y="images", hue="split", ax=axis)
    axis.set_title("Images per class and split")
    for container in axis.containers:
        axis.bar_label(container, fontsize=7)
    figure.tight_layout()
    return figure


def sample_grid(images: np.ndarray, labels: np.ndarray, per_class: int = 8, seed: int = 0,
                predictions: np.ndarray | None = None):
    """A row of random faces per class (titles show predictions when given)."""
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    figure, axes = plt.subplots(len(CLASS_NAMES), per_class,
                                figsize=(per_class * 1.1, len(CLASS_NAMES) * 1.25))
    for row, name in enumerate(CLASS_NAMES):
        index = np.flatnonzero(labels == row)
        chosen = rng.choice(index, size=min(per_class, len(index)), replace=False) if len(index) else []
        for column in range(per_class):
            axis = axes[row, column]
            axis.axis("off")
            if column < len(chosen):
                axis.imshow(np.squeeze(images[chosen[column]]), cmap="gray", vmin=0, vmax=255)
                if predictions is not None:
                    predicted = CLASS_NAMES[predictions[chosen[column]]]
                    axis.set_title(predicted, fontsize=7,
                                   color="green" if predicted == name else "red")
        axes[row, 0].text(-0.15, 0.5, name, transform=axes[row, 0].transAxes, ha="right",
                          va="center", fontsize=10)
    figure.tight_layout()
    return figure


def mean_faces(images: np.ndarray, labels: np.ndarray):
    """The mean face of each class, and how it differs from the overall mean face.

    The difference is computed on per-image standardised faces, so it shows shape (mouth, brows)
    rather than the brightness differences between classes.
    """
    import matplotlib.pyplot as plt

    images = np.squeeze(images).astype(np.float32)
    flat = images.reshape(len(images), -1)
    standardised = ((flat - flat.mean(axis=1, keepdims=True))
                    / np.maximum(flat.std(axis=1, keepdims=True), 1.0)).reshape(images.shape)
    overall = standardised.mean(axis=0)
    figure, axes = plt.subplots(2, len(CLASS_NAMES), figsize=(len(CLASS_NAMES) * 1.6, 3.6))
    for column, name in enumerate(CLASS_NAMES):
        members = images[labels == column]
        mean = members.mean(axis=0) if len(members) else np.zeros(images.shape[1:])
        shape = (standardised[labels == column].mean(axis=0) if len(members)
                 else np.zeros_like(overall))
        axes[0, column].imshow(mean, cmap="gray", vmin=0, vmax=255)
        axes[0, column].set_title(f"{name}\n(n={len(members)})", fontsize=9)
        axes[1, column].imshow(shape - overall, cmap="RdBu_r", vmin=-0.4, vmax=0.4)
        for axis in axes[:, column]:
            axis.axis("off")
    axes[1, 0].text(-0.15, 0.5, "minus\nmean", transform=axes[1, 0].transAxes, ha="right",
                    va="center", fontsize=9)
    figure.tight_layout()
    return figure


def pixel_statistics(images: np.ndarray, labels: np.ndarray):
    """Histogram of pixel values and per-image brightness / contrast by class."""
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    flat = images.reshape(len(images), -1).astype(np.float32)
    frame = pd.DataFrame({"class": np.array(CLASS_NAMES)[labels],
                          "brightness": flat.mean(axis=1), "contrast": flat.std(axis=1)})
    figure, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    axes[0].hist(flat[:: max(1, len(flat) // 2000)].ravel(), bins=64, color="gray")
    axes[0].set(title="Pixel values (sample)", xlabel="grey level", ylabel="pixels")
    sns.boxplot(data=frame, x="class", y="brightness", ax=axes[1], fliersize=1)
    sns.boxplot(data=frame, x="class", y="contrast", ax=axes[2], fliersize=1)
    axes[1].set_title("Mean grey level per image")
    axes[2].set_title("Contrast (std) per image")
    for axis in axes[1:]:
        axis.tick_params(axis="x", rotation=45)
    figure.tight_layout()
    return figure


def image_strip(images: np.ndarray, titles: list[str], columns: int = 10):
    """A few faces in a row (or rows), each with a title: duplicates, blank images, mistakes."""
    import matplotlib.pyplot as plt

    rows = max(1, int(np.ceil(len(images) / columns)))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.2, rows * 1.45),
                                squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, image, title in zip(axes.ravel(), images, titles):
        axis.imshow(np.squeeze(image), cmap="gray", vmin=0, vmax=255)
        axis.set_title(title, fontsize=7)
    figure.tight_layout()
    return figure
