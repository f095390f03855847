"""Which addresses a process listens on, read from /proc (Linux), as an outside check would.

``/proc/net/tcp`` and ``tcp6`` list every socket of the network namespace with its inode;
``/proc/<pid>/fd`` links name the inodes a process holds.
"""
from __future__ import annotations

import os
import socket
import struct
from typing import Iterable, Set, Tuple

LISTEN = "0A"


def _address(hex_ip: str, hex_port: str) -> Tuple[str, int]:
    port = int(hex_port, 16)
    raw = bytes.fromhex(hex_ip)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, struct.pack("<I", int(hex_ip, 16))), port
    words = struct.unpack("<4I", raw)
    return socket.inet_ntop(socket.AF_INET6, struct.pack(">4I", *words)), port


def _listening_inodes() -> dict:
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == LISTEN:
                found[inode] = _address(*local.split(":"))
    return found


def _socket_inodes(pid: int) -> Iterable[str]:
    folder = f"/proc/{pid}/fd"
    for fd in os.listdir(folder):
        try:
            target = os.readlink(os.path.join(folder, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            yield target[8:-1]


def _descendants(pid: int) -> Set[int]:
    children = {pid}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                children |= _descendants(int(entry))
    return children


def listening(pid: int) -> Set[Tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state held by ``pid`` or its children."""
    table = _listening_inodes()
    return {table[inode] for p in _descendants(pid) for inode in _socket_inodes(p) if inode in table}


def cmdline(pid: int) -> str:
    """The process's command line as ``ps`` shows it to any local user."""
    with open(f"/proc/{pid}/cmdline", "rb") as fh:
        return fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
