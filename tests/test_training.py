"""Model contract (raw pixels in, 7 probabilities out, safe loading), the tf.data pipeline,
training with resume, and saved runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emolib import augmentation, models, training


def tiny_emonet():
    return models.build_emonet(widths=(4, 8, 8, 8), dense_units=8)


def toy_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 7, n)
    # class-dependent brightness so that a model can learn something in an epoch or two
    images = np.clip(rng.normal(30 + labels[:, None, None, None] * 30, 10, (n, 48, 48, 1)),
                     0, 255).astype(np.uint8)
    return images, labels


def test_seed_cnn_is_the_seed_architecture():
    model = models.build_seed_cnn()
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    assert kinds == ["Rescaling", "Conv2D", "Conv2D", "MaxPooling2D", "Dropout", "Conv2D",
                     "MaxPooling2D", "Conv2D", "MaxPooling2D", "Dropout", "Flatten", "Dense",
                     "Dropout", "Dense"]
    filters = [layer.filters for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert filters == [32, 64, 128, 128]
    assert [layer.rate for layer in model.layers if type(layer).__name__ == "Dropout"] == [0.25, 0.25, 0.5]
    assert model.layers[-3].units == 1024 and model.output_shape == (None, 7)
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(1e-4)


def test_emonet_batch_norm_switch_swaps_batch_norm_for_biases():
    """The ablation's "no batch norm" arm must really have none, and keep the conv biases."""
    def kinds(model):
        return [type(layer).__name__ for layer in model.layers]

    with_bn = models.build_emonet(widths=(4, 8, 8, 8), dense_units=8)
    without = models.build_emonet(widths=(4, 8, 8, 8), dense_units=8, batch_norm=False)
    assert kinds(with_bn).count("BatchNormalization") == 9
    assert "BatchNormalization" not in kinds(without)
    convs = [layer for layer in without.layers if type(layer).__name__ in ("Conv2D", "Dense")]
    assert all(layer.use_bias for layer in convs)
    assert not any(layer.use_bias for layer in with_bn.layers if type(layer).__name__ == "Conv2D")


@pytest.mark.parametrize("build", [models.build_seed_cnn, tiny_emonet])
def test_models_take_raw_pixels_and_survive_safe_mode_loading(build, tmp_path):
    model = build()
    images, _ = toy_data(8)
    probabilities = model.predict(images, verbose=0)  # uint8 0-255 straight in
    assert probabilities.shape == (8, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(model.predict(images.astype(np.float32), verbose=0), probabilities,
                               atol=1e-6)
    path = training.export_model(model, tmp_path / "model.keras")
    loaded = models.load_model(path)  # safe_mode=True
    np.testing.assert_allclose(loaded.predict(images, verbose=0), probabilities, atol=1e-5)


def test_scaling_is_inside_the_model():
    model = tiny_emonet()
    rescale = model.layers[1]
    assert type(rescale).__name__ == "Rescaling"
    assert float(rescale.scale) == pytest.approx(1 / 127.5) and float(rescale.offset) == -1.0


def test_pipeline_batches_one_hot_and_keeps_pixel_range():
    images, labels = toy_data(100)
    dataset = training.make_dataset(images, labels, batch_size=32, training=True, augment=True)
    batches = list(dataset)
    assert [len(x) for x, _ in batches] == [32, 32, 32, 4]
    x, y = batches[0]
    assert x.dtype.name == "float32" and y.shape == (32, 7)
    assert float(np.min(x)) >= 0 and float(np.max(x)) <= 255
    np.testing.assert_allclose(np.sum(y, axis=1), 1)
    plain = next(iter(training.make_dataset(images, labels, batch_size=100)))
    np.testing.assert_array_equal(plain[0].numpy(), images.astype(np.float32))


class FixedTeacher:
    """Stands in for a Keras model: the same probabilities for every image."""

    def __init__(self, probabilities):
        self.probabilities = np.asarray(probabilities, np.float32)

    def predict(self, images, batch_size=None, verbose=0):
        return np.repeat(self.probabilities[None], len(images), axis=0)


def test_teacher_targets_soften_but_keep_the_teachers_ranking():
    images, _ = toy_data(5)
    teacher = FixedTeacher([0.7, 0.2, 0.05, 0.02, 0.01, 0.01, 0.01])
    same = training.teacher_targets(teacher, images, temperature=1.0)
    np.testing.assert_allclose(same, teacher.predict(images), atol=1e-6)
    soft = training.teacher_targets(teacher, images, temperature=2.0)
    np.testing.assert_allclose(soft.sum(axis=1), 1, atol=1e-6)
    assert soft[0, 0] < 0.7 and soft[0, 1] > 0.2  # flatter
    assert list(np.argsort(-soft[0])[:3]) == [0, 1, 2]
    with pytest.raises(ValueError, match="temperature"):
        training.teacher_targets(teacher, images, temperature=0)


def test_distillation_targets_mix_labels_and_soft_labels():
    images, labels = toy_data(10)
    soft = np.full((10, 7), 1 / 7, np.float32)
    _, y = next(iter(training.make_dataset(images, labels, batch_size=10, soft_labels=soft,
                                           soft_weight=0.25)))
    expected = 0.75 * np.eye(7)[labels] + 0.25 / 7
    np.testing.assert_allclose(y.numpy(), expected, atol=1e-6)
    with pytest.raises(ValueError, match="3 soft labels for 10 images"):
        training.make_dataset(images, labels, soft_labels=soft[:3])


def pixel_teacher(seed=0):
    """A small Keras model whose probabilities depend on every pixel (so on the augmentation)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((48, 48, 1))
    x = layers.Rescaling(1 / 255)(layers.Flatten()(inputs))
    return keras.Model(inputs, layers.Dense(7, activation="softmax")(x))


def test_online_teacher_labels_the_augmented_view_the_student_sees():
    images, labels = toy_data(16)
    teacher = pixel_teacher()
    dataset = training.make_dataset(images, labels, batch_size=16, training=True, augment=True,
                                    teacher=teacher, temperature=2.0, soft_weight=0.4)
    x, y = next(iter(dataset))
    assert not np.allclose(x.numpy(), images.astype(np.float32))  # augmented
    probabilities = teacher.predict(x.numpy(), verbose=0).astype(np.float64)
    soft = np.sqrt(probabilities) / np.sqrt(probabilities).sum(axis=1, keepdims=True)  # T = 2
    one_hot = np.zeros((16, 7))
    one_hot[np.arange(16), y.numpy().argmax(axis=1)] = 1  # shuffled: recover each row's label
    np.testing.assert_allclose(y.numpy(), 0.6 * one_hot + 0.4 * soft, atol=1e-5)
    with pytest.raises(ValueError, match="not both"):
        training.make_dataset(images, labels, teacher=teacher, soft_labels=np.ones((16, 7)))
    with pytest.raises(ValueError, match="temperature"):
        training.make_dataset(images, labels, teacher=teacher, temperature=-1)


@pytest.mark.slow
def test_distillation_trains_and_is_recorded():
    images, labels = toy_data(64)
    soft = np.eye(7, dtype=np.float32)[labels]
    run = training.train(tiny_emonet(), (images, labels), (images, labels), run_name="kd",
                         epochs=1, augment=False, verbose=0, soft_labels=soft, soft_weight=0.3)
    assert run.parameters["distillation_weight"] == 0.3
    assert run.parameters["distillation"] == "fixed"
    online = training.train(tiny_emonet(), (images, labels), (images, labels), run_name="kd-online",
                            epochs=1, augment=True, verbose=0, teacher=pixel_teacher(),
                            soft_weight=0.3)
    assert online.parameters["distillation"] == "online"
    assert online.parameters["distillation_weight"] == 0.3
    plain = training.train(tiny_emonet(), (images, labels), (images, labels), run_name="plain",
                           epochs=1, augment=False, verbose=0)
    assert plain.parameters["distillation_weight"] == 0.0
    assert plain.parameters["distillation"] is None


def test_balanced_class_weight_favours_rare_classes():
    weights = training.balanced_class_weight(np.array([0] * 100 + [1] * 25 + list(range(2, 7))))
    assert weights[0] == pytest.approx(1.0) and weights[1] == pytest.approx(2.0)


class Crash(Exception):
    pass


class CrashAfterEpoch:
    """A Keras callback that simulates a killed process after a given epoch."""

    def __new__(cls, epoch):
        import keras

        class _Crash(keras.callbacks.Callback):
            def on_epoch_end(self, index, logs=None):
                if index + 1 == epoch:
                    raise Crash(f"killed after epoch {epoch}")

        return _Crash()


@pytest.mark.slow
def test_interrupted_run_resumes_from_its_last_epoch():
    train_data, val_data = toy_data(64), toy_data(32, seed=1)
    with pytest.raises(Crash):
        training.train(tiny_emonet(), train_data, val_data, run_name="resume", epochs=3,
                       batch_size=32, callbacks=[CrashAfterEpoch(2)], verbose=0)
    run = training.train(tiny_emonet(), train_data, val_data, run_name="resume", epochs=3,
                         batch_size=32, verbose=0)
    assert run.resumed_from_epoch == 2
    assert run.history["epoch"] == [0, 1, 2]  # one log across the crash, no epoch trained twice
    assert (run.directory / "best.keras").exists()
    assert run.model.output_shape == (None, 7)


@pytest.mark.slow
def test_save_run_writes_metrics_with_protocol_hardware_and_versions():
    from emolib import evaluation

    train_data, val_data = toy_data(64), toy_data(32, seed=1)
    run = training.train(tiny_emonet(), train_data, val_data, run_name="saved", epochs=1,
                         batch_size=32, verbose=0)
    metrics = {"test": evaluation.evaluate(run.model, *val_data, split="test")}
    path = training.save_run(run, metrics, profile="quick")
    record = json.loads(path.read_text())
    assert record["test"]["split"] == "test" and record["profile"] == "quick"
    assert record["best_epoch"] == 1 and record["params"] == run.model.count_params()
    assert {"tensorflow", "keras", "numpy"} <= set(record["versions"])
    assert record["hardware"]["cpu_count"] >= 1 and record["wall_time_s"] > 0
    assert not (run.directory / "backup").exists()
    assert (run.directory / "model.keras").stat().st_size < (run.directory / "best.keras").stat().st_size


def test_train_refuses_empty_data_before_creating_a_run_folder():
    from emolib.errors import EmolibError
    from emolib.paths import outputs_dir

    empty = (np.zeros((0, 48, 48, 1), np.uint8), np.zeros(0, np.int64))
    with pytest.raises(EmolibError, match="quick-empty: train_data holds no images"):
        training.train(tiny_emonet(), empty, toy_data(8), run_name="quick-empty", epochs=1)
    with pytest.raises(EmolibError, match="val_data holds no images"):
        training.train(tiny_emonet(), toy_data(8), empty, run_name="quick-empty", epochs=1)
    assert not outputs_dir("runs", "quick-empty", create=False).exists()


def test_face_augmentation_keeps_shape_and_range_and_changes_faces():
    import tensorflow as tf

    images = tf.constant(np.random.default_rng(0).integers(0, 256, (32, 48, 48, 1)), tf.float32)
    for kind in ("basic", "faces"):
        out = augmentation.make_augmenter(kind)(images, training=True).numpy()
        assert out.shape == (32, 48, 48, 1)
        assert out.min() >= 0 and out.max() <= 255
        assert np.abs(out - images.numpy()).mean() > 5
    np.testing.assert_array_equal(augmentation.make_augmenter("faces")(images, training=False), images)
    with pytest.raises(ValueError, match="unknown augmentation"):
        augmentation.make_augmenter("sepia")


def test_affine_and_light_are_identity_at_zero_strength_and_bounded_otherwise():
    import tensorflow as tf

    images = np.zeros((64, 48, 48, 1), np.float32)
    images[:, 20:28, 20:28] = 255.0  # a bright square in the middle
    same = augmentation.random_affine(tf.constant(images), 0.0, 0.0, 0.0).numpy()
    np.testing.assert_allclose(same, images, atol=1e-3)
    np.testing.assert_allclose(augmentation.random_light(tf.constant(images), 0, 0, 0), images)
    shifted = augmentation.random_affine(tf.constant(images), 0.0, 0.0, 0.1).numpy()
    ys, xs = np.mgrid[:48, :48]
    weight = shifted[..., 0].sum(axis=(1, 2))
    centre_x = (shifted[..., 0] * xs).sum(axis=(1, 2)) / weight
    centre_y = (shifted[..., 0] * ys).sum(axis=(1, 2)) / weight
    moves = np.hypot(centre_x - 23.5, centre_y - 23.5)
    assert moves.max() <= 0.1 * 48 * np.sqrt(2) + 0.5 and moves.mean() > 0.5
