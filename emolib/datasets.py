"""Datasets: FER-2013 in all its forms (Kaggle zip, extracted folder, challenge CSV) and any
folder of labelled faces, decoded once to 48x48 grayscale arrays and cached.

    >>> from emolib import datasets
    >>> data = datasets.load()            # finds FER-2013 (path, $EMOLIB_DATA, data/, kagglehub)
    >>> x_train, y_train = data.split("train")

Splits follow the FER-2013 protocol: ``train`` = Training, ``val`` = PublicTest (select models
here), ``test`` = PrivateTest (report here, once). Duplicates, blank images and the report of
``python -m emolib data``: ``data_quality``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emolib import dataset_readers
from emolib.dataset_readers import CLASS_ALIASES, CSV_CLASS_ORDER  # noqa: F401  (re-exported)
from emolib.errors import DataNotFoundError, EmolibError
from emolib.paths import cache_dir, data_dir
from emolib.preprocessing import CLASS_NAMES, IMAGE_SIZE, decode_image, to_face_square  # noqa: F401

SPLITS = ("train", "val", "test")
#: Bumped whenever decoding changes, so old caches are not reused.
LOADER_VERSION = 2
#: CSVs only: bumped when the CSV reader's splits changed (v2: rows without a Usage get a seeded
#: split); kept apart from LOADER_VERSION so the image caches stay valid.
CSV_READER_VERSION = 2
#: What to do about a split a source lacks (Dataset.split refuses it, load warns about it).
_MISSING_SPLIT_ADVICE = {
    "train": "training needs train/<class>/ images (or Training rows in a CSV); add them, or only "
             "evaluate this source (python -m emolib evaluate --data SOURCE --split all)",
    "val": "add test/<class>/ images (val is drawn from them), or pass class folders without "
           "train/ and test/ for a seeded 80/10/10 split",
    "test": "add test/<class>/ images, or pass class folders without train/ and test/ for a "
            "seeded 80/10/10 split",
}


class EmolibWarning(UserWarning):
    """Something in the data was skipped or dropped; the message counts it and names examples."""


class MissingSplitWarning(EmolibWarning):
    """The source has no images of a split (``Dataset.split`` refuses it); evaluating every
    image (``--split all``) ignores this one."""


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
    empty_folders: list = field(default_factory=list)  #: class folders without a single image

    class_names = CLASS_NAMES

    def __len__(self) -> int:
        return len(self.labels)

    def split(self, name: str, *, limit: int = 0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Images ``(n, 48, 48, 1)`` uint8 and labels of one split (train, val or test).

        ``limit``: a seeded random subset of that many images, kept in the split's order (0 or
        at least the split's size: all of it). The splits are stored class by class, so the
        first ``limit`` would be one class; each split draws with its own stream of ``seed``.
        An empty split is refused (EmolibError saying what the source has and what to do), so a
        notebook stops before training on nothing or creating a run folder.
        """
        if name not in SPLITS:
            raise EmolibError(f"unknown split {name!r}; use one of {', '.join(SPLITS)}")
        if limit < 0:
            raise EmolibError(f"limit={limit}: use 0 (the whole split) or a positive count")
        index = np.flatnonzero(self.splits == name)
        if not len(index):
            raise EmolibError(self.missing_split_message(name))
        if limit and limit < len(index):
            rng = np.random.default_rng([seed, SPLITS.index(name)])
            index = np.sort(rng.choice(index, size=limit, replace=False))
        return self.images[index][..., None], self.labels[index]

    def missing_split_message(self, name: str) -> str:
        """One line: this source has no ``name`` images, what it has, and what to do."""
        present = ", ".join(f"{split} {int(np.sum(self.splits == split))}" for split in SPLITS
                            if np.any(self.splits == split))
        if dataset_readers.SEEDED_SPLIT_NOTE in self.split_note:
            advice = ("too few images per class for the seeded 80/10/10 split; add images, or "
                      "only evaluate it (python -m emolib evaluate --data SOURCE --split all)")
        else:
            advice = _MISSING_SPLIT_ADVICE[name]
        return f"{self.source}: no {name} images (it has {present or 'none'}); {advice}"

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
        warnings.warn(f"kagglehub download failed ({error}); using local data only", EmolibWarning,
                      stacklevel=2)
        return None


# --------------------------------------------------------------------------- loading

def load(source: str | os.PathLike | None = None, *, seed: int = 0, use_cache: bool = True,
         progress: bool = True) -> Dataset:
    """Load a dataset (zip, folder or CSV) as 48x48 grayscale, from the cache when it is warm.

    The cache is keyed by the source's content, so an edited source is decoded again; it is
    best-effort (a cache folder that cannot be written is warned about, never fatal).
    Sources without split information get a seeded stratified split (``split_note``).
    Skipped files, unknown or empty class folders and missing splits are warned about
    (``EmolibWarning``) on every load.
    """
    path = find_data(source)
    try:
        key = _content_key(path, seed)
    except OSError as error:
        raise EmolibError(f"{path}: cannot be read ({error.strerror or error}); check its "
                          "permissions, or pass another copy") from None
    cache_file = _cache_file(path, key) if use_cache else None
    if cache_file is not None and cache_file.exists():
        try:
            dataset = _read_cache(cache_file)
            _warn_about(dataset)
            return dataset
        except Exception:  # a damaged cache is rebuilt, never fatal
            with contextlib.suppress(OSError):
                cache_file.unlink(missing_ok=True)
    if path.suffix.lower() == ".csv":
        dataset = Dataset(**dataset_readers.read_csv(path, seed=seed))
    else:
        dataset = Dataset(**dataset_readers.read_images(path, seed=seed, progress=progress))
    if cache_file is not None:
        _write_cache(cache_file, dataset)
    _warn_about(dataset)
    return dataset


def _content_key(path: Path, seed: int) -> str:
    version = f"v{LOADER_VERSION}-seed{seed}"
    if path.suffix.lower() == ".csv":
        version += f"-csv{CSV_READER_VERSION}"
    digest = hashlib.blake2b(version.encode(), digest_size=8)
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


def _cache_file(path: Path, key: str) -> Path | None:
    """Where the arrays of ``path`` are cached; None (with a warning) if there is no cache folder."""
    try:
        folder = cache_dir()
    except OSError as error:
        _warn_cache_not_written(error.filename or "the cache folder", error)
        return None
    return folder / f"{path.stem}-{key}.npz"


def _read_cache(cache_file: Path) -> Dataset:
    with np.load(cache_file, allow_pickle=False) as arrays:
        meta = json.loads(str(arrays["meta"]))
        return Dataset(images=arrays["images"], labels=arrays["labels"].astype(np.int64),
                       splits=arrays["splits"], files=arrays["files"], source=meta["source"],
                       split_note=meta["split_note"],
                       skipped=[tuple(s) for s in meta["skipped"]], dropped=meta["dropped"],
                       empty_folders=meta.get("empty_folders", []))


def _write_cache(cache_file: Path, dataset: Dataset) -> None:
    """Write atomically (a reader never sees a half-written cache) and best-effort: a folder
    that cannot be written (read-only outputs/, a full disk) gives a warning, never an error."""
    meta = json.dumps({"source": dataset.source, "split_note": dataset.split_note,
                       "skipped": dataset.skipped, "dropped": dataset.dropped,
                       "empty_folders": dataset.empty_folders})
    tmp_name = ""
    try:
        handle, tmp_name = tempfile.mkstemp(dir=cache_file.parent, suffix=".tmp")
        with os.fdopen(handle, "wb") as tmp:
            np.savez(tmp, images=dataset.images, labels=dataset.labels.astype(np.int8),
                     splits=dataset.splits, files=dataset.files, meta=np.array(meta))
        os.replace(tmp_name, cache_file)
    except OSError as error:
        _warn_cache_not_written(cache_file.parent, error)
    finally:
        if tmp_name:
            with contextlib.suppress(OSError):
                Path(tmp_name).unlink(missing_ok=True)


def _warn_cache_not_written(folder, error: OSError) -> None:
    warnings.warn(f"dataset cache not written to {folder} ({error.strerror or error}); the data "
                  "is decoded again on the next load; make that folder writable or set "
                  "EMOLIB_CACHE to one that is", EmolibWarning, stacklevel=4)


def _warn_about(dataset: Dataset) -> None:
    """Say what was left out or is missing; called on every load, from the cache too."""
    source = dataset.source
    if dataset.skipped:
        examples = "; ".join(f"{name} ({reason})" for name, reason in dataset.skipped[:3])
        warnings.warn(f"{len(dataset.skipped)} file(s) in {source} skipped as unreadable, "
                      f"e.g. {examples}", EmolibWarning, stacklevel=3)
    if dataset.dropped:
        listing = ", ".join(f"{name} ({n})" for name, n in sorted(dataset.dropped.items()))
        warnings.warn(f"unknown class folder(s) dropped from {source}: {listing}; "
                      f"known classes are {', '.join(CLASS_NAMES)}", EmolibWarning, stacklevel=3)
    if dataset.empty_folders:
        warnings.warn(f"class folder(s) without images in {source}: "
                      f"{', '.join(dataset.empty_folders[:5])}; add the images or remove the "
                      "folder", EmolibWarning, stacklevel=3)
    for split in SPLITS:
        if not np.any(dataset.splits == split):
            warnings.warn(dataset.missing_split_message(split), MissingSplitWarning,
                          stacklevel=3)
    train_labels = dataset.labels[dataset.splits == "train"]
    untrained = [CLASS_NAMES[i] for i in np.unique(dataset.labels) if i not in train_labels]
    if len(train_labels) and untrained:
        warnings.warn(f"{source}: no train images of {', '.join(untrained)} (other splits have "
                      "them); a model trained on it never predicts them", EmolibWarning,
                      stacklevel=3)
