"""Faces: detection (OpenCV Haar cascade by default, MTCNN as an option) and the crop that turns
a detected face into the 48x48 grayscale input every emolib model takes.

The same ``crop_faces`` is used for photos, videos and webcam frames, so a model sees the same
kind of pixels at every entry point.
"""

from __future__ import annotations

import numpy as np

from emolib.errors import EmolibError

DETECTORS = ("haar", "mtcnn")
#: Margin added around a detector's box on every side, as a fraction of its side. 0: a Haar box
#: is about the square FER-2013 cropped (measured with benchmarks/crop_geometry.py: PublicTest
#: faces placed into frames, cropped at 0 give the raw face's label 83.4% of the time, at 0.1
#: 78.9%).
CROP_MARGIN = 0.0


def to_gray(image: np.ndarray) -> np.ndarray:
    """Grayscale view of a BGR, BGRA or already-gray uint8 image."""
    import cv2

    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[..., 0]
    code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(image, code)


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


def crop_square(box, margin: float = CROP_MARGIN) -> tuple[int, int, int]:
    """``(left, top, side)`` of the square ``crop_faces`` cuts around a box ``(x, y, w, h)``
    (it may run off the frame); heatmaps are drawn back over the same square."""
    x, y, w, h = (float(v) for v in box)
    side = int(round(max(w, h) * (1 + 2 * margin)))
    cx, cy = x + w / 2, y + h / 2
    return int(round(cx - side / 2)), int(round(cy - side / 2)), side


def crop_faces(image: np.ndarray, boxes: np.ndarray, *, margin: float = CROP_MARGIN,
               size: int = 48) -> np.ndarray:
    """Square crops around each box (``margin`` of the side added on every side), 48x48 gray.

    Returns ``(n, size, size, 1)`` uint8. Crops that run off the image are padded by edge
    replication, so a face at the border is not squashed.
    """
    import cv2

    gray = to_gray(image)
    height, width = gray.shape
    crops = np.empty((len(boxes), size, size, 1), dtype=np.uint8)
    for index, box in enumerate(np.asarray(boxes).reshape(-1, 4)):
        left, top, side = crop_square(box, margin)
        pad = max(0, -left, -top, left + side - width, top + side - height)
        source = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else gray
        square = source[top + pad:top + pad + side, left + pad:left + pad + side]
        interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
        crops[index, ..., 0] = cv2.resize(square, (size, size), interpolation=interpolation)
    return crops
