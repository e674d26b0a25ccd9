"""The chunk files of a recording: what one holds, and the buffers the recorder's worker fills.

A chunk is an ordinary ``.npz`` (``numpy.load`` opens it; no pickles) holding up to ``chunk_steps``
consecutive recorded steps of every voice attached to the recorder, one row per step.  The arrays
are listed in :data:`STEP_FIELDS`, :data:`VECTOR_FIELDS` and ``GATE_NAMES``; docs/recording-format.md
describes each.  Chunks are written to ``*.tmp`` and renamed, so a chunk file that exists is whole.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from folkrnn_live.model.step import GATE_NAMES

FORMAT = "folkrnn-live-recording/1"
META = "meta.json"
CHUNK_GLOB = "chunk_*.npz"
ENDED_CODES: dict[str | None, int] = {None: 0, "end": 1, "length": 2}
ENDED_NAMES = {v: k for k, v in ENDED_CODES.items()}

#: Per-step scalars: [n] each.
STEP_FIELDS = ("voice", "tune", "seed", "step", "time", "token", "input_token", "injected", "ended", "controls")
#: Per-step vectors over the vocabulary: [n, V] each.
VECTOR_FIELDS = ("x", "logits", "probs")

# One queued step: (voice id, tune id, seed, snip units or None, the voice's StepResult).
Item = tuple[int, int, int, Any, Any]


def chunk_name(index: int) -> str:
    return f"chunk_{index:06d}.npz"


class ChunkBuffer:
    """Preallocated arrays for one chunk, filled in batches and written as one file."""

    def __init__(self, chunk_steps: int, num_layers: int, hidden_size: int, vocab_size: int, dtype: Any) -> None:
        n, L, H, V = chunk_steps, num_layers, hidden_size, vocab_size
        self.size, self.num_layers = n, L
        self.arrays: dict[str, np.ndarray] = {
            "voice": np.empty(n, np.int16),
            "tune": np.empty(n, np.int32),
            "seed": np.empty(n, np.int64),
            "step": np.empty(n, np.int32),
            "time": np.empty(n, np.float64),
            "token": np.empty(n, np.int32),
            "input_token": np.empty(n, np.int32),
            "injected": np.empty(n, np.bool_),
            "ended": np.empty(n, np.int8),
            "controls": np.empty(n, np.int32),
            "x": np.empty((n, V), dtype),
            "logits": np.empty((n, V), dtype),
            "probs": np.empty((n, V), dtype),
        }
        for g in GATE_NAMES:
            self.arrays[g] = np.empty((n, L, H), dtype)
        self.fill = 0
        # Interventions change rarely: each distinct one is stored once per chunk (controls_json)
        # and every step holds an index into that table.
        self._ctrl_json: list[str] = []
        self._ctrl_last: tuple[int, Any, Any] | None = None

    @property
    def room(self) -> int:
        return self.size - self.fill

    def add(self, batch: list[Item]) -> None:
        """Copy up to ``room`` queued steps into the buffers (a few numpy calls per batch)."""
        a, n = self.fill, len(batch)
        if n > self.room:
            raise ValueError(f"batch of {n} steps does not fit the {self.room} free rows")
        z = slice(a, a + n)
        b = self.arrays
        results = [it[4] for it in batch]
        acts = [r.activations for r in results]
        if any(x is None for x in acts):  # the listener filters these; never write a half row
            raise ValueError("a step arrived without activations")
        acts = [_as_numpy(x) for x in acts]
        b["voice"][z] = [it[0] for it in batch]
        b["tune"][z] = [it[1] for it in batch]
        b["seed"][z] = [it[2] for it in batch]
        b["step"][z] = [r.step for r in results]
        b["time"][z] = [r.time for r in results]
        b["token"][z] = [r.token for r in results]
        b["injected"][z] = [r.injected for r in results]
        b["ended"][z] = [ENDED_CODES.get(r.ended, 0) for r in results]
        b["controls"][z] = [self._controls_index(r.controls, it[3]) for r, it in zip(results, batch, strict=True)]
        b["logits"][z] = _rows([r.logits for r in results])
        b["probs"][z] = _rows([r.probs for r in results])
        x_rows = b["x"][z]
        x_rows[...] = 0
        toks = np.full(n, -1, np.int32)
        for j, act in enumerate(acts):
            if act.x is not None:
                x_rows[j] = np.asarray(act.x).reshape(-1)
            else:
                toks[j] = int(np.asarray(act.tokens).reshape(-1)[0])
        onehot = np.flatnonzero(toks >= 0)
        x_rows[onehot, toks[onehot]] = 1
        b["input_token"][z] = toks
        # One numpy call per (gate, layer) for the whole batch.
        for g in GATE_NAMES:
            dst = b[g]
            for k in range(self.num_layers):
                dst[z, k] = np.concatenate([getattr(act, g)[k] for act in acts])
        self.fill += n

    def _controls_index(self, controls: dict[str, Any] | None, snips: Any) -> int:
        last = self._ctrl_last
        if last is not None and last[1] == controls and last[2] == snips:
            return int(last[0])
        rec = _with_snip_units(controls, snips)
        text = json.dumps(rec, sort_keys=True, default=str)
        try:
            idx = self._ctrl_json.index(text)
        except ValueError:
            idx = len(self._ctrl_json)
            self._ctrl_json.append(text)
        self._ctrl_last = (idx, controls, snips)
        return idx

    def write(self, path: Path, compress: bool, max_size: int | None = None) -> int | None:
        """Write the filled rows to ``path`` (atomically) and empty the buffer; returns the file size.
        A file larger than ``max_size`` bytes is not kept: its rows are discarded and None returned
        (the size of a compressed chunk is only known once written, so the test is on the file)."""
        n = self.fill
        arrays = {k: v[:n] for k, v in self.arrays.items()}
        arrays["controls_json"] = np.array(self._ctrl_json or ["null"], dtype=np.str_)
        tmp = path.with_name(path.name + ".tmp")
        try:
            with open(tmp, "wb") as fh:
                write_npz(fh, arrays, compress)
            size = tmp.stat().st_size
            if max_size is not None and size > max_size:
                tmp.unlink()
                return None
            tmp.replace(path)  # atomic: a chunk file that exists is complete
            return size
        finally:
            self.fill = 0
            self._ctrl_json = []
            self._ctrl_last = None


def write_npz(fh: Any, arrays: dict[str, np.ndarray], compress: bool = False) -> None:
    """What ``np.savez`` writes (an .npz any numpy opens), with each array's memory handed to the
    zip file as it is: ``np.savez`` first copies every array to bytes, which made writing a v2 chunk
    take 3x as long, on a thread that shares the CPU (and the GIL) with the voices."""
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(fh, "w", compression=mode, allowZip64=True) as zf:
        for name, a in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as f:
                if a.dtype.hasobject or not a.flags.c_contiguous:
                    np.lib.format.write_array(f, a, allow_pickle=False)
                    continue
                np.lib.format.write_array_header_1_0(f, np.lib.format.header_data_from_array_1_0(a))
                f.write(a.data.cast("B"))  # the array's own buffer, no copy


def _with_snip_units(controls: dict[str, Any] | None, snips: Any) -> dict[str, Any] | None:
    """The voice's summary of its interventions, with each snip's unit list (the summary only
    counts them; a recording must say which units were cut)."""
    if controls is None or not snips:
        return controls
    out = dict(controls)
    out["snip"] = {str(k): {"mode": s.mode, "units": list(s.units)} for k, s in snips.items()}
    return out


def _rows(vectors: list[Any]) -> np.ndarray:
    first = vectors[0]
    if hasattr(first, "detach"):
        import torch

        return torch.stack([v.reshape(-1) for v in vectors]).detach().cpu().numpy()
    return np.stack([np.asarray(v).reshape(-1) for v in vectors])


class _NumpyActs:
    """A step's activations with every array on the host (only built for torch steppers)."""

    def __init__(self, act: Any) -> None:
        for g in GATE_NAMES:
            setattr(self, g, list(act.layer_stack(g)))
        self.x = None if act.x is None else _np(act.x)
        self.tokens = None if act.tokens is None else _np(act.tokens)


def _np(a: Any) -> np.ndarray:
    return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)


def _as_numpy(act: Any) -> Any:
    return _NumpyActs(act) if hasattr(act.h[0], "detach") else act
