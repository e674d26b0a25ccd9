"""The Pd surface's ``[pd controls]``: what each control sends, ``[r $0-<name>]`` -> a message ->
``[s $0-cmd]``."""

from __future__ import annotations

from collections.abc import Callable

from patchgen.pd import PdCanvas
from patchgen.surface import CONTROLS, FORCE, SIMPLE, SNIP_LAYERS, rcv, snd

Send = Callable[[int], None]  # a message box into [s $0-cmd]


def pd_controls_logic() -> PdCanvas:
    """What each control sends: ``[r $0-<name>]`` -> a message -> ``[s $0-cmd]``."""
    c = PdCanvas(980, 860, name="controls", x=80, y=60)
    out = c.obj(420, 820, f"s {snd('cmd')}")

    def send(obj: int) -> None:
        c.connect(obj, 0, out)

    _defaults_and_voice(c)
    _connect(c, send)
    _bangs_and_sliders(c, send)
    _bias_and_suppress(c, send)
    _snip_force_steer(c, send)
    return c


def _defaults_and_voice(c: PdCanvas) -> None:
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


def _connect(c: PdCanvas, send: Send) -> None:
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


def _bangs_and_sliders(c: PdCanvas, send: Send) -> None:
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


def _bias_and_suppress(c: PdCanvas, send: Send) -> None:
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


def _snip_force_steer(c: PdCanvas, send: Send) -> None:
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
