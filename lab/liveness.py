"""Who holds a run, and whether they are still alive: process identity, liveness and the heartbeat.

A claim names its owner as `host|boot id:pid namespace|pid|process start time|thread`. On the
same host the owner is alive iff that pid exists, is not a zombie, and started at that time (pid
reuse, reboots and containers cannot fool it; in this process: iff that thread runs); no timeout
is needed, so `kill -9` is noticed at once. For an owner on another host the heartbeat decides:
a thread refreshes it every HEARTBEAT_S seconds while the process holds runs, and a row silent
for LEASE_S is taken over.
"""

import os
import socket
import sqlite3
import threading
import time

HEARTBEAT_S = 30.0      # how often a process refreshes the runs it holds
LEASE_S = 300.0         # silence after which a run held on another host counts as interrupted


def _machine() -> str:
    """Which pids this process can judge: boot id and pid namespace (a reboot or another
    container on the same host makes a pid mean something else)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()[:8]
        ns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return "-"
    return f"{boot}:{ns}"


def _proc_start(pid: int) -> str | None:
    """Start time of `pid` in clock ticks since boot ('Z' for a zombie), None when unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return "Z" if fields[0] in ("Z", "X") else fields[19]


_ME: dict[int, str] = {}


def process_id() -> str:
    """This process: host|boot id:pid namespace|pid|start time (recomputed after a fork)."""
    pid = os.getpid()
    if pid not in _ME:
        _ME[pid] = f"{socket.gethostname()}|{_machine()}|{pid}|{_proc_start(pid) or '-'}"
    return _ME[pid]


def owner_id() -> str:
    """This thread of this process as the owner of a claim: process_id()|thread id. Threads
    of one process (a notebook's background trainers) are distinct owners."""
    return f"{process_id()}|{threading.get_ident()}"


def _pid_alive(pid: int, start: str) -> bool:
    current = _proc_start(pid)
    if current is not None:
        return current != "Z" and (start == "-" or current == start)
    try:                       # no /proc (macOS): existence only
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_alive(owner: str | None, heartbeat: float | None, now: float | None = None) -> bool:
    """Whether the process (and thread) named by `owner` may still be working (see the module doc).
    An owner of four parts (a process, no thread) is alive while its process is."""
    parts = (owner or "").split("|")
    if len(parts) == 4:
        parts.append("")
    try:
        host, machine, pid_s, start, tid = parts
        pid = int(pid_s)
    except ValueError:
        return False
    me_host, me_machine, _, _ = process_id().split("|")
    if host == me_host and machine == me_machine:
        if f"{host}|{machine}|{pid}|{start}" == process_id():   # this process: is that thread still running?
            return not tid or any(str(t.ident) == tid for t in threading.enumerate())
        return _pid_alive(pid, start)                 # same host, boot and pid namespace: ask the kernel
    boot, me_boot = machine.split(":")[0], me_machine.split(":")[0]
    if host == me_host and boot != me_boot and "-" not in (boot, me_boot):
        return False                                  # this host rebooted since: the owner is gone
    return heartbeat is not None and (now or time.time()) - heartbeat < LEASE_S   # elsewhere: the lease


class Heartbeat(threading.Thread):
    """Refreshes, every HEARTBEAT_S, the heartbeat of the runs this process holds in one store
    (a database path); started once per process and store (`ensure_heartbeat`)."""

    def __init__(self, db_path, connect):
        super().__init__(daemon=True, name=f"scaling-lab heartbeat {db_path}")
        self.db_path, self.connect = db_path, connect

    def run(self):
        while True:
            time.sleep(HEARTBEAT_S)
            try:
                con = self.connect(self.db_path, create=False)
                me = process_id() + "|"
                con.execute("UPDATE runs SET heartbeat = ? WHERE substr(owner, 1, ?) = ? AND status = 'running'",
                            (time.time(), len(me), me))
                con.close()
            except sqlite3.Error:
                pass  # a busy or vanished store: try again at the next beat


_BEATS: dict[tuple[int, str], Heartbeat] = {}
_BEATS_LOCK = threading.Lock()


def ensure_heartbeat(db_path, connect) -> None:
    """Start this process's heartbeat thread for the store at `db_path` unless it runs."""
    key = (os.getpid(), str(db_path))
    with _BEATS_LOCK:
        if key not in _BEATS or not _BEATS[key].is_alive():
            _BEATS[key] = Heartbeat(db_path, connect)
            _BEATS[key].start()
