"""Footage with known faces, for measuring the real-time pipeline against the truth.

- ``cut_clip``: a 640x480 video of face images (FER-2013 faces scaled up, or real photographs)
  that drift, jump and cut to a new person every few frames, with the true box, label and
  person of every frame; ``score_clip`` scores pipeline results on it (frames with a face,
  per-frame accuracy, tracks that cross a cut).
- ``crop_agreement``: FER-2013 faces placed into larger frames at several sizes and positions;
  how often the pipeline (detector box + margin -> 48x48 crop) gives the label the model gives
  the raw face, for one or several margins.
- ``photo_faces``: small real face photographs that scikit-image ships (LFW, the astronaut);
  ``photo_robustness``: the astronaut's head placed into frames at several sizes and places
  under several lights (``LIGHTS``), found and labelled as in the photo or not.

Used by ``benchmarks/bench_realtime.py``, ``benchmarks/crop_geometry.py`` and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emolib.preprocessing import CLASS_NAMES, INPUT_SHAPE, crop_faces
from emolib.tracking import iou


@dataclass
class Clip:
    """Frames (BGR) and, per frame, the face's true box ``(x, y, w, h)``, label index (-1 when
    unknown) and person (a new number after every cut)."""

    frames: list
    boxes: np.ndarray
    labels: np.ndarray
    persons: np.ndarray
    fps: float = 25.0


def background(size: tuple = (640, 480), seed: int = 0) -> np.ndarray:
    """A smooth random texture with a brightness ramp (gray uint8), different for every seed."""
    import cv2

    width, height = size
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 1, (height // 8 + 1, width // 8 + 1)).astype(np.float32)
    texture = cv2.resize(cv2.GaussianBlur(noise, (0, 0), 1.5), (width, height))
    low, high = sorted(rng.uniform(40, 200, 2))
    ramp = np.linspace(low, high, width, dtype=np.float32)[None, :]
    return np.clip(ramp + 25 * texture, 0, 255).astype(np.uint8)


def place(frame: np.ndarray, face: np.ndarray, left: int, top: int, side: int) -> np.ndarray:
    """``frame`` with ``face`` scaled to ``side`` x ``side`` pasted at ``(left, top)`` (clipped
    at the borders); gray or BGR like ``frame``."""
    import cv2

    face = np.asarray(face)
    face = face.reshape(face.shape[:2]) if face.ndim == 3 and face.shape[2] == 1 else face
    if frame.ndim == 3 and face.ndim == 2:
        face = cv2.cvtColor(face, cv2.COLOR_GRAY2BGR)
    elif frame.ndim == 2 and face.ndim == 3:
        face = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)
    scaled = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    height, width = frame.shape[:2]
    x0, y0 = max(0, left), max(0, top)
    x1, y1 = min(width, left + side), min(height, top + side)
    if x1 > x0 and y1 > y0:
        frame[y0:y1, x0:x1] = scaled[y0 - top:y1 - top, x0 - left:x1 - left]
    return frame


def cut_clip(faces: np.ndarray, labels=None, *, frames: int = 300, hold: tuple = (3, 8),
             sides: tuple = (110, 230), size: tuple = (640, 480), jump: float = 0.3,
             same_place: float = 0.25, fps: float = 25.0, seed: int = 0) -> Clip:
    """A clip that cuts to the next face every ``hold`` frames (a random number in that range).

    Each shot shows one face of ``faces`` (square images, e.g. (n, 48, 48, 1) FER-2013 faces)
    at a random size in ``sides`` and a random place on its own background, drifting a few
    pixels per frame; with probability ``jump`` the face jumps elsewhere mid-shot. With
    probability ``same_place`` a cut keeps the background, place and size and only swaps the
    person (the hardest cut for a tracker).
    """
    rng = np.random.default_rng(seed)
    width, height = size
    labels = np.full(len(faces), -1) if labels is None else np.asarray(labels)
    order = rng.permutation(len(faces))
    all_frames, boxes, frame_labels, persons = [], [], [], []
    shot = 0
    side = left = top = base = None
    while len(all_frames) < frames:
        face_index = order[shot % len(order)]
        if base is None or rng.random() >= same_place:
            base = background(size, seed=int(rng.integers(1 << 30)))
            side = int(rng.integers(sides[0], sides[1] + 1))
            left = int(rng.integers(0, width - side + 1))
            top = int(rng.integers(0, height - side + 1))
        length = int(rng.integers(hold[0], hold[1] + 1))
        jump_at = int(rng.integers(1, length)) if length > 1 and rng.random() < jump else -1
        velocity = rng.uniform(-6, 6, 2)
        for step in range(length):
            if step == jump_at:
                left = int(rng.integers(0, width - side + 1))
                top = int(rng.integers(0, height - side + 1))
            elif step:
                left = int(np.clip(left + velocity[0], 0, width - side))
                top = int(np.clip(top + velocity[1], 0, height - side))
            frame = place(np.dstack([base] * 3), faces[face_index], left, top, side)
            all_frames.append(frame)
            boxes.append((left, top, side, side))
            frame_labels.append(int(labels[face_index]))
            persons.append(shot)
            if len(all_frames) == frames:
                break
        shot += 1
    return Clip(all_frames, np.array(boxes), np.array(frame_labels), np.array(persons), fps)


def matching_face(faces: list, box, min_iou: float = 0.3):
    """The face (``realtime.Face``) of a frame that overlaps the true ``box`` most, or None."""
    best = max(faces, key=lambda face: iou(face.box, box), default=None)
    return best if best is not None and iou(best.box, box) >= min_iou else None


def score_clip(clip: Clip, results: list) -> dict:
    """How pipeline ``results`` (one ``FrameResult`` per frame) did on ``clip``.

    ``frames_with_face``: frames where any face was reported; ``frames_found``: frames where a
    face overlapped the true one; ``accuracy``: frames where that face had the true label,
    over the frames with a known label; ``tracks_across_cuts``: tracks that showed two persons.
    """
    found = correct = 0
    persons_of_track: dict[int, set] = {}
    for result, box, label, person in zip(results, clip.boxes, clip.labels, clip.persons):
        face = matching_face(result.faces, box)
        if face is None:
            continue
        found += 1
        correct += label >= 0 and face.emotion == CLASS_NAMES[label]
        persons_of_track.setdefault(face.track_id, set()).add(int(person))
    labelled = int(np.sum(clip.labels >= 0))
    return {"frames": len(results), "frames_with_face": sum(bool(r.faces) for r in results),
            "frames_found": found, "accuracy": correct / labelled if labelled else None,
            "tracks": len(persons_of_track),
            "tracks_across_cuts": sum(len(p) > 1 for p in persons_of_track.values())}


def photo_faces(count: int = 40) -> np.ndarray:
    """Real face photographs from scikit-image as square gray uint8 crops (the astronaut's face
    and ``count`` LFW faces, 25x25), for footage of people rather than FER-2013 faces."""
    import cv2
    from skimage import data

    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    x, y, w, h = 177, 66, 95, 95  # the astronaut's face, as OpenCV's Haar cascade finds it
    faces = [cv2.resize(astronaut[y:y + h, x:x + w], INPUT_SHAPE[:2], interpolation=cv2.INTER_AREA)]
    lfw = data.lfw_subset()[:100]  # the first 100 of the subset are faces, the rest are not
    faces += [cv2.resize((image * 255).astype(np.uint8), INPUT_SHAPE[:2],
                         interpolation=cv2.INTER_CUBIC)
              for image in lfw[:count]]
    return np.stack(faces)[..., None]


def crop_agreement(pipeline, faces: np.ndarray, labels: np.ndarray, *, sides: tuple = (96, 144, 192),
                   margins: tuple | None = None, size: tuple = (640, 480), seed: int = 0) -> dict:
    """How well the pipeline's crop stands in for FER-2013's own: each 48x48 face of ``faces``
    is placed into a ``size`` frame at every side in ``sides`` (at a random place on a random
    background), the pipeline scans the frame, and the face it finds is cropped with each
    margin of ``margins`` (default: the pipeline's) and classified.

    Returns ``detected`` (share of placed faces found), ``raw_accuracy`` (the model on the raw
    faces) and, per margin, ``agreement`` (found faces given the label the model gives the raw
    face), ``accuracy_found`` (on found faces) and ``accuracy`` (a face not found counts as
    wrong) and ``agreement_by_side``; ``detected_by_side`` per side.
    """
    margins = (pipeline.margin,) if margins is None else tuple(margins)
    rng = np.random.default_rng(seed)
    width, height = size
    backgrounds = [background(size, seed=seed * 100 + index) for index in range(8)]
    raw_labels = np.concatenate([pipeline.classifier(faces[start:start + 256]).argmax(1)
                                 for start in range(0, len(faces), 256)])
    crops = {margin: [] for margin in margins}
    found_index, found_side, placed_side = [], [], []
    for side in sides:
        for index, face in enumerate(faces):
            left = int(rng.integers(0, width - side + 1))
            top = int(rng.integers(0, height - side + 1))
            gray = place(backgrounds[int(rng.integers(len(backgrounds)))].copy(), face, left, top, side)
            pipeline.reset()
            found = matching_face(pipeline.process(gray).faces, (left, top, side, side))
            placed_side.append(side)
            if found is None:
                continue
            found_index.append(index)
            found_side.append(side)
            for margin in margins:
                crops[margin].append(crop_faces(gray, np.array([found.box]), margin=margin)[0])
    found_index, found_side, placed_side = map(np.array, (found_index, found_side, placed_side))
    report = {"faces": len(faces), "placed": len(placed_side), "sides": list(sides),
              "detected": len(found_index) / len(placed_side),
              "raw_accuracy": float(np.mean(raw_labels == labels)),
              "raw_accuracy_found": float(np.mean(raw_labels[found_index] == labels[found_index]))
              if len(found_index) else None, "by_margin": {}}
    for margin in margins:
        batch = np.stack(crops[margin]) if crops[margin] else np.zeros((0, *INPUT_SHAPE), np.uint8)
        predicted = np.concatenate([pipeline.classifier(batch[start:start + 256]).argmax(1)
                                    for start in range(0, len(batch), 256)] or [np.zeros(0, int)])
        agree = predicted == raw_labels[found_index]
        correct = predicted == labels[found_index]
        report["by_margin"][margin] = {
            "agreement": float(np.mean(agree)) if len(agree) else None,
            "accuracy_found": float(np.mean(correct)) if len(correct) else None,
            "accuracy": float(np.sum(correct)) / len(placed_side),
            "agreement_by_side": {side: float(np.mean(agree[found_side == side]))
                                  if np.any(found_side == side) else None for side in sides}}
    report["detected_by_side"] = {side: int(np.sum(found_side == side))
                                  / max(1, int(np.sum(placed_side == side))) for side in sides}
    return report


#: Lighting changes of a frame (float BGR, 0-255) for ``photo_robustness``.
LIGHTS = {
    "plain": lambda frame: frame,
    "dark": lambda frame: frame * 0.45,
    "bright": lambda frame: frame * 1.3 + 40,  # overexposed: the face's highlights saturate
    "gamma": lambda frame: 255 * (frame / 255) ** 1.8,
    "side": lambda frame: frame * np.linspace(0.35, 1.2, frame.shape[1])[None, :, None],
}


def astronaut_head() -> tuple[np.ndarray, tuple]:
    """scikit-image's astronaut photo cut to her head and shoulders (BGR), and the face's box
    ``(x, y, w, h)`` in that cut (where OpenCV's Haar cascade finds it in the whole photo)."""
    import cv2
    from skimage import data

    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    x, y, side, pad = 177, 66, 95, 70
    top = max(0, y - pad)
    return photo[top:y + side + pad, x - pad:x + side + pad].copy(), (pad, y - top, side, side)


def photo_scene(head: np.ndarray, face_box: tuple, side: int, left: int, top: int,
                light: str = "plain", seed: int = 0) -> tuple[np.ndarray, tuple]:
    """A 640x480 BGR frame with ``head`` scaled to ``side`` pixels wide at ``(left, top)`` on a
    random background, under ``LIGHTS[light]``; and the face's true box in the frame."""
    import cv2

    scale = side / head.shape[1]
    scaled = cv2.resize(head, None, fx=scale, fy=scale,
                        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    frame = cv2.cvtColor(background(seed=seed), cv2.COLOR_GRAY2BGR)
    region = frame[top:top + scaled.shape[0], left:left + scaled.shape[1]]
    region[:] = scaled[:region.shape[0], :region.shape[1]]
    frame = np.clip(LIGHTS[light](frame.astype(np.float32)), 0, 255).astype(np.uint8)
    x, y, w, h = face_box
    return frame, (left + x * scale, top + y * scale, w * scale, h * scale)


def photo_robustness(pipeline, *, sides: tuple = (150, 220, 300, 400), places: int = 4,
                     lights: tuple = tuple(LIGHTS), seed: int = 0) -> dict:
    """The astronaut's head (``astronaut_head``, face 40% of its width) at each of ``sides``
    pixels wide, ``places`` random places each, under each light: per light, how many frames
    were made (``placed``), in how many the pipeline's full scan found the face (``found``) and
    gave the label it gives the whole photo (``same_label``), and ``missed_sides``."""
    import cv2
    from skimage import data

    pipeline.reset()
    photo_faces_found = pipeline.process(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)).faces
    expected = photo_faces_found[0].emotion if photo_faces_found else None
    head, face_box = astronaut_head()
    rng = np.random.default_rng(seed)
    report = {"photo_label": expected}
    for light in lights:
        counts = report[light] = {"placed": 0, "found": 0, "same_label": 0, "missed_sides": []}
        for side in sides:
            height = int(round(head.shape[0] * side / head.shape[1]))
            for _ in range(places):
                left = int(rng.integers(0, 640 - side + 1))
                top = int(rng.integers(0, max(1, 480 - height + 1)))
                frame, truth = photo_scene(head, face_box, side, left, top, light,
                                           seed=int(rng.integers(1 << 30)))
                pipeline.reset()
                face = matching_face(pipeline.process(frame).faces, truth)
                counts["placed"] += 1
                counts["found"] += face is not None
                counts["same_label"] += face is not None and face.emotion == expected
                if face is None:
                    counts["missed_sides"].append(side)
    return report
