"""The real-time pipeline, its sources and writers, the predict command and the camera widgets.

Runs on generated frames of the bundled sample face and a tiny untrained model: nothing here
depends on a trained model's accuracy.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from emolib import CLASS_NAMES, cli, footage, realtime, sources, timeline, video
from emolib.classifier import EmotionClassifier, resolve_model_path
from emolib.errors import DataNotFoundError, EmolibError


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny EmoNet saved as .keras (untrained: only shapes and plumbing are tested)."""
    from emolib import models

    model = models.build_emonet(widths=(4, 8, 8, 8), dense_units=8)
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def classifier(model_file):
    return EmotionClassifier(str(model_file))


@pytest.fixture
def pipeline(classifier):
    return realtime.Pipeline(classifier)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 12-frame mp4 with three faces."""
    path = tmp_path_factory.mktemp("clip") / "three_faces.mp4"
    with video.VideoWriter(path, fps=10) as writer:
        for frame in sources.sample_frames(12, faces=3):
            writer.write(frame)
    return path


def read_video_frames(path):
    import cv2

    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


# --------------------------------------------------------------------------- pipeline

def test_pipeline_finds_the_sample_face_and_returns_probabilities_and_an_annotated_frame(pipeline):
    frames = list(sources.sample_frames(8, faces=1))
    results = [pipeline.process(frame) for frame in frames]
    assert all(len(result.faces) == 1 for result in results)
    face = results[-1].faces[0]
    x, y, w, h = face.box
    assert 60 <= w <= 200 and 0 <= x < 640 and 0 <= y < 480
    assert face.probabilities.shape == (len(CLASS_NAMES),)
    assert face.probabilities.sum() == pytest.approx(1, abs=1e-3)
    assert face.emotion in CLASS_NAMES and face.confidence == pytest.approx(face.probabilities.max())
    image = results[-1].image
    assert image.shape == frames[-1].shape and not np.array_equal(image, frames[-1])
    assert results[-1].fps > 0 and results[-1].latency_ms > 0
    assert len({result.faces[0].track_id for result in results}) == 1  # one face, one track


def test_all_faces_of_a_frame_are_classified_in_one_batched_call(pipeline):
    calls = []
    forward = pipeline.classifier._forward
    pipeline.classifier._forward = lambda batch: calls.append(len(batch)) or forward(batch)
    frames = list(sources.sample_frames(6, faces=3))
    results = [pipeline.process(frame) for frame in frames]
    assert [len(result.faces) for result in results] == [3] * 6
    assert calls == [3] * 6  # one call per frame, never one per face


def test_between_full_scans_the_detector_follows_the_faces_it_found(classifier):
    pipeline = realtime.Pipeline(classifier, detect_every=4)
    results = [pipeline.process(frame) for frame in sources.sample_frames(9, faces=1)]
    assert [result.full_scan for result in results] == [True, False, False, False] * 2 + [True]
    assert all(len(result.faces) == 1 for result in results)
    always = realtime.Pipeline(classifier, detect_every=1)
    assert all(always.process(frame).full_scan for frame in sources.sample_frames(3))


def test_smoothing_keeps_the_label_from_flickering(classifier):
    happy = np.eye(len(CLASS_NAMES), dtype=np.float32)[CLASS_NAMES.index("happy")] * 0.55 + 0.45 / 7
    sad = np.eye(len(CLASS_NAMES), dtype=np.float32)[CLASS_NAMES.index("sad")] * 0.55 + 0.45 / 7
    frames = list(sources.sample_frames(8, faces=1))

    def labels(smoothing):
        pipeline = realtime.Pipeline(classifier, smoothing=smoothing)
        flips = iter([happy, happy, happy, sad, happy, happy, sad, happy])  # one-frame outliers
        pipeline.classifier = lambda crops: np.stack([next(flips)] * len(crops))
        return [pipeline.process(frame).faces[0].emotion for frame in frames]

    assert labels(0.0) == ["happy"] * 3 + ["sad", "happy", "happy", "sad", "happy"]
    assert labels(0.6) == ["happy"] * 8


def test_a_frame_without_faces_gives_no_faces_and_still_an_annotated_frame(pipeline):
    blank = np.full((480, 640, 3), 128, np.uint8)
    result = pipeline.process(blank)
    assert result.faces == [] and result.image.shape == blank.shape
    assert timeline.rows(result) == [{"frame": result.index, "time": 0.0}]


@pytest.mark.parametrize("frame", [np.zeros((0, 0, 3), np.uint8), np.zeros((10, 10), np.float32)])
def test_a_bad_frame_is_refused_with_a_clear_error(pipeline, frame):
    with pytest.raises(EmolibError, match="uint8 image"):
        pipeline.process(frame)


def test_bad_settings_are_refused(classifier):
    with pytest.raises(EmolibError, match="smoothing"):
        realtime.Pipeline(classifier, smoothing=1.0)
    with pytest.raises(EmolibError, match="unknown face detector"):
        realtime.Pipeline(classifier, detector="dlib")


# --------------------------------------------------------------------------- the model

def test_the_default_model_runs_its_int8_copy_unless_keras_is_asked_for():
    auto = EmotionClassifier()
    assert auto.backend == "tflite" and "int8 TFLite" in auto.note
    keras_backend = EmotionClassifier(backend="keras")
    assert keras_backend.backend == "keras"
    faces = np.full((3, 48, 48, 1), 128, np.uint8)
    assert auto(faces).shape == keras_backend(faces).shape == (3, 7)
    assert realtime.Pipeline(auto).note == auto.note


@pytest.mark.slow
def test_a_model_without_an_int8_copy_runs_in_keras_and_backends_are_checked(model_file, tmp_path):
    from emolib import export, models

    assert EmotionClassifier(str(model_file)).backend == "keras"
    with pytest.raises(EmolibError, match="no int8 TFLite copy of tiny.keras"):
        EmotionClassifier(str(model_file), backend="tflite")
    with pytest.raises(EmolibError, match="unknown backend"):
        EmotionClassifier(str(model_file), backend="onnx")
    # an int8 copy written beside a model is picked up, and a .tflite path runs directly
    copy = tmp_path / "tiny.keras"
    copy.write_bytes(model_file.read_bytes())
    faces = np.random.default_rng(0).integers(0, 256, (20, 48, 48, 1)).astype(np.uint8)
    lite = export.to_tflite(models.load_model(copy), export.int8_companion(copy),
                            quantization="int8", representative_images=faces)
    assert lite.name == "tiny-int8.tflite"
    assert EmotionClassifier(str(copy)).backend == "tflite"
    direct = EmotionClassifier(str(lite))
    assert direct.backend == "tflite" and direct(faces[:2]).shape == (2, 7)


def test_default_model_falls_back_to_the_newest_trained_run(tmp_path, monkeypatch):
    from emolib import models, paths

    monkeypatch.setattr(models, "DEFAULT_MODEL", tmp_path / "missing" / "emonet.keras")
    with pytest.raises(EmolibError, match="no model: .*train one with notebook 02"):
        resolve_model_path("")
    runs = paths.outputs_dir("runs")
    for name, age in (("old-emonet", 100), ("new-emonet", 0)):
        (runs / name).mkdir()
        (runs / name / "model.keras").write_bytes(b"x")
        os.utime(runs / name / "model.keras", (1e9 - age, 1e9 - age))
    path, note = resolve_model_path("")
    assert path.parent.name == "new-emonet" and "newest trained run" in note
    with pytest.raises(EmolibError, match="no such model file"):
        resolve_model_path(tmp_path / "nope.keras")


# --------------------------------------------------------------------------- sources

def test_record_writes_an_annotated_mp4_and_a_per_frame_csv(pipeline, tmp_path):
    import pandas as pd

    pipeline.process(next(sources.sample_frames(1)))  # a used pipeline: record starts afresh
    summary = video.record("sample", pipeline=pipeline, output_dir=tmp_path, max_frames=10)
    assert summary["kind"] == "sample" and "generated sample video" in summary["source"]
    assert summary["frames"] == 10 and summary["frames_with_faces"] == 10
    frames = read_video_frames(summary["video"])
    assert len(frames) == 10 and frames[0].shape == (480, 640, 3)
    table = pd.read_csv(summary["csv"])
    assert list(table.columns) == list(timeline.COLUMNS)
    assert table["frame"].tolist() == list(range(10)) and set(table["track"]) == {1}
    assert set(table["label"]) <= set(CLASS_NAMES) and summary["tracks"] == 1
    assert np.allclose(table[list(CLASS_NAMES)].sum(axis=1), 1, atol=1e-2)


def test_record_writes_a_gif_and_defaults_to_outputs_webcam(pipeline):
    from emolib import paths

    summary = video.record("sample", pipeline=pipeline, video_name="annotated.gif", max_frames=4)
    assert summary["video"] == str(paths.outputs_dir("webcam") / "annotated.gif")
    import imageio.v3 as iio

    assert iio.imread(summary["video"], index=None).shape[0] == 4


def test_a_video_file_source_gives_its_frames(clip):
    source = sources.open_source(clip)
    assert source.kind == "video" and "640x480" in source.description
    assert len(list(source)) == 12


def test_an_image_folder_skips_unreadable_files_and_says_so(tmp_path):
    import cv2

    frames = list(sources.sample_frames(2))
    for index, frame in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"{index}.png"), frame)
    (tmp_path / "2.jpg").write_bytes(b"not a jpeg")
    source = sources.open_source(tmp_path)
    assert source.kind == "images" and len(list(source)) == 2
    assert any("2.jpg" in note for note in source.notes)


@pytest.mark.parametrize("content, message", [
    (b"\x00\x00\x00\x18ftypmp42" + bytes(300), "cannot be read as a video"),
    (b"", "cannot be read as a video"),
])
def test_a_broken_video_file_gives_a_clear_error(tmp_path, content, message):
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    with pytest.raises(EmolibError, match=message):
        sources.open_source(path)


def test_missing_and_empty_sources_give_clear_errors(tmp_path):
    with pytest.raises(EmolibError, match="no such file or folder"):
        sources.open_source(tmp_path / "nothing.mp4")
    with pytest.raises(EmolibError, match="no images"):
        sources.open_source(tmp_path)


def test_without_a_camera_the_source_falls_back_and_says_why(monkeypatch):
    monkeypatch.setattr(sources, "kernel_camera_available", lambda index=0: False)

    def no_data(data_source=None, **kwargs):
        raise DataNotFoundError("FER-2013 not found")

    monkeypatch.setattr(sources, "fer2013_source", no_data)
    source = sources.open_source("camera")
    assert source.kind == "sample"
    assert source.notes[0].startswith("no camera 0") and "FER-2013 not found" in source.notes[1]
    assert sources.open_source("").kind == "sample"
    with pytest.raises(EmolibError, match="no camera 0"):
        sources.open_source("camera", fallback=False)


def test_fer2013_montage_tiles_faces_and_holds_each_for_some_frames():
    faces = np.stack([np.full((48, 48), 20 * i, np.uint8) for i in range(12)])
    frames = list(sources.fer2013_frames(faces, grid=(3, 2), hold=3))
    assert len(frames) == 6 and frames[0].shape == (480, 640, 3)
    assert np.array_equal(frames[0], frames[2]) and not np.array_equal(frames[2], frames[3])
    assert frames[0][120, 106, 0] == 0 and frames[0][360, 533, 0] == 100  # slots 0 and 5


# --------------------------------------------------------------------------- predict command

def test_predict_json_gives_one_line_per_image_and_per_video_frame(capsys, model_file, clip, tmp_path):
    import cv2

    photo = tmp_path / "face.jpg"
    cv2.imwrite(str(photo), next(sources.sample_frames(1)))
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 90, np.uint8))
    status = cli.main(["predict", str(photo), str(blank), str(clip), "--model", str(model_file),
                       "--json", "--max-frames", "5"])
    assert status == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2 + 5
    assert lines[0]["path"] == str(photo) and "frame" not in lines[0]
    (face,) = lines[0]["faces"]
    assert face["track"] == 1 and len(face["box"]) == 4 and face["emotion"] in CLASS_NAMES
    assert list(face["probabilities"]) == list(CLASS_NAMES)
    assert lines[1]["faces"] == []
    assert [line["frame"] for line in lines[2:]] == list(range(5))
    assert [line["time"] for line in lines[2:]] == [0.0, 0.1, 0.2, 0.3, 0.4]  # the clip is 10 fps
    assert all(len(line["faces"]) == 3 for line in lines[2:])
    assert all(sorted(face["track"] for face in line["faces"]) == [1, 2, 3] for line in lines[2:])


def test_predict_text_output_names_the_faces(capsys, model_file, clip):
    assert cli.main(["predict", str(clip), "--model", str(model_file), "--max-frames", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].startswith(f"{clip} frame 0: ") and "% at [" in out[0]
    # each face: its label as drawn on its box (Face.label), then the box
    assert re.search(rf": #1 ({'|'.join(CLASS_NAMES)}) \d+% at \[\d+, \d+, \d+, \d+\]", out[0]), out[0]


def test_a_face_label_is_its_track_emotion_and_confidence():
    probabilities = np.array([0.05, 0.0, 0.03, 0.87, 0.05, 0.0, 0.0], np.float32)
    face = realtime.Face(box=(1, 2, 3, 4), probabilities=probabilities, raw=probabilities,
                         track_id=3)
    assert face.label == "#3 happy 87%"


@pytest.mark.parametrize("name, content, message", [
    ("missing.jpg", None, "no such file"),
    ("notes.txt", b"hello", "neither an image nor a readable video"),
    ("broken.mp4", b"\x00" * 100, "cannot be read as a video"),
    ("broken.jpg", b"\xff\xd8\xff\x00garbage", "not a readable image"),
])
def test_predict_bad_input_exits_2_with_one_line(capsys, model_file, tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    assert cli.main(["predict", str(path), "--model", str(model_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1


def test_predict_refuses_a_folder_and_a_negative_max_frames_in_one_line(capsys, clip, tmp_path):
    assert cli.main(["predict", str(tmp_path), "--model", "never-loaded.keras"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {tmp_path}: is a folder; pass the image or video files in it (e.g. {tmp_path}/*.jpg)"
    with pytest.raises(SystemExit) as exit_info:  # -1 used to stop after one frame
        cli.main(["predict", str(clip), "--max-frames", "-1"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err == (
        "error: argument --max-frames: -1 is negative; use 0 (all) or a positive count; "
        "see python -m emolib predict --help\n")  # one line, not argparse's usage block


def test_predict_with_an_unreadable_model_exits_2(capsys, clip, tmp_path):
    bad_model = tmp_path / "model.keras"
    bad_model.write_text("not a model")
    assert cli.main(["predict", str(clip), "--model", str(bad_model)]) == 2
    assert "cannot be loaded as a Keras model" in capsys.readouterr().err


# --------------------------------------------------------------------------- cuts, jumps, tracks

#: Measured on the 300 PublicTest faces of the crop test below with the shipped model
#: (two-stage EmoNet, int8 copy): 83.5% agreement (80.1% with the old 0.1 margin), 68.6% found.
MEASURED_AGREEMENT, MEASURED_DETECTED = 0.835, 0.686

@pytest.fixture(scope="module")
def cut_clip():
    """150 frames of real face photographs (scikit-image) cutting to a new person every 3-8
    frames, jumping mid-shot, a quarter of the cuts in the same place on the same background."""
    return footage.cut_clip(footage.photo_faces(40), frames=150, seed=3)


@pytest.mark.slow
def test_on_cuts_and_jumps_a_face_is_reported_wherever_scanning_every_frame_finds_one(
        classifier, cut_clip):
    def run(**settings):
        pipeline = realtime.Pipeline(classifier, smoothing=0.0, annotate=False, **settings)
        return footage.score_clip(cut_clip, [pipeline.process(f) for f in cut_clip.frames]), pipeline

    tracked, pipeline = run()
    every_frame, _ = run(detect_every=1)
    assert every_frame["frames_found"] >= 0.8 * len(cut_clip.frames)  # the clip is a fair test
    assert tracked["frames_with_face"] >= 0.99 * every_frame["frames_with_face"]
    assert tracked["frames_found"] >= 0.99 * every_frame["frames_found"]
    assert tracked["tracks_across_cuts"] == 0
    # and the tracking still pays: steady footage is scanned on a schedule only
    pipeline.reset()
    results = [pipeline.process(frame) for frame in sources.sample_frames(20)]
    assert sum(result.full_scan for result in results) == 2  # frames 0 and 10


def test_a_new_person_in_the_same_place_starts_a_new_track(classifier):
    clip = footage.cut_clip(footage.photo_faces(20), frames=60, hold=(6, 6), jump=0.0,
                            same_place=1.0, seed=1)
    pipeline = realtime.Pipeline(classifier, annotate=False)
    results = [pipeline.process(frame) for frame in clip.frames]
    assert not any(result.scene_change for result in results[1:])  # only the face changes
    score = footage.score_clip(clip, results)
    assert score["frames_found"] >= 50 and score["tracks_across_cuts"] == 0
    assert score["tracks"] >= len(set(clip.persons)) - 1


def test_a_cut_ends_every_track_and_smoothing_never_crosses_tracks(classifier, cut_clip):
    happy, sad = (np.eye(len(CLASS_NAMES), dtype=np.float32)[CLASS_NAMES.index(name)] * 0.9 + 0.1 / 7
                  for name in ("happy", "sad"))
    pipeline = realtime.Pipeline(classifier, smoothing=0.9, annotate=False)
    person = {}
    pipeline.classifier = lambda crops: np.tile((happy, sad)[person["now"] % 2], (len(crops), 1))
    first_seen = {}
    for frame, box, now in zip(cut_clip.frames, cut_clip.boxes, cut_clip.persons):
        person["now"] = now
        result = pipeline.process(frame)
        face = footage.matching_face(result.faces, box)
        if face is None:
            continue
        assert face.emotion == ("happy", "sad")[now % 2]  # 0.9 smoothing across people would lag
        if face.track_id not in first_seen:
            first_seen[face.track_id] = now
            assert np.allclose(face.probabilities, face.raw)  # a new track starts from its own frame
        assert first_seen[face.track_id] == now
    assert len(first_seen) >= len(set(cut_clip.persons)) * 0.8


def test_scene_change_flags_cuts_and_not_steady_footage():
    from emolib import tracking

    change = tracking.SceneChange()
    steady = [change(frame[..., 0]) for frame in sources.sample_frames(30)]
    assert not any(steady)
    assert change(np.full((480, 640), 250, np.uint8))  # a cut to a bright shot
    change.reset()
    assert not change(np.zeros((480, 640), np.uint8))  # the first frame of a video is no cut


@pytest.mark.data
def test_the_pipeline_crop_looks_like_fer2013s_own(fer2013_path):
    """300 PublicTest faces placed into 640x480 frames at 96, 144 and 192 px: the pipeline's
    crop (Haar box + margin -> 48x48) must give the label the shipped model gives the raw face
    as often as measured (MEASURED_AGREEMENT, less 3 points), and more often than the old 0.1
    margin. All PublicTest: 83.4% vs 78.9% (benchmarks/crop_geometry.py)."""
    from emolib import datasets

    faces, labels = datasets.load(fer2013_path, progress=False).split("val")
    chosen = np.sort(np.random.default_rng(0).choice(len(faces), 300, replace=False))
    pipeline = realtime.Pipeline(smoothing=0.0, annotate=False)
    report = footage.crop_agreement(pipeline, faces[chosen], labels[chosen],
                                    margins=(pipeline.margin, 0.1))
    assert report["detected"] >= MEASURED_DETECTED - 0.03
    agreement = report["by_margin"][pipeline.margin]["agreement"]
    assert agreement >= MEASURED_AGREEMENT - 0.03
    assert agreement > report["by_margin"][0.1]["agreement"]


# --------------------------------------------------------------------------- timelines

def test_the_timeline_table_has_a_row_per_face_per_frame_and_a_chart_per_track(classifier, clip):
    import matplotlib

    matplotlib.use("Agg")
    pipeline = realtime.Pipeline(classifier, smoothing=0.0, annotate=False)
    table = timeline.analyze_video(clip, pipeline=pipeline, max_frames=8)
    assert list(table.columns) == list(timeline.COLUMNS)
    assert len(table) == 8 * 3 and sorted(table["track"].unique()) == [1, 2, 3]
    assert table["time"].max() == pytest.approx(0.7)  # frame 7 of a 10 fps clip
    assert np.allclose(table[list(CLASS_NAMES)].sum(axis=1), 1, atol=1e-2)
    assert (table["label"] == table[list(CLASS_NAMES)].idxmax(axis=1)).all()
    figure = timeline.plot_timeline(table, max_tracks=2)
    assert len(figure.axes) == 1 + 2
    blank = timeline.analyze_video(sources.FrameSource(
        "images", "blank", 2.0, lambda: iter([np.full((240, 320, 3), 90, np.uint8)] * 2)), model=classifier)
    assert blank["frame"].tolist() == [0, 1] and blank["track"].isna().all()
    with pytest.raises(EmolibError, match="no faces to chart"):
        timeline.plot_timeline(blank)


def test_predict_csv_writes_the_timeline_table_with_each_path(capsys, model_file, clip, tmp_path):
    import cv2

    photo = tmp_path / "face.jpg"
    cv2.imwrite(str(photo), next(sources.sample_frames(1)))
    target = tmp_path / "faces.csv"
    assert cli.main(["predict", str(clip), str(photo), "--model", str(model_file),
                     "--max-frames", "4", "--csv", str(target)]) == 0
    table = timeline.read_table(target)
    assert list(table.columns) == ["path", *timeline.COLUMNS]
    assert table["path"].tolist() == [str(clip)] * 12 + [str(photo)]
    assert table.loc[table["path"] == str(clip), "track"].value_counts().to_dict() == {1: 4, 2: 4, 3: 4}
    assert len(capsys.readouterr().out.splitlines()) == 4 + 1  # the text lines as well
    assert cli.main(["predict", str(clip), "--model", str(model_file), "--csv",
                     str(tmp_path / "missing" / "x.csv")]) == 2


def three_output_model():
    import keras

    return keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(3, activation="softmax")], name="three")


def test_predict_refuses_a_model_that_does_not_return_7_probabilities_like_evaluate(
        capsys, clip, tmp_path, kaggle_folder):
    from emolib import export

    keras_file = tmp_path / "three.keras"
    three_output_model().save(keras_file)
    lite_file = export.to_tflite(three_output_model(), tmp_path / "three.tflite",
                                 quantization="float32")
    for model in (keras_file, lite_file):
        assert cli.main(["predict", str(clip), "--model", str(model), "--json"]) == 2
        out, err = capsys.readouterr()
        assert out == "" and len(err.strip().splitlines()) == 1
        assert err.strip().startswith(f"error: {model}: ")
        assert "returns (3,); emolib models take 48x48x1 pixels and return 7 probabilities" in err
        assert cli.main(["evaluate", str(model), "--data", str(kaggle_folder), "--no-latency"]) == 2
        assert capsys.readouterr().err == err  # the same line as evaluate's


# --------------------------------------------------------------------------- widgets

@pytest.fixture
def demo(model_file):
    from emolib import camera

    return camera.WebcamDemo(model_path=str(model_file))


def jpeg(frame):
    import cv2

    return memoryview(cv2.imencode(".jpg", frame)[1].tobytes())


def test_browser_frames_are_shown_and_every_frame_is_acknowledged(demo):
    sent = []
    browser = demo.browser_camera
    browser.send = lambda content, buffers=None: sent.append(content)
    demo.start()
    assert browser.running and demo.stop_button.disabled is False
    placeholder = demo.image.value
    frame = next(sources.sample_frames(1))
    browser._on_custom_message(browser, {"type": "frame", "id": 1}, [jpeg(frame)])
    browser._on_custom_message(browser, {"type": "frame", "id": 2}, [memoryview(b"garbage")])
    browser._on_custom_message(browser, {"type": "frame", "id": 3},
                               [jpeg(np.full((480, 640, 3), 90, np.uint8))])
    assert sent == [{"type": "ack", "id": 1}, {"type": "ack", "id": 2}, {"type": "ack", "id": 3}]
    assert demo.frames_shown == 2 and demo.image.value != placeholder
    assert "no face in view" in demo.status.value and "frames shown: 2" in demo.status.value
    assert any("could not be decoded" in output["text"] for output in demo.log.outputs)
    demo.stop()
    assert not browser.running and demo.start_button.disabled is False


def test_camera_errors_are_shown_and_the_demo_can_start_again(demo, monkeypatch):
    browser = demo.browser_camera
    demo.start()
    browser._on_custom_message(browser, {"type": "error", "message": "camera permission denied: "
                                         "allow the camera"}, [])
    browser.running = False  # what the browser does after an error
    assert "camera permission denied" in demo.status.value
    assert demo.start_button.disabled is False and demo.stop_button.disabled is True
    monkeypatch.setattr(sources, "kernel_camera_available", lambda index=0: False)
    demo.camera_choice.value = "kernel"
    demo.start()
    assert "no camera on the kernel" in demo.status.value
    assert demo.start_button.disabled is False and not demo.running


def test_the_kernel_camera_runs_in_a_thread_and_stop_ends_it(demo, monkeypatch):
    import time

    import cv2

    class FakeCapture:
        def __init__(self, index):
            self.frames = sources.sample_frames(10_000)

        def isOpened(self):
            return True

        def read(self):
            time.sleep(0.01)
            return True, next(self.frames)

        def release(self):
            pass

    monkeypatch.setattr(sources, "kernel_camera_available", lambda index=0: True)
    monkeypatch.setattr(cv2, "VideoCapture", FakeCapture)
    demo.camera_choice.value = "kernel"
    demo.start()  # returns at once: the loop runs in a thread, so the Stop button still works
    deadline = time.monotonic() + 20
    while demo.frames_shown < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert demo.frames_shown >= 3 and demo.running
    assert "kernel camera" in demo.status.value and "1 face" in demo.status.value
    demo.stop()
    assert not demo.running and demo.start_button.disabled is False
    shown = demo.frames_shown
    time.sleep(0.2)
    assert demo.frames_shown == shown


def test_probability_bars_mark_the_top_emotion():
    from emolib import camera

    probabilities = np.array([0.05, 0.05, 0.05, 0.6, 0.1, 0.1, 0.05])
    bars = camera.probability_bars(probabilities, "happy (60%)")
    assert bars.count("class='emolib-bar'") == 7 and "width:60.0%" in bars
    assert "no face in view" in camera.probability_bars(None)


def test_the_frame_and_its_bars_reach_the_browser_in_one_update(demo):
    """Issue 18: the label on the frame said 60% while the bars said 51%. As two widgets the bars
    were drawn at once and the frame a JPEG decode later (the next frame's bars beside this
    frame's label); now both travel in one message and the page swaps them together."""
    updates = []
    demo.image.send_state = lambda key=None: updates.append(set(key) if key else None)
    frames = list(sources.sample_frames(3))
    demo.start()
    for count, frame in enumerate(frames, 1):
        before = demo.image.bars
        demo.process_frame(frame)
        (face,) = demo.last_result.faces
        bars = demo.image.bars
        # one message per frame with the frame, its bars (unless unchanged) and the counter
        assert len(updates) == count
        assert updates[-1] == ({"value", "frame"} | ({"bars"} if bars != before else set()))
        # titled with the label drawn on the box, and the label's emotion bar shows its number
        assert f"#{face.track_id} {face.emotion} {face.confidence:.0%}" in bars
        row = re.search(rf"data-emotion='{face.emotion}'.*?(\d+)%</span></div>", bars)
        assert row and f"{row.group(1)}%" == f"{face.confidence:.0%}", bars
    assert demo.image.frame == len(frames)
    demo.stop()  # the frozen frame is redrawn without frames/s; its bars stay
    assert updates[-1] == {"value", "frame"} and demo.image.bars == bars


def test_a_followed_box_keeps_the_scans_size_and_takes_the_new_centre():
    from emolib.tracking import steady_box

    previous = np.array([100, 80, 60, 60])
    moved = steady_box(np.array([108, 84, 52, 52]), previous)  # centre (134, 110), smaller box
    assert moved.tolist() == [104, 80, 60, 60]  # same size, new centre
    assert steady_box(np.array([101, 80, 60, 60]), previous, still=0.05).tolist() == previous.tolist()
