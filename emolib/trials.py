"""Tune trials of a sweep (see ``emolib.sweep``): what runs in a Ray worker.

``train_trial`` trains EmoNet in-process with a Keras callback that reports PublicTest accuracy to
Tune after every epoch; ``notebook_trial`` executes notebook 02 or 03 and reports the epochs its
run's ``log.csv`` gains. Both leave the run folder a single run leaves, named per trial;
``emolib.sweep_folder`` ranks them in the sweep's results table.
"""

from __future__ import annotations

import csv
import json
import math
import os
import threading
from pathlib import Path

from emolib import sweep
from emolib.errors import EmolibError
from emolib.paths import outputs_dir
from emolib.sweep import METRIC, trial_parameters

#: The run folders a swept notebook trains, in order: their log.csv rows are the trial's epochs
#: (the training function's first: stage 1's first half at a smaller size, ``progressive_size``).
STAGES = {"train": ("{profile}-emonet-small-{tag}", "{profile}-emonet-stage1-{tag}", "{profile}-emonet-{tag}"),
          "02": ("{profile}-emonet-stage1-{tag}", "{profile}-emonet-{tag}"),
          "03": ("{profile}-mobilenet_v2-{tag}/head", "{profile}-mobilenet_v2-{tag}")}


def run_name(settings: dict, trial_id: str, stage: int = -1) -> str:
    """A trial's run folder: ``<profile>-<model>-<sweep>-<NN>`` (NN: Tune's trial number), or
    that of an earlier stage with ``stage=-2`` (EmoNet's stage 1, MobileNetV2's head) or ``-3``
    (EmoNet's progressive first half)."""
    return STAGES[settings["target"]][stage].format(profile=settings["profile"],
                                                     tag=trial_tag(settings, trial_id))


def trial_tag(settings: dict, trial_id: str) -> str:
    return f"{settings['name']}-{int(trial_id.rsplit('_', 1)[-1]):02d}"


def environment() -> dict:
    """The settings trials take from this process, ``EMOLIB_*`` (folders made absolute: Tune runs
    each trial in a folder of its own) and ``KERAS_*``. They travel in each trial's config, since
    Ray may have been started without them; Tune prints and saves that, so no ``TF_*`` (a prefix
    Terraform's tokens share) goes there."""
    found = {key: value for key, value in os.environ.items() if key.startswith(("EMOLIB_", "KERAS_"))}
    found["EMOLIB_OUTPUTS"] = str(outputs_dir(create=False).resolve())
    for key in ("EMOLIB_CACHE", "EMOLIB_DATA_DIR", "EMOLIB_DATA"):
        if found.get(key):
            found[key] = str(Path(found[key]).resolve())
    return found


def refuse_taken_runs(spec: dict, count: int) -> None:
    """Refuse to start ``count`` new trials whose run folders exist: named by sweep and trial
    number only, they would be taken for the trials' own (a finished stage 1 is not trained again)."""
    settings, runs = sweep._settings(spec), outputs_dir("runs", create=False)
    taken = [name for number in range(count) for stage in range(len(STAGES[spec["target"]]))
             if (runs / (name := run_name(settings, f"_{number}", stage))).exists()]
    if taken:
        raise EmolibError(f"{runs / taken[0]} (one of {len(taken)} run folders this sweep would write) "
                          f"exists from an earlier sweep named {spec['name']!r}; choose another --name, "
                          "or remove them")


def _start(config: dict) -> tuple[dict, dict]:
    """A trial's first step: the environment of the process that started the sweep, TensorFlow
    on the CPUs Tune gave it (and a notebook's kernel); its settings and parameters."""
    os.environ.update(config.get("environment") or {})
    threads = str(max(1, math.floor(config["sweep"]["cpus_per_trial"])))
    os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = threads
    return config["sweep"], trial_parameters(config)


def _own_stage(folder: Path, trial_id: str) -> bool:
    """Whether ``folder`` holds a run this trial finished before it was restored (Tune keeps a
    trial's id); a finished run of another trial there is refused, not trained over."""
    try:
        saved = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        return False  # not finished: training.train resumes it or starts it
    if (saved.get("sweep") or {}).get("trial") != trial_id:
        raise EmolibError(f"{folder} holds a run of another sweep or trial; remove it or choose "
                          "another sweep --name")
    return True


def _subset(images, labels, limit: int):
    """A seeded subset (the same images in every trial, whatever its seed); all when limit is 0."""
    import numpy as np

    if not limit or limit >= len(labels):
        return images, labels
    keep = np.sort(np.random.default_rng(0).choice(len(labels), size=limit, replace=False))
    return images[keep], labels[keep]


def _report_callback(run: str, first: int, last: int):
    import keras
    from ray import tune

    class ReportToTune(keras.callbacks.Callback):
        """After each epoch (its checkpoint and log written): PublicTest accuracy to Tune, whose
        scheduler may stop the trial here. Epochs count on across stages (``first`` + epoch);
        the trial's ``last`` epoch is reported after the run is saved, so a trial stopped at its
        end still leaves a finished run."""

        def on_epoch_end(self, epoch, logs=None):
            if first + epoch + 1 < last:
                tune.report(_epoch_result((logs or {})[METRIC], first + epoch + 1, run))

    return ReportToTune()


def _epoch_result(score: float, epoch: int, run: str, **final) -> dict:
    return {METRIC: float(score), "epoch": epoch, "run": run, **final}


def train_trial(config: dict) -> None:
    """A Tune trial: EmoNet with notebook 02's recipe and this trial's parameters (stage 1, then
    stage 2's fine-tuning with ``finetune_augment`` when ``finetune_epochs``); saves the runs.
    With ``progressive_size``, stage 1's first half trains at that size into a run of its own
    (``...-emonet-small-...``), on one learning-rate schedule with the rest (``emolib.progressive``)."""
    from ray import tune

    settings, params = _start(config)
    from emolib import datasets, evaluation, models, progressive, training

    trial_id = tune.get_context().get_trial_id()
    strategy = training.setup(params["seed"])  # a MirroredStrategy when the trial holds several GPUs
    data = datasets.load(params["data_source"] or None, progress=False)
    train_data = _subset(*data.split("train"), params["max_train_images"])
    val_data = _subset(*data.split("val"), params["max_eval_images"])
    epochs, small = params["epochs"], params["progressive_size"]
    progressive.check(small, epochs)

    def build(size: int = 48):
        with strategy.scope():
            return models.build_emonet(widths=tuple(params["widths"]), dense_units=params["dense_units"],
                                       batch_norm=params["batch_norm"], block=params["block"], input_size=size)

    power = params["class_weight_power"]
    common = dict(batch_size=params["batch_size"], label_smoothing=params["label_smoothing"],
                  weight_decay=params["weight_decay"], seed=params["seed"], verbose=0,
                  strategy=strategy, schedule=params["schedule"],
                  class_weight=training.balanced_class_weight(train_data[1], power) if power else None)
    cosine = params["schedule"] == "cosine"
    stage1 = -2 if params["finetune_epochs"] else -1  # the run folders, STAGES["train"]' index
    # phases: (folder, epochs, learning rate, augment, warm-up epochs, input size, stage-1 epochs done)
    first = progressive.first_epochs(epochs) if small else 0
    phases = [(-3, first, params["learning_rate"], params["augment"], 1, small, 0)] if small else []
    phases.append((stage1, epochs - first, params["learning_rate"], params["augment"], 0 if small else 1, 48, first))
    if params["finetune_epochs"]:  # stage 2 starts from stage 1's best epoch, without warm-up
        phases.append((-1, params["finetune_epochs"], params["finetune_learning_rate"],
                       params["finetune_augment"], 0, 48, 0))
    total, done, seconds, model = sum(phase[1] for phase in phases), 0, 0.0, None
    for index, (folder, count, learning_rate, augment, warmup, size, before) in enumerate(phases):
        name = run_name(settings, trial_id, folder)
        saved = outputs_dir("runs", create=False) / name
        if _own_stage(saved, trial_id) and index < len(phases) - 1:  # a restored trial
            with strategy.scope():
                model, done = models.load_model(saved / "model.keras"), done + count
            seconds += json.loads((saved / "metrics.json").read_text())["wall_time_s"]
            continue
        model = build(size) if model is None else progressive.carry_over(model, build, size)
        extra = [_report_callback(name, done, total)]
        if small and index < 2:  # a part of a progressive stage 1: one schedule over both
            extra.append(progressive.stage_schedule(
                params["learning_rate"], schedule=params["schedule"], epochs=epochs, warmup_epochs=1,
                steps_per_epoch=-(-len(train_data[1]) // params["batch_size"]), done_epochs=before))
        stage2 = {"mix": params["mix"]} if params["finetune_epochs"] and folder == -1 else {}  # notebook 02's
        run = training.train(model, progressive.resized(train_data, size), progressive.resized(val_data, size),
                             run_name=name, epochs=count, learning_rate=learning_rate, augment=augment,
                             warmup_epochs=warmup if cosine else 0,
                             callbacks=[c for c in extra if c is not None], **common, **stage2)
        at_48 = progressive.carry_over(run.model, build, 48)  # its weights at 48 px
        scores = evaluation.evaluate(at_48, *val_data, split="val")  # PublicTest only
        trial = {**settings, "arm": (config.get("arm") or {}).get("arm"), "trial": trial_id,
                 **({"input_size": size, "stage1_epochs_before": before} if small else {})}
        training.save_run(run, {"val": scores, "sweep": trial},
                          profile=settings["profile"], notes=f"trial of sweep {settings['name']}")
        model, done, seconds = run.model, done + count, seconds + run.wall_time_s
    tune.report(_epoch_result(run.history[METRIC][-1], total, name, val_macro_f1=scores["macro_f1"],
                              minutes=seconds / 60, finished=True))


def notebook_trial(config: dict) -> None:
    """A Tune trial: execute notebook 02 or 03 with this trial's parameters, reporting the epochs
    its runs' ``log.csv`` files gain (each once the next has begun, the last after the save)."""
    from ray import tune

    from emolib import runner

    settings, params = _start(config)
    trial_id = tune.get_context().get_trial_id()
    tag = trial_tag(settings, trial_id)
    folders = [outputs_dir("runs", create=False) / run_name(settings, trial_id, stage)
               for stage in range(len(STAGES[settings["target"]]))]
    failure = []

    def execute():
        try:
            runner.run(settings["profile"], [settings["target"]], {**params, "run_tag": tag},
                       check_data=False, tag=tag)
        except BaseException as error:  # re-raised in the trial's thread below
            failure.append(error)

    def scores():
        return [score for folder in folders for score in _log_scores(folder / "log.csv")]

    worker = threading.Thread(target=execute, daemon=True)
    worker.start()
    reported = 0
    try:
        while worker.is_alive():
            for epoch, score in enumerate(scores()[reported:-1], reported + 1):
                tune.report(_epoch_result(score, epoch, folders[-1].name))
                reported = epoch
            worker.join(timeout=2)
    finally:
        if worker.is_alive():  # stopped by the scheduler: end the notebook's kernel too
            _stop_children()
    if failure:
        raise failure[0]
    final = scores()
    for epoch, score in enumerate(final[reported:-1], reported + 1):
        tune.report(_epoch_result(score, epoch, folders[-1].name))
    saved = [json.loads((folder / "metrics.json").read_text()) for folder in folders
             if (folder / "metrics.json").exists()]  # every stage's, the final one last
    tune.report(_epoch_result(final[-1], len(final), folders[-1].name, finished=True,
                              minutes=sum(m["wall_time_s"] for m in saved) / 60,
                              val_macro_f1=saved[-1]["val"]["macro_f1"]))


def _stop_children() -> None:
    import psutil

    for child in psutil.Process().children(recursive=True):
        child.terminate()


def _log_scores(log_file: Path) -> list[float]:
    try:
        with open(log_file, newline="") as handle:
            return [float(row[METRIC]) for row in csv.DictReader(handle) if row.get(METRIC)]
    except (OSError, ValueError):
        return []  # not written yet: read again in two seconds
