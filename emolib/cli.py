"""Command line: ``python -m emolib data|run|evaluate|predict|sweep``; user mistakes print one line.

Each sub-command: ``add_<name>(commands)`` declares its arguments, ``_<name>(args)`` runs it (and
imports what it drives only then, so ``--help`` starts fast); ``build_parser`` adds ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import warnings
from pathlib import Path

from emolib.errors import EmolibError


def non_negative_int(text: str) -> int:
    """argparse type for counts where 0 means all: refuses negatives and non-integers."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; use 0 (all) or a "
                                         "positive count") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; use 0 (all) or a positive count")
    return value


def add_data(commands) -> None:
    """``data [SOURCE] [--json]``."""
    data = commands.add_parser("data", help="counts, duplicates and unreadable files of a dataset")
    data.add_argument("source", nargs="?", help="archive.zip, fer2013.csv or an image folder "
                      "(default: $EMOLIB_DATA, then data/)")
    data.add_argument("--json", action="store_true", help="print the report as JSON")
    data.set_defaults(handler=_data)


def _data(args) -> int:
    from emolib import data_quality, reports

    report = data_quality.data_report(args.source, progress=not args.json)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    for message in report["warnings"]:
        print(f"warning: {message}", file=sys.stderr)
    print(reports.format_data_report(report))
    return 0


def add_run(commands) -> None:
    """``run [--profile P] [--only NN ...] [-p NAME=VALUE] [--tag T] [--log FILE] [--fresh]``."""
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


def _run(args) -> int:
    from emolib import parameters, runner

    overrides = parameters.parse_overrides(args.parameter)
    executed = runner.run(args.profile, args.only, overrides, tag=args.tag, log=args.log,
                          fresh=args.fresh)
    print(f"ran {len(executed)} notebook(s); executed copies in {executed[0].parent if executed else '-'}")
    return 0


def add_evaluate(commands) -> None:
    """``evaluate [MODEL ...] --data SOURCE [--split test] [--detect-faces] [--json]``."""
    evaluate = commands.add_parser(
        "evaluate", help="accuracy (95%% CI), macro-F1, per-class scores, confusion, ECE, "
        "latency and size of models on a dataset split")
    evaluate.add_argument("models", nargs="*", metavar="MODEL",
                          help="a .keras or .tflite file, a run folder or a run name in "
                          "outputs/runs (default: the shipped model, else the newest run)")
    evaluate.add_argument("--data", metavar="SOURCE", help="archive.zip, fer2013.csv or a folder "
                          "with one sub-folder per class (default: $EMOLIB_DATA, then data/)")
    evaluate.add_argument("--split", default="test", choices=("train", "val", "test", "all"),
                          help="test = PrivateTest (default), val = PublicTest; all = every "
                          "image (a dataset no model was trained on)")
    evaluate.add_argument("--detect-faces", action="store_true",
                          help="find and crop the face in photos first (Haar); small images "
                          "are taken as face crops")
    evaluate.add_argument("--tta", default="none", choices=("none", "flip", "crops", "flip+crops"),
                          help="test-time augmentation (choose it on --split val, not on test)")
    evaluate.add_argument("--ensemble", action="store_true",
                          help="also score the averaged probabilities of all the models")
    evaluate.add_argument("--max-images", type=non_negative_int, default=0, metavar="N",
                          help="a seeded random subset of N images (0 = all)")
    evaluate.add_argument("--no-latency", action="store_true", help="skip the latency timing")
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")
    evaluate.set_defaults(handler=_evaluate)


def _evaluate(args) -> int:
    from emolib import reports

    report = reports.evaluate_report(
        args.models, data=args.data, split=args.split, detect_faces=args.detect_faces,
        tta=None if args.tta == "none" else args.tta, max_images=args.max_images,
        ensemble=args.ensemble, latency=not args.no_latency)
    print(json.dumps(report, indent=1) if args.json else reports.format_report(report))
    return 0


def add_predict(commands) -> None:
    """``predict PATH ... [--model M] [--backend B] [--detector haar] [--smoothing S] [--json]
    [--csv FILE]``."""
    predict = commands.add_parser(
        "predict", help="faces, track ids, emotions and the 7 probabilities in images or videos "
        "(the real-time pipeline of notebook 05)",
        description="Every face on every frame: a full-frame scan whenever a followed face is "
        "lost or the picture cuts, tracking in between. Each face of a video carries a track id "
        "that a cut or a new person renews.")
    predict.add_argument("paths", nargs="+", metavar="PATH", help="image or video files")
    predict.add_argument("--model", default="", metavar="M",
                         help="a .keras or .tflite file, a run folder or a run name in "
                         "outputs/runs (default: the shipped model, else the newest run)")
    predict.add_argument("--backend", default="auto", choices=("auto", "keras", "tflite"),
                         help="auto runs a model's int8 TFLite copy when one sits beside it "
                         "(the shipped model has one); keras always runs the .keras model")
    predict.add_argument("--detector", default="haar", choices=("haar", "mtcnn"),
                         help="face detector (mtcnn needs pip install mtcnn)")
    predict.add_argument("--smoothing", type=float, default=None, metavar="S",
                         help="moving average of each track's probabilities over video frames, "
                         "0 to <1 (default 0: every frame's own probabilities, a measurement "
                         "of that frame; the live webcam demo uses 0.6); never crosses tracks")
    predict.add_argument("--max-frames", type=non_negative_int, default=0, metavar="N",
                         help="stop each video after N frames (0 = all)")
    predict.add_argument("--json", action="store_true",
                         help="one JSON object per line: per image, or per video frame (frame, "
                         "time, and per face its track, box, emotion and probabilities)")
    predict.add_argument("--csv", metavar="FILE",
                         help="also write the timeline table: path, frame, time, track, x, y, w, "
                         "h, label, confidence and the 7 probabilities, one row per face per "
                         "frame (one row with an empty track for a frame without faces)")
    predict.add_argument("--explain", metavar="OUT.png",
                         help="also write the image with each face's Grad-CAM heatmap (where the "
                         "model looked for the emotion shown) over its box; several images: "
                         "OUT-<image name>.png")
    predict.set_defaults(handler=_predict)


def _predict(args) -> int:
    from emolib import annotation, realtime, timeline

    for path in args.paths:  # fail on a folder or a missing file before loading the model
        timeline.check_file(path)
    if args.csv and (Path(args.csv).is_dir() or not Path(args.csv).parent.is_dir()):
        raise EmolibError(f"--csv {args.csv}: not a file in an existing folder; pass e.g. "
                          "--csv faces.csv")
    smoothing = timeline.FILE_SMOOTHING if args.smoothing is None else args.smoothing
    explain_outputs = annotation.output_paths(args.paths, args.explain) if args.explain else {}
    pipeline = realtime.Pipeline(args.model, backend=args.backend, detector=args.detector,
                                 smoothing=smoothing, annotate=False)
    table_rows = []
    for path in args.paths:
        for result in timeline.predict_file(path, pipeline, max_frames=args.max_frames):
            table_rows.extend({"path": path, **row} for row in timeline.rows(result))
            print(json.dumps(timeline.to_json(path, result)) if args.json
                  else timeline.to_text(path, result), flush=True)
    if args.csv:
        timeline.write_table(timeline.to_table(table_rows, with_path=True), args.csv)
    for path, output in explain_outputs.items():
        annotation.explain_image(path, pipeline, output)
        print(f"wrote {output}", file=sys.stderr, flush=True)
    return 0


def add_sweep(commands) -> None:
    """``sweep [train|02|03] [--config FILE] [-p NAME=VALUES] [--scheduler asha] [--address A]``."""
    sweep = commands.add_parser(
        "sweep", help="a parameter sweep on Ray Tune (a local Ray, or a cluster with --address): "
        "one run folder per trial, trials ranked by PublicTest accuracy")
    sweep.add_argument("target", nargs="?", help="train: EmoNet's training function with notebook "
                       "02's recipe (default; fast, supports ASHA); 02 or 03: the notebook")
    sweep.add_argument("--config", metavar="FILE", help="a YAML or JSON sweep definition, e.g. "
                       "benchmarks/emonet_ablation.yaml; the options below override it")
    sweep.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUES",
                       help="learning_rate=1e-3,2e-3 (a grid), learning_rate=loguniform(1e-4,1e-2) "
                       "or augment=choice(faces,none) (random, see --num-samples), epochs=3 "
                       "(fixed); repeatable")
    sweep.add_argument("--profile", choices=("quick", "cpu", "full"),
                       help="the notebook profile every trial starts from (default quick)")
    sweep.add_argument("--name", help="folder in outputs/sweeps and part of the run names "
                       "(default: TARGET-date-time)")
    sweep.add_argument("--arms", nargs="+", metavar="ARM", help="only these arms of --config")
    sweep.add_argument("--num-samples", type=int, metavar="N",
                       help="draws of the random parameters; a grid runs N times (default 1)")
    sweep.add_argument("--cpus-per-trial", type=float, metavar="C", help="default 1")
    sweep.add_argument("--gpus-per-trial", type=float, metavar="G", help="default 0; a trial "
                       "with 2 or more trains on all of them (MirroredStrategy)")
    sweep.add_argument("--max-concurrent", type=int, metavar="N",
                       help="trials at a time (default: as many as the CPUs/GPUs allow)")
    sweep.add_argument("--scheduler", choices=("fifo", "asha"), help="asha stops weak trials "
                       "early on their per-epoch PublicTest accuracy (default fifo: all finish)")
    sweep.add_argument("--grace-epochs", type=int, metavar="N",
                       help="epochs each trial runs before ASHA may stop it (default 1)")
    sweep.add_argument("--address", default="", help="join a running Ray cluster (the address "
                       "`ray start --head` prints); default: a local Ray for this sweep only")
    sweep.add_argument("--resume", action="store_true",
                       help="continue the interrupted sweep --name (Tune's experiment restore)")
    sweep.add_argument("--dry-run", action="store_true", help="list the trials; start nothing")
    sweep.set_defaults(handler=_sweep)


def _sweep(args) -> int:
    from emolib import sweep, sweep_folder
    from emolib.paths import outputs_dir
    from emolib.reports import markdown_table

    if args.resume:
        if not args.name:
            raise EmolibError("--resume needs the --name of the sweep to continue")
        spec = sweep_folder.saved(args.name)
    else:
        spec = sweep.definition(
            args.target, config=args.config, pairs=args.parameter, arms=args.arms, name=args.name,
            profile=args.profile, num_samples=args.num_samples, scheduler=args.scheduler,
            grace_epochs=args.grace_epochs, cpus_per_trial=args.cpus_per_trial,
            gpus_per_trial=args.gpus_per_trial, max_concurrent=args.max_concurrent)
    trials = sweep.plan(spec)
    print(f"sweep {spec['name']}: {len(trials)} trial(s) of {spec['target']} (profile "
          f"{spec['profile']}) on {args.address or 'a local Ray'}", flush=True)
    if args.dry_run:
        import pandas as pd

        print(markdown_table(pd.DataFrame(trials).rename_axis("trial")))
        return 0
    table = sweep.run(spec, address=args.address, resume=args.resume)
    print(markdown_table(table))
    print(f"results in {outputs_dir('sweeps', spec['name'])}")
    unfinished = int((table["status"] != "finished").sum())
    if unfinished:
        print(f"{unfinished} trial(s) did not finish (stopped early by the scheduler, failed or "
              f"interrupted); --name {spec['name']} --resume continues the failed and interrupted")
    return 0


COMMANDS = (add_data, add_run, add_evaluate, add_predict, add_sweep)


class _Parser(argparse.ArgumentParser):
    """A command-line mistake is one ``error:`` line and exit status 2 (not argparse's usage
    block); the sub-command parsers are of this class too."""

    def error(self, message: str):
        self.exit(2, f"error: {message}; see {self.prog} --help\n")


def _show_warning(python_show, said: set, message, category, *args, **kwargs) -> None:
    """An ``EmolibWarning`` is one ``warning:`` line, once (not Python's file:line and source)."""
    from emolib.datasets import EmolibWarning

    if not issubclass(category, EmolibWarning):
        return python_show(message, category, *args, **kwargs)
    if str(message) not in said:
        said.add(str(message))
        print(f"warning: {message}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    """The `python -m emolib` parser, one sub-parser per entry of ``COMMANDS``."""
    parser = _Parser(prog="python -m emolib", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(commands)
    return parser


def main(argv: list[str] | None = None, console_warnings: bool = False) -> int:
    """Entry point; returns the exit status (2 for a user mistake, with one line on stderr).
    ``console_warnings`` (``python -m emolib``): each ``EmolibWarning`` is one ``warning:`` line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            if console_warnings:  # not under pytest.warns, which records through showwarning
                warnings.showwarning = functools.partial(_show_warning, warnings.showwarning, set())
            return args.handler(args)
    except EmolibError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
