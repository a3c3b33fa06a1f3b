"""Notebook 04's ensemble over any saved models: members chosen on PublicTest, reported on PrivateTest.

Notebook 04 builds its ensemble from the finished runs in ``outputs/runs`` and the shipped
default. Models kept elsewhere (earlier stages of a recipe, benchmark arms, models restored from
git history) can be ensembled the same way here: ``comparison.compare`` with each model's TTA
chosen on PublicTest among ``--tta`` and none, members picked on PublicTest by greedy forward
selection (``evaluation.select_ensemble``, at most ``--max-members``), and then every model and
the ensemble scored once on PrivateTest. Rows go to ``docs/metrics/<record>.md`` and ``.json``::

    .venv/bin/python benchmarks/ensemble_select.py stage4.keras stage4kd.keras swa16.keras \\
        --names stage4 stage4kd swa16 --record ensemble-session13
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_records  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
METRICS = ROOT / "docs" / "metrics"


def table(record: Path, title: str, rows: list, members: list) -> list[str]:
    """The record's Markdown lines: one row per model and the ensemble, then its members."""
    lines = bench_records.header(title, "ensemble_select.py", record, "TTA and members chosen on "
                                 "PublicTest; PrivateTest read once, after the choice.")
    lines += ["| model | TTA (chosen on PublicTest) | PublicTest accuracy | PrivateTest accuracy (95% CI) "
              "| PrivateTest macro-F1 |", "|---|---|---|---|---|"]
    for row in rows:
        low, high = row["test_ci95"]
        lines.append(f"| {row['name']} | {row['tta'] or 'none'} | {100 * row['val_accuracy']:.2f}% | "
                     f"{100 * row['test_accuracy']:.2f}% ({100 * low:.1f}–{100 * high:.1f}) | "
                     f"{row['test_macro_f1']:.3f} |")
    return lines + ["", "Ensemble members (greedy forward selection on PublicTest): "
                    f"{', '.join(members) or 'none'}."]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="two or more saved models (.keras)")
    parser.add_argument("--names", nargs="+", help="a short name for each model, in order")
    parser.add_argument("--tta", nargs="*", default=["flip"], choices=("flip", "crops", "flip+crops"),
                        help="TTAs tried on PublicTest besides none (default: flip)")
    parser.add_argument("--max-members", type=int, default=4, help="at most this many members")
    parser.add_argument("--record", default="ensemble-select", metavar="NAME",
                        help="docs/metrics/NAME.md and .json hold the rows (default %(default)s)")
    parser.add_argument("--title", default="An ensemble of saved models, chosen on PublicTest")
    parser.add_argument("--load", default="idle", help="what else ran meanwhile, for the record")
    args = parser.parse_args(argv)
    names = args.names or [Path(path).stem for path in args.models]
    if len(names) != len(args.models) or len(set(names)) != len(names):
        print("error: --names: give one different name for each model", file=sys.stderr)
        return 2
    if len(set(args.models)) < 2:
        print("error: give two or more different models to ensemble", file=sys.stderr)
        return 2
    if args.max_members < 2:
        print("error: --max-members: an ensemble needs 2 or more", file=sys.stderr)
        return 2
    for path in args.models:
        if not Path(path).is_file():
            print(f"error: {path}: no such model file", file=sys.stderr)
            return 2

    from emolib import comparison, datasets, registry
    from emolib.errors import EmolibError

    data = datasets.load(os.environ.get("EMOLIB_DATA") or None, progress=False)
    try:
        candidates = {name: registry.Candidate(name, registry.load(path), Path(path), "file")
                      for name, path in zip(names, args.models)}
        result = comparison.compare(candidates, data.split("test"), val=data.split("val"),
                                    tta_choices=[None, *args.tta], ensemble="select",
                                    max_ensemble_members=args.max_members, latency=False)
    except EmolibError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    val, test = result.metrics("val"), result.metrics("test")
    rows = [{"name": name, "tta": result.chosen_tta.get(name), "val_accuracy": val[name]["accuracy"],
             "test_accuracy": test[name]["accuracy"], "test_ci95": test[name]["accuracy_ci95"],
             "test_macro_f1": test[name]["macro_f1"], "test_recall": test[name]["recall"]}
            for name in test]
    conditions = {"command": f"`{bench_records.command('ensemble_select.py', argv)}`",
                  "models": ", ".join(f"{name} = `{path}`" for name, path in zip(names, args.models)),
                  "machine": bench_records.machine(args.load)}
    record = METRICS / f"{args.record}.md"
    bench_records.write(record, {"rows": rows, "members": result.members},
                        table(record, args.title, rows, result.members), conditions)
    for row in rows:
        print(f"{row['name']}: PublicTest {100 * row['val_accuracy']:.2f}%, "
              f"PrivateTest {100 * row['test_accuracy']:.2f}%", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
