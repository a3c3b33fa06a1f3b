"""Loading FER-2013 in all its forms, any folder dataset, bad input, the cache, and the data CLI."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from conftest import face_like, write_jpg, zip_folder
from emolib import CLASS_NAMES, datasets
from emolib.cli import main
from emolib.errors import DataNotFoundError, EmolibError


def test_kaggle_folder_splits_from_file_name_prefixes(kaggle_folder):
    data = datasets.load(kaggle_folder, progress=False)
    assert data.images.shape == (49, 48, 48) and data.images.dtype == np.uint8
    counts = data.counts()
    assert all(counts["train"][c] == 3 and counts["val"][c] == 2 and counts["test"][c] == 2
               for c in CLASS_NAMES)
    x_val, y_val = data.split("val")
    assert x_val.shape == (14, 48, 48, 1)
    assert all(f.split("/")[-1].startswith("PublicTest_") for f in data.files[data.splits == "val"])


def test_zip_and_folder_give_identical_arrays(kaggle_folder, kaggle_zip):
    from_folder = datasets.load(kaggle_folder, progress=False)
    from_zip = datasets.load(kaggle_zip, progress=False)
    order_folder, order_zip = np.argsort(from_folder.files), np.argsort(from_zip.files)
    np.testing.assert_array_equal(from_folder.images[order_folder], from_zip.images[order_zip])
    np.testing.assert_array_equal(from_folder.labels[order_folder], from_zip.labels[order_zip])
    np.testing.assert_array_equal(from_folder.splits[order_folder], from_zip.splits[order_zip])


def test_csv_maps_challenge_label_order_to_canonical(fer_csv):
    data = datasets.load(fer_csv, progress=False)
    # CSV labels 0, 4, 6, 3, 5 are angry, sad, neutral, happy, surprise
    assert [CLASS_NAMES[i] for i in data.labels] == ["angry", "sad", "neutral", "happy", "surprise"]
    assert list(data.splits) == ["train", "train", "val", "test", "train"]
    np.testing.assert_array_equal(data.images[0], face_like(0))


@pytest.mark.parametrize("bad_row, message", [
    ("9,{pixels},Training", "line 3: emotion '9'"),
    ("1,1 2 3,Training", "line 3: expected 2304 pixel values"),
    ("1,{pixels},Validation", "line 3: Usage 'Validation'"),
])
def test_csv_bad_row_names_the_line(fer_csv, bad_row, message):
    pixels = " ".join(["7"] * 2304)
    lines = fer_csv.read_text().splitlines()
    lines.insert(2, bad_row.format(pixels=pixels))
    fer_csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(EmolibError, match=message):
        datasets.load(fer_csv, progress=False)


def test_corrupt_files_are_skipped_counted_and_named(kaggle_folder):
    before = {p: p.read_bytes() for p in kaggle_folder.rglob("*") if p.is_file()}
    good = sorted((kaggle_folder / "train" / "happy").glob("*.jpg"))[0]
    (kaggle_folder / "train" / "happy" / "Training_empty.jpg").write_bytes(b"")
    (kaggle_folder / "train" / "sad" / "Training_cut.jpg").write_bytes(good.read_bytes()[:300])
    (kaggle_folder / "train" / "angry" / "notes.txt").write_text("not an image")
    with pytest.warns(datasets.EmolibWarning, match=r"3 file\(s\) .* skipped"):
        data = datasets.load(kaggle_folder, progress=False)
    assert len(data) == 49
    reasons = dict(data.skipped)
    assert reasons["train/happy/Training_empty.jpg"] == "empty file"
    assert reasons["train/sad/Training_cut.jpg"] == "truncated JPEG"
    assert reasons["train/angry/notes.txt"] == "not an image"
    assert all(p.read_bytes() == content for p, content in before.items())  # sources untouched


def test_any_folder_aliases_unknown_classes_sizes_and_seeded_split(tmp_path):
    root = tmp_path / "my_photos"
    for index, folder in enumerate(["happiness", "Anger", "surprised", "sadness", "fearful",
                                    "disgusted", "neutral"] * 6):
        write_jpg(root / folder / f"{index}.png", face_like(index, size=120, color=True))
    write_jpg(root / "contempt" / "x.png", face_like(99))
    with pytest.warns(datasets.EmolibWarning, match=r"contempt \(1\)"):
        data = datasets.load(root, progress=False, seed=3)
    assert data.images.shape == (42, 48, 48)
    assert set(np.bincount(data.labels)) == {6}
    assert "seeded stratified 80/10/10" in data.split_note and "seed=3" in data.split_note
    assert set(data.splits) == {"train", "val", "test"}
    with pytest.warns(datasets.EmolibWarning, match="contempt"):  # said again on every load
        again = datasets.load(root, progress=False, seed=3, use_cache=False)
    np.testing.assert_array_equal(data.splits, again.splits)


def test_train_test_folders_without_prefixes_get_val_from_test(tmp_path):
    root = tmp_path / "plain"
    for index in range(40):
        folder = "train" if index < 20 else "test"
        write_jpg(root / folder / CLASS_NAMES[index % 2] / f"{index}.jpg", face_like(index))
    data = datasets.load(root, progress=False)
    counts = {s: int((data.splits == s).sum()) for s in ("train", "val", "test")}
    assert counts == {"train": 20, "val": 10, "test": 10}
    assert "val = seeded stratified 50% of test" in data.split_note


def test_empty_or_unrecognisable_dataset_names_the_path(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EmolibError, match="empty: no images in class folders"):
        datasets.load(empty)
    not_data = tmp_path / "model.bin"
    not_data.write_bytes(b"\x00" * 10)
    with pytest.raises(EmolibError, match="model.bin: not a zip, CSV or folder"):
        datasets.load(not_data)


def test_cache_is_reused_and_invalidated_by_content(kaggle_zip, kaggle_folder):
    from emolib.paths import cache_dir

    first = datasets.load(kaggle_zip, progress=False)
    cache_files = list(cache_dir().glob("archive-*.npz"))
    assert len(cache_files) == 1 and not list(cache_files[0].parent.glob("*.tmp"))
    second = datasets.load(kaggle_zip, progress=False)
    np.testing.assert_array_equal(first.images, second.images)
    write_jpg(kaggle_folder / "train" / "happy" / "Training_new.jpg", face_like(1234))
    zip_folder(kaggle_folder, kaggle_zip)
    third = datasets.load(kaggle_zip, progress=False)
    assert len(third) == len(first) + 1


def test_duplicates_and_blank_images_are_reported(kaggle_folder):
    copy = (kaggle_folder / "train" / "angry").glob("*.jpg").__next__().read_bytes()
    (kaggle_folder / "test" / "sad" / "PrivateTest_dup.jpg").write_bytes(copy)
    write_jpg(kaggle_folder / "train" / "fear" / "Training_blank.jpg",
              np.full((48, 48), 128, np.uint8))
    report = datasets.describe(datasets.load(kaggle_folder, progress=False))
    assert report["duplicates"]["groups"] == 1
    assert report["duplicates"]["groups_across_splits"] == 1
    assert report["duplicates"]["groups_with_conflicting_labels"] == 1
    assert report["blank"]["examples"] == ["train/fear/Training_blank.jpg"]


def test_find_data_order_and_not_found_message(tmp_path, monkeypatch, kaggle_zip):
    monkeypatch.delenv("EMOLIB_DATA", raising=False)
    with pytest.raises(DataNotFoundError, match="Put the Kaggle archive.zip .* or the challenge "
                                                "fer2013.csv in"):
        datasets.find_data()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    monkeypatch.setenv("EMOLIB_DATA_DIR", str(data_dir))
    (data_dir / "fer2013.csv").write_text("emotion,pixels,Usage\n")
    assert datasets.find_data().name == "fer2013.csv"
    monkeypatch.setenv("EMOLIB_DATA", str(kaggle_zip))
    assert datasets.find_data() == kaggle_zip
    assert datasets.find_data(data_dir / "fer2013.csv").name == "fer2013.csv"
    monkeypatch.setenv("EMOLIB_DATA", str(tmp_path / "missing.zip"))
    with pytest.raises(EmolibError, match="EMOLIB_DATA=.*missing.zip does not exist"):
        datasets.find_data()


def test_data_cli_text_json_and_errors(kaggle_zip, capsys, tmp_path):
    assert main(["data", str(kaggle_zip)]) == 0
    out = capsys.readouterr().out
    assert "49 images" in out and "happy" in out and "duplicates: 0 groups" in out
    assert main(["data", str(kaggle_zip), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["test"]["disgust"] == 2
    assert main(["data", str(tmp_path / "nope.zip")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.zip: no such file or folder" in err


def test_data_cli_corrupt_file_exits_zero_with_warning(kaggle_folder, capsys):
    (kaggle_folder / "train" / "happy" / "Training_bad.jpg").write_bytes(b"\xff\xd8junk")
    assert main(["data", str(kaggle_folder)]) == 0
    captured = capsys.readouterr()
    assert "skipped files: 1" in captured.out and "Training_bad.jpg" in captured.err


# ----------------------------------------------------------------------- real FER-2013

@pytest.mark.data
def test_real_fer2013_counts_and_warm_load(fer2013_path):
    data = datasets.load(fer2013_path, progress=False)
    counts = data.counts()
    assert sum(counts["train"].values()) == 28709
    assert sum(counts["val"].values()) == 3589 and sum(counts["test"].values()) == 3589
    assert counts["train"]["disgust"] == 436 and counts["test"]["happy"] == 879
    start = time.perf_counter()
    warm = datasets.load(fer2013_path, progress=False)
    assert len(warm) == 35887
    print(f"warm load {time.perf_counter() - start:.2f} s")  # recorded, not asserted (see README)
