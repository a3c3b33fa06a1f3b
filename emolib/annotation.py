"""Annotation: what is drawn over a frame. Each face's box in its emotion's colour with its
label (``realtime.Face.label``), the frames/s figure, and Grad-CAM heatmaps blended over the
faces (the webcam's Heatmap toggle, ``predict --explain``); the heatmaps themselves come from
``explain.Explainer``.

    >>> image = annotation.annotate(frame, result.faces, fps=result.fps)
    >>> image = annotation.explain_frame(frame, result.faces, explainer)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from emolib.errors import EmolibError

#: Box colours (BGR) per emotion, in CLASS_NAMES order; the bars and timeline charts use them too.
COLORS = {
    "angry": (60, 60, 230), "disgust": (60, 160, 60), "fear": (170, 80, 170),
    "happy": (40, 200, 250), "neutral": (200, 200, 200), "sad": (220, 130, 50),
    "surprise": (40, 140, 255),
}


def _bgr_copy(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if frame.ndim == 2 else frame[..., :3].copy()


def annotate(frame: np.ndarray, faces: list, fps: float | None = None) -> np.ndarray:
    """A BGR copy of ``frame`` with a box, track id, label and confidence per face and the frames/s."""
    import cv2

    image = _bgr_copy(frame)
    scale = max(0.45, image.shape[1] / 1100)
    thickness = max(1, int(round(scale * 2)))
    for face in faces:
        x, y, w, h = face.box
        color = COLORS.get(face.emotion, (255, 255, 255))
        cv2.rectangle(image, (x, y), (x + w, y + h), color, thickness)
        label = face.label
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


# --------------------------------------------------------------------------- heatmaps

def colorize(heatmap: np.ndarray, size: tuple | None = None) -> np.ndarray:
    """A BGR uint8 image (JET colours) of a [0, 1] heatmap, resized to ``(width, height)``."""
    import cv2

    image = np.uint8(np.clip(heatmap, 0, 1) * 255)
    if size is not None:
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    return cv2.applyColorMap(image, cv2.COLORMAP_JET)


def overlay_faces(frame: np.ndarray, boxes, heatmaps: np.ndarray, margin: float = 0.1,
                  alpha: float = 0.45) -> np.ndarray:
    """A BGR copy of ``frame`` with each face's heatmap blended over the square it was cropped
    from (``faces.crop_square``, the crop the model saw); the rest of the frame unchanged."""
    import cv2

    from emolib.faces import crop_square

    image = _bgr_copy(frame)
    height, width = image.shape[:2]
    for box, heatmap in zip(np.asarray(boxes).reshape(-1, 4), heatmaps):
        left, top, side = crop_square(box, margin)
        colour = colorize(heatmap, (side, side))
        x0, y0 = max(0, left), max(0, top)
        x1, y1 = min(width, left + side), min(height, top + side)
        if x1 <= x0 or y1 <= y0:
            continue
        region = image[y0:y1, x0:x1]
        patch = colour[y0 - top:y1 - top, x0 - left:x1 - left]
        image[y0:y1, x0:x1] = cv2.addWeighted(region, 1 - alpha, patch, alpha, 0)
    return image


def explain_frame(frame: np.ndarray, faces: list, explainer, margin: float = 0.1,
                  fps: float | None = None) -> np.ndarray:
    """The annotated frame (boxes, labels, frames/s) with each face's Grad-CAM (from
    ``explainer``, an ``explain.Explainer``) for the emotion its label shows blended over the
    face: what the webcam overlay and ``--explain`` draw."""
    from emolib import CLASS_NAMES
    from emolib.faces import crop_faces

    boxes = np.array([face.box for face in faces], np.int64).reshape(-1, 4)
    image = frame
    if len(boxes):
        heatmaps = explainer.grad_cam(crop_faces(frame, boxes, margin=margin),
                                      class_index=[CLASS_NAMES.index(f.emotion) for f in faces])
        image = overlay_faces(frame, boxes, heatmaps, margin=margin)
    return annotate(image, faces, fps=fps)


# --------------------------------------------------------------------------- predict --explain

def _check_output(output: Path) -> None:
    if output.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise EmolibError(f"--explain {output}: name a .png or .jpg file to write")
    if not output.parent.is_dir():
        raise EmolibError(f"--explain {output}: the folder {output.parent} does not exist")


def explain_image(path: str | os.PathLike, pipeline, output: str | os.PathLike,
                  explainer=None) -> list:
    """``predict --explain``: find the faces in the image at ``path`` with ``pipeline`` and write
    the annotated image with their heatmaps (``explainer``, default an ``explain.Explainer`` of
    the pipeline's model) to ``output`` (PNG or JPEG); return the faces."""
    import cv2

    from emolib.explain import Explainer
    from emolib.sources import read_image

    path, output = Path(path), Path(output)
    _check_output(output)
    image = read_image(path)
    if image is None:
        raise EmolibError(f"{path}: not a readable image; --explain takes photos, not videos")
    explainer = explainer or Explainer(pipeline)
    result = pipeline.process_photo(image)
    drawn = explain_frame(image, result.faces, explainer, margin=getattr(pipeline, "margin", 0.1))
    if not cv2.imwrite(str(output), drawn):
        raise EmolibError(f"--explain {output}: could not be written")
    return result.faces


def output_paths(paths: list, output: str | os.PathLike) -> dict:
    """``{image path: file to write}`` for ``predict --explain OUT.png``: ``OUT.png`` for one
    image, ``OUT-<image stem>.png`` for several; refuses videos and other suffixes."""
    from emolib.sources import IMAGE_SUFFIXES

    output = Path(output)
    _check_output(output)
    videos = [str(p) for p in paths if Path(p).suffix.lower() not in IMAGE_SUFFIXES]
    if videos:
        raise EmolibError(f"--explain takes photos, not {videos[0]}; leave --explain out for videos")
    if len(paths) == 1:
        return {paths[0]: output}
    return {path: output.with_name(f"{output.stem}-{Path(path).stem}{output.suffix}")
            for path in paths}
