"""v2 token tunes to standard ABC text that ordinary ABC tools read.

``M:6/8 K:Cmaj |: G 2 A ...`` becomes::

    X:1
    M:6/8
    L:1/8
    K:C
    |: G2A ...

Tokens of a note are written together (``A2>B``, ``[CEG]2``, ``(3ABc``), bars separated by spaces, a
line break every few bars.  ``:| |2`` is written ``:|2`` and ``:| |:`` as ``:||:`` (one bar line each
in ABC).  A meter or mode token inside the body becomes an inline field (``[M:3/4]``).  Tokens are
validated against the v2 token classes; ``<s>`` and ``</s>`` are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from folkrnn_live.tokens import END, START, V2, UnknownToken, UnknownTokenError, classify

#: K: value for each v2 mode token.
MODE_KEYS = {"K:Cmaj": "C", "K:Cmin": "Cm", "K:Cdor": "Cdor", "K:Cmix": "Cmix"}
_BARS = frozenset(("|", "|:", ":|", "|1", "|2"))


def _check(tokens: Sequence[str]) -> None:
    unknown: list[UnknownToken] = []
    for pos, tok in enumerate(tokens):
        try:
            classify(tok)
        except ValueError:
            unknown.append(UnknownToken(pos, tok, V2.nearest(tok)))
    if unknown:
        raise UnknownTokenError(unknown)


def _key(mode_token: str) -> str:
    return MODE_KEYS.get(mode_token, mode_token[2:])


def tokens_to_abc(tokens: Sequence[str], number: int = 1, title: str | None = None, bars_per_line: int = 4) -> str:
    """One token tune as an ABC tune (no trailing blank line).  Without a meter token the tune is
    written ``M:none``; without a mode token ``K:C``."""
    if bars_per_line < 1:
        raise ValueError(f"bars_per_line must be at least 1; got {bars_per_line}")
    toks = [t for t in tokens if t not in (START, END)]
    _check(toks)
    meter = mode = None
    i = 0
    # The header: leading meter and mode tokens, in either order.
    while i < len(toks) and (toks[i].startswith("M:") or toks[i].startswith("K:")):
        if toks[i].startswith("M:") and meter is None:
            meter = toks[i][2:]
        elif toks[i].startswith("K:") and mode is None:
            mode = toks[i]
        else:
            break
        i += 1
    head = [f"X:{number}"]
    if title:
        head.append(f"T:{title}")
    head += [f"M:{meter or 'none'}", "L:1/8", f"K:{_key(mode) if mode else 'C'}"]
    return "\n".join(head + _body_lines(toks[i:], bars_per_line))


_JOINED = {(":|", "|1"): ":|1", (":|", "|2"): ":|2", (":|", "|:"): ":||:"}


def _body_lines(body: Sequence[str], bars_per_line: int) -> list[str]:
    pieces: list[str] = []  # note groups and ABC bar lines, in order
    cur = ""  # the notes since the last bar line
    prev = ""
    for tok in body:
        if tok in _BARS:
            if cur:
                pieces.append(cur)
                cur = ""
            elif (prev, tok) in _JOINED and pieces and pieces[-1] == prev:
                pieces[-1] = _JOINED[prev, tok]  # one ABC bar line for two v2 tokens
                prev = tok
                continue
            pieces.append(tok)
        elif tok.startswith(("M:", "K:")):
            cur += f"[M:{tok[2:]}]" if tok.startswith("M:") else f"[K:{_key(tok)}]"
        else:
            # Two durations in a row (a malformed tune) would read as one number; keep them apart.
            if classify(tok).cls == "duration" and prev and classify(prev).cls == "duration":
                cur += " "
            cur += tok
        prev = tok
    if cur:
        pieces.append(cur)
    lines: list[str] = []
    line: list[str] = []
    groups = 0  # bars of notes on this line
    for k, piece in enumerate(pieces):
        line.append(piece)
        if piece[0] not in "|:":
            groups += 1
            continue
        # Break after a bar line, but not where an ending starts or another bar line follows.
        nxt = pieces[k + 1] if k + 1 < len(pieces) else ""
        if groups >= bars_per_line and not piece.endswith(("1", "2")) and not nxt.startswith(("|", ":")):
            lines.append(" ".join(line))
            line, groups = [], 0
    if line:
        lines.append(" ".join(line))
    return lines


def tunes_to_abc(tunes: Iterable[Sequence[str]], titles: Sequence[str] | None = None, bars_per_line: int = 4) -> str:
    """Many token tunes as one ABC file, numbered from 1, a blank line after each."""
    out = []
    for n, tune in enumerate(tunes, 1):
        title = titles[n - 1] if titles is not None and n - 1 < len(titles) else None
        out.append(tokens_to_abc(tune, n, title, bars_per_line) + "\n")
    return "\n".join(out)
