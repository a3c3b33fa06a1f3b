"""Reports: the results table (every column names its split), its CSV/Markdown and notebook
views, saved figures, and the text ``python -m emolib evaluate`` and ``data`` print.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emolib import CLASS_NAMES
from emolib.paths import outputs_dir

#: How each split is named in every table and figure title.
SPLIT_LABELS = {"train": "train (Training)", "val": "val (PublicTest)",
                "test": "test (PrivateTest)", "all": "all images"}


def split_label(split: str) -> str:
    """``"test"`` -> ``"test (PrivateTest)"``; other names (a folder dataset) unchanged."""
    return SPLIT_LABELS.get(split, split)


def table_row(name: str, *, kind: str, metrics: dict, tta: str | None = None,
              size: dict | None = None, latency: dict | None = None, **extra) -> dict:
    """One row of the results table; every number's column names its split.

    ``metrics``: ``{split: evaluation.classification_metrics(...)}``; the val split contributes
    its accuracy only (it is where choices are made), every other split its full line.
    """
    row = {"model": name, "kind": kind, "TTA (chosen on val)": tta or "none"}
    for split, values in metrics.items():
        label = split_label(split)
        row[f"{label} accuracy"] = values["accuracy"]
        if split == "val":
            continue
        low, high = values["accuracy_ci95"]
        row[f"{label} 95% CI low"] = low
        row[f"{label} 95% CI high"] = high
        row[f"{label} macro-F1"] = values["macro_f1"]
        row[f"{label} ECE"] = values["ece"]
        row[f"{label} n"] = values["n"]
    size = size or {}
    latency = latency or {}
    row["parameters"] = size.get("parameters")
    row["size MB"] = size.get("size_mb")
    for key, value in latency.items():
        row[f"ms/image {key.replace('_', ' ')}"] = value
    row.update(extra)
    return row


def results_table(rows: list[dict]):
    """The rows as a DataFrame indexed by model name, in the order given."""
    import pandas as pd

    return pd.DataFrame(rows).set_index("model")


def table_view(frame, precision: int = 4, header_width: str = "7.5em"):
    """The table for a notebook panel: headers wrap (they are long: each names its split),
    numbers are rounded, and a table still too wide scrolls inside the panel."""
    styles = [{"selector": "th.col_heading", "props": [("white-space", "normal"),
                                                       ("max-width", header_width),
                                                       ("vertical-align", "bottom")]},
              {"selector": "th.row_heading", "props": [("max-width", "16em"),
                                                       ("white-space", "normal")]},
              {"selector": "", "props": [("display", "block"), ("overflow-x", "auto"),
                                         ("max-width", "100%")]}]
    return frame.style.format(precision=precision, na_rep="").set_table_styles(styles)


def markdown_table(frame, float_format: str = "{:.4f}") -> str:
    """A GitHub-flavoured Markdown table of a DataFrame (no extra dependency)."""
    def cell(value) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        if isinstance(value, (float, np.floating)):
            return float_format.format(value)
        return str(value).replace("|", "\\|")

    header = [frame.index.name or ""] + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in frame.iterrows():
        lines.append("| " + " | ".join([cell(index)] + [cell(v) for v in row.tolist()]) + " |")
    return "\n".join(lines) + "\n"


def comparison_dir() -> Path:
    """``outputs/comparison``: the table and figures notebook 04 writes."""
    return outputs_dir("comparison")


def save_table(frame, stem: str = "results", directory: Path | None = None) -> list[Path]:
    """Write ``<stem>.csv`` and ``<stem>.md`` into ``outputs/comparison/``; return the paths."""
    directory = Path(directory) if directory else comparison_dir()
    directory.mkdir(parents=True, exist_ok=True)
    csv_path, markdown_path = directory / f"{stem}.csv", directory / f"{stem}.md"
    frame.to_csv(csv_path)
    markdown_path.write_text(markdown_table(frame))
    return [csv_path, markdown_path]


def save_figure(figure, name: str, directory: Path | None = None) -> Path:
    """Save a figure as ``outputs/comparison/<name>.png`` and return the path.

    The figure is closed in pyplot, so a notebook cell shows it once, by ending with
    ``figure`` (not twice, and not the path this returns)."""
    directory = Path(directory) if directory else comparison_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    figure.savefig(path, dpi=110, bbox_inches="tight")
    if figure.canvas.manager is not None:
        import matplotlib.pyplot as plt

        plt.close(figure)
    return path


def summary(results, result, *, seconds: float):
    """Notebook 04's closing numbers, read from its results table: the best emolib model on val
    (the fer peer and TFLite copies aside), its test accuracy, the ensemble, the files written."""
    import pandas as pd

    val_label, test_label = split_label("val"), split_label("test")
    reported = results.drop(index=[name for name in results.index if "TFLite" in name])
    ours = reported[reported["kind"] != "peer"]  # the fer peer is a reference, not a rival
    best = ours[f"{val_label} accuracy"].idxmax()  # chosen on PublicTest, reported on PrivateTest
    row = reported.loc[best]
    values = {
        "models compared": len(reported),
        f"best emolib model on {val_label}": f"{best} ({row[f'{val_label} accuracy']:.4f})",
        f"its {test_label} accuracy": f"{row[f'{test_label} accuracy']:.4f} (95% CI "
                                      f"{row[f'{test_label} 95% CI low']:.3f}–"
                                      f"{row[f'{test_label} 95% CI high']:.3f})",
        "ensemble members (chosen on val)": ", ".join(result.members) or "none",
        "images per split": f"{len(result.labels['val'])} {val_label}, "
                            f"{len(result.labels['test'])} {test_label}",
        "wall time (s)": round(seconds, 1),
        "written": ", ".join(sorted(path.name for path in comparison_dir().glob("*.*"))),
    }
    return pd.Series(values, name="value").to_frame()


def training_table(results: dict, runs: dict | None = None):
    """Notebooks 02 and 03's results: one row per trained model.

    ``results`` is ``{name: evaluation.evaluate_model(...)}`` (the TTA chosen on val), or a saved
    run's ``metrics.json``, which holds the same and its best epoch, minutes and size; ``runs``
    (``{name: runs.Run}``) gives those for results not saved yet.
    """
    import pandas as pd

    val, test = split_label("val"), split_label("test")
    rows = {}
    for name, result in results.items():
        run = (runs or {}).get(name)
        history = run.history.get("val_accuracy") if run is not None else None
        low, high = result["test"]["accuracy_ci95"]
        minutes = result.get("wall_time_s", run.wall_time_s if run is not None else None)
        rows[name] = {
            f"{val} accuracy": result["val"]["accuracy"],
            "TTA (chosen on val)": result.get("tta_chosen_on_val") or "none",
            f"{test} accuracy": result["test"]["accuracy"],
            f"{test} 95% CI": f"{low:.3f}–{high:.3f}",
            f"{test} accuracy with that TTA": result["test_tta"]["accuracy"],
            f"{test} macro-F1": result["test"]["macro_f1"],
            "best epoch": result.get("best_epoch", int(np.nanargmax(history)) + 1 if history else None),
            "train minutes": None if minutes is None else round(minutes / 60, 1),
            "parameters": result.get("params", run.model.count_params() if run is not None else None),
        }
    return pd.DataFrame.from_dict(rows, orient="index").round(4)


def per_class_table(results: dict, metric: str = "recall", split: str = "test"):
    """One per-class metric (``recall``, ``precision``, ``f1``) of each model on ``split``: models
    down, classes across, from ``{name: evaluation.evaluate_model(...)}``."""
    import pandas as pd

    return pd.DataFrame({name: result[split][metric] for name, result in results.items()}).T.round(3)


def evaluate_report(model_specs: list, *, data: str | None = None, split: str = "test",
                    detect_faces: bool = False, tta: str | None = None, max_images: int = 0,
                    ensemble: bool = False, latency: bool = True, seed: int = 0) -> dict:
    """What ``python -m emolib evaluate`` prints: ``comparison.compare`` of the named models on
    one split, as a JSON-ready dict.

    ``model_specs``: what ``registry.resolve`` takes (empty: its rule for no model). With
    several models: pairwise McNemar tests and, with ``ensemble``, the averaged probabilities
    of all of them as one more model. ``max_images``: a seeded random subset (0 = all).
    """
    from emolib import comparison, datasets, facesets, registry

    candidates = {}
    for index, spec in enumerate(model_specs or [None]):
        model = registry.load(spec)
        name = model.name if model.name not in candidates else f"{model.name} [{index + 1}]"
        candidates[name] = registry.Candidate(name, model, model.path, "file")
    source = data if data else str(datasets.find_data(None))
    faces = facesets.load_faces(source, split=split, detect_faces=detect_faces,
                                max_images=max_images, seed=seed)
    result = comparison.compare(candidates, (faces.images, faces.labels), test_split=faces.split,
                                tta_choices=(tta,), ensemble="all" if ensemble else None,
                                latency=latency, latency_batch=256, latency_repeats=10,
                                seed=seed, progress=False)
    metrics = result.metrics("test")
    report = {"data": source, "split": faces.split, "split_label": split_label(faces.split),
              "n": int(len(faces.labels)), "faces": faces.note(), "tta": tta,
              "models": [{"name": name, "path": str(c.path), "note": c.model.note,
                          "split": faces.split, "tta": tta, **metrics[name], **result.size[name],
                          **({"latency_ms": result.latency[name]} if latency else {})}
                         for name, c in candidates.items()]}
    if result.ensemble_name:
        report["ensemble"] = {"members": result.members, "split": faces.split, "tta": tta,
                              **metrics[result.ensemble_name]}
    if len(metrics) > 1:
        from emolib.evaluation import pairwise_mcnemar

        report["mcnemar"] = pairwise_mcnemar(faces.labels, result.probabilities["test"])
    return report


def format_report(report: dict) -> str:
    """The evaluate report as text: one line per model, then per-class scores and confusions."""
    lines = [entry["note"] for entry in report["models"]] + [
             f"data: {report['data']}", f"faces: {report['faces']}",
             f"split: {report['split_label']}, {report['n']} images, TTA: {report['tta'] or 'none'}",
             ""]
    header = (f"{'model':<24}{'accuracy':>9}  {'95% CI':<13}{'macro-F1':>9}{'ECE':>7}"
              f"{'ms b1':>8}{'ms b256':>9}{'params':>10}{'MB':>7}")
    lines.append(header)
    rows = list(report["models"]) + ([dict(report["ensemble"], name="ensemble (mean)")]
                                     if "ensemble" in report else [])
    for row in rows:
        latency = row.get("latency_ms", {})
        low, high = row["accuracy_ci95"]
        lines.append(
            f"{row['name'][:23]:<24}{row['accuracy']:>9.4f}  {f'{low:.3f}-{high:.3f}':<13}"
            f"{row['macro_f1']:>9.4f}{row['ece']:>7.3f}"
            + (f"{latency['batch_1']:>8.2f}{latency['batch_256']:>9.3f}" if latency else f"{'':>17}")
            + (f"{row['parameters']:>10,}" if row.get("parameters") else f"{'':>10}")
            + (f"{row['size_mb']:>7.2f}" if row.get("size_mb") else f"{'':>7}"))
    for row in rows:
        lines += ["", f"{row['name']} — per class on {report['split_label']} "
                      "(precision / recall / F1 / support), confusion rows = true class:"]
        for index, name in enumerate(CLASS_NAMES):
            confusion = " ".join(f"{count:>5}" for count in row["confusion"][index])
            lines.append(f"  {name:<9}{row['precision'][name]:>7.3f}{row['recall'][name]:>7.3f}"
                         f"{row['f1'][name]:>7.3f}{row['support'][name]:>7}   {confusion}")
    if report.get("mcnemar"):
        lines += ["", "McNemar (exact, two-sided) on the same images:"]
        for test in report["mcnemar"]:
            lines.append(f"  {test['model_a']} vs {test['model_b']}: only A right "
                         f"{test['only_a_correct']}, only B right {test['only_b_correct']}, "
                         f"p = {test['p_value']:.4g}")
    return "\n".join(lines)


def format_data_report(report: dict) -> str:
    """``data_quality.data_report`` as text: counts per class and split, duplicates, blank
    images and skipped files (what ``python -m emolib data`` prints)."""
    counts = report["counts"]
    classes = list(next(iter(counts.values())))
    lines = [f"{report['source']}: {report['images']} images; splits {report['split_note']}",
             f"{'class':<10}" + "".join(f"{split:>8}" for split in counts)]
    for name in classes:
        lines.append(f"{name:<10}" + "".join(f"{counts[s][name]:>8}" for s in counts))
    lines.append(f"{'total':<10}" + "".join(f"{sum(counts[s].values()):>8}" for s in counts))
    dup = report["duplicates"]
    lines.append(f"duplicates: {dup['groups']} groups of identical images ({dup['extra_copies']} "
                 f"extra copies; {dup['groups_across_splits']} groups span splits, "
                 f"{dup['groups_with_conflicting_labels']} have conflicting labels)")
    for key, label in (("blank", "blank images"), ("skipped", "skipped files")):
        count, examples = report[key]["count"], report[key]["examples"][:3]
        lines.append(f"{label}: {count}" + (f" e.g. {', '.join(examples)}" if count else ""))
    return "\n".join(lines)
