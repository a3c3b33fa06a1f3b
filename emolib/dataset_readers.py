"""Dataset readers: the challenge CSV, and zips or folders of class sub-folders, decoded to
48x48 grayscale faces with a label and a split per image.

``datasets.load`` calls them (and caches what they return). Each reader returns the fields of
``datasets.Dataset`` as a dict, so this module knows nothing of the cache or of warnings: files
it cannot use are listed in ``skipped``, unknown class folders in ``dropped``, class folders
without images in ``empty_folders``.
"""

from __future__ import annotations

import csv
import os
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from emolib.errors import EmolibError
from emolib.preprocessing import CLASS_NAMES, FER2013_LABEL_ORDER, IMAGE_SIZE, decode_image

#: The challenge CSV's label order (0..6) mapped to the canonical order of ``CLASS_NAMES``.
CSV_CLASS_ORDER = FER2013_LABEL_ORDER
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
#: The split note of a source without split information (``datasets`` tells it by this).
SEEDED_SPLIT_NOTE = "seeded stratified 80/10/10 split"
_IGNORED_NAMES = ("__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini")
#: What reading one file of a folder or zip may raise: the file is skipped, not the dataset.
#: (RuntimeError: an encrypted zip member; NotImplementedError: an unknown compression.)
_UNREADABLE = (OSError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError,
               NotImplementedError)


# --------------------------------------------------------------------------- CSV

def read_csv(path: Path, *, seed: int = 0) -> dict:
    """The challenge CSV: ``emotion,pixels[,Usage]`` with labels in CSV_CLASS_ORDER.

    Without a Usage column (Kaggle's train.csv), the rows get a seeded stratified split.
    """
    images, labels, splits, files = [], [], [], []
    line = 1
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = list(reader.fieldnames or ())
            if not {"emotion", "pixels"} <= set(columns):
                found = ",".join(columns)[:80] or "nothing"
                raise EmolibError(f"{path}: expected a header with columns emotion,pixels[,Usage]"
                                  f"; found {found!r}; is this the FER-2013 CSV?")
            has_usage = "Usage" in columns
            for row in reader:
                line = reader.line_num
                image, label, split = _parse_row(row, f"{path.name} line {line}", has_usage)
                images.append(image)
                labels.append(label)
                splits.append(split)
                files.append(f"line {line}")
    except UnicodeDecodeError as error:
        raise EmolibError(f"{path}: not a UTF-8 text CSV (byte {error.object[error.start]:#04x} "
                          f"after line {line}); pass the FER-2013 fer2013.csv, or re-save this "
                          "file as UTF-8 CSV") from None
    except csv.Error as error:
        raise EmolibError(f"{path} line {line}: not a readable CSV ({error}); pass the FER-2013 "
                          "fer2013.csv") from None
    if not images:
        raise EmolibError(f"{path}: no data rows; is this the FER-2013 CSV?")
    labels_array = np.array(labels, dtype=np.int64)
    splits_array = np.array(splits, dtype="<U5")
    note = fill_missing_splits(labels_array, splits_array, seed, origin="the CSV's Usage column",
                               none="the CSV has no Usage column" if not has_usage
                               else "every Usage cell of the CSV is empty")
    return dict(images=np.stack(images), labels=labels_array, splits=splits_array,
                files=np.array(files), source=str(path), split_note=note)


def _parse_row(row: dict, where: str, has_usage: bool) -> tuple[np.ndarray, int, str]:
    """``(48x48 uint8 face, canonical label, split or "")`` of one CSV row; EmolibError if bad."""
    try:
        label = int(row["emotion"])
        if not 0 <= label <= 6:
            raise ValueError
    except (TypeError, ValueError):
        raise EmolibError(f"{where}: emotion {row['emotion']!r} is not a label 0-6; "
                          "fix or delete that row") from None
    values = (row["pixels"] or "").split()
    try:
        pixels = np.array(values, dtype=np.int64)
    except ValueError:
        bad = next(v for v in values if not v.lstrip("+-").isdigit())
        raise EmolibError(f"{where}: pixel value {bad[:20]!r} is not an integer; pixels must be "
                          "space-separated integers 0-255; fix or delete that row") from None
    if pixels.size != IMAGE_SIZE * IMAGE_SIZE:
        raise EmolibError(f"{where}: expected {IMAGE_SIZE * IMAGE_SIZE} pixel values, found "
                          f"{pixels.size}; fix or delete that row")
    outside = np.flatnonzero((pixels < 0) | (pixels > 255))
    if outside.size:
        more = f" (and {outside.size - 1} more)" if outside.size > 1 else ""
        raise EmolibError(f"{where}: pixel {outside[0] + 1} is {pixels[outside[0]]}, outside "
                          f"0-255{more}; fix or delete that row")
    usage = (row.get("Usage") or "").strip() if has_usage else ""
    if usage and usage not in _USAGE_TO_SPLIT:
        raise EmolibError(f"{where}: Usage {usage!r} is not one of "
                          f"{', '.join(_USAGE_TO_SPLIT)}; fix or delete that row")
    face = pixels.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE)
    return face, CLASS_NAMES.index(CSV_CLASS_ORDER[label]), _USAGE_TO_SPLIT.get(usage, "")


# --------------------------------------------------------------------------- image folders / zips

def _list_entries(path: Path) -> tuple[list[tuple[str, object]], list[str]]:
    """``([(relative posix path, reader)] of every file, [relative path of every folder])``."""
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise EmolibError(f"{path}: not a zip, CSV or folder; pass the Kaggle archive.zip, "
                              "fer2013.csv or a folder with one sub-folder per class")
        try:
            archive = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile) as error:
            raise EmolibError(f"{path}: a damaged zip ({error}); download it again") from None
        infos = archive.infolist()
        files = [(info.filename, lambda info=info: archive.read(info))
                 for info in infos if not info.is_dir()]
        folders = {info.filename.rstrip("/") for info in infos if info.is_dir()}
        for name, _ in files:  # zips often hold no entries for folders, only their files
            parts = name.split("/")[:-1]
            folders.update("/".join(parts[:depth]) for depth in range(1, len(parts) + 1))
        return files, sorted(folders)
    files, folders = [], []
    for item in sorted(path.rglob("*")):
        if item.is_file():
            files.append((item.relative_to(path).as_posix(), item.read_bytes))
        elif item.is_dir():
            folders.append(item.relative_to(path).as_posix())
    return files, folders


def _split_of(relpath: str) -> str | None:
    name = relpath.rsplit("/", 1)[-1]
    for prefix, split in _USAGE_TO_SPLIT.items():
        if name.startswith(prefix + "_"):
            return split
    for part in relpath.split("/")[:-2]:
        if part.lower() in _DIR_TO_SPLIT:
            return _DIR_TO_SPLIT[part.lower()]
    return None


def _is_ignored(relpath: str) -> bool:
    return any(p in _IGNORED_NAMES or p.startswith(".") for p in relpath.split("/"))


def read_images(path: Path, *, seed: int = 0, progress: bool = True) -> dict:
    """A zip or folder of ``<class>/<image>`` (optionally under train/ and test/ folders).

    Files that cannot be read or decoded are skipped and listed, never fatal.
    """
    from tqdm.auto import tqdm

    listed, folders = _list_entries(path)
    entries, skipped, dropped, parents = [], [], {}, set()
    for relpath, reader in listed:
        if _is_ignored(relpath):
            continue
        parts = relpath.split("/")
        parents.add("/".join(parts[:-1]))
        if len(parts) < 2:
            skipped.append((relpath, "not inside a class folder"))
            continue
        folder = parts[-2]
        label = CLASS_ALIASES.get(folder.lower())
        if label is None:
            dropped[folder] = dropped.get(folder, 0) + 1
            continue
        entries.append((relpath, reader, CLASS_NAMES.index(label), _split_of(relpath)))
    empty_folders = sorted(folder for folder in folders if folder not in parents
                           and not _is_ignored(folder)
                           and folder.rsplit("/", 1)[-1].lower() in CLASS_ALIASES)
    if not entries:
        raise EmolibError(f"{path}: no images in class folders found; expected "
                          f"<class>/<image> or train|test/<class>/<image> with classes like "
                          f"{', '.join(CLASS_NAMES)}")

    # Read sequentially (a zip handle is not thread-safe), decode in threads (OpenCV drops the GIL).
    blobs = []
    for relpath, reader, label, split in entries:
        try:
            blobs.append((relpath, reader(), label, split))
        except _UNREADABLE as error:
            reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
            skipped.append((relpath, f"cannot be read: {reason}"))
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
        examples = "; ".join(f"{name} ({reason})" for name, reason in skipped[:3])
        raise EmolibError(f"{path}: none of the {len(entries)} files could be read as an image, "
                          f"e.g. {examples}")
    labels_array = np.array(labels, dtype=np.int64)
    splits_array = np.array(splits, dtype="<U5")
    split_note = fill_missing_splits(labels_array, splits_array, seed,
                                     origin="the source (file-name prefixes or split folders)")
    return dict(images=np.stack(images), labels=labels_array, splits=splits_array,
                files=np.array(files), source=str(path), split_note=split_note,
                skipped=skipped, dropped=dropped, empty_folders=empty_folders)


# --------------------------------------------------------------------------- splits

def fill_missing_splits(labels: np.ndarray, splits: np.ndarray, seed: int, *, origin: str,
                        none: str = "no split in the source") -> str:
    """Assign splits in place where the source had none (``""``); return how it was done.

    ``origin`` names where the splits came from when every image had one, ``none`` why no
    image had one.
    """
    notes = []
    rng = np.random.default_rng(seed)
    unknown = splits == ""
    if unknown.all():
        splits[:] = _stratified(labels, rng, {"train": 0.8, "val": 0.1, "test": 0.1})
        return f"{none}: {SEEDED_SPLIT_NOTE} (seed={seed})"
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
        return f"from {origin}"
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
