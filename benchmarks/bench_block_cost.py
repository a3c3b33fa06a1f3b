"""Seconds a training step of half-width EmoNet costs, per block and input size: the CPU-time
side of the ablation's block and progressive-resizing arms (``emonet_ablation.yaml``).

One epoch of 40 steps (batch 64, basic augmentation, random faces) per variant after 5 warm-up
steps, the variants interleaved and each measured ``--rounds`` times in one process, so a change
of load between them shows as a round that disagrees. Only ratios within a round count. Session 9
(one thread on a shared core): plain 258, residual 258, SE 258, plain at 32 px 130 ms a step.

    TF_NUM_INTRAOP_THREADS=1 python benchmarks/bench_block_cost.py
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

VARIANTS = (("plain", 48), ("residual", 48), ("se", 48), ("plain", 32))


def step_ms(block: str, size: int, images, labels, steps: int = 40) -> float:
    from emolib import models, progressive, training

    model = models.build_emonet(widths=(16, 32, 64, 128), dense_units=128, block=block, input_size=size)
    batches = training.make_dataset(*progressive.resized((images, labels), size), batch_size=64,
                                    training=True, augment="basic")
    model.compile(optimizer=training.optimizer(2e-3, steps=100, weight_decay=0.01),
                  loss="categorical_crossentropy")
    model.fit(batches.take(5), epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(batches.take(steps), epochs=1, verbose=0)
    return (time.perf_counter() - start) / steps * 1000


def main() -> None:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (64 * 40, 48, 48, 1)).astype(np.uint8)
    labels = rng.integers(0, 7, len(images))
    for round_number in range(1, args.rounds + 1):
        for block, size in VARIANTS:
            print(f"round {round_number}: {block:8s} {size} px  "
                  f"{step_ms(block, size, images, labels):6.1f} ms/step", flush=True)


if __name__ == "__main__":
    main()
