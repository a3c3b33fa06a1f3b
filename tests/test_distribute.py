"""Training on several devices: a MirroredStrategy run (what a sweep trial with several GPUs
gets), and one run on several machines (MultiWorkerMirroredStrategy), which Keras 3 cannot do."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from emolib import training
from emolib.errors import EmolibError

TOY_RUN = """
import numpy as np
from emolib import models, training
rng = np.random.default_rng(0)
labels = rng.integers(0, 7, 128)
images = rng.integers(0, 255, (128, 48, 48, 1)).astype(np.uint8)
with strategy.scope():
    model = models.build_emonet(widths=(4, 8, 8, 8), dense_units=8)
run = training.train(model, (images, labels), (images[:64], labels[:64]), run_name="replicas",
                     epochs=2, batch_size=32, augment="none", verbose=0, strategy=strategy)
print("replicas", strategy.num_replicas_in_sync, "epochs", len(run.history["val_accuracy"]))
"""


def python(setup: str, env: dict | None = None):
    """``setup`` (which makes ``strategy``) then ``TOY_RUN``, in a fresh Python."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(setup) + TOY_RUN], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})


def test_a_tf_config_naming_several_machines_is_refused_with_the_reason(monkeypatch):
    cluster = {"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(cluster))
    with pytest.raises(EmolibError, match=r"2 machines .*keras-team/keras#20585"):
        training.setup(0)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["host1:12345"]}}))
    assert training.setup(0) is not None  # one machine: nothing to refuse


@pytest.mark.slow
def test_a_run_trains_under_a_two_replica_mirrored_strategy(tmp_path):
    # two logical CPU devices stand in for the two GPUs a sweep trial may hold
    process = python("""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    """)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-2000:]
    assert "replicas 2 epochs 2" in out


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="Keras 3 model.fit fails under MultiWorkerMirroredStrategy "
                   "(keras-team/keras#20585); when this passes, lift training._refuse_multi_worker")
def test_one_run_on_two_workers_with_multi_worker_mirrored_strategy(tmp_path):
    workers = [f"localhost:{free_port()}", f"localhost:{free_port()}"]
    processes = []
    for index in range(2):  # two machines, each with its own outputs folder
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(python("""
            import tensorflow as tf
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        """, env={"TF_CONFIG": json.dumps(config),
                            "EMOLIB_OUTPUTS": str(tmp_path / f"worker{index}")}))
    results = [process.communicate(timeout=600) for process in processes]
    for process, (_, err) in zip(processes, results):
        if process.returncode and "PerReplica" not in err:  # not the known failure: a real error
            raise RuntimeError(f"a worker failed for another reason: {err[-1500:]}")
    assert all(process.returncode == 0 for process in processes), results[0][1][-600:]
    assert all("replicas 2 epochs 2" in out for out, _ in results)
