"""The shipped default model: present, small, loadable in safe mode, honest about its numbers."""

from __future__ import annotations


import numpy as np
import pytest

from conftest import ROOT
from emolib import models


def test_default_model_is_shipped_small_and_follows_the_contract():
    assert models.DEFAULT_MODEL.exists(), "emolib/assets/emonet.keras is missing"
    assert models.DEFAULT_MODEL.stat().st_size <= 10 * 1024 * 1024
    model = models.load_model()  # no path: the default, safe_mode=True
    faces = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 1)).astype(np.uint8)
    probabilities = model.predict(faces, verbose=0)
    assert probabilities.shape == (4, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)


def test_default_metrics_follow_the_protocol_and_match_the_readme():
    metrics = models.default_metrics()
    assert metrics["profile"] == "cpu" and metrics["test"]["split"] == "test"
    assert metrics["val"]["split"] == "val" and metrics["test"]["n"] == 3589
    assert "selected on PublicTest" in metrics["protocol"]
    readme = (ROOT / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| EmoNet (shipped"))
    assert f"{metrics['test']['accuracy'] * 100:.1f}%" in row
    assert f"{metrics['test']['macro_f1']:.3f}" in row


@pytest.mark.data
def test_default_model_scores_what_its_metrics_say(fer2013_path):
    from emolib import datasets, evaluation

    x_test, y_test = datasets.load(fer2013_path, progress=False).split("test")
    accuracy = evaluation.classification_metrics(
        y_test, evaluation.predict_proba(models.load_model(), x_test))["accuracy"]
    assert accuracy == pytest.approx(models.default_metrics()["test"]["accuracy"], abs=0.002)
