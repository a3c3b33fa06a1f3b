"""Weight soups: the mean of several saved EmoNets' weights, scored on PublicTest.

Networks fine-tuned from one starting point often sit in one basin of the loss, and the mean of
their weights can then beat each of them at no cost when it runs (Wortsman et al., 2022, "Model
soups"); stage 4 of the shipped recipe is one such mean, over the epochs of one run (SWA). This
benchmark tries the saved stages of a recipe as the ingredients: every uniform soup that holds
the best single model (the ``--anchor``, by default the best on PublicTest), and the greedy soup
(ingredients in order of their own PublicTest accuracy, each kept only if the soup does not fall).
Every soup's batch-norm statistics are measured again on all Training faces
(``averaging.average``), which is its only cost. PublicTest only: PrivateTest is never read.

Rows are written to ``docs/metrics/<record>.md`` and ``.json``. With ``--save NAME`` the best
soup, if it beats every ingredient on PublicTest, becomes a run folder ``outputs/runs/NAME``
(``model.keras`` and a ``metrics.json`` scored like every run: TTA chosen on PublicTest, then
PrivateTest once), which ``shipping.ship`` can make the default::

    .venv/bin/python benchmarks/weight_soup.py stage1.keras stage2.keras stage3.keras \\
        stage4.keras --record weight-soup-session12 --save soup-s12
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_records  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
METRICS = ROOT / "docs" / "metrics"


def soup(models_by_name: dict, names: list, train_images, folder: Path):
    """The mean of the named models' weights, batch norm measured again on ``train_images``."""
    import numpy as np

    from emolib import averaging

    files = []
    for name in names:  # each model's weights are written once, under its place in the dict
        files.append(folder / f"model-{list(models_by_name).index(name)}.npz")
        if not files[-1].exists():
            np.savez(files[-1], *models_by_name[name].get_weights())
    return averaging.average(models_by_name[names[0]], files, train_images)


def candidates(names: list, anchor: str) -> list[tuple]:
    """Every subset of ``names`` with two or more members that holds ``anchor``, smallest first."""
    others = [name for name in names if name != anchor]
    return [(anchor, *combo) for size in range(1, len(others) + 1)
            for combo in itertools.combinations(others, size)]


def greedy(order: list, score) -> tuple[list, list]:
    """Wortsman et al.'s greedy soup: ``order`` best first, each added if ``score`` does not fall.

    ``score(names)`` is a soup's PublicTest accuracy. Returns the kept names and each step's
    (names tried, score, kept).
    """
    kept, best, steps = [order[0]], score([order[0]]), []
    for name in order[1:]:
        tried = kept + [name]
        accuracy = score(tried)
        steps.append((tried, accuracy, accuracy >= best))
        if accuracy >= best:
            kept, best = tried, accuracy
    return kept, steps


def save_run(name: str, model, best: dict, data, command: str) -> Path:
    """``model`` as the run folder ``outputs/runs/name``: ``model.keras`` and ``metrics.json``."""
    from emolib import evaluation, paths, records
    from emolib.checkpoints import write_json
    from emolib.runs import export_model

    folder = paths.outputs_dir("runs", name)
    scores = evaluation.evaluate_model(model, data.split("val"), data.split("test"))
    export_model(model, folder / "model.keras")
    write_json(folder / "metrics.json", {
        "run": name, "model": model.name, "profile": "cpu", "params": int(model.count_params()),
        "protocol": "trained on Training, soup chosen on PublicTest (val), reported on PrivateTest (test)",
        "parameters": {"soup": best["ingredients"], "batch_norm": "measured again on Training"},
        "wall_time_s": best["bn_seconds"], "resumed_from_epoch": 0, "best_epoch": None,
        "hardware": records.hardware(), "versions": records.versions(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "notes": f"made by `{command}`", **scores})
    return folder


def table(record: Path, title: str, singles: dict, rows: list, steps: list) -> list[str]:
    """The record's Markdown lines: each model alone, each soup, the greedy soup's path."""
    lines = bench_records.header(title, "weight_soup.py", record, "PublicTest only (PrivateTest never read).")
    lines += ["| model | PublicTest accuracy | macro-F1 | batch-norm pass (s) |", "|---|---|---|---|"]
    for name, scores in singles.items():
        lines.append(f"| {name} alone | {100 * scores['accuracy']:.2f}% | {scores['macro_f1']:.3f} | |")
    for row in rows:
        lines.append(f"| mean of {' + '.join(row['ingredients'])} | {100 * row['accuracy']:.2f}% | "
                     f"{row['macro_f1']:.3f} | {row['bn_seconds']:.0f} |")
    lines += ["", "Greedy soup, best single model first:", ""]
    return lines + [f"- {' + '.join(tried)}: {100 * accuracy:.2f}%, {'kept' if kept else 'dropped'}"
                    for tried, accuracy, kept in steps]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="two or more saved EmoNets (.keras) of one recipe")
    parser.add_argument("--anchor", help="the model every uniform soup holds (default: the best alone)")
    parser.add_argument("--record", default="weight-soup", metavar="NAME",
                        help="docs/metrics/NAME.md and .json hold the rows (default %(default)s)")
    parser.add_argument("--title", default="Weight soups of a recipe's saved stages",
                        help="the record's heading")
    parser.add_argument("--load", default="idle", help="what else ran meanwhile, for the record")
    parser.add_argument("--save", metavar="NAME", help="save the best soup as outputs/runs/NAME "
                        "if it beats every ingredient on PublicTest")
    args = parser.parse_args(argv)
    if len(set(args.models)) < 2:
        print("error: give two or more different .keras models to average", file=sys.stderr)
        return 2
    for path in args.models:
        if not Path(path).is_file():
            print(f"error: {path}: no such model file", file=sys.stderr)
            return 2
    if args.anchor and args.anchor not in args.models:
        print(f"error: --anchor {args.anchor}: not one of the models given", file=sys.stderr)
        return 2

    from emolib import datasets, evaluation, models
    from emolib.errors import EmolibError

    data = datasets.load(os.environ.get("EMOLIB_DATA") or None, progress=False)
    train_images, _ = data.split("train")
    val = data.split("val")
    loaded = {path: models.load_model(path) for path in dict.fromkeys(args.models)}
    shapes = {path: [w.shape for w in model.get_weights()] for path, model in loaded.items()}
    for path, shape in shapes.items():
        if shape != shapes[args.models[0]]:
            print(f"error: {path}: its weights do not fit {args.models[0]}'s model; a soup needs "
                  "one architecture", file=sys.stderr)
            return 2
    singles = {path: evaluation.evaluate(model, *val, split="val") for path, model in loaded.items()}
    for path, scores in singles.items():
        print(f"{path}: PublicTest {100 * scores['accuracy']:.2f}%", flush=True)
    order = sorted(loaded, key=lambda path: -singles[path]["accuracy"])
    anchor = args.anchor or order[0]
    rows, made = {}, {}  # by sorted ingredients: the record's row, the soup itself
    with tempfile.TemporaryDirectory() as folder:
        def score(names) -> float:
            key = tuple(sorted(names))
            if len(key) == 1:
                return singles[key[0]]["accuracy"]
            if key not in rows:
                started = time.perf_counter()
                try:
                    mean = soup(loaded, list(key), train_images, Path(folder))
                except EmolibError as error:
                    raise SystemExit(f"error: {error}") from None
                seconds = time.perf_counter() - started
                made[key] = mean
                scores = evaluation.evaluate(mean, *val, split="val")
                rows[key] = {"ingredients": list(key), "accuracy": scores["accuracy"],
                             "macro_f1": scores["macro_f1"], "bn_seconds": round(seconds, 1)}
                print(f"mean of {' + '.join(key)}: PublicTest {100 * scores['accuracy']:.2f}% "
                      f"({seconds:.0f} s)", flush=True)
            return rows[key]["accuracy"]

        for names in candidates(order, anchor):
            score(names)
        kept, steps = greedy(order, score)
    command = bench_records.command("weight_soup.py", argv)
    conditions = {
        "command": f"`{command}`",
        "machine": bench_records.machine(args.load),
        "batch norm": f"measured again on all {len(train_images)} Training faces for every soup "
                      "(the batch-norm pass column is that cost, on this machine)",
        "greedy soup": " + ".join(kept),
    }
    record = METRICS / f"{args.record}.md"
    result = {"singles": {path: {"accuracy": s["accuracy"], "macro_f1": s["macro_f1"]}
                          for path, s in singles.items()},
              "soups": list(rows.values()), "greedy": {"kept": kept, "steps": steps}}
    bench_records.write(record, result, table(record, args.title, singles, list(rows.values()), steps),
                        conditions)
    best = max(rows.values(), key=lambda row: row["accuracy"])
    if args.save:
        if best["accuracy"] > singles[order[0]]["accuracy"]:
            folder = save_run(args.save, made[tuple(best["ingredients"])], best, data, command)
            print(f"saved the mean of {' + '.join(best['ingredients'])} as {folder}", flush=True)
        else:
            print(f"no soup beats {order[0]} on PublicTest; nothing saved", flush=True)
    print(json.dumps({"best_soup": best["ingredients"], "accuracy": best["accuracy"],
                      "best_single": order[0], "single_accuracy": singles[order[0]]["accuracy"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
