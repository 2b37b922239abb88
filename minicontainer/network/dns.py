"""A DNS responder per user-defined network: containers on it find each other by name.

Design: one small process per network and host, listening on UDP port 53 of the network's gateway
address (the bridge's address in the host's network namespace); each container's
``/etc/resolv.conf`` names that address. It answers ``A`` queries for the names (container name
and hostname) of the containers leased on the network, read from the lease files (store.py) at
each query, so there is no second copy of the truth to keep in step and nothing to notify when a
container comes or goes. A name it does not know on an overlay network it asks the other hosts'
responders (at their gateways, across the overlay itself) with the *recursion desired* bit
cleared, which they take as "answer from your own containers only" — so a query is forwarded at
most once and never loops. Names outside the network get NXDOMAIN: no upstream resolver is asked
(the lab's rule: no traffic leaves the machine).

Why not Docker's 127.0.0.11 inside each container's namespace (an iptables DNAT there to a socket
the daemon holds open in that namespace): it needs a socket per container, made by entering every
container's namespace, and rules inside each; one listener per network, on an address that exists
anyway, does the same for a lab-sized engine. Why not /etc/hosts (what the default bridge does):
it cannot follow a container on another host, and every file must be rewritten at every start.
Isolation holds because the gateway is only reachable from its own bridge (links.py's nft table).

The process runs ``python -S`` (the standard library and this package only), checks every two
seconds that its network still exists with the same id and exits when it does not (a state root
removed by hand leaves no responder behind); ``network rm`` ends it by pid (start time checked).
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

TTL = 0                      # containers come and go: do not let a resolver cache an answer


def parse_query(data: bytes) -> tuple[int, int, str, int, bytes]:
    """(id, flags, lower-cased name, qtype, raw question) of a one-question query; ValueError else."""
    if len(data) < 12:
        raise ValueError("short")
    qid, flags, qd = struct.unpack("!HHH", data[:6])
    if qd != 1 or flags & 0x8000:
        raise ValueError("not one question")
    labels, i = [], 12
    while True:
        n = data[i]
        if n == 0:
            i += 1
            break
        if n & 0xC0:
            raise ValueError("compressed question")
        labels.append(data[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    qtype, _ = struct.unpack("!HH", data[i:i + 4])
    return qid, flags, ".".join(labels).lower(), qtype, data[12:i + 4]


def response(qid: int, flags: int, question: bytes, addrs: list[str], rcode: int = 0) -> bytes:
    rd = flags & 0x0100
    head = struct.pack("!HHHHHH", qid, 0x8000 | 0x0400 | rd | rcode, 1, len(addrs), 0, 0)
    ans = b"".join(struct.pack("!HHHIH", 0xC00C, 1, 1, TTL, 4) + socket.inet_aton(a) for a in addrs)
    return head + question + ans


def answers(data: bytes) -> list[str] | None:
    """The A records of a response (for relaying a peer's answer); None for an error (NXDOMAIN)."""
    _, flags, _, an = struct.unpack("!HHHH", data[:8])
    if flags & 0x000F:
        return None
    if not an:
        return []
    _, _, _, _, q = parse_query(data[:2] + b"\x00\x00" + data[4:])
    i, out = 12 + len(q), []
    for _ in range(an):
        if data[i] & 0xC0:
            i += 2
        else:
            while data[i]:
                i += 1 + data[i]
            i += 1
        rtype, _, _, rdlen = struct.unpack("!HHIH", data[i:i + 10])
        if rtype == 1 and rdlen == 4:
            out.append(socket.inet_ntoa(data[i + 10:i + 14]))
        i += 10 + rdlen
    return out


class Responder:
    def __init__(self, netdir: Path, rec: dict):
        self.netdir, self.rec = netdir, rec
        from .store import plan
        p = plan(rec)
        self.others = [gw for i, (_, gw, _) in p.items() if i != rec["host_index"]] \
            if rec["driver"] == "overlay" else []

    def local(self, name: str) -> list[str]:
        found = []
        d = self.netdir / "leases"
        for p in d.iterdir() if d.is_dir() else ():
            try:
                info = json.loads(p.read_text())
            except (OSError, ValueError):
                continue
            names = {str(info.get("name") or "").lower(), str(info.get("hostname") or "").lower()}
            if name in names or name in {f"{n}.{self.rec['name'].lower()}" for n in names if n}:
                found.append(p.name)
        return sorted(found)

    def ask_peers(self, data: bytes) -> list[str] | None:
        """The first peer's answer that knows the name (an empty list: it does, but has no record
        of the type asked, e.g. AAAA); None when no peer knows it."""
        q = data[:2] + struct.pack("!H", struct.unpack("!H", data[2:4])[0] & ~0x0100) + data[4:]
        for gw in self.others:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(0.5)
                try:
                    s.sendto(q, (gw, 53))
                    got = answers(s.recv(512))
                except (OSError, ValueError, struct.error, IndexError):
                    continue
                if got is not None:
                    return got
        return None

    def handle(self, data: bytes) -> bytes | None:
        try:
            qid, flags, name, qtype, question = parse_query(data)
        except (ValueError, IndexError, struct.error):
            return None
        addrs = self.local(name)
        if not addrs and flags & 0x0100 and self.others and qtype in (1, 28, 255):
            addrs = self.ask_peers(data[:12] + question)
            if addrs is not None:
                return response(qid, flags, question, addrs if qtype in (1, 255) else [])
            addrs = []
        if not addrs:
            return response(qid, flags, question, [], 3)          # NXDOMAIN
        return response(qid, flags, question, addrs if qtype in (1, 255) else [])


def serve(netdir: Path, ready_fd: int | None = None) -> None:
    rec = json.loads((netdir / "network.json").read_text())
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_IP, 15, 1)              # IP_FREEBIND: the address may come up later
    s.bind((rec["gateway"], 53))
    s.settimeout(2)
    if ready_fd is not None:
        os.write(ready_fd, b"ready\n")
        os.close(ready_fd)
        null = os.open("/dev/null", os.O_WRONLY)
        os.dup2(null, 2)                            # the starter stops reading our stderr now
        os.close(null)
    r = Responder(netdir, rec)
    while True:
        try:
            data, peer = s.recvfrom(1500)
        except socket.timeout:
            try:
                if json.loads((netdir / "network.json").read_text())["id"] != rec["id"]:
                    return
            except (OSError, ValueError, KeyError):
                return
            continue
        out = r.handle(data)
        if out:
            try:
                s.sendto(out, peer)
            except OSError:
                pass


# --- start / stop (called by `network create` / `network rm`) -------------------------------

def start(netdir: Path) -> int:
    """Start the responder of the network in ``netdir`` in its own session; returns its pid once
    it listens. Its output goes nowhere (it has none); a failure to bind is reported here."""
    root = str(Path(__file__).resolve().parents[2])
    r, w = os.pipe()
    code = ("import os,sys; sys.path.insert(0, sys.argv[1]); from minicontainer.network import dns; "
            "dns.serve(__import__('pathlib').Path(sys.argv[2]), int(sys.argv[3]))")
    p = subprocess.Popen([sys.executable, "-S", "-c", code, root, str(netdir), str(w)], pass_fds=(w,),
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         start_new_session=True, cwd="/")
    os.close(w)
    with os.fdopen(r, "rb") as f:
        ok = f.readline() == b"ready\n"
    if not ok:
        err = p.stderr.read().decode(errors="replace").strip().splitlines()
        p.wait()
        from ..errors import NetworkError
        raise NetworkError(f"dns responder for {netdir.name}: {err[-1] if err else 'exited'}")
    p.stderr.close()
    p.returncode = 0        # it outlives us on purpose: keep Popen.__del__ from warning
    return p.pid


def stop(pid: int | None, start_time) -> None:
    from ..runtime import state
    if not pid or not state.alive(pid, start_time):
        return
    try:
        os.kill(pid, 15)
    except ProcessLookupError:
        return
    for _ in range(100):
        if not state.alive(pid, start_time):
            break
        time.sleep(0.02)
    else:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    try:
        os.waitpid(pid, os.WNOHANG)   # ours when the library (not the CLI) started it: no zombie
    except ChildProcessError:
        pass
