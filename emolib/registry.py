"""The model registry: where a model is found, and the one protocol every model runs behind.

Every command, the webcam widget and notebook 04 turn what a user names into a model here, with
one rule (``resolve``):

- nothing (``None`` or ``""``): the shipped default (``models.DEFAULT_MODEL``); while none is
  shipped, the newest finished run in ``outputs/runs/`` (the note says so); else an error;
- a ``.keras`` or ``.tflite`` file;
- a run folder, or a run's name in ``outputs/runs/`` (``cpu-emonet``): its ``model.keras``.

``load`` opens what ``resolve`` found behind the protocol ``EmotionModel``: ``predict`` (like
Keras'), ``forward`` (one traced call on one batch), ``parameters`` and ``size_bytes``; the
Keras, TFLite (``export.TFLiteModel``) and ``fer`` peer (``peers.FerPeerModel``) adapters share
it. A model that does not take 48x48x1 pixels and return 7 probabilities is refused with one
line (``check_contract``); ``collect_models`` gathers every candidate of a comparison. A
``.keras`` file's int8 TFLite copy sits beside it as ``<stem>-int8.tflite``
(``int8_companion``); the ``"auto"`` backend runs that copy.

    >>> from emolib import registry
    >>> model = registry.load("cpu-emonet")          # or None, "my.keras", "emonet-int8.tflite"
    >>> probabilities = model.predict(faces)          # (n, 7) in CLASS_NAMES order
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from emolib import models, runs
from emolib.errors import EmolibError
from emolib.preprocessing import INPUT_SHAPE, NUM_CLASSES

#: What runs a ``.keras`` model: its int8 copy when one sits beside it, or always Keras / TFLite.
BACKENDS = ("auto", "keras", "tflite")


class EmotionModel(Protocol):
    """What every model in emolib runs behind: raw 48x48x1 pixels in, 7 probabilities out."""

    name: str
    path: Path | None
    note: str  #: which model runs and why (set by ``load``)

    def predict(self, images: np.ndarray, batch_size: int = 256, verbose: int = 0) -> np.ndarray:
        """Probabilities ``(n, 7)`` for ``(n, 48, 48[, 1])`` raw pixels (0-255)."""

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """One call on one batch, the cheapest way this model runs (what latency times)."""

    @property
    def parameters(self) -> int | None:
        """Number of weights (None where the file does not say)."""

    @property
    def size_bytes(self) -> int | None:
        """Bytes of the model's file (None for a model without one)."""


class KerasModel:
    """A Keras emotion model behind ``EmotionModel``; ``keras_model`` is the model itself."""

    note = ""

    def __init__(self, keras_model, path: str | os.PathLike | None = None,
                 name: str | None = None):
        self.keras_model = keras_model
        self.path = Path(path) if path is not None else None
        self.name = name or keras_model.name
        self._forward = None

    def __repr__(self) -> str:
        return f"KerasModel({self.name!r}, {str(self.path) if self.path else 'in memory'})"

    @property
    def input_shape(self) -> tuple:
        return tuple(self.keras_model.input_shape)

    @property
    def output_shape(self) -> tuple:
        return tuple(self.keras_model.output_shape)

    @property
    def parameters(self) -> int:
        return int(self.keras_model.count_params())

    @property
    def size_bytes(self) -> int | None:
        return self.path.stat().st_size if self.path is not None and self.path.exists() else None

    def predict(self, images: np.ndarray, batch_size: int = 256, verbose: int = 0) -> np.ndarray:
        return np.asarray(self.keras_model.predict(images, batch_size=batch_size,
                                                   verbose=verbose))

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """One traced call (``models.compiled_forward``): what the webcam pipeline runs."""
        if self._forward is None:
            self._forward = models.compiled_forward(self.keras_model)
        return self._forward(np.asarray(batch, np.float32))


@dataclass
class Found:
    """What ``resolve`` found: a display name, the file, and a sentence saying which and why."""

    name: str
    path: Path
    note: str


def default_model() -> Path:
    """The shipped default model's file (``models.DEFAULT_MODEL``, present or not)."""
    return models.DEFAULT_MODEL


def trained_models() -> list[Path]:
    """``outputs/runs/*/model.keras`` of finished runs, newest first."""
    folder = runs.runs_dir()
    return sorted(folder.glob("*/model.keras"), key=lambda p: p.stat().st_mtime,
                  reverse=True) if folder.is_dir() else []


def find_models() -> list[Path]:
    """Models a demo can offer: the shipped default (when present), then trained runs, newest
    first (the order ``resolve(None)`` falls back along)."""
    default = default_model()
    return ([default] if default.exists() else []) + trained_models()


def resolve(spec: str | os.PathLike | None = None) -> Found:
    """The model file ``spec`` names (see the module's rule); EmolibError when none fits."""
    if spec is None or str(spec) == "":
        default = default_model()
        if default.exists():
            return Found("default", default, f"model: the shipped default ({default.name})")
        trained = trained_models()
        if trained:
            return Found(trained[0].parent.name, trained[0],
                         f"model: {trained[0]} (the newest trained run; the shipped default "
                         f"{default} is not there)")
        raise EmolibError(f"no model: {default} is missing and {runs.runs_dir()} has no "
                          "*/model.keras; train one with notebook 02 (python -m emolib run "
                          "--only 02) or name a model")
    path = Path(spec).expanduser()
    if not path.exists() and (runs.runs_dir() / str(spec)).is_dir():
        path = runs.runs_dir() / str(spec)
    if path.is_dir():
        if not (path / "model.keras").is_file():
            raise EmolibError(f"{path}: no model.keras in this folder; is the run finished? "
                              "(runs still training have only best.keras and log.csv)")
        return Found(path.name, path / "model.keras", f"model: {path / 'model.keras'}")
    if not path.exists():
        raise EmolibError(f"{spec}: no such model file, run folder or run name in {runs.runs_dir()}; "
                          "name a .keras or .tflite file, a run folder or a run, or nothing for "
                          "the default")
    return Found(path.stem, path, f"model: {path}")


def load(spec=None, *, backend: str = "keras", num_threads: int | None = None) -> EmotionModel:
    """The model ``spec`` names, opened behind ``EmotionModel`` and checked against the contract.

    ``spec``: anything ``resolve`` takes, or a Keras model in memory. ``backend``: ``"keras"``
    runs a ``.keras`` file as it is (``evaluate``); ``"auto"`` its int8 copy when one sits beside
    it (``predict``, the webcam); ``"tflite"`` that copy or an error. The result's ``note`` says
    which model runs and why.
    """
    import keras

    from emolib.export import TFLiteModel

    if backend not in BACKENDS:
        raise EmolibError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if isinstance(spec, keras.Model):
        if backend == "tflite":
            raise EmolibError("backend='tflite' needs a model path with an int8 copy beside it, "
                              "not a model in memory")
        model = KerasModel(spec)
        model.note = "model: in memory"
        check_contract(model, f"{model.name} (in memory)")
        return model
    found = resolve(spec)
    lite = found.path if found.path.suffix.lower() == ".tflite" else int8_companion(found.path)
    if backend == "tflite" and not lite.exists():
        raise EmolibError(f"{lite}: no int8 TFLite copy of {found.path.name}; write one with "
                          "emolib.export.to_tflite(..., quantization='int8') or use "
                          "backend='keras'")
    if lite == found.path or (backend != "keras" and lite.exists()):
        model = TFLiteModel(lite, num_threads=num_threads, name=found.name)
        model.note = found.note + (f" (int8 TFLite: {lite.name})" if lite != found.path else "")
    else:
        model = KerasModel(models.load_model(found.path), found.path, name=found.name)
        model.note = found.note
    check_contract(model, model.path)
    return model


@dataclass
class Candidate:
    """A model in the comparison: what it is, where it came from, and whether it repeats another."""

    name: str
    model: EmotionModel
    path: Path | None
    kind: str  #: "run", "seed recipe (baseline)", "default", "peer", "file", "tflite int8", ...
    same_as: str = ""  #: name of an earlier candidate with the same weights (file bytes)
    digest: str = ""  #: of the file's bytes


def add_candidate(candidates: dict, candidate: Candidate) -> None:
    """Add ``candidate``, marking it ``same_as`` an earlier one with the same file bytes."""
    from emolib.model_cache import file_digest

    if candidate.path is not None:
        candidate.digest = file_digest(candidate.path)
        earlier = [c.name for c in candidates.values() if c.digest == candidate.digest]
        candidate.same_as = earlier[0] if earlier else ""
    candidates[candidate.name] = candidate


def collect_models(profile: str = "", *, include_default: bool = True,
                   include_fer_peer: bool = True) -> tuple[dict, list[str]]:
    """``({name: Candidate}, notes)``: every finished run (``<profile>-*`` when given), the
    shipped default, the fer peer.

    A run still training, a missing default model or ``fer`` package is a note, not an error;
    a default that is a byte-for-byte copy of a run is marked ``same_as`` that run.
    """
    from emolib import peers

    candidates = {}
    notes = [f"{name} is not finished (still training?); left out"
             for name in runs.unfinished_runs(profile)]
    for run in runs.find_runs(profile):
        kind = "seed recipe (baseline)" if run.is_seed_recipe else "run"
        add_candidate(candidates, Candidate(run.name, load(run.directory),
                                            run.model_path, kind))
    default = default_model()
    if include_default and default.exists():
        add_candidate(candidates, Candidate("default (shipped)", load(default), default,
                                            "default"))
    elif include_default:
        notes.append(f"no shipped default model at {default} yet; its row is left out "
                     "(notebook 02 with ship_default=True writes it)")
    if include_fer_peer:
        peer, reason = peers.load_fer_peer()
        if peer is None:
            notes.append(reason)
        else:
            add_candidate(candidates, Candidate(peer.name, peer, peer.path, "peer"))
    notes += [f"{c.name} has the same weights as {c.same_as} (kept as its own row, left out of "
              "ensemble selection)" for c in candidates.values() if c.same_as]
    if not candidates:
        raise EmolibError("no models to compare: run notebook 02 first "
                          "(python -m emolib run --only 02) or ship a default model")
    return candidates, notes


def check_contract(model, where) -> None:
    """Refuse a model that does not take 48x48x1 pixels and return 7 probabilities: one line
    naming ``where`` (its file), the same for ``evaluate``, ``predict`` and the webcam."""
    input_shape, output_shape = (getattr(model, "input_shape", None),
                                 getattr(model, "output_shape", None))
    if input_shape is None or output_shape is None:
        return  # no static shapes to check (the fer peer checks its own on loading)
    input_shape, output_shape = tuple(input_shape[1:]), tuple(output_shape[1:])
    if input_shape != INPUT_SHAPE or output_shape != (NUM_CLASSES,):
        raise EmolibError(f"{where}: {getattr(model, 'name', 'the model')} takes {input_shape} "
                          f"and returns {output_shape}; emolib models take 48x48x1 pixels and "
                          "return 7 probabilities")


def int8_companion(path: str | os.PathLike) -> Path:
    """Where the int8 TFLite copy of a ``.keras`` model lives: ``<stem>-int8.tflite`` beside it."""
    path = Path(path)
    return path.with_name(f"{path.stem}-int8.tflite")


def keras_source(path: str | os.PathLike) -> Path | None:
    """The ``.keras`` model an int8 copy was converted from (``int8_companion``'s inverse), or
    None when ``path`` is not named ``<stem>-int8.tflite`` or no such file sits beside it."""
    path = Path(path)
    if not path.name.endswith("-int8.tflite"):
        return None
    source = path.with_name(path.name[:-len("-int8.tflite")] + ".keras")
    return source if source.is_file() else None


def unwrap(model):
    """The object a model adapter runs (a Keras model for ``KerasModel``), else ``model``."""
    return getattr(model, "keras_model", model)
