"""The tunes the page shows: each voice's tune being written and its last finished ones.

Kept on the server (not only in the browser) so a page opened mid-tune starts from the whole tune,
a page that fell behind redraws from it, and every finished tune can be downloaded as ABC (the
project's own writer, read by standard tools) or MIDI (the live interpreter, offline).  Appending a
token is all that happens per step; ABC and MIDI are made only on a download, off the event loop.
"""

from __future__ import annotations

import io
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class BookTune:
    """A tune in the book: its tokens as generated, and where the player's notes point into them."""

    voice: str
    number: int  # the voice's tune counter (tunes_started)
    seed: int | None = None
    tokens: list[str] = field(default_factory=list)
    # For each token: the player's token counter when it was fed (what note feedback's "step"
    # names), so the page can highlight the note now sounding.
    play_steps: list[int] = field(default_factory=list)
    first_total: int = 0  # the voice's step counter of the first token
    finished: bool = False

    def to_json(self, with_tokens: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {"voice": self.voice, "tune": self.number, "seed": self.seed,
                             "first_total": self.first_total, "length": len(self.tokens), "finished": self.finished}
        if with_tokens:
            d["tokens"] = list(self.tokens)
            d["play_steps"] = list(self.play_steps)
        return d


class TuneBook:
    """Per voice: the tune in progress and the last ``kept`` finished tunes."""

    def __init__(self, kept: int = 10) -> None:
        if kept < 1:
            raise ValueError(f"kept must be at least 1; got {kept}")
        self.kept = kept
        self.current: dict[str, BookTune] = {}
        self.finished: dict[str, deque[BookTune]] = {}

    def add_token(self, voice: str, tune: int, token: str, total: int, play_step: int) -> BookTune | None:
        """Record one generated token; returns the tune it finished, when this token starts a new one."""
        cur = self.current.get(voice)
        done = None
        if cur is None or cur.number != tune:
            done = self._finish(voice)
            cur = self.current[voice] = BookTune(voice, tune)
        if not cur.tokens:
            cur.first_total = total
        cur.tokens.append(token)
        cur.play_steps.append(play_step)
        return done

    def start(self, voice: str, tune: int, seed: int) -> BookTune | None:
        """A ``tune_start``: the tune in progress (if any) is finished; returns it."""
        cur = self.current.get(voice)
        if cur is not None and cur.number == tune:
            cur.seed = seed
            return None
        done = self._finish(voice)
        self.current[voice] = BookTune(voice, tune, seed)
        return done

    def _finish(self, voice: str) -> BookTune | None:
        cur = self.current.pop(voice, None)
        if cur is None or not cur.tokens:
            return None
        cur.finished = True
        self.finished.setdefault(voice, deque(maxlen=self.kept)).append(cur)
        return cur

    def find(self, voice: str, number: int) -> BookTune | None:
        for t in self.finished.get(voice, ()):
            if t.number == number:
                return t
        cur = self.current.get(voice)
        return cur if cur is not None and cur.number == number else None

    def snapshot(self, voice: str) -> dict[str, Any]:
        """What a page needs to draw a voice from scratch."""
        cur = self.current.get(voice)
        return {"current": None if cur is None else cur.to_json(),
                "finished": [t.to_json(with_tokens=False) for t in self.finished.get(voice, ())]}


def tune_abc(tune: BookTune) -> str:
    """The tune as standard ABC (what cannot be notated is left out, and counted in a comment)."""
    from folkrnn_live.abc.writer import tokens_to_abc

    title = f"folkrnn-live voice {tune.voice}, tune {tune.number}" + (f", seed {tune.seed}" if tune.seed is not None
                                                                     else "")
    return tokens_to_abc(tune.tokens, number=tune.number, title=title) + "\n"


def tune_midi(tune: BookTune, settings: Any = None) -> bytes:
    """The tune as a standard MIDI file, played by the live interpreter with the voice's
    ``settings`` (a :class:`~folkrnn_live.player.settings.VoiceSettings`: tempo, channel, swing...)."""
    from folkrnn_live.player.render import render

    buf = io.BytesIO()
    render(tune.tokens, settings).midi.save(file=buf)
    return buf.getvalue()
