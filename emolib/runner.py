"""Runner: executes the numbered notebooks headless with papermill, one profile at a time.

Each notebook declares its profiles in its metadata (``metadata.emolib.profiles``): named sets of
parameter overrides. The ``parameters`` cell holds the ``cpu`` values; ``quick`` and ``full``
override some of them. ``-p`` overrides are checked against that cell (name and type) before
anything runs (``emolib.parameters``). Executed copies go to ``outputs/notebooks/``; sources are
never written.

The kernels run this checkout's ``emolib`` and write into its ``outputs/`` (or
``EMOLIB_OUTPUTS``), whatever the environment has installed. Everything they print, TensorFlow's
start-up lines included, goes to a log file; the console shows one line per notebook, the
progress of each training run (``emolib.progress``) and, when something fails, one line that
names the executed copy and the log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path

from emolib.errors import EmolibError
from emolib.parameters import check_overrides
from emolib.paths import ROOT, notebooks_dir, outputs_dir

PROFILES = ("quick", "cpu", "full")
#: Notebooks that need FER-2013 itself (05 can run on a video or images instead).
NEEDS_DATA = ("01", "02", "03", "04")


def list_notebooks(only: list[str] | None = None) -> list[Path]:
    """The numbered notebooks in order, optionally only those whose number is in ``only``."""
    notebooks = sorted(notebooks_dir().glob("[0-9][0-9]_*.ipynb"))
    if only:
        wanted = {str(o).zfill(2) for o in only}
        unknown = wanted - {nb.name[:2] for nb in notebooks}
        if unknown:
            raise EmolibError(f"no notebook numbered {', '.join(sorted(unknown))} in "
                              f"{notebooks_dir()}; have {', '.join(nb.name[:2] for nb in notebooks)}")
        notebooks = [nb for nb in notebooks if nb.name[:2] in wanted]
    return notebooks


def profile_parameters(notebook: Path, profile: str) -> dict:
    """The parameters a notebook declares for ``profile`` (plus ``profile`` itself)."""
    if profile not in PROFILES:
        raise EmolibError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}")
    metadata = json.loads(notebook.read_text()).get("metadata", {})
    profiles = metadata.get("emolib", {}).get("profiles", {})
    return {"profile": profile, **profiles.get(profile, {})}


def _writable(folder: Path) -> Path:
    """``folder``, created; EmolibError with one line when it cannot be written to."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise EmolibError(f"cannot write to {folder} ({error.strerror or error}); make it writable "
                          "or set EMOLIB_OUTPUTS to a folder you can write to") from None
    return folder


def kernel_environment(session: str, fresh: bool = False) -> dict:
    """What the runner adds to a kernel's environment: this checkout's package first on the path,
    its outputs folder, the session whose progress files the console shows, and ``--fresh``."""
    from emolib.progress import SESSION_VARIABLE
    from emolib.runs import FRESH_VARIABLE

    path = [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = {"PYTHONPATH": os.pathsep.join(path),
           "EMOLIB_OUTPUTS": str(outputs_dir(create=False).resolve()),
           SESSION_VARIABLE: session, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    if fresh:
        env[FRESH_VARIABLE] = "1"
    return env


def _kernel_manager(log, env: dict):
    """A kernel manager whose kernels print into ``log`` and see ``env``."""
    from jupyter_client.manager import AsyncKernelManager

    class LoggedKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw):
            kw.update(stdout=log, stderr=log, env={**kw.get("env", os.environ), **env})
            return await super().start_kernel(**kw)

    return LoggedKernelManager


def _engine(progress) -> str:
    """Register (once per call) a papermill engine that tells ``progress`` which cell runs."""
    from papermill.engines import NBClientEngine, papermill_engines

    class ReportingEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
            cell_start = nb_man.cell_start

            def report(cell, cell_index=None, **kw):
                progress.cell(cell_index or 0, len(nb_man.nb.cells))
                return cell_start(cell, cell_index, **kw)

            nb_man.cell_start = report
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register("emolib", ReportingEngine)
    return "emolib"


@contextlib.contextmanager
def _papermill_log(log):
    """Papermill's messages and the cells' outputs (``log_output``) into ``log``, not the console."""
    logger = logging.getLogger("papermill")
    handler = logging.StreamHandler(log)
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def _refusals() -> set[str]:
    """Class names of EmolibError and its subclasses: a notebook refused, it did not crash."""
    names, pending = set(), [EmolibError]
    while pending:
        kind = pending.pop()
        names.add(kind.__name__)
        pending.extend(kind.__subclasses__())
    return names


def run(profile: str = "quick", only: list[str] | None = None, overrides: dict | None = None,
        check_data: bool = True, tag: str = "", log: str | os.PathLike | None = None,
        fresh: bool = False) -> list[Path]:
    """Execute the notebooks in order; stop at the first failure, naming the notebook to open.

    Executed copies go to ``outputs/notebooks/<profile>/``, named ``NN_name-<tag>.ipynb`` when a
    ``tag`` is given (so a run with overrides does not replace the plain profile's copy).
    ``log`` (default ``outputs/logs/run-<profile>-<time>.log``) receives the kernels' full
    output. ``fresh`` starts interrupted training runs over instead of resuming them.
    """
    from emolib.progress import display_path

    notebooks = list_notebooks(only)
    parameters = {notebook: profile_parameters(notebook, profile) for notebook in notebooks}
    for notebook, checked in check_overrides(notebooks, overrides or {}).items():  # before anything
        parameters[notebook].update(checked)
    if check_data and any(nb.name[:2] in NEEDS_DATA for nb in notebooks):
        from emolib.datasets import find_data

        source = next((p["data_source"] for p in parameters.values() if p.get("data_source")), None)
        print(f"data: {find_data(source)}")  # the where-to-put-it message when missing
    out_dir = _writable(outputs_dir("notebooks", profile, create=False))
    runs_dir = _writable(outputs_dir("runs", create=False))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_file = Path(log) if log else outputs_dir("logs", create=False) / (
        f"run-{profile}{'-' + tag if tag else ''}-{stamp}.log")
    _writable(log_file.parent)
    print(f"log: {display_path(log_file)}", flush=True)
    env = kernel_environment(uuid.uuid4().hex[:12], fresh)
    executed = []
    with open(log_file, "a") as log_handle, _papermill_log(log_handle):
        for index, notebook in enumerate(notebooks, 1):
            target = out_dir / (f"{notebook.stem}-{tag}.ipynb" if tag else notebook.name)
            print(f"[{index}/{len(notebooks)}] {notebook.name} (profile {profile})", flush=True)
            log_handle.write(f"\n==== {notebook.name} -> {target} {time.strftime('%c')}\n"
                             f"parameters: {json.dumps(parameters[notebook])}\n")
            log_handle.flush()
            _execute(notebook, target, parameters[notebook], log_handle, log_file, env, runs_dir)
            executed.append(target)
    return executed


def _execute(notebook: Path, target: Path, parameters: dict, log_handle, log_file: Path,
             env: dict, runs_dir: Path) -> None:
    """One notebook into ``target`` (``NN_name.running.ipynb`` until it ends), with progress."""
    import papermill

    from emolib.progress import SESSION_VARIABLE, NotebookProgress, display_path, format_duration

    running = target.with_name(f"{target.stem}.running.ipynb")
    progress = NotebookProgress(runs_dir, env[SESSION_VARIABLE])
    start = time.perf_counter()
    try:
        with progress:
            papermill.execute_notebook(
                str(notebook), str(running), parameters=parameters, cwd=str(notebook.parent),
                progress_bar=False, log_output=True, kernel_name="python3",
                engine_name=_engine(progress), kernel_manager_class=_kernel_manager(log_handle, env))
    except papermill.PapermillExecutionError as error:
        log_handle.write(re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(error.traceback)) + "\n")
        log_handle.flush()
        message = next(iter((error.evalue or "").strip().splitlines()), "")
        if error.ename in _refusals():  # the notebook said what to do; nothing half-done stays
            running.unlink(missing_ok=True)
            raise EmolibError(f"{notebook.name}: {message}") from None
        message = message[:300]
        os.replace(running, target)
        raise EmolibError(f"{notebook.name} failed in cell {error.exec_count} ({error.ename}: "
                          f"{message}); open {display_path(target)} to see where, full output in "
                          f"{display_path(log_file)}") from None
    except Exception as error:  # the kernel died, the output could not be written, ...
        log_handle.write(traceback.format_exc())
        log_handle.flush()
        if running.exists():
            os.replace(running, target)
        first = (str(error).splitlines() or [""])[0][:300]
        raise EmolibError(f"{notebook.name} stopped ({type(error).__name__}: {first}); full "
                          f"output in {display_path(log_file)}") from None
    except KeyboardInterrupt:
        if running.exists():
            os.replace(running, target)
        raise
    os.replace(running, target)
    print(f"  done in {format_duration(time.perf_counter() - start)} -> {display_path(target)}",
          flush=True)
    for line in progress.summary():
        print(line, flush=True)


@contextlib.contextmanager
def native_output_to(path: str | os.PathLike):
    """What C libraries write to stderr (TensorFlow's and CUDA's start-up lines) goes to
    ``path``; Python's own output (errors, warnings) still reaches the terminal. An empty log
    is removed at the end."""
    path = Path(path)
    created = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        log = open(path, "a")  # appended: commands running side by side share it
    except OSError:
        yield  # nowhere to put it: leave stderr as it is
        return
    sys.stderr.flush()
    terminal = os.dup(2)
    python_stderr = sys.stderr
    sys.stderr = open(terminal, "w", buffering=1, encoding=python_stderr.encoding,
                      errors="backslashreplace")
    os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(terminal, 2)
        sys.stderr.close()
        sys.stderr = python_stderr
        log.close()
        try:
            empty = not path.stat().st_size
        except OSError:  # another emolib command, sharing the log, removed it
            empty = False
        if empty:  # nothing was said: leave nothing behind
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                for folder in created:
                    folder.rmdir()
