"""Face sets: the faces of any labelled dataset, for scoring models on it.

``load_faces`` reads whatever ``datasets.load`` reads (FER-2013, a folder with one sub-folder
per class), keeps one split or every image, and, for photos, crops the largest detected face the
way the webcam does; ``FaceSet.note`` says in one line what happened on the way.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emolib.errors import EmolibError
from emolib.reports import split_label


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
