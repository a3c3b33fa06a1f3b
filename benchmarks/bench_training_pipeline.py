"""Training throughput: emolib's tf.data pipeline vs the seed's ImageDataGenerator.

Trains the same model (the seed CNN, or EmoNet with --model emonet) for a fixed number of steps
fed by (a) ``ImageDataGenerator.flow_from_directory`` on the extracted Kaggle folder, as the seed
project did, and (b) ``emolib.training.make_dataset`` over the cached arrays, and prints
training images per second for each, and the images per second of each input pipeline alone
(no model). Run it while nothing else uses the CPU:

    python benchmarks/bench_training_pipeline.py --data ../shared/datasets/fer2013/archive.zip
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def input_images_per_second(batches, steps: int, batch_size: int) -> float:
    """Images per second of the input pipeline alone (no model), after one warm-up batch."""
    iterator = iter(batches)
    next(iterator)
    start = time.perf_counter()
    for _ in range(steps):
        next(iterator)
    return steps * batch_size / (time.perf_counter() - start)


def images_per_second(model, dataset, steps: int, batch_size: int) -> float:
    """Fit ``steps`` batches after a warm-up of 10; return training images per second."""
    model.fit(dataset, steps_per_epoch=10, epochs=1, verbose=0)  # warm-up: tracing, file cache
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="FER-2013 archive.zip (Kaggle layout)")
    parser.add_argument("--steps", type=int, default=200, help="training batches per measurement")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model", choices=("seed_cnn", "emonet"), default="seed_cnn")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    import keras
    # Keras 3 keeps the seed's ImageDataGenerator only under its legacy namespace.
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    from emolib import datasets, models, training

    def build():
        model = models.build_seed_cnn() if args.model == "seed_cnn" else models.build_emonet()
        model.compile(optimizer=training.optimizer(1e-4, schedule="constant"),
                      loss="categorical_crossentropy", metrics=["accuracy"])
        return model

    results = {"model": args.model, "batch_size": args.batch_size, "steps": args.steps,
               "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as folder:
        zipfile.ZipFile(args.data).extractall(folder)
        generator = ImageDataGenerator().flow_from_directory(
            str(Path(folder) / "train"), target_size=(48, 48), color_mode="grayscale",
            class_mode="categorical", batch_size=args.batch_size, shuffle=True, seed=0)
        assert list(generator.class_indices) == list(models.CLASS_NAMES)

        keras.utils.set_random_seed(0)
        results["input_only_image_data_generator"] = input_images_per_second(
            (generator[i % len(generator)] for i in range(10 ** 9)), args.steps, args.batch_size)
        results["image_data_generator"] = images_per_second(build(), generator, args.steps,
                                                            args.batch_size)

    data = datasets.load(args.data, progress=False)
    x_train, y_train = data.split("train")
    for augment in (False, True):
        pipeline = training.make_dataset(x_train, y_train, batch_size=args.batch_size,
                                         training=True, augment=augment).repeat()
        keras.utils.set_random_seed(0)
        key = "emolib_tf_data" + ("_augmented" if augment else "")
        results[f"input_only_{key}"] = input_images_per_second(pipeline, args.steps,
                                                               args.batch_size)
        results[key] = images_per_second(build(), pipeline, args.steps, args.batch_size)
    results["speedup_training"] = results["emolib_tf_data"] / results["image_data_generator"]
    results["speedup_input_only"] = (results["input_only_emolib_tf_data"]
                                     / results["input_only_image_data_generator"])
    for key, value in results.items():
        print(f"{key:>28}: {value:.1f}" if isinstance(value, float) else f"{key:>28}: {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
