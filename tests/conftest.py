"""Shared fixtures: tiny synthetic datasets in every form emolib reads, and real-data paths."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from emolib import CLASS_NAMES

ROOT = Path(__file__).resolve().parent.parent


def load_benchmark(name: str):
    """A script of ``benchmarks/`` imported as a module (it is not a package), for its tests."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def saved_emonets(folder, count: int, widths=(4, 8, 8, 8)) -> list:
    """``count`` tiny EmoNets (seeds 0, 1, …) saved as ``folder/member<seed>.keras``, for the
    benchmarks that read saved models."""
    import keras

    from emolib import models

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(count):
        keras.utils.set_random_seed(seed)
        paths.append(folder / f"member{seed}.keras")
        models.build_emonet(widths=widths, dense_units=8).save(paths[-1])
    return paths


SHARED = ROOT.parent / "shared"
MOBILENET_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"


def pytest_configure(config):
    """A temporary Keras cache for the whole session (Keras reads KERAS_HOME once, at import),
    holding the offline MobileNetV2 weights when ../shared has them. Nothing is downloaded."""
    import shutil
    import tempfile

    keras_home = Path(tempfile.mkdtemp(prefix="emolib-keras-home-"))
    (keras_home / "models").mkdir()
    shared_weights = SHARED / "models" / "keras" / MOBILENET_FILE
    if shared_weights.exists():
        shutil.copyfile(shared_weights, keras_home / "models" / MOBILENET_FILE)
    os.environ["KERAS_HOME"] = str(keras_home)


def pytest_collection_modifyitems(items):
    """A test that asks for the real FER-2013 is a data test, marked or not (`make test-fast`
    deselects them by marker)."""
    for item in items:
        if "fer2013_path" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.data)


@pytest.fixture(autouse=True)
def isolated_outputs(tmp_path_factory, monkeypatch):
    """Every test writes outputs and caches into its own temporary folder, never the repo."""
    base = tmp_path_factory.mktemp("emolib")
    monkeypatch.setenv("EMOLIB_OUTPUTS", str(base / "outputs"))
    monkeypatch.setenv("EMOLIB_CACHE", str(base / "cache"))
    monkeypatch.setenv("EMOLIB_DATA_DIR", str(base / "data"))
    monkeypatch.setenv("EMOLIB_OFFLINE", "1")
    yield


def face_like(seed: int, size: int = 48, color: bool = False) -> np.ndarray:
    """A random but non-blank image (a gradient plus noise)."""
    rng = np.random.default_rng(seed)
    gradient = np.linspace(40, 200, size)[None, :].repeat(size, axis=0)
    image = np.clip(gradient + rng.normal(0, 20, (size, size)), 0, 255).astype(np.uint8)
    return np.dstack([image, image // 2, 255 - image]) if color else image


def write_jpg(path: Path, image: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix, image)
    assert ok
    path.write_bytes(data.tobytes())


@pytest.fixture
def kaggle_folder(tmp_path) -> Path:
    """A FER-2013 Kaggle-layout folder: 3 train + 2 PublicTest + 2 PrivateTest faces per class."""
    root = tmp_path / "fer_folder"
    seed = 0
    for name in CLASS_NAMES:
        for prefix, folder, count in (("Training", "train", 3), ("PublicTest", "test", 2),
                                      ("PrivateTest", "test", 2)):
            for _ in range(count):
                seed += 1
                write_jpg(root / folder / name / f"{prefix}_{seed}.jpg", face_like(seed))
    return root


def zip_folder(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(folder).as_posix())
    return target


@pytest.fixture
def kaggle_zip(kaggle_folder, tmp_path) -> Path:
    return zip_folder(kaggle_folder, tmp_path / "archive.zip")


@pytest.fixture
def fer_csv(tmp_path) -> Path:
    """A challenge-format CSV: labels in the CSV order (4 = sad, 6 = neutral)."""
    path = tmp_path / "fer2013.csv"
    rows = ["emotion,pixels,Usage"]
    for index, (label, usage) in enumerate([(0, "Training"), (4, "Training"), (6, "PublicTest"),
                                            (3, "PrivateTest"), (5, "Training")]):
        pixels = " ".join(str(v) for v in face_like(index).ravel())
        rows.append(f"{label},{pixels},{usage}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def fer2013_path():
    """The real FER-2013 when it is found ($EMOLIB_DATA or ../shared), else skip."""
    candidates = [os.environ.get("EMOLIB_DATA_REAL") or os.environ.get("EMOLIB_DATA"),
                  SHARED / "datasets" / "fer2013" / "archive.zip"]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return Path(candidate)
    pytest.skip("real FER-2013 not found: set EMOLIB_DATA to archive.zip "
                "(../shared/datasets/fer2013/archive.zip on dev machines)")


@pytest.fixture
def mobilenet_weights() -> Path:
    """The offline MobileNetV2 alpha-0.35 weights in the session's Keras cache, else skip."""
    path = Path(os.environ["KERAS_HOME"]) / "models" / MOBILENET_FILE
    if not path.exists():
        pytest.skip(f"offline MobileNetV2 weights not found (../shared/models/keras/{MOBILENET_FILE})")
    return path
