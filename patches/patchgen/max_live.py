"""``folkrnn-live.maxpat``: the performer surface for Max (vanilla objects, udpsend/udpreceive)."""

from __future__ import annotations

from patchgen.max_engine import MaxSurface, engine, feedback
from patchgen.surface import BY_NAME, FORCE, PITCH_CLASSES, SNIP_LAYERS, span


def max_live() -> str:
    """``folkrnn-live.maxpat``: the same surface for Max (udpsend/udpreceive, vanilla objects).

    Layout: each control is a column ``[r folkrnn-<name>]`` / the control / its message /
    ``[s folkrnn-cmd]``; the engine that turns ``cmd args`` into OSC sits on the right (x >= 1350).
    """
    s = MaxSurface()
    host, port, fbport = _connection(s)
    _network(s)
    _bias(s)
    _suppress_and_snip(s)
    _force_and_steer(s)
    displays = _displays(s)
    ngate, sgate, pgate = _notes_here(s)
    recv_port = engine(s, host, port)
    feedback(s, fbport, recv_port, displays, (ngate, sgate, pgate))
    return s.p.render()


def _connection(s: MaxSurface) -> tuple[str, int, int]:
    p, to_cmd, remote = s.p, s.to_cmd, s.remote
    p.comment(20, 10, "folkrnn-live control surface: click connect, then play. Every control also listens to "
              "[r folkrnn-<name>]; any patch can [s folkrnn-cmd] messages such as 'temperature 0.8'. "
              "Unlock / leave presentation mode to see the wiring.", 1000)

    # 1. Connection (edit host and ports in the connect message).
    p.comment(20, 40, "1. connect  (edit host, server port, feedback port in the message)")
    host, port, fbport = (BY_NAME[n].default for n in ("host", "port", "fbport"))
    conn = p.msg(20, 95, f"connect {host} {port} {fbport}", 200)
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

    return host, port, fbport


def _network(s: MaxSurface) -> None:
    p = s.p
    # 3. The network.
    p.comment(20, 300, "3. the network (applied before the next token)")

    s.slider("temperature", *span("temperature"), 20, 325)
    s.slider("tempo", *span("tempo"), 260, 325)



def _bias(s: MaxSurface) -> None:
    p, to_cmd, remote = s.p, s.to_cmd, s.remote
    # bias pc:N amount: a new pitch class clears the old bias first.
    bx = 520
    p.comment(bx, 325, "bias pitch class / amount")
    items: list[str] = []
    for i, n in enumerate(PITCH_CLASSES):
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



def _suppress_and_snip(s: MaxSurface) -> None:
    p, to_cmd, remote = s.p, s.to_cmd, s.remote
    # suppress STEPS @bar / suppress_clear.
    p.comment(20, 600, "suppress bar lines for N steps (0 = until cleared)")
    sup = p.ui("toggle", 20, 655)
    remote("suppress-bars", sup)
    steps = p.ui("number", 200, 655, 60, 22)
    remote("suppress-steps", steps)
    p.connect(p.obj(270, 690, f"loadmess {BY_NAME['suppress-steps'].default}"), 0, steps)
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
    p.connect(p.obj(sx + 70, 690, f"loadmess {BY_NAME['snip-fraction'].default}"), 0, frac)
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



def _force_and_steer(s: MaxSurface) -> None:
    p, to_cmd, remote = s.p, s.to_cmd, s.remote
    # FORCE / force_clear.
    fy = 900
    p.comment(20, fy, "force 0.7 generated + 0.3 @pitch")
    force = p.ui("toggle", 20, fy + 55)
    remote("force", force)
    fsel = p.obj(20, fy + 85, "sel 0")
    f_off = p.msg(20, fy + 115, "force_clear", show=False)
    f_on = p.msg(120, fy + 115, FORCE, show=False)
    p.connect(force, 0, fsel)
    p.connect(fsel, 0, f_off)
    p.connect(fsel, 1, f_on)
    to_cmd(f_off)
    to_cmd(f_on)

    # steer COMPONENT ALPHA / steer_clear; clear.
    p.comment(330, fy, "steer component / alpha")
    comp = p.ui("number", 330, fy + 55, 50, 22)
    remote("steer-component", comp)
    lo, hi = span("steer-alpha")
    alpha = p.ui("slider", 400, fy + 55, 140, 22, floatoutput=1, min=float(lo), size=float(hi - lo), orientation=1)
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



def _displays(s: MaxSurface) -> dict[str, str]:
    p = s.p
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

    return displays


def _notes_here(s: MaxSurface) -> tuple[str, str, str]:
    p, remote = s.p, s.remote
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

    return ngate, sgate, pgate
