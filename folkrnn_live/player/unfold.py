"""The queue between the interpreter and the timeline: as generated, or with repeats unfolded.

Unfolded, a section ``|: A :|`` is queued again from memory as soon as its ``:|`` arrives, so the
player replays it while the generator waits (the player only pulls tokens when the queue holds no
note).  First and second endings are played as musicians do: ``|: A |1 B :| |2 C`` is A B A C.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterable, Iterator

from folkrnn_live.player.events import Bar, MusicEvent, Note, PlayMode, TuneEnd

PLAY_MODES: tuple[PlayMode, ...] = ("linear", "unfolded")


def check_play_mode(mode: str) -> PlayMode:
    if mode not in PLAY_MODES:
        raise ValueError(f"mode must be one of {', '.join(PLAY_MODES)}; got {mode!r}")
    return mode


class Unfolder:
    def __init__(self, mode: PlayMode = "linear") -> None:
        self.mode = check_play_mode(mode)
        self._queue: deque[MusicEvent] = deque()
        self._notes_queued = 0  # notes and tune ends in the queue: what the timeline waits for
        # Memory of the current section (since the tune start, the last |: or the last :|), kept in
        # both modes so switching to "unfolded" mid-section still replays the whole section.
        self._section: list[Note | Bar] = []
        self._ending1_at: int | None = None

    def clear(self) -> None:
        self._queue.clear()
        self._notes_queued = 0
        self._section = []
        self._ending1_at = None

    def has_note(self) -> bool:
        """True when a note (or a tune end) is queued: the timeline can go on without new tokens."""
        return self._notes_queued > 0

    def __len__(self) -> int:
        return len(self._queue)

    def __iter__(self) -> Iterator[MusicEvent]:
        """The queued events in playing order, left where they are."""
        return iter(self._queue)

    def pop(self) -> MusicEvent | None:
        if not self._queue:
            return None
        ev = self._queue.popleft()
        if isinstance(ev, Note | TuneEnd):
            self._notes_queued -= 1
        return ev

    def _append(self, ev: MusicEvent) -> None:
        self._queue.append(ev)
        if isinstance(ev, Note | TuneEnd):
            self._notes_queued += 1

    def push(self, events: Iterable[MusicEvent]) -> None:
        for ev in events:
            self._append(ev)
            if isinstance(ev, TuneEnd):
                self._section, self._ending1_at = [], None
            elif isinstance(ev, Note):
                self._section.append(ev)
            elif isinstance(ev, Bar):
                self._on_bar(ev)

    def _on_bar(self, bar: Bar) -> None:
        if bar.kind == "repeat_start":
            self._section, self._ending1_at = [], None
        elif bar.kind == "ending1":
            self._ending1_at = len(self._section)
            self._section.append(bar)
        elif bar.kind == "repeat_end":
            body = self._section if self._ending1_at is None else self._section[: self._ending1_at]
            if self.mode == "unfolded" and any(isinstance(e, Note) for e in body):
                for e in body:
                    self._append(dataclasses.replace(e, repeat=True))
                # The replay ends where the section's :| stood: a bar line before what follows.
                self._append(Bar("bar", bar.step, repeat=True))
            self._section, self._ending1_at = [], None
        else:
            self._section.append(bar)
