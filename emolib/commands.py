"""Sub-commands for evaluating models and predicting on images and videos.

``REGISTRY`` lists functions that add a sub-parser; ``cli.build_parser`` calls each.
"""

import argparse

REGISTRY: list = []


def non_negative_int(text: str) -> int:
    """argparse type for counts where 0 means all: refuses negatives and non-integers."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; use 0 (all) or a "
                                         "positive count") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; use 0 (all) or a positive count")
    return value


def add_evaluate(commands) -> None:
    """``evaluate [MODEL ...] --data SOURCE [--split test] [--detect-faces] [--json]``."""
    evaluate = commands.add_parser(
        "evaluate", help="accuracy (95%% CI), macro-F1, per-class scores, confusion, ECE, "
        "latency and size of models on a dataset split")
    evaluate.add_argument("models", nargs="*", metavar="MODEL",
                          help="a .keras or .tflite file, a run folder or a run name in "
                          "outputs/runs (default: the shipped default model)")
    evaluate.add_argument("--data", metavar="SOURCE", help="archive.zip, fer2013.csv or a folder "
                          "with one sub-folder per class (default: $EMOLIB_DATA, then data/)")
    evaluate.add_argument("--split", default="test", choices=("train", "val", "test", "all"),
                          help="test = PrivateTest (default), val = PublicTest; all = every "
                          "image (a dataset no model was trained on)")
    evaluate.add_argument("--detect-faces", action="store_true",
                          help="find and crop the face in photos first (Haar); small images "
                          "are taken as face crops")
    evaluate.add_argument("--tta", default="none", choices=("none", "flip", "crops", "flip+crops"),
                          help="test-time augmentation (choose it on --split val, not on test)")
    evaluate.add_argument("--ensemble", action="store_true",
                          help="also score the averaged probabilities of all the models")
    evaluate.add_argument("--max-images", type=non_negative_int, default=0, metavar="N",
                          help="a seeded random subset of N images (0 = all)")
    evaluate.add_argument("--no-latency", action="store_true", help="skip the latency timing")
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")
    evaluate.set_defaults(handler=_evaluate)


def _evaluate(args) -> int:
    import json

    from emolib import comparison

    report = comparison.evaluate_report(
        args.models, data=args.data, split=args.split, detect_faces=args.detect_faces,
        tta=None if args.tta == "none" else args.tta, max_images=args.max_images,
        ensemble=args.ensemble, latency=not args.no_latency)
    print(json.dumps(report, indent=1) if args.json else comparison.format_report(report))
    return 0


REGISTRY.append(add_evaluate)


def add_predict(commands) -> None:
    """``predict PATH ... [--model M] [--backend B] [--detector haar] [--smoothing S] [--json]``."""
    predict = commands.add_parser(
        "predict", help="faces, emotions and the 7 probabilities in images or videos "
        "(the real-time pipeline of notebook 05)")
    predict.add_argument("paths", nargs="+", metavar="PATH", help="image or video files")
    predict.add_argument("--model", default="", metavar="M",
                         help="a .keras file (default: the shipped model, else the newest "
                         "outputs/runs/*/model.keras)")
    predict.add_argument("--backend", default="auto", choices=("auto", "keras", "tflite"),
                         help="auto runs a model's int8 TFLite copy when one sits beside it "
                         "(the shipped model has one); keras always runs the .keras model")
    predict.add_argument("--detector", default="haar", choices=("haar", "mtcnn"),
                         help="face detector (mtcnn needs pip install mtcnn)")
    predict.add_argument("--smoothing", type=float, default=0.6, metavar="S",
                         help="per-face smoothing over video frames, 0 (none) to <1 (default 0.6)")
    predict.add_argument("--max-frames", type=non_negative_int, default=0, metavar="N",
                         help="stop each video after N frames (0 = all)")
    predict.add_argument("--json", action="store_true",
                         help="one JSON object per line: per image, or per video frame")
    predict.add_argument("--explain", metavar="OUT.png",
                         help="also write the image with each face's Grad-CAM heatmap (where the "
                         "model looked for the emotion shown) over its box; several images: "
                         "OUT-<image name>.png")
    predict.set_defaults(handler=_predict)


def _predict(args) -> int:
    import json
    import sys
    from pathlib import Path

    from emolib import realtime
    from emolib.errors import EmolibError

    for path in args.paths:  # fail on a folder or a missing file before loading the model
        if Path(path).is_dir():
            raise EmolibError(f"{path}: is a folder; pass the image or video files in it "
                              f"(e.g. {path}/*.jpg)")
        if not Path(path).is_file():
            raise EmolibError(f"{path}: no such file; pass image or video files")
    from emolib import explain

    explain_outputs = explain.output_paths(args.paths, args.explain) if args.explain else {}
    pipeline = realtime.Pipeline(args.model, backend=args.backend, detector=args.detector,
                                 smoothing=args.smoothing)
    for path in args.paths:
        for record in realtime.predict_file(path, pipeline, max_frames=args.max_frames):
            if args.json:
                print(json.dumps(record), flush=True)
                continue
            where = f"{record['path']}" + (f" frame {record['frame']}" if "frame" in record else "")
            faces = "; ".join(f"{face['emotion']} {max(face['probabilities'].values()):.0%} "
                              f"at {face['box']}" for face in record["faces"])
            print(f"{where}: {faces or 'no face found'}", flush=True)
    for path, output in explain_outputs.items():
        explain.explain_image(path, pipeline, output)
        print(f"wrote {output}", file=sys.stderr, flush=True)
    return 0


REGISTRY.append(add_predict)
