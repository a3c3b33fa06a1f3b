"""Preprocessing: the one path from pixels to what every emolib model takes, and its constants.

Every model takes raw 0-255 grayscale faces of ``INPUT_SHAPE`` (48x48x1) and returns
``NUM_CLASSES`` probabilities in ``CLASS_NAMES`` order; it scales its input itself. Pixels get
there in one of two ways, both here:

- a dataset image (any size or colour): ``decode_image`` -> ``to_face_square`` (centre square);
- a detected face in a photo, video or webcam frame: ``crop_faces`` around the detector's box.

``faces`` (detection), ``dataset_readers``, ``realtime`` and the adapters import from here, so a
model sees the same kind of pixels at training time and at every entry point.
"""

from __future__ import annotations

import numpy as np

#: The one class order used everywhere: labels, model outputs, plots, JSON.
CLASS_NAMES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
NUM_CLASSES = len(CLASS_NAMES)
#: FER-2013's own label order (0..6 in the challenge CSV, also the ``fer`` package's outputs).
FER2013_LABEL_ORDER = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: The side of a face in pixels, and the input of every model: ``(IMAGE_SIZE, IMAGE_SIZE, 1)``.
IMAGE_SIZE = 48
INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)

#: Margin added around a detector's box on every side, as a fraction of its side. 0: a Haar box
#: is about the square FER-2013 cropped (measured with benchmarks/crop_geometry.py: PublicTest
#: faces placed into frames, cropped at 0 give the raw face's label 83.4% of the time, at 0.1
#: 78.9%).
CROP_MARGIN = 0.0


def as_batch(images) -> np.ndarray:
    """``(n, 48, 48, 1)`` float32 of faces given as ``(n, 48, 48[, 1])`` (or one 48x48 face)."""
    return np.asarray(images, dtype=np.float32).reshape(-1, *INPUT_SHAPE)


def to_gray(image: np.ndarray) -> np.ndarray:
    """Grayscale view of a BGR, BGRA or already-gray uint8 image."""
    import cv2

    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[..., 0]
    code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(image, code)


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


def crop_square(box, margin: float = CROP_MARGIN) -> tuple[int, int, int]:
    """``(left, top, side)`` of the square ``crop_faces`` cuts around a box ``(x, y, w, h)``
    (it may run off the frame); heatmaps are drawn back over the same square."""
    x, y, w, h = (float(v) for v in box)
    side = int(round(max(w, h) * (1 + 2 * margin)))
    cx, cy = x + w / 2, y + h / 2
    return int(round(cx - side / 2)), int(round(cy - side / 2)), side


def crop_faces(image: np.ndarray, boxes: np.ndarray, *, margin: float = CROP_MARGIN,
               size: int = IMAGE_SIZE) -> np.ndarray:
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
