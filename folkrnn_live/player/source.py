"""Where a player gets tokens: anything with a fast synchronous ``next_token()``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable


@runtime_checkable
class TokenSource(Protocol):
    def next_token(self) -> str | None:
        """The next token; None when the tune ended and the source has nothing more.

        Called on the event loop, only when the player has time for it; keep it to one model step."""
        ...


class ListSource:
    """Tokens from a list or a whitespace-separated string (tests, offline rendering)."""

    def __init__(self, tokens: Iterable[str] | str) -> None:
        self.tokens = tokens.split() if isinstance(tokens, str) else list(tokens)
        self.position = 0

    def next_token(self) -> str | None:
        if self.position >= len(self.tokens):
            return None
        tok = self.tokens[self.position]
        self.position += 1
        return tok
