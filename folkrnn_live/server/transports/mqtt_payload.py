"""An MQTT payload to a validated command call: JSON (a list, an object, a scalar, null) or plain
space-separated text, nesting bounded before the JSON parser sees it."""

from __future__ import annotations

import json
import re
from typing import Any

from folkrnn_live.server.commands.registry import Call, Command, CommandContext, CommandError, Registry

MAX_JSON_DEPTH = 32  # nesting of a JSON payload, at most
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def bind_payload(reg: Registry, cmd: Command, target: str | None, text: str, ctx: CommandContext) -> Call:
    """A payload to a validated call: JSON when it parses (list, object, scalar, null), else
    plain space-separated text.  Empty: no values."""
    s = text.strip()
    if not s:
        return reg.bind(cmd, [], ctx, target)
    depth = json_depth(s)
    if depth > MAX_JSON_DEPTH:  # json.loads recurses per level: RecursionError at ~1,000
        raise CommandError(cmd.address(target), f"payload nests {depth} levels deep", argument="payload",
                           allowed=f"JSON nested at most {MAX_JSON_DEPTH} levels")
    try:
        # Integers of more than 64 digits stay text, which validation refuses naming the argument
        # (int() of 4,300+ digits raises ValueError; a 400-digit one overflowed float()).
        value = json.loads(s, parse_int=lambda t: int(t) if len(t) <= 64 else t)
    except json.JSONDecodeError as exc:
        if s[0] in "[{":
            raise CommandError(cmd.address(target), f"payload is not valid JSON ({exc.msg} at {exc.pos})",
                               argument="payload",
                               allowed="a JSON list or object, a JSON scalar, or space-separated values") from exc
        return reg.bind_text(cmd, s, ctx, target)
    return reg.bind_json(cmd, value, ctx, target)


def json_depth(s: str) -> int:
    """How deep brackets nest in ``s``, outside JSON strings (a cheap pass before json.loads)."""
    depth = deepest = 0
    for ch in _BRACKETS.findall(_JSON_STRING.sub("", s)):
        depth += 1 if ch in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def payload_bytes(raw: Any) -> bytes:
    if isinstance(raw, bytes | bytearray):
        return bytes(raw)
    return b"" if raw is None else str(raw).encode()
