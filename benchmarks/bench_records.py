"""What the benchmark scripts share: where a record was made, the command that made it, the files.

A record is ``docs/metrics/<name>.md`` (a table to read) beside ``<name>.json`` (the rows, for
the docs tests and the next session), each ending with the conditions it was measured under.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(load: str) -> str:
    """This machine, what else ran meanwhile (``load``) and today's date, for the conditions."""
    return f"{cpu_name()}, {os.cpu_count()} cores, {load} ({time.strftime('%Y-%m-%d')})"


def command(script: str, argv=None) -> str:
    """The command line that re-makes a record: ``script``'s arguments (``sys.argv`` by default)."""
    return f".venv/bin/python benchmarks/{script} " + shlex.join(sys.argv[1:] if argv is None else argv)


def header(title: str, script: str, record: Path, protocol: str) -> list[str]:
    """A record's first lines: its title, the script and JSON file behind it, its protocol."""
    return [f"# {title}", "", f"Produced by `benchmarks/{script}`; the rows are in "
            f"`{record.with_suffix('.json').name}`. {protocol}", ""]


def write(record: Path, payload: dict, lines: list[str], conditions: dict) -> None:
    """``record`` (.md: ``lines`` and the conditions) and its .json (``payload`` and the conditions)."""
    record.with_suffix(".json").write_text(json.dumps({**payload, "conditions": conditions}, indent=1) + "\n")
    lines = lines + ["", "## Conditions", ""] + [f"- **{key}**: {value}" for key, value in conditions.items()]
    record.write_text("\n".join(lines) + "\n")
