"""Activation recorder: every step of one or more voices to disk, off the note path.

The listener a voice calls after each step does O(1) work: it appends references to the step's
:class:`~folkrnn_live.sampler.voice.StepResult` to a bounded deque (or counts a drop when the deque
is full).  A background thread drains the deque in batches, copies the arrays into a preallocated
chunk buffer and writes each full chunk as ``chunk_NNNNNN.npz`` (written to ``*.tmp`` and renamed,
so a file that exists is complete: a recording survives kill -9 up to its last flushed chunk).

The worker wakes on a timer instead of on every step: waking a thread per step would cost the
voice a futex call per note, and batching lets numpy copy many steps per Python call, which keeps
the worker's hold on the GIL short.  See docs/recording-format.md for the files.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as _dt
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from folkrnn_live.model.network import FolkRNN
from folkrnn_live.model.step import GATE_NAMES
from folkrnn_live.recording.chunks import FORMAT, META, ChunkBuffer, Item, chunk_name
from folkrnn_live.recording.settings import check_settings, claim_directory
from folkrnn_live.recording.status import RecorderStats, RecordingFull

log = logging.getLogger(__name__)

OnFull = Literal["drop", "block"]
BATCH_STEPS = 32  # steps copied per hold of the GIL
DType = Literal["float32", "float16"]


def model_fingerprint(model: FolkRNN) -> str:
    """A short hash of the output layer's weights: enough to tell which model made a recording
    (analyses of parameters refuse a different model) and cheap enough for the event loop (the
    output layer is ~1 % of v2's weights)."""
    h = hashlib.sha256()
    for t in (model.out.weight, model.out.bias):
        h.update(t.detach().cpu().float().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class _Attached:
    """What the recorder keeps per attached voice."""

    def __init__(self, voice: Any, vid: int, name: str, listener: Callable[[Any], None], capture: bool) -> None:
        self.voice = voice
        self.vid = vid
        self.name = name
        self.listener = listener
        self.prev_capture = capture


class Recorder:
    """Records every step of the voices attached to it.

    ``Recorder(out_dir, model, meta={...}, chunk_steps=256)`` creates ``out_dir`` (empty or new),
    writes ``meta.json`` and starts the writer thread.  Memory is bounded: at most
    ``max_queue_steps`` steps wait in the queue (each holds its step's arrays, about 90 KB for a
    v2-size model) plus one chunk buffer.  ``on_full='drop'`` (live use) counts a dropped step
    instead of ever blocking the voice; ``'block'`` (offline recording) waits for room so nothing is
    lost.  ``flush_seconds``: a partly filled chunk is written after this long without a full one,
    so a quiet live session still reaches the disk (and a kill loses at most that much).

    ``max_bytes`` caps the chunk files' total size (None: no cap).  A chunk that would pass it is
    not kept; from then on steps are counted (``stats.over_limit``), not written, and ``on_limit``
    is called once, on the writer thread, with a :class:`RecordingFull` (a server hands it to its
    event loop with ``loop.call_soon_threadsafe``).  The voices are not stopped: the caller decides
    (the server stops the recording; ``record`` stops generating)."""

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        model: FolkRNN,
        meta: dict[str, Any] | None = None,
        chunk_steps: int = 256,
        *,
        max_queue_steps: int = 512,
        on_full: OnFull = "drop",
        dtype: DType = "float32",
        compress: bool = False,
        flush_seconds: float = 2.0,
        poll_seconds: float = 0.02,
        max_bytes: int | None = None,
        on_limit: Callable[[RecordingFull], None] | None = None,
    ) -> None:
        check_settings(chunk_steps, max_queue_steps, on_full, dtype, flush_seconds, poll_seconds, max_bytes)
        self.path = claim_directory(Path(out_dir))
        self.max_bytes = max_bytes
        self._on_limit = on_limit
        self.limit_reached: RecordingFull | None = None
        cfg = model.config
        self.num_layers, self.hidden_size, self.vocab_size = cfg.num_layers, cfg.hidden_size, cfg.vocab_size
        self.chunk_steps = chunk_steps
        self.max_queue_steps = max_queue_steps
        self.on_full: OnFull = on_full
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
                "fingerprint": model_fingerprint(model),
            },
            "gates": list(GATE_NAMES),
            "dtype": dtype,
            "chunk_steps": chunk_steps,
            "max_bytes": max_bytes,
            "limit_reached": None,
            "voices": [],
            "closed": False,
            "meta": dict(meta or {}),
        }
        self._meta_lock = threading.Lock()
        self._write_meta()
        # The hot-path queue.  deque.append/popleft are atomic under the GIL, so the listener takes
        # no lock; only the 'block' policy waits on the condition below.
        self._queue: collections.deque[Item] = collections.deque()
        self._room = threading.Condition()
        self._attached: dict[int, _Attached] = {}  # id(voice) -> attachment
        self._names: list[str] = []
        self._dropped = 0
        self._skipped = 0
        self._refused = 0  # counted by the listeners once the cap is reached
        self._discarded = 0  # counted by the writer (steps queued or buffered when it was reached)
        self._steps = 0
        self._chunks = 0
        self._bytes = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._flushed = threading.Condition()
        self._flush_requests = 0
        self._flushes_done = 0
        self._closed = False
        self._error: BaseException | None = None
        self._buf = ChunkBuffer(chunk_steps, cfg.num_layers, cfg.hidden_size, cfg.vocab_size, np.dtype(dtype))
        self._last_flush = time.monotonic()
        self._worker = threading.Thread(target=self._run, name=f"recorder:{self.path.name}", daemon=True)
        self._worker.start()

    # --- public API ---------------------------------------------------------------------------------
    def attach(self, voice: Any, name: str | None = None) -> str:
        """Record every step of ``voice`` from its next step on; turns its activation capture on.
        Returns the name the voice is recorded under (``name``, else ``voice.name``, else
        ``voice<N>``)."""
        if self._closed:
            raise ValueError("recorder is closed; start a new Recorder")
        if id(voice) in self._attached:
            raise ValueError(f"voice is already attached as {self._attached[id(voice)].name!r}")
        cfg = voice.model.config
        got = (cfg.num_layers, cfg.hidden_size, cfg.vocab_size)
        want = (self.num_layers, self.hidden_size, self.vocab_size)
        if got != want:
            raise ValueError(f"voice's model has layers/hidden/vocab {got}; this recording expects {want}")
        name = name or getattr(voice, "name", None) or f"voice{len(self._names)}"
        if name in self._names:
            raise ValueError(f"voice name {name!r} is already used in this recording; choose another name")
        vid = len(self._names)
        self._names.append(name)
        with self._meta_lock:
            self._meta["voices"].append({"name": name, "attached": time.time()})
        self._write_meta()
        listener = self._make_listener(voice, vid)
        att = _Attached(voice, vid, name, listener, bool(voice.capture))
        self._attached[id(voice)] = att
        voice.capture = True
        # A preview computed before capture was on carries no activations; changing the controls'
        # version makes the voice recompute the next step instead of reusing it.
        voice.controls.touch()
        voice.listeners.append(listener)
        return name

    def _make_listener(self, voice: Any, vid: int) -> Callable[[Any], None]:
        queue, maxlen, block = self._queue, self.max_queue_steps, self.on_full == "block"
        controls = voice.controls
        seen: list[Any] = [-1, None]  # the controls version last looked at, and its snips

        def listener(result: Any) -> None:
            # The hot path: a tuple of references and one append, nothing copied.  The snips are
            # re-read only when the voice's controls have changed (they change between steps).
            if self.limit_reached is not None:
                self._refused += 1
                return
            if result.activations is None:
                self._skipped += 1
                return
            if controls.version != seen[0]:
                seen[0] = controls.version
                seen[1] = dict(controls.snips) if controls.snips else None
            item = (vid, voice.tunes_started - 1, voice.seed, seen[1], result)
            if len(queue) < maxlen:
                queue.append(item)
            elif block:
                self._wait_for_room(item)
            else:
                self._dropped += 1

        return listener

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
            return self._error is None
        with self._flushed:
            self._flush_requests += 1
            target = self._flush_requests
            self._wake.set()
            done = self._flushed.wait_for(lambda: self._flushes_done >= target or not self._worker.is_alive(), timeout)
            return done and self._error is None

    def close(self, timeout: float = 2.0) -> None:
        """Detach every voice, write everything queued, stop the worker; idempotent.  Waits up to
        ``timeout`` seconds for the worker; ``meta.json`` then says whether it finished
        (``closed``) and holds the final counts (``stats``).  Raises OSError if writing failed."""
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
            self._meta["closed"] = not self._worker.is_alive() and self._error is None
            self._meta["stats"] = self._stats_dict()
        self._write_meta()
        if self._error is not None:
            raise OSError(f"{self.path}: the recorder's writer failed: {self._error}") from self._error

    @property
    def stats(self) -> RecorderStats:
        queued = len(self._queue) + self._buf.fill
        over = self._refused + self._discarded
        return RecorderStats(self._steps, self._chunks, self._bytes, self._dropped, queued, self._skipped, over)

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
        return {k: getattr(s, k) for k in ("steps", "chunks", "bytes", "dropped", "skipped", "over_limit")}

    def _write_meta(self) -> None:
        with self._meta_lock:
            text = json.dumps(self._meta, indent=1)
            tmp = self.path / (META + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(self.path / META)

    def _wait_for_room(self, item: Item) -> None:
        self._wake.set()
        with self._room:
            self._room.wait_for(lambda: len(self._queue) < self.max_queue_steps or self._stop.is_set())
            if len(self._queue) < self.max_queue_steps and self._worker.is_alive():
                self._queue.append(item)
                return
        self._dropped += 1  # closed while waiting, or the writer died: nothing will take it

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
                due = self._buf.fill and time.monotonic() - self._last_flush >= self.flush_seconds
                if self._buf.fill and (want_flush or stopping or due):
                    self._write_chunk()
                if want_flush:
                    with self._flushed:
                        self._flushes_done = target
                        self._flushed.notify_all()
                if stopping and not self._queue:
                    return
        except BaseException as exc:  # surfaced by close() and flush(); the voice must never see it
            self._error = exc
            with self._room:
                self._room.notify_all()
            with self._flushed:
                self._flushes_done = self._flush_requests
                self._flushed.notify_all()

    def _drain(self) -> None:
        """Move everything queued into the chunk buffer, writing each chunk as it fills."""
        q = self._queue
        while q:
            batch = [q.popleft() for _ in range(min(self._buf.room, len(q), BATCH_STEPS))]
            if self.on_full == "block":
                with self._room:
                    self._room.notify_all()
            if self.limit_reached is not None:  # emptied so that a blocked voice never waits for it
                self._discarded += len(batch)
                continue
            self._buf.add(batch)
            if self._buf.room == 0:
                self._write_chunk()
            # Copying is Python work under the GIL; a voice waiting for it would wait up to the
            # interpreter's switch interval (5 ms).  Giving the GIL back between small batches
            # bounds that wait to about one batch's copy.
            time.sleep(0)

    def _write_chunk(self) -> None:
        n = self._buf.fill
        room = None if self.max_bytes is None else self.max_bytes - self._bytes
        size = self._buf.write(self.path / chunk_name(self._chunks), self.compress, max_size=room)
        self._last_flush = time.monotonic()
        if size is None:
            self._discarded += n
            self._reach_limit()
            return
        self._bytes += size
        self._chunks += 1
        self._steps += n

    def _reach_limit(self) -> None:
        assert self.max_bytes is not None
        full = RecordingFull(self.path, self.max_bytes, self._bytes, self._steps)
        self.limit_reached = full
        with self._meta_lock:
            self._meta["limit_reached"] = {"time": time.time(), "steps": self._steps, "bytes": self._bytes}
            self._meta["stats"] = self._stats_dict()
        self._write_meta()  # says so on disk at once: a process killed later leaves the reason
        if self._on_limit is not None:
            try:
                self._on_limit(full)
            except Exception:  # the writer must keep draining whatever the callback does
                log.exception("recording %s: on_limit callback failed", self.path)
