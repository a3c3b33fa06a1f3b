"""Sweeps on Ray Tune (``python -m emolib sweep``): definitions, the ablation as a sweep, a quick
sweep end to end on a local Ray, and the TensorBoard logs every run writes."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, SHARED
from emolib import sweep, sweep_folder, trials
from emolib.errors import EmolibError

ABLATION = ROOT / "benchmarks" / "emonet_ablation.yaml"


def test_parameters_become_grids_random_draws_or_fixed_values():
    fixed, space = sweep.parse_space([
        "learning_rate=1e-3,2e-3", "augment=faces,none", "weight_decay=loguniform(1e-4,1e-1)",
        "augment2=choice(faces,basic)", "epochs=3", "widths=[8,16,32,64]",
        "dense_units=[32],[64]", "data_source=/data/archive.zip"])
    assert space == {"learning_rate": {"grid": [1e-3, 2e-3]}, "augment": {"grid": ["faces", "none"]},
                     "weight_decay": {"loguniform": [1e-4, 1e-1]},
                     "augment2": {"choice": ["faces", "basic"]}, "dense_units": {"grid": [[32], [64]]}}
    assert fixed == {"epochs": 3, "widths": [8, 16, 32, 64], "data_source": "/data/archive.zip"}
    with pytest.raises(EmolibError, match="write name=value"):
        sweep.parse_space(["learning rate=1e-3"])


def test_definitions_refuse_unknown_parameters_targets_and_names(tmp_path):
    (tmp_path / "bad.yaml").write_text("base: {epochs: [1\n")
    with pytest.raises(EmolibError, match="bad.yaml: not valid YAML"):
        sweep.definition(config=str(tmp_path / "bad.yaml"))
    (tmp_path / "scalar.json").write_text('{"space": {"epochs": 3}}')
    with pytest.raises(EmolibError, match="epochs: give a list"):
        sweep.definition(config=str(tmp_path / "scalar.json"))
    with pytest.raises(EmolibError, match="learning_rat: not a parameter of the sweep target train"):
        sweep.definition("train", pairs=["learning_rat=1e-3,2e-3"])
    with pytest.raises(EmolibError, match="ship_default: not a parameter"):  # the function never ships
        sweep.definition("train", pairs=["ship_default=True"])
    with pytest.raises(EmolibError, match="finetune_schedule: not a parameter"):  # notebook 02's alone
        sweep.definition("train", pairs=["finetune_schedule=constant,cosine"])
    with pytest.raises(EmolibError, match="teacher: not a parameter"):  # notebook 02's distillation
        sweep.definition("train", pairs=["teacher=default"])
    assert sweep.definition("02", pairs=["teacher=default"])["base"]["teacher"] == "default"
    assert "average_epochs" not in sweep.plan(sweep.definition("train", name="t"))[0]
    with pytest.raises(EmolibError, match="unknown sweep target '05'"):
        sweep.definition("5")
    with pytest.raises(EmolibError, match="sweep name"):
        sweep.definition("train", name="../elsewhere")
    spec = sweep.definition("2", pairs=["epochs=1,2"], name="nb")  # notebook 02's own parameters
    assert spec["target"] == "02" and [t["epochs"] for t in sweep.plan(spec)] == [1, 2]
    assert all(t["train_seed_baseline"] is False for t in sweep.plan(spec))  # only the swept model


def test_the_ablation_sweep_runs_the_arms_of_the_hand_written_runner():
    # benchmarks/ablate_emonet.py's FULL recipe and ARMS (removed), scaled as its defaults were
    full = {"batch_norm": True, "augment": "basic", "label_smoothing": 0.1, "weight_decay": 0.01,
            "schedule": "cosine", "learning_rate": 2e-3, "class_weight_power": 0.0, "batch_size": 64,
            "widths": [16, 32, 64, 128], "dense_units": 128, "epochs": 6, "max_train_images": 12000,
            "max_eval_images": 0, "finetune_epochs": 0}
    arms = {
        ("full", 0): {}, ("full", 1): {},
        ("no batch norm", 0): {"batch_norm": False},
        ("no augmentation", 0): {"augment": "none"},
        ("no label smoothing", 0): {"label_smoothing": 0.0},
        ("no weight decay (Adam)", 0): {"weight_decay": 0.0},
        ("constant LR (no warm-up/cosine)", 0): {"schedule": "constant", "learning_rate": 1e-3},
        ("class weights (sqrt inverse freq.)", 0): {"class_weight_power": 0.5},
        ("seed optimizer (Adam 1e-4 constant)", 0): {"schedule": "constant", "learning_rate": 1e-4,
                                                     "weight_decay": 0.0},
    }
    spec = sweep.definition(config=str(ABLATION), arms=list(dict.fromkeys(a for a, _ in arms)))
    planned = {(t["arm"], t["seed"]): t for t in sweep.plan(spec)}
    assert set(planned) == set(arms)
    for key, overrides in arms.items():
        expected = {**full, **overrides}
        assert {k: planned[key][k] for k in expected} == expected, key
    everything = sweep.plan(sweep.definition(config=str(ABLATION)))
    assert {"face augmentation", "full width (32-64-128-256)"} <= {t["arm"] for t in everything}


def test_the_summary_reads_each_arm_against_the_control():
    table = pd.DataFrame({"arm": ["full", "full", "no batch norm"], "seed": [0, 1, 0],
                          "best PublicTest accuracy": [0.60, 0.62, 0.55],
                          "PublicTest macro-F1": [0.5, 0.5, 0.4], "minutes": [4.0, 5.0, 4.5],
                          "status": ["finished"] * 3})
    spec = {"control": "full", "arms": {"full": {"seed": [0, 1]}, "no batch norm": {"batch_norm": False},
                                        "no augmentation": {"augment": "none"}}}
    summary = sweep_folder.arms_summary(table, spec)
    assert "| full | 2 | 61.0% (±1.0) |  | 0.500 | 4.5 |" in summary
    assert "| no batch norm | 1 | 55.0% | -6.0 | 0.400 | 4.5 |" in summary
    assert "| no augmentation | 0 | - | - | - | - |" in summary  # not run (an --arms subset)
    assert "Noise floor: the 2 seeds of full are 2.0 points apart" in summary
    table.loc[1, ["best PublicTest accuracy", "status"]] = [float("nan"), "error"]  # a failed seed
    table.loc[2, "status"] = "stopped early"
    summary = sweep_folder.arms_summary(table, spec)
    assert "| full | 1 (+1 unfinished) | 60.0% |  | 0.500 | 4.0 |" in summary  # not ±0.0
    assert "| no batch norm | 0 (+1 unfinished) | - | - | - | - |" in summary
    assert "No noise floor: full has 1 finished seed(s)" in summary


def test_without_ray_the_sweep_says_how_to_install_it(monkeypatch):
    spec = sweep.definition("train", pairs=["learning_rate=1e-3,2e-3"], name="noray")
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(EmolibError, match=r'pip install -e "\.\[sweep\]"'):
        sweep.run(spec)


@pytest.mark.slow
def test_every_run_writes_tensorboard_scalars_per_epoch():
    import numpy as np
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from emolib import models, training

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 64)
    images = rng.integers(0, 255, (64, 48, 48, 1)).astype(np.uint8)
    run = training.train(models.build_emonet(widths=(4, 8, 8, 8), dense_units=8), (images, labels),
                         (images[:32], labels[:32]), run_name="tb", epochs=2, batch_size=32, verbose=0)
    tags = {}
    for split in ("train", "validation"):
        events = EventAccumulator(str(run.directory / "tensorboard" / split)).Reload()
        tags[split] = {tag: len(events.Tensors(tag)) for tag in events.Tags()["tensors"]}
    assert tags["train"]["epoch_accuracy"] == 2 and tags["validation"]["epoch_accuracy"] == 2
    assert tags["train"]["epoch_learning_rate"] == 2


def fake_tune(monkeypatch, trial_id: str) -> list:
    """Tune's report and context as a trial sees them, without Ray: the reports land in a list."""
    tune = pytest.importorskip("ray.tune", reason='Ray Tune is not installed: pip install -e ".[dev]"')
    reports = []
    monkeypatch.setattr(tune, "report", lambda metrics, **_: reports.append(metrics))
    monkeypatch.setattr(tune, "get_context", lambda: type("Context", (), {
        "get_trial_id": staticmethod(lambda: trial_id)})())
    return reports


@pytest.mark.slow
def test_a_training_trial_reports_each_epoch_once_and_saves_both_stages(kaggle_zip, monkeypatch, tmp_path):
    from emolib.paths import outputs_dir

    reports = fake_tune(monkeypatch, "0a1b2_00003")
    spec = sweep.definition("train", name="unit", pairs=[
        "epochs=2", "finetune_epochs=1", "widths=[4,8,8,8]", "dense_units=8", f"data_source={kaggle_zip}"])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EMOLIB_OUTPUTS", "sweep-outputs")  # relative, as a user may set it
    environment = trials.environment()  # what the sweep hands its trials
    assert environment["EMOLIB_OUTPUTS"] == str(tmp_path / "sweep-outputs")
    monkeypatch.delenv("EMOLIB_OUTPUTS")  # a Ray started earlier without it
    monkeypatch.chdir(tmp_path.parent)  # Tune runs each trial in a folder of its own
    config = {"sweep": sweep._settings(spec), "environment": environment, **sweep._fixed(spec),
              "arm": {"arm": "tiny", "seed": 1}}
    trials.train_trial(config)  # what a Ray worker runs, here without Ray
    assert (tmp_path / "sweep-outputs" / "runs" / "quick-emonet-unit-03" / "metrics.json").exists()
    assert [r["epoch"] for r in reports] == [1, 2, 3]  # across both stages; the last after the save
    assert [r.get("finished") for r in reports] == [None, None, True]
    stage1, final = (json.loads((outputs_dir("runs", name) / "metrics.json").read_text())
                     for name in ("quick-emonet-stage1-unit-03", "quick-emonet-unit-03"))
    assert stage1["val"]["accuracy"] == pytest.approx(max(r["val_accuracy"] for r in reports[:2]))
    assert final["val"]["accuracy"] == pytest.approx(reports[-1]["val_accuracy"])
    assert final["parameters"]["augment"] == "faces" and stage1["parameters"]["augment"] is False
    assert final["sweep"]["arm"] == "tiny" and final["parameters"]["seed"] == 1
    assert "test" not in final and "test" not in stage1  # PublicTest only
    assert reports[-1]["minutes"] == pytest.approx((stage1["wall_time_s"] + final["wall_time_s"]) / 60, abs=0.01)
    assert reports[-1]["val_macro_f1"] == final["val"]["macro_f1"] and reports[-1]["run"] == "quick-emonet-unit-03"
    assert any((outputs_dir("runs", "quick-emonet-unit-03") / "tensorboard").rglob("*tfevents*"))
    stage1_saved = (outputs_dir("runs", "quick-emonet-stage1-unit-03") / "metrics.json").stat().st_mtime_ns
    shutil.rmtree(outputs_dir("runs", "quick-emonet-unit-03"))  # as if interrupted in stage 2
    reports.clear()
    trials.train_trial(config)  # Tune restarts the trial: stage 1 is done, only stage 2 runs
    assert [r["epoch"] for r in reports] == [3] and reports[-1]["finished"]
    assert (outputs_dir("runs", "quick-emonet-stage1-unit-03") / "metrics.json").stat().st_mtime_ns == stage1_saved
    fake_tune(monkeypatch, "9f8e7_00003")  # trial 3 of another sweep named unit: not its stage 1
    with pytest.raises(EmolibError, match="quick-emonet-stage1-unit-03 holds a run of another sweep"):
        trials.train_trial(config)


def test_a_new_sweep_refuses_run_folders_an_earlier_sweep_of_its_name_left():
    pytest.importorskip("ray.tune", reason='Ray Tune is not installed: pip install -e ".[dev]"')
    from emolib.paths import outputs_dir

    spec = sweep.definition("train", name="lr", pairs=["learning_rate=1e-3,2e-3", "finetune_epochs=1"])
    outputs_dir("runs", "quick-emonet-stage1-lr-01")  # the sweep folder of that earlier lr is gone
    with pytest.raises(EmolibError, match=r"quick-emonet-stage1-lr-01 \(one of 1 run folders this sweep "
                       r"would write\) exists from an earlier sweep named 'lr'; choose another --name"):
        sweep.run(spec)
    assert not outputs_dir("sweeps", "lr", create=False).exists()  # refused before anything started
    trials.refuse_taken_runs(sweep.definition("train", name="lr2", pairs=["learning_rate=1e-3,2e-3"]), 2)


@pytest.mark.slow
def test_a_notebook_trial_runs_notebook_02_into_its_own_run_and_reports_its_epochs(kaggle_zip, monkeypatch):
    from emolib.paths import outputs_dir

    reports = fake_tune(monkeypatch, "0a1b2_00001")
    spec = sweep.definition("02", name="nb", pairs=["epochs=2", "finetune_epochs=1",
                                                     f"data_source={kaggle_zip}"])
    trials.notebook_trial({"sweep": sweep._settings(spec), **sweep._fixed(spec)})
    assert [r["epoch"] for r in reports] == [1, 2, 3] and reports[-1]["finished"]  # both stages
    assert all(r["run"] == "quick-emonet-nb-01" for r in reports)
    assert (outputs_dir("runs", "quick-emonet-stage1-nb-01") / "log.csv").exists()
    assert (outputs_dir("notebooks", "quick") / "02_train_cnn-nb-01.ipynb").exists()
    assert not outputs_dir("runs", "quick-seed_cnn-nb-01", create=False).exists()  # swept model only
    metrics = json.loads((outputs_dir("runs", "quick-emonet-nb-01") / "metrics.json").read_text())
    assert reports[-1]["val_macro_f1"] == metrics["val"]["macro_f1"]


@pytest.fixture
def sweep_data(kaggle_zip) -> Path:
    """The real FER-2013 when it is here (~1500 training faces of it), else the synthetic zip."""
    for candidate in (os.environ.get("EMOLIB_DATA"), SHARED / "datasets" / "fer2013" / "archive.zip"):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    return kaggle_zip


@pytest.mark.slow
def test_a_quick_two_trial_sweep_on_a_local_ray(sweep_data, monkeypatch, tmp_path):
    ray = pytest.importorskip("ray", reason='Ray Tune is not installed: pip install -e ".[dev]"')
    pytest.importorskip("ray.tune", reason='Ray Tune is not installed: pip install -e ".[dev]"')
    from emolib import cli
    from emolib.paths import outputs_dir

    busy = os.getloadavg()[0] > os.cpu_count()  # other jobs hold the CPU: the time says little
    start = time.perf_counter()
    elsewhere = tmp_path / "elsewhere"  # outputs where an earlier sweep named lr left its runs
    for name in ("quick-emonet-stage1-lr-00", "quick-emonet-stage1-lr-01"):
        (elsewhere / "runs" / name).mkdir(parents=True)
        (elsewhere / "runs" / name / "metrics.json").write_text('{"sweep": {"name": "lr"}}')
    with monkeypatch.context() as patch:  # a Ray started before the sweep, with other settings:
        patch.setenv("EMOLIB_OUTPUTS", str(elsewhere))  # its workers write and look there
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, object_store_memory=256 * 2**20)
    command = ["sweep", "train", "--profile", "quick", "--name", "lr", "-p", "learning_rate=5e-4,3e-3",
               "-p", "epochs=2", "-p", "finetune_epochs=1", "-p", f"data_source={sweep_data}",
               "--scheduler", "asha", "--grace-epochs", "3"]  # ASHA may stop one at its end
    try:
        assert cli.main(command) == 0  # the trials take this process's settings, not the workers'
        assert ray.is_initialized()  # the sweep leaves a Ray it did not start running
    finally:
        ray.shutdown()
    minutes = (time.perf_counter() - start) / 60
    folder = outputs_dir("sweeps", "lr")
    table = pd.read_csv(folder / "results.csv", index_col="rank")
    assert len(table) == 2 and set(table["learning_rate"]) == {5e-4, 3e-3}
    accuracy = table["best PublicTest accuracy"]
    assert list(accuracy) == sorted(accuracy, reverse=True)  # ranked on PublicTest
    assert not any("PrivateTest" in c or "test" in c.lower().split() for c in table.columns)
    assert list(table["status"]) == ["finished", "finished"] and list(table["epochs"]) == [3, 3]
    reports = {trial: [json.loads(line) for line in (folder / f"trial_{trial}" / "result.json")
                       .read_text().splitlines()] for trial in table["trial"]}
    assert not any(key.startswith("test") for rows in reports.values() for r in rows for key in r)
    for trial, name in zip(table["trial"], table["run"]):  # each trial's own run folders
        assert name.startswith("quick-emonet-lr-")
        assert [r["epoch"] for r in reports[trial]] == [1, 2, 3]  # per epoch, to the scheduler
        assert [r["run"] for r in reports[trial]] == [name.replace("emonet-", "emonet-stage1-")] * 2 + [name]
        stage1 = outputs_dir("runs", name.replace("emonet-", "emonet-stage1-"))
        assert (stage1 / "model.keras").exists() and (stage1 / "metrics.json").exists()
        run_dir = outputs_dir("runs", name)
        assert (run_dir / "model.keras").exists() and (run_dir / "tensorboard" / "train").is_dir()
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["val"]["split"] == "val" and "test" not in metrics  # PublicTest only
        assert metrics["sweep"]["name"] == "lr"
        assert metrics["val"]["accuracy"] == pytest.approx(reports[trial][-1]["val_accuracy"])
        assert max(r["val_accuracy"] for r in reports[trial]) == pytest.approx(
            table.set_index("run").loc[name, "best PublicTest accuracy"])
    print(f"the quick sweep took {minutes:.1f} minutes{' on a busy CPU' if busy else ''}")
    assert minutes < (10 if busy else 3), f"the quick sweep took {minutes:.1f} minutes"
    with pytest.raises(EmolibError, match="a sweep named 'lr' exists"):
        sweep.run(sweep.definition("train", name="lr"))
    assert cli.main(["sweep", "--name", "lr", "--resume"]) == 0  # Tune's restore: nothing to redo
    assert not ray.is_initialized()  # the local Ray it started for the resume is shut down
    assert pd.read_csv(folder / "results.csv", index_col="rank")["run"].tolist() == table["run"].tolist()
