"""Weight averaging (SWA): the mean of the weights a run visits over its last epochs.

Trained on at a steady learning rate, a network keeps moving around a wide, flat region of the
loss; the mean of the weights it passes through sits nearer that region's centre than any one
epoch and usually generalises better (Izmailov et al., 2018, "Averaging Weights Leads to Wider
Optima and Better Generalization"). Averaged weights need their batch-norm statistics measured
again, because the mean of several networks' activation statistics is not the statistics of
the mean network.

``snapshot_callback`` writes each of the last epochs' weights into the run folder
(``snapshots/epoch-NNNN.npz``; an interrupted run keeps those already written), and ``average``
builds the averaged model from them. Notebook 02 keeps the average only if it beats the run's
best single epoch on PublicTest.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from emolib.checkpoints import save_atomic
from emolib.errors import EmolibError

SNAPSHOTS = "snapshots"


def snapshot_callback(model, run_dir: str | os.PathLike, *, epochs: int, last: int):
    """A Keras callback saving ``model``'s weights after each of the last ``last`` of ``epochs``."""
    import keras

    if not 0 < last <= epochs:
        raise EmolibError(f"average_epochs={last}: give a number from 1 to the stage's {epochs} "
                          "epochs (0 turns weight averaging off)")
    folder = Path(run_dir) / SNAPSHOTS

    def save(epoch: int, logs=None):  # Keras counts epochs from 0
        if epoch + 1 > epochs - last:
            folder.mkdir(parents=True, exist_ok=True)
            weights = model.get_weights()

            def write(path):
                with open(path, "wb") as handle:
                    np.savez(handle, *weights)
            save_atomic(folder / f"epoch-{epoch + 1:04d}.npz", write)

    return keras.callbacks.LambdaCallback(on_epoch_end=save)


def epoch_of(snapshot: str | os.PathLike) -> int:
    """The epoch a snapshot file holds (``epoch-0007.npz`` -> 7)."""
    return int(Path(snapshot).stem.split("-")[1])


def snapshots(run_dir: str | os.PathLike) -> list[Path]:
    """The snapshot files of a run, oldest epoch first."""
    return sorted((Path(run_dir) / SNAPSHOTS).glob("epoch-*.npz"))


def average(model, files: list, images: np.ndarray | None = None, *, batch_size: int = 256):
    """A copy of ``model`` holding the mean of the weights in ``files``.

    With ``images`` (training faces, uint8 or float, N x 48 x 48 x 1) the batch-norm layers'
    moving mean and variance are then measured again on them (``recompute_batch_norm``).
    """
    import keras

    if not files:
        raise EmolibError("no weight snapshots to average; train with average_epochs > 0 first")
    total = None
    for file in files:
        with np.load(file) as stored:
            weights = [stored[f"arr_{i}"].astype(np.float64) for i in range(len(stored.files))]
        if total is not None and [w.shape for w in weights] != [t.shape for t in total]:
            raise EmolibError(f"{file}: its weights do not fit the others' model; remove it")
        total = weights if total is None else [t + w for t, w in zip(total, weights)]
    averaged = keras.models.clone_model(model)
    averaged.set_weights([(t / len(files)).astype(w.dtype) for t, w in zip(total, model.get_weights())])
    if images is not None:
        recompute_batch_norm(averaged, images, batch_size=batch_size)
    return averaged


def batch_norm_layers(model) -> list:
    """Every ``BatchNormalization`` layer of ``model``, nested models included."""
    import keras

    found = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        found.extend(batch_norm_layers(layer))
    return found


def recompute_batch_norm(model, images: np.ndarray, *, batch_size: int = 256) -> int:
    """Set each batch-norm layer's moving statistics to their mean over ``images``' batches.

    Runs the model in training mode batch by batch with the layers' momentum set so that the
    moving statistics become the running mean of the batch statistics (``k / (k + 1)`` at the
    k-th batch), then restores the momentum. Returns the number of layers updated.
    """
    norms = batch_norm_layers(model)
    if not norms or not len(images):
        return 0
    momenta = [layer.momentum for layer in norms]
    try:
        for k, start in enumerate(range(0, len(images), batch_size)):
            for layer in norms:
                layer.momentum = k / (k + 1)
            model(np.asarray(images[start:start + batch_size], np.float32), training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
    return len(norms)


def average_run(run, train_images: np.ndarray, val: tuple, *, batch_size: int = 256):
    """``run`` with its snapshots' average as its model if that scores better on ``val``.

    ``val`` is (images, labels) of PublicTest: the choice between the best single epoch and the
    average is model selection, so it never sees PrivateTest. The run's ``extra`` records both
    scores and which was kept (``save_run`` writes it into ``metrics.json``).
    """
    from dataclasses import replace

    from emolib.evaluation import predict_proba

    files = snapshots(run.directory)
    averaged = average(run.model, files, train_images, batch_size=batch_size)
    images, labels = val
    best, mean = (float(np.mean(predict_proba(model, images).argmax(axis=1) == labels))
                  for model in (run.model, averaged))
    record = {"epochs": [epoch_of(file) for file in files],
              "val_accuracy": mean, "best_epoch_val_accuracy": best, "kept": mean > best}
    return replace(run, model=averaged if mean > best else run.model,
                   extra={**run.extra, "weight_average": record})
