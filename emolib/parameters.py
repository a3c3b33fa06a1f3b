"""Notebook parameters: what a ``parameters`` cell declares, and ``-p`` overrides checked against it.

A cell like ``epochs: int = 40  # EmoNet epochs`` declares a name, a type and a comment. The
runner hands each notebook only the overrides it declares, converted to the declared type;
an unknown name or a value of the wrong type stops with one line before anything runs.
A text value naming an existing file or folder relative to where the command was typed (it has a
folder part or a suffix: ``outputs/runs/x/best.keras``, ``archive.zip``) becomes an absolute
path, because the notebooks run inside ``notebooks/``.
"""

from __future__ import annotations

import ast
import difflib
import io
import json
import numbers
import os
import tokenize
from pathlib import Path

from emolib.errors import EmolibError

_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "list": list, "dict": dict}


def declared_parameters(notebook: Path) -> dict[str, dict]:
    """``{name: {"type": "int", "default": 40, "comment": ...}}`` from the ``parameters`` cell."""
    cells = [cell for cell in json.loads(notebook.read_text())["cells"]
             if "parameters" in cell.get("metadata", {}).get("tags", [])]
    if not cells:
        return {}
    source = "".join(cells[0]["source"])
    comments = {token.start[0]: token.string.lstrip("#").strip()
                for token in tokenize.generate_tokens(io.StringIO(source).readline)
                if token.type == tokenize.COMMENT}
    declared = {}
    for node in ast.parse(source).body:
        target = getattr(node, "target", None) or (getattr(node, "targets", None) or [None])[0]
        if not isinstance(target, ast.Name) or node.value is None:
            continue
        try:
            default = ast.literal_eval(node.value)
        except ValueError:
            default = None
        annotation = getattr(node, "annotation", None)
        declared[target.id] = {"type": ast.unparse(annotation) if annotation
                               else type(default).__name__,
                               "default": default, "comment": comments.get(node.lineno, "")}
    return declared


def parse_overrides(pairs: list[str]) -> dict:
    """``["epochs=3", "run_tag=a"]`` -> ``{"epochs": "3", "run_tag": "a"}``: text, typed by
    ``check_overrides`` against the parameters cell of each notebook that declares the name."""
    overrides = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise EmolibError(f"-p {pair!r}: write overrides as name=value, e.g. -p epochs=3")
        overrides[key] = value
    return overrides


def literal(text: str):
    """``-p`` text as the Python value it spells (``"3"`` -> 3, ``"[8,16]"`` -> a list), or the
    text itself when it spells none (``faces``)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def from_here(text: str) -> str:
    """``text`` as an absolute path if it names an existing file or folder relative to the
    current directory and looks like a path (a folder part or a suffix); else ``text`` itself."""
    path = Path(text).expanduser()
    looks_like_path = os.sep in text or "/" in text or bool(path.suffix)
    if text and not path.is_absolute() and looks_like_path and path.exists():
        return str(path.resolve())
    return text


def _coerce(name: str, value, spec: dict, notebook: str):
    """``value`` (text from ``-p``, or a Python value) as the declared type, or EmolibError."""
    kind, expected = spec["type"], _TYPES.get(spec["type"])
    if expected is None:
        return value  # an annotation the runner does not know: passed as it is
    parsed = value
    if isinstance(value, str):
        if kind == "bool" and value.lower() in ("true", "false"):
            return value.lower() == "true"
        parsed = literal(value)
    if kind == "str":
        if isinstance(parsed, str):
            return from_here(parsed)
        if isinstance(value, str) and isinstance(parsed, numbers.Number) \
                and not isinstance(parsed, bool):
            return value  # -p run_tag=2 is the text "2"
    elif kind in ("int", "float"):
        if isinstance(parsed, numbers.Integral) and not isinstance(parsed, bool):
            return int(parsed) if kind == "int" else float(parsed)
        if kind == "float" and isinstance(parsed, numbers.Real) and not isinstance(parsed, bool):
            return float(parsed)
    elif isinstance(parsed, expected):
        return parsed
    default = spec["default"]
    example = (default or "TEXT") if kind == "str" else repr(default).replace(" ", "")
    comment = f" ({spec['comment']})" if spec["comment"] else ""
    raise EmolibError(f"-p {name}={value}: {notebook} takes {name} as {kind}{comment}; "
                      f"e.g. -p {name}={example}")


def check_overrides(notebooks: list[Path], overrides: dict) -> dict[Path, dict]:
    """Each notebook's overrides, typed; EmolibError for a name no notebook declares or a value
    of the wrong type. A notebook only receives the names its ``parameters`` cell declares."""
    declared = {notebook: declared_parameters(notebook) for notebook in notebooks}
    checked = {notebook: {} for notebook in notebooks}
    for name, value in (overrides or {}).items():
        owners = [notebook for notebook in notebooks if name in declared[notebook]]
        if not owners:
            known = sorted({key for names in declared.values() for key in names})
            close = difflib.get_close_matches(name, known, n=2)
            hint = (f"did you mean {' or '.join(close)}?" if close
                    else "the parameters cell of each notebook lists what it takes")
            raise EmolibError(f"-p {name}: no parameter {name!r} in "
                              f"{', '.join(nb.name for nb in notebooks)}; {hint}")
        for notebook in owners:
            checked[notebook][name] = _coerce(name, value, declared[notebook][name], notebook.name)
    return checked
