"""EmoNet's ablation variants: residual and squeeze-excitation blocks, progressive resizing (a
smaller input for the first half of stage 1, on one learning-rate schedule), and their sweep
parameters."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import ROOT
from emolib import models, progressive, sweep, training
from emolib.errors import EmolibError


def test_the_plain_block_is_the_shipped_emonet_layer_for_layer():
    built, shipped = models.build_emonet(), models.load_model()
    assert built.count_params() == shipped.count_params() == 1_242_919
    assert [type(layer).__name__ for layer in built.layers] == [type(layer).__name__ for layer in shipped.layers]
    assert [w.shape for w in built.weights] == [w.shape for w in shipped.weights]
    assert [layer.name for layer in built.layers if layer.name.startswith(("pool", "pixels"))] == [
        layer.name for layer in shipped.layers if layer.name.startswith(("pool", "pixels"))]
    built.set_weights(shipped.get_weights())  # the shipped weights fit the default build
    faces = np.random.default_rng(0).integers(0, 255, (3, 48, 48, 1)).astype("float32")
    np.testing.assert_allclose(built(faces, training=False), shipped(faces, training=False), atol=1e-6)


@pytest.mark.parametrize("block", ["residual", "se"])
def test_residual_and_se_blocks_build_run_and_add_parameters(block):
    plain = models.build_emonet(widths=(16, 32, 64, 128), dense_units=128)
    other = models.build_emonet(widths=(16, 32, 64, 128), dense_units=128, block=block)
    assert other.count_params() > plain.count_params()  # 312,471 plain
    kinds = {type(layer).__name__ for layer in other.layers}
    assert ("Add" in kinds) == (block == "residual") and ("Multiply" in kinds) == (block == "se")
    probabilities = other(np.full((2, 48, 48, 1), 128.0, "float32"), training=False).numpy()
    assert probabilities.shape == (2, 7) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)


def test_a_bad_block_is_one_clear_error():
    with pytest.raises(EmolibError, match=r"block 'resnet': use one of plain, residual, se"):
        models.build_emonet(block="resnet")
    with pytest.raises(EmolibError, match=r"block 'resnet': use one of plain, residual, se"):
        sweep.definition("train", pairs=["block=plain,resnet"], name="b")
    with pytest.raises(EmolibError, match=r"progressive_size=48: use 0 \(off\) or a size from 16 to 47"):
        sweep.definition("train", pairs=["progressive_size=48"], name="p")
    with pytest.raises(EmolibError, match=r"progressive_size=32 needs epochs >= 2"):
        sweep.definition("train", pairs=["progressive_size=32", "epochs=1"], name="p")


def test_the_ablation_definition_has_the_block_and_resizing_arms():
    spec = sweep.definition(config=str(ROOT / "benchmarks" / "emonet_ablation.yaml"))
    trials = {t["arm"]: t for t in sweep.plan(spec)}
    assert trials["full"]["block"] == "plain" and trials["full"]["progressive_size"] == 0
    assert trials["residual blocks"]["block"] == "residual" and trials["SE blocks"]["block"] == "se"
    assert trials["SE blocks"]["epochs"] == trials["full"]["epochs"]  # same CPU time a step
    assert trials["progressive resizing (32 -> 48 px)"]["progressive_size"] == 32


def test_shrink_keeps_faces_and_carry_over_keeps_weights():
    faces = np.random.default_rng(0).integers(0, 255, (5, 48, 48, 1)).astype(np.uint8)
    small = progressive.shrink(faces, 32)
    assert small.shape == (5, 32, 32, 1) and small.dtype == np.uint8
    assert abs(float(small.mean()) - float(faces.mean())) < 2  # area interpolation keeps brightness
    model = models.build_emonet(widths=(4, 8, 8, 8), dense_units=8, input_size=32)
    def build(size):
        return models.build_emonet(widths=(4, 8, 8, 8), dense_units=8, input_size=size)

    assert progressive.carry_over(model, build, 32) is model
    big = progressive.carry_over(model, build, 48)
    assert big.input_shape == (None, 48, 48, 1)
    for a, b in zip(model.get_weights(), big.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_the_two_parts_of_a_progressive_stage_follow_one_schedule():
    """Part 1 (2 epochs at 32 px) and part 2 (2 epochs at 48 px): the rates each step used are
    the ones a single 4-epoch cosine schedule with a 1-epoch warm-up would have used."""
    import keras

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 255, (64, 48, 48, 1)).astype(np.uint8), rng.integers(0, 7, 64)
    steps = 4  # 64 faces, batch 16
    whole = training.optimizer(1e-2, steps=4 * steps, warmup_steps=steps).get_config()["learning_rate"]
    whole = keras.optimizers.schedules.deserialize(whole)
    seen = []

    class Rates(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    model = models.build_emonet(widths=(4, 8, 8, 8), dense_units=8, input_size=32)
    for part, (size, done) in enumerate([(32, 0), (48, 2)]):
        if part:
            model = progressive.carry_over(model, lambda size: models.build_emonet(
                widths=(4, 8, 8, 8), dense_units=8, input_size=size), 48)
        images = progressive.resized((x, y), size)[0]
        model.compile(optimizer=training.optimizer(5.0, steps=2 * steps), loss="categorical_crossentropy")
        callback = progressive.stage_schedule(1e-2, schedule="cosine", epochs=4, steps_per_epoch=steps,
                                              warmup_epochs=1, done_epochs=done)
        model.fit(training.make_dataset(images, y, batch_size=16), epochs=2, verbose=0,
                  callbacks=[callback, Rates()])
    np.testing.assert_allclose(seen, [float(whole(step)) for step in range(4 * steps)], rtol=1e-5)
    assert progressive.stage_schedule(1e-3, schedule="constant", epochs=4, steps_per_epoch=4,
                                      warmup_epochs=0, done_epochs=2) is None


@pytest.mark.slow
def test_a_progressive_trial_trains_half_at_32_px_then_48_px_then_stage_2(kaggle_zip, monkeypatch):
    from test_sweep import fake_tune

    from emolib import trials
    from emolib.paths import outputs_dir

    reports = fake_tune(monkeypatch, "0a1b2_00002")
    spec = sweep.definition("train", name="prog", pairs=[
        "epochs=2", "finetune_epochs=1", "mix=mixup", "widths=[4,8,8,8]", "dense_units=8",
        "progressive_size=32", "block=se", f"data_source={kaggle_zip}"])
    trials.train_trial({"sweep": sweep._settings(spec), **sweep._fixed(spec), "arm": {"arm": "p", "seed": 0}})
    assert [r["epoch"] for r in reports] == [1, 2, 3] and reports[-1]["finished"]
    small, stage1, final = (json.loads((outputs_dir("runs", name) / "metrics.json").read_text())
                            for name in ("quick-emonet-small-prog-02", "quick-emonet-stage1-prog-02",
                                         "quick-emonet-prog-02"))
    assert small["sweep"]["input_size"] == 32 and stage1["sweep"]["input_size"] == 48
    assert small["parameters"]["epochs"] == stage1["parameters"]["epochs"] == final["parameters"]["epochs"] == 1
    assert final["parameters"]["mix"] == "mixup" and "mix" not in stage1["parameters"]  # stage 2's alone
    runs = (small, stage1, final)
    assert reports[-1]["minutes"] == pytest.approx(sum(r["wall_time_s"] for r in runs) / 60, abs=0.01)
    assert final["val"]["accuracy"] == pytest.approx(reports[-1]["val_accuracy"])
    saved = models.load_model(outputs_dir("runs", "quick-emonet-prog-02") / "model.keras")
    assert saved.input_shape == (None, 48, 48, 1)
    assert any(type(layer).__name__ == "Multiply" for layer in saved.layers)  # the SE block
