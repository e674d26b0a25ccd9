"""Helpers shared by subcommands: argument types that fail with clear messages."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


N = TypeVar("N", int, float)


def _bounded(name: str, lo: float, hi: float, convert: Callable[[str], N], noun: str) -> Callable[[str], N]:
    def parse(text: str) -> N:
        try:
            v = convert(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{name} must be {noun} in range {lo}..{hi}; got {text!r}") from exc
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{name} must be in range {lo}..{hi}; got {v}")
        return v

    return parse


def bounded_float(name: str, lo: float, hi: float) -> Callable[[str], float]:
    """argparse type: a float in [lo, hi], with an error naming the option and the range."""
    return _bounded(name, lo, hi, float, "a number")


def bounded_int(name: str, lo: int, hi: int) -> Callable[[str], int]:
    """argparse type: an int in [lo, hi], with an error naming the option and the range."""
    return _bounded(name, lo, hi, int, "an integer")


def progress(items: Iterable[T], total: int, label: str, enabled: bool = True) -> Iterator[T]:
    """A plain progress bar on stderr (only when stderr is a terminal or enabled explicitly)."""
    show = enabled and sys.stderr.isatty()
    for n, item in enumerate(items, 1):
        yield item
        if show:
            width = 30
            filled = int(width * n / max(total, 1))
            sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {n}/{total}")
            sys.stderr.flush()
    if show:
        sys.stderr.write("\n")


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help that ends each flag's line with its default, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, "", argparse.SUPPRESS) or action.required:
            return action.help
        return super()._get_help_string(action)
