"""What Ray Tune costs: the same trials as a sweep, and one after another in one process.

The ablation used to be a hand-written runner (``benchmarks/ablate_emonet.py``, removed in
9100b0a): one Python process that loaded the data once, then looped over the arms calling the
training function. ``python -m emolib sweep`` runs the same arms as Tune trials instead. This
script times both on the same trials, same machine, same data cache:

(a) the sweep command, ``python -m emolib sweep --config ... --arms ... -p ...``, as a user runs
    it (a local Ray started and stopped, a worker process per trial);
(b) the trials of that sweep, one after another in one process, through the function the sweep's
    trials call (``emolib.trials.train_trial``, with Tune's report and trial id stubbed), as the
    hand-written runner did.

It prints both wall times (each a fresh ``python`` process, imports included) and Ray's overhead
per trial. Both write into a temporary outputs folder, so ``outputs/`` is not touched. Run it
while nothing else uses the CPU; with ``--cpus-per-trial 2`` (the ablation's own setting) the
sweep runs one trial at a time on a 2-core machine, as the loop does:

    python benchmarks/sweep_overhead.py --data ../shared/datasets/fer2013/archive.zip
    python benchmarks/sweep_overhead.py --arms full "no augmentation" "no batch norm" -p epochs=2
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
SWEEP_NAME = "overhead"


def trial_configs(spec: dict) -> list[dict]:
    """The configs Tune would give the sweep's trials (arms and grids; random draws refused)."""
    from emolib import sweep

    if any("grid" not in domain for domain in spec["space"].values()):
        raise SystemExit("random draws differ between runs: time a definition of arms and grids")
    grids = {key: domain["grid"] for key, domain in spec["space"].items()}
    base = {"sweep": sweep._settings(spec), **sweep._fixed(spec)}
    return [{**base, **dict(zip(grids, values)), **({"arm": arm} if arm else {})}
            for _ in range(spec["num_samples"])
            for arm in sweep.arm_variants(spec["arms"]) or [None]
            for values in itertools.product(*grids.values())]


def run_loop(args) -> None:
    """(b), in this process: each trial through ``trials.train_trial``, one after another."""
    from ray import tune

    from emolib import sweep, trials

    spec = definition(args)
    rows = []
    for number, config in enumerate(trial_configs(spec)):
        reports = []
        trial_id = f"loop_{number:05d}"
        tune.report = lambda metrics, reports=reports, **_: reports.append(metrics)
        tune.get_context = lambda trial_id=trial_id: type("Context", (), {
            "get_trial_id": staticmethod(lambda: trial_id)})()
        start = time.perf_counter()
        trials.train_trial(config)
        rows.append({"arm": (config.get("arm") or {}).get("arm"),
                     "seed": sweep.trial_parameters(config)["seed"],
                     "seconds": time.perf_counter() - start,
                     "training minutes": reports[-1]["minutes"],
                     "best PublicTest accuracy": max(r["val_accuracy"] for r in reports)})
        print(f"loop trial {number}: {time.perf_counter() - start:.0f} s", flush=True)
    Path(args.loop_result).write_text(json.dumps(rows, indent=1))


def definition(args) -> dict:
    from emolib import sweep

    pairs = [*args.parameter, *([f"data_source={args.data}"] if args.data else [])]
    return sweep.definition(config=args.config, arms=args.arms, pairs=pairs, name=SWEEP_NAME,
                            cpus_per_trial=args.cpus_per_trial)


def timed(command: list[str], outputs: Path, cache: Path) -> float:
    """Wall seconds of ``command`` in a fresh process writing into ``outputs``."""
    environment = {**os.environ, "EMOLIB_OUTPUTS": str(outputs), "EMOLIB_CACHE": str(cache)}
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=environment, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="FER-2013 source (default: emolib finds it, e.g. EMOLIB_DATA)")
    parser.add_argument("--config", default=str(ROOT / "benchmarks" / "emonet_ablation.yaml"))
    parser.add_argument("--arms", nargs="+", default=["full", "no augmentation"],
                        help="arms of --config (default: the control's 2 seeds and one arm: 3 trials)")
    parser.add_argument("-p", "--parameter", action="append", metavar="NAME=VALUE",
                        help="as the sweep's -p (default: epochs=1 max_train_images=2000)")
    parser.add_argument("--cpus-per-trial", type=float, default=2.0,
                        help="2 (default): one trial at a time on 2 cores, like the loop")
    parser.add_argument("--order", choices=("sweep-first", "loop-first"), default="sweep-first")
    parser.add_argument("--keep", metavar="DIR", help="write the runs here and keep them")
    parser.add_argument("--loop-result", help=argparse.SUPPRESS)  # set for the loop's own process
    args = parser.parse_args()
    args.parameter = args.parameter or ["epochs=1", "max_train_images=2000"]
    if args.loop_result:
        return run_loop(args)

    from emolib import datasets
    from emolib.paths import cache_dir

    cache = cache_dir()
    spec = definition(args)  # refuses unknown arms and parameters before anything runs
    datasets.load(spec["base"].get("data_source") or None)  # decoded once, outside both timings
    folder = Path(args.keep or tempfile.mkdtemp(prefix="emolib-sweep-overhead-"))
    options = ["--config", args.config, "--arms", *args.arms, "--cpus-per-trial",
               str(args.cpus_per_trial), *(item for pair in args.parameter for item in ("-p", pair))]
    sweep_command = [sys.executable, "-m", "emolib", "sweep", *options, "--name", SWEEP_NAME,
                     *(["-p", f"data_source={args.data}"] if args.data else [])]
    loop_command = [sys.executable, __file__, *options, *(["--data", args.data] if args.data else []),
                    "--loop-result", str(folder / "loop.json")]
    seconds = {}
    for mode in (("sweep", "loop") if args.order == "sweep-first" else ("loop", "sweep")):
        print(f"--- {mode}", flush=True)
        command = sweep_command if mode == "sweep" else loop_command
        seconds[mode] = timed(command, folder / mode, cache)

    import pandas as pd

    loop = pd.DataFrame(json.loads((folder / "loop.json").read_text()))
    swept = pd.read_csv(folder / "sweep" / "sweeps" / SWEEP_NAME / "results.csv")
    count = len(loop)
    print(f"\n{count} trials ({', '.join(args.arms)}; {' '.join(args.parameter)}; "
          f"{args.cpus_per_trial:g} CPUs per trial) on {os.cpu_count()} CPUs, {args.order}")
    print(f"sweep (Ray Tune)          {seconds['sweep']:7.1f} s wall; training "
          f"{swept['minutes'].sum() * 60:6.1f} s; best PublicTest "
          f"{', '.join(f'{a:.3f}' for a in swept.sort_values(['arm', 'seed'])['best PublicTest accuracy'])}")
    print(f"loop (one process)        {seconds['loop']:7.1f} s wall; training "
          f"{loop['training minutes'].sum() * 60:6.1f} s; best PublicTest "
          f"{', '.join(f'{a:.3f}' for a in loop.sort_values(['arm', 'seed'])['best PublicTest accuracy'])}")
    difference = seconds["sweep"] - seconds["loop"]
    print(f"Ray's overhead            {difference:7.1f} s in all, {difference / count:.1f} s per trial "
          f"({difference / seconds['loop'] * 100:+.0f}% on the loop)")
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
