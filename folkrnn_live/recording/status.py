"""What a recorder reports: its counters, and the size cap being reached."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RecorderStats:
    """A snapshot of a recorder's counters."""

    steps: int  # steps written to chunk files
    chunks: int  # chunk files written
    bytes: int  # bytes of chunk files written
    dropped: int  # steps lost because the queue was full (on_full='drop')
    queued: int  # steps waiting for the worker or in the unflushed chunk buffer
    skipped: int = 0  # steps that arrived without activations (capture was off for them)
    over_limit: int = 0  # steps not written because the size cap (max_bytes) was reached


class RecordingFull(Exception):
    """The recording reached its size cap: nothing more is written, and what was written (every
    chunk file, meta.json) is a whole, readable recording.  Not raised at the voice: it is handed
    once to the recorder's ``on_limit`` callback (on the writer thread) and kept as
    :attr:`Recorder.limit_reached`.  ``str()`` is one line fit for a log or an ``/error``."""

    def __init__(self, path: Path, max_bytes: int, written_bytes: int, steps: int) -> None:
        self.path, self.max_bytes, self.written_bytes, self.steps = path, max_bytes, written_bytes, steps
        super().__init__(
            f"recording {path} reached its size cap (max_bytes {max_bytes}): stopped writing; "
            f"the {steps} steps written ({written_bytes} bytes) are kept"
        )
