"""Faces: detection (OpenCV Haar cascade by default, MTCNN as an option).

The crop that turns a detected face into the 48x48 grayscale input every emolib model takes is
``preprocessing.crop_faces``, used for photos, videos and webcam frames alike (``faces.crop_faces``
and the other names below are the same functions, kept for existing callers).
"""

from __future__ import annotations

import numpy as np

from emolib.errors import EmolibError
from emolib.preprocessing import CROP_MARGIN, crop_faces, crop_square, to_gray  # noqa: F401

DETECTORS = ("haar", "mtcnn")


class FaceDetector:
    """Finds faces in a frame; ``detector`` is ``"haar"`` (fast, default) or ``"mtcnn"``.

    Build it once and call ``detect`` per frame: the model files are loaded in the constructor.
    """

    def __init__(self, detector: str = "haar", *, min_size: int = 40, scale_factor: float = 1.1,
                 min_neighbors: int = 5):
        import cv2

        if detector not in DETECTORS:
            raise EmolibError(f"unknown face detector {detector!r}; use one of {', '.join(DETECTORS)}")
        self.name = detector
        self.min_size, self.scale_factor, self.min_neighbors = min_size, scale_factor, min_neighbors
        if detector == "haar":
            if not hasattr(cv2, "CascadeClassifier"):
                raise EmolibError("this OpenCV has no CascadeClassifier (OpenCV 5 removed it); "
                                  "pip install 'opencv-python-headless<5'")
            path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
            self._cascade = cv2.CascadeClassifier(path)
            if self._cascade.empty():
                raise EmolibError(f"{path}: Haar cascade missing; reinstall opencv-python-headless<5")
        else:
            try:
                from mtcnn import MTCNN
            except ImportError:
                raise EmolibError("the mtcnn detector needs the mtcnn package: "
                                  "pip install 'emolib[mtcnn]' (or pip install mtcnn)") from None
            self._mtcnn = MTCNN()

    def detect(self, image: np.ndarray, *, max_size: int | None = None,
               min_size: int | None = None) -> np.ndarray:
        """Boxes ``(n, 4)`` int as ``x, y, w, h``, largest first; ``min_size`` (default: the
        detector's) and ``max_size`` (pixels) narrow the face sizes searched for."""
        min_size = max(self.min_size, min_size or 0)
        if self.name == "haar":
            boxes = self._cascade.detectMultiScale(
                to_gray(image), scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                minSize=(min_size, min_size),
                maxSize=(max_size, max_size) if max_size else (0, 0))
            boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
        else:
            import cv2

            rgb = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
            if image.ndim == 3:
                rgb = cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB)
            found = self._mtcnn.detect_faces(rgb)
            boxes = np.array([f["box"] for f in found if min_size <= f["box"][2]
                              <= (max_size or f["box"][2])],
                             dtype=np.int64).reshape(-1, 4)
            boxes[:, :2] = np.maximum(boxes[:, :2], 0)
        if len(boxes):
            boxes = boxes[np.argsort(-boxes[:, 2] * boxes[:, 3], kind="stable")]
        return boxes
