"""Loading FER-2013 in all its forms, any folder dataset, bad input, the cache, and the data CLI."""

from __future__ import annotations

import json
import time
import zipfile

import numpy as np
import pytest

from conftest import face_like, write_jpg, zip_folder
from emolib import CLASS_NAMES, data_quality, datasets
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
    with pytest.warns(datasets.EmolibWarning, match="no train images of happy, neutral"):
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
    report = data_quality.describe(datasets.load(kaggle_folder, progress=False))
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


# ----------------------------------------------------------------------- refused or skipped, never a traceback

@pytest.mark.parametrize("content", [
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe",  # a binary file named .csv
    "emotion,pixels,Usage\n0,1 2 3,Training caf\u00e9\n".encode("latin-1"),  # not UTF-8
])
def test_binary_or_non_utf8_csv_is_refused_in_one_line(tmp_path, capsys, content):
    path = tmp_path / "fer2013.csv"
    path.write_bytes(content)
    with pytest.raises(EmolibError, match="fer2013.csv: not a UTF-8 text CSV"):
        datasets.load(path, progress=False)
    assert main(["data", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "re-save this file as UTF-8" in err


def test_unreadable_file_in_a_folder_is_a_counted_skip(kaggle_folder, monkeypatch):
    import pathlib

    locked = kaggle_folder / "train" / "happy" / "Training_locked.jpg"
    write_jpg(locked, face_like(500))
    read_bytes = pathlib.Path.read_bytes

    def no_permission(self):  # tests run as root, where chmod 000 still reads
        if self.name == locked.name:
            raise PermissionError(13, "Permission denied", str(self))
        return read_bytes(self)

    monkeypatch.setattr(pathlib.Path, "read_bytes", no_permission)
    with pytest.warns(datasets.EmolibWarning, match=r"1 file\(s\) .* skipped .*Training_locked"):
        data = datasets.load(kaggle_folder, progress=False)
    assert len(data) == 49
    assert dict(data.skipped)["train/happy/Training_locked.jpg"] == "cannot be read: Permission denied"


def test_damaged_zip_member_is_a_counted_skip(kaggle_folder, tmp_path):
    target = tmp_path / "damaged.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for file in sorted(kaggle_folder.rglob("*.jpg")):
            archive.write(file, file.relative_to(kaggle_folder).as_posix())
    with zipfile.ZipFile(target) as archive:
        victim = archive.getinfo("train/sad/" + sorted(
            p.name for p in (kaggle_folder / "train" / "sad").glob("*.jpg"))[0])
    raw = bytearray(target.read_bytes())
    data_start = victim.header_offset + 30 + len(victim.filename.encode())
    raw[data_start + 100] ^= 0xFF  # the CRC no longer matches
    target.write_bytes(bytes(raw))
    with pytest.warns(datasets.EmolibWarning, match=r"1 file\(s\) .* skipped"):
        data = datasets.load(target, progress=False)
    assert len(data) == 48
    assert "Bad CRC-32" in dict(data.skipped)[victim.filename]


def test_an_unwritable_cache_folder_warns_and_still_loads(kaggle_zip, tmp_path, monkeypatch,
                                                          capsys):
    blocker = tmp_path / "outputs-is-a-file"
    blocker.write_text("")
    monkeypatch.setenv("EMOLIB_CACHE", str(blocker / "cache"))  # cannot be created
    with pytest.warns(datasets.EmolibWarning, match="dataset cache not written to .*outputs-is-a"):
        data = datasets.load(kaggle_zip, progress=False)
    assert len(data) == 49
    assert main(["data", str(kaggle_zip)]) == 0
    captured = capsys.readouterr()
    assert "49 images" in captured.out and "dataset cache not written" in captured.err


def test_a_read_only_cache_folder_warns_and_leaves_no_temporary_file(kaggle_zip, monkeypatch):
    import tempfile

    from emolib.paths import cache_dir

    def read_only(*args, **kwargs):  # tests run as root, where chmod 555 still writes
        raise PermissionError(13, "Permission denied", kwargs.get("dir"))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.warns(datasets.EmolibWarning, match="cache not written .*Permission denied"):
        data = datasets.load(kaggle_zip, progress=False)
    assert len(data) == 49 and list(cache_dir().iterdir()) == []


def test_a_source_without_train_is_refused_by_split_and_warned_about(kaggle_folder, tmp_path):
    import shutil

    shutil.rmtree(kaggle_folder / "train")
    no_train = zip_folder(kaggle_folder, tmp_path / "no_train.zip")
    with pytest.warns(datasets.EmolibWarning, match="no_train.zip: no train images"):
        data = datasets.load(no_train, progress=False)
    with pytest.raises(EmolibError, match=r"no_train.zip: no train images \(it has val 14, "
                                          r"test 14\); training needs train/<class>/"):
        data.split("train")
    assert len(data.split("test")[1]) == 14  # still fine for evaluation
    with pytest.warns(datasets.EmolibWarning, match="no train images"):  # again from the cache
        datasets.load(no_train, progress=False)


def test_empty_class_folders_and_classes_missing_from_train_are_warned_about(kaggle_folder,
                                                                             tmp_path):
    for image in (kaggle_folder / "train" / "disgust").iterdir():
        image.unlink()
    (kaggle_folder / "train" / "disgust" / ".DS_Store").write_bytes(b"\0")
    with pytest.warns(datasets.EmolibWarning) as caught:
        datasets.load(kaggle_folder, progress=False)
    messages = [str(w.message) for w in caught]
    assert any("class folder(s) without images" in m and "train/disgust" in m for m in messages)
    assert any("no train images of disgust" in m for m in messages)
    archive = zip_folder(kaggle_folder, tmp_path / "with_empty_dir.zip")
    with zipfile.ZipFile(archive, "a") as handle:
        handle.writestr("test/fearful/", b"")  # an explicit, empty folder entry
    with pytest.warns(datasets.EmolibWarning) as caught:
        datasets.load(archive, progress=False)
    assert any("without images" in str(w.message) and "test/fearful, train/disgust"
               in str(w.message) for w in caught)


def test_csv_pixel_out_of_range_is_named(fer_csv):
    lines = fer_csv.read_text().splitlines()
    pixels = ["7"] * 2304
    pixels[4] = "300"
    lines.insert(2, f"1,{' '.join(pixels)},Training")
    fer_csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(EmolibError, match="line 3: pixel 5 is 300, outside 0-255; fix or delete"):
        datasets.load(fer_csv, progress=False)


def test_csv_without_usage_gets_a_seeded_split_and_says_so(tmp_path):
    path = tmp_path / "train.csv"
    rows = ["emotion,pixels"] + [f"{i % 7},{' '.join(map(str, face_like(i).ravel()))}"
                                 for i in range(70)]
    path.write_text("\n".join(rows) + "\n")
    data = datasets.load(path, progress=False, seed=1)
    assert data.split_note == "the CSV has no Usage column: seeded stratified 80/10/10 split (seed=1)"
    assert {s: int((data.splits == s).sum()) for s in datasets.SPLITS} == {
        "train": 56, "val": 7, "test": 7}


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


def test_split_limit_is_a_seeded_subset_in_the_splits_order(kaggle_folder):
    data = datasets.load(kaggle_folder)
    x_all, y_all = data.split("test")
    x_five, y_five = data.split("test", limit=5, seed=3)
    assert x_five.shape == (5, 48, 48, 1) and len(y_five) == 5
    rows = [next(i for i in range(len(x_all)) if np.array_equal(x_all[i], image)) for image in x_five]
    assert rows == sorted(rows) and np.array_equal(y_all[rows], y_five)  # a subset, in order
    np.testing.assert_array_equal(data.split("test", limit=5, seed=3)[0], x_five)  # seeded
    assert not np.array_equal(data.split("test", limit=5, seed=4)[0], x_five)
    assert len(data.split("test", limit=10_000)[1]) == len(y_all)  # more than there is: all
    with pytest.raises(EmolibError, match="limit=-1"):
        data.split("test", limit=-1)
