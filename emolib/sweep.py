"""Parameter sweeps on Ray Tune: EmoNet's training function (or notebook 02/03) over a search space.

A *definition* names the target, the profile the trials start from, fixed ``base`` parameters, a
search ``space`` (grids and random draws) and named ``arms`` (an ablation). Each trial reports
PublicTest accuracy (``val_accuracy``) after every epoch, so a scheduler such as ASHA can stop weak
trials; PrivateTest never reaches Tune. A trial leaves a run folder
``outputs/runs/<profile>-<model>-<sweep>-<NN>/`` (and, for a notebook, the executed copy
``NN_name-<sweep>-<NN>.ipynb``); ``outputs/sweeps/<sweep>/`` holds Tune's experiment (restored by
``resume``), ``sweep.json``, ``results.csv``/``.md`` (best PublicTest first) and, with arms,
``summary.md`` (written and read by ``emolib.sweep_folder``). Ray is imported inside functions
only: ``pip install -e ".[sweep]"``.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import time
from pathlib import Path

from emolib.errors import EmolibError
from emolib.paths import notebooks_dir

#: What a sweep runs: EmoNet's training function (notebook 02's recipe), or notebook 02 or 03.
TARGETS = ("train", "02", "03")
METRIC = "val_accuracy"  #: PublicTest accuracy: the one number the scheduler sees
DOMAINS = ("grid", "choice", "uniform", "loguniform", "randint")
#: Knobs of the training function beyond notebook 02's parameters (used by the ablation).
TRAIN_EXTRAS = {"batch_norm": True, "schedule": "cosine", "progressive_size": 0}
#: Notebook 02 parameters the training function has no use for (refused: sweep notebook 02 for
#: a stage 2 from a saved model, its schedule, weight averaging, a teacher or stage 3).
TRAIN_UNUSED = {"profile", "run_tag", "train_seed_baseline", "train_emonet", "seed_epochs",
                "ship_default", "finetune_from", "finetune_schedule", "average_epochs",
                "teacher", "distill_weight", "distill_temperature", "swa_epochs", "swa_learning_rate"}
#: A swept notebook trains only the swept model unless the definition says otherwise.
NOTEBOOK_BASE = {"02": {"train_seed_baseline": False}, "03": {"run_experiment": False}}
DEFAULTS = {"profile": "quick", "base": {}, "space": {}, "arms": {}, "num_samples": 1,
            "scheduler": "fifo", "grace_epochs": 1, "cpus_per_trial": 1, "gpus_per_trial": 0,
            "max_concurrent": None}


def parse_space(pairs: list[str]) -> tuple[dict, dict]:
    """``-p`` pairs -> ``(fixed, space)``: ``lr=1e-3,2e-3`` is a grid, ``lr=loguniform(1e-4,1e-2)``
    or ``augment=choice(faces,none)`` a random draw, ``epochs=3`` or ``widths=[8,16,32,64]`` fixed."""
    fixed, space = {}, {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key.isidentifier():
            raise EmolibError(f"-p {pair!r}: write name=value, name=v1,v2 (a grid) or "
                              "name=loguniform(1e-4,1e-2)")
        call = re.fullmatch(r"(\w+)\((.*)\)", text.strip())
        if call and call[1] in DOMAINS:
            space[key] = {call[1]: _values(call[2])}
        elif len(values := _values(text)) > 1:
            space[key] = {"grid": values}
        else:
            fixed[key] = values[0]
    return fixed, space


def _values(text: str) -> list:
    """``"1e-3,2e-3"`` -> [0.001, 0.002]; ``"[8,16],[16,32]"`` -> two lists; bare words stay strings."""
    from emolib.parameters import literal

    value = literal(text)
    if value is text:  # not one Python value: comma-separated items, each a value or a word
        return [literal(item.strip()) for item in text.split(",")]
    return list(value) if isinstance(value, tuple) else [value]


def definition(target: str | None = None, *, config: str | None = None, pairs=(), arms=None,
               **options) -> dict:
    """The sweep to run: a YAML/JSON file's definition, with the command line's on top.

    ``options`` are ``DEFAULTS``' keys and ``name``; ``None`` leaves the file's value. ``arms``
    keeps only those arms of the file.
    """
    spec = _read(config) if config else {}
    fixed, space = parse_space(list(pairs))
    spec = {**DEFAULTS, **spec, **{k: v for k, v in options.items() if v is not None}}
    spec["target"] = str(target or spec.get("target") or "train").zfill(2)
    spec["base"] = {**spec["base"], **fixed}
    if spec["base"].get("data_source"):  # trials run in folders of their own: no relative paths
        spec["base"]["data_source"] = str(Path(spec["base"]["data_source"]).resolve())
    spec["space"] = {**{key: _domain(key, value) for key, value in spec["space"].items()}, **space}
    spec.setdefault("control", next(iter(spec["arms"]), None))
    if arms:
        missing = [arm for arm in arms if arm not in spec["arms"]]
        if missing:
            raise EmolibError(f"no arm {missing[0]!r} in the definition; it has {list(spec['arms'])}")
        spec["arms"] = {arm: spec["arms"][arm] for arm in arms}
    spec.setdefault("name", f"{spec['target']}-{time.strftime('%Y%m%d-%H%M%S')}")
    _check(spec)
    return spec


def _read(path: str) -> dict:
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise EmolibError(f"{path}: cannot read the sweep definition ({error.strerror})") from None
    try:
        if Path(path).suffix.lower() in (".yaml", ".yml"):
            import yaml

            spec = yaml.safe_load(text) or {}
        else:
            spec = json.loads(text)
    except Exception as error:  # json's ValueError, yaml's YAMLError
        raise EmolibError(f"{path}: not valid {Path(path).suffix[1:].upper() or 'JSON'} "
                          f"({str(error).splitlines()[0]})") from None
    if not isinstance(spec, dict):
        raise EmolibError(f"{path}: a sweep definition is a mapping (target, base, space, arms)")
    return spec


def _domain(key: str, value) -> dict:
    """A file's space entry: a list is a grid, ``{loguniform: [a, b]}`` a random draw."""
    if isinstance(value, list):
        return {"grid": value}
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in DOMAINS:
        return value
    raise EmolibError(f"space: {key}: give a list (a grid) or one of {', '.join(DOMAINS)} "
                      "with its arguments; fixed values go in base")


def _check(spec: dict) -> None:
    from emolib.runner import PROFILES

    if spec["target"] not in TARGETS:
        raise EmolibError(f"unknown sweep target {spec['target']!r}; use train, 02 or 03")
    if spec["profile"] not in PROFILES:
        raise EmolibError(f"unknown profile {spec['profile']!r}; use one of {', '.join(PROFILES)}")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", str(spec["name"])):
        raise EmolibError(f"sweep name {spec['name']!r}: use letters, digits, '.', '_' and '-'")
    if spec["scheduler"] not in ("fifo", "asha"):
        raise EmolibError(f"unknown scheduler {spec['scheduler']!r}; use fifo or asha")
    known = set(target_defaults(spec["target"], spec["profile"])) - {"profile", "run_tag"}
    names = [*spec["base"], *spec["space"], *(k for arm in spec["arms"].values() for k in arm)]
    for name in names:
        if name not in known:
            raise EmolibError(f"{name}: not a parameter of the sweep target {spec['target']}; "
                              f"it has {', '.join(sorted(known))}")
    if spec["arms"] and spec["control"] not in spec["arms"]:
        raise EmolibError(f"control arm {spec['control']!r} is not among the arms")
    if spec["target"] == "train":  # refused here in one line, not in each trial's traceback
        _check_values(spec)


def _check_values(spec: dict) -> None:
    """EmoNet's ``block`` and ``progressive_size`` of every trial the definition makes."""
    from emolib import models, progressive

    for trial in plan(spec):
        if trial.get("block") not in models.BLOCKS and "(" not in str(trial.get("block")):
            raise EmolibError(f"block {trial['block']!r}: use one of {', '.join(models.BLOCKS)}")
        if isinstance(trial.get("epochs"), int) and not isinstance(trial.get("progressive_size"), str):
            progressive.check(trial["progressive_size"], trial["epochs"])


def target_defaults(target: str, profile: str) -> dict:
    """A trial's starting parameters: the notebook's parameters cell with the profile on top
    (the training function: notebook 02's, without the unused ones, plus ``TRAIN_EXTRAS``)."""
    from emolib import parameters, runner

    notebook = next(notebooks_dir().glob(f"{'02' if target == 'train' else target}_*.ipynb"))
    found = {name: entry["default"] for name, entry in parameters.declared_parameters(notebook).items()}
    found.update(runner.profile_parameters(notebook, profile))
    if target != "train":
        return {**found, **NOTEBOOK_BASE.get(target, {})}
    return {**{k: v for k, v in found.items() if k not in TRAIN_UNUSED}, **TRAIN_EXTRAS}


def arm_variants(arms: dict) -> list[dict]:
    """One dict per trial of the arms: an arm whose ``seed`` is a list runs once per seed."""
    variants = []
    for name, overrides in arms.items():
        seeds = overrides.get("seed")
        for seed in seeds if isinstance(seeds, list) else [seeds]:
            variants.append({"arm": name, **overrides, **({} if seed is None else {"seed": seed})})
    return variants


def trial_parameters(config: dict) -> dict:
    """The parameters a trial runs with: its config (fixed values and draws), then its arm's."""
    arm = {k: v for k, v in (config.get("arm") or {}).items() if k != "arm"}
    return {**{k: v for k, v in config.items() if k not in ("sweep", "environment", "arm")}, **arm}


def _fixed(spec: dict) -> dict:
    """What every trial gets: the training function's full parameters (notebook 02's with the
    profile on top; a notebook applies its profile itself), then the definition's base."""
    start = (target_defaults("train", spec["profile"]) if spec["target"] == "train"
             else NOTEBOOK_BASE.get(spec["target"], {}))
    return {**start, **spec["base"]}


def plan(spec: dict) -> list[dict]:
    """The trials a definition makes (random draws shown as their domain), without Ray."""
    grids = {k: d["grid"] for k, d in spec["space"].items() if "grid" in d}
    draws = {k: "{}({})".format(*next(iter(d.items()))) for k, d in spec["space"].items()
             if "grid" not in d}
    fixed, trials = _fixed(spec), []
    for _, arm, values in itertools.product(range(spec["num_samples"]),
                                            arm_variants(spec["arms"]) or [None],
                                            itertools.product(*grids.values())):
        config = {**fixed, **draws, **dict(zip(grids, values)), "arm": arm}
        trials.append({**trial_parameters(config), **({"arm": arm["arm"]} if arm else {})})
    return trials


def _settings(spec: dict) -> dict:
    return {key: spec[key] for key in ("name", "target", "profile", "cpus_per_trial")}


def run(spec: dict, *, address: str = "", resume: bool = False):
    """Run (or, with ``resume``, continue) a sweep on Ray Tune; returns the results table.

    ``address`` joins a running Ray cluster; by default a local Ray is started for the sweep and
    shut down after. The table is also written to ``outputs/sweeps/<name>/``.
    """
    try:
        import ray
        from ray import tune
    except ImportError:
        raise EmolibError('sweeps run on Ray Tune, which is not installed here: '
                          'pip install -e ".[sweep]" (or pip install "ray[tune]")') from None
    from emolib import sweep_folder, trials

    directory = sweep_folder.directory(spec["name"])
    if resume:
        spec = sweep_folder.saved(spec["name"])
    elif (directory / "sweep.json").exists():
        raise EmolibError(f"a sweep named {spec['name']!r} exists in {directory}; pass --resume "
                          "to continue it, or choose another --name")
    restore = resume and tune.Tuner.can_restore(str(directory))
    if not restore:  # new trials: run folders of the same names would be taken for theirs
        trials.refuse_taken_runs(spec, len(plan(spec)))
    if not address:  # fail early when the data is missing; decode it once, not in every trial
        from emolib import datasets

        datasets.load(spec["base"].get("data_source") or None, progress=False)
    sweep_folder.save(spec)
    trainable = tune.with_resources(trials.train_trial if spec["target"] == "train" else trials.notebook_trial,
                                    {"cpu": spec["cpus_per_trial"], "gpu": spec["gpus_per_trial"]})
    environment = trials.environment()  # each trial sets it: Ray may be running without it
    started = not ray.is_initialized()
    if started:
        options = ({"address": address} if address else
                   {"num_cpus": os.cpu_count(), "include_dashboard": False,
                    "object_store_memory": 256 * 2**20})
        try:
            variables = {**{k: v for k, v in os.environ.items() if k.startswith("TF_")}, **environment}
            ray.init(**options, runtime_env={"env_vars": variables}, logging_level=logging.WARNING)
        except Exception as error:  # Ray gives its processes ~30 s to start, however busy the CPU
            if "timed out during startup" not in str(error):
                raise
            raise EmolibError("the local Ray did not start within its 30 s (is the CPU busy with "
                              "other jobs?); try again when it is freer") from None
    try:
        if restore:
            tuner = tune.Tuner.restore(str(directory), trainable, resume_errored=True)
        else:
            space = _param_space(spec, tune, environment)
            tuner = tune.Tuner(trainable, param_space=space, tune_config=tune.TuneConfig(
                metric=METRIC, mode="max", num_samples=spec["num_samples"], scheduler=_scheduler(spec),
                max_concurrent_trials=spec["max_concurrent"],
                trial_dirname_creator=lambda trial: f"trial_{trial.trial_id}"),
                run_config=tune.RunConfig(name=spec["name"], storage_path=str(directory.parent), verbose=1))
        grid = tuner.fit()
    finally:
        if started:
            ray.shutdown()
    return sweep_folder.write_results(grid, spec)


def _param_space(spec: dict, tune, environment: dict) -> dict:
    space = {"sweep": _settings(spec), "environment": environment, **_fixed(spec)}
    for key, domain in spec["space"].items():
        kind, args = next(iter(domain.items()))
        space[key] = (tune.grid_search(args) if kind == "grid" else tune.choice(args) if kind == "choice"
                      else getattr(tune, kind)(*args))
    if spec["arms"]:
        space["arm"] = tune.grid_search(arm_variants(spec["arms"]))
    return space


def _scheduler(spec: dict):
    """ASHA on the per-epoch PublicTest accuracy: at 1, 2, 4, ... x grace epochs, the weaker half
    of the trials that reached that epoch stops."""
    if spec["scheduler"] != "asha":
        return None
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr="epoch", max_t=10_000, grace_period=spec["grace_epochs"],
                         reduction_factor=2)
