"""The event loop's own error reports, one line each (issue 12 §3: every log line is one line).

asyncio logs an exception that escaped a callback with its whole traceback.  The one the soak
benchmark met: aiomqtt (2.5) schedules ``loop.add_writer(sock.fileno(), ...)`` with
``call_soon_threadsafe`` from paho's thread; when the broker dies in between, the socket is closed
by the time the callback runs and asyncio reports ``OSError: [Errno 9] Bad file descriptor`` with
20 lines of traceback.  The bridge reconnects by itself, so that race is logged at debug level; any
other escaped exception is one ERROR line (the callback and the exception), its traceback at debug
level, and the same report at most once per :data:`INTERVAL` seconds.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from typing import Any

log = logging.getLogger("folkrnn_live.server")
INTERVAL = 10.0


def install(loop: asyncio.AbstractEventLoop) -> None:
    last: dict[str, float] = {}

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        message = str(context.get("message", "unhandled exception in the event loop"))
        where = context.get("handle") or context.get("future") or context.get("task") or ""
        detail = f"{message} ({str(where)[:120]}): {exc!r}" if exc is not None else f"{message} ({str(where)[:120]})"
        benign = (isinstance(exc, OSError) and exc.errno == errno.EBADF
                  and any(n in str(where) for n in ("add_writer", "add_reader", "remove_writer", "remove_reader")))
        log.debug("event loop: %s", detail, exc_info=exc if isinstance(exc, BaseException) else None)
        if benign:
            return
        now, key = time.monotonic(), f"{message}|{type(exc).__name__}"
        if now - last.get(key, -INTERVAL) >= INTERVAL:
            last[key] = now
            log.error("event loop: %s", detail.replace("\n", " "))

    loop.set_exception_handler(handle)
