"""Batch mixing (mixup, cutmix): what the mixed faces and targets are, the pipeline and the
recipe that records it."""

from __future__ import annotations

import numpy as np
import pytest

from emolib import augmentation, training
from emolib.errors import EmolibError


def flat_faces(n=7):
    """Face ``i`` is the constant ``10 * (i + 1)``, labelled class ``i``: a mixed face says which
    faces went into it, and in what share, through its pixels alone."""
    import tensorflow as tf

    values = 10.0 * (np.arange(n) + 1)
    images = np.broadcast_to(values[:, None, None, None], (n, 48, 48, 1)).astype(np.float32)
    return tf.constant(images), tf.one_hot(np.arange(n), 7), values


@pytest.mark.parametrize("mix", ["mixup", "cutmix"])
def test_mixed_targets_are_distributions_over_at_most_two_faces(mix):
    import tensorflow as tf

    tf.random.set_seed(1)
    images, targets, _ = flat_faces()
    mixed, mixed_targets = augmentation.mix_batch(images, targets, mix)
    mixed_targets = mixed_targets.numpy()
    assert mixed.shape == images.shape and mixed_targets.shape == (7, 7)
    np.testing.assert_allclose(mixed_targets.sum(axis=1), 1.0, atol=1e-6)
    assert (mixed_targets >= 0).all()
    assert ((mixed_targets > 1e-6).sum(axis=1) <= 2).all()
    assert (np.diag(mixed_targets) < 1 - 1e-3).any()  # something was mixed
    soft = np.full((7, 7), 1 / 7, np.float32)  # soft targets (distillation) stay distributions
    np.testing.assert_allclose(augmentation.mix_batch(images, soft, mix)[1].numpy().sum(axis=1),
                               1.0, atol=1e-6)


def test_mixup_is_the_convex_combination_its_target_says():
    import tensorflow as tf

    tf.random.set_seed(2)
    images, targets, values = flat_faces()
    mixed, mixed_targets = augmentation.mix_batch(images, targets, "mixup", alpha=1.0)
    mixed, mixed_targets = mixed.numpy(), mixed_targets.numpy()
    for i in range(7):
        # the face's own share is its diagonal; the rest is one partner's
        expected = mixed_targets[i] @ values  # sum of share * face value
        np.testing.assert_allclose(mixed[i], expected, rtol=1e-5)
        assert np.ptp(mixed[i]) < 1e-3  # a blend of two flat faces is flat


def test_cutmix_label_weight_is_the_area_each_face_keeps():
    import tensorflow as tf

    tf.random.set_seed(3)
    images, targets, values = flat_faces()
    pasted_some = False
    for _ in range(5):
        mixed, mixed_targets = augmentation.mix_batch(images, targets, "cutmix")
        mixed, mixed_targets = mixed.numpy(), mixed_targets.numpy()
        for i in range(7):
            for j in range(7):  # every pixel is a face's own value, weighted by its area
                area = np.mean(np.isclose(mixed[i], values[j]))
                assert mixed_targets[i, j] == pytest.approx(area, abs=1e-6)
            if 0 < np.diag(mixed_targets)[i] < 1:
                pasted_some = True
            on_box = ~np.isclose(mixed[i, ..., 0], values[i])
            if on_box.any():  # the pasted pixels form one rectangle
                rows, cols = np.nonzero(on_box)
                assert on_box[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()
    assert pasted_some


def test_none_is_identity_and_bad_settings_are_one_line_errors():
    images, targets, _ = flat_faces()
    same_images, same_targets = augmentation.mix_batch(images, targets, "none")
    assert same_images is images and same_targets is targets
    with pytest.raises(EmolibError, match="mix='blend': unknown batch mixing; use one of none"):
        augmentation.mix_batch(images, targets, "blend")
    with pytest.raises(EmolibError, match="mix_alpha=-1"):
        training.recipe(epochs=1, mix="cutmix", mix_alpha=-1)
    with pytest.raises(EmolibError, match="mix='MIXUP'"):
        training.make_dataset(np.zeros((4, 48, 48, 1), np.uint8), np.zeros(4, int), mix="MIXUP")


def test_pipeline_mixes_training_batches_only():
    images = np.random.default_rng(0).integers(0, 256, (64, 48, 48, 1)).astype(np.uint8)
    labels = np.arange(64) % 7
    train = training.make_dataset(images, labels, batch_size=32, training=True, mix="mixup",
                                  mix_alpha=1.0)
    targets = np.concatenate([y.numpy() for _, y in train])
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-5)
    assert (targets.max(axis=1) < 1 - 1e-3).any()
    val = training.make_dataset(images, labels, batch_size=32, mix="mixup")  # not training
    x, y = next(iter(val))
    np.testing.assert_array_equal(x.numpy(), images[:32].astype(np.float32))
    np.testing.assert_array_equal(y.numpy(), np.eye(7)[labels[:32]])


def test_recipe_records_mix_only_when_on():
    plain = training.recipe(epochs=2)
    assert "mix" not in plain and "mix_alpha" not in plain  # runs recorded before still resume
    assert training.recipe(epochs=2, mix="none") == plain
    mixup = training.recipe(epochs=2, mix="mixup")
    assert (mixup["mix"], mixup["mix_alpha"]) == ("mixup", augmentation.MIXES["mixup"])
    assert training.recipe(epochs=2, mix="cutmix", mix_alpha=0.5)["mix_alpha"] == 0.5


@pytest.mark.slow
def test_interrupted_run_with_another_mix_is_refused():
    from test_training import Crash, CrashAfterEpoch, tiny_emonet, toy_data

    train_data, val_data = toy_data(64), toy_data(32, seed=1)
    with pytest.raises(Crash):
        training.train(tiny_emonet(), train_data, val_data, run_name="mix-resume", epochs=3,
                       batch_size=32, augment=False, mix="mixup", callbacks=[CrashAfterEpoch(1)],
                       verbose=0, tensorboard=False)
    for other in ({"mix": "cutmix"}, {"mix": "none"}, {"mix": "mixup", "mix_alpha": 0.4}):
        with pytest.raises(EmolibError, match="interrupted run .* with other settings: mix"):
            training.train(tiny_emonet(), train_data, val_data, run_name="mix-resume", epochs=3,
                           batch_size=32, augment=False, verbose=0, tensorboard=False, **other)
    run = training.train(tiny_emonet(), train_data, val_data, run_name="mix-resume", epochs=3,
                         batch_size=32, augment=False, mix="mixup", verbose=0, tensorboard=False)
    assert run.resumed_from_epoch == 1
    assert run.parameters["mix"] == "mixup" and run.history["epoch"] == [0, 1, 2]


def test_notebook_02_and_the_sweeps_train_target_take_mix():
    """``mix`` is a notebook 02 parameter (stage 2), so the training function's sweep knows it."""
    from emolib import sweep

    assert sweep.target_defaults("train", "quick")["mix"] == "none"
    assert sweep.target_defaults("02", "cpu")["mix"] == "none"
