"""``folkrnn-control.pd``: the abstraction that turns Pd messages into OSC and feedback back."""

from __future__ import annotations

from patchgen.pd import PdCanvas
from patchgen.surface import STREAMS


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

    boxes = _connect_and_disconnect(c, route)
    state = _commands_out(c, route, boxes)
    _feedback_out(c, boxes, state)
    c.connect(inlet, 0, route)
    return c.render() + "\n"


def _connect_and_disconnect(c: PdCanvas, route: int) -> dict[str, int]:
    """The boxes the other sections wire to: listen/unlisten (feedback socket), connect/close
    (command socket), subscribe/unsubscribe (messages sent as global commands)."""
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
    return {"listen": listen, "connect": connect, "subscribe": subscribe, "unsub": unsub, "close": close,
            "unlisten": unlisten}


def _commands_out(c: PdCanvas, route: int, boxes: dict[str, int]) -> int:
    """Voice and global commands to OSC; returns the connection state box."""
    connect, subscribe, unsub, close = (boxes[k] for k in ("connect", "subscribe", "unsub", "close"))
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
    return state


def _feedback_out(c: PdCanvas, boxes: dict[str, int], state: int) -> None:
    listen, unlisten = boxes["listen"], boxes["unlisten"]
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
