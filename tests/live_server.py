"""The real server in-process, for end-to-end tests: ``async with serving(config) as srv:``.

Import it from a test module (``from live_server import serving, until``).  Every wait has a
generous upper bound for a loaded 2-core machine; nothing here asserts on timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Literal, TypeVar

from folkrnn_live.server.runtime.config import Config
from folkrnn_live.server.runtime.service import Server

WAIT = 20.0
T = TypeVar("T")


def free_port(kind: Literal["udp", "tcp"] = "udp") -> int:
    """A port on 127.0.0.1 that nothing is bound to right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(cfg: Config, *, overrides: Mapping[str, Any] | None = None, model: Any = None,
                  wait: float = WAIT) -> AsyncIterator[Server]:
    """Run ``Server(cfg).serve()`` as a task (signals left alone) until it plays; stop it and wait
    for its shutdown on leaving.  A start-up error is raised at once, not after the wait."""
    if "web.port" not in (overrides or {}):
        cfg.values["web.port"] = 0  # any free port: tests run beside each other and beside a performer's server
    srv = Server(cfg, overrides=overrides, model=model)
    task = asyncio.create_task(srv.serve(install_signals=False), name="test server")
    started = asyncio.create_task(srv.started.wait())
    await asyncio.wait([task, started], return_when=asyncio.FIRST_COMPLETED, timeout=wait)
    started.cancel()
    if task.done():
        task.result()  # start-up failed: its error
    if not srv.started.is_set():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise AssertionError(f"the server did not start within {wait:g} s")
    try:
        yield srv
    finally:
        srv.request_exit()
        await asyncio.wait_for(task, wait)


async def until(pred: Callable[[], T], what: str = "the condition", timeout: float = WAIT) -> T:
    """Poll ``pred`` until it returns something truthy, and return that."""
    try:
        async with asyncio.timeout(timeout):
            while not (v := pred()):
                await asyncio.sleep(0.01)
            return v
    except TimeoutError:
        raise AssertionError(f"{what} did not happen within {timeout:g} s") from None
