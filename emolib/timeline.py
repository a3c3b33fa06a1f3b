"""Timelines: every face on every frame of a video as a table (pandas), and a chart per track.

    >>> from emolib import timeline
    >>> table = timeline.analyze_video("interview.mp4")   # frame, time, track, box, 7 probabilities, label
    >>> timeline.plot_timeline(table)                      # each track's emotions over time

``python -m emolib predict clip.mp4 --csv faces.csv`` writes the same table (with the file's
path in front), and ``video.record`` writes it beside the annotated video. A frame without a
face has one row with an empty track, so the table accounts for every frame.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from emolib import CLASS_NAMES
from emolib.errors import EmolibError
from emolib.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES, FrameSource, open_source, read_image, video_source

#: Smoothing for recorded files (``predict``, ``analyze_video``): none, each frame's own
#: probabilities, so a table row is a measurement of that frame (smooth per track afterwards,
#: e.g. ``table.groupby("track")[list(CLASS_NAMES)].transform(lambda p: p.ewm(alpha=0.4).mean())``).
FILE_SMOOTHING = 0.0
#: The table's columns, in order.
COLUMNS = ("frame", "time", "track", "x", "y", "w", "h", "label", "confidence", *CLASS_NAMES)


# --------------------------------------------------------------------------- running over files

def run_source(source: FrameSource, pipeline, *, max_frames: int = 0) -> Iterator:
    """The pipeline's ``FrameResult`` for each frame of ``source`` (``seconds`` from its frame
    rate), starting afresh (``pipeline.reset()``); ``max_frames`` stops early (0 = all)."""
    pipeline.reset()
    for index, frame in enumerate(source):
        result = pipeline.process(frame)
        result.seconds = index / source.fps
        yield result
        if max_frames and index + 1 >= max_frames:
            break


def check_file(path: str | os.PathLike) -> Path:
    """``path`` as a Path; EmolibError for a folder or a missing file (``predict`` checks every
    path before it loads a model)."""
    path = Path(path)
    if path.is_dir():
        raise EmolibError(f"{path}: is a folder; pass the image or video files in it "
                          f"(e.g. {path}/*.jpg)")
    if not path.is_file():
        raise EmolibError(f"{path}: no such file; pass image or video files")
    return path


def predict_file(path: str | os.PathLike, pipeline, *, max_frames: int = 0) -> Iterator:
    """Results for an image (one, ``seconds`` None) or a video (one per frame, ``seconds`` set).

    Raises EmolibError for a missing file or one that is neither an image nor a video.
    """
    path = check_file(path)
    if path.suffix.lower() in IMAGE_SUFFIXES or path.suffix.lower() not in VIDEO_SUFFIXES:
        image = read_image(path)
        if image is not None:
            yield pipeline.process_photo(image)  # a still photo is worth a finer scan
            return
        if path.suffix.lower() in IMAGE_SUFFIXES:
            raise EmolibError(f"{path}: not a readable image (damaged or not really "
                              f"{path.suffix}); check the file")
    try:
        source = video_source(path)
    except EmolibError:
        if path.suffix.lower() in VIDEO_SUFFIXES:
            raise
        raise EmolibError(f"{path}: neither an image nor a readable video; pass JPEG/PNG images "
                          "or video files (mp4, avi, mov, ...)") from None
    yield from run_source(source, pipeline, max_frames=max_frames)


def to_json(path: str | os.PathLike, result) -> dict:
    """``predict --json``'s line: ``{"path", "faces"}`` for an image, with ``"frame"`` and
    ``"time"`` (seconds) for a video frame; each face with its track id."""
    record = {"path": str(path)}
    if result.seconds is not None:
        record.update(frame=result.index, time=round(result.seconds, 3))
    record["faces"] = [face.to_dict() for face in result.faces]
    return record


def to_text(path: str | os.PathLike, result) -> str:
    """``predict``'s line: the path (and frame of a video), then each face's label and box."""
    where = f"{path}" + (f" frame {result.index}" if result.seconds is not None else "")
    faces = "; ".join(f"{face.label} at {[int(v) for v in face.box]}" for face in result.faces)
    return f"{where}: {faces or 'no face found'}"


# --------------------------------------------------------------------------- the table

def rows(result) -> list[dict]:
    """The table's rows for one ``FrameResult``: one per face, or one with no track."""
    base = {"frame": result.index, "time": round(result.seconds or 0.0, 3)}
    if not result.faces:
        return [base]
    return [{**base, "track": face.track_id, **dict(zip("xywh", (int(v) for v in face.box))),
             "label": face.emotion, "confidence": float(face.confidence),  # unrounded: rounding could tie and
             # make the label (the model's argmax) look unlike the largest column
             **{name: float(p) for name, p in zip(CLASS_NAMES, face.probabilities)}}
            for face in result.faces]


def to_table(table_rows: list[dict], *, with_path: bool = False):
    """A DataFrame with ``COLUMNS`` from ``rows``: integer columns nullable (empty for frames
    without a face), probabilities float. ``with_path``: the rows' ``"path"`` first, as
    ``predict --csv`` writes it for several files."""
    import pandas as pd

    table = pd.DataFrame(table_rows, columns=["path"] * with_path + list(COLUMNS))
    for column in ("frame", "track", "x", "y", "w", "h"):
        table[column] = table[column].astype("Int64")
    for column in ("time", "confidence", *CLASS_NAMES):
        table[column] = table[column].astype(float)
    table["label"] = table["label"].astype("string")
    return table


def write_table(table, path: str | os.PathLike) -> Path:
    """Write a timeline table as CSV, atomically (a kill never leaves half a table)."""
    from emolib.checkpoints import save_atomic

    return save_atomic(path, lambda tmp: table.to_csv(tmp, index=False))


def read_table(path: str | os.PathLike):
    """A table written by ``video.record`` or ``predict --csv``, with the same dtypes."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise EmolibError(f"{path}: no such table; write one with predict --csv or video.record")
    table = pd.read_csv(path)
    missing = [column for column in COLUMNS if column not in table.columns]
    if missing:
        raise EmolibError(f"{path}: not an emolib timeline (no {', '.join(missing)} column)")
    extra = [column for column in table.columns if column not in COLUMNS]
    return table[extra].join(to_table(table[list(COLUMNS)].to_dict("records")))


def analyze_video(source: str | os.PathLike | FrameSource, *, pipeline=None, model="",
                  detector: str = "haar", smoothing: float = FILE_SMOOTHING, max_frames: int = 0,
                  on_frame: Callable | None = None):
    """Every face on every frame of a video (a path, or any ``sources.open_source`` source) as
    a DataFrame with ``COLUMNS``.

    ``pipeline``: a ``realtime.Pipeline`` to use as it is; otherwise one is built from ``model``
    (a path, a loaded ``classifier.EmotionClassifier``, or "" for the default), ``detector`` and
    ``smoothing`` (default none: each row measures its own frame). ``on_frame(result)`` is
    called with each ``FrameResult``.
    """
    from emolib import realtime

    source = source if isinstance(source, FrameSource) else open_source(source, fallback=False)
    pipeline = pipeline or realtime.Pipeline(model, detector=detector, smoothing=smoothing,
                                             annotate=False)
    table_rows = []
    for result in run_source(source, pipeline, max_frames=max_frames):
        table_rows.extend(rows(result))
        if on_frame is not None:
            on_frame(result)
    return to_table(table_rows)


# --------------------------------------------------------------------------- the chart

def plot_timeline(table, *, max_tracks: int = 4, title: str = ""):
    """A figure: every track's label over time (top), then the 7 probabilities over time of
    the ``max_tracks`` longest tracks, one panel each. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    from emolib.annotation import COLORS

    faces = table.dropna(subset=["track"])
    if faces.empty:
        raise EmolibError("the table has no faces to chart (no track on any frame)")
    colors = {name: tuple(channel / 255 for channel in COLORS[name][::-1]) for name in CLASS_NAMES}
    lengths = faces["track"].value_counts()
    longest = [int(track) for track in lengths.index[:max_tracks]]
    figure, axes = plt.subplots(1 + len(longest), 1, sharex=True, squeeze=False,
                                figsize=(10, 1.6 + 1.7 * len(longest)),
                                gridspec_kw={"height_ratios": [1.4] + [1] * len(longest)})
    axes = axes[:, 0]
    for name in CLASS_NAMES:
        rows_of = faces[faces["label"] == name]
        axes[0].scatter(rows_of["time"], rows_of["track"], s=8, marker="s", color=colors[name],
                        label=name)
    axes[0].set_ylabel("track")
    axes[0].invert_yaxis()
    axes[0].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    axes[0].set_title(title or f"{faces['track'].nunique()} tracks over "
                      f"{table['frame'].nunique()} frames: label of each face", fontsize=10)
    for axis, track in zip(axes[1:], longest):
        rows_of = faces[faces["track"] == track]
        for name in CLASS_NAMES:
            axis.plot(rows_of["time"], rows_of[name], color=colors[name], linewidth=1.2)
        axis.set_ylim(0, 1)
        axis.set_ylabel("probability", fontsize=8)
        top = rows_of["label"].value_counts().index[0]
        axis.set_title(f"track {track}: {len(rows_of)} frames, mostly {top}", fontsize=9,
                       loc="left")
    axes[-1].set_xlabel("time (s)")
    figure.tight_layout()
    return figure
