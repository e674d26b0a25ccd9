"""Reading recordings written by :class:`~folkrnn_live.recording.recorder.Recorder`.

``load_recording(path)`` gathers the chunk files of one voice into arrays over steps; gates are
``[steps, layers, units]``.  ``load_recording(path, tune=k)`` reads only the k-th tune's rows, so a
long live session need not fit in memory.  A directory that is not a recording, or a chunk that
cannot be read, raises :class:`RecordingError` naming the file and what is wrong.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from folkrnn_live.model.step import GATE_NAMES
from folkrnn_live.recording.chunks import CHUNK_GLOB, ENDED_NAMES, FORMAT, META, STEP_FIELDS, VECTOR_FIELDS
from folkrnn_live.tokens.vocab import Vocabulary

__all__ = ["ENDED_NAMES", "Recording", "RecordingError", "chunk_files", "load_recording", "read_meta"]

_PER_STEP = tuple(f for f in STEP_FIELDS if f not in ("voice", "controls"))


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
        """The token fed in at every step (``<s>`` first).  For a forced mix: the token generated
        the step before (the mix's main part), or ``?`` where that step was not recorded."""
        out: list[str] = []
        for j, t in enumerate(self.input_token):
            if t >= 0:
                out.append(self.vocab.tokens[int(t)])
            elif j > 0 and self.tune[j - 1] == self.tune[j] and self.step[j - 1] == self.step[j] - 1:
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
            raise ValueError(f"layer must be in range 0..{a.shape[1] - 1} (0 is the first LSTM layer); got {layer}")
        return a[:, layer, :]

    def select(self, mask: np.ndarray) -> Recording:
        """The steps where ``mask`` is true."""
        sel = {f: getattr(self, f)[mask] for f in (*_PER_STEP, *VECTOR_FIELDS)}
        idx = np.flatnonzero(mask)
        return replace(
            self, **sel, gates={g: a[mask] for g, a in self.gates.items()}, controls=[self.controls[i] for i in idx]
        )

    def tune_view(self, k: int = 0) -> Recording:
        """The k-th tune of this voice (0-based, in recording order)."""
        ids = self.tune_ids
        if not ids:
            raise RecordingError(f"{self.path}: voice {self.voice!r} has no recorded steps")
        if not 0 <= k < len(ids):
            raise ValueError(f"tune must be in range 0..{len(ids) - 1} (this voice has {len(ids)} tunes); got {k}")
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
        isinstance(model.get(k), int) and model[k] > 0 for k in ("num_layers", "hidden_size")
    ):
        raise RecordingError(f"{m}: 'model' must hold positive integers 'num_layers' and 'hidden_size'")
    if not isinstance(model.get("tokens"), list):
        raise RecordingError(f"{m}: 'model.tokens' must be the list of vocabulary tokens")
    if not isinstance(meta.get("voices"), list):
        raise RecordingError(f"{m}: 'voices' must be a list")
    if meta.get("dtype", "float32") not in ("float32", "float16"):
        raise RecordingError(f"{m}: 'dtype' must be 'float32' or 'float16'; got {meta.get('dtype')!r}")
    return meta


def chunk_files(path: str | Path) -> list[Path]:
    """Complete chunk files in write order (``*.tmp`` leftovers of a killed writer are ignored)."""
    return sorted(Path(path).glob(CHUNK_GLOB))


class _Chunk:
    """One open chunk file; arrays are read from the zip only when asked for."""

    def __init__(self, f: Path, L: int, H: int, V: int) -> None:
        self.f, self.L, self.H, self.V = f, L, H, V
        # The file is opened here, not by np.load: np.load leaks its handle when the zip is bad.
        self.fh = open(f, "rb")  # noqa: SIM115 - closed by close(), the arrays are read lazily
        try:
            self.z = np.load(self.fh, allow_pickle=False)
            if not hasattr(self.z, "files"):
                raise ValueError("a single array, not an .npz archive")
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            self.fh.close()
            raise RecordingError(f"{f}: not a readable chunk ({exc})") from exc
        missing = [k for k in (*STEP_FIELDS, *VECTOR_FIELDS, *GATE_NAMES, "controls_json") if k not in self.z.files]
        if missing:
            self.close()
            raise RecordingError(f"{f}: chunk lacks arrays {missing}")
        try:
            self.n = len(self.get("step"))
        except RecordingError:
            self.close()
            raise

    def get(self, k: str) -> np.ndarray:
        try:
            a = self.z[k]
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise RecordingError(f"{self.f}: array {k!r} is not readable ({exc})") from exc
        n = getattr(self, "n", len(a))
        want = {**{g: (n, self.L, self.H) for g in GATE_NAMES}, **{v: (n, self.V) for v in VECTOR_FIELDS}}
        shape = want.get(k, (n,) if k != "controls_json" else a.shape)
        if a.shape != shape:
            raise RecordingError(f"{self.f}: array {k!r} must have shape {shape}; got {a.shape}")
        return a

    def controls(self, mask: np.ndarray) -> list[dict[str, Any] | None]:
        try:
            table = [json.loads(str(s)) for s in self.get("controls_json")]
        except json.JSONDecodeError as exc:
            raise RecordingError(f"{self.f}: 'controls_json' holds invalid JSON ({exc})") from exc
        idx = self.get("controls")[mask]
        if len(idx) and not (idx.min() >= 0 and idx.max() < len(table)):
            raise RecordingError(f"{self.f}: 'controls' must index 'controls_json' (0..{len(table) - 1})")
        return [table[int(i)] for i in idx]

    def close(self) -> None:
        self.z.close()
        self.fh.close()


def load_recording(path: str | Path, voice: str | None = None, tune: int | None = None) -> Recording:
    """Load one voice of a recording (``voice`` may be omitted when it has one), all its steps or
    only its ``tune``-th tune (0-based, in recording order)."""
    p = Path(path)
    meta = read_meta(p)
    names = [v.get("name") if isinstance(v, dict) else None for v in meta["voices"]]
    if voice is None:
        if len(names) != 1:
            if not names:
                raise RecordingError(f"{p}: no voice was ever attached; nothing was recorded")
            raise ValueError(f"voice must be one of {names} (this recording has several); got none")
        vid = 0
    else:
        if voice not in names:
            raise ValueError(f"voice must be one of {names}; got {voice!r}")
        vid = names.index(voice)
    mm = meta["model"]
    L, H = mm["num_layers"], mm["hidden_size"]
    try:
        vocab = Vocabulary(tuple(mm["tokens"]))
    except (ValueError, TypeError) as exc:
        raise RecordingError(f"{p / META}: model.tokens: {exc}") from exc
    V = len(vocab)
    files = chunk_files(p)
    want_tune: int | None = None
    if tune is not None:
        ids = _tune_ids(files, vid, L, H, V)
        if not 0 <= tune < len(ids):
            if not ids:
                raise RecordingError(f"{p}: voice {names[vid]!r} has no recorded steps")
            raise ValueError(f"tune must be in range 0..{len(ids) - 1} (this voice has {len(ids)} tunes); got {tune}")
        want_tune = ids[tune]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in (*_PER_STEP, *VECTOR_FIELDS, *GATE_NAMES)}
    controls: list[dict[str, Any] | None] = []
    for f in files:
        c = _Chunk(f, L, H, V)
        try:
            mask = c.get("voice") == vid
            if want_tune is not None:
                mask &= c.get("tune") == want_tune
            if not mask.any():
                continue
            for k in parts:
                parts[k].append(c.get(k)[mask])
            controls.extend(c.controls(mask))
        finally:
            c.close()
    dt = np.dtype(meta.get("dtype", "float32"))

    def cat(k: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return np.concatenate(parts[k]) if parts[k] else np.empty((0, *shape), dtype)

    return Recording(
        path=p,
        meta=meta,
        voice=str(names[vid]),
        vocab=vocab,
        **{k: cat(k, (), np.int64) for k in _PER_STEP},
        x=cat("x", (V,), dt),
        logits=cat("logits", (V,), dt),
        probs=cat("probs", (V,), dt),
        gates={g: cat(g, (L, H), dt) for g in GATE_NAMES},
        controls=controls,
    )


def _tune_ids(files: list[Path], vid: int, L: int, H: int, V: int) -> list[int]:
    """The tune ids of one voice in recording order, reading only the small per-step arrays."""
    seen: dict[int, None] = {}
    for f in files:
        c = _Chunk(f, L, H, V)
        try:
            t = c.get("tune")[c.get("voice") == vid]
            seen.update(dict.fromkeys(int(x) for x in t))
        finally:
            c.close()
    return list(seen)
