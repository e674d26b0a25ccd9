"""``folkrnn-live systemd DIR``: write the systemd unit and the documented example config."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from folkrnn_live.cli.patches import shipped, write_files

SHIPPED_EXEC = "/opt/folkrnn-live/venv/bin/folkrnn-live"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "systemd", help="write the systemd unit and the example config into a directory",
        description="Write folkrnn-live.service (Type=notify, sandboxed, reload with SIGHUP) and folkrnn-live.toml "
        "(every config key, documented) into DIR, with the steps that install them.",
    )
    p.add_argument("dir", metavar="DIR", type=Path, help="directory to write into (made if needed)")
    p.add_argument("--exec", dest="exec_path", default=None, metavar="PATH",
                   help="the folkrnn-live the unit runs (default: this installation's, else " + SHIPPED_EXEC + ")")
    p.add_argument("--force", action="store_true", help="overwrite files that are already there")
    p.set_defaults(func=run)


def this_installation() -> str:
    """The folkrnn-live script beside the running interpreter (a virtual environment's bin/)."""
    beside = Path(sys.executable).parent / "folkrnn-live"
    if beside.is_file():
        return str(beside)
    return shutil.which("folkrnn-live") or SHIPPED_EXEC


def run(args: argparse.Namespace) -> int:
    exec_path = args.exec_path or this_installation()
    if not Path(exec_path).is_absolute():
        raise ValueError(f"--exec must be an absolute path (systemd needs one); got {exec_path!r}")
    unit = shipped("systemd", "folkrnn-live.service").decode()
    if SHIPPED_EXEC not in unit:
        raise ValueError("the shipped unit has no ExecStart to point at --exec (a broken install?)")
    files = {
        "folkrnn-live.service": unit.replace(SHIPPED_EXEC, exec_path).encode(),
        "folkrnn-live.toml": shipped("systemd", "folkrnn-live.toml"),
    }
    for path in write_files(args.dir, files, args.force):
        print(f"wrote {path}")
    d = args.dir
    print(f"""the unit runs {exec_path}; to install (as root):
  useradd --system --home-dir /var/lib/folkrnn-live --shell /usr/sbin/nologin --groups audio folkrnn
  install -d /etc/folkrnn-live
  install -m 0644 {d / 'folkrnn-live.toml'} /etc/folkrnn-live/folkrnn-live.toml
  install -m 0644 {d / 'folkrnn-live.service'} /etc/systemd/system/
  systemctl daemon-reload && systemctl enable --now folkrnn-live""")
    return 0
