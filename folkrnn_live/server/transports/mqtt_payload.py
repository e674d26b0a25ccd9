"""An MQTT payload to a validated command call: JSON (a list, an object, a scalar, null) or plain
space-separated text, nesting bounded before the JSON parser sees it."""

from __future__ import annotations

from typing import Any

from folkrnn_live.server.commands.registry import Call, Command, CommandContext, CommandError, Registry
from folkrnn_live.server.transports.common import MAX_JSON_DEPTH, json_depth, loads_bounded


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
        value = loads_bounded(s)
    except ValueError as exc:
        if s[0] in "[{":
            raise CommandError(cmd.address(target), f"payload is not valid JSON ({exc})",
                               argument="payload",
                               allowed="a JSON list or object, a JSON scalar, or space-separated values") from exc
        return reg.bind_text(cmd, s, ctx, target)
    return reg.bind_json(cmd, value, ctx, target)


def payload_bytes(raw: Any) -> bytes:
    if isinstance(raw, bytes | bytearray):
        return bytes(raw)
    return b"" if raw is None else str(raw).encode()
