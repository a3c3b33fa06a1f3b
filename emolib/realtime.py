"""Real-time pipeline: frames in, faces with track ids and emotions and an annotated frame out.

One path for webcam frames, video files, image folders and the ``predict`` command:

1. find faces with ``faces.FaceDetector`` (Haar by default) on a downscaled grayscale frame.
   Between full-frame scans the detector only searches a small region around each face it
   follows, which is what makes 60+ frames/s possible on a CPU. The whole frame is scanned
   again at once when a face seen in the last frame is lost, when no face is found, when the
   picture changes abruptly (a cut, see ``tracking.SceneChange``), and every ``detect_every``
   frames, so a face that jumps or appears after a cut is found on its first frame;
2. crop them with ``faces.crop_faces`` (square with margin, grayscale, 48x48: the training crop);
3. classify **all faces of the frame in one batched call** (``classifier.EmotionClassifier``);
4. give each face a track id (``tracking.Tracker``: a cut or a new person starts a new track)
   and smooth its probabilities within its track only;
5. draw boxes, labels, confidences and the frames/s figure (``annotation.annotate``).

    >>> from emolib import realtime
    >>> pipeline = realtime.Pipeline()               # default model, Haar, smoothing 0.6
    >>> result = pipeline.process(frame_bgr)         # result.faces, result.image, result.fps

A whole video or photo (``predict``), its table and chart: ``emolib.timeline``; annotated
video files: ``emolib.video``; where frames come from: ``emolib.sources``.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from emolib import CLASS_NAMES
from emolib.annotation import annotate
from emolib.classifier import EmotionClassifier
from emolib.errors import EmolibError
from emolib.tracking import SceneChange, Tracker, iou, steady_box


@dataclass
class Face:
    """One face in one frame: box ``(x, y, w, h)`` in frame pixels, its track id, smoothed and
    raw probabilities."""

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

    @property
    def label(self) -> str:
        """``"#1 happy 87%"``: track id, emotion and confidence, as drawn on the face's box."""
        return f"#{self.track_id} {self.emotion} {self.confidence:.0%}"

    def to_dict(self) -> dict:
        """JSON-ready: ``{"track": 1, "box": [x, y, w, h], "emotion": ..., "probabilities": {...}}``."""
        return {"track": int(self.track_id), "box": [int(v) for v in self.box],
                "emotion": self.emotion,
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
    scene_change: bool = False  #: whether the frame changed abruptly (a cut): tracks ended
    seconds: float | None = None  #: time in the video, when the frame came from one


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


class Pipeline:
    """Face detection, batched emotion classification, tracks, smoothing and annotation.

    - ``model``: Keras model, path, or ``""``/None for the default (see
      ``classifier.resolve_model_path``); or an ``EmotionClassifier`` to share one.
    - ``backend``: ``"auto"`` runs a model's int8 TFLite copy when one sits beside it (the
      shipped default has one), ``"keras"`` the Keras model (see ``EmotionClassifier``).
    - ``detector``: ``"haar"`` (OpenCV 4.x cascade) or ``"mtcnn"`` (needs the mtcnn package).
    - ``smoothing``: 0 = raw per-frame probabilities; 0.6 = each frame moves a face's
      probabilities 40% of the way to the new ones (a time constant of about 2 frames), within
      the face's track only.
    - ``detect_width``: frames wider than this are downscaled for the full-frame face scan
      (faces must be at least ``24 * width / detect_width`` pixels wide to be found).
    - ``scale_factor``: the Haar scan's step between face sizes. 1.05 finds more faces (76% vs
      68% of 600 FER-2013 PublicTest faces placed in frames) but doubles the scan's time, so
      1.1 is the default; the crops agree with the raw faces' labels equally often with both.
    - ``detect_every``: scan the whole frame at least every this many frames; in between, search
      only around the faces followed, unless one is lost, none is found or the scene cuts (1 =
      always). A face appearing beside followed ones without a cut waits for the next scan.
    - ``margin``: crop margin around the detector's box; None: ``faces.CROP_MARGIN``, chosen on
      FER-2013 PublicTest faces placed into frames (``benchmarks/crop_geometry.py``).
    - ``scene_threshold``: mean change of a 32x24 thumbnail (0-255) that counts as a cut.
    """

    def __init__(self, model=None, *, backend: str = "auto", detector: str = "haar",
                 smoothing: float = 0.6, detect_width: int = 320, scale_factor: float = 1.1,
                 detect_every: int = 10,
                 margin: float | None = None, max_missed: int = 5,
                 scene_threshold: float = 12.0,
                 annotate: bool = True):
        from emolib.faces import CROP_MARGIN, DETECTORS, FaceDetector

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
        self.margin = CROP_MARGIN if margin is None else float(margin)
        self.annotate = annotate
        # Haar's smallest window is 24 px: both detectors search 24 px and up in the image
        # they are given, which is the downscaled frame or a face's neighbourhood.
        self._full_detector = FaceDetector(detector, min_size=24, scale_factor=scale_factor)
        self._local_detector = FaceDetector(detector, min_size=24, min_neighbors=3) \
            if detector == "haar" else self._full_detector
        self.tracker = Tracker(max_missed=max_missed)
        self.scene_change = SceneChange(scene_threshold)
        self._since_scan = 0
        self._fps = FpsMeter()
        self.frames = 0

    @property
    def note(self) -> str:
        """Which model this pipeline uses (for logs)."""
        return self.classifier.note

    def reset(self) -> None:
        """Forget tracks (ids start at 1 again), the frame count and the frame-rate history."""
        self.tracker.reset()
        self.scene_change.reset()
        self._since_scan = 0
        self._fps.reset()
        self.frames = 0

    def process_photo(self, image: np.ndarray) -> FrameResult:
        """One still photo, afresh (``reset``) and with a finer full scan than a video frame's
        (at least 1024 pixels wide): how ``predict`` and ``--explain`` run an image."""
        self.reset()
        detect_width, self.detect_width = self.detect_width, max(self.detect_width, 1024)
        try:
            return self.process(image)
        finally:
            self.detect_width = detect_width

    def process(self, frame: np.ndarray) -> FrameResult:
        """Run the whole pipeline on one BGR (or gray) uint8 frame."""
        from emolib.faces import crop_faces, to_gray

        start = time.perf_counter()
        frame = _as_uint8_image(frame)
        gray = to_gray(frame)
        scene_change = self.scene_change(gray)
        if scene_change:
            self.tracker.end_all()  # a cut: whoever is there now starts a new track
        full_scan = (scene_change or not self.tracker.tracks
                     or self._since_scan + 1 >= self.detect_every)
        boxes = None
        if not full_scan:
            boxes, lost = self._follow(frame, gray)
            # a face seen last frame moved away or left, or no face is left: look everywhere, now
            full_scan = lost or not len(boxes)
        if full_scan:
            boxes = _merge(self._scan(frame, gray), boxes)
        self._since_scan = 0 if full_scan else self._since_scan + 1
        crops = crop_faces(gray, boxes, margin=self.margin)
        raw = self.classifier(crops)  # every face of the frame in one call
        tracks = self.tracker.update(boxes, raw, crops, smoothing=self.smoothing)
        faces = [Face(box=tuple(int(v) for v in box), probabilities=track.probabilities,
                      raw=probabilities, track_id=track.track_id)
                 for box, probabilities, track in zip(boxes, raw, tracks)]
        fps = self._fps.tick()
        image = annotate(frame, faces, fps=fps) if self.annotate else None
        self.frames += 1
        return FrameResult(index=self.frames - 1, faces=faces, fps=fps,
                           latency_ms=(time.perf_counter() - start) * 1000, image=image,
                           full_scan=full_scan, scene_change=scene_change)

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

    def _follow(self, frame: np.ndarray, gray: np.ndarray) -> tuple[np.ndarray, bool]:
        """Search a neighbourhood (1.6 times the face's size) around each followed face;
        returns the boxes found and whether a face seen in the last frame was not found
        (one already missing since a full scan does not ask for another)."""
        import cv2

        image = self._detector_input(frame, gray)
        height, width = image.shape[:2]
        found, lost = [], False
        for track in self.tracker.tracks:
            x, y, w, h = track.box
            side = max(w, h)
            cx, cy, reach = x + w / 2, y + h / 2, 0.8 * side
            left, top = max(0, int(cx - reach)), max(0, int(cy - reach))
            right, bottom = min(width, int(cx + reach)), min(height, int(cy + reach))
            boxes = np.zeros((0, 4), np.int64)
            if right - left >= 24 and bottom - top >= 24:
                # the face at the full scan's scale within 32-48 px: smaller loses faces and
                # strays from the scan's boxes (the margin's reference), larger costs time
                scale = min(1.0, float(np.clip(side * self.detect_width / width, 32, 48)) / side)
                region = image[top:bottom, left:right]
                if scale < 1:
                    region = cv2.resize(region, None, fx=scale, fy=scale,
                                        interpolation=cv2.INTER_AREA)
                expected = side * scale  # the face's size in the region: search 0.8x to 1.25x
                boxes = self._local_detector.detect(region, min_size=int(0.8 * expected),
                                                    max_size=int(np.ceil(1.25 * expected)))
            if len(boxes):
                boxes = np.round(boxes / scale).astype(np.int64) + [left, top, 0, 0]
                found.append(steady_box(max(boxes, key=lambda box: iou(box, track.box)), track.box))
            elif track.missed == 0:
                lost = True
        return _merge(np.array(found, dtype=np.int64).reshape(-1, 4)), lost


def _merge(boxes: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
    """``boxes`` then the ``extra`` boxes that overlap none of them, largest first, no duplicates."""
    candidates = list(boxes) + ([] if extra is None else list(extra))
    kept = []
    for box in sorted(candidates, key=lambda b: -b[2] * b[3]):
        if all(iou(box, other) < 0.5 for other in kept):
            kept.append(box)
    return np.array(kept, dtype=np.int64).reshape(-1, 4)


def _as_uint8_image(frame) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim not in (2, 3) or frame.size == 0:
        raise EmolibError(f"a frame must be a non-empty uint8 image (height, width[, channels]); "
                          f"got {frame.dtype} with shape {frame.shape}")
    return frame
