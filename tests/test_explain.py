"""Explanations: Grad-CAM must find the pixels a model decides on (synthetic faces whose class is
a bright patch in one quadrant), for every emolib architecture, and through an int8 copy."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from emolib import annotation, explain, export, models, registry
from emolib.errors import EmolibError

PATCH = 16
QUADRANT_CORNERS = {"top-left": (4, 4), "top-right": (4, 28), "bottom-left": (28, 4),
                    "bottom-right": (28, 28)}


def patch_faces(count: int, seed: int):
    """Noisy grey images with a bright 16x16 patch in each quadrant, each present at random;
    returns images (n, 48, 48, 1) and ``present`` {quadrant: (n,) bool}."""
    rng = np.random.default_rng(seed)
    images = np.clip(rng.normal(110, 25, (count, 48, 48)), 0, 255)
    present = {}
    for quadrant, (top, left) in QUADRANT_CORNERS.items():
        present[quadrant] = rng.random(count) < 0.5
        for index in np.flatnonzero(present[quadrant]):
            images[index, top:top + PATCH, left:left + PATCH] = rng.uniform(215, 250)
    return images[..., None].astype(np.float32), present


def tiny_patch_model():
    """A tiny model in the seed CNN's style (convolutions, then Flatten and Dense, so the head
    knows where a feature is) with emolib's contract: 48x48x1 pixels in, 7 probabilities out."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=models.INPUT_SHAPE)
    x = layers.Rescaling(1 / 255)(inputs)
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(models.NUM_CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="patchnet")


def train_patch_model(quadrant: str, seed: int = 0):
    """Learns "class 3 (happy) when the patch in ``quadrant`` is there, else class 0 (angry)":
    the other three patches are distractors. A few seconds on a free CPU."""
    import keras

    keras.utils.set_random_seed(seed)
    images, present = patch_faces(1000, seed)
    labels = np.where(present[quadrant], 3, 0)
    model = tiny_patch_model()
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images, labels, batch_size=32, epochs=5, verbose=0)
    return model


def inside(peaks: np.ndarray, quadrant: str) -> np.ndarray:
    top, left = QUADRANT_CORNERS[quadrant]
    return ((peaks[:, 0] >= top) & (peaks[:, 0] < top + PATCH)
            & (peaks[:, 1] >= left) & (peaks[:, 1] < left + PATCH))


@pytest.fixture(scope="module")
def patch_models():
    return {quadrant: train_patch_model(quadrant) for quadrant in ("top-left", "bottom-right")}


@pytest.mark.slow
def test_grad_cam_peak_lies_in_the_deciding_patch_and_moves_with_it(patch_models):
    images, present = patch_faces(300, seed=99)
    both = present["top-left"] & present["bottom-right"]  # the same images for both models
    test_images = images[both]
    for quadrant, model in patch_models.items():
        accuracy = np.mean(model.predict(images, verbose=0).argmax(1)
                           == np.where(present[quadrant], 3, 0))
        assert accuracy > 0.95, f"{quadrant} model did not learn the task ({accuracy:.2f})"
        explainer = explain.Explainer(model)
        assert explainer.method == "hires-cam"  # a Flatten head: mean gradients lose position
        heatmaps = explainer.grad_cam(test_images, class_index=3)
        assert heatmaps.shape == (len(test_images), 48, 48)
        assert heatmaps.min() >= 0 and heatmaps.max() <= 1
        hits = inside(explain.peak(heatmaps), quadrant).mean()
        print(f"\n{quadrant} model: Grad-CAM peak in its patch for {hits:.0%} of "
              f"{len(test_images)} images (accuracy {accuracy:.3f})")
        assert hits >= 0.9, f"{quadrant}: peak inside the patch for only {hits:.0%}"


@pytest.mark.slow
def test_occlusion_agrees_with_grad_cam(patch_models):
    images, present = patch_faces(60, seed=7)
    chosen = images[present["top-left"] & present["bottom-right"]][:12]
    maps = explain.occlusion(patch_models["top-left"], chosen, class_index=3)
    assert maps.shape == (len(chosen), 48, 48)
    assert inside(explain.peak(maps), "top-left").mean() >= 0.9


@pytest.mark.slow
def test_predicted_class_is_the_default(patch_models):
    model = patch_models["bottom-right"]
    images, _ = patch_faces(20, seed=3)
    predicted = model.predict(images, verbose=0).argmax(1)
    explainer = explain.Explainer(model)
    default, probabilities = explainer.grad_cam(images, return_probabilities=True)
    np.testing.assert_allclose(probabilities, model.predict(images, verbose=0), atol=1e-5)
    np.testing.assert_allclose(default, explainer.grad_cam(images, class_index=predicted),
                               atol=1e-6)


@pytest.mark.parametrize("builder", ["emonet", "seed_cnn", "mobilenet"])
def test_every_architecture_gives_48x48_heatmaps(builder):
    build = {"emonet": lambda: models.build_emonet(widths=(4, 8, 8, 8), dense_units=8),
             "seed_cnn": models.build_seed_cnn,
             "mobilenet": lambda: models.build_mobilenet(weights=None)}[builder]
    model = build()
    layer = explain.feature_layer(model)
    expected = {"emonet": "Activation", "seed_cnn": "Conv2D", "mobilenet": "Functional"}[builder]
    assert type(layer).__name__ == expected  # MobileNetV2: the nested base (its last conv)
    method = {"emonet": "grad-cam", "seed_cnn": "hires-cam", "mobilenet": "grad-cam"}[builder]
    assert explain.Explainer(model).method == method
    images, _ = patch_faces(3, seed=1)
    heatmaps = explain.grad_cam(model, images, class_index=[0, 3, 6])
    assert heatmaps.shape == (3, 48, 48) and np.isfinite(heatmaps).all()


@pytest.mark.slow
def test_int8_tflite_is_explained_through_its_keras_source(tmp_path, patch_models):
    model = patch_models["top-left"]
    source = tmp_path / "patchnet.keras"
    model.save(source)
    images, present = patch_faces(40, seed=5)
    lite = export.to_tflite(model, export.int8_companion(source), quantization="int8",
                            representative_images=images[:20])
    assert registry.keras_source(lite) == source
    chosen = images[present["top-left"]][:8]
    through_lite = explain.grad_cam(export.TFLiteModel(lite), chosen, class_index=3)
    np.testing.assert_allclose(through_lite, explain.grad_cam(model, chosen, class_index=3),
                               atol=1e-5)
    source.unlink()
    with pytest.raises(EmolibError, match="no gradients"):
        explain.grad_cam(lite, chosen)


def test_overlay_colours_only_the_face_square():
    frame = np.full((120, 160, 3), 90, np.uint8)
    heatmap = np.zeros((1, 48, 48), np.float32)
    heatmap[0, 20:28, 20:28] = 1.0
    out = annotation.overlay_faces(frame, [(60, 40, 40, 40)], heatmap, margin=0.1)
    changed = np.any(out != frame, axis=2)
    rows, columns = np.nonzero(changed)
    assert rows.min() >= 36 and rows.max() < 36 + 48 and columns.min() >= 56
    assert (out[:30] == frame[:30]).all()


# --------------------------------------------------------------------------- predict --explain

def test_predict_explain_writes_the_photo_with_heatmaps_over_the_faces(tmp_path, capsys):
    """The shipped model runs its int8 copy; the heatmap comes from its .keras source."""
    import cv2

    from emolib import cli, faces, sources

    photo = tmp_path / "face.jpg"
    frame = next(sources.sample_frames(1))
    cv2.imwrite(str(photo), frame)
    photo_pixels = cv2.imread(str(photo))
    output = tmp_path / "explained.png"
    assert cli.main(["predict", str(photo), "--json", "--explain", str(output)]) == 0
    captured = capsys.readouterr()
    (face,) = json.loads(captured.out.splitlines()[0])["faces"]
    assert f"wrote {output}" in captured.err
    drawn = cv2.imread(str(output))
    assert drawn.shape == photo_pixels.shape
    left, top, side = faces.crop_square(face["box"])
    square = (slice(max(top, 0), top + side), slice(max(left, 0), left + side))
    change = np.abs(drawn.astype(int) - photo_pixels.astype(int)).sum(axis=2)
    assert change[square].mean() > 30  # the heatmap is blended over the face
    outside = np.ones(change.shape, bool)
    outside[max(top - 60, 0):top + side + 10, max(left - 10, 0):left + side + 200] = False
    assert np.mean(change[outside] > 40) < 0.01  # and nowhere else


def test_predict_explain_names_one_file_per_image_and_refuses_videos(tmp_path, capsys):
    from emolib import cli

    paths = [tmp_path / "a.jpg", tmp_path / "b.png"]
    assert annotation.output_paths(paths, tmp_path / "out.png") == {
        paths[0]: tmp_path / "out-a.png", paths[1]: tmp_path / "out-b.png"}
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not read")
    assert cli.main(["predict", str(video), "--explain", str(tmp_path / "out.png")]) == 2
    assert "takes photos" in capsys.readouterr().err
    with pytest.raises(EmolibError, match="png or .jpg"):
        annotation.output_paths(paths, tmp_path / "out.gif")


# --------------------------------------------------------------------------- the webcam widget

@pytest.fixture
def demo(tmp_path):
    from emolib import camera

    path = tmp_path / "tiny.keras"
    models.build_emonet(widths=(4, 8, 8, 8), dense_units=8).save(path)
    return camera.WebcamDemo(model_path=str(path))


def decoded(value):
    from emolib import camera

    return camera.decode_jpeg(value).astype(int)


def test_widget_heatmap_toggle_fps_status_and_frozen_frame(demo):
    from emolib import camera, sources
    from emolib.faces import crop_square

    frames = list(sources.sample_frames(camera.MIN_FRAMES_FOR_FPS + 2))
    demo.start()
    demo.process_frame(frames[0])
    assert "measuring frames/s" in demo.status.value  # no rate over two back-to-back frames
    plain = decoded(demo.image.value)
    for frame in frames[1:]:
        demo.process_frame(frame)
    assert re.search(r"\d+\.\d frames/s", demo.status.value), demo.status.value
    demo.heatmap_toggle.value = True
    demo.process_frame(frames[0])
    (face,) = demo.last_result.faces
    left, top, side = crop_square(face.box)
    with_heatmap = decoded(demo.image.value)
    region = (slice(top + 4, top + side - 4), slice(left + 4, left + side - 4))
    assert np.abs(with_heatmap[region] - plain[region]).mean() > 20  # colours over the face
    demo.stop()
    frozen = decoded(demo.image.value)
    without_fps = annotation.annotate(frames[0], demo.last_result.faces, fps=None)
    with_fps = annotation.annotate(frames[0], demo.last_result.faces, fps=30.0)
    corner = (slice(0, 40), slice(0, 120))  # where the frames/s figure is drawn
    demo.heatmap_toggle.value = False
    assert np.abs(frozen[corner] - without_fps[corner]).mean() < np.abs(
        frozen[corner] - with_fps[corner]).mean()


def test_widget_camera_switch_clears_a_stale_error_and_names_what_runs(demo):
    from emolib import camera

    browser = demo.browser_camera
    browser._on_custom_message(browser, {"type": "error", "message": "camera permission denied: "
                                         "allow the camera"}, [])
    assert "permission denied" in demo.status.value
    demo.camera_choice.value = "kernel"
    assert "permission denied" not in demo.status.value and "ready" in demo.status.value
    assert "not in use" in browser.note
    label = camera.WebcamDemo._model_label(models.DEFAULT_MODEL)
    assert label == "default (emonet-int8.tflite, from emonet.keras)"
