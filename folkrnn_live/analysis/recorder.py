"""Activation recorder: every step of one or more voices to disk, off the note path.

The listener a voice calls after each step does O(1) work: it appends a reference to the step's
:class:`~folkrnn_live.sampler.voice.StepResult` to a bounded deque (or counts a drop when the deque
is full).  A background thread drains the deque in batches, copies the arrays into preallocated
chunk buffers and writes each full chunk as ``chunk_NNNNNN.npz`` (written to ``*.tmp`` and renamed,
so a file that exists is complete: a recording survives kill -9 up to its last flushed chunk).

The worker wakes on a timer instead of on every step: waking a thread per step would cost the
voice a futex call per note, and batching lets numpy copy many steps per Python call, which keeps
the worker's hold on the GIL short.  See docs/recording-format.md for the files.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as _dt
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from folkrnn_live.model.network import FolkRNN
from folkrnn_live.model.step import GATE_NAMES

FORMAT = "folkrnn-live-recording/1"
META = "meta.json"
CHUNK_GLOB = "chunk_*.npz"
ENDED_CODES = {None: 0, "end": 1, "length": 2}
OnFull = Literal["drop", "block"]
DType = Literal["float32", "float16"]


@dataclass(frozen=True)
class RecorderStats:
    """A snapshot of a recorder's counters."""

    steps: int  # steps written to chunk files
    chunks: int  # chunk files written
    bytes: int  # bytes of chunk files written
    dropped: int  # steps lost because the queue was full (on_full='drop')
    queued: int  # steps waiting for the worker or in the unflushed chunk buffer


class _Attached:
    """What the recorder keeps per attached voice."""

    def __init__(
        self, voice: Any, vid: int, name: str, listener: Callable[[Any], None], capture: bool
    ) -> None:
        self.voice = voice
        self.vid = vid
        self.name = name
        self.listener = listener
        self.prev_capture = capture


class Recorder:
    """Records every step of the voices attached to it.

    ``Recorder(out_dir, model, meta={...}, chunk_steps=256)`` creates ``out_dir`` (empty or new),
    writes ``meta.json`` and starts the writer thread.  ``max_queue_steps`` bounds the steps held in
    memory beyond the chunk buffer; ``on_full='drop'`` (live use) counts a dropped step instead of
    ever blocking the voice, ``'block'`` (offline recording) waits for room so nothing is lost.
    ``flush_seconds``: a partly filled chunk is written after this long without a full one, so a
    quiet live session still reaches the disk."""

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        model: FolkRNN,
        meta: dict[str, Any] | None = None,
        chunk_steps: int = 256,
        *,
        max_queue_steps: int = 1024,
        on_full: OnFull = "drop",
        dtype: DType = "float32",
        compress: bool = False,
        flush_seconds: float = 2.0,
        poll_seconds: float = 0.02,
    ) -> None:
        if not 1 <= chunk_steps <= 1_000_000:
            raise ValueError(f"chunk_steps must be in range 1..1000000; got {chunk_steps}")
        if not 1 <= max_queue_steps <= 10_000_000:
            raise ValueError(f"max_queue_steps must be in range 1..10000000; got {max_queue_steps}")
        if on_full not in ("drop", "block"):
            raise ValueError(f"on_full must be 'drop' or 'block'; got {on_full!r}")
        if dtype not in ("float32", "float16"):
            raise ValueError(f"dtype must be 'float32' or 'float16'; got {dtype!r}")
        if not 0.0 < flush_seconds <= 3600.0:
            raise ValueError(f"flush_seconds must be in range (0, 3600]; got {flush_seconds}")
        if not 0.0 < poll_seconds <= 10.0:
            raise ValueError(f"poll_seconds must be in range (0, 10]; got {poll_seconds}")
        self.path = Path(out_dir)
        self.path.mkdir(parents=True, exist_ok=True)
        if any(self.path.glob(CHUNK_GLOB)) or (self.path / META).exists():
            raise ValueError(f"{self.path}: already holds a recording; record into a new or empty directory")
        cfg = model.config
        self.num_layers, self.hidden_size, self.vocab_size = cfg.num_layers, cfg.hidden_size, cfg.vocab_size
        self.chunk_steps = chunk_steps
        self.max_queue_steps = max_queue_steps
        self.on_full: OnFull = on_full
        self.dtype = np.dtype(dtype)
        self.compress = compress
        self.flush_seconds = flush_seconds
        self.poll_seconds = poll_seconds
        self._meta: dict[str, Any] = {
            "format": FORMAT,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "model": {
                "num_layers": cfg.num_layers,
                "hidden_size": cfg.hidden_size,
                "vocab_size": cfg.vocab_size,
                "tokens": list(cfg.tokens),
            },
            "gates": list(GATE_NAMES),
            "dtype": dtype,
            "chunk_steps": chunk_steps,
            "voices": [],
            "closed": False,
            "meta": dict(meta or {}),
        }
        self._meta_lock = threading.Lock()
        self._write_meta()
        # The hot-path queue.  deque.append/popleft are atomic under the GIL, so the listener takes
        # no lock; only the 'block' policy waits on the condition below.
        self._queue: collections.deque[tuple[int, int, int, Any]] = collections.deque()
        self._room = threading.Condition()
        self._attached: dict[int, _Attached] = {}  # id(voice) -> attachment
        self._names: list[str] = []
        self._dropped = 0
        self._steps = 0
        self._chunks = 0
        self._bytes = 0
        self._buffered = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._flushed = threading.Condition()
        self._flush_requests = 0
        self._flushes_done = 0
        self._closed = False
        self._error: BaseException | None = None
        self._buf = self._new_buffers()
        self._fill = 0
        self._last_flush = time.monotonic()
        self._ctrl_last: tuple[int, Any] | None = None  # per chunk: (index, dict) of the latest controls
        self._ctrl_json: list[str] = []
        self._worker = threading.Thread(target=self._run, name=f"recorder:{self.path.name}", daemon=True)
        self._worker.start()

    # --- public API ---------------------------------------------------------------------------------
    def attach(self, voice: Any, name: str | None = None) -> str:
        """Record every step of ``voice`` from now on; turns its activation capture on.  Returns the
        name the voice is recorded under (``name``, else ``voice.name``, else ``voice<N>``)."""
        if self._closed:
            raise ValueError("recorder is closed; start a new Recorder")
        if id(voice) in self._attached:
            raise ValueError(f"voice is already attached as {self._attached[id(voice)].name!r}")
        cfg = voice.model.config
        if (cfg.num_layers, cfg.hidden_size, cfg.vocab_size) != (
            self.num_layers,
            self.hidden_size,
            self.vocab_size,
        ):
            raise ValueError(
                f"voice's model has layers/hidden/vocab {(cfg.num_layers, cfg.hidden_size, cfg.vocab_size)}; "
                f"this recording expects {(self.num_layers, self.hidden_size, self.vocab_size)}"
            )
        name = name or getattr(voice, "name", None) or f"voice{len(self._names)}"
        if name in self._names:
            raise ValueError(f"voice name {name!r} is already used in this recording; choose another name")
        vid = len(self._names)
        self._names.append(name)
        with self._meta_lock:
            self._meta["voices"].append({"name": name, "attached": time.time()})
        self._write_meta()
        queue, maxlen, block = self._queue, self.max_queue_steps, self.on_full == "block"

        def listener(result: Any) -> None:
            # The hot path: a tuple of references and one append, nothing copied.
            item = (vid, getattr(voice, "tunes_started", 1) - 1, getattr(voice, "seed", -1), result)
            if len(queue) < maxlen:
                queue.append(item)
            elif block:
                self._wait_for_room(item)
            else:
                self._dropped += 1

        att = _Attached(voice, vid, name, listener, bool(voice.capture))
        self._attached[id(voice)] = att
        voice.capture = True
        voice.listeners.append(listener)
        return name

    def detach(self, voice: Any) -> None:
        """Stop recording ``voice`` (steps already queued are still written)."""
        att = self._attached.pop(id(voice), None)
        if att is None:
            raise ValueError("voice is not attached to this recorder")
        if att.listener in voice.listeners:
            voice.listeners.remove(att.listener)
        voice.capture = att.prev_capture

    def flush(self, timeout: float = 5.0) -> bool:
        """Write everything queued so far (a partial chunk if need be); True when done in time."""
        if self._closed:
            return True
        with self._flushed:
            self._flush_requests += 1
            target = self._flush_requests
            self._wake.set()
            return (
                self._flushed.wait_for(
                    lambda: self._flushes_done >= target or not self._worker.is_alive(), timeout
                )
                and self._error is None
            )

    def close(self, timeout: float = 2.0) -> None:
        """Detach every voice, write everything queued, stop the worker; idempotent.  Waits up to
        ``timeout`` seconds for the worker to finish writing."""
        if self._closed:
            return
        for att in list(self._attached.values()):
            self.detach(att.voice)
        self._closed = True
        self._stop.set()
        self._wake.set()
        with self._room:
            self._room.notify_all()
        self._worker.join(timeout)
        with self._meta_lock:
            self._meta["closed"] = not self._worker.is_alive()
            self._meta["stats"] = self._stats_dict()
        self._write_meta()
        if self._error is not None:
            raise OSError(f"{self.path}: the recorder's writer failed: {self._error}") from self._error

    @property
    def stats(self) -> RecorderStats:
        return RecorderStats(
            self._steps, self._chunks, self._bytes, self._dropped, len(self._queue) + self._fill
        )

    @property
    def voices(self) -> list[str]:
        return list(self._names)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Recorder:
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Joining the writer may wait for a disk write: keep the event loop free meanwhile.
        await asyncio.to_thread(self.close)

    # --- internals ------------------------------------------------------------------------------------
    def _stats_dict(self) -> dict[str, int]:
        s = self.stats
        return {"steps": s.steps, "chunks": s.chunks, "bytes": s.bytes, "dropped": s.dropped}

    def _write_meta(self) -> None:
        with self._meta_lock:
            text = json.dumps(self._meta, indent=1)
            tmp = self.path / (META + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(self.path / META)

    def _wait_for_room(self, item: tuple[int, int, int, Any]) -> None:
        self._wake.set()
        with self._room:
            self._room.wait_for(lambda: len(self._queue) < self.max_queue_steps or self._stop.is_set())
        if self._stop.is_set() and len(self._queue) >= self.max_queue_steps:
            self._dropped += 1
        else:
            self._queue.append(item)

    def _new_buffers(self) -> dict[str, np.ndarray]:
        n, L, H, V = self.chunk_steps, self.num_layers, self.hidden_size, self.vocab_size
        b: dict[str, np.ndarray] = {
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
            "x": np.empty((n, V), self.dtype),
            "logits": np.empty((n, V), self.dtype),
            "probs": np.empty((n, V), self.dtype),
        }
        for g in GATE_NAMES:
            b[g] = np.empty((n, L, H), self.dtype)
        return b

    def _run(self) -> None:
        try:
            while True:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
                stopping = self._stop.is_set()
                self._drain()
                with self._flushed:
                    want_flush = self._flush_requests > self._flushes_done
                    target = self._flush_requests
                due = self._fill and time.monotonic() - self._last_flush >= self.flush_seconds
                if self._fill and (want_flush or stopping or due):
                    self._write_chunk()
                if want_flush:
                    with self._flushed:
                        self._flushes_done = target
                        self._flushed.notify_all()
                if stopping and not self._queue:
                    return
        except BaseException as exc:  # surfaced by close(); the voice must never see it
            self._error = exc
            with self._flushed:
                self._flushes_done = self._flush_requests
                self._flushed.notify_all()

    def _drain(self) -> None:
        """Move everything queued into the chunk buffers, writing each chunk as it fills."""
        q = self._queue
        while q:
            room = self.chunk_steps - self._fill
            batch = [q.popleft() for _ in range(min(room, len(q)))]
            if self.on_full == "block":
                with self._room:
                    self._room.notify_all()
            self._copy(batch)
            if self._fill == self.chunk_steps:
                self._write_chunk()

    def _copy(self, batch: list[tuple[int, int, int, Any]]) -> None:
        a, n = self._fill, len(batch)
        z = slice(a, a + n)
        b = self._buf
        results = [it[3] for it in batch]
        b["voice"][z] = [it[0] for it in batch]
        b["tune"][z] = [it[1] for it in batch]
        b["seed"][z] = [it[2] for it in batch]
        b["step"][z] = [r.step for r in results]
        b["time"][z] = [r.time for r in results]
        b["token"][z] = [r.token for r in results]
        b["injected"][z] = [r.injected for r in results]
        b["ended"][z] = [ENDED_CODES.get(r.ended, 0) for r in results]
        b["controls"][z] = [self._controls_index(r.controls) for r in results]
        b["logits"][z] = _rows([r.logits for r in results])
        b["probs"][z] = _rows([r.probs for r in results])
        acts = [r.activations for r in results]
        if any(x is None for x in acts):
            raise ValueError("a step arrived without activations; the voice's capture was turned off")
        acts = [_as_numpy(x) for x in acts]
        x_rows = b["x"][z]
        x_rows[...] = 0
        toks = np.full(n, -1, np.int32)
        for j, act in enumerate(acts):
            if act.x is not None:
                x_rows[j] = act.x[0]
            else:
                toks[j] = int(act.tokens[0])
        onehot = np.flatnonzero(toks >= 0)
        x_rows[onehot, toks[onehot]] = 1
        b["input_token"][z] = toks
        # One numpy call per (gate, layer): the per-step Python work is a list comprehension item.
        for g in GATE_NAMES:
            dst = b[g]
            for k in range(self.num_layers):
                dst[z, k] = np.concatenate([getattr(act, g)[k] for act in acts])
        self._fill += n

    def _controls_index(self, controls: dict[str, Any] | None) -> int:
        # Interventions change rarely: store each distinct one once per chunk (``controls_json``).
        last = self._ctrl_last
        if last is not None and last[1] == controls:
            return last[0]
        text = json.dumps(controls, sort_keys=True, default=str)
        try:
            idx = self._ctrl_json.index(text)
        except ValueError:
            idx = len(self._ctrl_json)
            self._ctrl_json.append(text)
        self._ctrl_last = (idx, controls)
        return idx

    def _write_chunk(self) -> None:
        n = self._fill
        arrays = {k: v[:n] for k, v in self._buf.items()}
        arrays["controls_json"] = np.array(self._ctrl_json or ["null"], dtype=np.str_)
        final = self.path / f"chunk_{self._chunks:06d}.npz"
        tmp = final.with_name(final.name + ".tmp")
        with open(tmp, "wb") as fh:
            (np.savez_compressed if self.compress else np.savez)(fh, **arrays)
        tmp.replace(final)  # atomic: a chunk file that exists is complete
        self._bytes += final.stat().st_size
        self._chunks += 1
        self._steps += n
        self._fill = 0
        self._ctrl_json = []
        self._ctrl_last = None
        self._last_flush = time.monotonic()


def _rows(vectors: list[Any]) -> np.ndarray:
    first = vectors[0]
    if hasattr(first, "detach"):
        import torch

        return torch.stack([v.reshape(-1) for v in vectors]).detach().cpu().numpy()
    return np.stack(vectors)


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
