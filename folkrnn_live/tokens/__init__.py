"""Vocabulary and token classes (defined once, in :mod:`folkrnn_live.tokens.vocab`)."""

from folkrnn_live.tokens.vocab import (
    CLASS_NAMES,
    END,
    START,
    TOKEN_CLASSES,
    V2,
    TokenClass,
    TokenInfo,
    UnknownToken,
    UnknownTokenError,
    Vocabulary,
    classify,
    parse_pitch_class,
)

__all__ = [
    "CLASS_NAMES",
    "END",
    "START",
    "TOKEN_CLASSES",
    "V2",
    "TokenClass",
    "TokenInfo",
    "UnknownToken",
    "UnknownTokenError",
    "Vocabulary",
    "classify",
    "parse_pitch_class",
]
