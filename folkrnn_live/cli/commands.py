"""``folkrnn-live commands``: the command reference, generated from the registry."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("commands", help="list the server's OSC/MQTT commands (docs/commands.md)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--markdown", action="store_true", help="print docs/commands.md")
    g.add_argument("--config-markdown", action="store_true", help="print docs/config.md")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from folkrnn_live.server.commands import docs

    if args.markdown:
        print(docs.commands_markdown(), end="")
    elif args.config_markdown:
        from folkrnn_live.server.runtime.config import markdown

        print(markdown(), end="")
    else:
        print(docs.commands_text(), end="")
    return 0
