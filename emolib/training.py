"""Training: seeds and devices, the tf.data pipeline, callbacks with resume, and saving a run.

A run lives in ``outputs/runs/<run_name>/``: ``best.keras`` (best on PublicTest), ``log.csv``
(one row per epoch), ``backup/`` while training (deleted at the end), and after
``save_run``: ``model.keras`` (inference copy, no optimizer), ``history.json``, ``metrics.json``.
Re-running with the same run name after a crash continues from the last finished epoch.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emolib import CLASS_NAMES, __version__
from emolib.errors import EmolibError
from emolib.paths import outputs_dir

#: The seed project's recipe, kept as the baseline: no augmentation, Adam 1e-4, batch 64.
SEED_RECIPE = {"epochs": 50, "batch_size": 64, "learning_rate": 1e-4, "schedule": "constant",
               "label_smoothing": 0.0, "augment": False, "weight_decay": 0.0}


def setup(seed: int = 0, mixed_precision: bool | None = None):
    """Seed everything, turn on mixed precision on a GPU, return a ``tf.distribute`` strategy.

    With more than one GPU the strategy is a ``MirroredStrategy``; build and train models
    inside ``with strategy.scope():``.
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    gpus = tf.config.list_physical_devices("GPU")
    if mixed_precision is None:
        mixed_precision = bool(gpus)
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed_precision else "float32")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


#: Training-time augmentations ``make_augmenter`` knows (``"none"`` turns it off).
AUGMENTATIONS = ("none", "basic", "faces")


def make_augmenter(kind: str = "basic", strength: float = 1.0, seed: int = 0):
    """Label-preserving augmentation for faces, as a Keras layer on raw 0-255 batches.

    ``"basic"``: flips, rotations up to 18 degrees, 10% shifts and zooms, contrast.
    ``"faces"``: what a face detector's crop varies in and the strong FER-2013 recipes use:
    flips; rotations up to 10 degrees, zooms of +-15% and shifts of +-8% (the detector's box
    is never exactly FER-2013's); brightness, contrast and gamma (real lighting); random erasing
    of one patch in a quarter of the faces (hands, glasses, hair).
    """
    import keras
    from keras import layers

    if kind not in AUGMENTATIONS[1:]:
        raise ValueError(f"unknown augmentation {kind!r}; use one of {', '.join(AUGMENTATIONS)}")
    if kind == "basic":
        return keras.Sequential([
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomRotation(0.05 * strength, fill_mode="nearest", seed=seed),
            layers.RandomTranslation(0.1 * strength, 0.1 * strength, fill_mode="nearest", seed=seed),
            layers.RandomZoom(0.1 * strength, fill_mode="nearest", seed=seed),
            layers.RandomContrast(0.2 * strength, value_range=(0, 255), seed=seed),
        ], name="augment")
    geometry_and_light = keras.Sequential([
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomRotation(strength * 10 / 360, fill_mode="nearest", seed=seed),
        layers.RandomZoom(0.15 * strength, fill_mode="nearest", seed=seed),
        layers.RandomTranslation(0.08 * strength, 0.08 * strength, fill_mode="nearest", seed=seed),
        layers.RandomBrightness(0.15 * strength, value_range=(0, 255), seed=seed),
        layers.RandomContrast(0.3 * strength, value_range=(0, 255), seed=seed),
    ], name="augment_faces")

    def augment_faces(images, training=True):
        images = geometry_and_light(images, training=training)
        if not training:
            return images
        return random_erasing(random_gamma(images, 0.4 * strength), 0.25 * strength)

    return augment_faces


def _augmentation_kind(augment) -> str | None:
    """``True``/``False`` (older notebooks and scripts) or a name from ``AUGMENTATIONS``."""
    if augment is True:
        return "basic"
    if augment in (False, None, "none", ""):
        return None
    if augment not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {augment!r}; use one of {', '.join(AUGMENTATIONS)}")
    return augment


def random_gamma(images, factor: float = 0.4):
    """``255 * (x / 255) ** g`` per image of a 0-255 batch, with ``log g`` uniform in +-factor."""
    import tensorflow as tf

    log_gamma = tf.random.uniform((tf.shape(images)[0], 1, 1, 1), -factor, factor)
    return 255.0 * tf.pow(tf.clip_by_value(images / 255.0, 1e-6, 1.0), tf.exp(log_gamma))


def random_erasing(images, rate: float = 0.25):
    """With probability ``rate`` per image, one rectangle (2-15% of the area) becomes noise."""
    import tensorflow as tf

    shape = tf.shape(images)
    n, h, w = shape[0], tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    area = tf.random.uniform((n,), 0.02, 0.15) * h * w
    aspect = tf.exp(tf.random.uniform((n,), np.log(0.3), np.log(3.3)))
    half_h, half_w = tf.sqrt(area * aspect) / 2, tf.sqrt(area / aspect) / 2
    cy, cx = tf.random.uniform((n,), 0.0, h), tf.random.uniform((n,), 0.0, w)
    rows = tf.range(h)[None, :, None]
    cols = tf.range(w)[None, None, :]
    inside = ((tf.abs(rows - cy[:, None, None]) < half_h[:, None, None])
              & (tf.abs(cols - cx[:, None, None]) < half_w[:, None, None])
              & (tf.random.uniform((n, 1, 1)) < rate))[..., None]
    return tf.where(inside, tf.random.uniform(tf.shape(images), 0.0, 255.0), images)


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
                 teacher=None, temperature: float = 2.0):
    """A ``tf.data`` pipeline over cached arrays: shuffle, batch, augment, one-hot, prefetch.

    Images stay uint8 until the batch is formed (a quarter of the memory traffic of float32).
    With ``soft_labels`` (n x 7, e.g. from ``teacher_targets``) each target is
    ``(1 - soft_weight) * one_hot + soft_weight * soft_label``: distillation. With ``teacher``
    (a model taking the same raw images) the soft label is instead the teacher's softened
    prediction on the very (augmented) batch the student trains on, a consistent teacher that
    has not memorised these views.
    """
    import tensorflow as tf

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
    kind = _augmentation_kind(augment)
    augmenter = make_augmenter(kind, seed=seed) if (training and kind) else None
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
        return x, target

    return dataset.map(prepare, num_parallel_calls=autotune).prefetch(autotune)


def compile_for_training(model, *, learning_rate: float, schedule: str = "cosine",
                         steps: int = 1, warmup_steps: int = 0, label_smoothing: float = 0.0,
                         weight_decay: float = 0.0):
    """Compile with Adam/AdamW and a constant or warm-up + cosine learning-rate schedule."""
    import keras

    if schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=learning_rate * 0.1 if warmup_steps else learning_rate,
            decay_steps=max(1, steps - warmup_steps), alpha=0.01,
            warmup_target=learning_rate if warmup_steps else None, warmup_steps=warmup_steps)
    elif schedule == "constant":
        rate = learning_rate
    else:
        raise ValueError(f"unknown schedule {schedule!r}; use 'cosine' or 'constant'")
    if weight_decay:
        optimizer = keras.optimizers.AdamW(rate, weight_decay=weight_decay)
    else:
        optimizer = keras.optimizers.Adam(rate)
    model.compile(optimizer=optimizer,
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
                  metrics=["accuracy"])
    return model


@dataclass
class Run:
    """What ``train`` returns: the best model (on val), its history and where it lives."""

    name: str
    directory: Path
    model: object
    history: dict
    parameters: dict
    wall_time_s: float
    resumed_from_epoch: int = 0
    extra: dict = field(default_factory=dict)


def _read_log(log_file: Path) -> dict:
    if not log_file.exists():
        return {}
    with open(log_file, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: [float(row[key]) for row in rows] for key in (rows[0] if rows else {})}


def train(model, train_data: tuple, val_data: tuple, *, run_name: str, epochs: int,
          batch_size: int = 64, learning_rate: float = 1e-3, schedule: str = "cosine",
          warmup_epochs: int = 1, label_smoothing: float = 0.1, weight_decay: float = 0.0,
          augment: bool | str = True, class_weight: dict | None = None,
          early_stopping_patience: int | None = None, tensorboard: bool = False,
          seed: int = 0, verbose: int = 2, strategy=None, callbacks: list | None = None,
          soft_labels: np.ndarray | None = None, soft_weight: float = 0.5,
          teacher=None, temperature: float = 2.0) -> Run:
    """Fit ``model`` on ``train_data`` = (x, y), selecting the best epoch on ``val_data``.

    ``soft_labels`` (one row per training image) or a ``teacher`` model turn it into
    distillation, see ``make_dataset``; the selection on ``val_data`` still uses the true labels.

    Callbacks: best checkpoint on val accuracy, CSV log, resume (``BackupAndRestore``),
    optional early stopping and TensorBoard. The learning-rate schedule is part of the optimizer
    so it continues where it left off after a resume.
    """
    import keras
    import tensorflow as tf

    for name, (images, _) in (("train_data", train_data), ("val_data", val_data)):
        if not len(images):  # refused before a run folder exists (tf.data would fail inside fit)
            raise EmolibError(f"{run_name}: {name} holds no images; load a source with train "
                              "and val splits (Dataset.split refuses an empty one)")
    run_dir = outputs_dir("runs", run_name)
    backup_dir, log_file, best_file = run_dir / "backup", run_dir / "log.csv", run_dir / "best.keras"
    resuming = backup_dir.exists() and any(backup_dir.iterdir())
    if not resuming:  # a fresh run: clear what an earlier, finished run with this name left
        for stale in (log_file, best_file):
            stale.unlink(missing_ok=True)
    previous = _read_log(log_file)
    resumed_from = len(previous.get("epoch", []))

    train_ds = make_dataset(*train_data, batch_size=batch_size, training=True, augment=augment,
                            seed=seed, soft_labels=soft_labels, soft_weight=soft_weight,
                            teacher=teacher, temperature=temperature)
    val_ds = make_dataset(*val_data, batch_size=256)
    steps_per_epoch = int(np.ceil(len(train_data[0]) / batch_size))
    with (strategy or tf.distribute.get_strategy()).scope():
        compile_for_training(model, learning_rate=learning_rate, schedule=schedule,
                             steps=steps_per_epoch * epochs,
                             warmup_steps=steps_per_epoch * warmup_epochs if schedule == "cosine" else 0,
                             label_smoothing=label_smoothing, weight_decay=weight_decay)

    checkpoint = keras.callbacks.ModelCheckpoint(best_file, monitor="val_accuracy", mode="max",
                                                 save_best_only=True)
    if previous.get("val_accuracy"):
        checkpoint.best = max(previous["val_accuracy"])  # do not forget the best before the crash
    callbacks = [keras.callbacks.BackupAndRestore(str(backup_dir)), checkpoint,
                 keras.callbacks.CSVLogger(str(log_file), append=True), *(callbacks or [])]
    if early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max",
                                                       patience=early_stopping_patience))
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "tensorboard")))

    start = time.perf_counter()
    model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=callbacks,
              class_weight=class_weight, verbose=verbose, shuffle=False)  # tf.data shuffles
    wall_time = time.perf_counter() - start
    history = _read_log(log_file)
    distilling = soft_labels is not None or teacher is not None
    best_model = keras.models.load_model(best_file, compile=False) if best_file.exists() else model
    parameters = {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
                  "schedule": schedule, "warmup_epochs": warmup_epochs,
                  "label_smoothing": label_smoothing, "weight_decay": weight_decay,
                  "augment": _augmentation_kind(augment) or False, "class_weight": bool(class_weight),
                  "early_stopping_patience": early_stopping_patience, "seed": seed,
                  "distillation_weight": soft_weight if distilling else 0.0,
                  "distillation": ("online" if teacher is not None
                                   else "fixed" if soft_labels is not None else None)}
    return Run(run_name, run_dir, best_model, history, parameters, wall_time, resumed_from)


def balanced_class_weight(labels: np.ndarray, power: float = 0.5) -> dict:
    """Class weights ``(n_max / n_c) ** power``: 0.5 softens the inverse-frequency weighting."""
    counts = np.bincount(labels, minlength=len(CLASS_NAMES)).astype(float)
    return {i: float((counts.max() / max(c, 1)) ** power) for i, c in enumerate(counts)}


def hardware() -> dict:
    """The machine a run used: CPU count, platform, GPUs."""
    import tensorflow as tf

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "gpus": [d.name for d in tf.config.list_physical_devices("GPU")]}


def versions() -> dict:
    """Library versions worth recording next to a result."""
    import keras
    import tensorflow as tf

    return {"emolib": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def export_model(model, path: str | os.PathLike) -> Path:
    """Save an inference copy of ``model`` (weights only, no optimizer state), atomically."""
    import keras

    path = Path(path)
    clean = keras.models.clone_model(model)
    clean.set_weights(model.get_weights())
    tmp = path.with_name(path.stem + ".tmp.keras")
    clean.save(tmp)
    os.replace(tmp, path)
    return path


def save_run(run: Run, metrics: dict, *, profile: str, notes: str = "") -> Path:
    """Write ``model.keras``, ``history.json`` and ``metrics.json`` into the run's folder."""
    export_model(run.model, run.directory / "model.keras")
    (run.directory / "history.json").write_text(json.dumps(run.history, indent=1))
    record = {
        "run": run.name, "model": run.model.name, "profile": profile,
        "params": int(run.model.count_params()),
        "protocol": "trained on Training, best epoch selected on PublicTest (val), "
                    "reported on PrivateTest (test)",
        "parameters": run.parameters, "wall_time_s": round(run.wall_time_s, 1),
        "resumed_from_epoch": run.resumed_from_epoch,
        "best_epoch": (int(np.argmax(run.history["val_accuracy"])) + 1
                       if run.history.get("val_accuracy") else None),
        "hardware": hardware(), "versions": versions(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "notes": notes, **metrics,
    }
    tmp = run.directory / "metrics.json.tmp"
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, run.directory / "metrics.json")
    shutil.rmtree(run.directory / "backup", ignore_errors=True)
    return run.directory / "metrics.json"
