"""The sweep folder: what a sweep writes to ``outputs/sweeps/<name>/`` beside Tune's experiment.

``save`` writes ``sweep.json``, the definition as it was started, which ``saved`` reads back for
``resume``. ``write_results`` ranks the trials on PublicTest (``results_table``) into
``results.csv`` and ``results.md`` and, with arms, writes the ablation's ``summary.md``
(``arms_summary``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from emolib.errors import EmolibError
from emolib.paths import outputs_dir
from emolib.sweep import METRIC, arm_variants, trial_parameters
from emolib.trials import run_name


def directory(name: str) -> Path:
    """The folder of the sweep ``name`` (not created)."""
    return outputs_dir("sweeps", create=False) / name


def save(spec: dict) -> None:
    """Write the definition ``spec`` to its sweep folder's ``sweep.json``, making the folder."""
    folder = directory(spec["name"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sweep.json").write_text(json.dumps(spec, indent=1) + "\n")


def saved(name: str) -> dict:
    """The definition of the sweep ``name`` as it was started (for ``resume``)."""
    path = directory(name) / "sweep.json"
    if not path.is_file():
        raise EmolibError(f"no sweep named {name!r} in {path.parent.parent}; start it without --resume")
    return json.loads(path.read_text())


def results_table(grid, spec: dict):
    """One row per trial, best PublicTest accuracy first: what it varied, its best epoch, status."""
    import pandas as pd

    rows = []
    for result in grid:
        config, last = result.config, result.metrics or {}
        trial_id = Path(result.path).name.removeprefix("trial_")
        frame = result.metrics_dataframe
        scores = (frame.set_index("epoch")[METRIC].dropna() if frame is not None and METRIC in frame
                  else pd.Series(dtype=float))
        row = {"trial": trial_id, "run": run_name(config["sweep"], trial_id)}
        if spec["arms"]:
            row.update(arm=config["arm"]["arm"], seed=trial_parameters(config).get("seed"))
        row.update({key: _cell(config.get(key)) for key in spec["space"]})
        row.update({"best PublicTest accuracy": scores.max() if len(scores) else math.nan,
                    "best epoch": scores.idxmax() if len(scores) else None,
                    "epochs": int(scores.index.max()) if len(scores) else 0,
                    "PublicTest macro-F1": last.get("val_macro_f1", math.nan),
                    "minutes": last.get("minutes", last.get("time_total_s", math.nan) / 60),
                    "status": ("error" if result.error else "finished" if last.get("finished")
                               else "stopped early")})
        rows.append(row)
    table = pd.DataFrame(rows).sort_values("best PublicTest accuracy", ascending=False, kind="stable")
    return table.reset_index(drop=True).rename_axis("rank").rename(index=lambda i: i + 1)


def _cell(value):
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def arms_summary(table, spec: dict) -> str:
    """The ablation table: each arm's mean best PublicTest accuracy over its finished trials (±
    half their range), its difference to the control arm, macro-F1 and minutes; then the noise
    floor, the spread of the control's seeds. A trial that failed or was stopped is counted apart,
    never averaged in (a failed control seed is not a noise floor of 0)."""
    finished = table[table["status"] == "finished"]
    control = finished.loc[finished["arm"] == spec["control"], "best PublicTest accuracy"]
    lines = [f"| arm | seeds | best PublicTest acc | vs {spec['control']} | PublicTest macro-F1 | minutes |",
             "|---|---|---|---|---|---|"]
    for arm in dict.fromkeys(a["arm"] for a in arm_variants(spec["arms"])):
        rows = finished[finished["arm"] == arm]
        unfinished = int((table["arm"] == arm).sum()) - len(rows)
        seeds = f"{len(rows)}" + (f" (+{unfinished} unfinished)" if unfinished else "")
        if rows.empty:
            lines.append(f"| {arm} | {seeds} | - | - | - | - |")
            continue
        accuracy = rows["best PublicTest accuracy"]
        spread = f" (±{(accuracy.max() - accuracy.min()) / 2 * 100:.1f})" if len(rows) > 1 else ""
        delta = ("" if arm == spec["control"] else "-" if control.empty
                 else f"{(accuracy.mean() - control.mean()) * 100:+.1f}")
        lines.append(f"| {arm} | {seeds} | {accuracy.mean() * 100:.1f}%{spread} | {delta} | "
                     f"{rows['PublicTest macro-F1'].mean():.3f} | {rows['minutes'].mean():.1f} |")
    if len(control) > 1:
        lines.append(f"\nNoise floor: the {len(control)} seeds of {spec['control']} are "
                     f"{(control.max() - control.min()) * 100:.1f} points apart; a difference within "
                     "about that is noise.")
    else:
        lines.append(f"\nNo noise floor: {spec['control']} has {len(control)} finished seed(s); give "
                     "it seed: [0, 1] (and --resume failed ones).")
    return "\n".join(lines) + "\n"


def write_results(grid, spec: dict):
    """The results table of Tune's ``grid``, written with the summary to the sweep folder; returned."""
    from emolib.reports import markdown_table

    table = results_table(grid, spec)
    folder = directory(spec["name"])
    table.to_csv(folder / "results.csv")
    (folder / "results.md").write_text(markdown_table(table))
    if spec["arms"]:
        (folder / "summary.md").write_text(arms_summary(table, spec))
    return table
