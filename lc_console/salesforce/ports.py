"""Is a loopback callback port free, and if not, which process holds it?

Linux: /proc/net/tcp{,6} gives the listening socket's inode and owner uid, /proc/<pid>/fd the
process that holds that inode. Where /proc cannot tell (another user's process), `ss -ltnp`
is asked when it exists. Elsewhere we can only say that the port is taken.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import re
import shutil
import socket
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_LISTEN = "0A"


@dataclass(frozen=True)
class PortHolder:
    pid: int | None
    name: str
    command: str = ""
    user: str = ""

    def describe(self) -> str:
        if self.pid is None:
            who = f" of user {self.user}" if self.user else ""
            return f"a process{who} (not visible to you)"
        command = f": {self.command}" if self.command and self.command != self.name else ""
        return f"{self.name} (pid {self.pid}{command})"


def _listening_inodes(port: int, proc: Path) -> list[tuple[int, int]]:
    """(inode, uid) of sockets listening on `port` on any local address."""
    found = []
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) < 10 or cols[3] != _LISTEN:
                continue
            local_port = int(cols[1].rsplit(":", 1)[1], 16)
            if local_port == port:
                found.append((int(cols[9]), int(cols[7])))
    return found


def _pid_of_inode(inode: int, proc: Path) -> int | None:
    target = f"socket:[{inode}]"
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        return int(entry.name)
        except OSError:  # another user's process, or it just exited
            continue
    return None


def _describe_pid(pid: int, proc: Path) -> PortHolder:
    try:
        name = (proc / str(pid) / "comm").read_text().strip()
    except OSError:
        name = "process"
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
        command = " ".join(p.decode(errors="replace") for p in raw.split(b"\0") if p)
    except OSError:
        command = ""
    if len(command) > 120:
        command = command[:117] + "..."
    return PortHolder(pid=pid, name=name, command=command)


_SS_USER = re.compile(r'\("(?P<name>[^"]+)",pid=(?P<pid>\d+)')


def _holder_from_ss(port: int) -> PortHolder | None:
    ss = shutil.which("ss")
    if not ss:
        return None
    try:
        out = subprocess.run([ss, "-Hltnp", f"sport = :{port}"], capture_output=True, text=True,
                             timeout=5, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = _SS_USER.search(out)
    if match:
        return PortHolder(pid=int(match["pid"]), name=match["name"])
    return None


def find_port_holder(port: int, proc: Path = Path("/proc")) -> PortHolder | None:
    """Who listens on `port`, if we can tell."""
    for inode, uid in _listening_inodes(port, proc):
        pid = _pid_of_inode(inode, proc)
        if pid is not None:
            return _describe_pid(pid, proc)
        from_ss = _holder_from_ss(port)
        if from_ss:
            return from_ss
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = str(uid)
        return PortHolder(pid=None, name="", user=user)
    return _holder_from_ss(port)


def _ipv6_loopback_taken(port: int) -> bool:
    """True when something listens on [::1]:port.

    The redirect URI says `localhost`, which a browser may try over IPv6 first: a listener
    there would receive the authorization code instead of us.
    """
    if not socket.has_ipv6:
        return False
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            return probe.connect_ex(("::1", port)) == 0
        except OSError:
            return False


def bind_error(port: int) -> OSError | None:
    """None when the callback server can bind 127.0.0.1:port and [::1]:port is not in use."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same option as the callback server, so TIME_WAIT leftovers don't count as taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc
    if _ipv6_loopback_taken(port):
        return OSError(errno.EADDRINUSE, "address in use on [::1]")
    return None


def is_free(port: int) -> bool:
    return bind_error(port) is None


def free_alternatives(candidates: Iterable[int], taken: int) -> list[int]:
    """The configured callback ports other than `taken` that are free now, in order."""
    return [p for p in candidates if p != taken and is_free(p)]
