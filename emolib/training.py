"""Training: seeds and devices, the tf.data pipeline, the optimizer and its learning-rate
schedule, the recipe a run records, and ``train``, all of it in one call.

The notebooks train the way Keras examples do, with these pieces and a run folder::

    train_ds = training.make_dataset(x_train, y_train, batch_size=64, training=True, augment="faces")
    val_ds = training.make_dataset(x_val, y_val, batch_size=256)
    model.compile(optimizer=training.optimizer(2e-3, steps=epochs * len(train_ds),
                                               warmup_steps=len(train_ds), weight_decay=0.01),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
                  metrics=["accuracy"])
    run = runs.open_run("cpu-emonet", model, training.recipe(epochs=epochs, ...),
                        train_data=(x_train, y_train), val_data=(x_val, y_val))
    model.fit(train_ds, validation_data=val_ds, epochs=epochs,
              initial_epoch=run.initial_epoch, callbacks=run.callbacks())
    trained = run.result()          # the best epoch on PublicTest, history, training time
    training.save_run(trained, metrics, profile="cpu")   # a separate, explicit step

``emolib.runs`` owns the run folder: re-running after a crash continues from the last finished
epoch if the recipe, data and model are the same, and refuses otherwise.
"""

from __future__ import annotations

import numpy as np

from emolib import CLASS_NAMES, augmentation, averaging, runs
from emolib.errors import EmolibError

# the run folder's own module; notebooks and scripts call them as training.save_run etc.
from emolib.runs import Run, export_model, save_run  # noqa: F401

#: The seed project's recipe, kept as the baseline: no augmentation, Adam 1e-4, batch 64.
SEED_RECIPE = {"epochs": 50, "batch_size": 64, "learning_rate": 1e-4, "schedule": "constant",
               "label_smoothing": 0.0, "augment": False, "weight_decay": 0.0}


def setup(seed: int = 0, mixed_precision: bool | None = None):
    """Seed everything, turn on mixed precision on a GPU, return a ``tf.distribute`` strategy.

    With more than one GPU the strategy is a ``MirroredStrategy`` (so is a sweep trial's that
    holds several); build and train models inside ``with strategy.scope():``. A ``TF_CONFIG``
    naming several machines is refused (see ``_refuse_multi_worker``).
    """
    import keras
    import tensorflow as tf

    _refuse_multi_worker()
    keras.utils.set_random_seed(seed)
    gpus = tf.config.list_physical_devices("GPU")
    if mixed_precision is None:
        mixed_precision = bool(gpus)
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed_precision else "float32")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _refuse_multi_worker() -> None:
    """One run on several machines is ``MultiWorkerMirroredStrategy`` with a ``TF_CONFIG`` each,
    but Keras 3's ``model.fit`` fails under it (keras-team/keras#20585): say so, rather than let
    every machine train the whole run alone into the same run folder."""
    import json
    import os

    try:
        config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    except ValueError:
        raise EmolibError("TF_CONFIG is set but is not JSON; unset it") from None
    cluster = config.get("cluster", {}) if isinstance(config, dict) else {}
    machines = sum(len(cluster.get(role) or []) for role in ("chief", "worker"))
    if machines > 1:
        raise EmolibError(f"TF_CONFIG names {machines} machines for MultiWorkerMirroredStrategy, "
                          "which Keras 3's model.fit does not support (keras-team/keras#20585); "
                          "unset TF_CONFIG and spread a sweep over the machines instead "
                          "(python -m emolib sweep --address, see the README)")


def teacher_targets(teacher, images: np.ndarray, temperature: float = 2.0,
                    batch_size: int = 256) -> np.ndarray:
    """Soft labels for distillation: ``teacher``'s probabilities on ``images``, softened.

    ``temperature`` > 1 flattens them (``p ** (1/T)``, renormalised) so the wrong-but-close
    classes the teacher sees (fear vs surprise, say) carry weight in the student's targets.
    These are fixed targets for the un-augmented images; ``make_dataset(teacher=...)`` instead
    asks the teacher about each augmented batch as the student sees it.
    """
    _check_temperature(temperature)
    probabilities = teacher.predict(images, batch_size=batch_size, verbose=0)
    return np.asarray(_soften(probabilities, temperature))


def _check_temperature(temperature: float):
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")


def _soften(probabilities, temperature: float):
    """``p ** (1/T)``, renormalised: a softmax of the log-probabilities over ``temperature``."""
    import tensorflow as tf

    probabilities = tf.clip_by_value(tf.cast(probabilities, tf.float32), 1e-8, 1.0)
    return tf.nn.softmax(tf.math.log(probabilities) / temperature)


def make_dataset(images: np.ndarray, labels: np.ndarray, *, batch_size: int = 64,
                 training: bool = False, augment: bool | str = False, seed: int = 0,
                 soft_labels: np.ndarray | None = None, soft_weight: float = 0.5,
                 teacher=None, temperature: float = 2.0, mix: str = "none",
                 mix_alpha: float | None = None):
    """A ``tf.data`` pipeline over cached arrays: shuffle, batch, augment, one-hot, mix, prefetch.

    Images stay uint8 until the batch is formed (a quarter of the memory traffic of float32).
    With ``soft_labels`` (n x 7, e.g. from ``teacher_targets``) each target is
    ``(1 - soft_weight) * one_hot + soft_weight * soft_label``: distillation. With ``teacher``
    (a model taking the same raw images) the soft label is instead the teacher's softened
    prediction on the very (augmented) batch the student trains on, a consistent teacher that
    has not memorised these views. ``mix`` ("mixup" or "cutmix", ``augmentation.mix_batch``)
    then mixes the training batch's faces in pairs, targets alike (after any soft labels).
    """
    import tensorflow as tf

    alpha = augmentation.mix_alpha(mix, mix_alpha)  # refuses a bad name before any work

    autotune = tf.data.AUTOTUNE
    columns = (images, labels.astype(np.int32))
    if soft_labels is not None:
        if len(soft_labels) != len(labels):
            raise ValueError(f"{len(soft_labels)} soft labels for {len(labels)} images")
        if teacher is not None:
            raise ValueError("give soft_labels or a teacher, not both")
        columns += (np.asarray(soft_labels, np.float32),)
    dataset = tf.data.Dataset.from_tensor_slices(columns)
    if training:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    kind = augmentation.kind_of(augment)
    augmenter = augmentation.make_augmenter(kind, seed=seed) if (training and kind) else None
    if teacher is not None:
        _check_temperature(temperature)

    def prepare(x, y, soft=None):
        x = tf.cast(x, tf.float32)
        if augmenter is not None:
            x = tf.clip_by_value(augmenter(x, training=True), 0.0, 255.0)
        target = tf.one_hot(y, len(CLASS_NAMES))
        if teacher is not None:
            soft = _soften(teacher(x, training=False), temperature)
        if soft is not None:
            target = (1.0 - soft_weight) * target + soft_weight * soft
        if training and alpha is not None:
            x, target = augmentation.mix_batch(x, target, mix, alpha)
        return x, target

    return dataset.map(prepare, num_parallel_calls=autotune).prefetch(autotune)


def optimizer(learning_rate: float, *, schedule: str = "cosine", steps: int = 1,
              warmup_steps: int = 0, weight_decay: float = 0.0):
    """AdamW (Adam without ``weight_decay``) at a constant rate or a cosine decay over ``steps``,
    after a linear warm-up from a tenth of the rate over the first ``warmup_steps``."""
    import keras

    if schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=learning_rate * 0.1 if warmup_steps else learning_rate,
            decay_steps=max(1, steps - warmup_steps), alpha=0.01,
            warmup_target=learning_rate if warmup_steps else None, warmup_steps=warmup_steps)
    elif schedule == "constant":
        rate = learning_rate
    else:
        raise EmolibError(f"unknown schedule {schedule!r}; use 'cosine' or 'constant'")
    if weight_decay:
        return keras.optimizers.AdamW(rate, weight_decay=weight_decay)
    return keras.optimizers.Adam(rate)


def recipe(*, epochs: int, batch_size: int = 64, learning_rate: float = 1e-3,
           schedule: str = "cosine", warmup_epochs: int = 1, label_smoothing: float = 0.1,
           weight_decay: float = 0.0, augment: bool | str = True, class_weight: dict | None = None,
           early_stopping_patience: int | None = None, seed: int = 0,
           distillation: str | None = None, soft_weight: float = 0.5, temperature: float = 2.0,
           mix: str = "none", mix_alpha: float | None = None, **more) -> dict:
    """The parameters a run records in ``run.json`` and ``metrics.json`` (``runs.open_run``):
    a re-run resumes only with the same ones. Defaults are ``train``'s; ``distillation`` is
    ``"online"`` (a teacher) or ``"fixed"`` (soft labels); ``mix`` and its alpha are recorded
    when not "none" (so runs recorded before mixing existed still resume); ``more`` adds a
    notebook's own."""
    alpha = augmentation.mix_alpha(mix, mix_alpha)
    return {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
            "schedule": schedule, "warmup_epochs": warmup_epochs,
            "label_smoothing": label_smoothing, "weight_decay": weight_decay,
            "augment": augmentation.kind_of(augment) or False, "class_weight": bool(class_weight),
            "early_stopping_patience": early_stopping_patience, "seed": seed,
            "distillation_weight": soft_weight if distillation else 0.0,
            "distillation": distillation, **({"temperature": temperature} if distillation else {}),
            **({"mix": mix, "mix_alpha": alpha} if alpha is not None else {}), **more}


def train(model, train_data: tuple, val_data: tuple, *, run_name: str, epochs: int,
          batch_size: int = 64, learning_rate: float = 1e-3, schedule: str = "cosine",
          warmup_epochs: int = 1, label_smoothing: float = 0.1, weight_decay: float = 0.0,
          augment: bool | str = True, class_weight: dict | None = None,
          early_stopping_patience: int | None = None, tensorboard: bool = True,
          seed: int = 0, verbose: int = 2, strategy=None, callbacks: list | None = None,
          soft_labels: np.ndarray | None = None, soft_weight: float = 0.5,
          teacher=None, temperature: float = 2.0, mix: str = "none",
          mix_alpha: float | None = None, average_last: int = 0) -> Run:
    """The notebooks' compile, ``runs.open_run``, fit and ``result`` in one call (sweep trials
    and tests use it): fit ``model`` on ``train_data`` = (x, y) into ``outputs/runs/<run_name>/``,
    keeping the best epoch on ``val_data``; resumes an interrupted run with the same recipe.

    ``soft_labels`` (one row per training image) or a ``teacher`` model turn it into
    distillation, see ``make_dataset``; the selection on ``val_data`` still uses the true labels.
    ``mix`` mixes the training batches (mixup, cutmix; see ``make_dataset``).
    ``callbacks`` come after the run folder's own (so they see each epoch's checkpoint written).
    ``average_last`` saves the weights of the last N epochs into the run folder for weight
    averaging (``averaging.average_run`` makes the mean afterwards).
    """
    import keras
    import tensorflow as tf

    steps = int(np.ceil(len(train_data[0]) / batch_size))
    with (strategy or tf.distribute.get_strategy()).scope():
        model.compile(optimizer=optimizer(learning_rate, schedule=schedule, steps=steps * epochs,
                                          warmup_steps=steps * warmup_epochs if schedule == "cosine" else 0,
                                          weight_decay=weight_decay),
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
                      metrics=["accuracy"])
    distillation = "online" if teacher is not None else "fixed" if soft_labels is not None else None
    parameters = recipe(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                        schedule=schedule, warmup_epochs=warmup_epochs,
                        label_smoothing=label_smoothing, weight_decay=weight_decay, augment=augment,
                        class_weight=class_weight, early_stopping_patience=early_stopping_patience,
                        seed=seed, distillation=distillation, soft_weight=soft_weight,
                        temperature=temperature, mix=mix, mix_alpha=mix_alpha)
    run = runs.open_run(run_name, model, parameters, train_data=train_data, val_data=val_data,
                        soft_labels=soft_labels, teacher=teacher)
    train_ds = make_dataset(*train_data, batch_size=batch_size, training=True, augment=augment,
                            seed=seed, soft_labels=soft_labels, soft_weight=soft_weight,
                            teacher=teacher, temperature=temperature, mix=mix,
                            mix_alpha=mix_alpha)
    val_ds = make_dataset(*val_data, batch_size=256)
    extra = list(callbacks or [])
    if average_last:
        extra.insert(0, averaging.snapshot_callback(model, run.directory, epochs=epochs,
                                                    last=average_last))
    if early_stopping_patience:
        extra.append(keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max",
                                                   patience=early_stopping_patience))
    model.fit(train_ds, validation_data=val_ds, epochs=epochs, initial_epoch=run.initial_epoch,
              callbacks=run.callbacks(*extra, tensorboard=tensorboard), class_weight=class_weight,
              verbose=verbose, shuffle=False)  # make_dataset shuffles (Keras warns otherwise)
    return run.result()


def balanced_class_weight(labels: np.ndarray, power: float = 0.5) -> dict:
    """Class weights ``(n_max / n_c) ** power``: 0.5 softens the inverse-frequency weighting."""
    counts = np.bincount(labels, minlength=len(CLASS_NAMES)).astype(float)
    return {i: float((counts.max() / max(c, 1)) ** power) for i, c in enumerate(counts)}
