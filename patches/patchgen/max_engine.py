"""The Max surface's wiring: :class:`MaxSurface` (the patcher and how a control reaches the engine)
and the engine itself, which turns ``cmd args`` into OSC and OSC feedback into the displays."""

from __future__ import annotations

from dataclasses import dataclass, field

from patchgen.maxmsp import MaxPatcher
from patchgen.surface import STREAMS

ENGINE_X = 1350  # x of the engine that turns 'cmd args' into OSC, right of the surface


@dataclass
class MaxSurface:
    """The patcher being built and the two wirings every control uses."""

    p: MaxPatcher = field(default_factory=MaxPatcher)
    cmd: str = "folkrnn-cmd"

    def to_cmd(self, box: str, outlet: int = 0, dy: float = 30) -> str:
        """``[s folkrnn-cmd]`` under a box."""
        x, y = self.p.position(box)
        s = self.p.obj(x, y + dy, f"s {self.cmd}")
        self.p.connect(box, outlet, s)
        return s

    def remote(self, name: str, box: str, dy: float = -30, inlet: int = 0) -> None:
        """``[r folkrnn-<name>]`` above a box, into it (as in the Pd surface)."""
        x, y = self.p.position(box)
        self.p.connect(self.p.obj(x, y + dy, f"r folkrnn-{name}"), 0, box, inlet)

    def slider(self, name: str, lo: float, hi: float, x: float, y: float) -> None:
        p = self.p
        p.comment(x, y, name)
        sl = p.ui("slider", x, y + 55, 140, 22, floatoutput=1, min=lo, size=hi - lo, orientation=1)
        num = p.ui("flonum", x + 150, y + 55, 60, 22, format=6)
        m = p.msg(x + 150, y + 85, f"{name} $1", show=False)
        p.connect(sl, 0, num)
        p.connect(num, 0, m)
        self.remote(name, num)
        self.to_cmd(m)


def engine(s: MaxSurface, host: str, port: int) -> str:
    p, to_cmd = s.p, s.to_cmd
    # The engine: "cmd args" -> /folkrnn/<voice>/cmd args, "global cmd args" -> /folkrnn/cmd args.
    ex = ENGINE_X
    p.comment(ex, 40, "engine: 'cmd args' -> OSC /folkrnn/<voice>/cmd args; 'global cmd args' -> /folkrnn/cmd args;"
              " 'connect HOST PORT FBPORT', 'disconnect', 'voice NAME'", 560)
    r_cmd = p.obj(ex, 80, f"r {s.cmd}")
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
    udpsend = p.obj(ex, 490, f"udpsend {host} {port}")
    p.connect(join, 0, udpsend)
    p.connect(send_to, 0, udpsend)

    return recv_port


def feedback(s: MaxSurface, fbport: int, recv_port: str, displays: dict[str, str],
              gates: tuple[str, str, str]) -> None:
    p = s.p
    ngate, sgate, pgate = gates
    ex = ENGINE_X
    # Feedback: /folkrnn/<voice>/<name> args -> "<name> args"; /error, /pong and /note as they are.
    udprecv = p.obj(ex, 560, f"udpreceive {fbport}")
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
