"""Progressive resizing: the first half of a training stage on smaller faces, the rest at 48 px.

EmoNet ends in global average pooling, so its weights fit any input size: a model built at
``size`` pixels trains on faces shrunk to it (cheaper epochs), then ``carry_over`` copies its
weights into a 48-pixel model that trains on. ``stage_schedule`` keeps one learning-rate schedule
over both parts, as if the stage were one ``training.train`` call: each part's own schedule is
replaced by the stage's, shifted by the steps already done. Used by the sweep's training trial
(``progressive_size``, an ablation arm in ``benchmarks/emonet_ablation.yaml``).
"""

from __future__ import annotations

import numpy as np

from emolib.errors import EmolibError
from emolib.preprocessing import IMAGE_SIZE


def check(size: int, epochs: int) -> None:
    """``progressive_size`` 0 (off) or 16..47 pixels, with at least 2 epochs to split."""
    if size and not (isinstance(size, int) and 16 <= size < IMAGE_SIZE):
        raise EmolibError(f"progressive_size={size!r}: use 0 (off) or a size from 16 to "
                          f"{IMAGE_SIZE - 1} pixels, e.g. 32")
    if size and epochs < 2:
        raise EmolibError(f"progressive_size={size} needs epochs >= 2 (the first half is trained "
                          f"at {size} px); epochs is {epochs}")


def first_epochs(epochs: int) -> int:
    """The epochs trained at the small size: the first half (rounded down)."""
    return epochs // 2


def shrink(images: np.ndarray, size: int) -> np.ndarray:
    """``(n, 48, 48, 1)`` faces -> ``(n, size, size, 1)``, area interpolation, the same dtype."""
    import cv2

    out = np.empty((len(images), size, size, 1), images.dtype)
    for index, image in enumerate(images):
        out[index, ..., 0] = cv2.resize(image[..., 0], (size, size), interpolation=cv2.INTER_AREA)
    return out


def resized(data: tuple, size: int) -> tuple:
    """``(images, labels)`` with the images at ``size`` px (unchanged at their own size)."""
    images, labels = data
    return (images if images.shape[1] == size else shrink(images, size)), labels


def carry_over(model, build, size: int):
    """``model`` itself when its input is ``size`` px, else ``build(size)`` (the same
    architecture at that size) with ``model``'s weights."""
    if model.input_shape[1] == size:
        return model
    fresh = build(size)
    fresh.set_weights(model.get_weights())
    return fresh


def stage_schedule(learning_rate: float, *, schedule: str, epochs: int, steps_per_epoch: int,
                   warmup_epochs: int, done_epochs: int):
    """A Keras callback that makes a part of a stage follow the whole stage's learning rate
    (``epochs`` long, its warm-up included), from epoch ``done_epochs`` on; None for a
    constant rate (nothing to continue)."""
    import keras

    from emolib import training

    if schedule != "cosine":
        return None
    whole = keras.optimizers.schedules.deserialize(training.optimizer(
        learning_rate, schedule=schedule, steps=steps_per_epoch * epochs,
        warmup_steps=steps_per_epoch * warmup_epochs).get_config()["learning_rate"])
    offset = steps_per_epoch * done_epochs

    class Shifted(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            return whole(step + offset)

        def get_config(self):
            return {"whole": keras.optimizers.schedules.serialize(whole), "offset": offset}

    class StageSchedule(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.model.optimizer.learning_rate = Shifted()

    return StageSchedule()
