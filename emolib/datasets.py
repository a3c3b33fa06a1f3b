"""Datasets: FER-2013 in all its forms (Kaggle zip, extracted folder, challenge CSV) and any
folder of labelled faces, decoded once to 48x48 grayscale arrays and cached.

    >>> from emolib import datasets
    >>> data = datasets.load()            # finds FER-2013 (path, $EMOLIB_DATA, data/, kagglehub)
    >>> x_train, y_train = data.split("train")

Splits follow the FER-2013 protocol: ``train`` = Training, ``val`` = PublicTest (select models
here), ``test`` = PrivateTest (report here, once).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emolib import CLASS_NAMES
from emolib.errors import DataNotFoundError, EmolibError
from emolib.paths import cache_dir, data_dir

IMAGE_SIZE = 48
SPLITS = ("train", "val", "test")
#: Bumped whenever decoding changes, so old caches are not reused.
LOADER_VERSION = 2

#: The challenge CSV's label order (0..6) mapped to the canonical order of ``CLASS_NAMES``.
CSV_CLASS_ORDER = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
_USAGE_TO_SPLIT = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
_DIR_TO_SPLIT = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val", "publictest": "val",
    "test": "test", "testing": "test", "privatetest": "test",
}
#: Folder names seen in other emotion datasets (RAF-DB, CK+, AffectNet exports, photo folders).
CLASS_ALIASES = {
    "angry": "angry", "anger": "angry", "mad": "angry",
    "disgust": "disgust", "disgusted": "disgust", "disgusting": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy", "smile": "happy",
    "neutral": "neutral", "calm": "neutral",
    "sad": "sad", "sadness": "sad", "unhappy": "sad",
    "surprise": "surprise", "surprised": "surprise", "suprise": "surprise",
}
_IGNORED_NAMES = ("__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini")


class EmolibWarning(UserWarning):
    """Something in the data was skipped or dropped; the message counts it and names examples."""


@dataclass
class Dataset:
    """Decoded faces with labels in ``CLASS_NAMES`` order and a split per image."""

    images: np.ndarray  #: (N, 48, 48) uint8
    labels: np.ndarray  #: (N,) int64, index into CLASS_NAMES
    splits: np.ndarray  #: (N,) str, one of SPLITS
    files: np.ndarray  #: (N,) str, where each image came from (path in the source or CSV line)
    source: str = ""
    split_note: str = ""  #: how the splits were obtained (from file names, folders, or seeded)
    skipped: list = field(default_factory=list)  #: [(name, reason)] for files that were not images
    dropped: dict = field(default_factory=dict)  #: {folder name: count} for unknown classes

    class_names = CLASS_NAMES

    def __len__(self) -> int:
        return len(self.labels)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Images ``(n, 48, 48, 1)`` uint8 and labels of one split (train, val or test)."""
        if name not in SPLITS:
            raise EmolibError(f"unknown split {name!r}; use one of {', '.join(SPLITS)}")
        mask = self.splits == name
        return self.images[mask][..., None], self.labels[mask]

    def counts(self) -> dict:
        """``{split: {class: count}}`` for every split present."""
        return {
            split: {c: int(np.sum((self.splits == split) & (self.labels == i)))
                    for i, c in enumerate(CLASS_NAMES)}
            for split in SPLITS if np.any(self.splits == split)
        }


# --------------------------------------------------------------------------- finding the data

def find_data(source: str | os.PathLike | None = None) -> Path:
    """Locate a dataset: explicit path, then ``$EMOLIB_DATA``, then ``data/``, then kagglehub.

    Raises DataNotFoundError with where to put the files when nothing is found.
    """
    if source is not None:
        path = Path(source).expanduser()
        if not path.exists():
            raise EmolibError(f"{path}: no such file or folder; pass the path of archive.zip, "
                              "fer2013.csv or an image folder")
        return path
    env = os.environ.get("EMOLIB_DATA")
    if env:
        path = Path(env).expanduser()
        if not path.exists():
            raise EmolibError(f"EMOLIB_DATA={env} does not exist; point it at archive.zip, "
                              "fer2013.csv or an image folder, or unset it")
        return path
    folder = data_dir()
    for name in ("archive.zip", "fer2013.zip", "fer2013.csv", "fer2013", "archive"):
        if (folder / name).exists():
            return folder / name
    if (folder / "train").is_dir():
        return folder
    downloaded = _kagglehub_download()
    if downloaded is not None:
        return downloaded
    raise DataNotFoundError(
        f"FER-2013 not found. Put the Kaggle archive.zip (msambare/fer2013) or the challenge "
        f"fer2013.csv in {folder}/, or set EMOLIB_DATA=/path/to/archive.zip "
        f"(on the dev machines: ../shared/datasets/fer2013/archive.zip)")


def _kagglehub_download() -> Path | None:
    """Download FER-2013 with kagglehub when it is installed and online; None otherwise."""
    if os.environ.get("EMOLIB_OFFLINE") or os.environ.get("PYTEST_CURRENT_TEST"):
        return None
    try:
        import kagglehub  # optional: pip install kagglehub
    except ImportError:
        return None
    try:
        return Path(kagglehub.dataset_download("msambare/fer2013"))
    except Exception as error:  # offline, no credentials, API change: fall back to the message
        warnings.warn(f"kagglehub download failed ({error}); using local data only", EmolibWarning)
        return None


# --------------------------------------------------------------------------- loading

def load(source: str | os.PathLike | None = None, *, seed: int = 0, use_cache: bool = True,
         progress: bool = True) -> Dataset:
    """Load a dataset (zip, folder or CSV) as 48x48 grayscale, from the cache when it is warm.

    The cache is keyed by the source's content, so an edited source is decoded again.
    Folder datasets without split information get a seeded stratified split (``split_note``).
    """
    path = find_data(source)
    cache_file = cache_dir() / f"{path.stem}-{_content_key(path, seed)}.npz"
    if use_cache and cache_file.exists():
        try:
            dataset = _read_cache(cache_file)
            _warn_about(dataset)
            return dataset
        except Exception:  # a damaged cache is rebuilt, never fatal
            cache_file.unlink(missing_ok=True)
    if path.suffix.lower() == ".csv":
        dataset = _load_csv(path)
    else:
        dataset = _load_images(path, seed=seed, progress=progress)
    if use_cache:
        _write_cache(cache_file, dataset)
    _warn_about(dataset)
    return dataset


def _content_key(path: Path, seed: int) -> str:
    digest = hashlib.blake2b(f"v{LOADER_VERSION}-seed{seed}".encode(), digest_size=8)
    if path.is_file():
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    else:
        # Hashing every image of a big folder would cost more than decoding it; name, size and
        # modification time of every file change whenever the content does in practice.
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            stat = file.stat()
            digest.update(f"{file.relative_to(path)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _read_cache(cache_file: Path) -> Dataset:
    with np.load(cache_file, allow_pickle=False) as arrays:
        meta = json.loads(str(arrays["meta"]))
        return Dataset(images=arrays["images"], labels=arrays["labels"].astype(np.int64),
                       splits=arrays["splits"], files=arrays["files"], source=meta["source"],
                       split_note=meta["split_note"],
                       skipped=[tuple(s) for s in meta["skipped"]], dropped=meta["dropped"])


def _write_cache(cache_file: Path, dataset: Dataset) -> None:
    """Write atomically: a reader never sees a half-written cache."""
    meta = json.dumps({"source": dataset.source, "split_note": dataset.split_note,
                       "skipped": dataset.skipped, "dropped": dataset.dropped})
    handle, tmp_name = tempfile.mkstemp(dir=cache_file.parent, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as tmp:
            np.savez(tmp, images=dataset.images, labels=dataset.labels.astype(np.int8),
                     splits=dataset.splits, files=dataset.files, meta=np.array(meta))
        os.replace(tmp_name, cache_file)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _warn_about(dataset: Dataset) -> None:
    if dataset.skipped:
        examples = "; ".join(f"{name} ({reason})" for name, reason in dataset.skipped[:3])
        warnings.warn(f"{len(dataset.skipped)} file(s) in {dataset.source} skipped as unreadable, "
                      f"e.g. {examples}", EmolibWarning, stacklevel=3)
    if dataset.dropped:
        listing = ", ".join(f"{name} ({n})" for name, n in sorted(dataset.dropped.items()))
        warnings.warn(f"unknown class folder(s) dropped from {dataset.source}: {listing}; "
                      f"known classes are {', '.join(CLASS_NAMES)}", EmolibWarning, stacklevel=3)


# --------------------------------------------------------------------------- CSV

def _load_csv(path: Path) -> Dataset:
    """The challenge CSV: ``emotion,pixels,Usage`` with labels in CSV_CLASS_ORDER."""
    to_canonical = [CLASS_NAMES.index(name) for name in CSV_CLASS_ORDER]
    images, labels, splits, files = [], [], [], []
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or ())
        if not {"emotion", "pixels"} <= columns:
            raise EmolibError(f"{path}: expected a header with columns emotion,pixels[,Usage]; "
                              f"found {','.join(reader.fieldnames or []) or 'nothing'}")
        for row in reader:
            line = reader.line_num
            where = f"{path.name} line {line}"
            try:
                label = int(row["emotion"])
                if not 0 <= label <= 6:
                    raise ValueError
            except (TypeError, ValueError):
                raise EmolibError(f"{where}: emotion {row['emotion']!r} is not a label 0-6; "
                                  "fix or delete that row") from None
            try:
                pixels = np.array((row["pixels"] or "").split(), dtype=np.int64)
            except ValueError:
                raise EmolibError(f"{where}: pixels must be space-separated integers; "
                                  "fix or delete that row") from None
            if pixels.size != IMAGE_SIZE * IMAGE_SIZE or pixels.min() < 0 or pixels.max() > 255:
                raise EmolibError(f"{where}: expected {IMAGE_SIZE * IMAGE_SIZE} pixel values "
                                  f"0-255, found {pixels.size}; fix or delete that row")
            usage = (row.get("Usage") or "Training").strip()
            if usage not in _USAGE_TO_SPLIT:
                raise EmolibError(f"{where}: Usage {usage!r} is not one of "
                                  f"{', '.join(_USAGE_TO_SPLIT)}; fix or delete that row")
            images.append(pixels.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE))
            labels.append(to_canonical[label])
            splits.append(_USAGE_TO_SPLIT[usage])
            files.append(f"line {line}")
    if not images:
        raise EmolibError(f"{path}: no data rows; is this the FER-2013 CSV?")
    return Dataset(np.stack(images), np.array(labels, dtype=np.int64), np.array(splits),
                   np.array(files), source=str(path), split_note="from the CSV's Usage column")


# --------------------------------------------------------------------------- image folders / zips

def _list_entries(path: Path) -> list[tuple[str, object]]:
    """``[(relative posix path, reader)]`` for every file of a zip or folder."""
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise EmolibError(f"{path}: not a zip, CSV or folder; pass the Kaggle archive.zip, "
                              "fer2013.csv or a folder with one sub-folder per class")
        archive = zipfile.ZipFile(path)
        return [(info.filename, lambda info=info: archive.read(info))
                for info in archive.infolist() if not info.is_dir()]
    return [(file.relative_to(path).as_posix(), file.read_bytes)
            for file in sorted(path.rglob("*")) if file.is_file()]


def decode_image(data: bytes) -> tuple[np.ndarray | None, str]:
    """Decode bytes to a 48x48 grayscale uint8 face; ``(None, reason)`` when it is not an image.

    Any size or colour is accepted: centre-cropped to a square, then resized with area
    interpolation (the interpolation the shipped training images were made with).
    """
    import cv2

    if not data:
        return None, "empty file"
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-64:]:
        return None, "truncated JPEG"
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        return None, "not an image"
    return to_face_square(image), ""


def to_face_square(gray: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """Centre-crop a grayscale image to a square and resize it to ``size`` x ``size``."""
    import cv2

    height, width = gray.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = gray[top:top + side, left:left + side]
    if side != size:
        interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
        square = cv2.resize(square, (size, size), interpolation=interpolation)
    return square


def _split_of(relpath: str) -> str | None:
    name = relpath.rsplit("/", 1)[-1]
    for prefix, split in _USAGE_TO_SPLIT.items():
        if name.startswith(prefix + "_"):
            return split
    for part in relpath.split("/")[:-2]:
        if part.lower() in _DIR_TO_SPLIT:
            return _DIR_TO_SPLIT[part.lower()]
    return None


def _load_images(path: Path, *, seed: int, progress: bool) -> Dataset:
    from tqdm.auto import tqdm

    entries, skipped, dropped = [], [], {}
    for relpath, reader in _list_entries(path):
        parts = relpath.split("/")
        if any(p in _IGNORED_NAMES or p.startswith(".") for p in parts):
            continue
        if len(parts) < 2:
            skipped.append((relpath, "not inside a class folder"))
            continue
        folder = parts[-2]
        label = CLASS_ALIASES.get(folder.lower())
        if label is None:
            dropped[folder] = dropped.get(folder, 0) + 1
            continue
        entries.append((relpath, reader, CLASS_NAMES.index(label), _split_of(relpath)))
    if not entries:
        raise EmolibError(f"{path}: no images in class folders found; expected "
                          f"<class>/<image> or train|test/<class>/<image> with classes like "
                          f"{', '.join(CLASS_NAMES)}")

    # Read sequentially (a zip handle is not thread-safe), decode in threads (OpenCV drops the GIL).
    blobs = [(e[0], e[1](), e[2], e[3]) for e in entries]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        decoded = list(tqdm(pool.map(lambda b: decode_image(b[1]), blobs), total=len(blobs),
                            desc=f"decoding {path.name}", disable=not progress, unit="img"))
    images, labels, splits, files = [], [], [], []
    for (relpath, _, label, split), (image, reason) in zip(blobs, decoded):
        if image is None:
            skipped.append((relpath, reason))
            continue
        images.append(image)
        labels.append(label)
        splits.append(split or "")
        files.append(relpath)
    if not images:
        raise EmolibError(f"{path}: none of the {len(blobs)} files could be read as an image")
    labels_array = np.array(labels, dtype=np.int64)
    splits_array = np.array(splits, dtype="<U5")
    split_note = _fill_missing_splits(labels_array, splits_array, seed)
    return Dataset(np.stack(images), labels_array, splits_array, np.array(files),
                   source=str(path), split_note=split_note, skipped=skipped, dropped=dropped)


def _fill_missing_splits(labels: np.ndarray, splits: np.ndarray, seed: int) -> str:
    """Assign splits in place where the source had none; return how it was done."""
    notes = []
    rng = np.random.default_rng(seed)
    unknown = splits == ""
    if unknown.all():
        splits[:] = _stratified(labels, rng, {"train": 0.8, "val": 0.1, "test": 0.1})
        return f"no split in the source: seeded stratified 80/10/10 split (seed={seed})"
    if unknown.any():
        splits[unknown] = "train"
        notes.append(f"{int(unknown.sum())} images without a split put in train")
    if not np.any(splits == "val"):
        # A train/test folder without file-name prefixes: halve test into val and test, as the
        # challenge did (PublicTest / PrivateTest), so models are never selected on test.
        test = np.flatnonzero(splits == "test")
        source = test if test.size else np.flatnonzero(splits == "train")
        fraction = 0.5 if test.size else 0.1
        assigned = _stratified(labels[source], rng, {"val": fraction, "rest": 1 - fraction})
        splits[source[assigned == "val"]] = "val"
        notes.append(f"val = seeded stratified {fraction:.0%} of {'test' if test.size else 'train'}"
                     f" (seed={seed})")
    if not notes:
        return "from the source (file-name prefixes or split folders)"
    return "; ".join(notes)


def _stratified(labels: np.ndarray, rng: np.random.Generator, fractions: dict) -> np.ndarray:
    out = np.empty(len(labels), dtype="<U5")
    names = list(fractions)
    for label in np.unique(labels):
        index = rng.permutation(np.flatnonzero(labels == label))
        sizes = np.floor([fractions[n] * len(index) for n in names]).astype(int)
        sizes[int(np.argmax(sizes))] += len(index) - sizes.sum()
        for empty in np.flatnonzero(sizes == 0):  # small classes: one image in every split
            if sizes.max() > 1:
                sizes[int(np.argmax(sizes))] -= 1
                sizes[empty] += 1
        bounds = np.cumsum(sizes)
        start = 0
        for name, stop in zip(names, bounds):
            out[index[start:stop]] = name
            start = stop
    return out


# --------------------------------------------------------------------------- data quality

def find_duplicates(images: np.ndarray) -> list[np.ndarray]:
    """Groups (arrays of indices, size >= 2) of pixel-identical images."""
    flat = np.ascontiguousarray(images.reshape(len(images), -1))
    keys = np.array([hashlib.blake2b(row.tobytes(), digest_size=8).digest() for row in flat])
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    boundaries = np.cumsum(counts)[:-1]
    return [group for group in np.split(order, boundaries) if len(group) > 1]


def find_blank(images: np.ndarray, max_std: float = 3.0) -> np.ndarray:
    """Indices of (near-)uniform images: no face can be seen in them."""
    flat = images.reshape(len(images), -1).astype(np.float32)
    return np.flatnonzero(flat.std(axis=1) <= max_std)


def describe(dataset: Dataset) -> dict:
    """A JSON-ready report: counts per split and class, duplicates, blank and skipped files."""
    groups = find_duplicates(dataset.images)
    cross_split = [g for g in groups if len(set(dataset.splits[g])) > 1]
    conflicting = [g for g in groups if len(set(dataset.labels[g])) > 1]
    blank = find_blank(dataset.images)
    return {
        "source": dataset.source,
        "images": len(dataset),
        "split_note": dataset.split_note,
        "counts": dataset.counts(),
        "duplicates": {
            "groups": len(groups),
            "extra_copies": int(sum(len(g) - 1 for g in groups)),
            "groups_across_splits": len(cross_split),
            "groups_with_conflicting_labels": len(conflicting),
            "examples": [[str(dataset.files[i]) for i in g[:3]] for g in groups[:5]],
        },
        "blank": {"count": int(len(blank)),
                  "examples": [str(dataset.files[i]) for i in blank[:5]]},
        "skipped": {"count": len(dataset.skipped),
                    "examples": [f"{n} ({r})" for n, r in dataset.skipped[:5]]},
        "dropped_classes": dataset.dropped,
    }
