"""Result files: JSON and markdown stamped with where and how they were made."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from wsas.files import write_file


def code_commit(package: Path = Path(__file__).parent) -> str | None:
    """The commit of the code in ``package`` (a folder in a git checkout; default: this library),
    with ``+dirty`` when a file in it differs from that commit; None outside a git checkout."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "--no-optional-locks", *args],
            capture_output=True,
            text=True,
            cwd=package,
            timeout=10,
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        changed = git("status", "--porcelain", "--", ".")
    except (OSError, subprocess.SubprocessError):
        return None
    return (commit + ("+dirty" if changed else "")) if commit else None


# read once, when the code is loaded (each worker process of a run loads it when it starts): a
# commit made while a long run trains is not the code it trains with
CODE_COMMIT = code_commit()


def provenance() -> dict:
    """Git commit of the running code, machine, versions and time, for stamping every result
    file."""
    device = (
        torch.cuda.get_device_name(0)
        if torch.cuda.is_available()
        else f"CPU ({os.cpu_count()} cores)"
    )
    return {
        "git_commit": CODE_COMMIT,
        "machine": f"{platform.machine()} {device}",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a UTF-8 text file all or nothing (:func:`wsas.files.write_file`)."""
    return write_file(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def finite(data):
    """``data`` (nested dicts, lists, tuples) with each NaN or infinite float replaced by None."""
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [finite(v) for v in data]
    if isinstance(data, float | np.floating):
        return float(data) if math.isfinite(data) else None
    return data


def json_text(data, **kwargs) -> str:
    """Strict JSON of ``data``: a non-finite float is ``null``, never a bare ``NaN`` or
    ``Infinity`` (which JSON does not have); ``kwargs`` go to :func:`json.dumps`."""
    return json.dumps(finite(data), allow_nan=False, **kwargs)


def write_json(path: str | os.PathLike, data: dict) -> Path:
    """Write ``data`` plus a ``provenance`` stamp as indented (strict) JSON, atomically."""
    return write_text(path, json_text({**data, "provenance": provenance()}, indent=2) + "\n")


def markdown_table(rows: list[dict], digits: int = 3) -> str:
    """A markdown table with one column per key of the first row (floats rounded)."""
    if not rows:
        return ""
    keys = list(rows[0])

    def cell(v) -> str:
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v).replace("|", "/")

    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(cell(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)
