"""The runner: -p checked before anything runs, kernels on this checkout, one line when work is
refused, training progress in the console, the kernels' own output in a log file."""

from __future__ import annotations

import os
import re
import sys

import nbformat
import pytest

from emolib import parameters, runner
from emolib.cli import main
from emolib.paths import ROOT, notebooks_dir, outputs_dir

NOISE = ("absl::InitializeLog", "cudart_stub", "TCP without encryption")


def write_notebook(folder, name, *cells, parameters='profile: str = "cpu"  # quick | cpu | full'):
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
        *(nbformat.v4.new_code_cell(source) for source in cells)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, folder / name)
    return folder / name


@pytest.fixture
def notebooks(tmp_path, monkeypatch):
    """A notebooks folder of the test's own, in place of notebooks/."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    monkeypatch.setattr(runner, "notebooks_dir", lambda: folder)
    return folder


def stdout_of(executed) -> str:
    notebook = nbformat.read(executed, as_version=4)
    return "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for output in cell.outputs)


@pytest.mark.parametrize("pairs, expected", [
    (["nosuchparam=1"], ["nosuchparam", "02_train_cnn.ipynb"]),
    (["epoch=3"], ["did you mean epochs"]),
    (["epochs=abc"], ["epochs=abc", "takes epochs as int", "e.g. -p epochs="]),
    (["learning_rate=fast"], ["as float"]),
    (["augment=False"], ["takes augment as str", '"none"']),  # 02's augment is a name, see README
    (["widths=64"], ["as list", "-p widths=[32,64,128,256]"]),
])
def test_overrides_are_checked_before_anything_runs(pairs, expected, capsys, monkeypatch):
    monkeypatch.delenv("EMOLIB_DATA", raising=False)  # refused before the data is even looked for
    argv = ["run", "--only", "02"]
    for pair in pairs:
        argv += ["-p", pair]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: -p ")
    for text in expected:
        assert text in err
    assert not outputs_dir(create=False).exists()  # nothing was written


def test_overrides_are_typed_per_notebook():
    nb02, nb03 = (next(notebooks_dir().glob(f"{number}_*.ipynb")) for number in ("02", "03"))
    checked = parameters.check_overrides([nb02, nb03], parameters.parse_overrides([
        "epochs=3", "learning_rate=1", "run_tag=2", "widths=[8, 16, 32, 64]", "head_epochs=1",
        "train_emonet=false", "fine_tune_at=54", "distill_weight=0.3"]))
    assert checked[nb02] == {"epochs": 3, "learning_rate": 1.0, "run_tag": "2",
                             "widths": [8, 16, 32, 64], "train_emonet": False, "distill_weight": 0.3}
    assert checked[nb03] == {"run_tag": "2", "head_epochs": 1, "fine_tune_at": 54, "distill_weight": 0.3}
    assert parameters.check_overrides([nb03], {"augment": "False"}) == {nb03: {"augment": False}}
    assert parameters.check_overrides([nb02], {"augment": "none"}) == {nb02: {"augment": "none"}}


def test_relative_paths_are_made_absolute_from_where_the_command_runs(tmp_path, monkeypatch):
    """The notebooks run inside notebooks/, so -p finetune_from=outputs/... must not be read
    from there; words that are not paths (or paths that do not exist) pass unchanged."""
    nb02 = next(notebooks_dir().glob("02_*.ipynb"))
    (tmp_path / "runs" / "x").mkdir(parents=True)
    (tmp_path / "runs" / "x" / "best.keras").write_text("")
    (tmp_path / "faces").mkdir()  # a folder named like a parameter's word
    monkeypatch.chdir(tmp_path)
    checked = parameters.check_overrides([nb02], {
        "finetune_from": "runs/x/best.keras", "teacher": "runs/missing.keras",
        "finetune_augment": "faces", "data_source": str(tmp_path / "runs")})[nb02]
    assert checked == {"finetune_from": str(tmp_path / "runs" / "x" / "best.keras"),
                       "teacher": "runs/missing.keras", "finetune_augment": "faces",
                       "data_source": str(tmp_path / "runs")}


@pytest.mark.parametrize("how", ["a file in the way", "read-only"])
def test_outputs_that_cannot_be_written_are_named_in_one_line(how, tmp_path, monkeypatch, capsys):
    if how == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        outputs = tmp_path / "outputs"
        outputs.mkdir(mode=0o555)
    else:
        (tmp_path / "file").write_text("")
        outputs = tmp_path / "file" / "outputs"
    monkeypatch.setenv("EMOLIB_OUTPUTS", str(outputs))
    assert main(["run", "--only", "05"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"cannot write to {outputs}" in err and "EMOLIB_OUTPUTS" in err


@pytest.mark.notebook
def test_kernels_run_this_checkout_and_write_into_its_outputs(notebooks, tmp_path, monkeypatch):
    """Another checkout's emolib first on the environment's path must not be what runs."""
    decoy = tmp_path / "other_checkout" / "emolib"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('the other checkout was imported')\n")
    monkeypatch.setenv("PYTHONPATH", str(decoy.parent))
    write_notebook(notebooks, "07_where.ipynb",
                   "import emolib.paths\nprint(emolib.paths.ROOT)\n"
                   "print(emolib.paths.outputs_dir(create=False))")
    executed = runner.run("quick", ["07"], check_data=False)
    lines = stdout_of(executed[0]).split()
    assert lines == [str(ROOT), str(outputs_dir(create=False).resolve())]


def test_kernel_environment_puts_this_checkout_first_and_passes_fresh(monkeypatch):
    from emolib.runs import FRESH_VARIABLE

    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = runner.kernel_environment("session", fresh=True)
    assert env["PYTHONPATH"].split(os.pathsep) == [str(ROOT), "/elsewhere"]
    assert env[FRESH_VARIABLE] == "1" and env["EMOLIB_OUTPUTS"] == str(outputs_dir(create=False))
    assert FRESH_VARIABLE not in runner.kernel_environment("session")


@pytest.mark.notebook
def test_a_notebook_that_refuses_work_says_so_in_one_line_and_leaves_no_copy(notebooks, capsys):
    write_notebook(notebooks, "08_refuse.ipynb",
                   "from emolib.errors import EmolibError\n"
                   "raise EmolibError('runs/x holds an interrupted run; re-run with --fresh')")
    assert main(["run", "--only", "08"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: 08_refuse.ipynb: runs/x holds an interrupted run; re-run with --fresh"
    assert not list(outputs_dir("notebooks", "quick").iterdir())
    assert "raise EmolibError" in (notebooks / "08_refuse.ipynb").read_text()  # source untouched


def test_native_output_goes_to_the_log_and_python_output_to_the_terminal(tmp_path, capfd):
    log = tmp_path / "logs" / "emolib.log"
    with runner.native_output_to(log):
        os.write(2, b"I0000 cudart_stub.cc:31] Could not find cuda drivers\n")
        print("error: a line for people", file=sys.stderr)
    err = capfd.readouterr().err
    assert err == "error: a line for people\n"
    assert "cudart_stub" in log.read_text()
    quiet = tmp_path / "outputs" / "logs" / "emolib.log"
    with runner.native_output_to(quiet):
        pass
    assert not (tmp_path / "outputs").exists()  # nothing said, nothing left


def test_a_shared_log_removed_by_another_command_is_no_traceback(tmp_path, capfd):
    """Two commands side by side share outputs/logs/emolib.log: the first to finish removes it
    when it is still empty, while the other holds it open; the other must not fail on exit (it
    did, with FileNotFoundError). Later commands append rather than truncate."""
    log = tmp_path / "logs" / "emolib.log"
    with runner.native_output_to(log):
        with runner.native_output_to(log):  # the second command, finishing first
            pass
        os.write(2, b"I0000 first command's start-up line\n")
        assert not log.exists()  # the second command left nothing: it had said nothing
    assert capfd.readouterr().err == ""
    log.parent.mkdir(exist_ok=True)
    log.write_text("an earlier command's line\n")
    with runner.native_output_to(log):
        os.write(2, b"I0000 this command's line\n")
    assert log.read_text() == "an earlier command's line\nI0000 this command's line\n"


TOY_TRAINING = """\
import keras
import numpy as np
from emolib import models, runs, training
rng = np.random.default_rng(0)
labels = rng.integers(0, 7, 128)
images = np.clip(rng.normal(30 + labels[:, None, None, None] * 30, 10, (128, 48, 48, 1)),
                 0, 255).astype(np.uint8)
train_ds = training.make_dataset(images, labels, batch_size=32, training=True)
val_ds = training.make_dataset(images[:64], labels[:64], batch_size=256)
model = models.build_emonet(widths=(4, 8, 8, 8), dense_units=8)
model.compile(optimizer=training.optimizer(1e-3, steps=epochs * len(train_ds)),
              loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1), metrics=["accuracy"])
run = runs.open_run(f"{profile}-toy", model, training.recipe(epochs=epochs, batch_size=32, augment=False),
                    train_data=(images, labels), val_data=(images[:64], labels[:64]))

def kill(epoch, logs=None):
    if epoch + 1 == kill_after:
        raise RuntimeError(f"killed after epoch {kill_after}")

model.fit(train_ds, validation_data=val_ds, epochs=epochs, initial_epoch=run.initial_epoch,
          callbacks=run.callbacks(keras.callbacks.LambdaCallback(on_epoch_end=kill)), verbose=2)
trained = run.result()
print("epochs", trained.history["epoch"], "resumed from", trained.resumed_from_epoch)"""
TOY_PARAMETERS = ('profile: str = "cpu"  # quick | cpu | full\n'
                  'epochs: int = 5  # training epochs\n'
                  'kill_after: int = 0  # stop the kernel after this epoch (0: never)')


@pytest.mark.slow
def test_runner_console_shows_epochs_time_left_accuracy_and_the_run_folder(notebooks, tmp_path,
                                                                          capfd):
    write_notebook(notebooks, "07_train.ipynb", TOY_TRAINING, parameters=TOY_PARAMETERS)
    log = tmp_path / "kernel.log"
    assert main(["run", "--only", "07", "-p", "epochs=2", "--log", str(log)]) == 0
    out, err = capfd.readouterr()
    epoch_lines = [line for line in out.splitlines() if re.search(r"quick-toy  epoch \d/2", line)]
    assert [line.split()[2] for line in epoch_lines] == ["1/2", "2/2"]
    assert all(" left  PublicTest " in line and "% (best " in line for line in epoch_lines)
    run_dir = outputs_dir("runs", "quick-toy", create=False)
    assert re.search(rf"quick-toy: best PublicTest [\d.]+% \(epoch \d of 2\) -> {run_dir}", out)
    assert re.search(r"done in \d+:\d\d -> ", out)
    for noise in NOISE:  # the kernel's start-up lines are in the log, not on the console
        assert noise not in out + err
    kernel_output = log.read_text()
    assert "absl::InitializeLog" in kernel_output and "Epoch 2/2" in kernel_output


@pytest.mark.slow
def test_a_notebook_killed_while_fitting_resumes_when_run_again(notebooks, capfd):
    """A notebook that trains with model.compile, runs.open_run and model.fit dies after its
    second epoch; run again, it trains the third only, and says where it resumed."""
    write_notebook(notebooks, "07_train.ipynb", TOY_TRAINING, parameters=TOY_PARAMETERS)
    assert main(["run", "--only", "07", "-p", "epochs=3", "-p", "kill_after=2"]) == 2
    out, err = capfd.readouterr()
    assert "RuntimeError: killed after epoch 2" in err and "07_train.ipynb failed" in err
    assert main(["run", "--only", "07", "-p", "epochs=3"]) == 0
    out, err = capfd.readouterr()
    assert "quick-toy  resumed after epoch 2 of 3" in out
    assert [line.split()[2] for line in out.splitlines() if "quick-toy  epoch" in line] == ["3/3"]
    executed = stdout_of(outputs_dir("notebooks", "quick") / "07_train.ipynb")
    assert "quick-toy: resuming after epoch 2 of 3" in executed
    assert "epochs [0, 1, 2] resumed from 2" in executed


@pytest.mark.slow
@pytest.mark.data
def test_quick_notebook_02_through_the_runner_shows_epochs_and_stays_small(fer2013_path,
                                                                           monkeypatch, capfd):
    monkeypatch.setenv("EMOLIB_DATA", str(fer2013_path))
    assert main(["run", "--only", "02", "-p", "epochs=2", "-p", "finetune_epochs=0",
                 "-p", "train_seed_baseline=False", "-p", "run_tag=watch", "--tag", "watch"]) == 0
    out, err = capfd.readouterr()
    epochs = re.findall(r"^  (\S*emonet\S*)  epoch (\d)/2  .* left  PublicTest [\d.]+% \(best ",
                        out, flags=re.MULTILINE)
    assert {"1", "2"} <= {epoch for _, epoch in epochs}
    runs_dir = outputs_dir("runs", create=False)
    assert re.search(rf"emonet\S*: best PublicTest [\d.]+% \(epoch \d of \d\) -> {runs_dir}/", out)
    for noise in NOISE:
        assert noise not in out + err
    executed = outputs_dir("notebooks", "quick") / "02_train_cnn-watch.ipynb"
    assert executed.stat().st_size < 1_000_000  # Keras' per-epoch lines, not per-step output
