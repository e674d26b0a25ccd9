"""Where a player gets tokens: a vocabulary and a fast synchronous ``next_token()`` giving indices
into it.  The player reads each index's meaning from the vocabulary's table (computed once), so no
token text is parsed while a tune plays."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from folkrnn_live.tokens.vocab import V2, Vocabulary


@runtime_checkable
class TokenSource(Protocol):
    @property
    def vocab(self) -> Vocabulary:
        """The vocabulary the indices refer to (a model's own token order)."""
        ...

    def next_token(self) -> int | None:
        """The next token's index in :attr:`vocab`; None when the tune ended and the source has
        nothing more.

        Called on the event loop, only when the player has time for it; keep it to one model step."""
        ...


class ListSource:
    """Tokens from a list or a whitespace-separated string (tests, offline rendering).  Raises
    :class:`~folkrnn_live.tokens.UnknownTokenError` (naming every unknown token and its position)
    for tokens outside the vocabulary."""

    def __init__(self, tokens: Iterable[str] | str, vocab: Vocabulary = V2) -> None:
        self.tokens = tokens.split() if isinstance(tokens, str) else list(tokens)
        self._vocab = vocab
        self.indices = vocab.encode(self.tokens)
        self.position = 0

    @property
    def vocab(self) -> Vocabulary:
        return self._vocab

    def next_token(self) -> int | None:
        if self.position >= len(self.indices):
            return None
        index = self.indices[self.position]
        self.position += 1
        return index
