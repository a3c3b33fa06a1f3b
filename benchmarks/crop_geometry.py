"""Crop geometry: does the pipeline's crop (detector box + margin -> 48x48) look like FER-2013's?

Places FER-2013 faces (PublicTest by default: choose settings on it, never on PrivateTest) into
640x480 frames at several sizes and random places, runs the real-time pipeline's full-frame scan
on each, crops the face it finds with each margin, and compares the labels with the model's on
the raw 48x48 faces (agreement), and with the true labels (accuracy):

    .venv/bin/python benchmarks/crop_geometry.py                       # all PublicTest faces
    .venv/bin/python benchmarks/crop_geometry.py --max-faces 1000 --detect-width 480

Then, as a proxy for real footage, scikit-image's astronaut photo (a real face) placed at four
sizes and places under five lights (``footage.photo_robustness``): how often the pipeline finds
the face and gives it the label it gives the whole photo.

Results are printed and written to ``outputs/benchmarks/crop_geometry.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="FER-2013 (default: $EMOLIB_DATA, then data/)")
    parser.add_argument("--split", default="val", choices=("val", "test"),
                        help="val = PublicTest (default; choose settings here), test = PrivateTest")
    parser.add_argument("--max-faces", type=int, default=0, help="a seeded random subset (0 = all)")
    parser.add_argument("--sides", type=int, nargs="+", default=[96, 144, 192],
                        help="face sizes in the 640x480 frame, pixels")
    parser.add_argument("--margins", type=float, nargs="+",
                        default=[-0.05, 0.0, 0.05, 0.1, 0.15, 0.2])
    parser.add_argument("--detect-width", type=int, default=None,
                        help="the pipeline's detect_width (default: the pipeline's default)")
    parser.add_argument("--scale-factor", type=float, default=None,
                        help="the Haar scan's scale factor (default: the pipeline's default)")
    parser.add_argument("--model", default="", help="default: the shipped model")
    parser.add_argument("--out", default="crop_geometry.json", help="file in outputs/benchmarks")
    args = parser.parse_args(argv)

    import numpy as np

    from emolib import datasets, footage, paths, realtime

    faces, labels = datasets.load(args.data, progress=False).split(args.split)
    if args.max_faces and args.max_faces < len(faces):
        chosen = np.sort(np.random.default_rng(0).choice(len(faces), args.max_faces, replace=False))
        faces, labels = faces[chosen], labels[chosen]
    settings = {name: value for name, value in (("detect_width", args.detect_width),
                                                 ("scale_factor", args.scale_factor))
                if value is not None}
    pipeline = realtime.Pipeline(args.model, smoothing=0.0, annotate=False, **settings)
    print(f"{pipeline.note}; {len(faces)} {args.split} faces x sides {args.sides}; "
          f"settings {settings or 'default'}, margin {pipeline.margin}", flush=True)
    start = time.process_time()
    report = footage.crop_agreement(pipeline, faces, labels, sides=tuple(args.sides),
                                    margins=tuple(args.margins))
    report.update(split=args.split, settings=settings, model=pipeline.note,
                  pipeline_margin=pipeline.margin,
                  cpu_seconds=round(time.process_time() - start, 1))
    print(f"found {report['detected']:.1%} of the placed faces "
          + ", ".join(f"{side} px {rate:.1%}" for side, rate in report["detected_by_side"].items()))
    print(f"model on the raw faces: accuracy {report['raw_accuracy']:.2%} "
          f"({report['raw_accuracy_found']:.2%} on the faces the pipeline found)")
    print(f"{'margin':>7} {'agreement':>10} {'accuracy (found)':>17} {'accuracy (all)':>15}  agreement by side")
    for margin, row in report["by_margin"].items():
        print(f"{margin:>7.2f} {row['agreement']:>10.2%} {row['accuracy_found']:>17.2%} "
              f"{row['accuracy']:>15.2%}  " + " ".join(f"{value:.1%}" for value in
                                                     row["agreement_by_side"].values()))
    photos = report["real_photo"] = footage.photo_robustness(pipeline)
    print(f"real photo (scikit-image astronaut, labelled {photos['photo_label']} whole), found and "
          "same label per light: " + ", ".join(
              f"{light} {row['found']}/{row['placed']} {row['same_label']}/{row['placed']}"
              for light, row in photos.items() if light != "photo_label"))
    target = paths.outputs_dir("benchmarks") / args.out
    target.write_text(json.dumps(report, indent=1, default=str))
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
