"""Evaluation metrics, test-time augmentation, ensembles, latency (costs) and the TFLite export."""

from __future__ import annotations

import numpy as np
import pytest

from emolib import CLASS_NAMES, costs, evaluation, export, models, shipping
from emolib.errors import EmolibError

NUM_CLASSES = len(CLASS_NAMES)


def one_hot(labels, confidence=1.0):
    """Probabilities putting ``confidence`` on each label and the rest spread evenly."""
    labels = np.asarray(labels)
    rest = (1 - confidence) / (NUM_CLASSES - 1)
    probabilities = np.full((len(labels), NUM_CLASSES), rest)
    probabilities[np.arange(len(labels)), labels] = confidence
    return probabilities


def tiny_emonet(seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    return models.build_emonet(widths=(4, 8, 8, 8), dense_units=8)


def random_faces(count, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, 48, 48, 1)).astype(np.uint8)


# --------------------------------------------------------------------------- metrics

def test_confidence_interval_contains_accuracy_and_narrows_with_more_images():
    rng = np.random.default_rng(1)
    widths = []
    for n in (100, 10_000):
        correct = (rng.random(n) < 0.7).astype(float)
        low, high = evaluation.bootstrap_accuracy_ci(correct)
        assert low <= correct.mean() <= high
        widths.append(high - low)
    assert widths[1] < widths[0] / 5  # ~1/sqrt(n): 10x narrower for 100x the images


def test_confidence_interval_matches_the_binomial_standard_error():
    correct = np.r_[np.ones(600), np.zeros(400)]
    low, high = evaluation.bootstrap_accuracy_ci(correct, samples=20_000)
    standard_error = np.sqrt(0.6 * 0.4 / 1000)
    assert (high - low) / 2 == pytest.approx(1.96 * standard_error, rel=0.1)


def test_confidence_interval_rejects_non_binary_input():
    with pytest.raises(ValueError):
        evaluation.bootstrap_accuracy_ci(np.array([0.2, 0.9]))


def test_ece_is_zero_when_confidence_equals_accuracy():
    labels = np.zeros(100, dtype=int)
    assert evaluation.expected_calibration_error(labels, one_hot(labels)) == pytest.approx(0)
    # Confidence 0.6 and exactly 60% right: calibrated too.
    predicted = np.r_[np.zeros(60, int), np.ones(40, int)]
    probabilities = one_hot(predicted, confidence=0.6)
    assert evaluation.expected_calibration_error(labels, probabilities) == pytest.approx(0, abs=1e-9)


def test_ece_measures_overconfidence():
    labels = np.zeros(100, dtype=int)
    predicted = np.r_[np.zeros(50, int), np.ones(50, int)]  # 50% right at 0.9 confidence
    ece = evaluation.expected_calibration_error(labels, one_hot(predicted, confidence=0.9))
    assert ece == pytest.approx(0.4)


def test_classification_metrics_per_class_and_macro_f1():
    labels = np.array([0, 0, 0, 0, 3, 3])
    predictions = np.array([0, 0, 3, 3, 3, 3])  # angry: P 1, R .5; happy: P .5, R 1
    metrics = evaluation.classification_metrics(labels, one_hot(predictions))
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["precision"]["angry"] == 1.0 and metrics["recall"]["angry"] == 0.5
    assert metrics["precision"]["happy"] == 0.5 and metrics["recall"]["happy"] == 1.0
    # Both present classes have F1 = 2/3; absent classes do not drag the average down.
    assert metrics["macro_f1"] == pytest.approx(2 / 3)
    assert metrics["support"]["angry"] == 4 and metrics["support"]["disgust"] == 0
    assert np.array(metrics["confusion"]).sum() == 6 and metrics["confusion"][0][3] == 2
    low, high = metrics["accuracy_ci95"]
    assert low <= metrics["accuracy"] <= high


def test_classification_metrics_refuse_wrong_shapes_and_empty_splits():
    with pytest.raises(ValueError, match="shape"):
        evaluation.classification_metrics(np.array([0, 1]), np.ones((2, 6)) / 6)
    with pytest.raises(ValueError, match="empty"):
        evaluation.classification_metrics(np.array([], int), np.zeros((0, 7)))


def test_mcnemar_on_constructed_cases():
    labels = np.zeros(30, dtype=int)
    # A right on 10 images where B is wrong, never the other way: p = 2 / 2**10.
    predictions_a = np.zeros(30, dtype=int)
    predictions_b = np.r_[np.ones(10, int), np.zeros(20, int)]
    result = evaluation.mcnemar(labels, predictions_a, predictions_b)
    assert (result["only_a_correct"], result["only_b_correct"]) == (10, 0)
    assert result["p_value"] == pytest.approx(2 / 2**10)
    # Balanced disagreements: no evidence of a difference.
    predictions_b = np.r_[np.ones(5, int), np.zeros(25, int)]
    predictions_a = np.r_[np.zeros(5, int), np.ones(5, int), np.zeros(20, int)]
    assert evaluation.mcnemar(labels, predictions_a, predictions_b)["p_value"] == pytest.approx(1)
    # Same predictions: nothing discordant.
    assert evaluation.mcnemar(labels, predictions_a, predictions_a)["p_value"] == 1.0


def test_mcnemar_matches_scipy_binomial_test():
    scipy_stats = pytest.importorskip("scipy.stats")
    labels = np.zeros(200, dtype=int)
    rng = np.random.default_rng(3)
    predictions_a = (rng.random(200) < 0.3).astype(int)
    predictions_b = (rng.random(200) < 0.45).astype(int)
    result = evaluation.mcnemar(labels, predictions_a, predictions_b)
    expected = scipy_stats.binomtest(result["only_a_correct"],
                                     result["only_a_correct"] + result["only_b_correct"]).pvalue
    assert result["p_value"] == pytest.approx(expected, rel=1e-6)


def test_pairwise_mcnemar_covers_every_pair():
    labels = np.zeros(10, dtype=int)
    probabilities = {name: one_hot(np.zeros(10, int)) for name in "abc"}
    rows = evaluation.pairwise_mcnemar(labels, probabilities)
    assert [(r["model_a"], r["model_b"]) for r in rows] == [("a", "b"), ("a", "c"), ("b", "c")]


# --------------------------------------------------------------------------- TTA and ensembles

def test_tta_views_count_and_shape():
    images = random_faces(3).astype(np.float32)
    for tta, count in ((None, 1), ("flip", 2), ("crops", 5), ("flip+crops", 10)):
        views = evaluation.tta_views(images, tta)
        assert len(views) == count
        assert all(view.shape == images.shape for view in views)
    np.testing.assert_array_equal(evaluation.tta_views(images, "flip")[1], images[:, :, ::-1])
    with pytest.raises(ValueError, match="unknown tta"):
        evaluation.tta_views(images, "rotate")


def test_flip_tta_changes_nothing_for_a_mirror_symmetric_model():
    import keras
    from keras import layers

    # Global average pooling forgets where things are, so mirrored faces score the same.
    inputs = keras.Input((48, 48, 1))
    x = layers.Rescaling(1 / 255)(inputs)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax")(x)
    symmetric = keras.Model(inputs, outputs)
    images = random_faces(8)
    plain = evaluation.predict_proba(symmetric, images)
    flipped = evaluation.predict_proba(symmetric, images, tta="flip")
    np.testing.assert_allclose(flipped, plain, atol=1e-6)


def test_flip_tta_averages_the_model_over_the_mirrored_face():
    model = tiny_emonet()
    images = random_faces(6)
    expected = (model.predict(images.astype(np.float32), verbose=0)
                + model.predict(images[:, :, ::-1].astype(np.float32), verbose=0)) / 2
    np.testing.assert_allclose(evaluation.predict_proba(model, images, tta="flip"), expected,
                               atol=1e-5)
    probabilities = evaluation.predict_proba(model, images[..., 0], tta="flip+crops")  # (n,48,48)
    assert probabilities.shape == (6, NUM_CLASSES)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)


def test_ensemble_of_identical_models_equals_the_model():
    model = tiny_emonet()
    images = random_faces(5)
    single = evaluation.predict_proba(model, images)
    ensemble = evaluation.ensemble_proba([evaluation.predict_proba(m, images) for m in (model, model)])
    np.testing.assert_allclose(ensemble, single, atol=1e-7)


def test_select_ensemble_starts_from_the_best_and_stops_when_nothing_helps():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, NUM_CLASSES, 300)
    good = one_hot(np.where(rng.random(300) < 0.8, labels, (labels + 1) % NUM_CLASSES), 0.7)
    noise = rng.dirichlet(np.ones(NUM_CLASSES), 300)
    members = evaluation.select_ensemble(labels, {"noise": noise, "good": good, "copy": good.copy()})
    assert members[0] == "good"
    assert "noise" not in members and len(members) == 1  # a copy adds nothing


def test_select_tta_prefers_the_cheapest_of_equal_scores():
    labels = np.array([0, 1, 2])
    right = one_hot(labels)
    assert evaluation.select_tta(labels, {"flip": right, None: right}) is None
    assert evaluation.select_tta(labels, {None: one_hot([0, 0, 0]), "flip": right}) == "flip"


# --------------------------------------------------------------------------- cost

def test_latency_and_size_of_a_keras_model(tmp_path):
    model = tiny_emonet()
    latency = costs.latency_ms(model, batch_sizes=(1, 8), repeats=3)
    assert set(latency) == {"batch_1", "batch_8"} and all(v > 0 for v in latency.values())
    path = tmp_path / "tiny.keras"
    model.save(path)
    size = costs.model_size(model, path)
    assert size["parameters"] == model.count_params()
    assert size["size_mb"] == pytest.approx(path.stat().st_size / 2**20, abs=1e-3)


# --------------------------------------------------------------------------- TFLite

@pytest.mark.slow
def test_tflite_float16_agrees_with_keras(tmp_path):
    model = tiny_emonet()
    path = export.to_tflite(model, tmp_path / "tiny-f16.tflite", quantization="float16")
    lite = export.TFLiteModel(path)
    images = random_faces(20, seed=1)
    expected = model.predict(images.astype(np.float32), verbose=0)
    got = lite.predict(images, batch_size=8)  # 8, 8, 4: the tensor is resized between batches
    assert got.shape == (20, NUM_CLASSES)
    np.testing.assert_allclose(got, expected, atol=2e-3)
    assert lite.size_bytes == path.stat().st_size
    assert costs.latency_ms(lite, batch_sizes=(1, 4), repeats=3)["batch_1"] > 0
    assert evaluation.predict_proba(lite, images, tta="flip").shape == (20, NUM_CLASSES)


@pytest.mark.slow
def test_tflite_int8_takes_raw_pixels_and_stays_close(tmp_path):
    model = tiny_emonet()
    calibration = random_faces(64, seed=2)
    path = export.to_tflite(model, tmp_path / "tiny-int8.tflite", quantization="int8",
                            representative_images=calibration)
    lite = export.TFLiteModel(path)
    assert "uint8" in repr(lite)
    images = random_faces(16, seed=3)
    got = lite.predict(images)
    np.testing.assert_allclose(got.sum(axis=1), 1, atol=0.05)
    np.testing.assert_allclose(got, model.predict(images.astype(np.float32), verbose=0), atol=0.05)
    with pytest.raises(ValueError, match="representative"):
        export.to_tflite(model, tmp_path / "x.tflite", quantization="int8")


def test_tflite_model_errors_name_the_file(tmp_path):
    with pytest.raises(EmolibError, match="not found"):
        export.TFLiteModel(tmp_path / "missing.tflite")
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer")
    with pytest.raises(EmolibError, match="junk.tflite"):
        export.TFLiteModel(junk)


def _finished_run(directory):
    """A run folder as ``training.save_run`` leaves it: model.keras and metrics.json."""
    import json

    directory.mkdir()
    model = tiny_emonet()
    model.save(directory / "model.keras")
    (directory / "metrics.json").write_text(json.dumps({"run": "tiny", "test": {"accuracy": 0.5}}))
    return model


@pytest.mark.slow
def test_ship_writes_the_model_its_int8_copy_and_scored_metrics(tmp_path):
    import json

    model = _finished_run(tmp_path / "run")
    destination = tmp_path / "assets" / "tiny.keras"
    faces, labels = random_faces(40, seed=4), np.arange(40) % NUM_CLASSES
    shipped = shipping.ship(tmp_path / "run", calibration_images=faces, val=(faces, labels),
                            test=(faces[:30], labels[:30]), destination=destination)
    written = json.loads(destination.with_suffix(".json").read_text())
    assert written == shipped and written["run"] == "tiny"  # the run's metrics are kept
    int8 = written["int8_tflite"]
    assert int8["file"] == "tiny-int8.tflite" and int8["val"]["n"] == 40 and int8["test"]["n"] == 30
    assert int8["bytes"] == (tmp_path / "assets" / "tiny-int8.tflite").stat().st_size
    expected = model.predict(faces.astype(np.float32), verbose=0)
    np.testing.assert_allclose(models.load_model(destination).predict(faces, verbose=0), expected,
                               atol=1e-5)
    assert sorted(p.name for p in destination.parent.iterdir()) == [
        "tiny-int8.tflite", "tiny.json", "tiny.keras"]


def test_ship_refuses_an_unfinished_run_and_leaves_the_shipped_files_alone(tmp_path):
    destination = tmp_path / "assets" / "tiny.keras"
    destination.parent.mkdir()
    destination.write_bytes(b"the model shipped before")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmolibError, match="model.keras: not found"):
        shipping.ship(tmp_path / "empty", calibration_images=random_faces(8), val=None, test=None,
                      destination=destination)
    with pytest.raises(EmolibError, match="model.keras: not found"):  # the old name, notebook 02's
        export.ship(tmp_path / "empty", calibration_images=random_faces(8), val=None, test=None,
                    destination=destination)
    _finished_run(tmp_path / "run")
    with pytest.raises(ValueError, match="representative"):  # fails after staging began
        shipping.ship(tmp_path / "run", calibration_images=random_faces(0), val=None, test=None,
                      destination=destination)
    assert destination.read_bytes() == b"the model shipped before"
    assert [p.name for p in destination.parent.iterdir()] == ["tiny.keras"]
