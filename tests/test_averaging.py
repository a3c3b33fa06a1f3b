"""Weight averaging (SWA): epoch snapshots, their mean, and batch norm measured again."""

from __future__ import annotations

import numpy as np
import pytest

from emolib import averaging, models
from emolib.errors import EmolibError


def _tiny_emonet():
    model = models.build_emonet(widths=(4, 4, 4, 4), dense_units=8)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_snapshots_of_the_last_epochs_average_to_their_mean(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(64, 48, 48, 1)).astype(np.uint8)
    labels = rng.integers(0, 7, size=64)
    model = _tiny_emonet()
    seen = []
    remember = __import__("keras").callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs=None: seen.append(model.get_weights()))
    model.fit(images, labels, epochs=4, batch_size=16, verbose=0,
              callbacks=[averaging.snapshot_callback(model, tmp_path, epochs=4, last=3), remember])

    files = averaging.snapshots(tmp_path)
    assert [f.name for f in files] == ["epoch-0002.npz", "epoch-0003.npz", "epoch-0004.npz"]
    averaged = averaging.average(model, files)
    expected = [np.mean(ws, axis=0) for ws in zip(*seen[1:])]
    for got, want in zip(averaged.get_weights(), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(averaged.get_weights()[0], model.get_weights()[0])  # not the last epoch


def test_batch_norm_statistics_are_measured_again_on_the_given_images():
    import keras

    inputs = keras.Input((3,))
    norm = keras.layers.BatchNormalization()
    model = keras.Model(inputs, norm(inputs))
    rng = np.random.default_rng(1)
    data = rng.normal(loc=[5.0, -2.0, 0.5], scale=[1.0, 3.0, 0.1], size=(1000, 3))
    assert averaging.recompute_batch_norm(model, data, batch_size=100) == 1
    np.testing.assert_allclose(norm.moving_mean.numpy(), data.mean(axis=0), rtol=1e-4, atol=1e-4)
    # the mean of ten batch variances (each over 100 rows, biased): close to the data's variance
    np.testing.assert_allclose(norm.moving_variance.numpy(), data.var(axis=0), rtol=0.05)
    assert norm.momentum == pytest.approx(0.99)  # restored


def test_averaging_refuses_nothing_to_average_and_a_wrong_window(tmp_path):
    with pytest.raises(EmolibError, match="no weight snapshots"):
        averaging.average(_tiny_emonet(), [])
    with pytest.raises(EmolibError, match="average_epochs=9"):
        averaging.snapshot_callback(_tiny_emonet(), tmp_path, epochs=8, last=9)
