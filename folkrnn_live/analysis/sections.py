"""What every analysis task writes: number files (JSON, CSV, npz) and a :class:`Section` that
describes its results for the report."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from folkrnn_live.recording.recording import Recording


@dataclass
class Section:
    """One analysis's part of the report."""

    key: str
    title: str
    text: list[str] = field(default_factory=list)  # paragraphs (Markdown inline syntax)
    code: list[str] = field(default_factory=list)  # preformatted blocks
    tables: list[tuple[list[str], list[list[str]]]] = field(default_factory=list)  # (header, rows)
    images: list[tuple[str, str]] = field(default_factory=list)  # (file name, caption)
    files: list[str] = field(default_factory=list)  # number files written
    warnings: list[str] = field(default_factory=list)  # one line each: printed by the CLI, shown in the report


def jsonable(o: Any) -> Any:
    """Plain JSON types; inf as the strings "inf"/"-inf" and NaN as null (JSON has neither)."""
    if isinstance(o, float) and not math.isfinite(o):
        return None if math.isnan(o) else ("inf" if o > 0 else "-inf")
    if isinstance(o, dict):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [jsonable(v) for v in o]
    if isinstance(o, np.generic):
        return jsonable(o.item())
    if isinstance(o, np.ndarray):
        return jsonable(o.tolist())
    return o


def write_json(path: Path, obj: Any) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jsonable(obj), indent=1), encoding="utf-8")
    return path.name


def write_csv(path: Path, header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path.name


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, allow_pickle=False, **arrays)
    return path.name


def period_label(p: float) -> str:
    return "inf" if math.isinf(p) else f"{p:.4f}"


def check_layers(rec: Recording, layers: Sequence[int] | None) -> list[int]:
    """The layers asked for (all when None), each checked against the recording."""
    all_layers = list(range(rec.num_layers))
    if layers is None:
        return all_layers
    bad = [k for k in layers if k not in all_layers]
    if bad:
        raise ValueError(f"--layer must be in range 0..{rec.num_layers - 1} (0 is the first LSTM layer); got {bad}")
    return list(layers)


def need_steps(rec: Recording, n: int = 2) -> None:
    if rec.n_steps < n:
        raise ValueError(f"{rec.path}: the selected tune has {rec.n_steps} steps; this analysis needs at least {n}")
