"""MobileNetV2 transfer model: builds offline from the Keras cache with ImageNet values, keeps the
common input/output contract, fine-tunes only what it should, and fails clearly without weights."""

from __future__ import annotations

import numpy as np
import pytest

from emolib import models, training
from emolib.errors import EmolibError


def base_of(model):
    return next(layer for layer in model.layers if layer.name.startswith("mobilenetv2"))


@pytest.mark.slow
def test_builds_offline_with_imagenet_values(mobilenet_weights):
    import h5py

    model = models.build_mobilenet(alpha=0.35, input_size=96)
    kernel = base_of(model).get_layer("Conv1").get_weights()[0]
    with h5py.File(mobilenet_weights) as weights:
        stored = []
        weights["Conv1"].visititems(lambda name, item: stored.append(item[()])
                                    if hasattr(item, "shape") and item.shape == kernel.shape else None)
    assert stored, "no Conv1 kernel in the weights file"
    np.testing.assert_array_equal(kernel, stored[0])  # the ImageNet values, not a random init
    random_init = models.build_mobilenet(alpha=0.35, input_size=96, weights=None)
    assert not np.allclose(base_of(random_init).get_layer("Conv1").get_weights()[0], kernel)


@pytest.mark.slow
def test_contract_raw_gray_pixels_in_seven_probabilities_out(mobilenet_weights, tmp_path):
    model = models.build_mobilenet(alpha=0.35, input_size=96)
    pixels = np.random.default_rng(0).integers(0, 256, (3, 48, 48, 1)).astype(np.uint8)
    probabilities = model.predict(pixels, verbose=0)
    assert probabilities.shape == (3, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    names = [layer.name for layer in model.layers]
    assert "gray_to_rgb" in names and "mobilenet_preprocess" in names
    loaded = models.load_model(training.export_model(model, tmp_path / "m.keras"))
    np.testing.assert_allclose(loaded.predict(pixels, verbose=0), probabilities, atol=1e-5)


def test_fine_tuning_unfreezes_top_layers_but_not_batch_norm(mobilenet_weights):
    model = models.build_mobilenet(alpha=0.35, input_size=96)
    head_only = len(model.trainable_weights)
    assert head_only == 2  # the Dense head's kernel and bias
    models.set_fine_tuning(model, 120)
    base = base_of(model)
    trainable = [layer for layer in base.layers if layer.trainable and layer.weights]
    assert trainable and all(base.layers.index(layer) >= 120 for layer in trainable)
    assert not any(type(layer).__name__ == "BatchNormalization" for layer in trainable)
    models.set_fine_tuning(model, None)
    assert len(model.trainable_weights) == head_only


def test_missing_weights_say_where_to_put_the_file(monkeypatch, tmp_path):
    import keras

    def no_network(*args, **kwargs):
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(keras.utils, "get_file", no_network)
    with pytest.raises(EmolibError, match=r"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224"
                                          r"_no_top.h5 into .*models"):
        models.mobilenet_base(alpha=0.5, input_size=100)


def test_offline_mode_goes_straight_to_the_cached_file(mobilenet_weights, monkeypatch, capfd):
    import keras

    asked = []
    real_get_file = keras.utils.get_file
    monkeypatch.setattr(keras.utils, "get_file",
                        lambda name, *a, **k: asked.append(name) or real_get_file(name, *a, **k))
    models.mobilenet_base(alpha=0.35, input_size=96)  # EMOLIB_OFFLINE=1 (conftest)
    assert asked == [mobilenet_weights.name]  # the cached 224 file, no attempt at the 96 one
    captured = capfd.readouterr()
    assert "Downloading" not in captured.out + captured.err


def test_frozen_batch_norm_runs_in_inference_mode_unless_asked_to_learn(mobilenet_weights):
    model = models.build_mobilenet(alpha=0.35, input_size=96, dropout=0.0)
    faces = np.random.default_rng(0).uniform(0, 255, (8, 48, 48, 1)).astype("float32")
    inference = model(faces, training=False).numpy()
    models.set_fine_tuning(model, 0)  # batch norm still frozen: same outputs in training mode
    np.testing.assert_allclose(model(faces, training=True).numpy(), inference, atol=1e-5)
    models.set_fine_tuning(model, 0, batch_norm=True)
    base = base_of(model)
    assert all(layer.trainable for layer in base.layers
               if type(layer).__name__ == "BatchNormalization")
    # batch statistics of these 8 faces instead of ImageNet's: different outputs
    assert np.abs(model(faces, training=True).numpy() - inference).max() > 1e-3
