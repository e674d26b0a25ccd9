"""Reading recordings written by :class:`~folkrnn_live.analysis.recorder.Recorder`.

``load_recording(path)`` gathers the chunk files of one voice into arrays over steps; gates are
``[steps, layers, units]``.  A directory that is not a recording, or a chunk that cannot be read,
raises :class:`RecordingError` naming the file and what is wrong.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from folkrnn_live.analysis.recorder import CHUNK_GLOB, FORMAT, META
from folkrnn_live.model.step import GATE_NAMES
from folkrnn_live.tokens.vocab import Vocabulary

_STEP_FIELDS = ("voice", "tune", "seed", "step", "time", "token", "input_token", "injected", "ended")
_VECTOR_FIELDS = ("x", "logits", "probs")
ENDED_NAMES = {0: None, 1: "end", 2: "length"}


class RecordingError(ValueError):
    """A recording directory that cannot be read; the message names the file and the problem."""


@dataclass
class Recording:
    """The steps of one voice.  Step arrays are [T]; ``x``/``logits``/``probs`` [T, V]; each gate
    in ``gates`` (``i f o g_pre g c h``) is [T, L, H].  ``h`` is what each layer sent onward (after
    any snip), ``g_pre``/``g`` the cell candidate before/after tanh, ``x`` the input vector (one-hot
    or the forced mix).  ``input_token`` is -1 where the input was a mix."""

    path: Path
    meta: dict[str, Any]
    voice: str
    vocab: Vocabulary
    step: np.ndarray
    tune: np.ndarray
    seed: np.ndarray
    time: np.ndarray
    token: np.ndarray
    input_token: np.ndarray
    injected: np.ndarray
    ended: np.ndarray
    x: np.ndarray
    logits: np.ndarray
    probs: np.ndarray
    gates: dict[str, np.ndarray]
    controls: list[dict[str, Any] | None] = field(repr=False)

    # --- shapes and views -------------------------------------------------------------------------
    @property
    def n_steps(self) -> int:
        return len(self.step)

    @property
    def num_layers(self) -> int:
        return int(self.meta["model"]["num_layers"])

    @property
    def hidden_size(self) -> int:
        return int(self.meta["model"]["hidden_size"])

    @property
    def tokens(self) -> list[str]:
        """The sampled (output) token of every step."""
        return self.vocab.decode(self.token)

    @property
    def input_tokens(self) -> list[str]:
        """The token fed in at every step (``<s>`` first); for a forced mix, the token generated the
        step before (the mix's main part), read from the preceding step's output."""
        out: list[str] = []
        for j, t in enumerate(self.input_token):
            if t >= 0:
                out.append(self.vocab.tokens[int(t)])
            elif j > 0 and self.tune[j - 1] == self.tune[j]:
                out.append(self.vocab.tokens[int(self.token[j - 1])])
            else:
                out.append("?")
        return out

    @property
    def tune_ids(self) -> list[int]:
        """The tunes present, in recording order."""
        return list(dict.fromkeys(int(t) for t in self.tune))

    def gate(self, name: str, layer: int | None = None) -> np.ndarray:
        """One activation: [T, L, H], or [T, H] for one layer (0-based)."""
        if name not in self.gates:
            raise ValueError(f"activation must be one of {', '.join(GATE_NAMES)}; got {name!r}")
        a = self.gates[name]
        if layer is None:
            return a
        if not 0 <= layer < a.shape[1]:
            raise ValueError(
                f"layer must be in range 0..{a.shape[1] - 1} (0 is the first LSTM layer); got {layer}"
            )
        return a[:, layer, :]

    def select(self, mask: np.ndarray) -> Recording:
        """The steps where ``mask`` is true."""
        sel = {f: getattr(self, f)[mask] for f in (*_STEP_FIELDS[1:], *_VECTOR_FIELDS)}
        idx = np.flatnonzero(mask)
        return replace(
            self,
            **sel,
            gates={g: a[mask] for g, a in self.gates.items()},
            controls=[self.controls[i] for i in idx],
        )

    def tune_view(self, k: int = 0) -> Recording:
        """The k-th tune of this voice (0-based, in recording order)."""
        ids = self.tune_ids
        if not ids:
            raise RecordingError(f"{self.path}: voice {self.voice!r} has no recorded steps")
        if not 0 <= k < len(ids):
            raise ValueError(f"tune must be in range 0..{len(ids) - 1}; got {k}")
        return self.select(self.tune == ids[k])


def read_meta(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_dir():
        raise RecordingError(f"{p}: not a directory (a recording is a directory with {META} and chunk files)")
    m = p / META
    if not m.is_file():
        raise RecordingError(f"{m}: missing; {p} is not a recording")
    try:
        meta = json.loads(m.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordingError(f"{m}: not valid JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise RecordingError(f"{m}: 'format' must be {FORMAT!r}")
    model = meta.get("model")
    if not isinstance(model, dict) or not all(
        isinstance(model.get(k), int) for k in ("num_layers", "hidden_size")
    ):
        raise RecordingError(f"{m}: 'model' must hold integer 'num_layers' and 'hidden_size'")
    if not isinstance(model.get("tokens"), list):
        raise RecordingError(f"{m}: 'model.tokens' must be the list of vocabulary tokens")
    if not isinstance(meta.get("voices"), list):
        raise RecordingError(f"{m}: 'voices' must be a list")
    return meta


def chunk_files(path: str | Path) -> list[Path]:
    """Complete chunk files in write order (``*.tmp`` leftovers of a killed writer are ignored)."""
    return sorted(Path(path).glob(CHUNK_GLOB))


def _read_chunk(f: Path, L: int, H: int, V: int) -> dict[str, Any]:
    try:
        # Open the file here so it is closed even when numpy rejects it (a truncated zip).
        with open(f, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise RecordingError(f"{f}: not a readable chunk ({exc})") from exc
    missing = [
        k for k in (*_STEP_FIELDS, *_VECTOR_FIELDS, *GATE_NAMES, "controls", "controls_json") if k not in d
    ]
    if missing:
        raise RecordingError(f"{f}: chunk lacks arrays {missing}")
    n = len(d["step"])
    for g in GATE_NAMES:
        if d[g].shape != (n, L, H):
            raise RecordingError(f"{f}: array {g!r} must have shape {(n, L, H)}; got {d[g].shape}")
    for k in _VECTOR_FIELDS:
        if d[k].shape != (n, V):
            raise RecordingError(f"{f}: array {k!r} must have shape {(n, V)}; got {d[k].shape}")
    return d


def load_recording(path: str | Path, voice: str | None = None) -> Recording:
    """Load one voice of a recording.  ``voice`` may be omitted when the recording has one voice."""
    p = Path(path)
    meta = read_meta(p)
    names = [v.get("name") if isinstance(v, dict) else None for v in meta["voices"]]
    if voice is None:
        if len(names) != 1:
            if not names:
                raise RecordingError(f"{p}: no voice was ever attached; nothing was recorded")
            raise ValueError(f"{p} holds voices {names}; pass voice= one of them")
        vid = 0
    else:
        if voice not in names:
            raise ValueError(f"voice must be one of {names}; got {voice!r}")
        vid = names.index(voice)
    mm = meta["model"]
    L, H = mm["num_layers"], mm["hidden_size"]
    try:
        vocab = Vocabulary(tuple(mm["tokens"]))
    except ValueError as exc:
        raise RecordingError(f"{p / META}: model.tokens: {exc}") from exc
    V = len(vocab)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in (*_STEP_FIELDS, *_VECTOR_FIELDS, *GATE_NAMES)}
    controls: list[dict[str, Any] | None] = []
    for f in chunk_files(p):
        d = _read_chunk(f, L, H, V)
        mask = d["voice"] == vid
        if not mask.any():
            continue
        for k in parts:
            parts[k].append(d[k][mask])
        table = [json.loads(str(s)) for s in d["controls_json"]]
        controls.extend(table[int(i)] for i in d["controls"][mask])
    dt = np.dtype(meta.get("dtype", "float32"))

    def cat(k: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return np.concatenate(parts[k]) if parts[k] else np.empty((0, *shape), dtype)

    return Recording(
        path=p,
        meta=meta,
        voice=str(names[vid]),
        vocab=vocab,
        **{k: cat(k, (), np.int64) for k in _STEP_FIELDS if k != "voice"},
        x=cat("x", (V,), dt),
        logits=cat("logits", (V,), dt),
        probs=cat("probs", (V,), dt),
        gates={g: cat(g, (L, H), dt) for g in GATE_NAMES},
        controls=controls,
    )
