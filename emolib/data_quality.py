"""Data quality: pixel-identical duplicates, blank images, and the report of a dataset that
notebook 01 shows and ``python -m emolib data`` prints (counts per split and class, duplicates
within and across splits, blank, skipped and dropped files, the warnings its load gave).

    >>> from emolib import data_quality
    >>> report = data_quality.describe(datasets.load())
"""

from __future__ import annotations

import hashlib
import os
import warnings

import numpy as np

from emolib.datasets import Dataset, EmolibWarning, load


def find_duplicates(images: np.ndarray) -> list[np.ndarray]:
    """Groups (arrays of indices, size >= 2) of pixel-identical images."""
    flat = np.ascontiguousarray(images.reshape(len(images), -1))
    keys = np.array([hashlib.blake2b(row.tobytes(), digest_size=8).digest() for row in flat])
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    boundaries = np.cumsum(counts)[:-1]
    return [group for group in np.split(order, boundaries) if len(group) > 1]


def find_blank(images: np.ndarray, max_std: float = 3.0) -> np.ndarray:
    """Indices of (near-)uniform images: no face can be seen in them."""
    flat = images.reshape(len(images), -1).astype(np.float32)
    return np.flatnonzero(flat.std(axis=1) <= max_std)


def describe(dataset: Dataset) -> dict:
    """A JSON-ready report: counts per split and class, duplicates, blank and skipped files."""
    groups = find_duplicates(dataset.images)
    cross_split = [g for g in groups if len(set(dataset.splits[g])) > 1]
    conflicting = [g for g in groups if len(set(dataset.labels[g])) > 1]
    blank = find_blank(dataset.images)
    return {
        "source": dataset.source,
        "images": len(dataset),
        "split_note": dataset.split_note,
        "counts": dataset.counts(),
        "duplicates": {
            "groups": len(groups),
            "extra_copies": int(sum(len(g) - 1 for g in groups)),
            "groups_across_splits": len(cross_split),
            "groups_with_conflicting_labels": len(conflicting),
            "examples": [[str(dataset.files[i]) for i in g[:3]] for g in groups[:5]],
        },
        "blank": {"count": int(len(blank)),
                  "examples": [str(dataset.files[i]) for i in blank[:5]]},
        "skipped": {"count": len(dataset.skipped),
                    "examples": [f"{n} ({r})" for n, r in dataset.skipped[:5]]},
        "dropped_classes": dataset.dropped,
    }


def data_report(source: str | os.PathLike | None = None, *, progress: bool = True) -> dict:
    """``describe`` of the dataset at ``source`` (see ``datasets.find_data``) with the warnings
    its load gave (``EmolibWarning``: skipped files, missing splits, ...) under ``"warnings"``,
    recorded instead of shown: what ``python -m emolib data`` prints."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EmolibWarning)
        dataset = load(source, progress=progress)
    report = describe(dataset)
    report["warnings"] = [str(w.message) for w in caught if issubclass(w.category, EmolibWarning)]
    return report
