#!/usr/bin/env python3
"""targets.py - the "Targets" table of docs/benchmarks.md from the results of scripts/bench-all.sh.

Usage:
  targets.py report OUTDIR META [PROFDIR]
      Markdown: one row per target scenario with Flotilla's median, the nats-server medians, the
      ratios, the target and whether it is met, read from OUTDIR/js3/results.tsv,
      OUTDIR/js3/results-consume.tsv, OUTDIR/js3/fsync.tsv (three-node runs of bench-js.sh),
      OUTDIR/js1/results.tsv (single-server run) and OUTDIR/core/results.tsv (bench-core.sh).
      META holds key=value lines (date, args, elapsed, machine, load, tools, cmd..., failed...).
      The busy-machine warnings of the steps' sections (OUTDIR/js3.md, js1.md, core.md) are repeated.
      With PROFDIR (the -P directory of the steps): for every missed target whose scenario was
      profiled, writes the top 15 lines of `go tool pprof -top` of its CPU and allocation
      profiles next to them (NAME.cpu.top.txt, NAME.allocs.top.txt) and shows them; the profiles
      of the scenarios that met their targets are deleted.
Only leader-local rows count (bench-all.sh runs no others). A target with no counted run (all
failed) is "no data", never met.
"""
import csv
import glob
import os
import statistics
import subprocess
import sys

F, D, A, NS = "flotilla", "nats-default", "nats-always", "nats-server"


def num(x):
    try:
        return float(str(x).replace(",", ""))
    except (TypeError, ValueError):
        return None


def med(xs):
    return statistics.median(xs) if xs else None


def rows(path):
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f, delimiter="\t"))
    except OSError:
        return []


class JS:
    """Counted values of a bench-js.sh results file: {(target, scenario): {"rate": [..], "p50": [..]}}."""

    def __init__(self, *paths):
        self.v, self.runs = {}, {}
        for p in paths:
            for r in rows(p):
                if r.get("locality") != "local":
                    continue
                key = (r["target"], r["scenario"])
                self.runs[key] = self.runs.get(key, 0) + 1
                rate = num(r.get("msgs_per_s"))
                if rate is None or r.get("note", "ok") != "ok":
                    continue
                d = self.v.setdefault(key, {"rate": [], "p50": []})
                d["rate"].append(rate)
                p50 = num(r.get("p50_us"))
                if p50 is not None:
                    d["p50"].append(p50)

    def med(self, target, scen, what="rate"):
        return med(self.v.get((target, scen), {}).get(what, []))

    def counted(self, target, scen):
        return len(self.v.get((target, scen), {}).get("rate", [])), self.runs.get((target, scen), 0)


class Core:
    """Counted values of a bench-core.sh results file: {(target, scenario, size, role): {...}}."""

    def __init__(self, path):
        self.v, self.runs = {}, {}
        for r in rows(path):
            key = (r["target"], r["scenario"], r.get("size") or "128B", r["role"])
            self.runs[key] = self.runs.get(key, 0) + 1
            rate = num(r.get("msgs_per_s"))
            if rate is None:
                continue
            d = self.v.setdefault(key, {"rate": [], "p50": []})
            d["rate"].append(rate)
            p50 = num(r.get("p50_us"))
            if p50 is not None:
                d["p50"].append(p50)

    def med(self, target, scen, size, role, what="rate"):
        return med(self.v.get((target, scen, size, role), {}).get(what, []))

    def counted(self, target, scen, size, role):
        key = (target, scen, size, role)
        return len(self.v.get(key, {}).get("rate", [])), self.runs.get(key, 0)


def fmt(x, unit=""):
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}{unit}"
    return f"{x:,.1f}{unit}"


def ratio(a, b):
    return a / b if a is not None and b else None


class Row:
    def __init__(self, name, unit, fl, nd, na, checks, target, prof=None, runs=""):
        """checks: [(label, value, op, bound)], op ">=" or "<="; value None = no data."""
        self.name, self.unit, self.fl, self.nd, self.na = name, unit, fl, nd, na
        self.checks, self.target, self.prof, self.runs = checks, target, prof, runs

    def verdict(self):
        if any(v is None for _, v, _, _ in self.checks):
            return None
        return all((v >= b) if op == ">=" else (v <= b) for _, v, op, b in self.checks)


def js_rows(js3, js1, jsc):
    out = []
    for scen, label in [
        ("js.pub.async", "R3 `js pub async --batch 500`, 1 client, 128 B"),
        ("js.pub.async.4clients", "R3 `js pub async --batch 500`, 4 clients, 128 B"),
        ("js.pub.async@1KiB", "R3 `js pub async --batch 500`, 1 client, 1 KiB"),
        ("js.pub.async.4clients@1KiB", "R3 `js pub async --batch 500`, 4 clients, 1 KiB"),
    ]:
        fl, nd, na = (js3.med(t, scen) for t in (F, D, A))
        out.append(Row(label, "msgs/s", fl, nd, na,
                       [("/ always", ratio(fl, na), ">=", 1.5), ("/ default", ratio(fl, nd), ">=", 1.0)],
                       ">= 1.5x always, >= 1.0x default", ("js3", scen), counted(js3, scen)))
    fl, nd, na = (js3.med(t, "js.pub.sync") for t in (F, D, A))
    out.append(Row("R3 `js pub sync`, 1 client", "msgs/s", fl, nd, na,
                   [("/ always", ratio(fl, na), ">=", 1.0)], ">= 1.0x always", ("js3", "js.pub.sync"),
                   counted(js3, "js.pub.sync")))
    fl, nd, na = (js3.med(t, "js.pub.sync", "p50") for t in (F, D, A))
    out.append(Row("R3 `js pub sync`, 1 client: P50 ack latency", "us", fl, nd, na,
                   [("/ always", ratio(fl, na), "<=", 1.0)], "<= 1.0x always (lower is better)",
                   ("js3", "js.pub.sync"), counted(js3, "js.pub.sync")))
    for scen, label in [
        ("js.pub.async", "single node `js pub async --batch 500`, 1 client, 128 B"),
        ("js.pub.async.4clients", "single node `js pub async --batch 500`, 4 clients, 128 B"),
    ]:
        fl, nd, na = (js1.med(t, scen) for t in (F, D, A))
        out.append(Row(label, "msgs/s", fl, nd, na,
                       [("/ always", ratio(fl, na), ">=", 3.0), ("/ default", ratio(fl, nd), ">=", 1.0)],
                       ">= 3x always, >= 1.0x default", ("js1", scen), counted(js1, scen)))
    for scen, label in [
        ("js.consume", "R3 `js consume --batch 500`, explicit acks, 1 client"),
        ("js.consume.4clients", "R3 `js consume --batch 500`, explicit acks, 4 clients"),
        ("js.fetch", "R3 `js fetch --batch 500`, explicit acks"),
    ]:
        fl, nd, na = (jsc.med(t, scen) for t in (F, D, A))
        out.append(Row(label, "msgs/s", fl, nd, na, [("/ always", ratio(fl, na), ">=", 1.0)],
                       ">= 1.0x always", ("js3", scen), counted(jsc, scen)))
    fl, nd, na = (jsc.med(t, "js.ordered") for t in (F, D, A))
    out.append(Row("R3 `js ordered`", "msgs/s", fl, nd, na, [("/ default", ratio(fl, nd), ">=", 1.0)],
                   ">= 1.0x default", ("js3", "js.ordered"), counted(jsc, "js.ordered")))
    return out


def counted(src, *key):
    """'n' or 'n of m' counted runs of flotilla, nats-default and nats-always (bench-js) or of
    flotilla and nats-server (bench-core)."""
    if isinstance(src, Core):
        targets = (F, NS)
    else:
        targets = (F, D, A)
    parts = []
    for t in targets:
        n, m = src.counted(t, *key)
        parts.append(str(n) if n == m else f"{n} of {m}")
    return "/".join(parts)


def core_rows(core):
    out = []
    for size, slabel in (("16B", "16 B"), ("1KiB", "1 KiB")):
        for scen, label in (("pubsub1", "1 pub -> 1 sub"), ("pubsub4", "4 pub -> 1 sub")):
            fl, ns = core.med(F, scen, size, "sub"), core.med(NS, scen, size, "sub")
            out.append(Row(f"core {label}, {slabel} (subscriber msgs/s)", "msgs/s", fl, ns, None,
                           [("/ nats-server", ratio(fl, ns), ">=", 0.8)], ">= 0.8x nats-server",
                           ("core", f"{scen}.{size}"), counted(core, scen, size, "sub")))
    for size, slabel in (("16B", "16 B"), ("1KiB", "1 KiB")):
        fl, ns = core.med(F, "reqrep", size, "req", "p50"), core.med(NS, "reqrep", size, "req", "p50")
        out.append(Row(f"core request/reply, {slabel}: P50 round trip", "us", fl, ns, None,
                       [("/ nats-server", ratio(fl, ns), "<=", 1.2)], "<= 1.2x nats-server (lower is better)",
                       ("core", f"reqrep.{size}"), counted(core, "reqrep", size, "req")))
    return out


def group_commit_row(fsync_path):
    # The target counts what the issue counts (`strace -e fdatasync,fsync`): the calls that make
    # data durable. sync_file_range (a snapshot's paced write-out, which flushes no disk cache and
    # commits no metadata) is probed too and shown beside the result, not counted in it.
    per = {}
    for r in rows(fsync_path):
        n = num(r.get("msgs"))
        syncs = (num(r.get("fsync")) or 0) + (num(r.get("fdatasync")) or 0)
        if n and syncs:
            per[(r["target"], r["mode"])] = (n / syncs, n, syncs, num(r.get("sync_file_range")) or 0)
    mode = "js pub async --clients 4"
    fl, na = per.get((F, mode)), per.get((A, mode))
    v = fl[0] if fl else None
    detail = "no probe"
    if fl:
        detail = f"{fl[1]:,.0f} msgs, {fl[2]:,.0f} fsync+fdatasync calls (~{fl[0] * 3:,.0f} msgs per call per node)"
        if fl[3]:
            detail += f"; also {fl[3]:,.0f} sync_file_range calls (snapshot write-out), not counted"
    row = Row("group commit: messages per sync call (fsync + fdatasync of all 3 nodes), `js pub async "
              "--batch 500 --clients 4`", "msgs/call", v, None, na[0] if na else None,
              [("msgs per call", v, ">=", 100)], ">= 100 messages per sync call", None, detail)
    return row


def pprof_top(path, n=15, extra=()):
    try:
        out = subprocess.run(["go", "tool", "pprof", "-top", f"-nodecount={n}", *extra, path],
                             capture_output=True, text=True, timeout=120).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"(go tool pprof failed: {e})"
    lines = out.splitlines()
    for i, l in enumerate(lines):
        if l.startswith("Type:"):
            lines = lines[i:]
            break
    return "\n".join(l for l in lines if not l.startswith("Dropped"))


def profiles(rows_, profdir):
    """Top lines of the missed scenarios' profiles (written next to them); the others are deleted.
    Returns markdown."""
    missed = {}
    for r in rows_:
        if r.prof and r.verdict() is not True:
            missed.setdefault(r.prof, []).append(r.name)
    kept, md = set(), []
    for (group, scen), names in missed.items():
        base = os.path.join(profdir, f"{group}.{scen}")
        parts = []
        for kind, extra in (("cpu", ()), ("allocs", ("-sample_index=alloc_space",))):
            p = f"{base}.{kind}.pb.gz"
            if not os.path.exists(p) or os.path.getsize(p) == 0:
                parts.append(f"({os.path.basename(p)}: no profile was captured)")
                continue
            kept.add(p)
            top = pprof_top(p, 15, extra)
            with open(f"{base}.{kind}.top.txt", "w") as f:
                f.write(top + "\n")
            parts.append(f"{os.path.basename(p)} (top 15 of `go tool pprof -top"
                         f"{' ' + ' '.join(extra) if extra else ''}`):\n\n```\n{top}\n```")
        md.append(f"<details><summary>{group}.{scen}: {'; '.join(names)}</summary>\n\n" + "\n\n".join(parts)
                  + "\n</details>")
    # (only the files the steps write: js1.*, js3.*, core.*)
    for pre in ("js1.", "js3.", "core."):
        for p in glob.glob(os.path.join(profdir, pre + "*.pb.gz")):
            if p not in kept:
                os.remove(p)
        for p in glob.glob(os.path.join(profdir, pre + "*.top.txt")):
            if p[: -len(".top.txt")] + ".pb.gz" not in kept:
                os.remove(p)
    return md


def cmd_report(out, meta_path, profdir=None):
    meta = {"cmd": [], "failed": []}
    for line in open(meta_path).read().splitlines():
        k, _, v = line.partition("=")
        if k in ("cmd", "failed"):
            meta[k].append(v)
        else:
            meta[k] = v
    js3 = JS(os.path.join(out, "js3", "results.tsv"))
    jsc = JS(os.path.join(out, "js3", "results-consume.tsv"))
    js1 = JS(os.path.join(out, "js1", "results.tsv"))
    core = Core(os.path.join(out, "core", "results.tsv"))
    rs = js_rows(js3, js1, jsc)
    rs += core_rows(core)
    rs.append(group_commit_row(os.path.join(out, "js3", "fsync.tsv")))

    met = sum(1 for r in rs if r.verdict() is True)
    nodata = sum(1 for r in rs if r.verdict() is None)
    print("## Targets")
    print()
    print(f"Measured {meta.get('date', '?')} by `{meta.get('args', '?')}` (`make bench`; "
          f"{int(meta.get('elapsed', 0)) // 60} min {int(meta.get('elapsed', 0)) % 60} s). "
          "Flotilla and nats-server ran side by side on 127.0.0.1 of one machine, started fresh by each "
          "step; every number is a median of the runs (count in the last column: flotilla / "
          "nats-default / nats-always, or flotilla / nats-server for core), runs interleaved. "
          "*nats-default* is nats-server's JetStream file store with its default `sync_interval` (fsync "
          "every 2 minutes), *nats-always* the same with `sync_interval: always` (fsync before every "
          "acknowledgement, Flotilla's durability); core rows compare with one plain nats-server. R3 = "
          "three servers per target and the client connected to the stream leader; single node = one "
          "`flotilla server` on its single-node defaults against single nats-servers, R1 streams. "
          "Ratios are Flotilla / nats-server; for latency lower is better.")
    print()
    print(f"**{met} of {len(rs)} targets met**" + (f" ({nodata} without data)" if nodata else "") + ".")
    print()
    hdr = ["scenario", "unit", "flotilla", "nats-default", "nats-always", "flotilla / default",
           "flotilla / always", "target", "met", "runs"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "|".join(["---", "---", "--:", "--:", "--:", "--:", "--:", "---", "---", "--:"]) + "|")
    for r in rs:
        if r.name.startswith("core "):
            rd, ra = ratio(r.fl, r.nd), None
            nd_cell, na_cell = f"{fmt(r.nd)} (nats-server)", "-"
        elif r.name.startswith("group commit"):
            rd, ra = None, None
            nd_cell, na_cell = "-", f"{fmt(r.na)} (nats-always)" if r.na else "-"
        else:
            rd, ra = ratio(r.fl, r.nd), ratio(r.fl, r.na)
            nd_cell, na_cell = fmt(r.nd), fmt(r.na)
        v = r.verdict()
        mark = "**yes**" if v else ("no data" if v is None else "**no**")
        cells = [r.name, r.unit, f"**{fmt(r.fl)}**", nd_cell, na_cell,
                 f"{rd:.2f}" if rd is not None else "-", f"{ra:.2f}" if ra is not None else "-",
                 r.target, mark, r.runs]
        print("| " + " | ".join(cells) + " |")
    print()
    if meta["failed"]:
        print("Steps that reported failed `nats bench` runs (not counted; see their sections and "
              "failures.txt): " + ", ".join(meta["failed"]) + ".")
        print()
    busy = []
    for step, what in (("js3", "three-node step"), ("js1", "single-node step"), ("core", "core step")):
        try:
            text = open(os.path.join(out, f"{step}.md")).read()
        except OSError:
            continue
        for para in text.split("\n\n"):
            if "The machine was busy" in para:
                busy.append(f"{what}: " + " ".join(para.replace("**", "").split()))
                break
    if busy:
        print("**The machine was busy** during some steps (their own warnings, from the sections they "
              "printed):")
        print()
        for b in busy:
            print(f"- {b}")
        print()
    print(f"Machine: {meta.get('machine', '?')}; {meta.get('load', '?')}. All servers and the clients "
          "share the CPUs and the disk, so compare ratios within this run, not absolute numbers "
          "across runs.")
    print(f"Tools: {meta.get('tools', '?')}.")
    print()
    print("Group commit is counted by the fsync probe of the three-node step (`-F`: `strace -c -f -e "
          "trace=fsync,fdatasync,sync_file_range` on the three servers of each target while 4 clients "
          "publish on the stream leader, the count in the last column; not part of the timed runs, and "
          "strace slows the servers down). The target is judged on the fsync and fdatasync calls of all three "
          "nodes together, the calls the issue counts (`strace -e fdatasync,fsync`); sync_file_range calls (a "
          "Raft snapshot's paced write-out, which makes nothing durable) are listed beside it, not counted.")
    print()
    print("Commands (OUT = the results directory, PROF = the profile directory, BINARY = the flotilla "
          "binary; each step's own section of this page lists the nats commands it runs):")
    print()
    print("```sh")
    for c in meta["cmd"]:
        print(c)
    print("```")
    if profdir:
        md = profiles(rs, profdir)
        print()
        if md:
            print("Go profiles of the missed targets (one extra, untimed run of the scenario against "
                  "Flotilla; a CPU profile and a delta allocation profile of the stream leader, "
                  "`/debug/pprof/profile` and `/debug/pprof/allocs` with `?seconds=`; files in PROF, "
                  "not committed):")
            print()
            print("\n\n".join(md))
        else:
            print("Every target was met, so no profiles were kept.")
    return 0


def main(argv):
    if len(argv) in (4, 5) and argv[1] == "report":
        return cmd_report(argv[2], argv[3], argv[4] if len(argv) == 5 else None)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
