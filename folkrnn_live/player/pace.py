"""When a voice pulls tokens: early enough before its next note, and never faster than the music.

A note's tokens are pulled in the scheduler's gaps before the note is due.  The window opens early
enough for the most tokens a recent note needed (a perturbed model may emit many non-note tokens in a
row), never later than ``lookahead`` before the note.  And a voice takes at most
:data:`MAX_STEPS_PER_BEAT` model steps per beat of its tempo.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

# Model steps one voice may take per beat of its tempo.  A tune needs about 10 tokens a beat at
# most (sixteenths with accidentals and bar lines); a perturbed model that emits no notes (only bar
# lines, say) would otherwise step as fast as the CPU allows (~1,000 steps/s), filling a recording
# with 40 MB a second.  Past the budget the voice waits for the next beat.
MAX_STEPS_PER_BEAT = 32


class PullPace:
    """The pulling pace of one voice: its lookahead, recent tokens per note, this beat's steps."""

    def __init__(self, lookahead: float) -> None:
        self.lookahead = lookahead
        self._tokens_per_note: deque[int] = deque(maxlen=16)
        self._tokens_since_note = 0
        self._beat_start = -math.inf  # when the current step budget began
        self._beat_steps = 0

    def window(
        self, onset: float, step_estimate: float, seconds_per_beat: Callable[[], float]
    ) -> tuple[float, float]:
        """(opens, deadline) of the pulling before a note due at ``onset``."""
        lead = max(self.lookahead, 2.0 * max(self._tokens_per_note, default=1) * step_estimate)
        opens, deadline = onset - lead, onset
        if self._beat_steps >= MAX_STEPS_PER_BEAT:  # this beat's steps are spent: wait for the next
            resume = self._beat_start + seconds_per_beat()
            return max(opens, resume), max(deadline, resume)
        return opens, deadline

    def step_taken(self, now: float, seconds_per_beat: float) -> None:
        """One model step (token pull) at ``now``."""
        if now - self._beat_start >= seconds_per_beat:
            self._beat_start, self._beat_steps = now, 0
        self._beat_steps += 1
        self._tokens_since_note += 1

    def note_played(self) -> None:
        self._tokens_per_note.append(self._tokens_since_note)
        self._tokens_since_note = 0
