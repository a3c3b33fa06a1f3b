"""benchmarks/finetune_arms.py: the distillation arm's teacher and the refusals a user can hit."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import load_benchmark
from emolib import models


@pytest.fixture(scope="module")
def arms():
    return load_benchmark("finetune_arms")


def _saved_emonets(folder, count: int):
    paths = []
    for seed in range(count):
        import keras

        keras.utils.set_random_seed(seed)
        model = models.build_emonet(widths=(4, 8, 8, 8), dense_units=8)
        paths.append(folder / f"member{seed}.keras")
        model.save(paths[-1])
    return paths


def test_a_teacher_of_several_models_is_the_mean_of_their_probabilities(arms, tmp_path):
    paths = _saved_emonets(tmp_path, 2)  # both named "emonet", as every saved run is
    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48, 1)).astype(np.uint8)
    members = [models.load_model(path).predict(faces, verbose=0) for path in paths]
    assert not np.allclose(members[0], members[1])
    teacher = arms.ensemble_teacher([str(path) for path in paths])
    np.testing.assert_allclose(teacher.predict(faces, verbose=0), np.mean(members, axis=0), atol=1e-5)
    single = arms.ensemble_teacher([str(paths[0])])
    np.testing.assert_allclose(single.predict(faces, verbose=0), members[0], atol=1e-6)


def test_the_distill_arm_without_a_usable_teacher_is_refused_in_one_line(arms, tmp_path, capsys):
    start = _saved_emonets(tmp_path, 1)[0]
    assert arms.main(["--start", str(start), "--arms", "distill"]) == 2
    assert "needs --teacher" in capsys.readouterr().err
    missing = tmp_path / "nowhere.keras"
    assert arms.main(["--start", str(start), "--arms", "distill", "--teacher", str(missing)]) == 2
    error = capsys.readouterr().err.strip()
    assert error == f"error: --teacher {missing}: no such model file"


def test_the_record_says_where_each_row_ran(arms):
    old = {"machine": "x86_64, 2 cores", "cores": [0]}  # a session-9 row
    assert "under load (session 9)" in arms.machine_line(old)
    new = {"machine": "AMD EPYC, 2 cores", "cores": [0, 1], "started": "2026-12-05 21:21",
           "nice": 0, "threads": "all", "load": "idle"}
    assert arms.machine_line(new) == "AMD EPYC, 2 cores (2026-12-05), core(s) [0, 1], nice 0, all TF threads, idle"
