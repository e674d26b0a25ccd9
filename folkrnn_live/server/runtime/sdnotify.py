"""A tiny ``sd_notify``: readiness, watchdog and status messages to systemd over ``$NOTIFY_SOCKET``.

No dependency on libsystemd: the protocol is one datagram of ``KEY=VALUE`` lines to a unix socket
(an abstract one when the path starts with ``@``).  Without ``$NOTIFY_SOCKET`` (not run by systemd)
every call is a no-op, so the server calls it unconditionally.
"""

from __future__ import annotations

import os
import socket
import time


class Notifier:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        env = dict(os.environ) if env is None else env
        addr = env.get("NOTIFY_SOCKET", "")
        if addr.startswith("@"):
            addr = "\0" + addr[1:]
        self.address = addr or None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        # WATCHDOG_PID names the process systemd watches; another process (a child) must not ping.
        ours = not pid or pid == str(os.getpid())
        self.watchdog_usec = int(usec) if usec.isdigit() and int(usec) > 0 and ours else None
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between WATCHDOG=1 pings (half the configured timeout), or None when off."""
        return None if self.watchdog_usec is None else self.watchdog_usec / 2e6

    def notify(self, *lines: str) -> bool:
        """Send ``KEY=VALUE`` lines; True when sent.  Never raises: systemd going away must not
        stop the music."""
        if self.address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(lines).encode(), self.address)
            return True
        except OSError:
            return False

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def reloading(self) -> bool:
        usec = int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6)
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
