"""Batch mixing and distillation in the fine-tuning regime, against the stage 2 recipe.

Fine-tunes one saved model (stage 1 of the shipped recipe: EmoNet, 21 epochs without
augmentation) once per arm, with notebook 02's stage 2 recipe: face augmentation, AdamW (weight
decay 0.01), label smoothing 0.1, batch 64, a cosine decay from 1e-3 over the epochs without
warm-up, on the full Training split. The arms differ only in ``mix`` (``training.train(mix=...)``)
or, for ``distill``, in the targets: half the one-hot label, half a teacher's prediction (softened at
temperature 2) on the very augmented batch the student sees (``training.train(teacher=...)``); the
teacher is one or more ``--teacher`` models, averaged when several (notebook 04's ensemble).
Each arm reports PublicTest accuracy per epoch, its best, the best epoch's PublicTest macro-F1
and seconds per epoch (training plus the PublicTest pass); the input pipeline's faces per second
with and without each mixing are measured alone too. PrivateTest is never read.

Rows are kept by (arm, seed) in ``docs/metrics/<record>.json`` beside the markdown table
(``--record``), so a second seed adds rows (``--arms control mixup --seed 1``). Run folders:
``outputs/runs/bench-finetune-<arm>[-s<seed>]``, started over on every run (``--resume`` continues
an interrupted one instead)::

    .venv/bin/python benchmarks/finetune_arms.py --start stage1.keras --epochs 4 \\
        --arms distill control --teacher stage4.keras --record finetune-arms-session11
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_records import cpu_name  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ARMS = {"control": "none", "mixup": "mixup", "cutmix": "cutmix", "distill": "none"}
ROOT = Path(__file__).resolve().parents[1]
METRICS = ROOT / "docs" / "metrics" / "finetune-arms-session9.md"  # the default --record


def ensemble_teacher(paths: list[str]):
    """The ``--teacher`` models as one Keras model: the mean of their probabilities."""
    import keras

    from emolib import models

    members = [models.load_model(path) for path in paths]
    if len(members) == 1:
        return members[0]
    for number, member in enumerate(members):
        member.name = f"teacher_{number}"  # the saved runs are all named "emonet"
    inputs = keras.Input(members[0].input_shape[1:])
    return keras.Model(inputs, keras.layers.Average()([member(inputs) for member in members]),
                       name="teacher_ensemble")


def pipeline_faces_per_second(images, labels, mix: str, steps: int = 60) -> float:
    """Faces per second of ``make_dataset``'s training pipeline alone (face augmentation and
    ``mix``), after one warm-up batch."""
    from emolib import training

    batches = iter(training.make_dataset(images, labels, batch_size=64, training=True,
                                         augment="faces", mix=mix))
    next(batches)
    start = time.perf_counter()
    for _ in range(steps):
        next(batches)
    return steps * 64 / (time.perf_counter() - start)


def pipeline_rounds(train_data, rounds: int, steps: int = 300) -> dict:
    """Faces per second of the training pipeline for each mixing, measured in turn (none, mixup,
    cutmix, none, ...) so that load from other processes falls on all of them alike."""
    measured = {mix: [] for mix in ARMS.values()}
    for _ in range(rounds):
        for mix in measured:
            measured[mix].append(round(pipeline_faces_per_second(*train_data, mix, steps)))
    return measured


def epoch_timer():
    """A Keras callback recording each epoch's wall seconds (training and the PublicTest pass)."""
    import keras

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.started)

    timer = Timer()
    timer.seconds = []
    return timer


def run_arm(arm: str, args, train_data, val_data) -> dict:
    from emolib import evaluation, models, training

    mix = ARMS[arm]
    teacher = ensemble_teacher(args.teacher) if arm == "distill" else None
    name = f"bench-finetune-{arm}" + (f"-s{args.seed}" if args.seed else "")
    strategy = training.setup(args.seed)
    with strategy.scope():
        model = models.load_model(args.start)
    timer = epoch_timer()
    run = training.train(model, train_data, val_data, run_name=name, epochs=args.epochs,
                         batch_size=64, learning_rate=args.learning_rate, schedule="cosine",
                         warmup_epochs=0, label_smoothing=0.1, weight_decay=0.01,
                         augment="faces", seed=args.seed, mix=mix, tensorboard=False,
                         strategy=strategy, callbacks=[timer], verbose=2, teacher=teacher)
    scores = evaluation.evaluate(run.model, *val_data, split="val")  # PublicTest only
    history = run.history["val_accuracy"]
    return {"arm": arm, "seed": args.seed, "mix": mix,
            **({"teacher": [Path(path).name for path in args.teacher]} if teacher else {}),
            "mix_alpha": run.parameters.get("mix_alpha"), "run": name,
            "val_accuracy_by_epoch": [round(float(a), 4) for a in history],
            "best_val_accuracy": round(float(max(history)), 4),
            "best_epoch": int(max(range(len(history)), key=history.__getitem__)) + 1,
            "val_macro_f1": round(scores["macro_f1"], 4),
            "seconds_per_epoch": round(sum(timer.seconds) / max(1, len(timer.seconds)), 1),
            "seconds_by_epoch": [round(seconds, 1) for seconds in timer.seconds],
            "pipeline_faces_per_second": round(pipeline_faces_per_second(*train_data, mix)),
            "resumed_from_epoch": run.resumed_from_epoch}


def machine_line(row: dict) -> str:
    """Where a row ran, as the record's conditions say it (rows of session 9 lack the details)."""
    if "load" not in row:
        return (f"{row['machine']}, pinned to core(s) {row['cores']} at nice 19 with "
                "TF_NUM_INTRAOP_THREADS=1, under load (session 9)")
    return (f"{row['machine']} ({row['started'][:10]}), core(s) {row['cores']}, nice {row['nice']}, "
            f"{row['threads']} TF threads, {row['load']}")


def write_table(rows: list[dict], conditions: dict, record: Path, title: str) -> None:
    rows = sorted(rows, key=lambda row: (row["seed"], list(ARMS).index(row["arm"])))
    lines = [f"# {title}", "",
             "Produced by `benchmarks/finetune_arms.py`; rows are kept by (arm, seed) in "
             f"`{record.with_suffix('.json').name}`. PublicTest only (PrivateTest never read).", "",
             "| arm | seed | targets | PublicTest by epoch (%) | best (epoch) | macro-F1 "
             "(best epoch) | s / epoch (each epoch) | pipeline faces/s |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        mix = row["mix"] if row["mix"] == "none" else f"{row['mix']} ({row['mix_alpha']:g})"
        if row.get("teacher"):
            mix = "distilled from " + " + ".join(row["teacher"])
        by_epoch = ", ".join(f"{100 * a:.2f}" for a in row["val_accuracy_by_epoch"])
        each = ", ".join(f"{seconds:.0f}" for seconds in row.get("seconds_by_epoch", []))
        each = f" ({each})" if each else ""
        lines.append(f"| {row['arm']} | {row['seed']} | {mix} | {by_epoch} | "
                     f"**{100 * row['best_val_accuracy']:.2f}** ({row['best_epoch']}) | "
                     f"{row['val_macro_f1']:.3f} | {row['seconds_per_epoch']:.0f}{each} | "
                     f"{row['pipeline_faces_per_second']} |")
    lines += ["", "## Conditions", ""]
    for key, value in conditions.items():
        lines.append(f"- **{key}**: {value}")
    record.write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", required=True, help="the .keras model to fine-tune (stage 1)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--teacher", nargs="+", default=[], metavar="MODEL",
                        help="the distill arm's teacher: .keras files, averaged when several")
    parser.add_argument("--record", default=METRICS.stem, metavar="NAME",
                        help="docs/metrics/NAME.md and .json hold the rows (default %(default)s)")
    parser.add_argument("--load", default="idle",
                        help="what else ran meanwhile, for the record (default %(default)s)")
    parser.add_argument("--title", default="Batch mixing in the fine-tuning regime (session 9)",
                        help="the record's heading")
    parser.add_argument("--pipeline-only", type=int, default=0, metavar="ROUNDS",
                        help="only time the input pipeline of each mixing, in turn, ROUNDS times")
    parser.add_argument("--resume", action="store_true",
                        help="continue interrupted run folders instead of starting over")
    args = parser.parse_args(argv)
    if not Path(args.start).is_file():
        print(f"error: --start {args.start}: no such model file", file=sys.stderr)
        return 2
    if args.epochs < 1:
        print(f"error: --epochs {args.epochs}: must be at least 1", file=sys.stderr)
        return 2
    if "distill" in args.arms and not args.teacher:
        print("error: --arms distill needs --teacher MODEL.keras (one or more)", file=sys.stderr)
        return 2
    for path in args.teacher:
        if not Path(path).is_file():
            print(f"error: --teacher {path}: no such model file", file=sys.stderr)
            return 2
    record = METRICS.parent / f"{args.record}.md"
    if not args.resume:
        os.environ["EMOLIB_FRESH"] = "1"  # a stale run folder is started over, not resumed

    from emolib import datasets, evaluation, models

    data = datasets.load(os.environ.get("EMOLIB_DATA") or None, progress=False)
    train_data, val_data = data.split("train"), data.split("val")
    if args.pipeline_only:
        measured = pipeline_rounds(train_data, args.pipeline_only)
        print(json.dumps(measured))
        (record.parent / f"{record.stem}-pipeline.json").write_text(json.dumps(measured, indent=1) + "\n")
        return 0
    start_accuracy = evaluation.evaluate(models.load_model(args.start), *val_data, split="val")["accuracy"]
    store = record.with_suffix(".json")
    rows = json.loads(store.read_text()) if store.exists() else []
    threads = os.environ.get("TF_NUM_INTRAOP_THREADS")
    command = ((f"TF_NUM_INTRAOP_THREADS={threads} " if threads else "")
               + ".venv/bin/python benchmarks/finetune_arms.py "
               + shlex.join(sys.argv[1:] if argv is None else argv))
    for arm in args.arms:
        started = time.strftime("%Y-%m-%d %H:%M")
        row = run_arm(arm, args, train_data, val_data)
        row.update(command=command, started=started, cores=sorted(os.sched_getaffinity(0)),
                   nice=os.nice(0), threads=threads or "all", load=args.load,
                   machine=f"{cpu_name()}, {os.cpu_count()} cores")
        rows = [r for r in rows if (r["arm"], r["seed"]) != (arm, args.seed)] + [row]
        store.write_text(json.dumps(rows, indent=1) + "\n")
        write_table(rows, record=record, title=args.title, conditions={
            "commands": "; ".join(sorted({f"`{r['command']}`" for r in rows})),
            "start model": f"`{args.start}` (EmoNet, stage 1: 21 epochs without augmentation), "
                           f"PublicTest {100 * start_accuracy:.2f}% before fine-tuning",
            "recipe": f"{args.epochs} epochs on all {len(train_data[1])} Training faces, "
                      "augment=faces, batch 64, AdamW wd 0.01, label smoothing 0.1, cosine from "
                      f"{args.learning_rate:g} without warm-up; best epoch chosen on PublicTest "
                      f"({len(val_data[1])} faces)",
            "machines": "; ".join(sorted({machine_line(r) for r in rows})),
            "s / epoch": "wall seconds of an epoch including the PublicTest pass; pipeline "
                         "faces/s: make_dataset's training batches alone (60 batches of 64 after "
                         "the arm; `--pipeline-only` measures the three in turn, longer)",
        })
        print(json.dumps({k: row[k] for k in ("arm", "seed", "best_val_accuracy", "val_macro_f1",
                                              "seconds_per_epoch")}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
