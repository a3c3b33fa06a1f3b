"""Frame sources: where the webcam demo, ``record`` and ``predict`` get their frames.

``open_source`` turns what a user typed into a ``FrameSource`` (iterate it for BGR uint8
frames): the kernel machine's camera, a video file, an image or a folder of images, a montage of
FER-2013 test faces, or a generated video of the bundled sample face. With no source it picks the
camera when there is one, else the montage when FER-2013 is found, else the sample video, and
says why in ``source.notes``.

    >>> from emolib import sources
    >>> source = sources.open_source("clip.mp4")
    >>> for frame in source: ...
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emolib.errors import DataNotFoundError, EmolibError
from emolib.preprocessing import IMAGE_SIZE

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv",
                  ".gif", ".y4m", ".ogv")
#: The sample face (NASA astronaut portrait from scikit-image, public domain) for offline demos.
SAMPLE_FACE = Path(__file__).resolve().parent / "assets" / "sample_face.jpg"
SOURCE_HELP = ("a video file, an image or image folder, 'camera' (or 'camera:1'), 'fer2013' "
               "(a montage of FER-2013 test faces) or 'sample' (a generated face video)")



@dataclass
class FrameSource:
    """Frames from somewhere: iterate for BGR uint8 frames. ``description`` says what it is."""

    kind: str  #: camera, video, images, image, fer2013, sample
    description: str
    fps: float
    _frames: Callable[[], Iterator[np.ndarray]] = field(repr=False)
    notes: list = field(default_factory=list)  #: why this source was chosen (fallbacks)
    length: int | None = None  #: frames when known in advance

    def __iter__(self) -> Iterator[np.ndarray]:
        return self._frames()


def kernel_camera_available(index: int = 0) -> bool:
    """Whether this (kernel) machine has a camera OpenCV can read a frame from."""
    import sys

    if sys.platform.startswith("linux") and not Path(f"/dev/video{index}").exists():
        return False  # skip OpenCV's slow probe and its warnings on servers and containers
    import cv2

    capture = cv2.VideoCapture(index)
    try:
        return bool(capture.isOpened() and capture.read()[0])
    finally:
        capture.release()


def open_source(source: str | os.PathLike = "", *, data_source: str | None = None,
                fallback: bool = True, sample_frames_count: int = 150) -> FrameSource:
    """Open a frame source; ``source`` is {help}.

    ``""`` picks the kernel machine's camera when there is one, else the FER-2013 montage when
    the data is found (``data_source`` or ``$EMOLIB_DATA``/``data/``), else the sample video.
    With ``fallback`` a missing camera falls through to that same chain (with a note) instead
    of raising, so a headless run never fails for lack of a camera.
    """
    text = str(source).strip()
    lowered = text.lower()
    if lowered in ("", "auto"):
        return _auto_source(data_source, [], sample_frames_count)
    if lowered == "camera" or lowered.startswith("camera:") or lowered.isdigit():
        index = int(lowered.partition(":")[2] or 0) if not lowered.isdigit() else int(lowered)
        if kernel_camera_available(index):
            return _camera_source(index)
        message = f"no camera {index} on this machine (the kernel's machine)"
        if not fallback:
            raise EmolibError(f"{message}; pass a video file or image folder as the source instead")
        return _auto_source(data_source, [message], sample_frames_count, allow_camera=False)
    if lowered == "fer2013" or lowered.startswith("fer2013:"):
        return fer2013_source(text.partition(":")[2] or data_source)
    if lowered == "sample":
        return sample_source(sample_frames_count)
    path = Path(text).expanduser()
    if not path.exists():
        raise EmolibError(f"{path}: no such file or folder; pass {SOURCE_HELP}")
    if path.is_dir():
        return _folder_source(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return _image_source(path)
    return video_source(path)


open_source.__doc__ = open_source.__doc__.format(help=SOURCE_HELP)


def _auto_source(data_source, notes, sample_count, allow_camera=True) -> FrameSource:
    if allow_camera and kernel_camera_available(0):
        chosen = _camera_source(0)
    else:
        if allow_camera:
            notes.append("no camera on this machine (the kernel's machine)")
        try:
            chosen = fer2013_source(data_source)
        except DataNotFoundError:
            notes.append("FER-2013 not found for the test-face montage")
            chosen = sample_source(sample_count)
    chosen.notes = notes + chosen.notes
    return chosen


def _camera_source(index: int) -> FrameSource:
    import cv2

    def frames():
        capture = cv2.VideoCapture(index)
        try:
            failures = 0
            while failures < 10:  # a few dropped frames are normal; ten in a row is a lost camera
                ok, frame = capture.read()
                if not ok:
                    failures += 1
                    time.sleep(0.05)
                    continue
                failures = 0
                yield frame
        finally:
            capture.release()

    return FrameSource("camera", f"camera {index} of the kernel's machine", 30.0, frames)


def video_source(path: Path) -> FrameSource:
    """A video file's frames; a file OpenCV cannot read raises a one-line EmolibError."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    ok, first = capture.read() if capture.isOpened() else (False, None)
    fps = capture.get(cv2.CAP_PROP_FPS) or 0
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    capture.release()
    if not ok:
        raise EmolibError(f"{path}: cannot be read as a video (broken, empty or an unsupported "
                          "format); check the file, or re-encode it: ffmpeg -i IN -c:v libx264 out.mp4")

    def frames():
        reader = cv2.VideoCapture(str(path))
        try:
            while True:
                ok, frame = reader.read()
                if not ok:  # the end, or a damaged frame: stop rather than spin
                    return
                yield frame
        finally:
            reader.release()

    fps = fps if 1 <= fps <= 240 else 25.0
    return FrameSource("video", f"video {path} ({first.shape[1]}x{first.shape[0]}, {fps:.0f} fps)",
                       fps, frames, length=count or None)


def read_image(path: Path) -> np.ndarray | None:
    """A BGR image, or None when the file is not a readable image (any path, even non-ASCII)."""
    import cv2

    data = np.fromfile(str(path), np.uint8)
    return cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None


def _image_source(path: Path) -> FrameSource:
    image = read_image(path)
    if image is None:
        raise EmolibError(f"{path}: not a readable image; pass a JPEG/PNG file, a folder or a video")
    return FrameSource("image", f"image {path}", 1.0, lambda: iter([image]), length=1)


def _folder_source(path: Path) -> FrameSource:
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise EmolibError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES[:4])}, ...) in this "
                          "folder; pass a folder of pictures or a video file")
    source = FrameSource("images", f"image folder {path} ({len(files)} images)", 2.0, None,
                         length=len(files))

    def frames():
        for file in files:
            image = read_image(file)
            if image is None:
                source.notes.append(f"skipped {file.name}: not a readable image")
                continue
            yield image

    source._frames = frames
    return source


def _sample_face() -> np.ndarray:
    import cv2

    face = cv2.imread(str(SAMPLE_FACE), cv2.IMREAD_COLOR)
    if face is None:
        raise EmolibError(f"{SAMPLE_FACE}: the bundled sample face is missing; reinstall emolib")
    return face


def sample_frames(count: int = 150, *, faces: int = 1, size: tuple = (640, 480),
                  seed: int = 0) -> Iterator[np.ndarray]:
    """Generated BGR frames with ``faces`` moving copies of the bundled sample face.

    A textured background (so the face detector has something to reject), faces of about
    100-150 px gliding on smooth paths: enough for offline demos, tests and benchmarks.
    """
    import cv2

    width, height = size
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 1, (height // 8 + 1, width // 8 + 1)).astype(np.float32)
    texture = cv2.resize(cv2.GaussianBlur(noise, (0, 0), 1.5), (width, height))
    ramp = np.linspace(60, 160, width, dtype=np.float32)[None, :]
    base = np.clip(ramp + 25 * texture, 0, 255).astype(np.uint8)
    background = np.dstack([base, np.fliplr(base), np.flipud(base)])
    sample = _sample_face()
    slots = [(0.5, 0.5)] if faces == 1 else [((i + 0.5) / faces, 0.5 + 0.12 * (-1) ** i)
                                             for i in range(faces)]
    side = int(min(height * 0.55, width / max(faces, 1) * 0.75))
    for index in range(count):
        frame = background.copy()
        phase = 2 * np.pi * index / 90
        for slot, (fx, fy) in enumerate(slots):
            zoom = 1 + 0.12 * np.sin(phase + slot)
            face_w = int(side * zoom * sample.shape[1] / sample.shape[0])
            face_h = int(side * zoom)
            face = cv2.resize(sample if slot % 2 == 0 else sample[:, ::-1], (face_w, face_h),
                              interpolation=cv2.INTER_AREA)
            cx = int(fx * width + 0.06 * width * np.sin(phase * (1 + slot * 0.3)))
            cy = int(fy * height + 0.04 * height * np.cos(phase))
            left = int(np.clip(cx - face_w // 2, 0, width - face_w))
            top = int(np.clip(cy - face_h // 2, 0, height - face_h))
            frame[top:top + face_h, left:left + face_w] = face
        yield frame


def sample_source(count: int = 150, faces: int = 1) -> FrameSource:
    """The generated sample video (``sample_frames``) as a source."""
    return FrameSource("sample", f"generated sample video ({count} frames, {faces} face(s) from "
                       f"{SAMPLE_FACE.name})", 15.0, lambda: sample_frames(count, faces=faces),
                       length=count)


def fer2013_frames(images: np.ndarray, *, grid: tuple = (3, 2), size: tuple = (640, 480),
                   hold: int = 5) -> Iterator[np.ndarray]:
    """A montage video of 48x48 faces: ``grid`` (columns, rows) of faces per frame, each shown
    for ``hold`` frames. Faces are upscaled and edge-padded so a detector sees some context."""
    import cv2

    columns, rows = grid
    width, height = size
    cell_w, cell_h = width // columns, height // rows
    face_side = int(min(cell_w, cell_h) * 0.62)
    per_frame = columns * rows
    for start in range(0, len(images) - per_frame + 1, per_frame):
        frame = np.zeros((height, width), np.uint8)
        for slot, image in enumerate(images[start:start + per_frame]):
            face = cv2.resize(np.asarray(image).reshape(IMAGE_SIZE, IMAGE_SIZE), (face_side, face_side),
                              interpolation=cv2.INTER_CUBIC)
            pad_x, pad_y = cell_w - face_side, cell_h - face_side
            cell = cv2.copyMakeBorder(face, pad_y // 2, pad_y - pad_y // 2, pad_x // 2,
                                      pad_x - pad_x // 2, cv2.BORDER_REPLICATE)
            row, column = divmod(slot, columns)
            frame[row * cell_h:(row + 1) * cell_h, column * cell_w:(column + 1) * cell_w] = cell
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        for _ in range(hold):
            yield frame


def fer2013_source(data_source: str | os.PathLike | None = None, *, count: int = 240,
                   seed: int = 0) -> FrameSource:
    """A montage of ``count`` random FER-2013 *test* faces (raises DataNotFoundError without data)."""
    from emolib import datasets

    dataset = datasets.load(data_source or None, progress=False)
    images, _ = dataset.split("test")
    if not len(images):
        raise EmolibError(f"{dataset.source}: has no test split for the FER-2013 montage; "
                          "pass a video or image folder as the source")
    rng = np.random.default_rng(seed)
    chosen = images[np.sort(rng.choice(len(images), size=min(count, len(images)), replace=False))]
    hold, per_frame = 5, 6
    return FrameSource("fer2013", f"montage of {len(chosen)} FER-2013 test faces from "
                       f"{dataset.source} (6 per frame, each shown {hold} frames)", 10.0,
                       lambda: fer2013_frames(chosen, hold=hold),
                       length=len(chosen) // per_frame * hold)
