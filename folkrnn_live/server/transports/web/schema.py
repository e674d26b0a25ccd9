"""The command registry as the page sees it: every command, its arguments, ranges and choices.

The page builds its controls from this and nothing else (a slider for a number with a range, a
selector for tokens and classes, a button for a command without arguments), so a command added to
the catalog appears on the page with no page code.  Ranges that depend on the model (``layers-1``)
and choices that depend on the server (voice names) are resolved here, against the running server.
"""

from __future__ import annotations

from typing import Any

from folkrnn_live.server.commands.registry import REQUIRED, Arg, Command, Registry
from folkrnn_live.tokens import CLASS_NAMES
from folkrnn_live.tokens.vocab import PITCH_CLASS_NAMES


def arg_json(a: Arg, ctx: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"name": a.name, "type": a.type, "help": a.help, "describe": a.describe(),
                         "variadic": a.variadic, "min_count": a.min_count, "required": a.required}
    if a.lo is not None and a.hi is not None:
        d["lo"], d["hi"] = ctx.resolve(a.lo), ctx.resolve(a.hi)
        d["exclusive"] = a.exclusive
    if a.type == "choice":
        d["choices"] = list(a.choices) if isinstance(a.choices, tuple) else list(ctx.choices(a.choices))
    if a.default is not REQUIRED and not a.variadic:
        d["default"] = a.default
    return d


def command_json(c: Command, ctx: Any) -> dict[str, Any]:
    return {"name": c.name, "scope": c.scope, "applies": c.applies, "group": c.group, "help": c.help,
            "signature": c.signature(), "args": [arg_json(a, ctx) for a in c.args]}


def schema(registry: Registry, ctx: Any, groups: dict[str, str]) -> dict[str, Any]:
    """Everything the page needs to draw its controls and to offer tokens and selectors."""
    vocab = ctx.vocab
    tokens = [] if vocab is None else [t for t in vocab.tokens if t != "<s>"]  # <s> is only ever fed, never chosen
    selectors = [*(f"@{c}" for c in CLASS_NAMES), *(f"pc:{x}" for x in PITCH_CLASS_NAMES)]
    return {
        "commands": [command_json(c, ctx) for c in registry],
        "groups": groups,
        "voices": list(ctx.voices),
        "tokens": tokens,
        "selectors": selectors,
        "dims": dict(ctx.dims),
    }
