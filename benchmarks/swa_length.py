"""How long to average: SWA over a run's first k epochs, scored on PublicTest, for several k.

Stage 4 of the shipped recipe trains at a constant learning rate and keeps the mean of its
epochs' weights (stochastic weight averaging, ``emolib.averaging``). At a constant rate the
first k epochs of a long run are what a k-epoch run would have visited, so one run with
``average_epochs`` equal to its epochs answers "how many epochs should the average hold?" for
every shorter length at the price of one batch-norm pass per length. The mean of the first k
snapshots is made with batch norm measured again on all Training faces, as notebook 02 does.
PublicTest only: PrivateTest is never read.

Given several runs trained from one start with different seeds, each mean holds the first k
snapshots *of every run*: parallel weight averaging (SWAP, Gupta et al., 2020, "Stochastic
Weight Averaging in Parallel"), so two 4-epoch trajectories can be set against one 8-epoch
trajectory at the same training cost.

``--after RUN`` names an earlier run that the given one continues (trained on from the
earlier run's last epoch at the same rate): every mean then holds all of the earlier run's
snapshots first, so the rows say what the continued run's first k epochs add to its average.

``--again`` makes the longest mean a second time: the batch-norm pass is not bit-for-bit
repeatable on a multi-threaded CPU, and the second score shows by how much that moves it.
Rows are written to ``docs/metrics/<record>.md`` and ``.json``::

    .venv/bin/python benchmarks/swa_length.py outputs/runs/cpu-emonet-swa16 \\
        --counts 2 4 8 12 16 --again --record swa-length-session13
    .venv/bin/python benchmarks/swa_length.py outputs/runs/cpu-emonet-swa16 \\
        outputs/runs/cpu-emonet-s1stage4 --counts 4 --again --record swap-budget-session14
    .venv/bin/python benchmarks/swa_length.py outputs/runs/cpu-emonet-s17swa \
        --after outputs/runs/cpu-emonet-s14swa --counts 8 16 --again --record swa-after-session17
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_records  # noqa: E402

from emolib.averaging import epoch_of  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
METRICS = ROOT / "docs" / "metrics"


def logged_val(run_dir: Path) -> dict:
    """PublicTest accuracy of each epoch as the training log (``log.csv``) has it, by epoch from 1."""
    from emolib.checkpoints import read_log

    return {int(row["epoch"]) + 1: row["val_accuracy"] for row in read_log(run_dir / "log.csv")
            if "val_accuracy" in row}


def default_counts(available: int) -> list[int]:
    """1, 2, 4, … up to ``available``, and ``available`` itself."""
    counts, k = [], 1
    while k < available:
        counts.append(k)
        k *= 2
    return counts + [available]


def of_each_run(runs: int) -> str:
    """" of each of N runs" where several runs are averaged together, else nothing."""
    return f" of each of {runs} runs" if runs > 1 else ""


def before(after: int) -> str:
    """"the earlier run's N snapshots + " where a run continues another (``--after``), else nothing."""
    return f"the earlier run's {after} snapshots + " if after else ""


def table(record: Path, title: str, rows: list) -> list[str]:
    """The record's Markdown lines: one row per mean."""
    lines = bench_records.header(title, "swa_length.py", record, "PublicTest only (PrivateTest never read).")
    runs = rows[0]["runs"] if rows else 1
    lines += [f"| epochs averaged{of_each_run(runs)} | PublicTest accuracy | macro-F1 "
              "| last epoch alone (training log) | batch-norm pass (s) |", "|---|---|---|---|---|"]
    for row in rows:
        alone = "" if row["last_epoch_val"] is None else f"{100 * row['last_epoch_val']:.2f}%"
        again = " (made again)" if row["again"] else ""
        total = row.get("after", 0) + row["count"] * runs
        lines.append(f"| {before(row.get('after', 0))}{row['first']}–{row['last']} ({total}){again} "
                     f"| {100 * row['accuracy']:.2f}% | "
                     f"{row['macro_f1']:.3f} | {alone} | {row['bn_seconds']:.0f} |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="run",
                        help="a run folder whose snapshots/ hold its epochs' weights (trained with "
                        "average_epochs > 0); several runs from one start are averaged together")
    parser.add_argument("--counts", type=int, nargs="+", metavar="K",
                        help="average the first K snapshots, for each K (default 1, 2, 4, … and all)")
    parser.add_argument("--after", metavar="RUN",
                        help="an earlier run the given one continues: all of its snapshots come "
                        "first in every mean")
    parser.add_argument("--again", action="store_true", help="make the longest mean a second time")
    parser.add_argument("--record", default="swa-length", metavar="NAME",
                        help="docs/metrics/NAME.md and .json hold the rows (default %(default)s)")
    parser.add_argument("--title", default="Weight averaging by the number of epochs averaged",
                        help="the record's heading")
    parser.add_argument("--load", default="idle", help="what else ran meanwhile, for the record")
    args = parser.parse_args(argv)

    from emolib import averaging

    run_dirs = [Path(run) for run in args.runs]
    per_run = []
    for run_dir in run_dirs:
        per_run.append(averaging.snapshots(run_dir))
        if not per_run[-1]:
            print(f"error: {run_dir}: no snapshots/epoch-*.npz; train the run with average_epochs > 0",
                  file=sys.stderr)
            return 2
    earlier = averaging.snapshots(args.after) if args.after else []
    if args.after and not earlier:
        print(f"error: --after {args.after}: no snapshots/epoch-*.npz there; name the run this one "
              "continues (trained with average_epochs > 0)", file=sys.stderr)
        return 2
    run_dir, files = run_dirs[0], min(per_run, key=len)
    architecture = next((run_dir / name for name in ("model.keras", "best.keras")
                         if (run_dir / name).is_file()), None)
    if architecture is None:
        print(f"error: {run_dir}: neither model.keras nor best.keras to build the model from",
              file=sys.stderr)
        return 2
    counts = sorted(set(args.counts or default_counts(len(files))))
    if counts[0] < 1 or counts[-1] > len(files):
        whose = "the run's" if len(run_dirs) == 1 else "the shortest run's"
        print(f"error: --counts: give numbers from 1 to {whose} {len(files)} snapshots", file=sys.stderr)
        return 2

    from emolib import datasets, evaluation, models
    from emolib.errors import EmolibError

    data = datasets.load(os.environ.get("EMOLIB_DATA") or None, progress=False)
    train_images, _ = data.split("train")
    val = data.split("val")
    model = models.load_model(architecture)
    logged = logged_val(run_dir) if len(run_dirs) == 1 else {}
    rows = []
    for count, again in [(count, False) for count in counts] + ([(counts[-1], True)] if args.again else []):
        chosen = earlier + [file for run_files in per_run for file in run_files[:count]]
        started = time.perf_counter()
        try:
            mean = averaging.average(model, chosen, train_images)
        except EmolibError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        seconds = time.perf_counter() - started
        scores = evaluation.evaluate(mean, *val, split="val")
        first, last = epoch_of(chosen[len(earlier)]), epoch_of(chosen[len(earlier) + count - 1])
        rows.append({"count": count, "runs": len(run_dirs), "first": first, "last": last,
                     "after": len(earlier), "again": again,
                     "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"],
                     "recall": scores["recall"], "last_epoch_val": logged.get(last),
                     "bn_seconds": round(seconds, 1)})
        print(f"mean of {before(len(earlier))}epochs {first}-{last}{of_each_run(len(run_dirs))}"
              f"{' (again)' if again else ''}: "
              f"PublicTest {100 * scores['accuracy']:.2f}% ({seconds:.0f} s)", flush=True)
    conditions = {
        "command": f"`{bench_records.command('swa_length.py', argv)}`",
        "runs": "; ".join(f"`{folder}` ({len(run_files)} snapshots, epochs {epoch_of(run_files[0])}-"
                          f"{epoch_of(run_files[-1])})" for folder, run_files in zip(run_dirs, per_run)),
        **({"after": f"`{args.after}` ({len(earlier)} snapshots, first in every mean)"}
           if earlier else {}),
        "machine": bench_records.machine(args.load),
        "batch norm": f"measured again on all {len(train_images)} Training faces for every mean",
    }
    record = METRICS / f"{args.record}.md"
    bench_records.write(record, {"rows": rows}, table(record, args.title, rows), conditions)
    print(json.dumps({row["count"]: row["accuracy"] for row in rows if not row["again"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
