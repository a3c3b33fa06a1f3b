"""Video analysis a researcher can trust (issue 14), on real face photographs and the shipped
model: a real face found and labelled wherever it is placed, moved, scaled and relit; one track
for one person in a moving shot; the predict command's documented defaults.

The photographs are scikit-image's (the astronaut, LFW faces): a proxy for real footage that
needs no download. The shipped model (emolib/assets) runs as its int8 copy, as in ``predict``.
"""

from __future__ import annotations

import numpy as np
import pytest

from emolib import cli, footage, realtime


@pytest.fixture(scope="module")
def shipped_pipeline():
    return realtime.Pipeline(smoothing=0.0, annotate=False)


def test_a_real_face_is_found_and_labelled_when_moved_scaled_and_relit(shipped_pipeline):
    """The astronaut's head at 150-400 px wide (face 60-160 px) in 640x480 frames, 4 random
    places per size, under 5 lights. Measured: 76 of 80 found, all 76 labelled happy as in the
    photo; the 4 misses are the smallest size (face 60 px, 30 px in the 320 px scan), 3 of them
    overexposed."""
    report = footage.photo_robustness(shipped_pipeline)
    assert report["photo_label"] == "happy"  # she smiles
    lights = [light for light in report if light != "photo_label"]
    placed = sum(report[light]["placed"] for light in lights)
    found = sum(report[light]["found"] for light in lights)
    assert placed == 80 and found >= 74
    assert sum(report[light]["same_label"] for light in lights) >= found - 1
    for light in lights:  # every light: the face is found at every size but the smallest
        assert all(side <= 150 for side in report[light]["missed_sides"]), (light, report[light])
    for light in ("plain", "dark", "side"):
        assert report[light]["found"] >= 15, (light, report[light])


def test_one_person_moving_through_changing_light_keeps_one_track(shipped_pipeline):
    """A 40-frame shot: the astronaut drifts 4 px a frame while growing from 240 to 318 px wide
    and the light dims to 55%. The face is found on every frame with one track id, the
    tracking (not full scans) carries most frames, and the label stays the photo's."""
    head, face_box = footage.astronaut_head()
    shipped_pipeline.reset()
    results, truths = [], []
    for index in range(40):
        frame, truth = footage.photo_scene(head, face_box, side=240 + 2 * index, left=40 + 4 * index,
                                           top=60 + index, seed=7)
        frame = (frame.astype(np.float32) * (1 - 0.45 * index / 39)).astype(np.uint8)
        results.append(shipped_pipeline.process(frame))
        truths.append(truth)
    faces = [footage.matching_face(result.faces, truth) for result, truth in zip(results, truths)]
    assert all(face is not None for face in faces)
    assert {face.track_id for face in faces} == {1}
    assert not any(result.scene_change for result in results)
    assert sum(result.full_scan for result in results) <= 6  # the 10-frame schedule: 4
    assert sum(face.emotion == "happy" for face in faces) >= 38


def test_predict_help_states_the_file_smoothing_default_and_tracks(capsys):
    from emolib import timeline

    with pytest.raises(SystemExit) as stopped:
        cli.main(["predict", "--help"])
    assert stopped.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert timeline.FILE_SMOOTHING == 0.0
    assert "(default 0: every frame's own probabilities" in text
    assert "never crosses tracks" in text and "track id" in text


@pytest.mark.data
def test_on_cut_footage_tracking_keeps_the_accuracy_of_classifying_every_frame_alone(
        fer2013_path, shipped_pipeline):
    """Two 1000-frame clips of PublicTest faces cutting every 3-8 frames (footage.cut_clip,
    seeds 0 and 1): the pipeline with its tracking reports a face on >= 99% of the frames where
    scanning every frame does, and its per-frame accuracy, pooled, is no more than 1 point below
    scanning and classifying every frame on its own. Measured with the stage-3 model: 52.1% vs
    52.2% and 50.3% vs 49.1%. A single clip is too noisy for a 1-point bound: an 800-frame clip
    (seed 2) gave 41.1% vs 42.6%, a 2000-frame one (seed 3) 48.5% vs 46.8%."""
    from emolib import datasets

    faces, labels = datasets.load(fer2013_path, progress=False).split("val")
    totals = {"tracked": [0, 0, 0, 0], "independent": [0, 0, 0, 0]}
    for seed in (0, 1):
        chosen = np.random.default_rng(seed).choice(len(faces), 500, replace=False)
        clip = footage.cut_clip(faces[chosen], labels[chosen], frames=1000, seed=seed)
        for name, every in (("tracked", 10), ("independent", 1)):
            pipeline = realtime.Pipeline(shipped_pipeline.classifier, smoothing=0.0, annotate=False,
                                         detect_every=every)
            score = footage.score_clip(clip, [pipeline.process(f) for f in clip.frames])
            totals[name] = [a + b for a, b in zip(totals[name], (
                score["accuracy"] * score["frames"], score["frames"], score["frames_with_face"],
                score["tracks_across_cuts"] or 0))]
    tracked, independent = totals["tracked"], totals["independent"]
    assert independent[2] >= 0.65 * independent[1]  # a fair test: most faces found
    assert tracked[2] >= 0.99 * independent[2]
    assert tracked[0] / tracked[1] >= independent[0] / independent[1] - 0.01, totals
    assert tracked[3] <= 2
