"""Runner: executes the numbered notebooks headless with papermill, one profile at a time.

Each notebook declares its profiles in its metadata (``metadata.emolib.profiles``): named sets of
parameter overrides. The ``parameters`` cell holds the ``cpu`` values; ``quick`` and ``full``
override some of them. Executed copies go to ``outputs/notebooks/``; sources are never written.
"""

from __future__ import annotations

import ast
import json
import time
from pathlib import Path

from emolib.errors import EmolibError
from emolib.paths import notebooks_dir, outputs_dir

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


def parse_overrides(pairs: list[str]) -> dict:
    """``["epochs=3", "data_source=x.zip"]`` -> ``{"epochs": 3, "data_source": "x.zip"}``."""
    overrides = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise EmolibError(f"-p {pair!r}: write overrides as name=value, e.g. -p epochs=3")
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[key] = value  # a bare string
    return overrides


def run(profile: str = "quick", only: list[str] | None = None, overrides: dict | None = None,
        check_data: bool = True, tag: str = "") -> list[Path]:
    """Execute the notebooks in order; stop at the first failure, naming the notebook to open.

    Executed copies go to ``outputs/notebooks/<profile>/``, named ``NN_name-<tag>.ipynb`` when a
    ``tag`` is given (so a run with overrides does not replace the plain profile's copy).
    """
    import papermill

    notebooks = list_notebooks(only)
    if check_data and any(nb.name[:2] in NEEDS_DATA for nb in notebooks):
        from emolib.datasets import find_data

        source = overrides.get("data_source") if overrides else None
        print(f"data: {find_data(source or None)}")  # the where-to-put-it message when missing
    out_dir = outputs_dir("notebooks", profile)
    executed = []
    for index, notebook in enumerate(notebooks, 1):
        parameters = {**profile_parameters(notebook, profile), **(overrides or {})}
        target = out_dir / (f"{notebook.stem}-{tag}.ipynb" if tag else notebook.name)
        print(f"[{index}/{len(notebooks)}] {notebook.name} (profile {profile})", flush=True)
        start = time.perf_counter()
        try:
            papermill.execute_notebook(str(notebook), str(target), parameters=parameters,
                                       cwd=str(notebook.parent), progress_bar=True,
                                       kernel_name="python3")
        except papermill.PapermillExecutionError as error:
            raise EmolibError(f"{notebook.name} failed in cell {error.exec_count} "
                              f"({error.ename}: {error.evalue.splitlines()[0][:200] if error.evalue else ''});"
                              f" open {target} to see where") from None
        print(f"    done in {time.perf_counter() - start:.0f} s -> {target}", flush=True)
        executed.append(target)
    return executed
