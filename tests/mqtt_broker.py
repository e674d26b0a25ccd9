"""A real Mosquitto broker on 127.0.0.1 for the MQTT tests (import the fixtures from a test module:
``from mqtt_broker import broker  # noqa: F401``).

Fixtures: ``broker`` (anonymous, one per session), ``auth_broker`` (user/password required),
``tls_broker`` (TLS with a throw-away CA; skipped without the openssl CLI) and ``broker_factory``
(brokers of a test's own, e.g. to stop and restart).  The broker binary comes from the
``mosquitto`` Debian package that scripts/test installs.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from live_server import free_port

USER, PASSWORD = "folk", "rnn-secret"


def mosquitto_binary() -> str:
    for cand in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if cand and os.access(cand, os.X_OK):
            return cand
    pytest.fail("mosquitto is not installed: run scripts/test (it installs the Debian package mosquitto)")


def write_password_file(path: Path, users: dict[str, str]) -> None:
    """Mosquitto's password file: mosquitto_passwd when installed, else the same PBKDF2 format."""
    tool = shutil.which("mosquitto_passwd")
    path.write_text("")
    if tool:
        for user, pw in users.items():
            subprocess.run([tool, "-b", str(path), user, pw], check=True, capture_output=True)
    else:
        lines = []
        for user, pw in users.items():
            salt = os.urandom(12)
            digest = hashlib.pbkdf2_hmac("sha512", pw.encode(), salt, 101)
            lines.append(f"{user}:$7$101${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}")
        path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


@dataclass
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def make_tls_files(d: Path) -> TlsFiles:
    """A throw-away CA and a server certificate for 127.0.0.1 (EC keys: fast to make)."""
    tool = shutil.which("openssl")
    if tool is None:
        pytest.skip("the openssl CLI is needed to make test certificates")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run([tool, *args], check=True, capture_output=True, cwd=d)

    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=folkrnn-test-ca", "-days", "2")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "san.ext")
    return TlsFiles(d / "ca.crt", d / "server.crt", d / "server.key")


class Mosquitto:
    """One broker process with a generated config; ``stop``/``start`` keep its port."""

    def __init__(self, workdir: Path, *, users: dict[str, str] | None = None, tls: TlsFiles | None = None) -> None:
        self.workdir = workdir
        self.host = "127.0.0.1"
        self.port = free_port("tcp")
        self.users = users
        self.tls = tls
        self.log = workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None
        lines = [f"listener {self.port} {self.host}", "persistence false", "log_dest stderr",
                 "log_type error", "log_type warning", "log_type notice"]
        if os.geteuid() == 0:
            lines.append(f"user {getpass.getuser()}")  # stay root: no drop to 'mosquitto' (file access)
        if users:
            pw = workdir / "passwords"
            write_password_file(pw, users)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        if tls:
            lines += [f"cafile {tls.ca}", f"certfile {tls.cert}", f"keyfile {tls.key}"]
        self.config = workdir / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 10.0) -> None:
        assert self.proc is None
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(self.config)], stdout=logf, stderr=logf)
        deadline = time.monotonic() + timeout
        while True:  # ready when it accepts TCP connections
            if self.proc.poll() is not None:
                out = self.log.read_text(errors="replace")
                self.proc = None
                raise RuntimeError(f"mosquitto exited at start-up:\n{out}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout} s") from None
                time.sleep(0.02)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def auth_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path_factory.mktemp("mosquitto-auth"), users={USER: PASSWORD})
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    d = tmp_path_factory.mktemp("mosquitto-tls")
    b = Mosquitto(d, tls=make_tls_files(d))
    b.start()
    yield b
    b.stop()


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    made: list[Mosquitto] = []

    def make(**kw: object) -> Mosquitto:
        d = tmp_path / f"mosquitto-{len(made)}"
        d.mkdir()
        b = Mosquitto(d, **kw)  # type: ignore[arg-type]
        b.start()
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()
