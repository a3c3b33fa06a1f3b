"""Frames per second of emolib's real-time pipeline on 640x480 frames with one and three faces,
side by side with the ``fer`` package's ``FER(mtcnn=False).detect_emotions`` on the same frames.

    .venv/bin/python benchmarks/bench_realtime.py                 # default model, 200 frames
    .venv/bin/python benchmarks/bench_realtime.py --frames 100 --model outputs/runs/x/model.keras

The default backend runs the int8 TFLite copy that ships beside the default model; the
``keras`` column runs the same model through TensorFlow, for comparison; the ``heatmap`` column
adds the webcam demo's Heatmap toggle (Grad-CAM of the Keras model per face, blended and drawn).

emolib's figure is end to end: face detection, crops, one batched classification, smoothing and
the annotated frame. ``fer`` is optional and only for this comparison: install it in the
benchmark environment with ``pip install --no-deps fer`` (it needs OpenCV 4.x, which emolib
pins); without it the fer column is skipped with a message. Results are printed and written to
``outputs/benchmarks/realtime.json``. Frames are generated from the bundled sample face
(``sources.sample_frames``) on a textured background, so every run sees the same pixels.

The cut/jump scenario (``--scenarios cut``) is footage a tracker finds hard: ``footage.cut_clip``
of FER-2013 PrivateTest faces (when the data is found) and of scikit-image's real face photos,
scaled up, drifting, jumping and cutting to a new person every 3-8 frames (a quarter of the cuts
in the same place). Per pipeline: frames with a face (and the share of what scanning every frame
finds), frames where the true face was found, per-frame accuracy against the FER labels, tracks
that cross a cut, and frames/s; ``independent`` scans and classifies every frame on its own
(``detect_every=1``, no smoothing), the reference for recall and accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def time_frames(process, frames, warmup: int = 10) -> tuple[float, float, float]:
    """(frames per wall-clock second, frames per CPU second of this process, mean faces found
    per frame) of ``process`` over ``frames``.

    The CPU-second figure counts the CPU time of all this process's threads, so it is what an
    otherwise idle machine would give without parallel speed-up: a fair figure when other jobs
    share the cores (the wall-clock one then depends on their load).
    """
    for frame in frames[:warmup]:
        process(frame)
    found = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for frame in frames:
        found += process(frame)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return len(frames) / elapsed, len(frames) / cpu, found / len(frames)


def load_fer():
    """``FER(mtcnn=False)`` or a sentence saying why it is not available."""
    try:
        try:
            from fer import FER
        except ImportError:
            from fer.fer import FER  # fer >= 25 no longer re-exports it
    except Exception as error:  # ImportError, or a broken install (missing deps, OpenCV 5)
        return None, (f"fer not available ({type(error).__name__}: {error}); for the comparison: "
                      "pip install --no-deps fer (benchmark environment only)")
    return FER(mtcnn=False), ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=200, help="timed frames per case")
    parser.add_argument("--model", default="", help="a .keras model (default: the shipped one, "
                        "else the newest outputs/runs/*/model.keras, else an untrained EmoNet)")
    parser.add_argument("--no-fer", action="store_true", help="skip the fer package")
    parser.add_argument("--scenarios", nargs="+", default=["steady", "cut"],
                        choices=("steady", "cut"), help="steady footage, cut/jump footage or both")
    parser.add_argument("--cut-frames", type=int, default=600, help="frames per cut/jump clip")
    parser.add_argument("--data", default=None,
                        help="FER-2013 for the cut/jump clip (default: $EMOLIB_DATA, then data/)")
    args = parser.parse_args(argv)

    from emolib import annotation, classifier, explain, models, paths, realtime, sources
    from emolib.errors import EmolibError

    try:
        model_path, note = classifier.resolve_model_path(args.model)
        model = str(model_path)
    except EmolibError as error:
        if args.model:
            raise SystemExit(f"error: {error}")
        model, note = models.build_emonet(), "model: an untrained EmoNet (no trained model found; same speed)"
    print(note)
    classifiers = {"auto": classifier.EmotionClassifier(model)}
    print(classifiers["auto"].note, f"[backend {classifiers['auto'].backend}]")
    if classifiers["auto"].backend != "keras":
        classifiers["keras"] = classifier.EmotionClassifier(model, backend="keras")
    cases = {faces: list(sources.sample_frames(args.frames, faces=faces)) for faces in (1, 3)} \
        if "steady" in args.scenarios else {}
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"{os.cpu_count()} CPUs, load average {load[0]:.1f} at the start" if load else "")

    fer_detector, fer_note = (None, "skipped (--no-fer)") if args.no_fer else load_fer()
    if fer_note:
        print(fer_note)

    rows = []
    for faces, frames in cases.items():
        row = {"faces": faces, "frames": len(frames), "size": "640x480"}
        # the pipeline's own defaults (full scan on a schedule, on a lost face or a cut), and
        # scanning every frame, the reference the tracking is measured against
        variants = [("emolib", "auto", {}), ("emolib_keras", "keras", {}),
                    ("emolib_scan_every_frame", "auto", {"detect_every": 1})]
        for name, backend, settings in variants:
            if backend not in classifiers:
                continue
            pipeline = realtime.Pipeline(classifiers[backend], **settings)
            fps, cpu_fps, found = time_frames(lambda f: len(pipeline.process(f).faces), frames)
            row[f"{name}_fps"], row[f"{name}_fps_per_cpu_second"] = round(fps, 1), round(cpu_fps, 1)
            row[f"{name}_faces"] = round(found, 2)
        # the webcam demo's Heatmap toggle: Grad-CAM of the Keras model for every face, drawn
        pipeline = realtime.Pipeline(classifiers["auto"], annotate=False)
        explainer = explain.Explainer(pipeline)

        def with_heatmaps(frame):
            result = pipeline.process(frame)
            annotation.explain_frame(frame, result.faces, explainer, margin=pipeline.margin,
                                     fps=result.fps)
            return len(result.faces)

        fps, cpu_fps, found = time_frames(with_heatmaps, frames)
        row["emolib_heatmap_fps"] = round(fps, 1)
        row["emolib_heatmap_fps_per_cpu_second"] = round(cpu_fps, 1)
        if fer_detector is not None:
            fps, cpu_fps, found = time_frames(lambda f: len(fer_detector.detect_emotions(f)), frames)
            row["fer_fps"], row["fer_fps_per_cpu_second"] = round(fps, 1), round(cpu_fps, 1)
            row["fer_faces"] = round(found, 2)
            row["speedup_vs_fer"] = round(row["emolib_fps"] / fps, 2)
            row["speedup_vs_fer_cpu"] = round(row["emolib_fps_per_cpu_second"] / cpu_fps, 2)
        rows.append(row)

    print("frames/s (wall clock) and [frames per CPU second]; emolib = the default backend "
          f"({classifiers['auto'].backend}), keras = the .keras model through TensorFlow")
    columns = [("emolib", "emolib"), ("emolib_keras", "keras"),
               ("emolib_scan_every_frame", "scan every frame"), ("emolib_heatmap", "heatmap"),
               ("fer", "fer")]
    print(f"{'faces':>5} " + " ".join(f"{title:>17}" for _, title in columns) + f" {'speedup':>14}")
    for row in rows:
        cells = [f"{row[key + '_fps']} [{row[key + '_fps_per_cpu_second']}]" if key + "_fps" in row
                 else "-" for key, _ in columns]
        speedup = (f"{row['speedup_vs_fer']} [{row['speedup_vs_fer_cpu']}]"
                   if "speedup_vs_fer" in row else "-")
        print(f"{row['faces']:>5} " + " ".join(f"{cell:>17}" for cell in cells) + f" {speedup:>14}"
              f"   faces per frame: emolib {row['emolib_faces']}"
              + (f", fer {row['fer_faces']}" if "fer_faces" in row else ""))
    cut_rows = cut_scenario(args, classifiers["auto"], fer_detector) if "cut" in args.scenarios else []
    report = {"model": note, "backend": classifiers["auto"].backend, "cpus": os.cpu_count(), "load_average_at_start": load,
              "python": sys.version.split()[0], "machine": platform.machine(), "fer": fer_note or "ok",
              "rows": rows, "cut_rows": cut_rows}
    target = paths.outputs_dir("benchmarks") / "realtime.json"
    target.write_text(json.dumps(report, indent=1))
    print(f"wrote {target}")
    return 0


def cut_clips(args) -> dict:
    """The cut/jump clips: FER-2013 PrivateTest faces (when found) and scikit-image photos."""
    import numpy as np

    from emolib import datasets, footage
    from emolib.errors import EmolibError

    clips = {}
    try:
        faces, labels = datasets.load(args.data, progress=False).split("test")
        chosen = np.random.default_rng(1).choice(len(faces), min(600, len(faces)), replace=False)
        clips["fer2013 PrivateTest"] = footage.cut_clip(faces[chosen], labels[chosen],
                                                        frames=args.cut_frames, seed=0)
    except EmolibError as error:
        print(f"no FER-2013 clip ({error})")
    clips["scikit-image photos"] = footage.cut_clip(footage.photo_faces(100), frames=args.cut_frames,
                                                    seed=3)
    return clips


def fer_results(detector, frames) -> list:
    """``fer``'s detections as objects ``footage.score_clip`` reads (no tracks: id 0)."""
    from types import SimpleNamespace

    results = []
    for frame in frames:
        found = detector.detect_emotions(frame)
        results.append(SimpleNamespace(faces=[
            SimpleNamespace(box=tuple(int(v) for v in face["box"]), track_id=0,
                            emotion=max(face["emotions"], key=face["emotions"].get))
            for face in found]))
    return results


def cut_scenario(args, classify, fer_detector) -> list:
    """Recall, accuracy, tracks and speed on the cut/jump clips; prints a table per clip."""
    from emolib import footage, realtime, timeline

    variants = {"emolib": {"smoothing": timeline.FILE_SMOOTHING},
                "emolib_smoothing_0.6": {"smoothing": 0.6},
                "independent": {"smoothing": 0.0, "detect_every": 1}}
    rows = []
    for clip_name, clip in cut_clips(args).items():
        print(f"\ncut/jump clip: {clip_name}, {len(clip.frames)} frames, "
              f"{len(set(clip.persons.tolist()))} persons")
        scores = {}
        for name, settings in variants.items():
            pipeline = realtime.Pipeline(classify, annotate=False, **settings)
            pipeline.reset()
            start, cpu_start = time.perf_counter(), time.process_time()
            results = [pipeline.process(frame) for frame in clip.frames]
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            scores[name] = {**footage.score_clip(clip, results),
                            "full_scans": sum(result.full_scan for result in results),
                            "fps": round(len(results) / elapsed, 1),
                            "fps_per_cpu_second": round(len(results) / cpu, 1)}
        if fer_detector is not None:
            start, cpu_start = time.perf_counter(), time.process_time()
            results = fer_results(fer_detector, clip.frames)
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            scores["fer"] = {**footage.score_clip(clip, results), "tracks": None,
                             "tracks_across_cuts": None, "full_scans": len(results),
                             "fps": round(len(results) / elapsed, 1),
                             "fps_per_cpu_second": round(len(results) / cpu, 1)}
        reference = scores["independent"]
        print(f"{'':>21}{'with face':>10}{'of indep.':>10}{'true face':>10}{'accuracy':>9}"
              f"{'tracks':>7}{'across cuts':>12}{'scans':>6}{'frames/s [per CPU s]':>22}")
        for name, score in scores.items():
            score["with_face_vs_independent"] = round(
                score["frames_with_face"] / max(1, reference["frames_with_face"]), 4)
            accuracy = f"{score['accuracy']:.1%}" if score["accuracy"] is not None else "-"
            print(f"{name:>21}{score['frames_with_face']:>10}{score['with_face_vs_independent']:>10.1%}"
                  f"{score['frames_found']:>10}{accuracy:>9}{str(score['tracks']):>7}"
                  f"{str(score['tracks_across_cuts']):>12}{score['full_scans']:>6}"
                  f"{score['fps']:>13} [{score['fps_per_cpu_second']}]")
            rows.append({"clip": clip_name, "pipeline": name, **score})
    return rows


if __name__ == "__main__":
    sys.exit(main())
