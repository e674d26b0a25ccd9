"""``folkrnn-live.pd``: the Pd performer surface and its two subpatches."""

from __future__ import annotations

from patchgen.pd import PdCanvas
from patchgen.surface import (
    CONTROLS,
    FORCE,
    PITCH_CLASSES,
    SIMPLE,
    SNIP_LAYERS,
    TRANSPORT,
    rcv,
    show,
    snd,
    span,
)


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
    c.hsl(20, y + 40, *span("temperature"), rcv("temperature"), snd("temperature"), "temperature")
    c.floatatom(190, y + 40, 6, snd("temperature"))
    c.hsl(260, y + 40, *span("tempo"), rcv("tempo"), snd("tempo"), "tempo_(BPM)")
    c.floatatom(430, y + 40, 6, snd("tempo"))

    c.hradio(20, y + 95, 12, rcv("bias-pc"), snd("bias-pc"), "bias_pitch_class")
    c.text(20, y + 117, "".join(f"{n:<3}" for n in PITCH_CLASSES).rstrip())
    c.hsl(260, y + 95, *span("bias"), rcv("bias"), snd("bias"), "bias_amount")
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
    c.hsl(200, y + 320, *span("steer-alpha"), rcv("steer-alpha"), snd("steer-alpha"), "steer_alpha")
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

    # Force: on -> FORCE (until cleared), off -> "force_clear".
    r_f = c.obj(660, 610, f"r {snd('force')}")
    sel_f = c.obj(660, 635, "sel 0")
    f_off = c.msg(660, 660, "force_clear")
    f_on = c.msg(760, 660, FORCE)
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
