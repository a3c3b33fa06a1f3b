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
    args = parser.parse_args(argv)

    from emolib import explain, models, paths, realtime, sources
    from emolib.errors import EmolibError

    try:
        model_path, note = realtime.resolve_model_path(args.model)
        model = str(model_path)
    except EmolibError as error:
        if args.model:
            raise SystemExit(f"error: {error}")
        model, note = models.build_emonet(), "model: an untrained EmoNet (no trained model found; same speed)"
    print(note)
    classifiers = {"auto": realtime.EmotionClassifier(model)}
    print(classifiers["auto"].note, f"[backend {classifiers['auto'].backend}]")
    if classifiers["auto"].backend != "keras":
        classifiers["keras"] = realtime.EmotionClassifier(model, backend="keras")
    cases = {faces: list(sources.sample_frames(args.frames, faces=faces)) for faces in (1, 3)}
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"{os.cpu_count()} CPUs, load average {load[0]:.1f} at the start" if load else "")

    fer_detector, fer_note = (None, "skipped (--no-fer)") if args.no_fer else load_fer()
    if fer_note:
        print(fer_note)

    rows = []
    for faces, frames in cases.items():
        row = {"faces": faces, "frames": len(frames), "size": "640x480"}
        variants = [("emolib", "auto", 5), ("emolib_keras", "keras", 5),
                    ("emolib_scan_every_frame", "auto", 1)]
        for name, backend, detect_every in variants:
            if backend not in classifiers:
                continue
            pipeline = realtime.Pipeline(classifiers[backend], detect_every=detect_every)
            fps, cpu_fps, found = time_frames(lambda f: len(pipeline.process(f).faces), frames)
            row[f"{name}_fps"], row[f"{name}_fps_per_cpu_second"] = round(fps, 1), round(cpu_fps, 1)
            row[f"{name}_faces"] = round(found, 2)
        # the webcam demo's Heatmap toggle: Grad-CAM of the Keras model for every face, drawn
        pipeline = realtime.Pipeline(classifiers["auto"], annotate=False)
        explainer = explain.Explainer(pipeline)

        def with_heatmaps(frame):
            result = pipeline.process(frame)
            explain.explain_frame(frame, result.faces, explainer, margin=pipeline.margin,
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
    report = {"model": note, "backend": classifiers["auto"].backend, "cpus": os.cpu_count(), "load_average_at_start": load,
              "python": sys.version.split()[0], "machine": platform.machine(), "fer": fer_note or "ok",
              "rows": rows}
    target = paths.outputs_dir("benchmarks") / "realtime.json"
    target.write_text(json.dumps(report, indent=1))
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
