"""Augmentation: random changes of training faces, as TensorFlow batch ops.

``make_augmenter(kind)`` returns ``augment(batch)`` for raw 0-255 float batches
``(n, 48, 48, 1)``, label-preserving; ``mix_batch`` then mixes pairs of faces and their targets
(mixup, cutmix). ``training.make_dataset`` applies both in the ``tf.data`` pipeline.
"""

from __future__ import annotations

import numpy as np

from emolib.errors import EmolibError

#: Training-time augmentations ``make_augmenter`` knows (``"none"`` turns it off), with their
#: strengths: rotation (degrees), zoom and shift (fractions of the face), brightness (fraction of
#: 255), contrast, log-gamma, and the share of faces with one erased patch.
AUGMENTATIONS = {
    "none": None,
    "basic": {"rotation": 18, "zoom": 0.1, "shift": 0.1, "brightness": 0.0, "contrast": 0.2,
              "gamma": 0.0, "erasing": 0.0},
    "faces": {"rotation": 10, "zoom": 0.15, "shift": 0.08, "brightness": 0.15, "contrast": 0.3,
              "gamma": 0.4, "erasing": 0.25},
}


def make_augmenter(kind: str = "basic", strength: float = 1.0, seed: int = 0):
    """Label-preserving augmentation for faces: ``augment(batch)`` on raw 0-255 float batches.

    ``"basic"``: flips, rotations up to 18 degrees, 10% shifts and zooms, contrast.
    ``"faces"``: what a face detector's crop varies in and the strong FER-2013 recipes use:
    flips; rotations up to 10 degrees, zooms of +-15% and shifts of +-8% (the detector's box
    is never exactly FER-2013's); brightness, contrast and gamma (real lighting); random erasing
    of one patch in a quarter of the faces (hands, glasses, hair).

    Plain TensorFlow ops on the whole batch (one affine warp per batch): Keras' random
    preprocessing layers delivered ~140 faces/s inside ``tf.data`` on the 2-core dev machine
    (measured while a training run shared it), these ~3,700/s under the same load.
    """
    import tensorflow as tf

    if kind not in AUGMENTATIONS or AUGMENTATIONS[kind] is None:
        raise ValueError(f"unknown augmentation {kind!r}; use one of {', '.join(AUGMENTATIONS)}")
    p = {name: value * strength for name, value in AUGMENTATIONS[kind].items()}

    def augment(images, training=True):
        if not training:
            return images
        flipped = tf.random.uniform((tf.shape(images)[0], 1, 1, 1)) < 0.5
        images = tf.where(flipped, tf.reverse(images, axis=[2]), images)
        images = random_affine(images, p["rotation"], p["zoom"], p["shift"])
        images = random_light(images, p["brightness"], p["contrast"], p["gamma"])
        if p["erasing"]:
            images = random_erasing(images, p["erasing"])
        return tf.clip_by_value(images, 0.0, 255.0)

    return augment


def kind_of(augment) -> str | None:
    """``True``/``False`` (older notebooks and scripts) or a name from ``AUGMENTATIONS``."""
    if augment is True:
        return "basic"
    if augment in (False, None, "none", ""):
        return None
    if augment not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {augment!r}; use one of {', '.join(AUGMENTATIONS)}")
    return augment


def random_affine(images, degrees: float, zoom: float, shift: float):
    """One random rotation (+-degrees), zoom (1 +- zoom) and shift (+- shift of the side) per
    face, as a single bilinear warp with edge pixels repeated outside the face."""
    import tensorflow as tf

    n = tf.shape(images)[0]
    size = tf.cast(tf.shape(images)[1], tf.float32)
    angle = tf.random.uniform((n,), -1.0, 1.0) * degrees * np.pi / 180
    scale = tf.random.uniform((n,), 1.0 - zoom, 1.0 + zoom)
    tx, ty = (tf.random.uniform((n,), -shift, shift) * size for _ in range(2))
    # the warp maps each output pixel to the input pixel it reads: rotate and scale about the centre
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    centre = (size - 1.0) / 2.0
    zeros = tf.zeros_like(cos)
    transforms = tf.stack([cos, -sin, centre - cos * centre + sin * centre + tx,
                           sin, cos, centre - sin * centre - cos * centre + ty, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.shape(images)[1:3],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")


def random_light(images, brightness: float, contrast: float, log_gamma: float):
    """Per face: gamma ``255 * (x/255) ** g`` (``log g`` in +-log_gamma), contrast about the
    face's mean (factor 1 +- contrast), brightness (+- brightness * 255)."""
    import tensorflow as tf

    shape = (tf.shape(images)[0], 1, 1, 1)
    if log_gamma:
        gamma = tf.exp(tf.random.uniform(shape, -log_gamma, log_gamma))
        images = 255.0 * tf.pow(tf.clip_by_value(images / 255.0, 1e-6, 1.0), gamma)
    if contrast:
        mean = tf.reduce_mean(images, axis=(1, 2, 3), keepdims=True)
        images = mean + (images - mean) * tf.random.uniform(shape, 1 - contrast, 1 + contrast)
    if brightness:
        images = images + 255.0 * tf.random.uniform(shape, -brightness, brightness)
    return images


def random_erasing(images, rate: float = 0.25):
    """With probability ``rate`` per image, one rectangle (2-15% of the area) becomes noise."""
    import tensorflow as tf

    shape = tf.shape(images)
    n, h, w = shape[0], tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    area = tf.random.uniform((n,), 0.02, 0.15) * h * w
    aspect = tf.exp(tf.random.uniform((n,), np.log(0.3), np.log(3.3)))
    half_h, half_w = tf.sqrt(area * aspect) / 2, tf.sqrt(area / aspect) / 2
    cy, cx = tf.random.uniform((n,), 0.0, h), tf.random.uniform((n,), 0.0, w)
    rows = tf.range(h)[None, :, None]
    cols = tf.range(w)[None, None, :]
    inside = ((tf.abs(rows - cy[:, None, None]) < half_h[:, None, None])
              & (tf.abs(cols - cx[:, None, None]) < half_w[:, None, None])
              & (tf.random.uniform((n, 1, 1)) < rate))[..., None]
    return tf.where(inside, tf.random.uniform(tf.shape(images), 0.0, 255.0), images)


#: Batch mixing ``mix_batch`` knows, with the default ``alpha`` of its Beta(alpha, alpha) draw:
#: mixup's papers use 0.1-0.4 (mostly near-pure faces), cutmix's 1.0 (any box size).
MIXES = {"none": None, "mixup": 0.2, "cutmix": 1.0}


def mix_alpha(mix: str, alpha: float | None = None) -> float | None:
    """The Beta parameter ``mix`` uses (its default when ``alpha`` is None); None for "none".
    An unknown name or a non-positive alpha is refused with one line."""
    if mix not in MIXES:
        raise EmolibError(f"mix={mix!r}: unknown batch mixing; use one of {', '.join(MIXES)}")
    if MIXES[mix] is None:
        return None
    alpha = MIXES[mix] if alpha is None else alpha
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not alpha > 0:
        raise EmolibError(f"mix_alpha={alpha!r}: the Beta(alpha, alpha) parameter must be a "
                          f"positive number (default {MIXES[mix]} for {mix})")
    return float(alpha)


def mix_batch(images, targets, mix: str = "mixup", alpha: float | None = None):
    """Mix every face of a batch with another face of it (a random pairing), targets alike.

    Per face a weight ``lam ~ Beta(alpha, alpha)``. ``"mixup"``: the image is
    ``lam * face + (1 - lam) * partner`` and so is the target. ``"cutmix"``: a box of
    ``1 - lam`` of the area (clipped where it leaves the image) is pasted from the partner; the
    target weighs each face by the area it keeps. ``"none"`` returns the batch unchanged.
    ``targets`` are one-hot or soft rows (n x classes); rows of the result still sum to 1.
    """
    import tensorflow as tf

    alpha = mix_alpha(mix, alpha)
    if alpha is None:
        return images, targets
    n = tf.shape(images)[0]
    partner = tf.random.shuffle(tf.range(n))
    other_images, other_targets = tf.gather(images, partner), tf.gather(targets, partner)
    draws = tf.random.gamma((2, n), alpha)  # Beta(a, a) = X / (X + Y) with X, Y ~ Gamma(a)
    lam = draws[0] / tf.maximum(draws[0] + draws[1], 1e-12)
    if mix == "cutmix":
        pasted = _random_boxes(tf.shape(images), 1.0 - lam)
        lam = 1.0 - tf.reduce_mean(tf.cast(pasted, tf.float32), axis=(1, 2, 3))  # area kept
        mixed = tf.where(pasted, other_images, images)
    else:
        weight = tf.cast(tf.reshape(lam, (-1, 1, 1, 1)), images.dtype)
        mixed = weight * images + (1.0 - weight) * other_images
    weight = tf.cast(lam[:, None], targets.dtype)
    return mixed, weight * targets + (1.0 - weight) * other_targets


def _random_boxes(shape, areas):
    """A boolean mask ``(n, h, w, 1)``: per face a box of ``areas`` of the image (aspect as the
    image's) about a uniform random centre, clipped at the borders."""
    import tensorflow as tf

    n, h, w = shape[0], tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    side = tf.sqrt(tf.clip_by_value(areas, 0.0, 1.0))
    half_h, half_w = side * h / 2, side * w / 2
    cy, cx = tf.random.uniform((n,), 0.0, h), tf.random.uniform((n,), 0.0, w)
    rows = tf.range(h)[None, :, None] + 0.5  # pixel centres
    cols = tf.range(w)[None, None, :] + 0.5
    inside = ((tf.abs(rows - cy[:, None, None]) < half_h[:, None, None])
              & (tf.abs(cols - cx[:, None, None]) < half_w[:, None, None]))
    return inside[..., None]
