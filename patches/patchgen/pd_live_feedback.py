"""The Pd surface's ``[pd feedback]``: the server's feedback to the displays, the Pd window,
``[noteout]`` and a sine voice."""

from __future__ import annotations

from patchgen.pd import PdCanvas
from patchgen.surface import show, snd


def pd_feedback_logic() -> PdCanvas:
    """Feedback to the displays, the Pd window, [noteout] and the sine voice."""
    c = PdCanvas(840, 820, name="feedback", x=120, y=100)
    voice_gate, route = _voice_filter(c)
    _token_line(c, route)
    _other_displays(c, route)
    _pd_window(c, voice_gate)
    notes = _midi_notes(c, route)
    _sine_voice(c, notes)
    return c


def _voice_filter(c: PdCanvas) -> tuple[int, int]:
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
    return voice_gate, route


def _token_line(c: PdCanvas, route: int) -> None:
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


def _other_displays(c: PdCanvas, route: int) -> None:
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


def _pd_window(c: PdCanvas, voice_gate: int) -> None:
    # The Pd window, when asked.
    r_print = c.obj(20, 370, f"r {snd('print')}")
    gate_print = c.obj(20, 400, "spigot")
    prt = c.obj(20, 430, "print folkrnn")
    c.connect(voice_gate, 0, gate_print)
    c.connect(r_print, 0, gate_print, 1)
    c.connect(gate_print, 0, prt)


def _midi_notes(c: PdCanvas, route: int) -> int:
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
    return notes


def _sine_voice(c: PdCanvas, notes: int) -> None:
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
