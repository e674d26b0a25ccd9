#!/usr/bin/env python3
"""Write the folkrnn-live performer patches: ``folkrnn-control.pd`` (the OSC abstraction),
``folkrnn-live.pd`` (the Pd control surface) and ``folkrnn-live.maxpat`` (the same surface for Max).

The patches are plain text and can be edited in Pd or Max like any other; this script exists
because a Pd file addresses objects by their index, which is easy to get wrong by hand.  One list
of controls (``CONTROLS``) names what both surfaces offer, under the same receive names.
``python3 patches/generate.py`` rewrites the files; ``--check`` only says whether they are up to
date (tests/test_pd_patches.py runs it).

Conventions (see patches/README.md):

* every control of the surface has a global receive name ``folkrnn-<name>``: another patch, a
  ``-send`` flag or a MIDI mapping can move it exactly as a performer would;
* every command reaches ``[folkrnn-control]`` as a plain Pd message (``temperature 0.8``), through
  ``[s folkrnn-cmd]`` from anywhere, and leaves as OSC ``/folkrnn/<voice>/temperature 0.8``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STREAMS = "tokens notes bars tunes applied"  # what the surfaces subscribe to (not probs or state)
FONT = 12


# --- Pd ---------------------------------------------------------------------------------------------


@dataclass
class PdCanvas:
    """One Pd canvas: objects in creation order (their index is what ``connect`` refers to)."""

    width: int = 800
    height: int = 600
    name: str | None = None  # a subpatch when set
    x: int = 40
    y: int = 40
    lines: list[str] = field(default_factory=list)
    links: list[tuple[int, int, int, int]] = field(default_factory=list)
    subpatches: dict[int, tuple[PdCanvas, int, int]] = field(default_factory=dict)

    def _add(self, line: str) -> int:
        self.lines.append(line)
        return len(self.lines) - 1

    def obj(self, x: int, y: int, text: str) -> int:
        return self._add(f"#X obj {x} {y} {text};")

    def msg(self, x: int, y: int, text: str, width: int | None = None) -> int:
        return self._add(f"#X msg {x} {y} {text}{f', f {width}' if width else ''};")

    def text(self, x: int, y: int, text: str, width: int | None = None) -> int:
        return self._add(f"#X text {x} {y} {text}{f', f {width}' if width else ''};")

    def floatatom(self, x: int, y: int, width: int, rcv: str = "-", snd: str = "-",
                  lo: float = 0, hi: float = 0) -> int:
        return self._add(f"#X floatatom {x} {y} {width} {lo:g} {hi:g} 0 - {rcv} {snd} 0;")

    def symbolatom(self, x: int, y: int, width: int, rcv: str = "-", snd: str = "-") -> int:
        return self._add(f"#X symbolatom {x} {y} {width} 0 0 0 - {rcv} {snd} 0;")

    def listbox(self, x: int, y: int, width: int, rcv: str = "-", snd: str = "-") -> int:
        return self._add(f"#X listbox {x} {y} {width} 0 0 0 - {rcv} {snd} 0;")

    def bng(self, x: int, y: int, rcv: str, snd: str, label: str) -> int:
        return self.obj(x, y, f"bng 19 250 50 0 {snd} {rcv} {label} 24 10 0 {FONT} #fcfcfc #000000 #000000")

    def tgl(self, x: int, y: int, rcv: str, snd: str, label: str) -> int:
        return self.obj(x, y, f"tgl 19 0 {snd} {rcv} {label} 24 10 0 {FONT} #fcfcfc #000000 #000000 0 1")

    def hsl(self, x: int, y: int, lo: float, hi: float, rcv: str, snd: str, label: str, width: int = 160) -> int:
        return self.obj(x, y, f"hsl {width} 19 {lo:g} {hi:g} 0 0 {snd} {rcv} {label} -2 -10 0 {FONT} "
                              "#fcfcfc #000000 #000000 0 1")

    def hradio(self, x: int, y: int, n: int, rcv: str, snd: str, label: str) -> int:
        return self.obj(x, y, f"hradio 19 1 0 {n} {snd} {rcv} {label} 0 -10 0 {FONT} #fcfcfc #000000 #000000 0")

    def subpatch(self, x: int, y: int, canvas: PdCanvas) -> int:
        idx = self._add("")  # placeholder: rendered from the sub-canvas
        self.subpatches[idx] = (canvas, x, y)
        return idx

    def connect(self, a: int, outlet: int, b: int, inlet: int = 0) -> None:
        self.links.append((a, outlet, b, inlet))

    def chain(self, *objs: int) -> None:
        """Connect outlet 0 of each object to inlet 0 of the next."""
        for a, b in itertools.pairwise(objs):
            self.connect(a, 0, b, 0)

    def render(self) -> str:
        head = (f"#N canvas {self.x} {self.y} {self.width} {self.height} {self.name} 0;" if self.name
                else f"#N canvas {self.x} {self.y} {self.width} {self.height} {FONT};")
        out = [head]
        for i, line in enumerate(self.lines):
            if i in self.subpatches:
                sub, x, y = self.subpatches[i]
                out.append(sub.render())
                out.append(f"#X restore {x} {y} pd {sub.name};")
            else:
                out.append(line)
        out += [f"#X connect {a} {o} {b} {i};" for a, o, b, i in self.links]
        return "\n".join(out)


def pd_control() -> str:
    """``[folkrnn-control]``: Pd messages in, OSC to the server, the server's feedback out.

    Inlet: ``connect HOST PORT FEEDBACK_PORT``, ``disconnect``, ``voice NAME`` (a voice name or
    ``all``; 1 at first), ``global COMMAND args...`` (``/folkrnn/COMMAND``) and any other message
    ``COMMAND args...`` (``/folkrnn/<voice>/COMMAND``).  Outlets, left to right: feedback as
    ``name args...`` (``token tune step token total``, ``note pitch velocity duration channel``,
    ``error address argument message``, ``pong id`` ...), the voice it came from (output first),
    and 1/0 when the connection opens or closes.  Nothing is sent while not connected.
    """
    c = PdCanvas(880, 660)
    c.text(20, 10, "folkrnn-control: Pd messages in \\, OSC to the folkrnn-live server \\, its feedback out. "
           "See patches/README.md and docs/commands.md.", 100)
    inlet = c.obj(20, 60, "inlet")
    c.text(90, 60, "connect HOST PORT FBPORT \\, disconnect \\, voice NAME \\, global CMD args... \\, CMD args...")
    route = c.obj(20, 90, "route connect disconnect voice global")

    # connect HOST PORT FBPORT: listen for feedback, connect, subscribe (remember the port).
    as_list = c.obj(20, 120, "list")  # "HOST PORT FBPORT": a message named HOST until made a list
    t_conn = c.obj(20, 145, "t a a a a")  # right to left: listen, remember, connect, subscribe
    listen = c.msg(20, 170, "listen 0 \\, listen \\$3")
    connect = c.msg(150, 200, "disconnect \\, connect \\$1 \\$2")
    subscribe = c.msg(280, 230, f"subscribe \\$3 {STREAMS}", 40)
    remember = c.msg(420, 170, "\\$3")
    fbport = c.obj(420, 200, "f")
    c.connect(route, 0, as_list)
    c.connect(as_list, 0, t_conn)
    c.connect(t_conn, 3, listen)
    c.connect(t_conn, 2, remember)
    c.connect(t_conn, 1, connect)
    c.connect(t_conn, 0, subscribe)
    c.connect(remember, 0, fbport, 1)

    # disconnect: unsubscribe, close the socket, stop listening.
    t_disc = c.obj(520, 130, "t b b b")
    unsub = c.msg(620, 200, "unsubscribe \\$1")
    close = c.msg(570, 230, "disconnect")
    unlisten = c.msg(520, 260, "listen 0")
    c.connect(route, 1, t_disc)
    c.connect(t_disc, 2, fbport)
    c.connect(fbport, 0, unsub)
    c.connect(t_disc, 1, close)
    c.connect(t_disc, 0, unlisten)

    # voice NAME: the address prefix of voice commands.
    voice_prefix = c.obj(680, 90, "list prepend folkrnn")
    c.connect(route, 2, voice_prefix)

    # COMMAND args... -> /folkrnn/<voice>/COMMAND args ; global COMMAND args... -> /folkrnn/COMMAND
    c.text(20, 290, "CMD args -> /folkrnn/<voice>/CMD \\; global CMD -> /folkrnn/CMD")
    split_v = c.obj(20, 320, "list split 1")
    split_g = c.obj(250, 320, "list split 1")
    args = c.obj(480, 440, "list append")
    pre_v = c.obj(20, 350, "list prepend folkrnn 1")
    pre_g = c.obj(250, 350, "list prepend folkrnn")
    pre_set = c.obj(20, 380, "list prepend set")
    trim = c.obj(20, 410, "list trim")
    t_send = c.obj(20, 440, "t b a")
    fmt = c.obj(20, 480, "oscformat")
    gate = c.obj(20, 510, "spigot")
    netsend = c.obj(20, 540, "netsend -u -b")
    c.connect(route, 4, split_v)
    c.connect(route, 3, split_g)
    c.connect(subscribe, 0, split_g)
    c.connect(unsub, 0, split_g)
    c.connect(voice_prefix, 0, pre_v, 1)
    c.connect(split_v, 1, args, 1)
    c.connect(split_g, 1, args, 1)
    c.connect(split_v, 0, pre_v)
    c.connect(split_g, 0, pre_g)
    c.connect(pre_v, 0, pre_set)
    c.connect(pre_g, 0, pre_set)
    c.chain(pre_set, trim, t_send)
    c.connect(t_send, 1, fmt)
    c.connect(t_send, 0, args)
    c.connect(args, 0, fmt)
    c.chain(fmt, gate, netsend)
    c.connect(connect, 0, netsend)
    c.connect(close, 0, netsend)
    state = c.obj(20, 570, "t f f")
    c.connect(netsend, 0, state)
    c.connect(state, 1, gate, 1)

    # Feedback: OSC in, "name args..." out (the voice on the middle outlet, first).
    c.text(520, 290, "feedback: /folkrnn/<voice>/NAME args -> NAME args")
    netreceive = c.obj(520, 320, "netreceive -u -b")
    c.connect(listen, 0, netreceive)
    c.connect(unlisten, 0, netreceive)
    parse = c.obj(520, 350, "oscparse")
    ftrim = c.obj(520, 380, "list trim")
    froute = c.obj(520, 410, "route folkrnn")
    fsplit = c.obj(520, 440, "list split 1")
    frest = c.obj(620, 500, "list append")
    t_fb = c.obj(520, 470, "t b a")
    fout_trim = c.obj(520, 530, "list trim")
    c.chain(netreceive, parse, ftrim, froute, fsplit)
    c.connect(fsplit, 1, frest, 1)
    c.connect(fsplit, 0, t_fb)
    c.connect(t_fb, 0, frest)
    c.connect(frest, 0, fout_trim)

    out_fb = c.obj(520, 600, "outlet")
    out_voice = c.obj(660, 600, "outlet")
    out_state = c.obj(780, 600, "outlet")
    c.text(520, 625, "feedback")
    c.text(660, 625, "its voice")
    c.text(780, 625, "connected")
    c.connect(fout_trim, 0, out_fb)
    c.connect(froute, 1, out_fb)  # /error, /pong and the player's /note stream
    c.connect(t_fb, 1, out_voice)
    c.connect(state, 0, out_state)
    c.connect(inlet, 0, route)
    return c.render() + "\n"


# The controls of both surfaces: each listens to ``[r folkrnn-<name>]``; a default is set when the
# patch opens.  The two layouts below are written by hand from this list, and the tests check that
# each surface has every control (Max connects with one message box instead of host/port boxes).


@dataclass(frozen=True)
class Control:
    name: str
    default: float | str | None = None


SNIP_LAYERS = (0, 1, 2)

CONNECTION = (
    Control("host", "127.0.0.1"), Control("port", 7400), Control("fbport", 9001), Control("voice", 1),
    Control("connect"), Control("disconnect"), Control("ping"),
)
TRANSPORT = tuple(Control(n) for n in ("start", "stop", "pause", "resume", "next", "reset"))
SAMPLER = (
    Control("temperature"), Control("tempo"), Control("bias-pc"), Control("bias"), Control("bias-clear"),
    Control("suppress-steps", 32), Control("suppress-bars"),
    Control("snip-fraction", 0.5), Control("snip-seed", 0),
    *(Control(f"snip-{layer}") for layer in SNIP_LAYERS),
    *(Control(f"restore-{layer}") for layer in SNIP_LAYERS),
    Control("restore"), Control("force"), Control("steer-component", 0), Control("steer-alpha"),
    Control("steer-clear"), Control("clear"),
)
OUTPUT = (Control("midi"), Control("sine"), Control("print"))
CONTROLS = (*CONNECTION, *TRANSPORT, *SAMPLER, *OUTPUT)
# The command each simple control sends (the rest are wired by hand below).
SIMPLE = {
    **{n: n for n in ("start", "stop", "pause", "resume", "next", "reset", "restore", "clear")},
    "bias-clear": "bias_clear",
    "steer-clear": "steer_clear",
    "disconnect": "disconnect",
    "ping": "global ping 1",
    **{f"restore-{layer}": f"restore {layer}" for layer in SNIP_LAYERS},
}


def rcv(name: str) -> str:
    return f"folkrnn-{name}"


def snd(name: str) -> str:
    return f"\\$0-{name}"


def show(name: str) -> str:
    """What a display shows is also sent to ``[r folkrnn-show-<name>]`` (mirror it elsewhere)."""
    return f"folkrnn-show-{name}"


def pd_live() -> str:
    """``folkrnn-live.pd``: the performer's surface."""
    c = PdCanvas(1040, 840)
    c.text(20, 10, "folkrnn-live control surface: connect \\, then play. Every control listens to "
           "folkrnn-<name> (see patches/README.md) \\; any patch can also [s folkrnn-cmd] with "
           "messages such as [temperature 0.8( or [global status(.", 130)

    # Connection row.
    y = 70
    c.text(20, y, "server")
    c.symbolatom(80, y, 12, rcv("host"), snd("host"))
    c.text(190, y, "port")
    c.floatatom(230, y, 6, rcv("port"), snd("port"))
    c.text(300, y, "feedback port")
    c.floatatom(400, y, 6, rcv("fbport"), snd("fbport"))
    c.text(470, y, "voice")
    c.symbolatom(515, y, 5, snd("voice-in"), snd("voice"))  # folkrnn-voice: see pd_controls_logic
    c.bng(20, y + 35, rcv("connect"), snd("connect"), "connect")
    c.bng(140, y + 35, rcv("disconnect"), snd("disconnect"), "disconnect")
    c.tgl(270, y + 35, show("connected"), "empty", "connected")
    c.bng(400, y + 35, rcv("ping"), snd("ping"), "ping")
    c.text(470, y + 35, "pong")
    c.listbox(515, y + 35, 6, show("pong"))

    # Transport row.
    y = 160
    c.text(20, y, "transport")
    for i, ctl in enumerate(TRANSPORT):
        c.bng(100 + i * 85, y, rcv(ctl.name), snd(ctl.name), ctl.name)

    # Sampler column.
    y = 220
    c.text(20, y, "--- the network (applied before the next token) ---")
    c.hsl(20, y + 40, 0.05, 3, rcv("temperature"), snd("temperature"), "temperature")
    c.floatatom(190, y + 40, 6, snd("temperature"))
    c.hsl(260, y + 40, 40, 400, rcv("tempo"), snd("tempo"), "tempo_(BPM)")
    c.floatatom(430, y + 40, 6, snd("tempo"))

    c.hradio(20, y + 95, 12, rcv("bias-pc"), snd("bias-pc"), "bias_pitch_class")
    c.text(20, y + 117, "C  C# D  D# E  F  F# G  G# A  A# B")
    c.hsl(260, y + 95, -10, 10, rcv("bias"), snd("bias"), "bias_amount")
    c.floatatom(430, y + 95, 6, snd("bias"))
    c.bng(500, y + 95, rcv("bias-clear"), snd("bias-clear"), "bias_clear")

    c.tgl(20, y + 150, rcv("suppress-bars"), snd("suppress-bars"), "suppress_bar_lines_for")
    c.floatatom(215, y + 150, 7, rcv("suppress-steps"), snd("suppress-steps"))
    c.text(280, y + 150, "steps (0 = until cleared \\; off = allow again)")

    c.text(20, y + 185, "snip a random fraction")
    c.floatatom(175, y + 185, 5, rcv("snip-fraction"), snd("snip-fraction"))
    c.text(230, y + 185, "of a layer's units \\, seed")
    c.floatatom(400, y + 185, 8, rcv("snip-seed"), snd("snip-seed"))
    for i, layer in enumerate(SNIP_LAYERS):
        c.bng(20 + i * 120, y + 215, rcv(f"snip-{layer}"), snd(f"snip-{layer}"), f"snip_layer_{layer}")
        c.bng(20 + i * 120, y + 245, rcv(f"restore-{layer}"), snd(f"restore-{layer}"), f"restore_{layer}")
    c.bng(380, y + 245, rcv("restore"), snd("restore"), "restore_all")

    c.tgl(20, y + 285, rcv("force"), snd("force"), "force_0.7_generated_+_0.3_@pitch")
    c.text(20, y + 320, "steer component")
    c.floatatom(135, y + 320, 5, rcv("steer-component"), snd("steer-component"))
    c.hsl(200, y + 320, -20, 20, rcv("steer-alpha"), snd("steer-alpha"), "steer_alpha")
    c.floatatom(370, y + 320, 6, snd("steer-alpha"))
    c.bng(440, y + 320, rcv("steer-clear"), snd("steer-clear"), "steer_clear")
    c.bng(20, y + 360, rcv("clear"), snd("clear"), "clear_all_interventions_(temperature_stays)")

    # Feedback displays (right column).
    x = 600
    c.text(x, 160, "--- what comes back ---")
    c.text(x, 190, "tune / step")
    c.listbox(x + 90, 190, 12, show("pos"))
    c.text(x, 220, "note")
    c.listbox(x + 90, 220, 16, show("note"))
    c.text(x, 250, "tokens")
    r_tok = c.obj(x + 90, 250, f"r {show('tokens')}")
    tok_box = c.msg(x + 90, 280, "-", 40)
    c.connect(r_tok, 0, tok_box)
    c.text(x, 360, "applied")
    r_app = c.obj(x + 90, 360, f"r {show('applied')}")
    app_box = c.msg(x + 90, 390, "-", 40)
    c.connect(r_app, 0, app_box)
    c.text(x, 440, "error")
    r_err = c.obj(x + 90, 440, f"r {show('error')}")
    err_box = c.msg(x + 90, 470, "-", 40)
    c.connect(r_err, 0, err_box)

    # Output row.
    y = 640
    c.text(20, y, "--- the notes here (the server plays MIDI itself \\; these are extra) ---")
    c.tgl(20, y + 30, rcv("midi"), snd("midi"), "MIDI_out_([noteout])")
    c.tgl(250, y + 30, rcv("sine"), snd("sine"), "sine_voice_(turns_DSP_on)")
    c.tgl(520, y + 30, rcv("print"), snd("print"), "print_feedback_to_the_Pd_window")

    # The engine: commands in, feedback out.
    r_local = c.obj(x, 730, f"r {snd('cmd')}")
    r_global = c.obj(x + 100, 730, "r folkrnn-cmd")
    ctl = c.obj(x, 760, "folkrnn-control")
    s_fb = c.obj(x, 790, f"s {snd('fb')}")
    s_voice = c.obj(x + 100, 790, f"s {snd('fb-voice')}")
    s_state = c.obj(x + 220, 790, f"s {show('connected')}")
    c.connect(r_local, 0, ctl)
    c.connect(r_global, 0, ctl)
    c.connect(ctl, 0, s_fb)
    c.connect(ctl, 1, s_voice)
    c.connect(ctl, 2, s_state)

    c.subpatch(x + 240, 730, pd_controls_logic())
    c.subpatch(x + 240, 760, pd_feedback_logic())
    return c.render() + "\n"


def pd_controls_logic() -> PdCanvas:
    """What each control sends: ``[r $0-<name>]`` -> a message -> ``[s $0-cmd]``."""
    c = PdCanvas(980, 860, name="controls", x=80, y=60)
    out = c.obj(420, 820, f"s {snd('cmd')}")

    def send(obj: int, outlet: int = 0) -> None:
        c.connect(obj, outlet, out)

    # Defaults, set through the controls themselves (so their stores and displays agree).
    lb = c.obj(20, 10, "loadbang")
    defaults = " \\; ".join(
        f"{rcv(ctl.name)} {'symbol ' if isinstance(ctl.default, str) else ''}{ctl.default}"
        for ctl in CONTROLS if ctl.default is not None
    )
    init = c.msg(20, 40, f"\\; {defaults}", 60)
    c.connect(lb, 0, init)

    # folkrnn-voice takes a number (2) or a name (symbol bass); a symbol box needs a symbol.
    r_voice = c.obj(520, 10, f"r {rcv('voice')}")
    is_num = c.obj(520, 35, "route float")
    as_sym = c.obj(520, 60, "makefilename %d")
    to_box = c.obj(520, 85, f"s {snd('voice-in')}")
    c.connect(r_voice, 0, is_num)
    c.connect(is_num, 0, as_sym)
    c.connect(as_sym, 0, to_box)
    c.connect(is_num, 1, to_box)

    # connect: host, port, feedback port -> "connect HOST PORT FBPORT".
    stores = []
    for x, kind, name in ((20, "symbol", "host"), (140, "f", "port"), (260, "f", "fbport")):
        r = c.obj(x, 130, f"r {snd(name)}")
        stores.append(store := c.obj(x, 160, kind))
        c.connect(r, 0, store, 1)
    host, port, fbport = stores
    trig = c.obj(380, 130, f"r {snd('connect')}")
    t3 = c.obj(380, 160, "t b b b")
    pack = c.obj(20, 190, "pack s f f")
    c.connect(trig, 0, t3)
    c.connect(t3, 2, fbport)
    c.connect(t3, 1, port)
    c.connect(t3, 0, host)
    c.connect(host, 0, pack, 0)
    c.connect(port, 0, pack, 1)
    c.connect(fbport, 0, pack, 2)
    m = c.msg(20, 215, "connect \\$1 \\$2 \\$3")
    c.connect(pack, 0, m)
    send(m)
    r = c.obj(520, 130, f"r {snd('voice')}")
    m = c.msg(520, 160, "voice \\$1")
    c.connect(r, 0, m)
    send(m)

    # One message per bang.
    for i, (name, command) in enumerate(SIMPLE.items()):
        x, y = 20 + (i % 5) * 180, 270 + (i // 5) * 55
        r = c.obj(x, y, f"r {snd(name)}")
        m = c.msg(x, y + 25, command)
        c.connect(r, 0, m)
        send(m)

    # Sliders: "temperature $1", "tempo $1".
    for i, name in enumerate(("temperature", "tempo")):
        r = c.obj(20 + i * 180, 450, f"r {snd(name)}")
        m = c.msg(20 + i * 180, 475, f"{name} \\$1")
        c.connect(r, 0, m)
        send(m)

    # Bias of one pitch class: a new class clears the old bias first.
    r_pc, r_amt = c.obj(380, 450, f"r {snd('bias-pc')}"), c.obj(500, 450, f"r {snd('bias')}")
    t_pc, t_amt = c.obj(380, 475, "t f b"), c.obj(500, 475, "t b f")
    clear = c.msg(430, 500, "bias_clear")
    p = c.obj(380, 525, "pack f f")
    m = c.msg(380, 550, "bias pc:\\$1 \\$2")
    c.connect(r_pc, 0, t_pc)
    c.connect(t_pc, 1, clear)
    send(clear)
    c.connect(t_pc, 0, p, 0)
    c.connect(r_amt, 0, t_amt)
    c.connect(t_amt, 1, p, 1)
    c.connect(t_amt, 0, p, 0)  # a bang: output with the current pitch class
    c.connect(p, 0, m)
    send(m)

    # Suppress bar lines: on -> "suppress STEPS @bar", off -> "suppress_clear".
    r_steps, r_on = c.obj(620, 450, f"r {snd('suppress-steps')}"), c.obj(790, 450, f"r {snd('suppress-bars')}")
    steps = c.obj(620, 525, "f")
    sel = c.obj(790, 475, "sel 0")
    off = c.msg(790, 550, "suppress_clear")
    on = c.obj(850, 500, "t b")
    m = c.msg(620, 550, "suppress \\$1 @bar")
    c.connect(r_steps, 0, steps, 1)
    c.connect(r_on, 0, sel)
    c.connect(sel, 0, off)
    c.connect(sel, 1, on)
    c.connect(on, 0, steps)
    c.connect(steps, 0, m)
    send(m)
    send(off)

    # snip_random LAYER FRACTION SEED (fraction and seed from their boxes).
    pack3 = c.obj(20, 660, "pack f f f")
    m = c.msg(20, 685, "snip_random \\$1 \\$2 \\$3")
    for i, name in enumerate(("snip-fraction", "snip-seed")):
        r = c.obj(20 + i * 150, 610, f"r {snd(name)}")
        c.connect(r, 0, pack3, i + 1)
    for layer in SNIP_LAYERS:
        r = c.obj(330 + layer * 100, 610, f"r {snd(f'snip-{layer}')}")
        lm = c.msg(330 + layer * 100, 635, str(layer))
        c.connect(r, 0, lm)
        c.connect(lm, 0, pack3)
    c.connect(pack3, 0, m)
    send(m)

    # Force: on -> "force 0.7 @pitch 0.3" (until cleared), off -> "force_clear".
    r_f = c.obj(660, 610, f"r {snd('force')}")
    sel_f = c.obj(660, 635, "sel 0")
    f_off = c.msg(660, 660, "force_clear")
    f_on = c.msg(760, 660, "force 0.7 @pitch 0.3")
    c.connect(r_f, 0, sel_f)
    c.connect(sel_f, 0, f_off)
    c.connect(sel_f, 1, f_on)
    send(f_off)
    send(f_on)

    # Steer: "steer COMPONENT ALPHA" when either changes.
    r_comp, r_alpha = c.obj(20, 740, f"r {snd('steer-component')}"), c.obj(200, 740, f"r {snd('steer-alpha')}")
    t_alpha = c.obj(200, 765, "t b f")
    p2 = c.obj(20, 790, "pack f f")
    m = c.msg(20, 815, "steer \\$1 \\$2")
    c.connect(r_comp, 0, p2, 0)
    c.connect(r_alpha, 0, t_alpha)
    c.connect(t_alpha, 1, p2, 1)
    c.connect(t_alpha, 0, p2, 0)
    c.connect(p2, 0, m)
    send(m)
    return c


def pd_feedback_logic() -> PdCanvas:
    """Feedback to the displays, the Pd window, [noteout] and the sine voice."""
    c = PdCanvas(840, 820, name="feedback", x=120, y=100)
    # Only the selected voice's feedback (every voice's for "all"); replies (/error, /pong) always.
    # [folkrnn-control] outputs a voice message's voice first: it sets the gate, the message passes
    # or not, then the gate opens again for messages without a voice.
    r_fb_voice = c.obj(560, 10, f"r {snd('fb-voice')}")
    r_sel_voice = c.obj(700, 10, f"r {snd('voice')}")
    is_sel = c.obj(560, 35, "sel none")  # right inlet: the selected voice
    is_all = c.obj(700, 35, "sel all")
    yes, other, no = c.msg(560, 60, "1"), c.obj(600, 60, "t b"), c.obj(600, 85, "f")
    all_flag, not_all = c.msg(700, 60, "1"), c.msg(750, 60, "0")
    c.connect(r_sel_voice, 0, is_sel, 1)
    c.connect(r_sel_voice, 0, is_all)
    c.connect(is_all, 0, all_flag)
    c.connect(is_all, 1, not_all)
    c.connect(all_flag, 0, no, 1)
    c.connect(not_all, 0, no, 1)
    c.connect(r_fb_voice, 0, is_sel)
    c.connect(is_sel, 0, yes)
    c.connect(is_sel, 1, other)
    c.connect(other, 0, no)
    r_fb = c.obj(20, 10, f"r {snd('fb')}")
    t_fb = c.obj(20, 35, "t b a")
    voice_gate = c.obj(110, 60, "spigot 1")
    reopen = c.msg(20, 60, "1")
    c.connect(yes, 0, voice_gate, 1)
    c.connect(no, 0, voice_gate, 1)
    c.connect(r_fb, 0, t_fb)
    c.connect(t_fb, 1, voice_gate)
    c.connect(t_fb, 0, reopen)
    c.connect(reopen, 0, voice_gate, 1)
    route = c.obj(20, 90, "route token note tune_start applied error pong")
    c.connect(voice_gate, 0, route)

    # token tune step token total: "tune step" and a line of the tune's last tokens.
    split2 = c.obj(20, 130, "list split 2")
    pos = c.obj(20, 160, f"s {show('pos')}")
    split1 = c.obj(180, 160, "list split 1")
    acc = c.obj(180, 190, "list prepend")
    t_acc = c.obj(180, 220, "t a a a")
    length = c.obj(180, 250, "list length")
    full = c.obj(180, 275, "moses 24")
    empty = c.msg(250, 300, "list")
    pre = c.obj(330, 250, "list prepend set")
    trim = c.obj(330, 275, "list trim")
    s_tok = c.obj(330, 300, f"s {show('tokens')}")
    c.connect(route, 0, split2)
    c.connect(split2, 0, pos)
    c.connect(split2, 1, split1)
    c.connect(split1, 0, acc)
    c.connect(acc, 0, t_acc)
    c.connect(t_acc, 2, pre)
    c.chain(pre, trim, s_tok)
    c.connect(t_acc, 1, acc, 1)
    c.connect(t_acc, 0, length)
    c.connect(length, 0, full)
    c.connect(full, 1, empty)
    c.connect(empty, 0, acc, 1)
    c.connect(route, 2, empty)  # a new tune starts a new line

    # The other displays: a listbox gets a list, a message box is set (it wraps long lines).
    for i, (outlet, name, wrap) in enumerate(((1, "note", False), (3, "applied", True),
                                              (4, "error", True), (5, "pong", False))):
        x, y = 540, 130 + i * 90
        first = c.obj(x, y, "list prepend set" if wrap else "list")
        c.connect(route, outlet, first)
        if wrap:
            last = c.obj(x, y + 25, "list trim")
            c.connect(first, 0, last)
        else:
            last = first
        c.connect(last, 0, c.obj(x, y + 50, f"s {show(name)}"))

    # The Pd window, when asked.
    r_print = c.obj(20, 370, f"r {snd('print')}")
    gate_print = c.obj(20, 400, "spigot")
    prt = c.obj(20, 430, "print folkrnn")
    c.connect(voice_gate, 0, gate_print)
    c.connect(r_print, 0, gate_print, 1)
    c.connect(gate_print, 0, prt)

    # Notes: pitch velocity duration_ms channel(0-based) -> [makenote] -> [noteout].
    notes = c.obj(20, 490, "list")
    c.connect(route, 1, notes)
    r_midi = c.obj(120, 490, f"r {snd('midi')}")
    gate_midi = c.obj(20, 520, "spigot")
    unpack = c.obj(20, 550, "unpack f f f f")
    plus = c.obj(160, 580, "+ 1")
    mk = c.obj(20, 610, "makenote 100 250")
    out = c.obj(20, 650, "noteout 1")
    c.connect(notes, 0, gate_midi)
    c.connect(r_midi, 0, gate_midi, 1)
    c.connect(gate_midi, 0, unpack)
    c.connect(unpack, 3, plus)
    c.connect(plus, 0, out, 2)
    c.connect(unpack, 2, mk, 2)
    c.connect(unpack, 1, mk, 1)
    c.connect(unpack, 0, mk, 0)
    c.connect(mk, 0, out, 0)
    c.connect(mk, 1, out, 1)

    # A sine voice: monophonic, velocity to level, 5 ms attack, 50 ms release after the duration.
    r_sine = c.obj(300, 460, f"r {snd('sine')}")
    sel = c.obj(300, 490, "sel 0")
    dsp_off = c.msg(300, 520, "\\; pd dsp 0")
    dsp_on = c.msg(400, 520, "\\; pd dsp 1")
    gate_sine = c.obj(300, 560, "spigot")
    c.connect(r_sine, 0, sel)
    c.connect(sel, 0, dsp_off)
    c.connect(sel, 1, dsp_on)
    c.connect(r_sine, 0, gate_sine, 1)
    c.connect(notes, 0, gate_sine)
    unpack2 = c.obj(300, 590, "unpack f f f")
    mtof = c.obj(300, 620, "mtof")
    osc = c.obj(300, 650, "osc~")
    level = c.obj(420, 620, "/ 400")
    env_pack = c.obj(420, 650, "pack f f")
    env = c.msg(420, 675, "\\$1 5 \\, 0 50 \\$2")
    vline = c.obj(420, 700, "vline~")
    mul = c.obj(300, 730, "*~")
    dac = c.obj(300, 760, "dac~")
    c.connect(mul, 0, c.obj(380, 760, "s~ folkrnn-sine~"))  # for your own effects: [r~ folkrnn-sine~]
    c.connect(gate_sine, 0, unpack2)
    c.connect(unpack2, 2, env_pack, 1)
    c.connect(unpack2, 1, level)
    c.connect(unpack2, 0, mtof)
    c.chain(mtof, osc)
    c.connect(level, 0, env_pack)
    c.chain(env_pack, env, vline)
    c.connect(osc, 0, mul)
    c.connect(vline, 0, mul, 1)
    c.connect(mul, 0, dac)
    c.connect(mul, 0, dac, 1)
    return c


# --- Max --------------------------------------------------------------------------------------------

# Inlets and outlet types of the Max objects used (from Max 8 patchers: what Max itself writes).
MAX_IO: dict[str, Callable[[list[str]], tuple[int, list[str]]]] = {
    "r": lambda a: (0, [""]),
    "s": lambda a: (1, []),
    "t": lambda a: (1, [{"b": "bang", "i": "int", "f": "float"}.get(x, "") for x in a]),
    "route": lambda a: (len(a) + 1, [""] * (len(a) + 1)),
    "zl.slice": lambda a: (2, ["", ""]),
    "zl.ecils": lambda a: (2, ["", ""]),
    "zl.join": lambda a: (2, ["", ""]),
    "zl.reg": lambda a: (2, ["", ""]),
    "zl.stream": lambda a: (2, ["", ""]),
    "sprintf": lambda a: (max(1, sum(x.count("%") for x in a)), [""]),
    "prepend": lambda a: (1, [""]),
    "tosymbol": lambda a: (1, [""]),
    "fromsymbol": lambda a: (1, [""]),
    "loadbang": lambda a: (1, ["bang"]),
    "loadmess": lambda a: (1, [""]),
    "pack": lambda a: (len(a), [""]),
    "pak": lambda a: (len(a), [""]),
    "unpack": lambda a: (1, [{"i": "int", "f": "float", "s": ""}.get(x, "") for x in a]),
    "sel": lambda a: (2, ["bang", ""]),
    "gate": lambda a: (2, [""]),
    "i": lambda a: (2, ["int"]),
    "+": lambda a: (2, ["int"]),
    "/": lambda a: (2, ["float"]),
    "makenote": lambda a: (3, ["float", "float"]),
    "noteout": lambda a: (3, []),
    "print": lambda a: (1, []),
    "udpsend": lambda a: (1, []),
    "udpreceive": lambda a: (1, [""]),
    "mtof": lambda a: (1, [""]),
    "cycle~": lambda a: (2, ["signal"]),
    "line~": lambda a: (2, ["signal", "bang"]),
    "*~": lambda a: (2, ["signal"]),
}
MAX_UI = {  # maxclass: (inlets, outlet types)
    "message": (2, [""]),
    "comment": (1, []),
    "button": (1, ["bang"]),
    "toggle": (1, ["int"]),
    "number": (1, ["", "bang"]),
    "flonum": (1, ["", "bang"]),
    "slider": (1, [""]),
    "umenu": (1, ["int", "", ""]),
    "ezdac~": (2, []),
}


@dataclass
class MaxPatcher:
    """A Max patcher: boxes ``obj-N`` and patchlines.  ``show=True`` puts a box in presentation mode
    too (the performer's view: controls, labels and displays, none of the plumbing)."""

    boxes: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)

    def _box(self, maxclass: str, x: float, y: float, w: float, h: float, nin: int, outs: list[str],
             show: bool = False, **extra: Any) -> str:
        box_id = f"obj-{len(self.boxes) + 1}"
        box: dict[str, Any] = {"id": box_id, "maxclass": maxclass, "numinlets": nin, "numoutlets": len(outs)}
        if outs:
            box["outlettype"] = outs
        box["patching_rect"] = [float(x), float(y), float(w), float(h)]
        if show:
            box["presentation"] = 1
            box["presentation_rect"] = [float(x), float(y), float(w), float(h)]
        box.update(extra)
        self.boxes.append({"box": dict(sorted(box.items()))})
        return box_id

    def obj(self, x: float, y: float, text: str) -> str:
        name, *args = text.split()
        nin, outs = MAX_IO[name](args)
        return self._box("newobj", x, y, max(30.0, 7.0 * len(text) + 12), 22, nin, outs, text=text)

    def ui(self, maxclass: str, x: float, y: float, w: float = 22, h: float = 22, show: bool = True,
           **extra: Any) -> str:
        nin, outs = MAX_UI[maxclass]
        if maxclass in ("button", "toggle", "number", "flonum", "slider", "umenu"):
            extra.setdefault("parameter_enable", 0)
        return self._box(maxclass, x, y, w, h, nin, list(outs), show=show, **extra)

    def msg(self, x: float, y: float, text: str, w: float | None = None, show: bool = True) -> str:
        return self.ui("message", x, y, w or max(30.0, 7.0 * len(text) + 14), 22, show=show, text=text)

    def comment(self, x: float, y: float, text: str, w: float | None = None) -> str:
        return self.ui("comment", x, y, w or 7.0 * len(text) + 10, 20, text=text)

    def position(self, box_id: str) -> tuple[float, float]:
        x, y, _, _ = self.boxes[int(box_id.split("-")[1]) - 1]["box"]["patching_rect"]
        return x, y

    def connect(self, a: str, outlet: int, b: str, inlet: int = 0) -> None:
        self.lines.append({"patchline": {"destination": [b, inlet], "source": [a, outlet]}})

    def chain(self, *ids: str) -> None:
        for a, b in itertools.pairwise(ids):
            self.connect(a, 0, b)

    def render(self) -> str:
        patcher = {
            "patcher": {
                "fileversion": 1,
                "appversion": {"major": 8, "minor": 5, "revision": 0, "architecture": "x64", "modernui": 1},
                "classnamespace": "box",
                "rect": [40.0, 60.0, 1120.0, 860.0],
                "bglocked": 0,
                "openinpresentation": 1,
                "default_fontsize": 12.0,
                "default_fontface": 0,
                "default_fontname": "Arial",
                "gridonopen": 1,
                "gridsize": [15.0, 15.0],
                "gridsnaponopen": 1,
                "toolbarvisible": 1,
                "description": "folkrnn-live control surface (see patches/README.md)",
                "boxes": self.boxes,
                "lines": self.lines,
            }
        }
        return json.dumps(patcher, indent=1) + "\n"


def max_live() -> str:
    """``folkrnn-live.maxpat``: the same surface for Max (udpsend/udpreceive, vanilla objects).

    Layout: each control is a column ``[r folkrnn-<name>]`` / the control / its message /
    ``[s folkrnn-cmd]``; the engine that turns ``cmd args`` into OSC sits on the right (x >= 1350).
    """
    p = MaxPatcher()
    cmd = "folkrnn-cmd"

    def to_cmd(box: str, outlet: int = 0, dy: float = 30) -> str:
        """``[s folkrnn-cmd]`` under a box."""
        x, y = p.position(box)
        s = p.obj(x, y + dy, f"s {cmd}")
        p.connect(box, outlet, s)
        return s

    def remote(name: str, box: str, dy: float = -30, inlet: int = 0) -> None:
        """``[r folkrnn-<name>]`` above a box, into it (as in the Pd surface)."""
        x, y = p.position(box)
        p.connect(p.obj(x, y + dy, f"r folkrnn-{name}"), 0, box, inlet)

    p.comment(20, 10, "folkrnn-live control surface: click connect, then play. Every control also listens to "
              "[r folkrnn-<name>]; any patch can [s folkrnn-cmd] messages such as 'temperature 0.8'. "
              "Unlock / leave presentation mode to see the wiring.", 1000)

    # 1. Connection (edit host and ports in the connect message).
    p.comment(20, 40, "1. connect  (edit host, server port, feedback port in the message)")
    conn = p.msg(20, 95, "connect 127.0.0.1 7400 9001", 200)
    remote("connect", conn)
    to_cmd(conn)
    for x, name, text in ((250, "disconnect", "disconnect"), (420, "ping", "global ping 1")):
        m = p.msg(x, 95, text)
        remote(name, m)
        to_cmd(m)
    p.comment(600, 70, "voice")
    voice = p.ui("umenu", 600, 95, 70, 22, items=["1", ",", "2", ",", "3", ",", "4", ",", "all"])
    vmsg = p.msg(700, 125, "voice $1", show=False)
    p.connect(voice, 1, vmsg)  # the item's text
    remote("voice", vmsg)
    to_cmd(vmsg)

    # 2. Transport.
    p.comment(20, 170, "2. transport")
    for i, name in enumerate(("start", "stop", "pause", "resume", "next", "reset")):
        m = p.msg(20 + i * 130, 225, name)
        remote(name, m)
        to_cmd(m)

    # 3. The network.
    p.comment(20, 300, "3. the network (applied before the next token)")

    def slider(name: str, lo: float, hi: float, x: float, y: float) -> None:
        p.comment(x, y, name)
        sl = p.ui("slider", x, y + 55, 140, 22, floatoutput=1, min=lo, size=hi - lo, orientation=1)
        num = p.ui("flonum", x + 150, y + 55, 60, 22, format=6)
        m = p.msg(x + 150, y + 85, f"{name} $1", show=False)
        p.connect(sl, 0, num)
        p.connect(num, 0, m)
        remote(name, num)
        to_cmd(m)

    slider("temperature", 0.05, 3.0, 20, 325)
    slider("tempo", 40, 400, 260, 325)

    # bias pc:N amount: a new pitch class clears the old bias first.
    bx = 520
    p.comment(bx, 325, "bias pitch class / amount")
    items: list[str] = []
    for i, n in enumerate(("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")):
        items += ([","] if i else []) + [n]
    pc_menu = p.ui("umenu", bx, 380, 60, 22, items=items)
    remote("bias-pc", pc_menu)
    amt = p.ui("flonum", bx + 160, 380, 60, 22, format=6)
    remote("bias", amt)
    t_pc = p.obj(bx, 410, "t i b")
    clear = p.msg(bx + 180, 410, "bias_clear", show=False)
    to_cmd(clear)
    pc_sym = p.obj(bx, 470, "sprintf symout pc:%ld")
    pak = p.obj(bx, 500, "pak s 0.")
    bias = p.msg(bx, 530, "bias $1 $2", show=False)
    p.connect(pc_menu, 0, t_pc)
    p.connect(t_pc, 1, clear)
    p.connect(t_pc, 0, pc_sym)
    p.connect(pc_sym, 0, pak)
    p.connect(amt, 0, pak, 1)
    p.connect(pak, 0, bias)
    to_cmd(bias)
    bclear = p.msg(bx + 300, 380, "bias_clear")
    remote("bias-clear", bclear)
    to_cmd(bclear)

    # suppress STEPS @bar / suppress_clear.
    p.comment(20, 600, "suppress bar lines for N steps (0 = until cleared)")
    sup = p.ui("toggle", 20, 655)
    remote("suppress-bars", sup)
    steps = p.ui("number", 200, 655, 60, 22)
    remote("suppress-steps", steps)
    p.connect(p.obj(270, 690, "loadmess 32"), 0, steps)
    sel = p.obj(20, 690, "sel 0")
    t_on = p.obj(70, 720, "t b")
    store = p.obj(70, 750, "i")
    sup_on = p.msg(70, 780, "suppress $1 @bar", show=False)
    sup_off = p.msg(20, 840, "suppress_clear", show=False)
    p.connect(sup, 0, sel)
    p.connect(sel, 0, sup_off)
    p.connect(sel, 1, t_on)
    p.connect(t_on, 0, store)
    p.connect(steps, 0, store, 1)
    p.connect(store, 0, sup_on)
    to_cmd(sup_on)
    to_cmd(sup_off)

    # snip_random LAYER FRACTION SEED (click a layer); restore LAYER / restore.
    sx = 380
    p.comment(sx, 600, "snip a random fraction of a layer's units (fraction, seed, then a layer); restore")
    frac = p.ui("flonum", sx, 655, 60, 22, format=6)
    remote("snip-fraction", frac)
    p.connect(p.obj(sx + 70, 690, "loadmess 0.5"), 0, frac)
    seed = p.ui("number", sx + 180, 655, 80, 22)
    remote("snip-seed", seed)
    pack3 = p.obj(sx, 750, "pack 0 0. 0")
    snip = p.msg(sx, 780, "snip_random $1 $2 $3", show=False)
    p.connect(frac, 0, pack3, 1)
    p.connect(seed, 0, pack3, 2)
    p.connect(pack3, 0, snip)
    to_cmd(snip)
    for layer in SNIP_LAYERS:
        m = p.msg(sx + 350 + layer * 150, 655, f"snip {layer}")
        remote(f"snip-{layer}", m)
        num = p.msg(sx + 350 + layer * 150, 690, str(layer), show=False)
        p.connect(m, 0, num)  # any click: this layer
        p.connect(num, 0, pack3)
        r = p.msg(sx + 350 + layer * 150, 750, f"restore {layer}")
        remote(f"restore-{layer}", r)
        to_cmd(r)
    rall = p.msg(sx + 800, 750, "restore")
    remote("restore", rall)
    to_cmd(rall)

    # force 0.7 @pitch 0.3 / force_clear.
    fy = 900
    p.comment(20, fy, "force 0.7 generated + 0.3 @pitch")
    force = p.ui("toggle", 20, fy + 55)
    remote("force", force)
    fsel = p.obj(20, fy + 85, "sel 0")
    f_off = p.msg(20, fy + 115, "force_clear", show=False)
    f_on = p.msg(120, fy + 115, "force 0.7 @pitch 0.3", show=False)
    p.connect(force, 0, fsel)
    p.connect(fsel, 0, f_off)
    p.connect(fsel, 1, f_on)
    to_cmd(f_off)
    to_cmd(f_on)

    # steer COMPONENT ALPHA / steer_clear; clear.
    p.comment(330, fy, "steer component / alpha")
    comp = p.ui("number", 330, fy + 55, 50, 22)
    remote("steer-component", comp)
    alpha = p.ui("slider", 400, fy + 55, 140, 22, floatoutput=1, min=-20.0, size=40.0, orientation=1)
    anum = p.ui("flonum", 550, fy + 55, 60, 22, format=6)
    remote("steer-alpha", anum)
    p.connect(alpha, 0, anum)
    pak2 = p.obj(330, fy + 85, "pak 0 0.")
    steer = p.msg(330, fy + 115, "steer $1 $2", show=False)
    p.connect(comp, 0, pak2)
    p.connect(anum, 0, pak2, 1)
    p.connect(pak2, 0, steer)
    to_cmd(steer)
    for x, name, text in ((720, "steer-clear", "steer_clear"), (880, "clear", "clear")):
        m = p.msg(x, fy + 55, text)
        remote(name, m)
        to_cmd(m)

    # 4. What comes back.
    dy0 = 1080
    p.comment(20, dy0, "4. what comes back")
    displays = {}
    for i, (label, width) in enumerate((("tokens", 700), ("tune step", 120), ("note", 160), ("applied", 400),
                                        ("error", 900), ("pong", 60))):
        y = dy0 + 25 + i * 30
        p.comment(20, y, label)
        displays[label] = p.obj(20 + 100 + width + 20, y, "prepend set")
        box = p.msg(120, y, "-", width)
        p.connect(displays[label], 0, box)

    # 5. The notes here.
    ny = 1300
    p.comment(20, ny, "5. the notes here: MIDI out ([noteout]) / sine voice (switch audio on with the speaker)")
    midi = p.ui("toggle", 20, ny + 55)
    remote("midi", midi)
    sine = p.ui("toggle", 330, ny + 55)
    remote("sine", sine)
    ngate = p.obj(20, ny + 90, "gate")
    nunpack = p.obj(20, ny + 120, "unpack i i f i")
    chan = p.obj(180, ny + 150, "+ 1")
    mk = p.obj(20, ny + 180, "makenote 100 250")
    nout = p.obj(20, ny + 210, "noteout")
    p.connect(midi, 0, ngate)
    p.connect(ngate, 0, nunpack)
    p.connect(nunpack, 3, chan)
    p.connect(chan, 0, nout, 2)
    p.connect(nunpack, 2, mk, 2)
    p.connect(nunpack, 1, mk, 1)
    p.connect(nunpack, 0, mk)
    p.connect(mk, 0, nout)
    p.connect(mk, 1, nout, 1)
    sgate = p.obj(330, ny + 90, "gate")
    sunpack = p.obj(330, ny + 120, "unpack f f f")
    mtof = p.obj(330, ny + 150, "mtof")
    cyc = p.obj(330, ny + 180, "cycle~")
    lvl = p.obj(450, ny + 150, "/ 400.")
    env = p.obj(450, ny + 180, "pack 0. 0.")
    envm = p.msg(450, ny + 210, "$1 5 $1 $2 0. 50", show=False)  # up in 5 ms, hold, down in 50
    ln = p.obj(450, ny + 240, "line~")
    mul = p.obj(330, ny + 270, "*~")
    ez = p.ui("ezdac~", 330, ny + 300, 45, 45)
    p.connect(sine, 0, sgate)
    p.connect(sgate, 0, sunpack)
    p.connect(sunpack, 2, env, 1)
    p.connect(sunpack, 1, lvl)
    p.connect(sunpack, 0, mtof)
    p.connect(mtof, 0, cyc)
    p.connect(lvl, 0, env)
    p.chain(env, envm, ln)
    p.connect(cyc, 0, mul)
    p.connect(ln, 0, mul, 1)
    p.connect(mul, 0, ez)
    p.connect(mul, 0, ez, 1)
    p.comment(640, ny + 55, "print feedback to the Max window")
    print_t = p.ui("toggle", 610, ny + 55)
    remote("print", print_t)
    pgate = p.obj(610, ny + 90, "gate")
    p.connect(print_t, 0, pgate)
    p.connect(pgate, 0, p.obj(610, ny + 120, "print folkrnn"))

    # The engine: "cmd args" -> /folkrnn/<voice>/cmd args, "global cmd args" -> /folkrnn/cmd args.
    ex = 1350
    p.comment(ex, 40, "engine: 'cmd args' -> OSC /folkrnn/<voice>/cmd args; 'global cmd args' -> /folkrnn/cmd args;"
              " 'connect HOST PORT FBPORT', 'disconnect', 'voice NAME'", 560)
    r_cmd = p.obj(ex, 80, f"r {cmd}")
    route = p.obj(ex, 110, "route connect disconnect voice global")
    p.connect(r_cmd, 0, route)
    # connect HOST PORT FBPORT: target the server, listen for feedback, subscribe.
    conn_t = p.obj(ex, 150, "t l l l l")
    sub = p.msg(ex, 180, f"global subscribe $3 {STREAMS}", show=False)
    send_to = p.msg(ex + 400, 180, "host $1, port $2", show=False)
    recv_port = p.msg(ex + 530, 180, "port $3", show=False)
    fb_port = p.obj(ex + 610, 180, "unpack s i i")
    fb_store = p.obj(ex + 610, 240, "zl.reg")
    p.connect(route, 0, conn_t)
    p.connect(conn_t, 3, recv_port)
    p.connect(conn_t, 2, fb_port)
    p.connect(fb_port, 2, fb_store, 1)
    p.connect(conn_t, 1, send_to)
    p.connect(conn_t, 0, sub)
    to_cmd(sub)
    # disconnect: unsubscribe from the feedback port given at connect.
    unsub = p.msg(ex + 610, 270, "global unsubscribe $1", show=False)
    p.connect(route, 1, fb_store)
    p.connect(fb_store, 0, unsub)
    to_cmd(unsub)
    # voice NAME (1 at first).
    vsym = p.obj(ex + 800, 150, "tosymbol")  # a voice name is a symbol, also "1"
    vreg = p.obj(ex + 800, 330, "zl.reg")
    p.connect(p.obj(ex + 900, 110, "loadmess 1"), 0, vsym)
    p.connect(route, 2, vsym)
    p.connect(vsym, 0, vreg, 1)
    # Voice and global commands: the address from the first word, then the rest as arguments.
    v_in, g_in = p.obj(ex, 270, "t l b"), p.obj(ex + 250, 270, "t l b")
    p.connect(route, 4, v_in)
    p.connect(route, 3, g_in)
    join = p.obj(ex, 450, "zl.join")
    clear_join = p.msg(ex + 150, 330, "zlclear", show=False)
    p.connect(clear_join, 0, join, 1)
    v_slice, g_slice = p.obj(ex, 300, "zl.slice 1"), p.obj(ex + 250, 300, "zl.slice 1")
    v_cmd = p.obj(ex, 360, "t b s")
    v_addr = p.obj(ex, 410, "sprintf symout /folkrnn/%s/%s")
    g_addr = p.obj(ex + 250, 410, "sprintf symout /folkrnn/%s")
    for t, sl in ((v_in, v_slice), (g_in, g_slice)):
        p.connect(t, 1, clear_join)
        p.connect(t, 0, sl)
        p.connect(sl, 1, join, 1)
    p.connect(v_slice, 0, v_cmd)
    p.connect(v_cmd, 1, v_addr, 1)
    p.connect(v_cmd, 0, vreg)
    p.connect(vreg, 0, v_addr)
    p.connect(g_slice, 0, g_addr)
    p.connect(v_addr, 0, join)
    p.connect(g_addr, 0, join)
    udpsend = p.obj(ex, 490, "udpsend 127.0.0.1 7400")
    p.connect(join, 0, udpsend)
    p.connect(send_to, 0, udpsend)

    # Feedback: /folkrnn/<voice>/<name> args -> "<name> args"; /error, /pong and /note as they are.
    udprecv = p.obj(ex, 560, "udpreceive 9001")
    p.connect(recv_port, 0, udprecv)
    froute = p.obj(ex, 590, "route /error /pong /note")
    p.connect(udprecv, 0, froute)
    f_in = p.obj(ex, 620, "t l b")
    p.connect(froute, 3, f_in)
    fclear = p.msg(ex + 150, 650, "zlclear", show=False)
    fjoin = p.obj(ex, 770, "zl.join")
    p.connect(f_in, 1, fclear)
    p.connect(fclear, 0, fjoin, 1)
    fslice = p.obj(ex, 650, "zl.slice 1")
    p.connect(f_in, 0, fslice)
    p.connect(fslice, 1, fjoin, 1)
    address = p.obj(ex, 680, "tosymbol")
    parts = p.obj(ex, 710, "fromsymbol @separator /")
    last = p.obj(ex, 740, "zl.ecils 1")  # right outlet: the last part of the address
    p.connect(fslice, 0, address)
    p.chain(address, parts, last)
    p.connect(last, 1, fjoin)
    names = p.obj(ex, 800, "route token note tune_start applied")
    p.connect(fjoin, 0, names)
    p.connect(fjoin, 0, pgate, 1)
    err_print = p.obj(ex + 250, 620, "prepend error")
    p.connect(froute, 0, err_print)
    p.connect(err_print, 0, pgate, 1)
    tokens = p.obj(ex, 840, "zl.slice 2")
    tok = p.obj(ex, 870, "zl.slice 1")
    stream = p.obj(ex, 900, "zl.stream 16")
    clear_stream = p.msg(ex + 150, 870, "zlclear", show=False)
    p.connect(names, 0, tokens)
    p.connect(tokens, 1, tok)
    p.connect(tok, 0, stream)
    p.connect(names, 2, clear_stream)
    p.connect(clear_stream, 0, stream)
    p.connect(stream, 0, displays["tokens"])
    p.connect(tokens, 0, displays["tune step"])
    p.connect(names, 3, displays["applied"])
    p.connect(froute, 0, displays["error"])
    p.connect(froute, 1, displays["pong"])
    for outlet_of in ((names, 1), (froute, 2)):  # notes: subscribed feedback and the /note stream
        p.connect(*outlet_of, displays["note"])
        p.connect(*outlet_of, ngate, 1)
        p.connect(*outlet_of, sgate, 1)
    return p.render()


OUTPUTS = {
    "folkrnn-control.pd": pd_control,
    "folkrnn-live.pd": pd_live,
    "folkrnn-live.maxpat": max_live,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only report files that are out of date")
    ap.add_argument("--dir", type=Path, default=HERE, help="where to write (default: this folder)")
    args = ap.parse_args(argv)
    stale = []
    for name, make in OUTPUTS.items():
        path = args.dir / name
        text = make()
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print("out of date (run python3 patches/generate.py):", ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
