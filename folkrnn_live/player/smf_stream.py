"""A standard MIDI file (type 0) written as it grows, readable on disk after every flush.

A live server killed with SIGKILL (or losing power) never reaches the code that writes its files
at a tune's end, so the MIDI of every tune in progress was lost.  :class:`SmfStream` appends the
messages of each bar as it is played and rewrites only the track length and the End of Track
marker behind them, so the file on disk is always a complete, valid MIDI file holding everything
up to the last flush.  The cost per flush is the new messages only (no rewriting of the file).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

import mido

END_OF_TRACK = b"\x00\xff\x2f\x00"  # delta 0, meta 0x2F, length 0


def _varlen(n: int) -> bytes:
    """A MIDI variable-length quantity (7 bits a byte, high bit set on all but the last)."""
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


class SmfStream:
    """One type-0 file: ``write(events)`` appends, ``close()`` ends it.  Ticks come from absolute
    times (seconds) at ``tempo`` microseconds per beat, counted from the first event written."""

    def __init__(self, path: Path, *, ticks_per_beat: int, tempo: int) -> None:
        self.path = path
        self.ticks_per_second = ticks_per_beat * 1_000_000 / tempo
        self.origin: float | None = None
        self.last_tick = 0
        self.events = 0  # messages written so far
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f: BinaryIO | None = open(path, "wb")  # noqa: SIM115  # kept open for the file's life
        header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, ticks_per_beat)
        tempo_meta = b"\x00\xff\x51\x03" + tempo.to_bytes(3, "big")
        self._f.write(header + b"MTrk" + struct.pack(">I", 0))
        self._length_at = len(header) + 4  # where the track length lives
        self._track = len(tempo_meta)  # track bytes before the End of Track marker
        self._f.write(tempo_meta)
        self._finish()

    def write(self, events: list[tuple[float, mido.Message]]) -> None:
        """Append ``(when, message)`` pairs (sorted by ``when``); on disk when this returns."""
        if self._f is None:
            raise ValueError(f"MIDI file {self.path} is closed")
        if not events:
            return
        if self.origin is None:
            self.origin = events[0][0]
        chunk = bytearray()
        for when, msg in events:
            # A message that arrives later than one already written (a late note-off) is written
            # at the last tick: a file cannot go back in time.
            tick = max(self.last_tick, round((when - self.origin) * self.ticks_per_second))
            chunk += _varlen(tick - self.last_tick) + bytes(msg.bytes())
            self.last_tick = tick
        self.events += len(events)
        self._f.seek(self._length_at + 4 + self._track)  # over the old End of Track
        self._f.write(bytes(chunk))
        self._track += len(chunk)
        self._finish()

    def _finish(self) -> None:
        """End of Track after the messages, then the track length: the file is valid from here."""
        assert self._f is not None
        self._f.write(END_OF_TRACK)
        self._f.truncate()
        self._f.seek(self._length_at)
        self._f.write(struct.pack(">I", self._track + len(END_OF_TRACK)))
        self._f.flush()  # in the OS's hands: survives the process being killed

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
