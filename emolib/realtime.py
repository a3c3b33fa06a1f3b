"""Real-time pipeline: frames in, faces with emotions and an annotated frame out.

One path for webcam frames, video files, image folders and the ``predict`` command:

1. find faces with ``faces.FaceDetector`` (Haar by default) on a downscaled grayscale frame;
   between full-frame scans (every ``detect_every`` frames) the detector only searches a small
   region around each face it is following, which is what makes 60+ frames/s possible on a CPU;
2. crop them with ``faces.crop_faces`` (square with margin, grayscale, 48x48: the training crop);
3. classify **all faces of the frame in one batched call** of a traced model function;
4. smooth each face's probabilities over time (an exponential moving average per tracked face),
   so labels do not flicker;
5. draw boxes, labels, confidences and the frames/s figure.

    >>> from emolib import realtime
    >>> pipeline = realtime.Pipeline()               # default model, Haar, smoothing 0.6
    >>> result = pipeline.process(frame_bgr)         # result.faces, result.image, result.fps
    >>> realtime.record("video.mp4")                 # annotated mp4 + per-frame CSV in outputs/webcam

Where frames come from (camera, video, image folder, FER-2013 montage, generated sample video)
is ``emolib.sources``.
"""

from __future__ import annotations

import csv
import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from emolib import CLASS_NAMES
from emolib.errors import EmolibError
from emolib.export import int8_companion
from emolib.paths import outputs_dir
from emolib.sources import (IMAGE_SUFFIXES, VIDEO_SUFFIXES, FrameSource, open_source, read_image,
                            video_source)

#: Box colours (BGR) per emotion, in CLASS_NAMES order.
COLORS = {
    "angry": (60, 60, 230), "disgust": (60, 160, 60), "fear": (170, 80, 170),
    "happy": (40, 200, 250), "neutral": (200, 200, 200), "sad": (220, 130, 50),
    "surprise": (40, 140, 255),
}


# --------------------------------------------------------------------------- the model

def find_models() -> list[Path]:
    """Models a demo can use: the shipped default (when present), then trained runs, newest first."""
    from emolib.models import DEFAULT_MODEL

    runs = outputs_dir("runs", create=False)
    trained = sorted(runs.glob("*/model.keras"), key=lambda p: p.stat().st_mtime, reverse=True) \
        if runs.is_dir() else []
    return ([DEFAULT_MODEL] if DEFAULT_MODEL.exists() else []) + trained


def resolve_model_path(model_path: str | os.PathLike = "") -> tuple[Path, str]:
    """The model file to use and a sentence saying which one and why.

    ``""`` means the shipped default (``emolib/assets/emonet.keras``); when it is missing, the
    newest ``outputs/runs/*/model.keras``; when there is none either, a clear EmolibError.
    """
    from emolib.models import DEFAULT_MODEL

    if model_path:
        path = Path(model_path).expanduser()
        if not path.exists():
            raise EmolibError(f"{path}: model file not found; pass a .keras file saved by emolib, "
                              "or leave the model empty for the default")
        return path, f"model: {path}"
    if DEFAULT_MODEL.exists():
        return DEFAULT_MODEL, f"model: the shipped default ({DEFAULT_MODEL.name})"
    trained = [p for p in find_models() if p != DEFAULT_MODEL]
    if trained:
        return trained[0], (f"model: {trained[0]} (the newest trained run; the shipped default "
                            f"{DEFAULT_MODEL} is not there)")
    raise EmolibError(f"no model: {DEFAULT_MODEL} is missing and {outputs_dir('runs', create=False)} "
                      "has no */model.keras; train one with notebook 02 "
                      "(python -m emolib run --only 02) or pass a model path")


BACKENDS = ("auto", "keras", "tflite")


class EmotionClassifier:
    """Classifies a batch of 48x48 grayscale crops in one call.

    ``model`` is a Keras model, a path to a ``.keras`` or ``.tflite`` file, or ``""``/None for
    the default (see ``resolve_model_path``). ``backend``:

    - ``"auto"`` (default): a ``.keras`` file with an int8 TFLite copy beside it
      (``emonet-int8.tflite`` ships next to the default model) runs that copy, which is about 6x
      faster on a CPU for one to three faces; otherwise the Keras model;
    - ``"keras"``: always the Keras model, through one traced forward pass (``model.predict`` is
      avoided on purpose: its per-call overhead is larger than the network on a few faces);
    - ``"tflite"``: the int8 copy, or an error when there is none.
    """

    def __init__(self, model=None, *, backend: str = "auto"):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: no banner
        from emolib import models

        if backend not in BACKENDS:
            raise EmolibError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
        self.note = "model: in memory"
        self.backend = "keras"
        if model is None or isinstance(model, (str, os.PathLike)):
            path, self.note = resolve_model_path(model or "")
            lite = path if path.suffix == ".tflite" else int8_companion(path)
            if backend == "tflite" and not lite.exists():
                raise EmolibError(f"{lite}: no int8 TFLite copy of {path.name}; write one with "
                                  "emolib.export.to_tflite(..., quantization='int8') or use "
                                  "backend='keras'")
            if path == lite or (backend != "keras" and lite.exists()):
                from emolib.export import TFLiteModel

                model = TFLiteModel(lite, num_threads=min(2, os.cpu_count() or 1))
                self.backend = "tflite"
                self.note += f" (int8 TFLite: {lite.name})" if path != lite else ""
            else:
                model = models.load_model(path)
        elif backend == "tflite":
            raise EmolibError("backend='tflite' needs a model path with an int8 copy beside it, "
                              "not a model in memory")
        if self.backend == "keras":
            shape = tuple(model.input_shape[1:]) if hasattr(model, "input_shape") else None
            if shape != models.INPUT_SHAPE:
                raise EmolibError(f"model {getattr(model, 'name', '?')} takes input {shape}; "
                                  f"emolib models take {models.INPUT_SHAPE} grayscale faces")
            self._forward = models.compiled_forward(model)
        else:
            self._forward = model.forward
        self.model = model
        self(np.zeros((1, *models.INPUT_SHAPE), np.uint8))  # trace now, not on the first face

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """Probabilities ``(n, 7)`` float32 in CLASS_NAMES order for ``(n, 48, 48, 1)`` crops."""
        if len(crops) == 0:
            return np.zeros((0, len(CLASS_NAMES)), np.float32)
        output = self._forward(np.asarray(crops, np.float32))
        return np.asarray(output, np.float32)


# --------------------------------------------------------------------------- results

@dataclass
class Face:
    """One face in one frame: box ``(x, y, w, h)`` in frame pixels, smoothed and raw probabilities."""

    box: tuple
    probabilities: np.ndarray
    raw: np.ndarray
    track_id: int = 0

    @property
    def emotion(self) -> str:
        """The most probable emotion (after smoothing)."""
        return CLASS_NAMES[int(np.argmax(self.probabilities))]

    @property
    def confidence(self) -> float:
        """Probability of ``emotion``."""
        return float(np.max(self.probabilities))

    def to_dict(self) -> dict:
        """JSON-ready: ``{"box": [x, y, w, h], "emotion": ..., "probabilities": {...}}``."""
        return {"box": [int(v) for v in self.box], "emotion": self.emotion,
                "probabilities": {name: round(float(p), 4)
                                  for name, p in zip(CLASS_NAMES, self.probabilities)}}


@dataclass
class FrameResult:
    """What ``Pipeline.process`` returns for one frame."""

    index: int
    faces: list
    fps: float  #: frames/s over the last frames (throughput, including waiting for frames)
    latency_ms: float  #: time spent in ``process`` for this frame
    image: np.ndarray | None = None  #: the annotated BGR frame (None with ``annotate=False``)
    full_scan: bool = True  #: whether the detector scanned the whole frame


class FpsMeter:
    """Frames per second over a sliding window of the last ``window`` ticks."""

    def __init__(self, window: int = 30):
        self._times = deque(maxlen=window)

    def tick(self) -> float:
        """Record a frame now; return the current rate (0 until two frames were seen)."""
        self._times.append(time.perf_counter())
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0

    def reset(self) -> None:
        """Forget past frames (after a pause, so the figure is not dragged down)."""
        self._times.clear()


# --------------------------------------------------------------------------- the pipeline

@dataclass
class _Track:
    track_id: int
    box: np.ndarray
    probabilities: np.ndarray
    missed: int = 0


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    width = min(ax2, bx2) - max(a[0], b[0])
    height = min(ay2, by2) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter)


class Pipeline:
    """Face detection, batched emotion classification, smoothing and annotation, frame by frame.

    - ``model``: Keras model, path, or ``""``/None for the default (see ``resolve_model_path``);
      or an ``EmotionClassifier`` to share one between pipelines.
    - ``backend``: ``"auto"`` runs a model's int8 TFLite copy when one sits beside it (the
      shipped default has one), ``"keras"`` the Keras model (see ``EmotionClassifier``).
    - ``detector``: ``"haar"`` (OpenCV 4.x cascade) or ``"mtcnn"`` (needs the mtcnn package).
    - ``smoothing``: 0 = raw per-frame probabilities; 0.6 = each frame moves a face's
      probabilities 40% of the way to the new ones (a time constant of about 2 frames).
    - ``detect_width``: frames wider than this are downscaled for the full-frame face scan
      (faces must be at least ``24 * width / detect_width`` pixels wide to be found).
    - ``detect_every``: scan the whole frame every this many frames (and whenever no face is
      being followed); in between, search only around the faces already found. 1 = always scan.
    """

    def __init__(self, model=None, *, backend: str = "auto", detector: str = "haar",
                 smoothing: float = 0.6,
                 detect_width: int = 320, detect_every: int = 5, margin: float = 0.1,
                 max_missed: int = 5, annotate: bool = True):
        from emolib.faces import DETECTORS, FaceDetector

        if not 0 <= smoothing < 1:
            raise EmolibError(f"smoothing={smoothing}: use a number from 0 (none) to below 1")
        if detector not in DETECTORS:
            raise EmolibError(f"unknown face detector {detector!r}; use one of {', '.join(DETECTORS)}")
        self.classifier = (model if isinstance(model, EmotionClassifier)
                           else EmotionClassifier(model, backend=backend))
        self.detector_name = detector
        self.smoothing = float(smoothing)
        self.detect_width = int(detect_width)
        self.detect_every = max(1, int(detect_every))
        self.margin = margin
        self.max_missed = max_missed
        self.annotate = annotate
        # Haar's smallest window is 24 px: both detectors search 24 px and up in the image
        # they are given, which is the downscaled frame or a face's neighbourhood.
        self._full_detector = FaceDetector(detector, min_size=24)
        self._local_detector = FaceDetector(detector, min_size=24, min_neighbors=3) \
            if detector == "haar" else self._full_detector
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._since_scan = 0
        self._fps = FpsMeter()
        self.frames = 0

    @property
    def note(self) -> str:
        """Which model this pipeline uses (for logs)."""
        return self.classifier.note

    def reset(self) -> None:
        """Forget tracked faces, the frame count and the frame-rate history (a new source)."""
        self._tracks.clear()
        self._since_scan = 0
        self._fps.reset()
        self.frames = 0

    def process(self, frame: np.ndarray) -> FrameResult:
        """Run the whole pipeline on one BGR (or gray) uint8 frame."""
        from emolib.faces import crop_faces, to_gray

        start = time.perf_counter()
        frame = _as_uint8_image(frame)
        gray = to_gray(frame)
        full_scan = not self._tracks or self._since_scan + 1 >= self.detect_every
        boxes = self._scan(frame, gray) if full_scan else self._follow(frame, gray)
        self._since_scan = 0 if full_scan else self._since_scan + 1
        crops = crop_faces(gray, boxes, margin=self.margin)
        raw = self.classifier(crops)  # every face of the frame in one call
        faces = self._update_tracks(boxes, raw)
        fps = self._fps.tick()
        image = annotate(frame, faces, fps=fps) if self.annotate else None
        self.frames += 1
        return FrameResult(index=self.frames - 1, faces=faces, fps=fps,
                           latency_ms=(time.perf_counter() - start) * 1000, image=image,
                           full_scan=full_scan)

    # -- detection

    def _detector_input(self, frame: np.ndarray, gray: np.ndarray) -> np.ndarray:
        return gray if self.detector_name == "haar" or frame.ndim == 2 else frame

    def _scan(self, frame: np.ndarray, gray: np.ndarray) -> np.ndarray:
        import cv2

        image = self._detector_input(frame, gray)
        scale = min(1.0, self.detect_width / image.shape[1])
        if scale < 1:
            size = (self.detect_width, max(1, int(round(image.shape[0] * scale))))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        boxes = self._full_detector.detect(image)
        return np.round(boxes / scale).astype(np.int64).reshape(-1, 4)

    def _follow(self, frame: np.ndarray, gray: np.ndarray) -> np.ndarray:
        """Search a neighbourhood (1.6 times the face's size) around each followed face."""
        import cv2

        image = self._detector_input(frame, gray)
        height, width = image.shape[:2]
        found = []
        for track in self._tracks:
            x, y, w, h = track.box
            side = max(w, h)
            cx, cy, reach = x + w / 2, y + h / 2, 0.8 * side
            left, top = max(0, int(cx - reach)), max(0, int(cy - reach))
            right, bottom = min(width, int(cx + reach)), min(height, int(cy + reach))
            if right - left < 24 or bottom - top < 24:
                continue
            # the face at ~32 px: it may shrink to 0.75x (Haar's 24 px window) or grow to 1.6x
            # (the whole region) before this frame loses it; small regions keep this ~1 ms
            scale = min(1.0, 32.0 / side)
            region = image[top:bottom, left:right]
            if scale < 1:
                region = cv2.resize(region, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            boxes = self._local_detector.detect(region)
            if len(boxes):
                boxes = np.round(boxes / scale).astype(np.int64) + [left, top, 0, 0]
                best = max(boxes, key=lambda box: _iou(box, track.box))
                found.append(best)
        unique = []
        for box in sorted(found, key=lambda b: -b[2] * b[3]):
            if all(_iou(box, kept) < 0.5 for kept in unique):
                unique.append(box)
        return np.array(unique, dtype=np.int64).reshape(-1, 4)

    # -- tracking and smoothing

    def _update_tracks(self, boxes: np.ndarray, raw: np.ndarray) -> list[Face]:
        unmatched = list(range(len(self._tracks)))
        faces = []
        for box, probabilities in zip(boxes, raw):
            best, best_iou = None, 0.3
            for index in unmatched:
                overlap = _iou(box, self._tracks[index].box)
                if overlap > best_iou:
                    best, best_iou = index, overlap
            if best is None:
                track = _Track(self._next_id, box, probabilities.copy())
                self._next_id += 1
                self._tracks.append(track)
            else:
                unmatched.remove(best)
                track = self._tracks[best]
                track.box, track.missed = box, 0
                track.probabilities = (self.smoothing * track.probabilities
                                       + (1 - self.smoothing) * probabilities)
            faces.append(Face(box=tuple(int(v) for v in box), probabilities=track.probabilities,
                              raw=probabilities, track_id=track.track_id))
        for index in unmatched:
            self._tracks[index].missed += 1
        self._tracks = [t for t in self._tracks if t.missed <= self.max_missed]
        return faces


def _as_uint8_image(frame) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim not in (2, 3) or frame.size == 0:
        raise EmolibError(f"a frame must be a non-empty uint8 image (height, width[, channels]); "
                          f"got {frame.dtype} with shape {frame.shape}")
    return frame


def annotate(frame: np.ndarray, faces: list, fps: float | None = None) -> np.ndarray:
    """A BGR copy of ``frame`` with a box, label and confidence per face and the frames/s."""
    import cv2

    image = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if frame.ndim == 2 else frame[..., :3].copy()
    scale = max(0.45, image.shape[1] / 1100)
    thickness = max(1, int(round(scale * 2)))
    for face in faces:
        x, y, w, h = face.box
        color = COLORS.get(face.emotion, (255, 255, 255))
        cv2.rectangle(image, (x, y), (x + w, y + h), color, thickness)
        label = f"{face.emotion} {face.confidence:.0%}"
        (text_w, text_h), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = y - text_h - base - 4 if y - text_h - base - 4 >= 0 else y + h
        cv2.rectangle(image, (x, top), (x + text_w + 6, top + text_h + base + 4), color, -1)
        cv2.putText(image, label, (x + 3, top + text_h + 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 0, 0), thickness, cv2.LINE_AA)
    if fps is not None:
        text = f"{fps:.0f} fps" if fps else "-- fps"
        cv2.putText(image, text, (8, int(24 * scale / 0.6)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 0, 0), thickness + 2, cv2.LINE_AA)
        cv2.putText(image, text, (8, int(24 * scale / 0.6)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 255), thickness, cv2.LINE_AA)
    return image


# --------------------------------------------------------------------------- writing results

class VideoWriter:
    """Writes BGR frames to ``.mp4`` (H.264 via imageio-ffmpeg, plays in browsers) or ``.gif``.

    Every frame is fitted (letterboxed) to the first frame's size, rounded to even numbers.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 15.0, max_gif_width: int = 480):
        self.path = Path(path)
        self.fps = float(fps)
        self.max_gif_width = max_gif_width
        self.frames = 0
        self._size = None
        self._writer = None
        self._gif_frames = []
        if self.path.suffix.lower() not in (".mp4", ".gif"):
            raise EmolibError(f"{self.path}: write annotated video as .mp4 or .gif")
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, frame: np.ndarray) -> None:
        """Append one BGR frame."""
        import cv2

        if self._size is None:
            height, width = frame.shape[:2]
            if self.path.suffix.lower() == ".gif" and width > self.max_gif_width:
                width, height = self.max_gif_width, int(height * self.max_gif_width / width)
            self._size = (width - width % 2, height - height % 2)
            if self.path.suffix.lower() == ".mp4":
                import imageio_ffmpeg

                self._writer = imageio_ffmpeg.write_frames(
                    str(self.path), self._size, fps=self.fps, codec="libx264", quality=6,
                    pix_fmt_in="rgb24", pix_fmt_out="yuv420p", macro_block_size=1,
                    output_params=["-movflags", "+faststart"], ffmpeg_log_level="error")
                self._writer.send(None)
        rgb = cv2.cvtColor(_letterbox(frame, self._size), cv2.COLOR_BGR2RGB)
        if self._writer is not None:
            self._writer.send(np.ascontiguousarray(rgb))
        else:
            self._gif_frames.append(rgb)
        self.frames += 1

    def close(self) -> Path:
        """Finish the file; returns its path."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        elif self._gif_frames:
            import imageio.v3 as iio

            iio.imwrite(self.path, np.stack(self._gif_frames), duration=1000 / self.fps, loop=0)
            self._gif_frames = []
        return self.path

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _letterbox(frame: np.ndarray, size: tuple) -> np.ndarray:
    import cv2

    frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if frame.ndim == 2 else frame[..., :3]
    width, height = size
    if frame.shape[1] == width and frame.shape[0] == height:
        return frame
    scale = min(width / frame.shape[1], height / frame.shape[0])
    resized = cv2.resize(frame, (max(1, int(frame.shape[1] * scale)),
                                 max(1, int(frame.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((height, width, 3), np.uint8)
    top, left = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    canvas[top:top + resized.shape[0], left:left + resized.shape[1]] = resized
    return canvas


CSV_COLUMNS = ("frame", "seconds", "faces", "face", "x", "y", "w", "h", "emotion", "confidence",
               *CLASS_NAMES)


def csv_rows(result: FrameResult, seconds: float) -> list[dict]:
    """Rows of the per-frame CSV for one result: one per face, or one with no face."""
    base = {"frame": result.index, "seconds": round(seconds, 3), "faces": len(result.faces)}
    if not result.faces:
        return [{**base, "face": "", "emotion": ""}]
    rows = []
    for number, face in enumerate(result.faces):
        x, y, w, h = face.box
        rows.append({**base, "face": number, "x": x, "y": y, "w": w, "h": h,
                     "emotion": face.emotion, "confidence": round(face.confidence, 4),
                     **{name: round(float(p), 4) for name, p in zip(CLASS_NAMES, face.probabilities)}})
    return rows


def record(source: str | os.PathLike | FrameSource = "", *, pipeline: Pipeline | None = None,
           output_dir: str | os.PathLike | None = None, video_name: str = "annotated.mp4",
           csv_name: str = "frames.csv", max_frames: int = 0, data_source: str | None = None,
           on_frame: Callable[[FrameResult], None] | None = None) -> dict:
    """Run the pipeline over a source; write the annotated video and a per-frame CSV.

    ``output_dir`` defaults to ``outputs/webcam``. ``max_frames`` (0 = all; a camera needs a
    limit, 300 is used) stops early. Returns a summary: source, notes, frames, frames with
    faces, mean frames/s and latency, emotion counts and the two paths.
    """
    source = source if isinstance(source, FrameSource) else open_source(source, data_source=data_source)
    pipeline = pipeline or Pipeline()
    pipeline.reset()
    limit = max_frames or (300 if source.kind == "camera" else 0)
    output_dir = Path(output_dir) if output_dir is not None else outputs_dir("webcam")
    output_dir.mkdir(parents=True, exist_ok=True)
    video_path, csv_path = output_dir / video_name, output_dir / csv_name
    counts = dict.fromkeys(CLASS_NAMES, 0)
    frames = with_faces = 0
    latencies = []
    start = time.perf_counter()
    with VideoWriter(video_path, fps=source.fps) as writer, open(csv_path, "w", newline="") as handle:
        table = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        table.writeheader()
        for frame in source:
            result = pipeline.process(frame)
            writer.write(result.image if result.image is not None else frame)
            table.writerows(csv_rows(result, frames / source.fps))
            latencies.append(result.latency_ms)
            with_faces += bool(result.faces)
            for face in result.faces:
                counts[face.emotion] += 1
            frames += 1
            if on_frame is not None:
                on_frame(result)
            if limit and frames >= limit:
                break
    elapsed = time.perf_counter() - start
    if frames == 0:
        video_path.unlink(missing_ok=True)
        raise EmolibError(f"{source.description}: gave no frames; pass another source")
    return {
        "source": source.description, "kind": source.kind, "notes": list(source.notes),
        "model": pipeline.note, "detector": pipeline.detector_name, "smoothing": pipeline.smoothing,
        "frames": frames, "frames_with_faces": with_faces,
        "mean_latency_ms": round(float(np.mean(latencies)), 2),
        "frames_per_second": round(frames / elapsed, 1) if elapsed else 0.0,
        "emotion_counts": counts, "video": str(video_path), "csv": str(csv_path),
    }


# --------------------------------------------------------------------------- predict

def predict_file(path: str | os.PathLike, pipeline: Pipeline, *, max_frames: int = 0) -> Iterator[dict]:
    """JSON-ready results for an image (one dict with ``path``) or a video (one dict per frame).

    Raises EmolibError for a missing file or one that is neither an image nor a video.
    """
    path = Path(path)
    if not path.exists():
        raise EmolibError(f"{path}: no such file; pass image or video files")
    if path.is_dir():
        raise EmolibError(f"{path}: is a folder; pass image or video files (e.g. {path}/*.jpg)")
    pipeline.reset()
    if path.suffix.lower() in IMAGE_SUFFIXES or path.suffix.lower() not in VIDEO_SUFFIXES:
        image = read_image(path)
        if image is not None:
            detect_width, pipeline.detect_width = pipeline.detect_width, max(pipeline.detect_width, 1024)
            try:  # a still photo is worth a finer scan than a video frame
                result = pipeline.process(image)
            finally:
                pipeline.detect_width = detect_width
            yield {"path": str(path), "faces": [face.to_dict() for face in result.faces]}
            return
        if path.suffix.lower() in IMAGE_SUFFIXES:
            raise EmolibError(f"{path}: not a readable image (damaged or not really "
                              f"{path.suffix}); check the file")
    try:
        source = video_source(path)
    except EmolibError:
        if path.suffix.lower() in VIDEO_SUFFIXES:
            raise
        raise EmolibError(f"{path}: neither an image nor a readable video; pass JPEG/PNG images "
                          "or video files (mp4, avi, mov, ...)") from None
    for index, frame in enumerate(source):
        result = pipeline.process(frame)
        yield {"path": str(path), "frame": index,
               "faces": [face.to_dict() for face in result.faces]}
        if max_frames and index + 1 >= max_frames:
            break
