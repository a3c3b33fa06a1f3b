"""Frames per second of emolib's real-time pipeline on 640x480 frames with one and three faces,
side by side with the ``fer`` package's ``FER(mtcnn=False).detect_emotions`` on the same frames.

    .venv/bin/python benchmarks/bench_realtime.py                 # default model, 200 frames
    .venv/bin/python benchmarks/bench_realtime.py --frames 100 --model outputs/runs/x/model.keras

emolib's figure is end to end: face detection, crops, one batched classification, smoothing and
the annotated frame. ``fer`` is optional and only for this comparison: install it in the
benchmark environment with ``pip install --no-deps fer`` (it needs OpenCV 4.x, which emolib
pins); without it the fer column is skipped with a message. Results are printed and written to
``outputs/benchmarks/realtime.json``. Frames are generated from the bundled sample face
(``realtime.sample_frames``) on a textured background, so every run sees the same pixels.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def time_frames(process, frames, warmup: int = 10) -> tuple[float, float]:
    """(frames per second, mean faces found per frame) of ``process`` over ``frames``."""
    for frame in frames[:warmup]:
        process(frame)
    found = 0
    start = time.perf_counter()
    for frame in frames:
        found += process(frame)
    elapsed = time.perf_counter() - start
    return len(frames) / elapsed, found / len(frames)


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

    from emolib import models, paths, realtime
    from emolib.errors import EmolibError

    try:
        model_path, note = realtime.resolve_model_path(args.model)
        model = str(model_path)
    except EmolibError as error:
        if args.model:
            raise SystemExit(f"error: {error}")
        model, note = models.build_emonet(), "model: an untrained EmoNet (no trained model found; same speed)"
    print(note)
    classifier = realtime.EmotionClassifier(model)
    cases = {faces: list(realtime.sample_frames(args.frames, faces=faces)) for faces in (1, 3)}
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"{os.cpu_count()} CPUs, load average {load[0]:.1f} at the start" if load else "")

    fer_detector, fer_note = (None, "skipped (--no-fer)") if args.no_fer else load_fer()
    if fer_note:
        print(fer_note)

    rows = []
    for faces, frames in cases.items():
        row = {"faces": faces, "frames": len(frames), "size": "640x480"}
        for name, detect_every in (("emolib", 5), ("emolib_scan_every_frame", 1)):
            pipeline = realtime.Pipeline(classifier, detect_every=detect_every)
            fps, found = time_frames(lambda f: len(pipeline.process(f).faces), frames)
            row[f"{name}_fps"], row[f"{name}_faces"] = round(fps, 1), round(found, 2)
        if fer_detector is not None:
            fps, found = time_frames(lambda f: len(fer_detector.detect_emotions(f)), frames)
            row["fer_fps"], row["fer_faces"] = round(fps, 1), round(found, 2)
            row["speedup_vs_fer"] = round(row["emolib_fps"] / fps, 2)
        rows.append(row)

    header = f"{'faces':>5} {'emolib fps':>11} {'(scan every frame)':>19} {'fer fps':>8} {'speedup':>8}"
    print(header)
    for row in rows:
        print(f"{row['faces']:>5} {row['emolib_fps']:>11} {row['emolib_scan_every_frame_fps']:>19} "
              f"{row.get('fer_fps', '-'):>8} {row.get('speedup_vs_fer', '-'):>8}"
              f"   faces found per frame: emolib {row['emolib_faces']}"
              + (f", fer {row['fer_faces']}" if "fer_faces" in row else ""))
    report = {"model": note, "cpus": os.cpu_count(), "load_average_at_start": load,
              "python": sys.version.split()[0], "machine": platform.machine(), "fer": fer_note or "ok",
              "rows": rows}
    target = paths.outputs_dir("benchmarks") / "realtime.json"
    target.write_text(json.dumps(report, indent=1))
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
