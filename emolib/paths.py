"""Where things live: repository root, data/, outputs/ and the cache, each with an env override."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Folder where users put datasets (``EMOLIB_DATA_DIR`` overrides ``<repo>/data``)."""
    return Path(os.environ.get("EMOLIB_DATA_DIR", ROOT / "data"))


def outputs_dir(*parts: str, create: bool = True) -> Path:
    """A folder under ``outputs/`` (``EMOLIB_OUTPUTS`` overrides the root), created on demand."""
    path = Path(os.environ.get("EMOLIB_OUTPUTS", ROOT / "outputs")).joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Folder for decoded-array caches (``EMOLIB_CACHE`` overrides ``outputs/cache``)."""
    path = Path(os.environ.get("EMOLIB_CACHE", outputs_dir("cache", create=False)))
    path.mkdir(parents=True, exist_ok=True)
    return path


def notebooks_dir() -> Path:
    """The source notebooks (never written to by the runner)."""
    return ROOT / "notebooks"
