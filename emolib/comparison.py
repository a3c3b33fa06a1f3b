"""Comparison: a set of candidate models scored side by side, for notebook 04 and
``python -m emolib evaluate``.

``registry.collect_models`` gathers the candidates (every finished run, the shipped default,
the ``fer`` peer; nothing is retrained); ``compare`` scores them in one call: each model's test-time
augmentation chosen on val (PublicTest), an ensemble chosen there too, test (PrivateTest)
predicted once with those choices, latency and size. The ``Comparison`` it returns gives the
tables (``table``, ``tta_table``, ``speed_table``, ``mcnemar_table``) and ``comparison_figures``
draws it. ``add_tflite`` adds float16/int8 copies of one model. The ``evaluate`` command is
``compare`` on one split (``reports.evaluate_report``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from emolib import costs, evaluation, registry, reports
from emolib.errors import EmolibError
from emolib.model_cache import cached_proba, cached_tflite
from emolib.registry import Candidate


@dataclass
class Comparison:
    """Candidates scored on one reported split (``test``) and, where choices are made, val."""

    candidates: dict
    labels: dict  #: {"val": labels, "test": labels}
    test_split: str = "test"  #: what "test" is: test (PrivateTest), val, all, a folder's name
    probabilities: dict = field(default_factory=lambda: {"val": {}, "test": {}})
    chosen_tta: dict = field(default_factory=dict)  #: {name: tta chosen on val}
    val_by_tta: dict = field(default_factory=dict)  #: {name: {tta: val accuracy}}
    members: list = field(default_factory=list)  #: the ensemble's members
    latency: dict = field(default_factory=dict)
    size: dict = field(default_factory=dict)
    seed: int = 0

    @property
    def ensemble_name(self) -> str | None:
        return "ensemble (" + " + ".join(self.members) + ")" if len(self.members) >= 2 else None

    def metrics(self, split: str = "test") -> dict:
        """``{name: evaluation.classification_metrics}`` on ``split`` ("val" or "test")."""
        return {name: evaluation.classification_metrics(self.labels[split], p, seed=self.seed)
                for name, p in self.probabilities[split].items()}

    def kind(self, name: str) -> str:
        return "ensemble" if name == self.ensemble_name else self.candidates[name].kind

    def shown(self) -> list[str]:
        """Scored models without the TFLite copies (their agreement with Keras has its table)."""
        return [name for name in self.probabilities["test"]
                if not self.kind(name).startswith("tflite")]

    def tta_table(self):
        """Val accuracy of each model with each TTA, and the one chosen."""
        import pandas as pd

        label = reports.split_label("val")
        frame = pd.DataFrame({name: {f"{label} accuracy, TTA {tta or 'none'}": accuracy
                                     for tta, accuracy in by_tta.items()}
                              for name, by_tta in self.val_by_tta.items()}).T
        return frame.assign(chosen=[self.chosen_tta[name] or "none" for name in frame.index])

    def speed_table(self):
        """Parameters, megabytes and milliseconds per image of each model (and the ensemble)."""
        import pandas as pd

        return pd.DataFrame({name: {**self.size[name], **self.latency[name]}
                             for name in self.latency}).T

    def table(self, save: str | None = "results"):
        """The results table (``reports.table_row`` per model), saved as ``<save>.csv/.md``."""
        val_metrics, test_metrics = self.metrics("val"), self.metrics("test")
        rows = []
        for name, metrics in test_metrics.items():
            split_metrics = {"val": val_metrics[name]} if name in val_metrics else {}
            split_metrics[self.test_split] = metrics
            same = self.candidates[name].same_as if name in self.candidates else ""
            rows.append(reports.table_row(
                name, kind=self.kind(name), metrics=split_metrics,
                tta="members' own" if name == self.ensemble_name else self.chosen_tta.get(name),
                size=self.size.get(name), latency=self.latency.get(name),
                **{"same weights as": same}))
        frame = reports.results_table(rows)
        if save:
            reports.save_table(frame, save)
        return frame

    def mcnemar_table(self, save: str | None = "mcnemar"):
        """Exact McNemar test on test for every pair of ``shown`` models."""
        import pandas as pd

        names = self.shown()
        if len(names) < 2:
            return "one model only: nothing to test"
        frame = pd.DataFrame(evaluation.pairwise_mcnemar(
            self.labels["test"], {name: self.probabilities["test"][name] for name in names}))
        frame.insert(2, "split", reports.split_label(self.test_split))
        if save:
            reports.save_table(frame.set_index("model_a"), save)
        return frame.round(4)

    def ensemble_note(self) -> str:
        """Which members the ensemble has and where they were chosen, or why there is none."""
        if self.ensemble_name:
            return f"ensemble members: {self.members}"
        return "no ensemble: " + (f"the selection kept only {self.members}" if self.members
                                  else "it needs two distinct models")


def _choose_members(result: Comparison, ensemble, max_members: int) -> list:
    names = list(result.probabilities["test"])
    if ensemble in (None, False, "none"):
        return []
    if ensemble == "all":
        return names
    if ensemble != "select":
        unknown = [name for name in ensemble if name not in result.candidates]
        if unknown:
            raise EmolibError(f"ensemble names {unknown} are not among the models {names}")
        return list(ensemble)
    distinct = {name: p for name, p in result.probabilities["val"].items()
                if not result.candidates[name].same_as and result.candidates[name].kind != "peer"}
    if len(distinct) < 2:
        return []
    return evaluation.select_ensemble(result.labels["val"], distinct, max_members=max_members)


def compare(candidates: dict, test: tuple, *, val: tuple | None = None, test_split: str = "test",
            tta_choices=(None,), fixed_tta: dict | None = None, ensemble=None, max_ensemble_members: int = 4,
            latency: bool = True, latency_batch: int = 256, latency_repeats: int = 20,
            seed: int = 0, cache: bool = True, progress: bool = True) -> Comparison:
    """Score ``{name: Candidate}`` on ``test`` (images, labels); every choice is made on ``val``.

    With ``val``, each model's TTA is the best of ``tta_choices`` on val (``evaluation.tta_on_val``);
    without it, ``tta_choices`` must hold one TTA, or ``fixed_tta`` gives each model its own
    (chosen on val before: scoring another dataset). ``ensemble``: None; ``"select"`` (greedy
    forward selection on val among distinct models, not the peer); ``"all"``; or member names.
    Predictions are cached by model file (``model_cache.cached_proba``) unless ``cache=False``.
    """
    import time

    if val is None and len(tta_choices) != 1:
        raise EmolibError("choosing a TTA needs val (PublicTest): pass val, or one TTA")
    if val is None and ensemble == "select":
        raise EmolibError("selecting ensemble members needs val (PublicTest): pass val")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # one predict per model and split: retracing is expected
    labels = {"test": test[1]} if val is None else {"val": val[1], "test": test[1]}
    result = Comparison(candidates, labels, test_split=test_split, seed=seed)

    def predict(candidate, images, tta=None):
        try:
            return cached_proba(candidate.model, images, tta=tta, path=candidate.path, cache=cache)
        except EmolibError:
            raise
        except Exception as error:  # a model that loads but cannot run: one line, naming it
            raise EmolibError(f"{candidate.path or candidate.name}: prediction failed "
                              f"({type(error).__name__}: {str(error)[:200]})") from None

    for name, candidate in candidates.items():
        tick = time.perf_counter()
        chosen = (fixed_tta or {}).get(name, tta_choices[0])
        if val is not None:
            chosen, by_tta = evaluation.tta_on_val(candidate, val[0], val[1], tta_choices,
                                                   predict=predict)
            result.probabilities["val"][name] = by_tta[chosen]
            result.val_by_tta[name] = {tta: float(np.mean(p.argmax(1) == val[1]))
                                       for tta, p in by_tta.items()}
        result.chosen_tta[name] = chosen
        result.probabilities["test"][name] = predict(candidate, test[0], tta=chosen)
        if latency:
            result.latency[name] = costs.latency_ms(
                candidate.model, batch_sizes=(1, latency_batch), repeats=latency_repeats)
        result.size[name] = costs.model_size(candidate.model, candidate.path)
        if progress:
            print(f"{name}: {time.perf_counter() - tick:.1f} s", flush=True)
    result.members = _choose_members(result, ensemble, max_ensemble_members)
    _add_ensemble(result)
    return result


def _add_ensemble(result: Comparison) -> None:
    if result.ensemble_name:
        for scored in result.probabilities.values():
            if scored:
                scored[result.ensemble_name] = evaluation.ensemble_proba(
                    [scored[m] for m in result.members])
        result.size[result.ensemble_name] = {
            key: sum(result.size[m][key] or 0 for m in result.members)
            for key in ("parameters", "size_mb")}
        if result.latency:
            result.latency[result.ensemble_name] = {
                key: sum(result.latency[m][key] for m in result.members)
                for key in result.latency[result.members[0]]}


def add_tflite(result: Comparison, test: tuple, calibration: np.ndarray, *,
               latency_batch: int = 256, latency_repeats: int = 20):
    """Convert one model to TFLite float16 and int8, add both to ``result`` and return the table
    of their test accuracy and agreement with Keras (saved as ``tflite``).

    The model is the shipped default, or while none is shipped the best Keras run on val.
    ``calibration``: a few hundred *training* faces for int8. No TTA: the copies and their
    source are scored plain.
    """
    import pandas as pd

    from emolib.export import TFLiteModel

    keras_names = [name for name, c in result.candidates.items()
                   if isinstance(c.model, registry.KerasModel)]
    if "default (shipped)" in result.candidates:
        source_name = "default (shipped)"
    elif keras_names:
        val_scores = {name: result.val_by_tta[name].get(None, 0) for name in keras_names}
        source_name = max(val_scores, key=val_scores.get)
        print(f"note: no shipped default model; exporting {source_name}, the best on val")
    else:
        print("note: no Keras model to export")
        return pd.DataFrame()
    source = result.candidates[source_name]
    x_test, y_test = test
    keras_test = cached_proba(source.model, x_test, path=source.path)
    rows = {f"{source_name} · Keras float32": (keras_test, result.latency[source_name],
                                               result.size[source_name])}
    for quantization in ("float16", "int8"):
        path = cached_tflite(source.model.keras_model, source.path, quantization,
                             representative_images=calibration)
        lite = TFLiteModel(path, name=f"{source_name} · TFLite {quantization}")
        result.candidates[lite.name] = Candidate(lite.name, lite, path, f"tflite {quantization}")
        result.probabilities["test"][lite.name] = evaluation.predict_proba(lite, x_test)
        result.latency[lite.name] = costs.latency_ms(lite, batch_sizes=(1, latency_batch),
                                                     repeats=latency_repeats)
        result.size[lite.name] = {"parameters": result.size[source_name]["parameters"],
                                  "size_mb": round(lite.size_bytes / 2**20, 3)}
        rows[lite.name] = (result.probabilities["test"][lite.name], result.latency[lite.name],
                           result.size[lite.name])
    label = reports.split_label(result.test_split)
    frame = pd.DataFrame({
        name: {f"{label} accuracy": float(np.mean(p.argmax(1) == y_test)),
               f"same prediction as Keras, {label}": float(np.mean(p.argmax(1)
                                                                   == keras_test.argmax(1))),
               f"max |Δ probability|, {label}": float(np.abs(p - keras_test).max()),
               "size MB": size["size_mb"], "ms/image batch 1": latency["batch_1"],
               f"ms/image batch {latency_batch}": latency[f"batch_{latency_batch}"]}
        for name, (p, latency, size) in rows.items()}).T
    reports.save_table(frame, "tflite")
    return frame
