"""OSC 1.0 datagrams in, parsed with every size checked: bounded work whatever the bytes.

python-osc's parser (1.10) loops forever on a bundle element with a negative size (20 bytes hang
the server for good), recurses once per nested bundle (RecursionError at ~1,000 levels), logs a
line per unknown type tag and per empty element, and lets arrays nest without end.  This parser
replaces it on the receiving side (python-osc still builds what we send):

* every length is read from the datagram and checked against what is left before it is used; a
  bundle element's size must be positive, so each turn of a loop consumes bytes and every loop ends;
* bundles nest at most :data:`MAX_BUNDLE_DEPTH` deep and arrays :data:`MAX_ARRAY_DEPTH` deep;
  a datagram yields at most :data:`MAX_MESSAGES` messages of at most :data:`MAX_ARGS` arguments;
* anything else is :class:`OscWireError` (a ``ValueError``) with a short message naming what is
  wrong and what is allowed; nothing is logged here.

Time tags follow python-osc's semantics, so the endpoint's scheduling is unchanged: a message
outside a bundle, or in a bundle tagged "immediately" (1) or in the past, gets ``now``; others get
their bundle's time tag in seconds since the Unix epoch.  Messages come sorted by that time.
"""

from __future__ import annotations

import math
import struct
import time
from dataclasses import dataclass
from typing import Any

MAX_BUNDLE_DEPTH = 8  # a bundle inside a bundle ... this many levels (the outermost is level 1)
MAX_ARRAY_DEPTH = 8  # [ inside [ ... in one type tag string
MAX_MESSAGES = 1024  # messages in one datagram, bundles included
MAX_ARGS = 8192  # arguments of one message, array items included (the registry takes 4,096 at most)
MAX_STRING = 65_536  # bytes of one string or blob (a UDP datagram holds 65,507 at most)

BUNDLE_HEAD = b"#bundle\x00"
IMMEDIATELY = 1  # the OSC time tag meaning "now"
_NTP_DELTA = 2_208_988_800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)
_FIXED = {"i": (">i", 4), "h": (">q", 8), "f": (">f", 4), "d": (">d", 8), "r": (">I", 4), "c": (">I", 4)}
ALLOWED_TYPES = "i h f d s S b t T F N I c r m [ ]"


class OscWireError(ValueError):
    """A datagram that is not a well-formed OSC 1.0 message or bundle within our bounds."""


@dataclass(frozen=True, slots=True)
class WireMessage:
    """One OSC message: its address and arguments (arrays as lists, blobs as bytes)."""

    address: str
    params: list[Any]


@dataclass(frozen=True, slots=True)
class TimedMessage:
    """A message and when it is due: seconds since the Unix epoch (``now`` when not later)."""

    time: float
    message: WireMessage


def parse_packet(data: bytes, now: float | None = None) -> list[TimedMessage]:
    """Every message of one datagram, sorted by due time; :class:`OscWireError` when malformed."""
    now = time.time() if now is None else now
    out: list[TimedMessage] = []
    if data.startswith(BUNDLE_HEAD):
        _bundle(data, 0, len(data), 1, now, out)
    elif data.startswith(b"/"):
        out.append(TimedMessage(now, parse_message(data, 0, len(data))))
    else:
        raise OscWireError("not an OSC message or bundle; allowed: a datagram starting with '/' or '#bundle'")
    out.sort(key=lambda m: m.time)  # stable: equal times keep their order in the datagram
    return out


def _bundle(data: bytes, start: int, end: int, depth: int, now: float, out: list[TimedMessage]) -> None:
    if depth > MAX_BUNDLE_DEPTH:
        raise OscWireError(f"bundles nested more than {MAX_BUNDLE_DEPTH} deep")
    pos = start + len(BUNDLE_HEAD)
    if end - pos < 8:
        raise OscWireError("bundle shorter than its 8-byte time tag")
    (tag,) = struct.unpack_from(">Q", data, pos)
    pos += 8
    when = now if tag == IMMEDIATELY else max(now, tag / 2.0**32 - _NTP_DELTA)
    while pos < end:
        if end - pos < 4:
            raise OscWireError(f"bundle element at byte {pos} has no 4-byte size")
        (size,) = struct.unpack_from(">i", data, pos)
        pos += 4
        # Positive and within what is left: each turn consumes at least 5 bytes, so this ends.
        if not 0 < size <= end - pos:
            raise OscWireError(f"bundle element size {size} at byte {pos - 4}; allowed: 1..{end - pos}")
        head = data[pos:pos + 1]
        if head == b"#":
            if data[pos:pos + len(BUNDLE_HEAD)] != BUNDLE_HEAD:
                raise OscWireError(f"bundle element at byte {pos} is neither a message nor a bundle")
            _bundle(data, pos, pos + size, depth + 1, now, out)
        elif head == b"/":
            if len(out) >= MAX_MESSAGES:
                raise OscWireError(f"more than {MAX_MESSAGES} messages in one datagram")
            out.append(TimedMessage(when, parse_message(data, pos, pos + size)))
        else:
            raise OscWireError(f"bundle element at byte {pos} is neither a message nor a bundle")
        pos += size


def parse_message(data: bytes, start: int, end: int) -> WireMessage:
    """One message occupying ``data[start:end]``."""
    address, pos = _string(data, start, end, "address")
    if not address.startswith("/"):
        raise OscWireError("address must start with '/'")
    if pos >= end:
        return WireMessage(address, [])  # no type tag string: no arguments (OSC 1.0 allows it)
    tags, pos = _string(data, pos, end, "type tag string")
    if not tags.startswith(","):
        raise OscWireError("type tag string must start with ','")
    params: list[Any] = []
    stack = [params]
    count = 0
    for t in tags[1:]:
        if t == "[":
            if len(stack) > MAX_ARRAY_DEPTH:
                raise OscWireError(f"arrays nested more than {MAX_ARRAY_DEPTH} deep")
            inner: list[Any] = []
            stack[-1].append(inner)
            stack.append(inner)
            continue
        if t == "]":
            if len(stack) == 1:
                raise OscWireError("']' without '[' in the type tag string")
            stack.pop()
            continue
        count += 1
        if count > MAX_ARGS:
            raise OscWireError(f"more than {MAX_ARGS} arguments in one message")
        value, pos = _argument(t, data, pos, end)
        stack[-1].append(value)
    if len(stack) != 1:
        raise OscWireError("'[' without ']' in the type tag string")
    return WireMessage(address, params)


def _argument(t: str, data: bytes, pos: int, end: int) -> tuple[Any, int]:
    if t in _FIXED:
        fmt, n = _FIXED[t]
        if end - pos < n:
            raise OscWireError(f"argument '{t}' at byte {pos} runs past the end of the message")
        (v,) = struct.unpack_from(fmt, data, pos)
        return (chr(v) if v < 0x110000 else "\ufffd") if t == "c" else v, pos + n
    if t in "sS":
        return _string(data, pos, end, "string argument")
    if t == "b":
        if end - pos < 4:
            raise OscWireError(f"blob at byte {pos} has no 4-byte size")
        (n,) = struct.unpack_from(">i", data, pos)
        if not 0 <= n <= min(end - pos - 4, MAX_STRING):
            raise OscWireError(f"blob size {n} at byte {pos}; allowed: 0..{max(0, end - pos - 4)}")
        return data[pos + 4:pos + 4 + n], pos + 4 + n + (-n % 4)
    if t == "t":
        if end - pos < 8:
            raise OscWireError(f"time tag argument at byte {pos} runs past the end of the message")
        (tag,) = struct.unpack_from(">Q", data, pos)
        return tag / 2.0**32 - _NTP_DELTA, pos + 8
    if t == "m":
        if end - pos < 4:
            raise OscWireError(f"MIDI argument at byte {pos} runs past the end of the message")
        return tuple(data[pos:pos + 4]), pos + 4
    fixed = {"T": True, "F": False, "N": None, "I": math.inf}
    if t in fixed:
        return fixed[t], pos
    raise OscWireError(f"unsupported type tag {t!r}; allowed: {ALLOWED_TYPES}")


def _string(data: bytes, pos: int, end: int, what: str) -> tuple[str, int]:
    """A null-terminated UTF-8 string padded to 4 bytes, and the position after it."""
    nul = data.find(b"\x00", pos, min(end, pos + MAX_STRING + 1)) - pos
    if nul < 0:
        raise OscWireError(f"{what} at byte {pos} is not null-terminated within the message")
    raw = data[pos:pos + nul]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OscWireError(f"{what} at byte {pos} is not UTF-8 ({exc.reason})") from exc
    # Strict OSC pads to a multiple of 4 bytes; a sender that did not pad the last string is
    # accepted (python-osc's client pads, some embedded senders do not).
    return text, min(end, pos + nul + 1 + (-(nul + 1) % 4))


# --- replies out: never larger than asked for ------------------------------------------------------
ELLIPSIS = "…"


def fit_strings(address: str, values: tuple[str, ...], cap: int) -> bytes | None:
    """``address values...`` (all strings) as one OSC message of at most ``cap`` bytes, the longest
    strings cut (ending in "…") until it fits; None when even empty strings do not fit.  Replies to
    a sender (``/error``) go through this, so a small request never buys a large reply: once the
    server is opened to a network it must not amplify traffic aimed at a forged source address."""
    from pythonosc.osc_message_builder import OscMessageBuilder

    def build(vals: list[str]) -> bytes:
        b = OscMessageBuilder(address)
        for v in vals:
            b.add_arg(v, "s")
        return b.build().dgram

    vals = list(values)
    dgram = build(vals)
    while len(dgram) > cap:
        longest = max(range(len(vals)), key=lambda i: len(vals[i].encode()), default=None)
        if longest is None or not vals[longest]:
            return None
        raw = vals[longest].encode()
        keep = max(0, len(raw) - (len(dgram) - cap) - len(ELLIPSIS.encode()) - 4)
        vals[longest] = raw[:keep].decode("utf-8", "ignore") + ELLIPSIS if keep else ""
        dgram = build(vals)
    return dgram
