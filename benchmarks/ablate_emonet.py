"""Ablation of EmoNet's training recipe: which ingredients earn their place, measured.

Each arm trains a reduced EmoNet (half width by default, a subset of Training, a few epochs,
so the whole study fits in about 20 minutes of a 2-core CPU) with the full recipe minus one
ingredient, and records the best PublicTest accuracy and macro-F1. PrivateTest is never read:
this is model selection. The ``full`` arm runs with several seeds so the seed-to-seed spread
(the noise floor against which the other arms are read) is measured, not assumed.

    python benchmarks/ablate_emonet.py --data ../shared/datasets/fer2013/archive.zip

Writes ``outputs/ablation/emonet_ablation[-TAG].csv`` (one row per arm, written as each arm
ends, so a killed study resumes where it stopped) and ``emonet_ablation[-TAG].md`` (a summary
table). A longer check of one ingredient, for instance:

    python benchmarks/ablate_emonet.py --epochs 15 --arms full "no augmentation" --full-seeds 1 --tag e15
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: The shipped recipe (notebook 02's cpu profile), scaled down by the command-line options.
FULL = {"batch_norm": True, "augment": True, "label_smoothing": 0.1, "weight_decay": 0.01,
        "schedule": "cosine", "learning_rate": 2e-3, "class_weight_power": 0.0, "batch_size": 64}

#: Each arm changes one thing from FULL.
ARMS = {
    "full": {},
    "no batch norm": {"batch_norm": False},
    "no augmentation": {"augment": False},
    "no label smoothing": {"label_smoothing": 0.0},
    "no weight decay (Adam)": {"weight_decay": 0.0},
    "constant LR (no warm-up/cosine)": {"schedule": "constant", "learning_rate": 1e-3},
    "class weights (sqrt inverse freq.)": {"class_weight_power": 0.5},
    "seed optimizer (Adam 1e-4 constant)": {"schedule": "constant", "learning_rate": 1e-4,
                                            "weight_decay": 0.0},
}
FIELDS = ["arm", "seed", "best_val_accuracy", "best_epoch", "last_val_accuracy",
          "val_macro_f1", "minutes"]


def run_arm(name: str, seed: int, data, args) -> dict:
    """Train one arm and score its best epoch on PublicTest."""
    from emolib import evaluation, models, training
    from emolib.paths import outputs_dir

    recipe = dict(FULL, **ARMS[name])
    (x_train, y_train), (x_val, y_val) = data
    strategy = training.setup(seed)
    with strategy.scope():
        model = models.build_emonet(widths=tuple(args.widths), dense_units=args.dense_units,
                                    batch_norm=recipe["batch_norm"])
    class_weight = (training.balanced_class_weight(y_train, recipe["class_weight_power"])
                    if recipe["class_weight_power"] else None)
    run_name = "ablation-" + "".join(c if c.isalnum() else "_" for c in name) + f"-s{seed}"
    shutil.rmtree(outputs_dir("runs", run_name), ignore_errors=True)
    run = training.train(
        model, (x_train, y_train), (x_val, y_val), run_name=run_name, epochs=args.epochs,
        batch_size=recipe["batch_size"], learning_rate=recipe["learning_rate"],
        schedule=recipe["schedule"], warmup_epochs=1 if recipe["schedule"] == "cosine" else 0,
        label_smoothing=recipe["label_smoothing"], weight_decay=recipe["weight_decay"],
        augment=recipe["augment"], class_weight=class_weight, seed=seed, verbose=0,
        strategy=strategy)
    scores = evaluation.evaluate(run.model, x_val, y_val, split="val")
    shutil.rmtree(run.directory, ignore_errors=True)  # not a finished run for notebook 04
    val = run.history["val_accuracy"]
    return {"arm": name, "seed": seed, "best_val_accuracy": round(max(val), 4),
            "best_epoch": val.index(max(val)) + 1, "last_val_accuracy": round(val[-1], 4),
            "val_macro_f1": round(scores["macro_f1"], 4),
            "minutes": round(run.wall_time_s / 60, 2)}


def summary(rows: list[dict]) -> str:
    """A Markdown table: each arm's mean best PublicTest accuracy and its difference to full."""
    import numpy as np

    by_arm: dict[str, list[dict]] = {}
    for row in rows:
        by_arm.setdefault(row["arm"], []).append(row)
    base = float(np.mean([float(r["best_val_accuracy"]) for r in by_arm.get("full", [])] or [np.nan]))
    lines = ["| arm | seeds | best PublicTest acc | vs full | PublicTest macro-F1 | minutes |",
             "|---|---|---|---|---|---|"]
    for arm, arm_rows in by_arm.items():
        acc = [float(r["best_val_accuracy"]) for r in arm_rows]
        f1 = np.mean([float(r["val_macro_f1"]) for r in arm_rows])
        spread = f" (±{(max(acc) - min(acc)) / 2 * 100:.1f})" if len(acc) > 1 else ""
        delta = "" if arm == "full" else f"{(np.mean(acc) - base) * 100:+.1f}"
        lines.append(f"| {arm} | {len(acc)} | {np.mean(acc) * 100:.1f}%{spread} | {delta} | "
                     f"{f1:.3f} | {np.mean([float(r['minutes']) for r in arm_rows]):.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="FER-2013 source (default: emolib finds it)")
    parser.add_argument("--images", type=int, default=12000,
                        help="training images per arm (a stratified-by-chance subset)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--widths", type=int, nargs=4, default=[16, 32, 64, 128])
    parser.add_argument("--dense-units", type=int, default=128)
    parser.add_argument("--full-seeds", type=int, default=2, help="seeds for the full arm")
    parser.add_argument("--arms", nargs="*", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--tag", default="", help="suffix for the result files (another setting)")
    args = parser.parse_args()

    import numpy as np

    from emolib import datasets
    from emolib.paths import outputs_dir

    data = datasets.load(args.data)
    x_train, y_train = data.split("train")
    keep = np.sort(np.random.default_rng(0).choice(len(y_train), size=min(args.images, len(y_train)),
                                                   replace=False))
    split = ((x_train[keep], y_train[keep]), data.split("val"))

    out = outputs_dir("ablation")
    stem = "emonet_ablation" + (f"-{args.tag}" if args.tag else "")
    table = out / f"{stem}.csv"
    rows = []
    if table.exists():
        with open(table, newline="") as handle:
            rows = list(csv.DictReader(handle))
    done = {(r["arm"], int(r["seed"])) for r in rows}
    todo = [(arm, seed) for arm in args.arms
            for seed in range(args.full_seeds if arm == "full" else 1) if (arm, seed) not in done]
    print(f"{len(todo)} arms to run ({len(done)} already in {table}); "
          f"{len(keep)} training images, {args.epochs} epochs, widths {args.widths}", flush=True)
    for i, (arm, seed) in enumerate(todo, 1):
        start = time.perf_counter()
        rows.append(run_arm(arm, seed, split, args))
        tmp = table.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, table)
        print(f"[{i}/{len(todo)}] {arm} (seed {seed}): best PublicTest "
              f"{rows[-1]['best_val_accuracy']:.3f} in {time.perf_counter() - start:.0f} s", flush=True)
    (out / f"{stem}.md").write_text(summary(rows))
    print(summary(rows))


if __name__ == "__main__":
    main()
