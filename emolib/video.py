"""Annotated video files: ``VideoWriter`` (mp4 or gif) and ``record``, which runs the real-time
pipeline over a source and writes the annotated video plus its timeline table as CSV.

    >>> from emolib import video
    >>> summary = video.record("clip.mp4")   # outputs/webcam/annotated.mp4 and frames.csv
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from emolib import CLASS_NAMES
from emolib.errors import EmolibError
from emolib.paths import outputs_dir
from emolib.sources import FrameSource, open_source


class VideoWriter:
    """Writes BGR frames to ``.mp4`` (H.264 via imageio-ffmpeg, plays in browsers) or ``.gif``.

    Every frame is fitted (letterboxed) to the first frame's size, rounded to even numbers.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 15.0, max_gif_width: int = 480):
        self.path = Path(path)
        self.fps = float(fps)
        self.max_gif_width = max_gif_width
        self.frames = 0
        self._size = None
        self._writer = None
        self._gif_frames = []
        if self.path.suffix.lower() not in (".mp4", ".gif"):
            raise EmolibError(f"{self.path}: write annotated video as .mp4 or .gif")
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, frame: np.ndarray) -> None:
        """Append one BGR frame."""
        import cv2

        if self._size is None:
            height, width = frame.shape[:2]
            if self.path.suffix.lower() == ".gif" and width > self.max_gif_width:
                width, height = self.max_gif_width, int(height * self.max_gif_width / width)
            self._size = (width - width % 2, height - height % 2)
            if self.path.suffix.lower() == ".mp4":
                import imageio_ffmpeg

                self._writer = imageio_ffmpeg.write_frames(
                    str(self.path), self._size, fps=self.fps, codec="libx264", quality=6,
                    pix_fmt_in="rgb24", pix_fmt_out="yuv420p", macro_block_size=1,
                    output_params=["-movflags", "+faststart"], ffmpeg_log_level="error")
                self._writer.send(None)
        rgb = cv2.cvtColor(_letterbox(frame, self._size), cv2.COLOR_BGR2RGB)
        if self._writer is not None:
            self._writer.send(np.ascontiguousarray(rgb))
        else:
            self._gif_frames.append(rgb)
        self.frames += 1

    def close(self) -> Path:
        """Finish the file; returns its path."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        elif self._gif_frames:
            import imageio.v3 as iio

            iio.imwrite(self.path, np.stack(self._gif_frames), duration=1000 / self.fps, loop=0)
            self._gif_frames = []
        return self.path

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _letterbox(frame: np.ndarray, size: tuple) -> np.ndarray:
    import cv2

    frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if frame.ndim == 2 else frame[..., :3]
    width, height = size
    if frame.shape[1] == width and frame.shape[0] == height:
        return frame
    scale = min(width / frame.shape[1], height / frame.shape[0])
    resized = cv2.resize(frame, (max(1, int(frame.shape[1] * scale)),
                                 max(1, int(frame.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((height, width, 3), np.uint8)
    top, left = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    canvas[top:top + resized.shape[0], left:left + resized.shape[1]] = resized
    return canvas


def record(source: str | os.PathLike | FrameSource = "", *, pipeline=None,
           output_dir: str | os.PathLike | None = None, video_name: str = "annotated.mp4",
           csv_name: str = "frames.csv", max_frames: int = 0, data_source: str | None = None,
           on_frame: Callable | None = None) -> dict:
    """Run the pipeline over a source; write the annotated video and its timeline as CSV
    (``timeline.COLUMNS``: one row per face per frame, one row for a frame without faces).

    ``pipeline`` defaults to ``realtime.Pipeline()``; ``output_dir`` to ``outputs/webcam``.
    ``max_frames`` (0 = all; a camera needs a limit, 300 is used) stops early. Returns a
    summary: source, notes, frames, frames with faces, tracks, mean frames/s and latency,
    emotion counts and the two paths.
    """
    from emolib import realtime, timeline

    source = source if isinstance(source, FrameSource) else open_source(source, data_source=data_source)
    pipeline = pipeline or realtime.Pipeline()
    limit = max_frames or (300 if source.kind == "camera" else 0)
    output_dir = Path(output_dir) if output_dir is not None else outputs_dir("webcam")
    output_dir.mkdir(parents=True, exist_ok=True)
    video_path, csv_path = output_dir / video_name, output_dir / csv_name
    counts = dict.fromkeys(CLASS_NAMES, 0)
    latencies, table_rows, with_faces = [], [], 0
    start = time.perf_counter()
    last_frame = []  # the frame itself is written when the pipeline does not annotate
    frames = FrameSource(source.kind, source.description, source.fps,
                         lambda: (last_frame.append(frame) or frame for frame in source))
    with VideoWriter(video_path, fps=source.fps) as writer:
        for result in timeline.run_source(frames, pipeline, max_frames=limit):
            writer.write(result.image if result.image is not None else last_frame[-1])
            table_rows.extend(timeline.rows(result))
            latencies.append(result.latency_ms)
            with_faces += bool(result.faces)
            for face in result.faces:
                counts[face.emotion] += 1
            if on_frame is not None:
                on_frame(result)
    elapsed = time.perf_counter() - start
    if not latencies:
        video_path.unlink(missing_ok=True)
        raise EmolibError(f"{source.description}: gave no frames; pass another source")
    table = timeline.to_table(table_rows)
    timeline.write_table(table, csv_path)
    return {
        "source": source.description, "kind": source.kind, "notes": list(source.notes),
        "model": pipeline.note, "detector": pipeline.detector_name, "smoothing": pipeline.smoothing,
        "frames": len(latencies), "frames_with_faces": with_faces,
        "tracks": int(table["track"].nunique()),
        "mean_latency_ms": round(float(np.mean(latencies)), 2),
        "frames_per_second": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        "emotion_counts": counts, "video": str(video_path), "csv": str(csv_path),
    }

