"""Command line: ``python -m emolib data|run|evaluate|predict``; user mistakes print one line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

from emolib.errors import EmolibError


def _data(args) -> int:
    from emolib import datasets

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", datasets.EmolibWarning)
        dataset = datasets.load(args.source, progress=not args.json)
    report = datasets.describe(dataset)
    report["warnings"] = [str(w.message) for w in caught if issubclass(w.category, datasets.EmolibWarning)]
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    for message in report["warnings"]:
        print(f"warning: {message}", file=sys.stderr)
    counts = report["counts"]
    classes = list(next(iter(counts.values())))
    print(f"{report['source']}: {report['images']} images; splits {report['split_note']}")
    print(f"{'class':<10}" + "".join(f"{split:>8}" for split in counts))
    for name in classes:
        print(f"{name:<10}" + "".join(f"{counts[s][name]:>8}" for s in counts))
    print(f"{'total':<10}" + "".join(f"{sum(counts[s].values()):>8}" for s in counts))
    dup = report["duplicates"]
    print(f"duplicates: {dup['groups']} groups of identical images ({dup['extra_copies']} extra "
          f"copies; {dup['groups_across_splits']} groups span splits, "
          f"{dup['groups_with_conflicting_labels']} have conflicting labels)")
    print(f"blank images: {report['blank']['count']}"
          + (f" e.g. {', '.join(report['blank']['examples'][:3])}" if report['blank']['count'] else ""))
    print(f"skipped files: {report['skipped']['count']}"
          + (f" e.g. {', '.join(report['skipped']['examples'][:3])}" if report['skipped']['count'] else ""))
    return 0


def _run(args) -> int:
    from emolib import parameters, runner

    overrides = parameters.parse_overrides(args.parameter)
    executed = runner.run(args.profile, args.only, overrides, tag=args.tag, log=args.log,
                          fresh=args.fresh)
    print(f"ran {len(executed)} notebook(s); executed copies in {executed[0].parent if executed else '-'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m emolib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="counts, duplicates and unreadable files of a dataset")
    data.add_argument("source", nargs="?", help="archive.zip, fer2013.csv or an image folder "
                      "(default: $EMOLIB_DATA, then data/)")
    data.add_argument("--json", action="store_true", help="print the report as JSON")
    data.set_defaults(handler=_data)

    run = commands.add_parser("run", help="run the notebooks headless (papermill) into outputs/")
    run.add_argument("--profile", default="quick", choices=("quick", "cpu", "full"),
                     help="quick: smoke run in minutes; cpu: best in ~1 h per training notebook "
                     "on a laptop CPU; full: for a GPU")
    run.add_argument("--only", nargs="+", metavar="NN", help="notebook numbers, e.g. --only 01 02")
    run.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                     help="override one notebook parameter (repeatable)")
    run.add_argument("--tag", default="", help="suffix for the executed notebooks' names")
    run.add_argument("--log", metavar="FILE", help="where the kernels' full output goes "
                     "(default: outputs/logs/run-<profile>-<time>.log)")
    run.add_argument("--fresh", action="store_true", help="start interrupted training runs "
                     "over instead of resuming them")
    run.set_defaults(handler=_run)

    for extra in _extra_commands():
        extra(commands)
    return parser


def _extra_commands():
    """Sub-commands defined next to the code they drive (evaluation, realtime)."""
    from emolib import commands

    return commands.REGISTRY


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for a user mistake, with one line on stderr)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except EmolibError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
