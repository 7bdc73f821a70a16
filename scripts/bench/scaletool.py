#!/usr/bin/env python3
"""scaletool.py - tables, verdicts and charts for scripts/bench-scale.sh (Python 3 standard library).

Usage:
  scaletool.py median1 publishers.tsv
      The median msgs/s of the 1-client rows of the publishers group (NA when there is none).
  scaletool.py report OUTDIR IMGDIR IMGREL PLOT.py
      Markdown for the groups whose results are in OUTDIR (growth.tsv, publishers.tsv, sizes.tsv,
      idle.tsv, sustained.tsv + sustained.meta): a summary, then per group a chart (written to
      IMGDIR/scale-*.svg with PLOT.py, linked as IMGREL/scale-*.svg) and a table. Where a result
      misses its target or looks wrong (a growth chunk below 0.8 of the empty-stream rate, a node's anonymous
      memory above 1 GiB after the size runs, more than 64 KiB per idle connection, RSS or p99
      latency of the last sustained minute above 1.2x / 1.5x of the first), the top of the Go
      profile the script captured for it (OUTDIR/profiles/) is included (`go tool pprof -top`).
      Rows whose note is not "ok" are shown but not counted in the medians.
"""
import csv
import json
import math
import os
import statistics
import subprocess
import sys

GROWTH_TARGET = 0.8
PROF_NOTE = "seconds of the chunk"
IDLE_LIMIT = 64 * 1024
SIZE_ANON_LIMIT = 1 << 30
SUST_RSS_LIMIT = 1.2
SUST_P99_LIMIT = 1.5


def num(x):
    try:
        return float(str(x).replace(",", ""))
    except (TypeError, ValueError):
        return None


def rows(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def fmt(x, d=0):
    if x is None:
        return "-"
    return f"{x:,.{d}f}"


def mib(kb):
    v = num(kb)
    return None if v is None else v / 1024


def size_label(b):
    b = int(b)
    for unit, f in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if b >= f and b % f == 0:
            return f"{b // f} {unit}"
    return f"{b} B"


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def counted(r):
    return r.get("note", "ok") == "ok" and num(r.get("msgs_per_s")) is not None


def pprof_top(path, n=10, extra=()):
    """The first n lines of `go tool pprof -top` of a profile, or a note."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return f"(no profile at {os.path.basename(path)})"
    try:
        out = subprocess.run(
            ["go", "tool", "pprof", "-top", f"-nodecount={n}", *extra, path],
            capture_output=True, text=True, timeout=120,
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"(go tool pprof failed: {e})"
    lines = out.splitlines()
    # keep from the "Showing nodes" line on (File/Build ID/Time are noise)
    for i, l in enumerate(lines):
        if l.startswith("Showing nodes") or l.startswith("Type:"):
            lines = lines[i:]
            break
    return "\n".join(l for l in lines if not l.startswith("Dropped") and not l.startswith("Build ID"))


def details(summary, text):
    return f"\n<details><summary>{summary}</summary>\n\n```\n{text}\n```\n</details>\n"


class Plotter:
    def __init__(self, imgdir, imgrel, plot):
        self.imgdir, self.imgrel, self.plot = imgdir, imgrel, plot

    def chart(self, name, title, xlabel, ylabel, header, data, opts=()):
        os.makedirs(self.imgdir, exist_ok=True)
        tsv = "\t".join(header) + "\n" + "".join("\t".join("NA" if v is None else f"{v:g}" if isinstance(v, float) else str(v) for v in r) + "\n" for r in data)
        path = os.path.join(self.imgdir, f"scale-{name}.svg")
        p = subprocess.run([sys.executable, self.plot, path, title, xlabel, ylabel, *opts], input=tsv, text=True, capture_output=True)
        if p.returncode != 0:
            return f"(chart {name} not drawn: {p.stderr.strip()})\n"
        return f"![{title}]({self.imgrel}/scale-{name}.svg)\n"


def snapshot_windows(out, group):
    """[(node, start, end)] of the Raft snapshots in the group's node logs (epoch seconds)."""
    from datetime import datetime

    res = []
    for i in (1, 2, 3):
        path = os.path.join(out, "logs", f"{group}.n{i}.log")
        if not os.path.exists(path):
            continue
        start = None
        for line in open(path, errors="replace"):
            if "snapshot" not in line:
                continue
            try:
                d = json.loads(line)
                ts = datetime.fromisoformat(str(d.get("ts", "")).replace("Z", "+00:00")).timestamp()
            except (ValueError, TypeError):
                continue
            msg = str(d.get("msg", ""))
            if msg.startswith("starting snapshot"):
                start = ts
            elif msg.startswith("snapshot complete") and start is not None:
                res.append((f"n{i}", start, ts))
                start = None
    return res


def growth(out, pl, summary):
    """Growth: each chunk's median over the runs against the empty-stream rate.

    The empty-stream rate is the median of every chunk of the "empty" passes, which publish the
    same chunks on fresh clusters alternating with the "grow" passes but purge the stream before
    each chunk. So it is measured over the same minutes of the same kind of run (the page cache
    filling, the kernel writing back dirty pages every 30 s, the Raft log growing), and the only
    difference left is the stream's size.
    """
    rs = rows(os.path.join(out, "growth.tsv"))
    if not rs:
        return ""
    grow = [r for r in rs if r["series"] == "grow"]
    empty = [r for r in rs if r["series"] == "empty"]
    runs = sorted({int(r["run"]) for r in grow})
    chunks = sorted({int(r["chunk"]) for r in grow})
    by = {(r["series"], int(r["run"]), int(r["chunk"])): r for r in rs}

    def rate(r):
        return num(r["msgs_per_s"]) if r is not None and counted(r) else None

    gmed = {c: med([rate(by.get(("grow", k, c))) for k in runs]) for c in chunks}
    emed = {c: med([rate(by.get(("empty", k, c))) for k in runs]) for c in chunks}
    base = med([rate(r) for r in empty])
    base_note = f"the median of all {sum(1 for r in empty if counted(r))} chunks published on an empty stream"
    chunk = num(by[("grow", runs[0], chunks[0])]["stream_msgs"]) if runs and chunks else None
    size_after = {c: med([num(by[("grow", k, c)]["stream_msgs"]) for k in runs if ("grow", k, c) in by]) for c in chunks}
    lines = ["### Growth: publishing into a stream that grows\n"]
    lines.append(
        f"One stream filled in {len(chunks)} chunks of {fmt(chunk)} messages (128 B, `js pub async --batch 500`, one client, "
        f"no purge in between), {len(runs)} time(s), each on a fresh cluster. Alternating with these, the same chunks "
        "were published on fresh clusters that purge the stream before every chunk (`--purge`, outside the timed part): "
        "the *empty stream*. It runs over the same minutes of the same kind of load (the page cache filling, the "
        "kernel writing dirty pages back every 30 s, the Raft log growing until its snapshot), so what is left between "
        f"the two lines is the stream's size. The empty-stream rate is {base_note}; the dashed line is 80% of it (the "
        "issue's target: the rate stays within 20% of the empty stream's). Each point is the median over the runs.\n"
    )
    data = [(size_after[c] / 1e6 if size_after[c] else None, gmed[c], emed[c]) for c in chunks]
    opts = ["--ymin0"]
    if base:
        opts += ["--hline", f"{base * GROWTH_TARGET}:80% of empty"]
    lines.append(pl.chart("growth", "Publish rate as the stream grows", "messages in the stream (millions)", "msgs/s",
                          ["x", "growing stream", "empty stream"], data, opts))
    first = [r for r in grow if int(r["run"]) == runs[0]] if runs else []
    mem = [(num(r["stream_msgs"]) / 1e6 if num(r["stream_msgs"]) else None, mib(r["leader_vmrss_kb"]), mib(r["leader_rssanon_kb"]),
            (num(r["leader_disk_mb"]) or 0) / 1024 if num(r["leader_disk_mb"]) is not None else None) for r in first]
    lines.append(pl.chart("growth-memory", f"Leader memory and disk as the stream grows (run {runs[0] if runs else 1})",
                          "messages in the stream (millions)", "MiB / GiB",
                          ["x", "VmRSS (MiB)", "RssAnon (MiB)", "data dir (GiB)"], mem, ["--ymin0"]))
    lines.append("")
    snaps = {k: snapshot_windows(out, f"growth-grow-r{k}") for k in runs}
    lines.append("*msgs/s* are the growing stream's, one column per run; *empty* is the median of the same chunk on an "
                 "empty stream. *Leader CPU* is the leader process's CPU time during the chunk per message stored in "
                 "it (median over the runs); *Raft snapshots* lists the snapshots any node of a growing run was taking "
                 "during the chunk (from the node logs: `starting snapshot` to `snapshot complete`, seconds within the "
                 f"chunk). RSS and data dir are run {runs[0] if runs else 1}'s.\n")
    rcols = " | ".join(f"run {k}" for k in runs)
    lines.append(f"| chunk | messages in the stream after it | {rcols} | median | empty | median / empty rate | leader CPU µs/msg | Raft snapshots | leader RSS MiB (anon) | leader data dir MB | notes |")
    lines.append("|--:|--:|" + "--:|" * len(runs) + "--:|--:|--:|--:|---|--:|--:|---|")
    slow, with_snap = [], []
    for c in chunks:
        cells, pers, ov, notes = [], [], [], []
        for k in runs:
            r = by.get(("grow", k, c))
            cells.append(fmt(rate(r)))
            if r is None:
                continue
            if r["note"] != "ok":
                notes.append(f"run {k}: {r['note']}")
            prev = by.get(("grow", k, c - 1))
            moved = (num(r["stream_msgs"]) or 0) - ((num(prev["stream_msgs"]) or 0) if prev else 0)
            cpu = num(r.get("leader_cpu_s"))
            if cpu is not None and moved > 0:
                pers.append(cpu / moved * 1e6)
            a, b = num(r.get("start_epoch")), num(r.get("end_epoch"))
            if a is not None and b is not None:
                for n, s0, s1 in snaps.get(k, []):
                    o = min(b, s1) - max(a, s0)
                    if o > 0:
                        ov.append(f"r{k} {n} {o:.0f} s")
        for k in runs:
            r = by.get(("empty", k, c))
            if r is not None and r["note"] != "ok":
                notes.append(f"empty run {k}: {r['note']}")
        v = gmed[c]
        rel = f"{v / base:.2f}" if base and v else "-"
        if base and v and v < GROWTH_TARGET * base:
            slow.append(str(c))
            if ov:
                with_snap.append(str(c))
        r1 = by.get(("grow", runs[0], c))
        lines.append(
            f"| {c} | {fmt(size_after[c])} | {' | '.join(cells)} | {fmt(v)} | {fmt(emed[c])} | {rel} | {fmt(med(pers), 1)} | "
            f"{', '.join(ov) or '-'} | {fmt(mib(r1['leader_vmrss_kb']) if r1 else None)} ({fmt(mib(r1['leader_rssanon_kb']) if r1 else None)}) | "
            f"{fmt(num(r1['leader_disk_mb']) if r1 else None)} | {'; '.join(notes) or 'ok'} |"
        )
    # each run's last chunk against its own first: the older, noisier measure, kept for comparison
    own = []
    for k in runs:
        a, b = rate(by.get(("grow", k, chunks[0]))), rate(by.get(("grow", k, chunks[-1])))
        own.append(f"{b / a:.2f}" if a and b else "-")
    lines.append("")
    lines.append(f"Each run's last chunk against its own first chunk: {', '.join(own)}.")
    if slow:
        lines.append(f"Chunks whose median is below 80% of the empty-stream rate: {', '.join(slow)}"
                     + (f"; a Raft snapshot ran during {', '.join(with_snap)} of them." if with_snap else "."))
    vals = [(c, gmed[c]) for c in chunks if gmed[c] is not None]
    if not base or not vals:
        verdict = "growth: no empty-stream rate or no chunk completed"
        ok = False
    else:
        wc, wv = min(vals, key=lambda x: x[1])
        last_c, last_v = vals[-1]
        ok = wv >= GROWTH_TARGET * base and len(vals) == len(chunks)
        verdict = (f"growth to {fmt(size_after[chunks[-1]])} messages ({len(runs)} run(s), medians): the last chunk ran at "
                   f"**{last_v / base:.2f}x** the empty-stream rate ({fmt(last_v)} vs {fmt(base)} msgs/s), the slowest "
                   f"(chunk {wc}) at **{wv / base:.2f}x**: target every chunk >= {GROWTH_TARGET} **{'met' if ok else 'missed'}**"
                   f"; each run's last chunk / its first: {', '.join(own)}")
        if len(vals) < len(chunks):
            verdict += f"; {len(chunks) - len(vals)} chunk(s) without a counted run"
    summary.append(verdict)
    if not ok:
        for c in (chunks[0], chunks[-1]):
            p = os.path.join(out, "profiles", f"growth-chunk{c}.cpu.pb.gz")
            lines.append(details(f"CPU profile of the leader during chunk {c} of run {runs[0]} (first {PROF_NOTE}, top 15 by cumulative time)",
                                 pprof_top(p, 15, ["-cum"])))
    return "\n".join(lines) + "\n"


def publishers(out, pl, summary):
    rs = rows(os.path.join(out, "publishers.tsv"))
    if not rs:
        return ""
    by = {}
    for r in rs:
        by.setdefault(int(r["clients"]), []).append(r)
    lines = ["### Publishers: 1 to 256 clients\n"]
    lines.append("`js pub async --batch 500` into a fresh stream (purged before each run), the messages shared by the "
                 "clients; total msgs/s of all clients (nats bench's aggregated rate) and the latencies nats bench "
                 "reports (with up to 500 unacknowledged messages per client, they grow with the number of clients).\n")
    data = []
    tbl = ["| clients | median msgs/s | min - max | runs | per client | latency p50 / p99 ms (medians) |", "|--:|--:|--:|--:|--:|--:|"]
    best = None
    for c in sorted(by):
        xs = [num(r["msgs_per_s"]) for r in by[c] if counted(r)]
        m = med(xs)
        nf = len(by[c]) - len(xs)
        data.append((c, m))
        p50 = med([num(r["p50_us"]) for r in by[c] if counted(r)])
        p99 = med([num(r["p99_us"]) for r in by[c] if counted(r)])
        lat = f"{fmt(p50 / 1000 if p50 else None, 1)} / {fmt(p99 / 1000 if p99 else None, 1)}"
        tbl.append(f"| {c} | {fmt(m)} | {fmt(min(xs)) + ' - ' + fmt(max(xs)) if xs else '-'} | {len(xs)}{f' (+{nf} not counted)' if nf else ''} | {fmt(m / c if m else None)} | {lat} |")
        if m and (best is None or m > best[1]):
            best = (c, m)
    lines.append(pl.chart("publishers", "Publish rate by number of publishers", "clients (log scale)", "msgs/s (all clients)", ["clients", "js pub async --batch 500"], data, ["--logx", "--ymin0"]))
    lines += ["", *tbl]
    one = dict(data).get(1)
    if best and one:
        summary.append(f"publishers: 1 client {fmt(one)} msgs/s, best {fmt(best[1])} msgs/s with {best[0]} clients "
                       f"({best[1] / one:.2f}x); 256 clients {fmt(dict(data).get(256))} msgs/s")
    return "\n".join(lines) + "\n"


def sizes(out, pl, summary):
    rs = rows(os.path.join(out, "sizes.tsv"))
    if not rs:
        return ""
    by = {}
    for r in rs:
        by.setdefault(int(r["size"]), []).append(r)
    lines = ["### Message sizes: 16 B to 1 MiB\n"]
    lines.append("`js pub async`, one client, a fresh (purged) stream per run. Each run moves a bounded number of bytes; "
                 "the batch (messages in flight before nats bench waits for their acks) is 500, lowered for large "
                 "messages so that a batch holds at most 16 MiB. MiB/s counts payload bytes. *Leader RSS after run 1* is "
                 "read right after the first run of each size; the sizes ran from small to large on one cluster, so it "
                 "includes what earlier sizes left behind.\n")
    d1, d2 = [], []
    tbl = ["| size | msgs per run | batch | median msgs/s | min - max | median MiB/s | runs | leader RSS after run 1, MiB (anon) |",
           "|--:|--:|--:|--:|--:|--:|--:|--:|"]
    anon_max = 0
    for s in sorted(by):
        xs = [num(r["msgs_per_s"]) for r in by[s] if counted(r)]
        ms = [num(r["mib_per_s"]) for r in by[s] if counted(r)]
        m, mm = med(xs), med(ms)
        nf = len(by[s]) - len(xs)
        rss = mib(by[s][0]["leader_vmrss_kb"])
        anon = mib(by[s][0]["leader_rssanon_kb"])
        anon_max = max([anon_max] + [(mib(r["leader_rssanon_kb"]) or 0) for r in by[s]])
        d1.append((s, m))
        d2.append((s, mm))
        tbl.append(f"| {size_label(s)} | {fmt(num(by[s][0]['msgs']))} | {by[s][0]['batch']} | {fmt(m)} | "
                   f"{fmt(min(xs)) + ' - ' + fmt(max(xs)) if xs else '-'} | {fmt(mm, 1)} | {len(xs)}{f' (+{nf} not counted)' if nf else ''} | {fmt(rss)} ({fmt(anon)}) |")
    lines.append(pl.chart("sizes-msgs", "Publish rate by message size", "message size (log scale)", "msgs/s (log scale)", ["size", "js pub async, 1 client"], d1, ["--logx", "--logy", "--xfmt", "bytes"]))
    lines.append(pl.chart("sizes-bytes", "Payload throughput by message size", "message size (log scale)", "MiB/s", ["size", "js pub async, 1 client"], d2, ["--logx", "--xfmt", "bytes", "--ymin0"]))
    lines += ["", *tbl]
    if d1 and d2:
        top = max((x for x in d2 if x[1] is not None), key=lambda x: x[1], default=None)
        s = f"sizes: {fmt(dict(d1).get(16))} msgs/s at 16 B, {fmt(dict(d1).get(1 << 20))} msgs/s at 1 MiB"
        if top:
            s += f"; most bytes at {size_label(top[0])}: {fmt(top[1], 1)} MiB/s"
        s += f"; the leader's anonymous memory reached {fmt(anon_max)} MiB"
        summary.append(s)
    if anon_max * (1 << 20) > SIZE_ANON_LIMIT:
        p = os.path.join(out, "profiles", "sizes-end.heap.pb.gz")
        lines.append(details("Heap profile of the leader after the size runs (in-use space, top 10)", pprof_top(p, 10, ["-sample_index=inuse_space"])))
    return "\n".join(lines) + "\n"


def idle(out, pl, summary):
    rs = rows(os.path.join(out, "idle.tsv"))
    if not rs:
        return ""
    node = ""
    try:
        node = open(os.path.join(out, "idle.node")).read().strip()
    except OSError:
        pass
    base = next((r for r in rs if r["phase"] == "base"), None)
    hold = next((r for r in rs if r["phase"] == "hold"), None)
    lines = ["### Idle connections\n"]
    lines.append(f"Idle NATS clients (`scripts/bench/idleconns.py`: INFO, CONNECT, PING/PONG, then nothing but PONGs to the "
                 f"server's PINGs) connected to one node ({node or 'the leader'}), opened in steps; after each step and 3 s the "
                 "node's memory: VmRSS and RssAnon from `/proc/PID/status`, Go heap in use, goroutine stacks and goroutines from its "
                 "`/metrics`. *hold* = 10 s after the last step, *closed* = 3 s after all were closed.\n")
    data = []
    tbl = ["| phase | connections | VmRSS MiB | RssAnon MiB | Go heap in use MiB | stacks MiB | goroutines |", "|---|--:|--:|--:|--:|--:|--:|"]
    for r in rs:
        heap, stack = num(r["heap_inuse_b"]), num(r["stack_inuse_b"])
        if r["phase"] in ("base", "open"):
            data.append((int(r["conns"]), mib(r["vmrss_kb"]), mib(r["rssanon_kb"]), heap / 2**20 if heap is not None else None, stack / 2**20 if stack is not None else None))
        tbl.append(f"| {r['phase']} | {fmt(num(r['conns']))} | {fmt(mib(r['vmrss_kb']), 1)} | {fmt(mib(r['rssanon_kb']), 1)} | "
                   f"{fmt(heap / 2**20 if heap is not None else None, 1)} | {fmt(stack / 2**20 if stack is not None else None, 1)} | {fmt(num(r['goroutines']))} |")
    lines.append(pl.chart("idle", "Node memory by idle connections", "idle connections", "MiB", ["conns", "VmRSS", "RssAnon", "Go heap in use", "stacks"], data, ["--ymin0"]))
    lines += ["", *tbl]
    if base and hold and num(hold["conns"]):
        n = num(hold["conns"])

        def per(k):
            a, b = num(base[k]), num(hold[k])
            return None if a is None or b is None else (b - a) / n

        rss, anon = per("vmrss_kb"), per("rssanon_kb")
        heap, stack, gor = per("heap_inuse_b"), per("stack_inuse_b"), per("goroutines")
        text = (f"idle connections: {fmt(n)} cost **{fmt(rss, 1)} KiB of RSS per connection** "
                f"(anon {fmt(anon, 1)} KiB; Go heap {fmt(heap / 1024 if heap is not None else None, 1)} KiB + stacks "
                f"{fmt(stack / 1024 if stack is not None else None, 1)} KiB; {fmt(gor, 1)} goroutines each)")
        summary.append(text)
        lines.append("")
        lines.append(f"Per connection (hold - base, divided by {fmt(n)}): VmRSS {fmt(rss, 1)} KiB, RssAnon {fmt(anon, 1)} KiB, "
                     f"Go heap {fmt(heap / 1024 if heap is not None else None, 1)} KiB, stacks {fmt(stack / 1024 if stack is not None else None, 1)} KiB, "
                     f"{fmt(gor, 1)} goroutines.")
        if anon is not None and anon * 1024 > IDLE_LIMIT:
            lines.append(f"\n**More than {IDLE_LIMIT // 1024} KiB per idle connection.**")
    return "\n".join(lines) + "\n"


def minute_of(t):
    """The sustained minute (0-based) a sample taken at t seconds closes: a sample is taken at the
    end of its 10 s, so t = 60 is the last of minute 0 and the final one (t = planned duration) the
    last of the last minute, not a minute of its own."""
    return max(0, math.ceil(t / 60) - 1)


def minute_stats(rs, lo, hi, key):
    xs = [num(r[key]) for r in rs if lo <= num(r["t_s"]) < hi and num(r[key]) is not None]
    return statistics.mean(xs) if xs else None


def sustained(out, pl, summary):
    rs = rows(os.path.join(out, "sustained.tsv"))
    if not rs:
        return ""
    meta = {}
    try:
        for l in open(os.path.join(out, "sustained.meta")):
            k, _, v = l.rstrip("\n").partition("\t")
            meta[k] = v
    except OSError:
        pass
    # only the samples taken while the publisher ran (the last one may come after it finished)
    # (a sample that saw every message published was taken after the publisher finished)
    ps, total = num(meta.get("pub_secs")), num(meta.get("total"))
    rs = [r for r in rs if (not ps or num(r["t_s"]) <= ps - 1) and not (total and (num(r["published"]) or 0) >= total)] or rs
    mins = int(meta.get("minutes", "1"))
    lines = ["### Sustained publish + consume\n"]
    lines.append(
        f"{mins} minute(s) of `js pub async --batch 500 --throughput {meta.get('rate', '?')}` (half the peak of "
        f"{fmt(num(meta.get('peak')))} msgs/s: {meta.get('peak_src', '?')}) into a work-queue stream (an acknowledged message "
        "leaves it) read at the same time by `js consume --batch 500` (explicit acks). Every 10 s: each node's VmRSS and "
        "RssAnon, the stream's backlog (messages not yet acknowledged), and a latency probe: 50 `js pub sync` to a second "
        "R3 stream, p50 and p99 as nats bench reports them.\n"
    )
    if meta.get("status", "ok") != "ok":
        lines.append(f"**The run failed: {meta['status']}.**\n")
    lines.append(f"Publisher: {fmt(num(meta.get('pub_rate')))} msgs/s over the run ({fmt(num(meta.get('last_seq')))} messages); "
                 f"consumer: {fmt(num(meta.get('consume_rate')))} msgs/s; backlog at the end: {fmt(num(meta.get('backlog_end')))}.\n")
    t = [num(r["t_s"]) / 60 for r in rs]
    rss = [(ti, *[mib(r[f"n{i}_vmrss_kb"]) for i in (1, 2, 3)], *[mib(r[f"n{i}_rssanon_kb"]) for i in (1, 2, 3)]) for ti, r in zip(t, rs)]
    lines.append(pl.chart("sustained-rss", "Node memory during sustained load", "minutes", "MiB",
                          ["t", "n1 VmRSS", "n2 VmRSS", "n3 VmRSS", "n1 anon", "n2 anon", "n3 anon"], rss, ["--ymin0", "--pair"]))
    lat = [(ti, (num(r["probe_p50_us"]) or 0) / 1000 if num(r["probe_p50_us"]) is not None else None,
            num(r["probe_p99_us"]) / 1000 if num(r["probe_p99_us"]) is not None else None) for ti, r in zip(t, rs)]
    lines.append(pl.chart("sustained-latency", "Sync publish latency during sustained load", "minutes", "ms", ["t", "probe p50", "probe p99"], lat, ["--ymin0"]))
    backlog = [(ti, num(r["backlog"])) for ti, r in zip(t, rs)]
    lines.append(pl.chart("sustained-backlog", "Work-queue backlog during sustained load", "minutes", "messages", ["t", "backlog"], backlog, ["--ymin0"]))
    # per-minute table
    tbl = ["| minute | leader | n1 RSS MiB (anon) | n2 RSS MiB (anon) | n3 RSS MiB (anon) | backlog | probe p50 ms | probe p99 ms |",
           "|--:|---|--:|--:|--:|--:|--:|--:|"]
    tmax = max(num(r["t_s"]) for r in rs)
    for m in range(0, minute_of(tmax) + 1):
        sel = [r for r in rs if minute_of(num(r["t_s"])) == m]
        if not sel:
            continue
        cells = []
        for i in (1, 2, 3):
            cells.append(f"{fmt(mib(minute_stats(sel, 0, 1e9, f'n{i}_vmrss_kb')))} ({fmt(mib(minute_stats(sel, 0, 1e9, f'n{i}_rssanon_kb')))})")
        p50 = med([num(r["probe_p50_us"]) for r in sel])
        p99 = med([num(r["probe_p99_us"]) for r in sel])
        leaders = ",".join(sorted({r["leader"] for r in sel}))
        tbl.append(f"| {m + 1} | {leaders} | {' | '.join(cells)} | {fmt(minute_stats(sel, 0, 1e9, 'backlog'))} | "
                   f"{fmt(p50 / 1000 if p50 else None, 2)} | {fmt(p99 / 1000 if p99 else None, 2)} |")
    lines += ["", "Means per minute (latencies: medians of the probes in that minute):", "", *tbl]
    first = [r for r in rs if minute_of(num(r["t_s"])) == 0]
    # the publisher may run past its planned minutes when the cluster cannot keep the rate
    last = [r for r in rs if minute_of(num(r["t_s"])) == minute_of(tmax)]
    if first and last:
        worst = 0.0
        parts = []
        for i in (1, 2, 3):
            a = minute_stats(first, 0, 1e9, f"n{i}_vmrss_kb")
            b = minute_stats(last, 0, 1e9, f"n{i}_vmrss_kb")
            if a and b:
                worst = max(worst, b / a)
                parts.append(f"n{i} {fmt(mib(a))} -> {fmt(mib(b))} MiB")
        p99a = med([num(r["probe_p99_us"]) for r in first])
        p99b = med([num(r["probe_p99_us"]) for r in last])
        p50a = med([num(r["probe_p50_us"]) for r in first])
        p50b = med([num(r["probe_p50_us"]) for r in last])
        lr = p99b / p99a if p99a and p99b else None
        # growth = the last minute above 1.2x the first *and* above every earlier minute (a trend, not a bump)
        def minute_means(key):
            out_ = {}
            for r in rs:
                v = num(r[key])
                if v is not None:
                    out_.setdefault(minute_of(num(r["t_s"])), []).append(v)
            return [statistics.mean(v) for _, v in sorted(out_.items())]

        grows = []
        for i in (1, 2, 3):
            ms = minute_means(f"n{i}_vmrss_kb")
            if len(ms) >= 2 and ms[-1] > SUST_RSS_LIMIT * ms[0] and ms[-1] > max(ms[:-1]):
                grows.append(f"n{i}")
        p99m = []
        for m in sorted({minute_of(num(r["t_s"])) for r in rs}):
            p99m.append(med([num(r["probe_p99_us"]) for r in rs if minute_of(num(r["t_s"])) == m]))
        p99m = [x for x in p99m if x is not None]
        lat_grows = len(p99m) >= 2 and p99m[-1] > SUST_P99_LIMIT * p99m[0] and p99m[-1] > max(p99m[:-1])
        flat = not grows and not lat_grows
        status = meta.get("status", "ok")
        summary.append(
            f"sustained {mins} min at {fmt(num(meta.get('rate')))} msgs/s (achieved {fmt(num(meta.get('pub_rate')))}): RSS first -> last minute {', '.join(parts)} "
            f"(largest growth {worst:.2f}x); probe p50 {fmt(p50a / 1000 if p50a else None, 2)} -> {fmt(p50b / 1000 if p50b else None, 2)} ms, "
            f"p99 {fmt(p99a / 1000 if p99a else None, 2)} -> {fmt(p99b / 1000 if p99b else None, 2)} ms: "
            f"**{'no growth' if flat else 'growing: ' + ', '.join(grows + (['p99'] if lat_grows else []))}** (growth = the last minute "
            f"above {SUST_RSS_LIMIT}x (RSS) / {SUST_P99_LIMIT}x (p99) of the first and above every minute before it)"
            + ("" if status == "ok" else f"; **the run failed: {status}**"))
        if not flat:
            for n, f in (("after the first minute", "sustained-1min"), ("at the end", "sustained-end")):
                p = os.path.join(out, "profiles", f"{f}.heap.pb.gz")
                lines.append(details(f"Heap profile of the leader {n} (in-use space, top 10)", pprof_top(p, 10, ["-sample_index=inuse_space"])))
    return "\n".join(lines) + "\n"


def cmd_median1(path):
    xs = [num(r["msgs_per_s"]) for r in rows(path) if r["clients"] == "1" and counted(r)]
    m = med(xs)
    print("NA" if m is None else f"{m:.0f}")
    return 0


def cmd_report(out, imgdir, imgrel, plot):
    pl = Plotter(imgdir, imgrel, plot)
    summary = []
    parts = [f(out, pl, summary) for f in (growth, publishers, sizes, idle, sustained)]
    print("Results in short:\n")
    for s in summary:
        print(f"- {s}")
    print()
    print("\n".join(p for p in parts if p))
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "median1":
        return cmd_median1(argv[2])
    if len(argv) == 6 and argv[1] == "report":
        return cmd_report(*argv[2:6])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
