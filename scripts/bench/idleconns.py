#!/usr/bin/env python3
"""idleconns.py - open many idle NATS client connections and watch a server's memory (for
scripts/bench-scale.sh; dependency-free, Python 3 standard library only).

Usage:
  idleconns.py --addr 127.0.0.1:4222 --conns 10000 --step 1000 --pid PID [--metrics URL]
               [--hold SECONDS] [--settle SECONDS] [--out FILE.tsv]

Every connection does what a stock client does: it reads the server's INFO, sends
CONNECT {"verbose":false,"pedantic":false,...} and PING, and waits for the PONG (the server has
then finished the handshake). After that it stays idle, only answering the server's PINGs with
PONG, so the server never sees it as stale. Connections are opened in steps of --step; after each
step (and --settle seconds) one TSV row is written with the server process's memory:

  phase  conns  vmrss_kb  rssanon_kb  heap_inuse_b  stack_inuse_b  goroutines

read from /proc/PID/status (VmRSS, RssAnon) and, with --metrics (the server's Prometheus
/metrics URL), go_memstats_heap_inuse_bytes, go_memstats_stack_inuse_bytes and go_goroutines
(NA without it). Phases: "base" before the first connection, "open" after each step, "hold"
after --hold seconds with all connections open, "closed" --settle seconds after closing them all.
Exits 1 when a connection could not be opened or was closed by the server.
"""
import argparse
import json
import os
import selectors
import socket
import sys
import time
import urllib.request

CONNECT = (
    "CONNECT "
    + json.dumps(
        {
            "verbose": False,
            "pedantic": False,
            "tls_required": False,
            "name": "idle",
            "lang": "python",
            "version": "0",
            "protocol": 1,
            "echo": True,
        },
        separators=(",", ":"),
    )
    + "\r\nPING\r\n"
).encode()


def status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return "NA"


def metrics(url):
    out = {"go_memstats_heap_inuse_bytes": "NA", "go_memstats_stack_inuse_bytes": "NA", "go_goroutines": "NA"}
    if not url:
        return out
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            for line in r.read().decode(errors="replace").splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] in out:
                    out[parts[0]] = int(float(parts[1]))
    except OSError:
        pass
    return out


class Conn:
    __slots__ = ("sock", "buf", "ponged")

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.ponged = False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--step", type=int, default=1000)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--metrics", default="")
    ap.add_argument("--hold", type=float, default=10)
    ap.add_argument("--settle", type=float, default=3)
    ap.add_argument("--out", default="-")
    a = ap.parse_args()
    host, port = a.addr.rsplit(":", 1)
    port = int(port)
    out = sys.stdout if a.out == "-" else open(a.out, "w")
    sel = selectors.DefaultSelector()
    conns = []
    errors = []

    def row(phase):
        m = metrics(a.metrics)
        out.write(
            "\t".join(
                str(x)
                for x in (
                    phase,
                    len(conns),
                    status_kb(a.pid, "VmRSS"),
                    status_kb(a.pid, "RssAnon"),
                    m["go_memstats_heap_inuse_bytes"],
                    m["go_memstats_stack_inuse_bytes"],
                    m["go_goroutines"],
                )
            )
            + "\n"
        )
        out.flush()

    def pump(timeout):
        """Answer PINGs, note PONGs and closed connections for up to timeout seconds."""
        for key, _ in sel.select(timeout):
            c = key.data
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                data = b""
                errors.append(f"recv: {e}")
            if not data:
                errors.append("connection closed by the server" + (f" after: {c.buf[-200:]!r}" if c.buf else ""))
                sel.unregister(c.sock)
                c.sock.close()
                conns.remove(c)
                continue
            c.buf += data
            while b"\r\n" in c.buf:
                line, c.buf = c.buf.split(b"\r\n", 1)
                if line == b"PING":
                    c.sock.sendall(b"PONG\r\n")
                elif line == b"PONG":
                    c.ponged = True
                elif line.startswith(b"-ERR"):
                    errors.append(line.decode(errors="replace"))

    out.write("phase\tconns\tvmrss_kb\trssanon_kb\theap_inuse_b\tstack_inuse_b\tgoroutines\n")
    row("base")
    t0 = time.monotonic()
    while len(conns) < a.conns:
        target = min(a.conns, len(conns) + a.step)
        fresh = []
        while len(conns) < target:
            try:
                s = socket.create_connection((host, port), timeout=10)
                f = s.makefile("rb")
                info = f.readline()
                f.close()
                if not info.startswith(b"INFO "):
                    raise OSError(f"expected INFO, got {info[:80]!r}")
                s.sendall(CONNECT)
                s.setblocking(False)
            except OSError as e:
                print(f"idleconns: connection {len(conns) + 1}: {e}", file=sys.stderr)
                return 1
            c = Conn(s)
            conns.append(c)
            fresh.append(c)
            sel.register(s, selectors.EVENT_READ, c)
            if len(fresh) % 100 == 0:
                pump(0)
        deadline = time.monotonic() + 60
        while any(not c.ponged for c in fresh if c in conns) and time.monotonic() < deadline:
            pump(0.2)
        if errors or any(not c.ponged for c in fresh):
            print(f"idleconns: after {len(conns)} connections: {errors[:3] or 'no PONG within 60 s'}", file=sys.stderr)
            return 1
        end = time.monotonic() + a.settle
        while time.monotonic() < end:
            pump(0.2)
        row("open")
    print(f"idleconns: {len(conns)} connections open in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    end = time.monotonic() + a.hold
    while time.monotonic() < end:
        pump(0.5)
    if errors:
        print(f"idleconns: while holding: {errors[:3]}", file=sys.stderr)
        return 1
    row("hold")
    for c in list(conns):
        sel.unregister(c.sock)
        c.sock.close()
    conns.clear()
    time.sleep(a.settle)
    row("closed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
