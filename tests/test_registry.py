"""The model registry: every kind of name finds the same model in ``evaluate`` and ``predict``,
and a wrong model gets the same one-line error from both."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from emolib import cli, export, models, registry
from emolib.classifier import EmotionClassifier
from emolib.errors import EmolibError
from emolib.paths import outputs_dir


def tiny_emonet(seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    return models.build_emonet(widths=(4, 8, 8, 8), dense_units=8)


@pytest.fixture
def no_default(monkeypatch, tmp_path):
    """No shipped default model: the rule falls back to the newest run."""
    monkeypatch.setattr(models, "DEFAULT_MODEL", tmp_path / "assets" / "emonet.keras")


@pytest.fixture
def two_runs(no_default):
    """Finished runs ``old-emonet`` and ``new-emonet`` (newer), and a float32 .tflite copy."""
    runs = {}
    for age, name in ((100, "old-emonet"), (0, "new-emonet")):
        directory = outputs_dir("runs", name)
        tiny_emonet(seed=age).save(directory / "model.keras")
        os.utime(directory / "model.keras", (1e9 - age, 1e9 - age))
        runs[name] = directory
    export.to_tflite(models.load_model(runs["old-emonet"] / "model.keras"),
                     runs["old-emonet"] / "copy.tflite", quantization="float32")
    return runs


def evaluate_path(capsys, spec, data) -> str:
    """The model file ``evaluate`` scored for ``spec`` (None: no model named)."""
    argv = ["evaluate", *([spec] if spec is not None else []), "--data", str(data), "--json",
            "--no-latency", "--max-images", "3"]
    status = cli.main(argv)
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return json.loads(captured.out)["models"][0]["path"]


@pytest.mark.slow
def test_every_kind_of_name_finds_the_same_model_in_evaluate_and_predict(
        capsys, two_runs, kaggle_folder):
    old, new = two_runs["old-emonet"], two_runs["new-emonet"]
    cases = {None: new / "model.keras",  # nothing: no default shipped, so the newest run
             "old-emonet": old / "model.keras",  # a run name
             str(old): old / "model.keras",  # a run folder
             str(old / "model.keras"): old / "model.keras",  # a .keras file
             str(old / "copy.tflite"): old / "copy.tflite"}  # a .tflite file
    for spec, expected in cases.items():
        assert registry.resolve(spec).path == expected
        assert evaluate_path(capsys, spec, kaggle_folder) == str(expected)
        classifier = EmotionClassifier(spec or "", backend="keras")  # what predict runs
        assert str(expected) in classifier.note or expected.name in classifier.note
        weights = registry.load(spec).predict(np.full((2, 48, 48, 1), 90, np.uint8))
        np.testing.assert_allclose(classifier(np.full((2, 48, 48, 1), 90, np.uint8)), weights,
                                   atol=1e-4)  # the same model, not just the same name


def test_no_model_prefers_the_shipped_default_and_says_which(two_runs):
    models.DEFAULT_MODEL.parent.mkdir()
    tiny_emonet().save(models.DEFAULT_MODEL)
    found = registry.resolve(None)
    assert found.path == models.DEFAULT_MODEL and "shipped default" in found.note
    assert registry.find_models()[:2] == [models.DEFAULT_MODEL,
                                          two_runs["new-emonet"] / "model.keras"]
    models.DEFAULT_MODEL.unlink()
    assert "newest trained run" in registry.resolve("").note


def one_error_line(capsys, argv) -> str:
    status = cli.main(argv)
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize("wrong", ["not-a-model", "other.keras"])
def test_a_wrong_model_gets_the_same_one_line_error_from_evaluate_and_predict(
        capsys, tmp_path, kaggle_folder, wrong, no_default):
    import keras

    spec = wrong if wrong == "not-a-model" else str(tmp_path / wrong)
    if wrong == "other.keras":  # loads, but is not an emolib model (32x32x3 -> 10)
        keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                          keras.layers.Dense(10)]).save(spec)
    image = tmp_path / "face.png"
    cv2.imwrite(str(image), np.full((96, 96), 128, np.uint8))
    from_evaluate = one_error_line(capsys, ["evaluate", spec, "--data", str(kaggle_folder)])
    from_predict = one_error_line(capsys, ["predict", str(image), "--model", spec])
    assert from_evaluate == from_predict
    expected = "no such model file" if wrong == "not-a-model" else "48x48x1 pixels"
    assert expected in from_evaluate
    with pytest.raises(EmolibError, match=expected):
        registry.load(spec)
