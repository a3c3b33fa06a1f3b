"""Robustness report: the perturbations do what they say, and the table measures accuracy drops."""

from __future__ import annotations

import numpy as np
import pytest

from emolib import robustness


def faces(n: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    gradient = np.linspace(40, 200, 48)[None, :, None].repeat(48, axis=0)
    return np.clip(gradient + rng.normal(0, 15, (n, 48, 48, 1)), 0, 255).astype(np.float32)


@pytest.mark.parametrize("kind", list(robustness.PERTURBATIONS))
def test_first_level_is_identity_and_others_change_faces(kind):
    images = faces()
    levels = robustness.PERTURBATIONS[kind]
    unchanged = robustness.perturb(images, kind, levels[0])
    assert unchanged.shape == images.shape and unchanged.dtype == np.float32
    np.testing.assert_allclose(unchanged, images, atol=1.0)
    for level in levels[1:]:
        changed = robustness.perturb(images, kind, level)
        assert changed.shape == images.shape
        assert 0 <= changed.min() and changed.max() <= 255
        assert np.abs(changed - images).mean() > 0.5, (kind, level)


def test_occlusion_covers_the_asked_fraction():
    images = np.zeros((5, 48, 48, 1), np.float32)
    occluded = robustness.perturb(images, "occlusion", 0.5)
    assert np.all((occluded == 128).reshape(5, -1).sum(axis=1) == 24 * 24)


def test_unknown_perturbation_is_refused():
    with pytest.raises(ValueError, match="unknown perturbation"):
        robustness.perturb(faces(), "sepia", 1)


class BrightnessModel:
    """Says 'happy' (3) for bright faces and 'sad' (5) for dark ones: lighting-sensitive."""

    def predict(self, x, batch_size=256, verbose=0):
        bright = np.asarray(x).reshape(len(x), -1).mean(axis=1) > 100
        out = np.zeros((len(x), 7), np.float32)
        out[np.arange(len(x)), np.where(bright, 3, 5)] = 1
        return out


class ConstantModel:
    def predict(self, x, batch_size=256, verbose=0):
        out = np.zeros((len(x), 7), np.float32)
        out[:, 3] = 1
        return out


def test_table_measures_the_drop_of_a_lighting_sensitive_model():
    images = faces(20)
    labels = np.full(20, 3)  # all bright faces labelled happy
    table = robustness.robustness_table(
        {"sensitive": BrightnessModel(), "constant": ConstantModel()}, images, labels,
        perturbations={"brightness": (0, -80)}, progress=False)
    sensitive = table[table["model"] == "sensitive"].set_index("level")
    constant = table[table["model"] == "constant"].set_index("level")
    assert sensitive.loc[0, "accuracy"] == 1.0 and sensitive.loc[-80, "accuracy"] == 0.0
    assert sensitive.loc[-80, "drop"] == 1.0
    assert (constant["drop"] == 0).all()


def test_chart_has_a_panel_per_perturbation():
    import matplotlib

    matplotlib.use("Agg")
    table = robustness.robustness_table({"constant": ConstantModel()}, faces(4), np.full(4, 3),
                                        progress=False)
    figure = robustness.robustness_chart(table)
    titled = [axis.get_title() for axis in figure.axes if axis.get_title()]
    assert titled == list(robustness.PERTURBATIONS)
