"""Entry point of the ``folkrnn-live`` command.

Subcommands live one per module in this package and register themselves: a module that defines
``register(subparsers)`` adds its parser and sets ``func``.  Bad input ends with a one-line message
and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import folkrnn_live.cli as cli_pkg

EXIT_USAGE = 2
EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a program its pipe's reader left


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``only``, just that subcommand's module is imported (its
    imports, torch among them, take seconds: ``folkrnn-live ports`` should not wait for them)."""
    parser = argparse.ArgumentParser(
        prog="folkrnn-live",
        description="Real-time folk-rnn v2: generate, play, steer, record and analyse.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _modules():
        if only is not None and name != only:
            continue
        module = importlib.import_module(f"folkrnn_live.cli.{name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_subcommand_module(args_in))
    try:
        args = parser.parse_args(args_in)
    except SystemExit as exc:  # argparse has printed the usage error (or --help); return its status
        return int(exc.code or 0)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        return _closed_pipe()
    except (ValueError, OSError) as exc:
        # Domain errors (bad tokens, bad files, bad values) all derive from these; they carry a
        # message that names the field and what is allowed.  Anything else is a bug in
        # folkrnn-live and keeps its traceback.
        print(f"folkrnn-live {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RecursionError:
        # tomllib and json recurse once per nesting level: 5,000 nested '[' in a file is bad
        # input, not a bug, and gets one line like any other.
        print(f"folkrnn-live {args.command}: error: input nested too deeply (more levels than Python's "
              f"recursion limit of {sys.getrecursionlimit()}); allowed: ordinary TOML/JSON nesting", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _subcommand_module(argv: list[str]) -> str | None:
    """The module of the subcommand named first on the line, when there is one (``import-lasagne``
    lives in ``import_lasagne``); None for top-level help, a typo or no subcommand: all are loaded."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is None:
        return None
    name = {"score": "generate"}.get(first, first.replace("-", "_"))  # generate.py also adds score
    return name if name in _modules() else None


def _modules() -> list[str]:
    """The subcommand modules of this package, by name."""
    return sorted(m.name for m in pkgutil.iter_modules(cli_pkg.__path__) if m.name not in ("main", "common"))


def _closed_pipe() -> int:
    """The reader went away (``folkrnn-live score ... | head``): stop quietly, as ``cat`` does.  Point
    stdout at /dev/null so that the interpreter's final flush does not report the pipe again."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_CLOSED_PIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
