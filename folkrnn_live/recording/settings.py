"""The recorder's settings checked, and the directory it records into claimed."""

from __future__ import annotations

from pathlib import Path

from folkrnn_live.recording.chunks import CHUNK_GLOB, META

#: The largest size cap accepted (1 PiB: a cap, not a promise).
MAX_BYTES_LIMIT = 1 << 50


def check_settings(
    chunk_steps: int, max_queue_steps: int, on_full: str, dtype: str, flush_seconds: float, poll_seconds: float,
    max_bytes: int | None,
) -> None:
    """Raise ValueError naming the first setting out of range."""
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
    if not 0.0 < poll_seconds <= 60.0:
        raise ValueError(f"poll_seconds must be in range (0, 60]; got {poll_seconds}")
    if max_bytes is not None and not 1 <= max_bytes <= MAX_BYTES_LIMIT:
        raise ValueError(f"max_bytes must be in range 1..{MAX_BYTES_LIMIT} (or None for no cap); got {max_bytes}")


def claim_directory(path: Path) -> Path:
    """Create ``path`` or accept it empty: a recording is never written among other files."""
    path.mkdir(parents=True, exist_ok=True)
    if any(path.glob(CHUNK_GLOB)) or (path / META).exists():
        raise ValueError(f"{path}: already holds a recording; record into a new or empty directory")
    if any(path.iterdir()):
        raise ValueError(f"{path}: is not empty and not a recording; record into a new or empty directory")
    return path
